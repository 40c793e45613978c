//! Layers: each owns its kernels' dispatches for planned shapes, with explicit forward and backward.

pub mod elementwise;
pub mod linear;
pub mod matmul;
