//! Plain-Rust CPU references of every op: the maths written once, slowly and clearly.
//! Tests compare each GPU kernel with these and these with PyTorch's values.

pub mod augment;
pub mod batchnorm;
pub mod conv2d;
pub mod cross_entropy;
pub mod elementwise;
pub mod graph;
pub mod l2norm;
pub mod matmul;
pub mod ntxent;
pub mod optim;
pub mod pool;
