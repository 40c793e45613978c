//! Host side of `shaders/elementwise.wgsl`.

use crate::gpu::{grid_1d, Dispatch, Gpu, GpuError, Tensor, Uniform};

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    n: u32,
    relu: u32,
    _pad: [u32; 2],
}

fn launch(
    gpu: &Gpu,
    entry: &str,
    n: usize,
    relu: bool,
    a: &Tensor,
    b: &Tensor,
    out: &Tensor,
) -> Result<Dispatch, GpuError> {
    let u = Uniform::new(
        gpu,
        entry,
        &Params {
            n: n as u32,
            relu: relu as u32,
            _pad: [0; 2],
        },
    );
    gpu.launch(
        "elementwise",
        entry,
        &[&u.buffer, &a.buffer, &b.buffer, &out.buffer],
        grid_1d((n as u32).div_ceil(256)),
    )
}

fn same(op: &str, a: &Tensor, b: &Tensor) -> Result<(), GpuError> {
    if a.shape != b.shape {
        return Err(GpuError::shapes(op, (&a.name, &a.shape), (&b.name, &b.shape)));
    }
    Ok(())
}

/// out = max(x, 0)
pub fn relu_forward(gpu: &Gpu, x: &Tensor, out: &Tensor) -> Result<Dispatch, GpuError> {
    same("relu", x, out)?;
    launch(gpu, "relu_forward", x.numel(), false, x, x, out)
}

/// dx = dy where x > 0. `x` may be the forward input or output (same sign pattern).
pub fn relu_backward(gpu: &Gpu, x: &Tensor, dy: &Tensor, dx: &Tensor) -> Result<Dispatch, GpuError> {
    same("relu backward", x, dy)?;
    same("relu backward", dy, dx)?;
    launch(gpu, "relu_backward", x.numel(), false, x, dy, dx)
}

/// out = a + b (then ReLU if `relu`): the residual join.
pub fn add(gpu: &Gpu, a: &Tensor, b: &Tensor, out: &Tensor, relu: bool) -> Result<Dispatch, GpuError> {
    same("residual add", a, b)?;
    same("residual add", a, out)?;
    launch(gpu, "add", a.numel(), relu, a, b, out)
}
