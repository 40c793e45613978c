//! Host side of `shaders/finite.wgsl`: a guard that counts NaN/Inf values, so that a diverged
//! step is caught even where other kernels' max/clamp would hide a NaN.

use crate::gpu::{Dispatch, Gpu, GpuError, Tensor, Uniform};

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    n: u32,
    index: u32,
    _pad: [u32; 2],
}

/// Writes the number of non-finite values of `x` (as f32) into `out[index]`.
pub fn count_nonfinite(gpu: &Gpu, x: &Tensor, out: &Tensor, index: usize) -> Result<Dispatch, GpuError> {
    if index >= out.numel() {
        return Err(GpuError::Device(format!(
            "count_nonfinite: index {index} outside '{}'",
            out.name
        )));
    }
    let u = Uniform::new(
        gpu,
        "finite",
        &Params {
            n: x.numel() as u32,
            index: index as u32,
            _pad: [0; 2],
        },
    );
    gpu.launch(
        "finite",
        "count_nonfinite",
        &[&u.buffer, &x.buffer, &out.buffer],
        [1, 1, 1],
    )
}
