//! simclr-wgpu: a portable SimCLR trainer whose numeric core runs as WGSL compute shaders.
//! Layers (imports point down only): cli → train/eval → nn/loss/optim/augment → data → gpu;
//! `reference` holds the plain-Rust CPU maths every kernel is tested against.

pub mod app;
pub mod augment;
pub mod bench;
pub mod cli;
pub mod data;
pub mod eval;
pub mod gpu;
pub mod loss;
pub mod nn;
pub mod optim;
pub mod reference;
pub mod train;
