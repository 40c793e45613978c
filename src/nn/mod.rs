//! Layers: each owns its kernels' dispatches for planned shapes, with explicit forward and backward.

pub mod batchnorm;
pub mod elementwise;
pub mod l2norm;
pub mod pool;
