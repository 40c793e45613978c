//! Losses: NT-Xent for contrastive pre-training, softmax cross-entropy for the linear probe.

pub mod cross_entropy;
pub mod ntxent;

pub use cross_entropy::CrossEntropy;
pub use ntxent::NtXent;
