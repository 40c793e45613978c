//! Layers: each owns its kernels' dispatches for planned shapes, with explicit forward and backward.

pub mod conv2d;
pub mod elementwise;
