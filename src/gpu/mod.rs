//! Device layer: adapter choice, tensors, shader registry, pipeline cache and dispatch recording.
//! Everything above this module talks to the GPU only through these types.

mod device;
mod error;
mod kernel;
pub mod readback;
mod shaders;
pub mod tensor;

pub use device::{adapter_report, AdapterReport, BackendChoice, DeviceOptions, Gpu, KernelFlavor};
pub use error::GpuError;
pub use kernel::{grid_1d, validate_wgsl, Cmd, Dispatch, Kernel, Program, Uniform};
pub use readback::LaggedReadback;
pub use shaders::{shader_source, SHADERS};
pub use tensor::Tensor;
