//! Benchmarks (`simclr bench ...`): timings, never asserted in tests.
//! Benchmarks (not timed tests).
pub mod augment;
pub mod loss;
