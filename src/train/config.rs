//! Training settings: defaults from the official SimCLR CIFAR-10 recipe; every field is a key of
//! the TOML config file (`--config run.toml`) and a command-line flag (flags override the file).

use crate::nn::arch::{Arch, ModelConfig};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TrainConfig {
    /// Run name: outputs go to `<runs_dir>/<name>`.
    pub name: String,
    pub runs_dir: PathBuf,
    /// Dataset folder; None = $SIMCLR_DATA, else ./data.
    pub data: Option<PathBuf>,
    pub download: bool,
    pub arch: Arch,
    pub width: f32,
    pub image_size: usize,
    pub head_layers: usize,
    pub head_hidden: Option<usize>,
    pub out_dim: usize,
    /// Source images per step (each gives two views).
    pub batch: usize,
    pub epochs: usize,
    pub warmup_epochs: usize,
    /// Base learning rate before batch scaling.
    pub lr: f64,
    /// "linear" (lr × B/256) or "sqrt" (lr × √B).
    pub lr_scaling: String,
    /// "lars", "sgd" or "adamw".
    pub optimizer: String,
    pub momentum: f32,
    pub weight_decay: f32,
    /// LARS trust coefficient.
    pub eta: f32,
    pub tau: f32,
    pub jitter_strength: f32,
    pub jitter_p: f32,
    pub gray_p: f32,
    pub flip_p: f32,
    pub crop_min_scale: f32,
    /// Gaussian blur probability; unset: 0.5 above 32 px, off at 32 px (as SimCLR).
    pub blur_p: Option<f32>,
    pub seed: u64,
    pub knn_k: usize,
    pub knn_t: f32,
    /// Run the kNN monitor every this many epochs (0 = never).
    pub knn_every: usize,
    /// Number of checkpoints kept.
    pub keep: usize,
    /// Train on the first N training images only (quick runs and tests).
    pub limit_train: Option<usize>,
    /// Evaluate kNN on the first N test images only.
    pub limit_test: Option<usize>,
    /// Stop after this many steps in total (tests, benchmarks).
    pub max_steps: Option<usize>,
}

impl Default for TrainConfig {
    fn default() -> Self {
        TrainConfig {
            name: "simclr".into(),
            runs_dir: "runs".into(),
            data: None,
            download: true,
            arch: Arch::Resnet18,
            width: 1.0,
            image_size: 32,
            head_layers: 2,
            head_hidden: None,
            out_dim: 128,
            batch: 512,
            epochs: 200,
            warmup_epochs: 10,
            lr: 1.0,
            lr_scaling: "linear".into(),
            optimizer: "lars".into(),
            momentum: 0.9,
            weight_decay: 1e-4,
            eta: 1e-3,
            tau: 0.5,
            jitter_strength: 0.5,
            jitter_p: 0.8,
            gray_p: 0.2,
            flip_p: 0.5,
            crop_min_scale: 0.08,
            blur_p: None,
            seed: 0,
            knn_k: 200,
            knn_t: 0.1,
            knn_every: 1,
            keep: 3,
            limit_train: None,
            limit_test: None,
            max_steps: None,
        }
    }
}

impl TrainConfig {
    pub fn model(&self) -> ModelConfig {
        ModelConfig {
            arch: self.arch,
            width: self.width,
            image_size: self.image_size,
            head_layers: self.head_layers,
            head_hidden: self.head_hidden,
            out_dim: self.out_dim,
        }
    }

    pub fn from_toml_file(path: &std::path::Path) -> anyhow::Result<Self> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| anyhow::anyhow!("cannot read config file {}: {e}", path.display()))?;
        toml::from_str(&text).map_err(|e| anyhow::anyhow!("config file {}: {e}", path.display()))
    }

    pub fn run_dir(&self) -> PathBuf {
        self.runs_dir.join(&self.name)
    }

    /// Reject settings that cannot work, before any GPU work.
    pub fn validate(&self) -> anyhow::Result<()> {
        use anyhow::bail;
        if self.batch < 2 {
            bail!("batch must be at least 2 (got {}): NT-Xent needs negatives", self.batch);
        }
        if !(self.tau > 0.0) {
            bail!("temperature tau must be > 0 (got {})", self.tau);
        }
        if !(self.lr >= 0.0) {
            bail!("learning rate must be >= 0 (got {})", self.lr);
        }
        if !["linear", "sqrt"].contains(&self.lr_scaling.as_str()) {
            bail!("lr_scaling must be 'linear' or 'sqrt' (got '{}')", self.lr_scaling);
        }
        if !["lars", "sgd", "adamw"].contains(&self.optimizer.as_str()) {
            bail!("optimizer must be 'lars', 'sgd' or 'adamw' (got '{}')", self.optimizer);
        }
        if ![32, 64, 96, 224].contains(&self.image_size) {
            bail!("image_size must be 32, 64, 96 or 224 (got {})", self.image_size);
        }
        if !(2..=3).contains(&self.head_layers) {
            bail!("head_layers must be 2 or 3 (got {})", self.head_layers);
        }
        if !(self.width > 0.0) {
            bail!("width multiplier must be > 0 (got {})", self.width);
        }
        if self.out_dim == 0 || self.head_hidden == Some(0) {
            bail!("out_dim and head_hidden must be at least 1");
        }
        if self.knn_k == 0 || !(self.knn_t > 0.0) {
            bail!(
                "knn_k must be >= 1 and knn_t > 0 (got {} and {})",
                self.knn_k,
                self.knn_t
            );
        }
        if self.keep == 0 {
            bail!("keep must be at least 1 (the newest checkpoint is always kept)");
        }
        if self.max_steps == Some(0) {
            bail!("max_steps must be at least 1");
        }
        let plain = !self.name.is_empty() && self.name != "." && self.name != ".." && !self.name.contains(['/', '\\']);
        if !plain {
            bail!(
                "run name '{}' must be a plain folder name (no '/', not empty)",
                self.name
            );
        }
        if self.epochs == 0 {
            bail!("epochs must be at least 1");
        }
        Ok(())
    }
}
