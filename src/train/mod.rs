//! Training: settings, the step loop, checkpoints and metrics.

pub mod checkpoint;
pub mod config;
pub mod metrics;
pub mod setup;
pub mod trainer;

pub use config::TrainConfig;
pub use trainer::{StepRecord, Trainer};
