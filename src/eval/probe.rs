//! Linear evaluation: a softmax classifier trained on frozen features, on the GPU (linear
//! forward → cross-entropy → linear backward → SGD/AdamW, cosine schedule).

use crate::data::Sampler;
use crate::gpu::{Gpu, Program, Tensor};
use crate::loss::CrossEntropy;
use crate::nn::linear::{linear_backward, linear_forward};
use crate::optim::{schedule::lr_at, OptimConfig, Optimizer, OptimizerKind, ParamSlot};
use anyhow::{ensure, Result};

/// Labelled feature rows (n × d).
#[derive(Clone, Debug, Default)]
pub struct Features {
    pub data: Vec<f32>,
    pub labels: Vec<u32>,
    pub d: usize,
}

impl Features {
    pub fn new(data: Vec<f32>, labels: Vec<u32>, d: usize) -> Result<Self> {
        ensure!(
            d > 0 && data.len() == labels.len() * d,
            "{} feature values do not make {} rows of width {d}",
            data.len(),
            labels.len()
        );
        Ok(Features { data, labels, d })
    }
    pub fn len(&self) -> usize {
        self.labels.len()
    }
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }
    fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.d..(i + 1) * self.d]
    }
}

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ProbeConfig {
    pub epochs: usize,
    pub batch: usize,
    /// Peak learning rate (cosine decay to 0 over all steps, no warmup).
    pub lr: f64,
    pub optimizer: OptimizerKind,
    pub momentum: f64,
    pub weight_decay: f64,
    pub seed: u64,
    /// Scale each feature to zero mean and variance 1/d (train statistics) first.
    pub standardize: bool,
}

impl Default for ProbeConfig {
    fn default() -> Self {
        ProbeConfig {
            epochs: 100,
            batch: 256,
            lr: 1.0,
            optimizer: OptimizerKind::Sgd,
            momentum: 0.9,
            weight_decay: 0.0,
            seed: 0,
            standardize: true,
        }
    }
}

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ProbeResult {
    pub top1: f64,
    pub top5: f64,
    pub train_top1: f64,
    /// Mean cross-entropy of the last epoch's batches.
    pub final_loss: f64,
    pub n_train: usize,
    pub n_test: usize,
    pub config: ProbeConfig,
}

/// Per-feature (mean, scale) of `f`: scale = 1/(std·√d), so that rows have unit mean squared
/// norm whatever the width; then one learning rate suits 256 encoder features and 3,072 pixels
/// alike (the curvature along the top principal direction stays below 1). Constant features
/// get std = 1.
fn standardizer(f: &Features) -> (Vec<f32>, Vec<f32>) {
    let (n, d) = (f.len().max(1) as f64, f.d);
    let mut mean = vec![0f64; d];
    let mut sq = vec![0f64; d];
    for i in 0..f.len() {
        for (j, &v) in f.row(i).iter().enumerate() {
            mean[j] += v as f64;
            sq[j] += (v as f64) * (v as f64);
        }
    }
    let mut m = vec![0f32; d];
    let root_d = (d as f64).sqrt();
    let mut inv = vec![(1.0 / root_d) as f32; d];
    for j in 0..d {
        let mu = mean[j] / n;
        let var = (sq[j] / n - mu * mu).max(0.0);
        m[j] = mu as f32;
        if var > 1e-12 {
            inv[j] = (1.0 / (var.sqrt() * root_d)) as f32;
        }
    }
    (m, inv)
}

/// Whether `label` is the top-1 class of `logits`, and whether it is among the top 5 (ties:
/// lower class first).
pub fn hits(logits: &[f32], label: u32) -> (bool, bool) {
    let mut order: Vec<usize> = (0..logits.len()).collect();
    order.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]).then(a.cmp(&b)));
    let l = label as usize;
    (order[0] == l, order.iter().take(5).any(|&c| c == l))
}

/// A linear classifier planned for one batch size; rows are uploaded per step.
struct Classifier {
    x: Tensor,
    y: Tensor,
    logits: Tensor,
    ce: CrossEntropy,
    train: Program,
    eval: Program,
    opt: Optimizer,
    batch: usize,
    d: usize,
    scale: Option<(Vec<f32>, Vec<f32>)>,
}

impl Classifier {
    fn new(
        gpu: &Gpu,
        d: usize,
        classes: usize,
        cfg: &ProbeConfig,
        scale: Option<(Vec<f32>, Vec<f32>)>,
    ) -> Result<Self> {
        let b = cfg.batch;
        let x = Tensor::zeros(gpu, "probe.x", &[b, d])?;
        let y = Tensor::zeros(gpu, "probe.labels", &[b])?;
        // Zero initialisation: the problem is convex, so this loses nothing and is deterministic.
        let w = Tensor::zeros(gpu, "probe.weight", &[classes, d])?;
        let bias = Tensor::zeros(gpu, "probe.bias", &[classes])?;
        let dw = Tensor::zeros(gpu, "probe.weight.grad", &[classes, d])?;
        let db = Tensor::zeros(gpu, "probe.bias.grad", &[classes])?;
        let logits = Tensor::zeros(gpu, "probe.logits", &[b, classes])?;
        let dlogits = Tensor::zeros(gpu, "probe.logits.grad", &[b, classes])?;
        let ce = CrossEntropy::new(gpu, &logits, &y, &dlogits)?;
        let opt_cfg = OptimConfig {
            kind: cfg.optimizer,
            momentum: cfg.momentum,
            weight_decay: cfg.weight_decay,
            ..Default::default()
        };
        let slots = vec![ParamSlot::new("weight", &w, &dw), ParamSlot::new("bias", &bias, &db)];
        let opt = Optimizer::new(gpu, &opt_cfg, slots)?;
        let eval = linear_forward(gpu, &x, &w, Some(&bias), &logits, false)?;
        let mut train = eval.clone();
        train.extend(ce.program());
        train.extend(&linear_backward(gpu, &x, &w, &dlogits, None, &dw, Some(&db))?);
        train.extend(opt.program());
        Ok(Classifier {
            x,
            y,
            logits,
            ce,
            train,
            eval,
            opt,
            batch: b,
            d,
            scale,
        })
    }

    /// Upload rows `idx` of `f` (zero rows pad a short batch; their labels are 0).
    fn upload(&self, gpu: &Gpu, f: &Features, idx: &[usize]) {
        let mut x = vec![0f32; self.batch * self.d];
        let mut y = vec![0u32; self.batch];
        for (r, &i) in idx.iter().enumerate() {
            let dst = &mut x[r * self.d..(r + 1) * self.d];
            dst.copy_from_slice(f.row(i));
            if let Some((m, inv)) = &self.scale {
                for ((v, m), s) in dst.iter_mut().zip(m).zip(inv) {
                    *v = (*v - m) * s;
                }
            }
            y[r] = f.labels[i];
        }
        self.x.write_f32(gpu, &x);
        gpu.queue.write_buffer(&self.y.buffer, 0, bytemuck::cast_slice(&y));
    }

    /// (top-1, top-5) of the classifier on every row of `f`.
    fn accuracy(&self, gpu: &Gpu, f: &Features) -> Result<(f64, f64)> {
        let (mut c1, mut c5) = (0usize, 0usize);
        let classes = self.logits.shape[1];
        for start in (0..f.len()).step_by(self.batch) {
            let idx: Vec<usize> = (start..(start + self.batch).min(f.len())).collect();
            self.upload(gpu, f, &idx);
            gpu.run(&self.eval)?;
            let logits = self.logits.read_f32(gpu)?;
            for (r, &i) in idx.iter().enumerate() {
                let (h1, h5) = hits(&logits[r * classes..(r + 1) * classes], f.labels[i]);
                c1 += h1 as usize;
                c5 += h5 as usize;
            }
        }
        let n = f.len().max(1) as f64;
        Ok((c1 as f64 / n, c5 as f64 / n))
    }
}

/// Train a linear classifier on `train` and report its accuracy on `test`. `on_epoch(epoch,
/// mean loss)` is called after each epoch (for progress output).
pub fn linear_probe(
    gpu: &Gpu,
    train: &Features,
    test: &Features,
    classes: usize,
    cfg: &ProbeConfig,
    mut on_epoch: impl FnMut(usize, f64),
) -> Result<ProbeResult> {
    ensure!(
        !train.is_empty() && !test.is_empty(),
        "the linear probe needs train and test rows"
    );
    ensure!(
        train.d == test.d,
        "train features have width {}, test features {}",
        train.d,
        test.d
    );
    ensure!(cfg.epochs >= 1 && cfg.batch >= 1, "epochs and batch must be at least 1");
    ensure!(
        cfg.lr.is_finite() && cfg.lr > 0.0,
        "the learning rate must be > 0 (got {})",
        cfg.lr
    );
    if let Some(&bad) = train
        .labels
        .iter()
        .chain(&test.labels)
        .find(|&&l| l as usize >= classes)
    {
        anyhow::bail!("label {bad} is not below the class count {classes}");
    }
    let cfg = ProbeConfig {
        batch: cfg.batch.min(train.len()),
        ..cfg.clone()
    };
    let scale = cfg.standardize.then(|| standardizer(train));
    let clf = Classifier::new(gpu, train.d, classes, &cfg, scale)?;
    let sampler = Sampler::new(train.len(), cfg.batch, true, cfg.seed)?;
    let per_epoch = sampler.batches_per_epoch();
    let total = per_epoch * cfg.epochs;
    let mut final_loss = 0.0;
    for epoch in 0..cfg.epochs {
        let mut sum = 0.0;
        for (k, batch) in sampler.batches(epoch as u64).iter().enumerate() {
            let step = epoch * per_epoch + k;
            let idx: Vec<usize> = batch.iter().map(|&i| i as usize).collect();
            clf.upload(gpu, train, &idx);
            clf.opt.set_step(gpu, lr_at(step, cfg.lr, 0, total) as f32, step);
            gpu.submit(&clf.train);
            // Sum the batch losses on the host a few times per epoch only: each read waits.
            if k + 1 == per_epoch || k % 64 == 63 {
                sum += clf.ce.loss.read_f32(gpu)?[0] as f64;
            }
        }
        let reads = per_epoch.div_ceil(64).max(1) as f64;
        final_loss = sum / reads;
        ensure!(
            final_loss.is_finite(),
            "the linear probe diverged (loss {final_loss} in epoch {epoch}); lower --lr"
        );
        on_epoch(epoch, final_loss);
    }
    let (train_top1, _) = clf.accuracy(gpu, train)?;
    let (top1, top5) = clf.accuracy(gpu, test)?;
    Ok(ProbeResult {
        top1,
        top5,
        train_top1,
        final_loss,
        n_train: train.len(),
        n_test: test.len(),
        config: cfg,
    })
}
