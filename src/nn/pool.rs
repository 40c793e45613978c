//! Host side of `shaders/pool.wgsl`: max-pool 3×3 stride 2 padding 1 (with argmax) and global
//! average pooling, forward and backward, one dispatch each.

use crate::gpu::{grid_1d, Gpu, GpuError, Program, Tensor, Uniform};

#[repr(C)]
#[derive(Clone, Copy, Default, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    planes: u32,
    h: u32,
    w: u32,
    ho: u32,
    wo: u32,
    tiles_w: u32,
    hw: u32,
    total: u32,
    seg: u32,
    q8: u32,
    r8: u32,
    inv_hw: f32,
}

/// Adjacent invocations that stream through one contiguous segment (LANES in the shader).
const LANES: usize = 8;
const MAX_PLANES_Y: usize = 65535;

/// Output size of a 3×3, stride-2, padding-1 max-pool: floor((H + 2 − 3) / 2) + 1.
pub fn maxpool_out_hw(h: usize, w: usize) -> (usize, usize) {
    (h.div_ceil(2), w.div_ceil(2))
}

fn nchw(op: &str, t: &Tensor) -> Result<(usize, usize, usize, usize), GpuError> {
    match t.shape[..] {
        [n, c, h, w] => Ok((n, c, h, w)),
        _ => Err(GpuError::Device(format!(
            "{op}: '{}' has shape {:?}; expected [N,C,H,W]",
            t.name, t.shape
        ))),
    }
}

fn expect(op: &str, t: &Tensor, want: &[usize], other: &Tensor) -> Result<(), GpuError> {
    if t.shape != want {
        return Err(GpuError::shapes(op, (&t.name, &t.shape), (&other.name, &other.shape)));
    }
    Ok(())
}

/// Grid of 8×8 tiles over an `h`×`w` plane, times `planes` (spilling into z past 65535).
fn tile_grid(planes: usize, h: usize, w: usize) -> ([u32; 3], u32) {
    let (tw, th) = (w.div_ceil(8), h.div_ceil(8));
    let (py, pz) = if planes <= MAX_PLANES_Y {
        (planes, 1)
    } else {
        (MAX_PLANES_Y, planes.div_ceil(MAX_PLANES_Y))
    };
    ([(tw * th) as u32, py as u32, pz as u32], tw as u32)
}

fn one(gpu: &Gpu, entry: &str, p: &Params, buffers: [&Tensor; 6], grid: [u32; 3]) -> Result<Program, GpuError> {
    let u = Uniform::new(gpu, entry, p);
    let mut b: Vec<&wgpu::Buffer> = vec![&u.buffer];
    b.extend(buffers.iter().map(|t| &t.buffer));
    let mut prog = Program::new();
    prog.push(gpu.launch("pool", entry, &b, grid)?);
    Ok(prog)
}

/// y = max over each 3×3 window (stride 2, padding 1, padding acting as −inf), and `argmax`
/// (u32, same shape as y) = h·W + w of the chosen input in its plane; ties keep the first in
/// row-major window order. x [N,C,H,W] → y, argmax [N,C,Ho,Wo] with (Ho,Wo) = `maxpool_out_hw`.
pub fn maxpool_forward(gpu: &Gpu, x: &Tensor, y: &Tensor, argmax: &Tensor) -> Result<Program, GpuError> {
    const OP: &str = "max-pool forward";
    let (n, c, h, w) = nchw(OP, x)?;
    let (ho, wo) = maxpool_out_hw(h, w);
    expect(OP, y, &[n, c, ho, wo], x)?;
    expect(OP, argmax, &[n, c, ho, wo], x)?;
    if x.numel() == 0 {
        return Ok(Program::new());
    }
    let (grid, tiles_w) = tile_grid(n * c, ho, wo);
    let p = Params {
        planes: (n * c) as u32,
        h: h as u32,
        w: w as u32,
        ho: ho as u32,
        wo: wo as u32,
        tiles_w,
        hw: (h * w) as u32,
        ..Default::default()
    };
    one(gpu, "maxpool_forward", &p, [x, y, argmax, x, x, x], grid)
}

/// dx (overwritten, [N,C,H,W]) = Σ of dy over the windows whose argmax is that input, gathered
/// from the windows containing it (no atomics). dy, argmax: [N,C,Ho,Wo].
pub fn maxpool_backward(gpu: &Gpu, dy: &Tensor, argmax: &Tensor, dx: &Tensor) -> Result<Program, GpuError> {
    const OP: &str = "max-pool backward";
    let (n, c, h, w) = nchw(OP, dx)?;
    let (ho, wo) = maxpool_out_hw(h, w);
    expect(OP, dy, &[n, c, ho, wo], dx)?;
    expect(OP, argmax, &[n, c, ho, wo], dx)?;
    if dx.numel() == 0 {
        return Ok(Program::new());
    }
    // One invocation per 2×2 block of inputs.
    let (grid, tiles_w) = tile_grid(n * c, h.div_ceil(2), w.div_ceil(2));
    let p = Params {
        planes: (n * c) as u32,
        h: h as u32,
        w: w as u32,
        ho: ho as u32,
        wo: wo as u32,
        tiles_w,
        hw: (h * w) as u32,
        ..Default::default()
    };
    one(gpu, "maxpool_backward", &p, [dx, dx, dx, dy, argmax, dx], grid)
}

fn avg_params(n: usize, c: usize, hw: usize) -> Params {
    Params {
        planes: (n * c) as u32,
        hw: hw as u32,
        total: (n * c * hw) as u32,
        q8: (LANES / hw) as u32,
        r8: (LANES % hw) as u32,
        inv_hw: 1.0 / hw as f32,
        ..Default::default()
    }
}

/// y[n,c] = mean over h, w of x[n,c,h,w]: x [N,C,H,W] → y [N,C].
pub fn global_avgpool_forward(gpu: &Gpu, x: &Tensor, y: &Tensor) -> Result<Program, GpuError> {
    const OP: &str = "global average pool forward";
    let (n, c, h, w) = nchw(OP, x)?;
    expect(OP, y, &[n, c], x)?;
    if x.numel() == 0 {
        return Ok(Program::new());
    }
    let p = avg_params(n, c, h * w);
    let grid = grid_1d((n * c).div_ceil(64) as u32);
    one(gpu, "avgpool_forward", &p, [x, y, x, x, x, x], grid)
}

/// dx[n,c,h,w] = dy[n,c] / (H·W) (overwritten): dy [N,C] → dx [N,C,H,W].
pub fn global_avgpool_backward(gpu: &Gpu, dy: &Tensor, dx: &Tensor) -> Result<Program, GpuError> {
    const OP: &str = "global average pool backward";
    let (n, c, h, w) = nchw(OP, dx)?;
    expect(OP, dy, &[n, c], dx)?;
    if dx.numel() == 0 {
        return Ok(Program::new());
    }
    // ≥ 16 elements per invocation, at most 1024 workgroups; LANES invocations share a segment.
    let groups = dx.numel().div_ceil(256 * 16).clamp(1, 1024);
    let p = Params {
        seg: (dx.numel().div_ceil(groups * 256 / LANES).div_ceil(LANES) * LANES) as u32,
        ..avg_params(n, c, h * w)
    };
    one(
        gpu,
        "avgpool_backward",
        &p,
        [dx, dx, dx, dy, dx, dx],
        [groups as u32, 1, 1],
    )
}
