//! Benchmarks (`simclr bench ...`): timings, never asserted in tests.

pub mod loss;
