//! Plain-Rust CPU references of every op: the maths written once, slowly and clearly.
//! Tests compare each GPU kernel with these and these with PyTorch's values.

pub mod conv2d;
pub mod elementwise;
