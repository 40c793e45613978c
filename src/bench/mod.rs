//! Benchmarks (not timed tests).

pub mod augment;
