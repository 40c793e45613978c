//! Layers: each owns its kernels' dispatches for planned shapes, with explicit forward and
//! backward; `graph` strings them into a model, `arch` builds the encoders and the head.

pub mod arch;
pub mod batchnorm;
pub mod conv2d;
pub mod elementwise;
pub mod finite;
pub mod graph;
pub mod l2norm;
pub mod linear;
pub mod matmul;
pub mod model;
pub mod pool;
