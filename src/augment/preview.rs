//! Headless visual check of the augmentations: a grid (original | view 1 | view 2, one row per
//! image) and every view's parameters as JSON. Same seed → same bytes.

use super::params::{batch_rng, sample_batch, AugmentConfig, ViewParams};
use super::{Augmenter, GpuImages};
use crate::data::{Dataset, Sampler};
use crate::gpu::{Gpu, Tensor};
use image::{Rgb, RgbImage};
use serde::Serialize;

/// Augment the images `indices` with the given parameters (2 per image, output-row order) and
/// read back the views [2n, 3, S, S]: plain RGB in [0, 1] when `raw`, else normalised.
pub fn render_views(
    gpu: &Gpu,
    images: &GpuImages,
    cfg: &AugmentConfig,
    indices: &[u32],
    params: &[ViewParams],
    raw: bool,
) -> anyhow::Result<Vec<f32>> {
    let s = cfg.out_size;
    let rows = 2 * indices.len().max(1);
    let out = Tensor::zeros(gpu, "preview.views", &[rows, 3, s, s])?;
    // Blur kernels are planned when any view asks for them, whatever the configured probability.
    let mut cfg = cfg.clone();
    if params.iter().any(|p| p.blur_sigma > 0.0) && cfg.blur_p == 0.0 {
        cfg.blur_p = 1.0;
    }
    let mut aug = Augmenter::new(gpu, images, &out, &cfg)?;
    aug.set_normalize(gpu, !raw);
    aug.prepare_with(gpu, indices, params)?;
    gpu.run(aug.program())?;
    let mut v = out.read_f32(gpu)?;
    v.truncate(2 * indices.len() * 3 * s * s);
    Ok(v)
}

/// Settings of `simclr augment`.
#[derive(Clone, Debug)]
pub struct PreviewOptions {
    pub n: usize,
    pub seed: u64,
    pub cfg: AugmentConfig,
    /// Each grid cell is the largest image side × `scale` pixels (nearest-neighbour upscaling).
    pub scale: usize,
}

#[derive(Serialize)]
struct Row {
    index: u32,
    label: Option<u32>,
    class: Option<String>,
    view1: ViewParams,
    view2: ViewParams,
}

#[derive(Serialize)]
struct Report<'a> {
    dataset: &'a str,
    seed: u64,
    /// The images are the first batch of epoch 0 and the views those of step 0 of a run with
    /// this seed.
    selection: &'static str,
    source_size: [usize; 2],
    config: &'a AugmentConfig,
    columns: [&'static str; 3],
    rows: Vec<Row>,
}

/// The preview grid and its JSON description (pretty-printed, fields in declaration order).
pub fn preview(gpu: &Gpu, ds: &Dataset, opts: &PreviewOptions) -> anyhow::Result<(RgbImage, String)> {
    if opts.n == 0 {
        anyhow::bail!("--n must be at least 1");
    }
    if opts.scale == 0 || opts.scale > 64 {
        anyhow::bail!("--scale must be in 1..=64");
    }
    opts.cfg.validate()?;
    let n = opts.n.min(ds.len());
    let indices = Sampler::new(ds.len(), n, false, opts.seed)?.batches(0).swap_remove(0);
    let params = sample_batch(&mut batch_rng(opts.seed, 0), &opts.cfg, n, ds.height, ds.width);
    let sub = ds.subset(&indices);
    let images = GpuImages::upload(gpu, &sub)?;
    let local: Vec<u32> = (0..n as u32).collect();
    let views = render_views(gpu, &images, &opts.cfg, &local, &params, true)?;
    let png = grid(&sub, &views, opts.cfg.out_size, opts.scale);
    let rows = indices
        .iter()
        .enumerate()
        .map(|(r, &i)| Row {
            index: i,
            label: ds.label(i as usize),
            class: ds.label(i as usize).and_then(|l| ds.classes.get(l as usize).cloned()),
            view1: params[r],
            view2: params[n + r],
        })
        .collect();
    let report = Report {
        dataset: &ds.name,
        seed: opts.seed,
        selection: "first batch of epoch 0 (Sampler), views of step 0 (batch_rng)",
        source_size: [ds.height, ds.width],
        config: &opts.cfg,
        columns: ["original", "view 1", "view 2"],
        rows,
    };
    Ok((png, serde_json::to_string_pretty(&report)? + "\n"))
}

const GAP: u32 = 4;
const BACKGROUND: Rgb<u8> = Rgb([40, 40, 40]);

/// A square grid cell: top-left corner and side in pixels.
#[derive(Clone, Copy)]
struct Cell {
    x: u32,
    y: u32,
    side: u32,
}

/// Draw `h`×`w` pixels from `px(y, x)` into `cell`, upscaled by the largest integer factor that
/// fits (nearest neighbour) and centred.
fn blit(img: &mut RgbImage, cell: Cell, h: u32, w: u32, px: impl Fn(u32, u32) -> [u8; 3]) {
    let f = (cell.side / h.max(w)).max(1);
    let (ox, oy) = (cell.x + (cell.side - w * f) / 2, cell.y + (cell.side - h * f) / 2);
    for y in 0..h * f {
        for x in 0..w * f {
            img.put_pixel(ox + x, oy + y, Rgb(px(y / f, x / f)));
        }
    }
}

/// original | view 1 | view 2 per row; `views` holds [2n, 3, S, S] plain RGB in [0, 1].
pub fn grid(ds: &Dataset, views: &[f32], size: usize, scale: usize) -> RgbImage {
    let n = ds.len();
    let side = ds.height.max(ds.width).max(size);
    let cell = (side * scale) as u32;
    let (gw, gh) = (3 * cell + 4 * GAP, n as u32 * (cell + GAP) + GAP);
    let mut img = RgbImage::from_pixel(gw, gh, BACKGROUND);
    let to_u8 = |v: f32| (v.clamp(0.0, 1.0) * 255.0).round() as u8;
    let s = size as u32;
    let plane = size * size;
    for r in 0..n {
        let y0 = GAP + r as u32 * (cell + GAP);
        let src = ds.image(r);
        let w = ds.width;
        let at = |col: u32| Cell {
            x: GAP + col * (cell + GAP),
            y: y0,
            side: cell,
        };
        blit(&mut img, at(0), ds.height as u32, w as u32, |y, x| {
            let i = (y as usize * w + x as usize) * 3;
            [src[i], src[i + 1], src[i + 2]]
        });
        for (col, row) in [r, n + r].into_iter().enumerate() {
            let v = &views[row * 3 * plane..(row + 1) * 3 * plane];
            blit(&mut img, at(col as u32 + 1), s, s, |y, x| {
                let i = (y * s + x) as usize;
                [to_u8(v[i]), to_u8(v[plane + i]), to_u8(v[2 * plane + i])]
            });
        }
    }
    img
}
