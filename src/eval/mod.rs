//! Judging an encoder: features of a dataset, the kNN monitor.

pub mod features;
pub mod knn;
pub mod load;
