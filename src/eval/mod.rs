//! Judging an encoder: features of a dataset, the kNN monitor, the linear probe, fine-tuning.

pub mod embed;
pub mod features;
pub mod finetune;
pub mod knn;
pub mod load;
pub mod probe;
pub mod retrieval;
