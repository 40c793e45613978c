//! Label-efficient fine-tuning (SimCLR's semi-supervised evaluation): encoder + a linear head
//! trained end to end with cross-entropy on a class-balanced, seeded subset of the labels,
//! with random resized crop + flip (the trainer's GPU augmentation, colour ops off).

use super::features::{labels_of, normalized_batch};
use crate::augment::{batch_rng, AugmentConfig, Augmenter, GpuImages};
use crate::data::{mix_seed, Dataset, Sampler};
use crate::gpu::{Gpu, Program, Tensor};
use crate::loss::CrossEntropy;
use crate::nn::arch::ModelConfig;
use crate::nn::model::Model;
use crate::optim::{schedule::lr_at, OptimConfig, Optimizer, OptimizerKind, ParamSlot};
use crate::train::checkpoint::{check_compatible, HostTensor};
use anyhow::{bail, ensure, Result};
use rand::seq::SliceRandom;
use rand::SeedableRng;
use std::collections::BTreeMap;

/// How many labels fine-tuning may use.
#[derive(Clone, Copy, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub enum LabelBudget {
    /// A fraction of the training set (0 < f ≤ 1), e.g. "10%".
    Fraction(f64),
    /// A number of labelled images, e.g. "500".
    Count(usize),
}

impl std::str::FromStr for LabelBudget {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        let bad = || format!("'{s}' is not a label budget (use e.g. 1%, 10% or a count such as 500)");
        if let Some(p) = s.strip_suffix('%') {
            let v: f64 = p.trim().parse().map_err(|_| bad())?;
            if !(v > 0.0 && v <= 100.0) {
                return Err(format!("label percentage must be in (0, 100] (got {s})"));
            }
            Ok(LabelBudget::Fraction(v / 100.0))
        } else {
            let n: usize = s.trim().parse().map_err(|_| bad())?;
            if n == 0 {
                return Err("the label count must be at least 1".into());
            }
            Ok(LabelBudget::Count(n))
        }
    }
}

impl LabelBudget {
    pub fn count(self, n: usize) -> usize {
        match self {
            LabelBudget::Fraction(f) => ((f * n as f64).round() as usize).clamp(1, n),
            LabelBudget::Count(c) => c.min(n),
        }
    }
}

/// A class-balanced subset of about `budget` indices: every class gets ⌊budget / C⌋ images
/// (the remainder goes to the lowest classes), drawn by a seeded shuffle; sorted ascending.
pub fn balanced_subset(labels: &[u32], classes: usize, budget: LabelBudget, seed: u64) -> Vec<u32> {
    let total = budget.count(labels.len());
    let mut by_class: Vec<Vec<u32>> = vec![Vec::new(); classes];
    for (i, &l) in labels.iter().enumerate() {
        if (l as usize) < classes {
            by_class[l as usize].push(i as u32);
        }
    }
    let mut rng = rand_pcg::Pcg64::seed_from_u64(mix_seed(seed, 0x5eed_1abe1));
    let mut out = Vec::with_capacity(total);
    for (c, members) in by_class.iter_mut().enumerate() {
        members.shuffle(&mut rng);
        let want = total / classes + usize::from(c < total % classes);
        out.extend(members.iter().take(want));
    }
    out.sort_unstable();
    out
}

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FinetuneConfig {
    pub labels: LabelBudget,
    pub epochs: usize,
    /// Source images per step (two augmented views of each).
    pub batch: usize,
    pub lr: f64,
    pub optimizer: OptimizerKind,
    pub momentum: f64,
    pub weight_decay: f64,
    pub seed: u64,
}

impl Default for FinetuneConfig {
    fn default() -> Self {
        FinetuneConfig {
            labels: LabelBudget::Fraction(0.1),
            epochs: 30,
            batch: 64,
            lr: 0.05,
            optimizer: OptimizerKind::Sgd,
            momentum: 0.9,
            weight_decay: 5e-4,
            seed: 0,
        }
    }
}

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct FinetuneResult {
    pub top1: f64,
    pub top5: f64,
    pub n_labels: usize,
    pub n_test: usize,
    pub final_loss: f64,
    pub config: FinetuneConfig,
}

/// Write the `encoder.*` tensors of `weights` into `model` (the head stays freshly initialised),
/// after checking that names and shapes match.
fn load_encoder(gpu: &Gpu, model: &Model, weights: &BTreeMap<String, HostTensor>) -> Result<()> {
    let enc: Vec<(String, Tensor)> = model
        .named_tensors()
        .into_iter()
        .filter(|(n, _)| n.starts_with("encoder."))
        .collect();
    let spec: Vec<(String, Vec<usize>)> = enc.iter().map(|(n, t)| (n.clone(), t.shape.clone())).collect();
    let have: BTreeMap<String, HostTensor> = weights
        .iter()
        .filter(|(n, _)| n.starts_with("encoder."))
        .map(|(n, t)| (n.clone(), t.clone()))
        .collect();
    check_compatible(&have, &spec, "the checkpoint's encoder")?;
    for (name, t) in &enc {
        t.write_f32(gpu, &have[name].data);
    }
    Ok(())
}

/// Fine-tune `encoder` (checkpoint weights, or None for a random initialisation) with a linear
/// head on a labelled subset of `train`, then report top-1/top-5 on `test`.
/// `on_epoch(epoch, mean loss)` is called after each epoch.
#[allow(clippy::too_many_arguments)]
pub fn finetune(
    gpu: &Gpu,
    encoder: &ModelConfig,
    weights: Option<&BTreeMap<String, HostTensor>>,
    train: &Dataset,
    test: &Dataset,
    classes: usize,
    cfg: &FinetuneConfig,
    mut on_epoch: impl FnMut(usize, f64),
) -> Result<FinetuneResult> {
    let train_labels = labels_of(train, None)?;
    let test_labels = labels_of(test, None)?;
    ensure!(cfg.epochs >= 1 && cfg.batch >= 1, "epochs and batch must be at least 1");
    ensure!(
        cfg.lr.is_finite() && cfg.lr > 0.0,
        "the learning rate must be > 0 (got {})",
        cfg.lr
    );
    if let Some(&bad) = train_labels
        .iter()
        .chain(&test_labels)
        .find(|&&l| l as usize >= classes)
    {
        bail!("label {bad} is not below the class count {classes}");
    }
    let subset_idx = balanced_subset(&train_labels, classes, cfg.labels, cfg.seed);
    let labelled = train.subset(&subset_idx);
    let labels = labels_of(&labelled, None)?;
    let n = cfg.batch.min(labelled.len());
    let mc = ModelConfig {
        head_layers: 1,
        out_dim: classes,
        ..encoder.clone()
    };
    let model = Model::new(gpu, &mc, 2 * n, cfg.seed)?;
    if let Some(w) = weights {
        load_encoder(gpu, &model, w)?;
    }
    let images = GpuImages::upload(gpu, &labelled)?;
    let aug = AugmentConfig {
        jitter_p: 0.0,
        gray_p: 0.0,
        blur_p: 0.0,
        ..AugmentConfig::for_size(mc.image_size)
    };
    let mut augmenter = Augmenter::new(gpu, &images, model.input(), &aug)?;
    let y = Tensor::zeros(gpu, "finetune.labels", &[2 * n])?;
    let ce = CrossEntropy::new(gpu, model.output(), &y, model.output_grad())?;
    let slots = model
        .param_slots()
        .into_iter()
        .map(|(name, param, grad, excluded)| ParamSlot {
            name,
            param,
            grad,
            excluded,
        })
        .collect();
    let opt_cfg = OptimConfig {
        kind: cfg.optimizer,
        momentum: cfg.momentum,
        weight_decay: cfg.weight_decay,
        ..Default::default()
    };
    let opt = Optimizer::new(gpu, &opt_cfg, slots)?;
    let mut step_prog = Program::new();
    step_prog.extend(augmenter.program());
    step_prog.extend(model.forward_train());
    step_prog.extend(ce.program());
    step_prog.extend(model.backward());
    step_prog.extend(opt.program());

    let sampler = Sampler::new(labelled.len(), n, true, cfg.seed)?;
    let per_epoch = sampler.batches_per_epoch();
    let total = per_epoch * cfg.epochs;
    let mut final_loss = f64::NAN;
    for epoch in 0..cfg.epochs {
        let (mut sum, mut reads) = (0.0, 0usize);
        for (k, idx) in sampler.batches(epoch as u64).iter().enumerate() {
            let step = epoch * per_epoch + k;
            // Rows r and r + n are the two views of image idx[r].
            let rows: Vec<u32> = (0..2 * n).map(|r| labels[idx[r % n] as usize]).collect();
            gpu.queue.write_buffer(&y.buffer, 0, bytemuck::cast_slice(&rows));
            augmenter.prepare(gpu, idx, &mut batch_rng(cfg.seed ^ 0xf1e7, step as u64));
            opt.set_step(gpu, lr_at(step, cfg.lr, 0, total) as f32, step);
            gpu.submit(&step_prog);
            if k + 1 == per_epoch || k % 16 == 15 {
                sum += ce.loss.read_f32(gpu)?[0] as f64;
                reads += 1;
            }
        }
        final_loss = sum / reads.max(1) as f64;
        ensure!(
            final_loss.is_finite(),
            "fine-tuning diverged (loss {final_loss} in epoch {epoch}); lower --lr"
        );
        on_epoch(epoch, final_loss);
    }
    let (top1, top5) = evaluate(gpu, &model, test, &test_labels, classes)?;
    Ok(FinetuneResult {
        top1,
        top5,
        n_labels: labelled.len(),
        n_test: test.len(),
        final_loss,
        config: cfg.clone(),
    })
}

/// Top-1/top-5 of the model's logits (eval mode) on every image of `ds`.
fn evaluate(gpu: &Gpu, model: &Model, ds: &Dataset, labels: &[u32], classes: usize) -> Result<(f64, f64)> {
    let rows = model.plan.batch;
    let (mut c1, mut c5) = (0usize, 0usize);
    for start in (0..ds.len()).step_by(rows) {
        let idx: Vec<usize> = (start..(start + rows).min(ds.len())).collect();
        model.input().write_f32(gpu, &normalized_batch(ds, &idx, rows));
        gpu.run(model.forward_eval_all())?;
        let logits = model.output().read_f32(gpu)?;
        for (r, &i) in idx.iter().enumerate() {
            let (h1, h5) = super::probe::hits(&logits[r * classes..(r + 1) * classes], labels[i]);
            c1 += h1 as usize;
            c5 += h5 as usize;
        }
    }
    let n = ds.len().max(1) as f64;
    Ok((c1 as f64 / n, c5 as f64 / n))
}
