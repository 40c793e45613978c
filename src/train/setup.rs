//! From a `TrainConfig` to the pieces of a run: the data, the largest batch a device holds, the
//! augmentation, optimizer and learning-rate settings.

use super::TrainConfig;
use crate::augment::AugmentConfig;
use crate::data::{self, Dataset, DatasetKind, Split};
use crate::nn::arch;
use crate::optim::schedule;
use anyhow::{bail, Result};

/// The largest batch (source images, two views each) whose activations fit a storage
/// binding of `limit` bytes.
pub fn largest_batch(cfg: &TrainConfig, limit: u64) -> usize {
    limit as usize / (2 * largest_activation(cfg).1)
}

/// Per-sample bytes of the largest activation: what bounds the batch on a device.
pub(super) fn largest_activation(cfg: &TrainConfig) -> (usize, usize) {
    let g = arch::build(&cfg.model());
    g.acts
        .iter()
        .map(|s| s.iter().product::<usize>() * 4)
        .enumerate()
        .max_by_key(|x| x.1)
        .unwrap()
}

/// Load the training split, downloading CIFAR-10 when allowed and absent.
pub fn load_train_data(cfg: &TrainConfig) -> Result<Dataset> {
    let dir = data::resolve_data_dir(cfg.data.as_deref());
    let loaded = data::load(DatasetKind::Cifar10, &dir, Split::Train);
    let ds = match loaded {
        Ok(ds) => ds,
        Err(e) if cfg.download => {
            eprintln!(
                "CIFAR-10 not found in {} ({e:#}); downloading it there (use --no-download to refuse).",
                dir.display()
            );
            data::download(DatasetKind::Cifar10, &dir, None)?;
            data::load(DatasetKind::Cifar10, &dir, Split::Train)?
        }
        Err(e) => {
            return Err(e.context(format!(
                "CIFAR-10 not found in {} and --no-download was given",
                dir.display()
            )))
        }
    };
    Ok(match cfg.limit_train {
        Some(n) if n < ds.len() => ds.subset(&(0..n as u32).collect::<Vec<_>>()),
        _ => ds,
    })
}

pub(super) fn lr_scaling(cfg: &TrainConfig) -> schedule::LrScaling {
    if cfg.lr_scaling == "sqrt" {
        schedule::LrScaling::Sqrt
    } else {
        schedule::LrScaling::Linear
    }
}

pub fn augment_config(cfg: &TrainConfig) -> AugmentConfig {
    let mut a = AugmentConfig::for_size(cfg.image_size);
    a.jitter_strength = cfg.jitter_strength;
    a.jitter_p = cfg.jitter_p;
    a.gray_p = cfg.gray_p;
    a.flip_p = cfg.flip_p;
    a.crop_scale.0 = cfg.crop_min_scale;
    if let Some(p) = cfg.blur_p {
        a.blur_p = p;
    }
    a
}

pub(super) fn optim_config(cfg: &TrainConfig) -> Result<crate::optim::OptimConfig> {
    use crate::optim::{OptimConfig, OptimizerKind};
    let kind = match cfg.optimizer.as_str() {
        "lars" => OptimizerKind::Lars,
        "sgd" => OptimizerKind::Sgd,
        "adamw" => OptimizerKind::AdamW,
        o => bail!("unknown optimizer '{o}'"),
    };
    Ok(OptimConfig {
        kind,
        momentum: cfg.momentum as f64,
        weight_decay: cfg.weight_decay as f64,
        eta: cfg.eta as f64,
        ..Default::default()
    })
}
