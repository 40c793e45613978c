//! `simclr eval knn|linear|finetune`: judge a checkpoint on a labelled dataset, optionally next
//! to the same metric for a randomly initialised encoder and for raw pixels (`--baselines`).
//! Each writes `eval_<metric>.json` next to the checkpoint.

use super::DeviceArgs;
use crate::data::{self, Dataset, DatasetKind, Split};
use crate::eval::finetune::{finetune, FinetuneConfig, LabelBudget};
use crate::eval::probe::{linear_probe, Features, ProbeConfig};
use crate::eval::{embed, features, knn, load::load_model};
use crate::gpu::Gpu;
use crate::nn::model::Model;
use crate::optim::OptimizerKind;
use crate::train::checkpoint::{self, Sidecar};
use anyhow::{ensure, Result};
use serde_json::{json, Value};
use std::path::PathBuf;

#[derive(clap::Subcommand, Debug)]
pub enum EvalCommand {
    /// Weighted kNN top-1/top-5 on the test split (the training monitor's code).
    Knn(KnnArgs),
    /// Linear probe: a softmax classifier trained on frozen encoder features.
    Linear(LinearArgs),
    /// Fine-tune encoder + linear head on a class-balanced subset of the labels.
    Finetune(FinetuneArgs),
}

/// What every evaluation needs: a checkpoint and a labelled dataset.
#[derive(clap::Args, Debug, Clone)]
pub struct EvalCommon {
    /// Run directory (newest checkpoint) or a checkpoint file.
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// Dataset folder (else the checkpoint's, $SIMCLR_DATA, ./data).
    #[arg(long)]
    pub data: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "cifar10")]
    pub dataset: DatasetKind,
    /// Use only the first N training images.
    #[arg(long)]
    pub limit_train: Option<usize>,
    /// Evaluate on the first N test images.
    #[arg(long)]
    pub limit_test: Option<usize>,
    /// Images per forward pass when computing features.
    #[arg(long, default_value_t = 256)]
    pub batch: usize,
    /// Also report a randomly initialised encoder and raw pixels.
    #[arg(long)]
    pub baselines: bool,
}

#[derive(clap::Args, Debug)]
pub struct KnnArgs {
    #[command(flatten)]
    pub common: EvalCommon,
    #[arg(long, default_value_t = 200)]
    pub k: usize,
    #[arg(long, default_value_t = 0.1)]
    pub t: f32,
}

#[derive(clap::Args, Debug)]
pub struct LinearArgs {
    #[command(flatten)]
    pub common: EvalCommon,
    #[arg(long, default_value_t = 100)]
    pub epochs: usize,
    /// Peak learning rate (cosine to 0); features are standardised to unit mean squared norm.
    #[arg(long, default_value_t = ProbeConfig::default().lr)]
    pub lr: f64,
    /// Rows per classifier step.
    #[arg(long, default_value_t = 256)]
    pub probe_batch: usize,
    #[arg(long, value_enum, default_value = "sgd")]
    pub optimizer: OptimizerKind,
    #[arg(long, default_value_t = 0.9)]
    pub momentum: f64,
    #[arg(long, default_value_t = 0.0)]
    pub weight_decay: f64,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Train the probe on N random crop + flip views of every training image instead of the
    /// plain image (the test images stay plain); 0 = no augmentation.
    #[arg(long, default_value_t = 0)]
    pub augment: usize,
}

#[derive(clap::Args, Debug)]
pub struct FinetuneArgs {
    #[command(flatten)]
    pub common: EvalCommon,
    /// Labelled images used: a percentage of the training set (1%, 10%) or a count.
    #[arg(long, default_value = "10%")]
    pub labels: LabelBudget,
    #[arg(long, default_value_t = FinetuneConfig::default().epochs)]
    pub epochs: usize,
    /// Labelled images per step (two augmented views of each).
    #[arg(long, default_value_t = FinetuneConfig::default().batch)]
    pub train_batch: usize,
    #[arg(long, default_value_t = FinetuneConfig::default().lr)]
    pub lr: f64,
    #[arg(long, value_enum, default_value = "sgd")]
    pub optimizer: OptimizerKind,
    #[arg(long, default_value_t = 0.9)]
    pub momentum: f64,
    #[arg(long, default_value_t = FinetuneConfig::default().weight_decay)]
    pub weight_decay: f64,
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
}

/// A loaded checkpoint and the dataset it is judged on.
struct Setup {
    gpu: Gpu,
    model: Model,
    side: Sidecar,
    side_path: PathBuf,
    train: Dataset,
    test: Dataset,
    n_train: usize,
    n_test: usize,
    classes: usize,
    c: EvalCommon,
}

fn setup(dev: &DeviceArgs, c: &EvalCommon) -> Result<Setup> {
    ensure!(c.batch >= 1, "--batch must be at least 1");
    let gpu = dev.open()?;
    let side_path = checkpoint::resolve(&c.checkpoint)?;
    let (model, side) = load_model(&gpu, &side_path, c.batch)?;
    let dir = data::resolve_data_dir(c.data.as_deref().or(side.config.data.as_deref()));
    let opts = data::LoadOptions {
        image_size: Some(side.config.image_size),
        ..Default::default()
    };
    let train = data::load_with(c.dataset, &dir, Split::Train, &opts)?;
    let test = data::load_with(c.dataset, &dir, Split::Test, &opts)?;
    for ds in [&train, &test] {
        features::labels_of(ds, None)?;
    }
    let n_train = c.limit_train.unwrap_or(train.len()).min(train.len());
    let n_test = c.limit_test.unwrap_or(test.len()).min(test.len());
    let max_label = train
        .labels
        .iter()
        .chain(&test.labels)
        .flatten()
        .max()
        .copied()
        .unwrap_or(0);
    let classes = test.classes.len().max(max_label as usize + 1);
    Ok(Setup {
        gpu,
        model,
        side,
        side_path,
        train,
        test,
        n_train,
        n_test,
        classes,
        c: c.clone(),
    })
}

impl Setup {
    fn name(&self) -> String {
        format!("SimCLR encoder (step {})", self.side.step)
    }

    /// Encoder features of one split, cached next to the checkpoint under `stem` (features
    /// are deterministic: eval mode, no augmentation).
    fn cached(&self, model: &Model, stem: &str, split: Split) -> Result<Features> {
        let (ds, n) = self.split(split);
        let file = format!(
            "{stem}.{}-{}-{n}.features.safetensors",
            self.c.dataset.name(),
            split.name()
        );
        embed::cached(&self.side_path.with_file_name(file), n, || {
            features::encoder_features(&self.gpu, model, ds, Some(n))
        })
    }

    fn trained(&self, split: Split) -> Result<Features> {
        let stem = self.side_path.file_stem().unwrap().to_string_lossy().into_owned();
        self.cached(&self.model, &stem, split)
    }

    fn random_model(&self) -> Result<Model> {
        Ok(Model::new(
            &self.gpu,
            &self.side.config.model(),
            self.c.batch,
            self.side.config.seed,
        )?)
    }

    fn split(&self, split: Split) -> (&Dataset, usize) {
        match split {
            Split::Test => (&self.test, self.n_test),
            _ => (&self.train, self.n_train),
        }
    }

    /// Training features of `encoder` (pixels when None): `augment` = (views, seed) replaces
    /// the plain images by augmented views (not cached: they are random).
    fn train_features(&self, encoder: Option<&Model>, augment: Option<(usize, u64)>) -> Option<Result<Features>> {
        let (views, seed) = augment?;
        let aug = features::probe_augment_config(self.side.config.image_size);
        eprintln!("computing {views} augmented views of {} training images…", self.n_train);
        Some(features::augmented_features(
            &self.gpu,
            &self.train,
            Some(self.n_train),
            views,
            &aug,
            seed,
            encoder,
        ))
    }

    /// (train, test) features of the three encoders compared: trained, random-init, pixels.
    fn feature_sets(&self, augment: Option<(usize, u64)>) -> Result<Vec<(String, Features, Features)>> {
        let train = self
            .train_features(Some(&self.model), augment)
            .unwrap_or_else(|| self.trained(Split::Train))?;
        let mut sets = vec![(self.name(), train, self.trained(Split::Test)?)];
        if self.c.baselines {
            let random = self.random_model()?;
            // Same architecture and seed give the same initial weights: cache per (arch, seed).
            let cfg = &self.side.config;
            let stem = format!("random-{:?}-w{}-seed{}", cfg.arch, cfg.width, cfg.seed).to_lowercase();
            let train = self
                .train_features(Some(&random), augment)
                .unwrap_or_else(|| self.cached(&random, &stem, Split::Train))?;
            sets.push((
                "random-init encoder".into(),
                train,
                self.cached(&random, &stem, Split::Test)?,
            ));
            let train = self
                .train_features(None, augment)
                .unwrap_or_else(|| features::pixel_features(&self.train, Some(self.n_train)))?;
            sets.push((
                "raw pixels".into(),
                train,
                features::pixel_features(&self.test, Some(self.n_test))?,
            ));
        }
        Ok(sets)
    }

    /// Print the table and write `eval_<metric>.json` (name → result) next to the checkpoint.
    fn report(&self, metric: &str, header: &str, rows: &[(String, Value)]) -> Result<()> {
        println!("{header}");
        for (name, r) in rows {
            println!(
                "  {name:<32} top-1 {:>6.2}%  top-5 {:>6.2}%",
                100.0 * r["top1"].as_f64().unwrap_or(f64::NAN),
                100.0 * r["top5"].as_f64().unwrap_or(f64::NAN)
            );
        }
        // Merge into earlier results (one entry per encoder; a row of the same name replaces
        // the old one), so a later run without --baselines keeps the baselines measured before.
        let out = self.side_path.with_file_name(format!("eval_{metric}.json"));
        let mut json: serde_json::Map<String, Value> = std::fs::read_to_string(&out)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default();
        json.extend(rows.iter().cloned());
        checkpoint::atomic_write(&out, serde_json::to_string_pretty(&json)?.as_bytes())?;
        println!("written {}", out.display());
        Ok(())
    }
}

pub fn run(dev: &DeviceArgs, cmd: &EvalCommand) -> Result<()> {
    match cmd {
        EvalCommand::Knn(a) => run_knn(dev, a),
        EvalCommand::Linear(a) => run_linear(dev, a),
        EvalCommand::Finetune(a) => run_finetune(dev, a),
    }
}

fn run_knn(dev: &DeviceArgs, a: &KnnArgs) -> Result<()> {
    ensure!(
        a.k >= 1 && a.t > 0.0,
        "--k must be >= 1 and --t > 0 (got {} and {})",
        a.k,
        a.t
    );
    let s = setup(dev, &a.common)?;
    let mut rows = Vec::new();
    for (name, tr, te) in s.feature_sets(None)? {
        let r = knn::knn_eval(
            &s.gpu, &tr.data, &tr.labels, &te.data, &te.labels, tr.d, s.classes, a.k, a.t,
        )?;
        rows.push((name, serde_json::to_value(r)?));
    }
    let header = format!(
        "kNN (k={}, T={}), {} train / {} test images:",
        a.k, a.t, s.n_train, s.n_test
    );
    s.report("knn", &header, &rows)
}

fn run_linear(dev: &DeviceArgs, a: &LinearArgs) -> Result<()> {
    let cfg = ProbeConfig {
        epochs: a.epochs,
        batch: a.probe_batch,
        lr: a.lr,
        optimizer: a.optimizer,
        momentum: a.momentum,
        weight_decay: a.weight_decay,
        seed: a.seed,
        standardize: true,
    };
    ensure!(
        cfg.epochs >= 1 && cfg.batch >= 1,
        "--epochs and --probe-batch must be at least 1"
    );
    let s = setup(dev, &a.common)?;
    let augment = (a.augment > 0).then_some((a.augment, a.seed));
    let mut rows = Vec::new();
    for (name, tr, te) in s.feature_sets(augment)? {
        eprintln!("linear probe on {name} ({} features, {} rows)…", tr.d, tr.len());
        let every = (cfg.epochs / 10).max(1);
        let r = linear_probe(&s.gpu, &tr, &te, s.classes, &cfg, |e, l| {
            if (e + 1) % every == 0 {
                eprintln!("  epoch {:>4}/{} loss {l:.4}", e + 1, cfg.epochs);
            }
        })?;
        let mut v = serde_json::to_value(r)?;
        v["augment_views"] = json!(a.augment);
        rows.push((name, v));
    }
    let views = match a.augment {
        0 => String::new(),
        k => format!(" × {k} crop+flip views"),
    };
    let header = format!(
        "linear probe ({} epochs, {:?}, lr {}), {} train{views} / {} test images:",
        cfg.epochs, cfg.optimizer, cfg.lr, s.n_train, s.n_test
    );
    s.report("linear", &header, &rows)
}

fn run_finetune(dev: &DeviceArgs, a: &FinetuneArgs) -> Result<()> {
    let cfg = FinetuneConfig {
        labels: a.labels,
        epochs: a.epochs,
        batch: a.train_batch,
        lr: a.lr,
        optimizer: a.optimizer,
        momentum: a.momentum,
        weight_decay: a.weight_decay,
        seed: a.seed,
    };
    ensure!(
        cfg.epochs >= 1 && cfg.batch >= 1,
        "--epochs and --train-batch must be at least 1"
    );
    let s = setup(dev, &a.common)?;
    let train = s.train.subset(&(0..s.n_train as u32).collect::<Vec<_>>());
    let test = s.test.subset(&(0..s.n_test as u32).collect::<Vec<_>>());
    let tensors = checkpoint::load_safetensors(&s.side_path.with_file_name(&s.side.tensors))?;
    let progress = |name: &str| {
        let name = name.to_string();
        move |e: usize, l: f64| eprintln!("  {name}: epoch {:>3}/{} loss {l:.4}", e + 1, cfg.epochs)
    };
    let enc = s.side.config.model();
    let mut rows = Vec::new();
    let r = finetune(
        &s.gpu,
        &enc,
        Some(&tensors),
        &train,
        &test,
        s.classes,
        &cfg,
        progress("SimCLR"),
    )?;
    let n_labels = r.n_labels;
    rows.push((s.name(), serde_json::to_value(r)?));
    if s.c.baselines {
        let r = finetune(
            &s.gpu,
            &enc,
            None,
            &train,
            &test,
            s.classes,
            &cfg,
            progress("random-init"),
        )?;
        rows.push(("random-init encoder".into(), serde_json::to_value(r)?));
        // Raw pixels: a linear classifier on the same labelled subset.
        let labels = features::labels_of(&train, None)?;
        let idx = crate::eval::finetune::balanced_subset(&labels, s.classes, cfg.labels, cfg.seed);
        let px = features::pixel_features(&train.subset(&idx), None)?;
        let te = features::pixel_features(&test, None)?;
        let probe = ProbeConfig {
            seed: cfg.seed,
            ..Default::default()
        };
        let r = linear_probe(&s.gpu, &px, &te, s.classes, &probe, |_, _| {})?;
        rows.push((
            "raw pixels (linear)".into(),
            json!({"top1": r.top1, "top5": r.top5, "n_labels": px.len(), "probe": r}),
        ));
    }
    let header = format!(
        "fine-tuning on {n_labels} labelled images ({} epochs, lr {}), {} test images:",
        cfg.epochs, cfg.lr, s.n_test
    );
    s.report("finetune", &header, &rows)
}
