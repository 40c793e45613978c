//! Host side of `shaders/conv2d.wgsl`: conv2d forward, backward-input and backward-weight as implicit GEMMs.
//! NCHW activations, OIHW weights, zero padding, no bias (BatchNorm follows every conv).

use crate::gpu::{grid_1d, Dispatch, Gpu, GpuError, KernelFlavor, Program, Tensor, Uniform};

/// Stride and zero padding, the same along both spatial axes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct ConvGeom {
    pub stride: usize,
    pub pad: usize,
}

/// Output size: floor((H + 2p − k)/s) + 1 per axis; 0 where the kernel does not fit (or stride is 0).
pub fn conv2d_out_hw(h: usize, w: usize, kh: usize, kw: usize, g: ConvGeom) -> (usize, usize) {
    let out = |x: usize, k: usize| {
        if g.stride == 0 || x + 2 * g.pad < k {
            0
        } else {
            (x + 2 * g.pad - k) / g.stride + 1
        }
    };
    (out(h, kh), out(w, kw))
}

#[repr(C)]
#[derive(Clone, Copy, Default, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    n: u32,
    c: u32,
    h: u32,
    w: u32,
    o: u32,
    kh: u32,
    kw: u32,
    ho: u32,
    wo: u32,
    stride: u32,
    pad: u32,
    rows: u32,
    cols: u32,
    row_blocks: u32,
    col_tiles: u32,
    groups: u32,
    splits: u32,
    chunk: u32,
    hc: u32,
    wc: u32,
}

/// Rows kernels: 8 GEMM rows per workgroup, 4 columns per invocation.
const ROWS_M: usize = 8;
const ROWS_N: usize = 4;
/// Tiled kernels: 64×64 output tiles.
const TILE: usize = 64;

/// The kernels actually used: the rows flavour needs subgroups of at least 8 invocations (it broadcasts 8
/// rows); without them a CPU driver gets the tiled kernels, which are correct everywhere.
fn effective(gpu: &Gpu, flavor: KernelFlavor) -> KernelFlavor {
    let subgroups = gpu.features.contains(wgpu::Features::SUBGROUP) && gpu.info.subgroup_min_size >= 8;
    match flavor {
        KernelFlavor::Rows if subgroups => KernelFlavor::Rows,
        _ => KernelFlavor::Tiled,
    }
}

/// Shapes of one convolution, checked against each other.
#[derive(Clone, Copy, Debug)]
struct Dims {
    n: usize,
    c: usize,
    h: usize,
    w: usize,
    o: usize,
    kh: usize,
    kw: usize,
    ho: usize,
    wo: usize,
    g: ConvGeom,
}

impl Dims {
    /// From x [N,C,H,W] and w [O,C,KH,KW]; `out` ([N,O,Ho,Wo]) must match what they imply.
    fn new(op: &str, x: &Tensor, w: &Tensor, out: &Tensor, g: ConvGeom) -> Result<Dims, GpuError> {
        if x.shape.len() != 4 || w.shape.len() != 4 || w.shape[1] != x.shape[1] {
            return Err(GpuError::shapes(op, (&x.name, &x.shape), (&w.name, &w.shape)));
        }
        let (n, c, h, wd) = (x.shape[0], x.shape[1], x.shape[2], x.shape[3]);
        let (o, kh, kw) = (w.shape[0], w.shape[2], w.shape[3]);
        let (ho, wo) = conv2d_out_hw(h, wd, kh, kw, g);
        if g.stride == 0 || ho == 0 || wo == 0 || kh == 0 || kw == 0 {
            let what = format!(
                "{op} (stride {}, padding {}: kernel must fit the padded input)",
                g.stride, g.pad
            );
            return Err(GpuError::shapes(&what, (&x.name, &x.shape), (&w.name, &w.shape)));
        }
        let expected = [n, o, ho, wo];
        if out.shape != expected {
            let name = format!("the output implied by {} and {}", x.name, w.name);
            return Err(GpuError::shapes(op, (&out.name, &out.shape), (&name, &expected)));
        }
        let d = Dims {
            n,
            c,
            h,
            w: wd,
            o,
            kh,
            kw,
            ho,
            wo,
            g,
        };
        if [n * c * h * wd, n * o * ho * wo, o * c * kh * kw]
            .iter()
            .any(|&e| e > i32::MAX as usize)
        {
            return Err(GpuError::Device(format!(
                "{op}: tensors over 2^31 elements are not supported"
            )));
        }
        Ok(d)
    }

    fn params(&self) -> Params {
        Params {
            n: self.n as u32,
            c: self.c as u32,
            h: self.h as u32,
            w: self.w as u32,
            o: self.o as u32,
            kh: self.kh as u32,
            kw: self.kw as u32,
            ho: self.ho as u32,
            wo: self.wo as u32,
            stride: self.g.stride as u32,
            pad: self.g.pad as u32,
            ..Default::default()
        }
    }
}

/// Invocations of a rows workgroup for `cols` GEMM columns: a multiple of 8 (the CPU SIMD width), at most 64.
fn rows_wg(cols: usize) -> usize {
    cols.div_ceil(ROWS_N).next_multiple_of(8).min(64)
}

/// Fill in the row/column tiling of `p` for `rows` × `cols` GEMM outputs (× `layers` splits);
/// returns the rows kernels' workgroup size.
fn tiling(p: &mut Params, flavor: KernelFlavor, rows: usize, cols: usize, layers: usize) -> usize {
    let (rm, cn, wg) = match flavor {
        KernelFlavor::Rows => {
            let wg = rows_wg(cols);
            (ROWS_M, wg * ROWS_N, wg)
        }
        KernelFlavor::Tiled => (TILE, TILE, 256),
    };
    p.rows = rows as u32;
    p.cols = cols as u32;
    p.row_blocks = rows.div_ceil(rm) as u32;
    p.col_tiles = cols.div_ceil(cn) as u32;
    p.groups = p.row_blocks * p.col_tiles * layers as u32;
    wg
}

/// One dispatch of `pass` over `p.groups` workgroups; `consts` are the rows kernels' extra pipeline constants.
#[allow(clippy::too_many_arguments)]
fn launch(
    gpu: &Gpu,
    pass: &str,
    flavor: KernelFlavor,
    p: &Params,
    u: &Uniform,
    wg: usize,
    consts: &[(&str, f64)],
    bufs: [&Tensor; 3],
) -> Result<Dispatch, GpuError> {
    let k = match flavor {
        KernelFlavor::Rows => {
            let mut c = vec![("WG", wg as f64), ("KH", p.kh as f64), ("KW", p.kw as f64)];
            c.extend_from_slice(consts);
            gpu.kernel_with("conv2d_rows", &format!("{pass}_rows"), &c)?
        }
        KernelFlavor::Tiled => gpu.kernel("conv2d", &format!("{pass}_tiled"))?,
    };
    let bufs = [&u.buffer, &bufs[0].buffer, &bufs[1].buffer, &bufs[2].buffer];
    gpu.dispatch(&k, &bufs, grid_1d(p.groups))
}

fn single(d: Dispatch) -> Program {
    let mut prog = Program::new();
    prog.push(d);
    prog
}

/// y = conv(x, w): x [N,C,H,W], w [O,C,KH,KW], y [N,O,Ho,Wo]. Kernel flavour from `gpu.flavor`.
pub fn conv2d_forward(gpu: &Gpu, x: &Tensor, w: &Tensor, y: &Tensor, g: ConvGeom) -> Result<Program, GpuError> {
    conv2d_forward_with(gpu, x, w, y, g, gpu.flavor)
}

/// `conv2d_forward` with an explicit kernel flavour (tests check both).
pub fn conv2d_forward_with(
    gpu: &Gpu,
    x: &Tensor,
    w: &Tensor,
    y: &Tensor,
    g: ConvGeom,
    flavor: KernelFlavor,
) -> Result<Program, GpuError> {
    let d = Dims::new("conv2d forward", x, w, y, g)?;
    if y.numel() == 0 || d.c == 0 {
        return Ok(cleared(y));
    }
    let flavor = effective(gpu, flavor);
    let mut p = d.params();
    let wg = tiling(&mut p, flavor, d.n * d.ho * d.wo, d.o, 1);
    let u = Uniform::new(gpu, "conv2d::forward", &p);
    Ok(single(launch(gpu, "forward", flavor, &p, &u, wg, &[], [x, w, y])?))
}

/// dx = ∂(Σ y·dy)/∂x: dy [N,O,Ho,Wo], w [O,C,KH,KW], dx [N,C,H,W] (overwritten).
pub fn conv2d_backward_input(
    gpu: &Gpu,
    dy: &Tensor,
    w: &Tensor,
    dx: &Tensor,
    g: ConvGeom,
) -> Result<Program, GpuError> {
    conv2d_backward_input_with(gpu, dy, w, dx, g, gpu.flavor)
}

/// `conv2d_backward_input` with an explicit kernel flavour.
pub fn conv2d_backward_input_with(
    gpu: &Gpu,
    dy: &Tensor,
    w: &Tensor,
    dx: &Tensor,
    g: ConvGeom,
    flavor: KernelFlavor,
) -> Result<Program, GpuError> {
    if w.shape.len() != 4 || dy.shape.len() != 4 || dy.shape[1] != w.shape[0] {
        return Err(GpuError::shapes(
            "conv2d backward-input",
            (&dy.name, &dy.shape),
            (&w.name, &w.shape),
        ));
    }
    let d = Dims::new("conv2d backward-input", dx, w, dy, g)?;
    if dx.numel() == 0 || d.o == 0 {
        return Ok(cleared(dx));
    }
    let flavor = effective(gpu, flavor);
    let s = d.g.stride;
    let mut p = d.params();
    // One class per residue of (iy + pad, ix + pad) mod s; each holds at most ceil(H/s) × ceil(W/s) pixels.
    p.hc = d.h.div_ceil(s) as u32;
    p.wc = d.w.div_ceil(s) as u32;
    let rows = d.n * p.hc as usize * p.wc as usize;
    match flavor {
        // All classes in one grid.
        KernelFlavor::Tiled => {
            tiling(&mut p, flavor, rows, d.c, s * s);
            let u = Uniform::new(gpu, "conv2d::backward_input", &p);
            Ok(single(launch(
                gpu,
                "backward_input",
                flavor,
                &p,
                &u,
                0,
                &[],
                [dy, w, dx],
            )?))
        }
        // One dispatch per class, whose taps are then pipeline constants.
        KernelFlavor::Rows => {
            let wg = tiling(&mut p, flavor, rows, d.c, 1);
            let u = Uniform::new(gpu, "conv2d::backward_input", &p);
            let mut prog = Program::new();
            for class in 0..s * s {
                let consts = [("S", s as f64), ("RY", (class / s) as f64), ("RX", (class % s) as f64)];
                prog.push(launch(gpu, "backward_input", flavor, &p, &u, wg, &consts, [dy, w, dx])?);
            }
            Ok(prog)
        }
    }
}

/// dw = ∂(Σ y·dy)/∂w: x [N,C,H,W], dy [N,O,Ho,Wo], dw [O,C,KH,KW] (overwritten). The reduction over
/// N·Ho·Wo is split over workgroups into a scratch buffer allocated here, then summed by a second dispatch.
pub fn conv2d_backward_weight(
    gpu: &Gpu,
    x: &Tensor,
    dy: &Tensor,
    dw: &Tensor,
    g: ConvGeom,
) -> Result<Program, GpuError> {
    conv2d_backward_weight_with(gpu, x, dy, dw, g, gpu.flavor)
}

/// `conv2d_backward_weight` with an explicit kernel flavour.
pub fn conv2d_backward_weight_with(
    gpu: &Gpu,
    x: &Tensor,
    dy: &Tensor,
    dw: &Tensor,
    g: ConvGeom,
    flavor: KernelFlavor,
) -> Result<Program, GpuError> {
    if x.shape.len() != 4 || dy.shape.len() != 4 || dy.shape[0] != x.shape[0] {
        return Err(GpuError::shapes(
            "conv2d backward-weight",
            (&x.name, &x.shape),
            (&dy.name, &dy.shape),
        ));
    }
    let d = Dims::new("conv2d backward-weight", x, dw, dy, g)?;
    let ckk = d.c * d.kh * d.kw;
    if dw.numel() == 0 || d.n == 0 {
        return Ok(cleared(dw));
    }
    let flavor = effective(gpu, flavor);
    let mut p = d.params();
    let (rows, cols) = match flavor {
        KernelFlavor::Rows => (ckk, d.o),
        KernelFlavor::Tiled => (d.o, ckk),
    };
    let wg = tiling(&mut p, flavor, rows, cols, 1);
    let splits = weight_splits(gpu, &d, flavor, p.groups as usize);
    let rows_per_split = (d.n * d.ho).div_ceil(splits);
    let splits = (d.n * d.ho).div_ceil(rows_per_split);
    p.splits = splits as u32;
    p.chunk = (rows_per_split * d.wo) as u32;
    p.groups *= splits as u32;
    let u = Uniform::new(gpu, "conv2d::backward_weight", &p);
    if splits == 1 {
        return Ok(single(launch(
            gpu,
            "backward_weight",
            flavor,
            &p,
            &u,
            wg,
            &[],
            [x, dy, dw],
        )?));
    }
    let partial = Tensor::zeros(gpu, &format!("{}.split_partials", dw.name), &[splits, d.o, ckk])?;
    let mut prog = single(launch(
        gpu,
        "backward_weight",
        flavor,
        &p,
        &u,
        wg,
        &[],
        [x, dy, &partial],
    )?);
    let total = dw.numel();
    let rp = Params {
        rows: total as u32,
        splits: splits as u32,
        ..Default::default()
    };
    let u = Uniform::new(gpu, "conv2d::reduce_splits", &rp);
    let grid = grid_1d((total as u32).div_ceil(256));
    prog.push(gpu.launch(
        "conv2d",
        "reduce_splits",
        &[&u.buffer, &partial.buffer, &dy.buffer, &dw.buffer],
        grid,
    )?);
    Ok(prog)
}

/// How many pieces to cut the N·Ho·Wo reduction into: enough workgroups to fill the device (GPUs want
/// thousands of threads; CPUs a few per core), each piece at least a few thousand terms long, and the
/// scratch buffer within one storage binding.
fn weight_splits(gpu: &Gpu, d: &Dims, flavor: KernelFlavor, groups: usize) -> usize {
    let target: usize = match flavor {
        KernelFlavor::Rows => 256,
        KernelFlavor::Tiled => 1024,
    };
    let image_rows = d.n * d.ho;
    let min_rows = 2048usize.div_ceil(d.wo).max(1);
    let by_len = (image_rows / min_rows).max(1);
    let per_split = (d.o * d.c * d.kh * d.kw * 4) as u64;
    let by_mem = (gpu.limits.max_storage_buffer_binding_size / per_split.max(1)).max(1) as usize;
    target.div_ceil(groups).min(by_len).min(by_mem).max(1)
}

fn cleared(t: &Tensor) -> Program {
    let mut p = Program::new();
    p.clear(&t.buffer);
    p
}
