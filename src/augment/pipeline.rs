//! Host side of `shaders/augment.wgsl`: the per-batch augmentation pass.

use super::images::{GpuImages, Store};
use super::params::{sample_batch, AugmentConfig, ViewParams};
use crate::gpu::{grid_1d, Gpu, GpuError, KernelFlavor, Program, Tensor, Uniform};
use std::sync::Arc;

#[repr(C)]
#[derive(Clone, Copy, Default, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    n: u32,
    size: u32,
    src_h: u32,
    src_w: u32,
    stride: u32,
    src_float: u32,
    radius: u32,
    _p0: u32,
    mean: [f32; 3],
    _p1: f32,
    std: [f32; 3],
    _p2: f32,
}

/// One view as the shader reads it (16 words; mirrors `View` in augment.wgsl).
#[repr(C)]
#[derive(Clone, Copy, Default, bytemuck::Pod, bytemuck::Zeroable)]
struct GpuView {
    image: u32,
    top: u32,
    left: u32,
    crop_h: u32,
    crop_w: u32,
    flip: u32,
    gray: u32,
    n_ops: u32,
    ops: u32,
    brightness: f32,
    contrast: f32,
    saturation: f32,
    hue: f32,
    sigma: f32,
    _p: [u32; 2],
}

impl GpuView {
    fn new(image: u32, v: &ViewParams) -> GpuView {
        let ops = v.jitter.active_ops();
        let j = &v.jitter;
        GpuView {
            image,
            top: v.crop.top,
            left: v.crop.left,
            crop_h: v.crop.height,
            crop_w: v.crop.width,
            flip: v.flip as u32,
            gray: v.gray as u32,
            n_ops: ops.len() as u32,
            ops: ops.iter().enumerate().map(|(k, &op)| (op as u32) << (4 * k)).sum(),
            brightness: j.brightness,
            contrast: j.contrast,
            saturation: j.saturation,
            hue: j.hue,
            sigma: v.blur_sigma,
            _p: [0; 2],
        }
    }
}

/// The augmentation pass for one (max batch N, output size), planned once: `prepare` writes each
/// batch's indices and parameters (no allocation), `program` is replayed every step and writes
/// both views into `out` [2N, 3, S, S] (row i: view 1 of image i, row n + i: view 2).
pub struct Augmenter {
    cfg: AugmentConfig,
    max_n: usize,
    count: usize,
    src_h: usize,
    src_w: usize,
    stride: usize,
    params: Params,
    mean: [f32; 3],
    std: [f32; 3],
    uniform: Uniform,
    views: Tensor,
    host_views: Vec<GpuView>,
    /// Streaming: the staging tensor (N images), the host images and a reusable host buffer.
    staging: Option<(Tensor, Arc<Vec<u32>>, Vec<u32>)>,
    program: Program,
    radius: usize,
    blur: Option<Blur>,
    // Kept alive for the bind groups in `program`.
    _means: Tensor,
}

/// Blur buffers: the intermediate of the separable passes and the per-view weights.
struct Blur {
    scratch: Tensor,
    weights: Tensor,
    host: Vec<f32>,
}

/// Normalised Gaussian weights for offsets 0..=radius (the kernel is symmetric), in f64.
fn half_kernel(radius: usize, sigma: f32, out: &mut [f32]) {
    let w = |k: usize| (-0.5 * (k as f64 / sigma as f64).powi(2)).exp();
    let sum: f64 = w(0) + 2.0 * (1..=radius).map(w).sum::<f64>();
    for (k, o) in out.iter_mut().enumerate() {
        *o = (w(k) / sum) as f32;
    }
}

impl Augmenter {
    /// Plan for `out` of shape [2N, 3, S, S] with S = `cfg.out_size`, using the device's flavour.
    pub fn new(gpu: &Gpu, images: &GpuImages, out: &Tensor, cfg: &AugmentConfig) -> anyhow::Result<Augmenter> {
        Self::with_flavor(gpu, images, out, cfg, gpu.flavor)
    }

    /// `new` with an explicit kernel flavour for the per-view contrast mean (tests run both).
    pub fn with_flavor(
        gpu: &Gpu,
        images: &GpuImages,
        out: &Tensor,
        cfg: &AugmentConfig,
        flavor: KernelFlavor,
    ) -> anyhow::Result<Augmenter> {
        cfg.validate()?;
        let s = cfg.out_size;
        let rows = out.shape.first().copied().unwrap_or(0);
        if out.shape.len() != 4 || rows == 0 || rows % 2 != 0 || out.shape[1..] != [3, s, s] {
            return Err(GpuError::shapes(
                "augment",
                (&out.name, &out.shape),
                (
                    "the expected [2N, 3, out_size, out_size]",
                    &[2 * rows.div_ceil(2).max(1), 3, s, s],
                ),
            )
            .into());
        }
        let max_n = rows / 2;
        let max_views = rows as u32;
        let views = Tensor::zeros(gpu, "augment.views", &[rows * 16])?;
        let means = Tensor::zeros(gpu, "augment.means", &[rows])?;
        let radius = cfg.blur_kernel_size() / 2;
        let blur = if cfg.blur_p > 0.0 {
            Some(Blur {
                scratch: Tensor::zeros(gpu, "augment.scratch", &out.shape)?,
                weights: Tensor::zeros(gpu, "augment.blur_weights", &[rows * (radius + 1)])?,
                host: vec![0.0; rows * (radius + 1)],
            })
        } else {
            None
        };
        let (src_buffer, staging) = match &images.store {
            Store::Resident(t) => (t.buffer.clone(), None),
            Store::Streamed(host) => {
                let t = Tensor::zeros(gpu, "augment.staging", &[max_n * images.stride])?;
                let buf = Vec::with_capacity(max_n * images.stride);
                (t.buffer.clone(), Some((t, host.clone(), buf)))
            }
        };
        let params = Params {
            n: max_n as u32,
            size: s as u32,
            src_h: images.height as u32,
            src_w: images.width as u32,
            stride: images.stride as u32,
            src_float: images.src_float as u32,
            radius: radius as u32,
            mean: images.mean,
            std: images.std,
            ..Default::default()
        };
        let uniform = Uniform::new(gpu, "augment.params", &params);
        // Without blur, bindings 5 and 6 are used by no planned entry point (so never bound).
        let scratch_buf = blur.as_ref().map_or(&out.buffer, |b| &b.scratch.buffer);
        let weights_buf = blur.as_ref().map_or(&out.buffer, |b| &b.weights.buffer);
        let buffers = [
            &uniform.buffer,
            &src_buffer,
            &views.buffer,
            &means.buffer,
            &out.buffer,
            scratch_buf,
            weights_buf,
        ];
        let pixels = max_views * (s * s) as u32;
        let mut program = Program::new();
        program.push(match flavor {
            KernelFlavor::Rows => gpu.launch(
                "augment",
                "contrast_mean_rows",
                &buffers,
                grid_1d(max_views.div_ceil(64)),
            )?,
            KernelFlavor::Tiled => gpu.launch("augment", "contrast_mean_tiled", &buffers, grid_1d(max_views))?,
        });
        program.push(match flavor {
            KernelFlavor::Rows => gpu.launch(
                "augment",
                "augment_rows",
                &buffers,
                grid_1d((max_views * s as u32).div_ceil(64)),
            )?,
            KernelFlavor::Tiled => gpu.launch("augment", "augment", &buffers, grid_1d(pixels.div_ceil(256)))?,
        });
        if blur.is_some() {
            for entry in ["blur_h", "blur_v"] {
                program.push(match flavor {
                    KernelFlavor::Rows => gpu.launch(
                        "augment",
                        &format!("{entry}_rows"),
                        &buffers,
                        grid_1d((max_views * s as u32).div_ceil(64)),
                    )?,
                    KernelFlavor::Tiled => gpu.launch("augment", entry, &buffers, grid_1d(pixels.div_ceil(256)))?,
                });
            }
        }
        Ok(Augmenter {
            cfg: cfg.clone(),
            max_n,
            count: images.count,
            src_h: images.height,
            src_w: images.width,
            stride: images.stride,
            params,
            mean: images.mean,
            std: images.std,
            uniform,
            views,
            host_views: vec![GpuView::default(); rows],
            staging,
            program,
            radius,
            blur,
            _means: means,
        })
    }

    pub fn config(&self) -> &AugmentConfig {
        &self.cfg
    }

    /// The largest batch (N images, 2N views) this augmenter was planned for.
    pub fn max_batch(&self) -> usize {
        self.max_n
    }

    /// The dispatches that write the views of the last prepared batch; replay it every step.
    pub fn program(&self) -> &Program {
        &self.program
    }

    /// Draw the 2N views' parameters of the batch `indices` from `rng` and upload them.
    /// Panics when `indices` is longer than the planned batch or names an image out of range
    /// (the sampler never does).
    pub fn prepare(&mut self, gpu: &Gpu, indices: &[u32], rng: &mut impl rand::Rng) -> Vec<ViewParams> {
        let params = sample_batch(rng, &self.cfg, indices.len(), self.src_h, self.src_w);
        if let Err(e) = self.prepare_with(gpu, indices, &params) {
            panic!("Augmenter::prepare: {e}");
        }
        params
    }

    /// Upload given parameters (`2 × indices.len()` views in output-row order) for a preview or
    /// a GUI; every value is checked, since it may come from a file.
    pub fn prepare_with(&mut self, gpu: &Gpu, indices: &[u32], params: &[ViewParams]) -> anyhow::Result<()> {
        let n = indices.len();
        if n > self.max_n {
            anyhow::bail!(
                "a batch of {n} images exceeds the {} the augmenter was planned for",
                self.max_n
            );
        }
        if params.len() != 2 * n {
            anyhow::bail!(
                "{} view parameters given for {n} images (2 per image expected)",
                params.len()
            );
        }
        if let Some(&i) = indices.iter().find(|&&i| i as usize >= self.count) {
            anyhow::bail!("image index {i} is outside the {} images uploaded", self.count);
        }
        for (r, v) in params.iter().enumerate() {
            self.check_view(v).map_err(|e| anyhow::anyhow!("view {r}: {e}"))?;
        }
        for (r, v) in params.iter().enumerate() {
            let image = if self.staging.is_some() {
                (r % n) as u32
            } else {
                indices[r % n]
            };
            self.host_views[r] = GpuView::new(image, v);
        }
        if let Some((t, host, buf)) = &mut self.staging {
            buf.clear();
            for &i in indices {
                let s = i as usize * self.stride;
                buf.extend_from_slice(&host[s..s + self.stride]);
            }
            if !buf.is_empty() {
                gpu.queue.write_buffer(&t.buffer, 0, bytemuck::cast_slice(buf));
            }
        }
        if n > 0 {
            gpu.queue
                .write_buffer(&self.views.buffer, 0, bytemuck::cast_slice(&self.host_views[..2 * n]));
        }
        if let Some(b) = &mut self.blur {
            let k = self.radius + 1;
            for (r, v) in params.iter().enumerate() {
                if v.blur_sigma > 0.0 {
                    half_kernel(self.radius, v.blur_sigma, &mut b.host[r * k..(r + 1) * k]);
                }
            }
            if n > 0 {
                gpu.queue
                    .write_buffer(&b.weights.buffer, 0, bytemuck::cast_slice(&b.host[..2 * n * k]));
            }
        }
        self.params.n = n as u32;
        self.uniform.write(gpu, &self.params);
        Ok(())
    }

    fn check_view(&self, v: &ViewParams) -> anyhow::Result<()> {
        let c = &v.crop;
        let fits = |o: u32, l: u32, size: usize| l > 0 && (o as u64 + l as u64) <= size as u64;
        if !fits(c.top, c.height, self.src_h) || !fits(c.left, c.width, self.src_w) {
            anyhow::bail!(
                "crop {c:?} is empty or outside the {}×{} source",
                self.src_h,
                self.src_w
            );
        }
        let j = &v.jitter;
        let factors = [j.brightness, j.contrast, j.saturation];
        if factors.iter().any(|f| !f.is_finite() || *f < 0.0) || !(-0.5..=0.5).contains(&j.hue) {
            anyhow::bail!("jitter factors {j:?} out of range (b, c, s >= 0; |hue| <= 0.5)");
        }
        if j.order.iter().any(|&o| o > 3) {
            anyhow::bail!("jitter order {:?} names an op above 3", j.order);
        }
        if !v.blur_sigma.is_finite() || v.blur_sigma < 0.0 {
            anyhow::bail!("blur sigma {} must be >= 0", v.blur_sigma);
        }
        if v.blur_sigma > 0.0 && self.blur.is_none() {
            anyhow::bail!("the view is blurred but the augmenter was planned with blur_p = 0");
        }
        Ok(())
    }

    /// Normalise by the dataset's mean/std (training) or write plain RGB in [0, 1] (display).
    pub fn set_normalize(&mut self, gpu: &Gpu, on: bool) {
        (self.params.mean, self.params.std) = if on {
            (self.mean, self.std)
        } else {
            ([0.0; 3], [1.0; 3])
        };
        self.uniform.write(gpu, &self.params);
    }
}
