//! Host side of `shaders/l2norm.wgsl`: row-wise L2 normalisation y = x / max(‖x‖, 1e-12) of
//! x [M, D] and its backward, one dispatch each.

use crate::gpu::{grid_1d, Gpu, GpuError, KernelFlavor, Program, Tensor, Uniform};

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    m: u32,
    d: u32,
    _pad: [u32; 2],
}

fn rows(op: &str, x: &Tensor) -> Result<(usize, usize), GpuError> {
    match x.shape[..] {
        [m, d] => Ok((m, d)),
        _ => Err(GpuError::Device(format!(
            "{op}: '{}' has shape {:?}; expected [M,D]",
            x.name, x.shape
        ))),
    }
}

fn same(op: &str, a: &Tensor, b: &Tensor) -> Result<(), GpuError> {
    if a.shape != b.shape {
        return Err(GpuError::shapes(op, (&a.name, &a.shape), (&b.name, &b.shape)));
    }
    Ok(())
}

/// One dispatch of `entry` (+ `_wg`: a workgroup per row, or `_row`: an invocation per row).
fn launch(
    gpu: &Gpu,
    flavor: KernelFlavor,
    entry: &str,
    m: usize,
    d: usize,
    t: [&Tensor; 5],
) -> Result<Program, GpuError> {
    let mut prog = Program::new();
    if m == 0 || d == 0 {
        return Ok(prog);
    }
    let u = Uniform::new(
        gpu,
        entry,
        &Params {
            m: m as u32,
            d: d as u32,
            _pad: [0; 2],
        },
    );
    let (suffix, groups) = match flavor {
        KernelFlavor::Tiled => ("wg", m),
        KernelFlavor::Rows => ("row", m.div_ceil(64)),
    };
    let b = [
        &u.buffer,
        &t[0].buffer,
        &t[1].buffer,
        &t[2].buffer,
        &t[3].buffer,
        &t[4].buffer,
    ];
    prog.push(gpu.launch("l2norm", &format!("{entry}_{suffix}"), &b, grid_1d(groups as u32))?);
    Ok(prog)
}

/// y = x / max(‖x‖, 1e-12) for each row of x [M, D] (torch `F.normalize`); a zero row gives zeros.
pub fn l2_normalize_forward(gpu: &Gpu, x: &Tensor, y: &Tensor) -> Result<Program, GpuError> {
    l2_normalize_forward_with(gpu, gpu.flavor, x, y)
}

/// `l2_normalize_forward` with an explicit kernel flavour (tests run both).
pub fn l2_normalize_forward_with(gpu: &Gpu, flavor: KernelFlavor, x: &Tensor, y: &Tensor) -> Result<Program, GpuError> {
    const OP: &str = "L2 normalize forward";
    let (m, d) = rows(OP, x)?;
    same(OP, x, y)?;
    launch(gpu, flavor, "forward", m, d, [x, y, x, x, x])
}

/// dx = (dy − y·(y·dy)) / ‖x‖ per row when ‖x‖ > 1e-12, else dy / 1e-12 (overwritten). `y` is the
/// forward output.
pub fn l2_normalize_backward(gpu: &Gpu, x: &Tensor, y: &Tensor, dy: &Tensor, dx: &Tensor) -> Result<Program, GpuError> {
    l2_normalize_backward_with(gpu, gpu.flavor, x, y, dy, dx)
}

/// `l2_normalize_backward` with an explicit kernel flavour (tests run both).
pub fn l2_normalize_backward_with(
    gpu: &Gpu,
    flavor: KernelFlavor,
    x: &Tensor,
    y: &Tensor,
    dy: &Tensor,
    dx: &Tensor,
) -> Result<Program, GpuError> {
    const OP: &str = "L2 normalize backward";
    let (m, d) = rows(OP, x)?;
    same(OP, x, y)?;
    same(OP, x, dy)?;
    same(OP, x, dx)?;
    launch(gpu, flavor, "backward", m, d, [x, x, y, dy, dx])
}
