//! SimCLR augmentation on the GPU: per-view parameters drawn on the CPU from a seeded generator
//! (`params`), one pass per batch that writes both views straight into the encoder input
//! (`pipeline`, `shaders/augment.wgsl`), and a headless preview grid (`preview`).
//! The CPU reference of the whole pipeline is `reference::augment`.

mod images;
pub mod params;
mod pipeline;
pub mod preview;

pub use images::GpuImages;
pub use params::{batch_rng, sample_batch, sample_crop, sample_params, AugmentConfig, CropBox, Jitter, ViewParams};
pub use pipeline::Augmenter;
