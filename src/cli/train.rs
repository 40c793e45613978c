//! `simclr train`: settings from defaults ← `--config` TOML ← flags; progress bar; Ctrl-C
//! writes a checkpoint.

use super::DeviceArgs;
use crate::nn::arch::Arch;
use crate::train::{checkpoint, setup::largest_batch, StepRecord, TrainConfig, Trainer};
use anyhow::{bail, Result};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

#[derive(clap::Args, Debug, Default)]
pub struct TrainArgs {
    /// TOML file with any of the settings below (flags override it).
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Continue the run in this directory from its newest checkpoint.
    #[arg(long)]
    pub resume: Option<PathBuf>,
    /// Run name (outputs in <runs-dir>/<name>).
    #[arg(long)]
    pub name: Option<String>,
    #[arg(long)]
    pub runs_dir: Option<PathBuf>,
    /// Dataset folder (else $SIMCLR_DATA, else ./data).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Do not download CIFAR-10 when it is missing.
    #[arg(long)]
    pub no_download: bool,
    #[arg(long, value_enum)]
    pub arch: Option<Arch>,
    /// Channel width multiplier.
    #[arg(long)]
    pub width: Option<f32>,
    #[arg(long)]
    pub image_size: Option<usize>,
    #[arg(long)]
    pub head_layers: Option<usize>,
    #[arg(long)]
    pub head_hidden: Option<usize>,
    #[arg(long)]
    pub out_dim: Option<usize>,
    /// Source images per step (two views each).
    #[arg(long)]
    pub batch: Option<usize>,
    #[arg(long)]
    pub epochs: Option<usize>,
    #[arg(long)]
    pub warmup_epochs: Option<usize>,
    /// Base learning rate (before the batch scaling rule).
    #[arg(long)]
    pub lr: Option<f64>,
    /// linear (lr·B/256) or sqrt (lr·√B).
    #[arg(long)]
    pub lr_scaling: Option<String>,
    /// lars, sgd or adamw.
    #[arg(long)]
    pub optimizer: Option<String>,
    #[arg(long)]
    pub momentum: Option<f32>,
    #[arg(long)]
    pub weight_decay: Option<f32>,
    #[arg(long)]
    pub eta: Option<f32>,
    /// NT-Xent temperature.
    #[arg(long)]
    pub tau: Option<f32>,
    #[arg(long)]
    pub jitter_strength: Option<f32>,
    #[arg(long)]
    pub jitter_p: Option<f32>,
    #[arg(long)]
    pub gray_p: Option<f32>,
    #[arg(long)]
    pub flip_p: Option<f32>,
    #[arg(long)]
    pub crop_min_scale: Option<f32>,
    #[arg(long)]
    pub blur_p: Option<f32>,
    #[arg(long)]
    pub seed: Option<u64>,
    #[arg(long)]
    pub knn_k: Option<usize>,
    #[arg(long)]
    pub knn_t: Option<f32>,
    /// kNN monitor every N epochs (0 = off).
    #[arg(long)]
    pub knn_every: Option<usize>,
    /// Checkpoints kept.
    #[arg(long)]
    pub keep: Option<usize>,
    /// Use only the first N training images.
    #[arg(long)]
    pub limit_train: Option<usize>,
    /// Evaluate kNN on the first N test images.
    #[arg(long)]
    pub limit_test: Option<usize>,
    /// Stop after N steps in total.
    #[arg(long)]
    pub max_steps: Option<usize>,
    /// No progress bar (log lines instead).
    #[arg(long)]
    pub quiet: bool,
}

macro_rules! apply {
    ($cfg:ident, $args:ident, $($f:ident),*) => { $( if let Some(v) = $args.$f.clone() { $cfg.$f = v; } )* };
}

impl TrainArgs {
    /// Defaults, then the TOML file, then the flags.
    pub fn to_config(&self) -> Result<TrainConfig> {
        let base = match &self.config {
            Some(p) => TrainConfig::from_toml_file(p)?,
            None => TrainConfig::default(),
        };
        self.apply(base)
    }

    /// `base` with every flag that was given applied.
    pub fn apply(&self, mut c: TrainConfig) -> Result<TrainConfig> {
        let a = self;
        apply!(
            c,
            a,
            name,
            runs_dir,
            arch,
            width,
            image_size,
            head_layers,
            out_dim,
            batch,
            epochs,
            warmup_epochs,
            lr
        );
        apply!(
            c,
            a,
            lr_scaling,
            optimizer,
            momentum,
            weight_decay,
            eta,
            tau,
            jitter_strength,
            jitter_p,
            gray_p,
            flip_p
        );
        apply!(c, a, crop_min_scale, seed, knn_k, knn_t, knn_every, keep);
        if a.data.is_some() {
            c.data = a.data.clone();
        }
        if a.head_hidden.is_some() {
            c.head_hidden = a.head_hidden;
        }
        if a.blur_p.is_some() {
            c.blur_p = a.blur_p;
        }
        if a.limit_train.is_some() {
            c.limit_train = a.limit_train;
        }
        if a.limit_test.is_some() {
            c.limit_test = a.limit_test;
        }
        if a.max_steps.is_some() {
            c.max_steps = a.max_steps;
        }
        if a.no_download {
            c.download = false;
        }
        c.validate()?;
        Ok(c)
    }
}

/// Settings a resumed run may change: the rest would make it a different run.
fn check_resume_changes(saved: &TrainConfig, new: &TrainConfig) -> Result<()> {
    let mut probe = new.clone();
    probe.epochs = saved.epochs;
    probe.max_steps = saved.max_steps;
    probe.knn_every = saved.knn_every;
    probe.knn_k = saved.knn_k;
    probe.knn_t = saved.knn_t;
    probe.keep = saved.keep;
    probe.data = saved.data.clone();
    probe.limit_test = saved.limit_test;
    probe.download = saved.download;
    if &probe != saved {
        let a = serde_json::to_value(saved)?;
        let b = serde_json::to_value(&probe)?;
        let changed: Vec<String> = a
            .as_object()
            .unwrap()
            .iter()
            .filter(|(k, v)| b.get(*k) != Some(v))
            .map(|(k, v)| format!("{k} (saved {v}, given {})", b[k]))
            .collect();
        bail!(
            "a resumed run keeps its settings; these cannot change: {}.\nOnly epochs, max_steps, knn_*, keep, \
             data and limit_test may be given with --resume; start a new run (--name) to change the others",
            changed.join(", ")
        );
    }
    Ok(())
}

/// A run name not used yet in `runs_dir`: `name`, else `name-2`, `name-3`, ...
fn fresh_name(runs_dir: &std::path::Path, name: &str) -> String {
    let used = |n: &str| {
        !checkpoint::list_checkpoints(&runs_dir.join(n)).is_empty() || runs_dir.join(n).join("metrics.jsonl").exists()
    };
    if !used(name) {
        return name.to_string();
    }
    (2..).map(|i| format!("{name}-{i}")).find(|n| !used(n)).unwrap()
}

pub fn run(dev: &DeviceArgs, args: &TrainArgs) -> Result<()> {
    // Settings are checked before any GPU work.
    let mut cfg = match &args.resume {
        Some(dir) => {
            let side = checkpoint::read_sidecar(&checkpoint::resolve(dir)?)?;
            let mut saved = side.config;
            // The run lives where it was found, even if it was moved.
            let dir = dir.canonicalize().unwrap_or(dir.clone());
            let dir = if dir.is_dir() {
                dir
            } else {
                dir.parent().unwrap().to_path_buf()
            };
            saved.runs_dir = dir.parent().map(|p| p.to_path_buf()).unwrap_or_default();
            saved.name = dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            let cfg = args.apply(saved.clone())?;
            check_resume_changes(&saved, &cfg)?;
            cfg
        }
        None => {
            let mut cfg = args.to_config()?;
            if cfg.warmup_epochs >= cfg.epochs && args.warmup_epochs.is_none() {
                let w = cfg.epochs / 10;
                eprintln!(
                    "note: {} warmup epochs would fill the {}-epoch run; using {w}",
                    cfg.warmup_epochs, cfg.epochs
                );
                cfg.warmup_epochs = w;
            }
            let name = fresh_name(&cfg.runs_dir, &cfg.name);
            if name != cfg.name {
                if args.name.is_some() {
                    bail!(
                        "{} already holds a run; continue it with --resume {} or choose another --name",
                        cfg.run_dir().display(),
                        cfg.run_dir().display()
                    );
                }
                eprintln!("{} already holds a run; this one is '{name}'", cfg.run_dir().display());
                cfg.name = name;
            }
            cfg
        }
    };
    let gpu = Arc::new(dev.open()?);
    eprintln!("device: {}", gpu.describe());
    let fits = largest_batch(&cfg, gpu.limits.max_storage_buffer_binding_size);
    if cfg.batch > fits && args.batch.is_none() && args.resume.is_none() && fits >= 2 {
        eprintln!(
            "note: batch {} does not fit this device's {} MiB storage-binding limit; using batch {fits} (set --batch)",
            cfg.batch,
            gpu.limits.max_storage_buffer_binding_size >> 20
        );
        cfg.batch = fits;
    }
    let mut trainer = match &args.resume {
        Some(dir) => Trainer::resume_with(gpu.clone(), dir, cfg)?,
        None => Trainer::new(gpu.clone(), cfg)?,
    };
    let c = &trainer.cfg;
    eprintln!(
        "training {:?} (width {}) on {} images, batch {}, {} steps/epoch, {} epochs; run dir {}",
        c.arch,
        c.width,
        trainer.train.len(),
        c.batch,
        trainer.steps_per_epoch,
        c.epochs,
        c.run_dir().display()
    );
    if gpu.is_software() {
        let hint = if c.arch != Arch::Tiny {
            " Consider --arch tiny."
        } else {
            ""
        };
        eprintln!(
            "note: '{}' is a software (CPU) adapter: training will be slow.{hint}",
            gpu.info.name
        );
    }
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        let _ = ctrlc::set_handler(move || {
            if stop.swap(true, Ordering::SeqCst) {
                std::process::exit(130);
            }
            eprintln!("\nCtrl-C: finishing the step and writing a checkpoint (press again to quit at once)");
        });
    }
    let end = c
        .max_steps
        .map(|m| m.min(trainer.total_steps))
        .unwrap_or(trainer.total_steps);
    // Log lines instead of a bar when asked, or when stderr is not a terminal (a log file).
    let quiet = args.quiet || !std::io::stderr().is_terminal();
    let bar = if quiet {
        indicatif::ProgressBar::hidden()
    } else {
        indicatif::ProgressBar::new(end as u64)
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template("{bar:30} {pos}/{len} steps  {msg}  ETA {eta}")
            .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    bar.set_position(trainer.step as u64);
    let started = std::time::Instant::now();
    let mut estimated = false;
    let mut on_step = |t: &Trainer, r: &StepRecord| {
        bar.set_position(r.step as u64 + 1);
        let line = format!(
            "epoch {} loss {:.4} pos-acc {:.3} {:.0} img/s",
            r.epoch, r.loss, r.pos_acc, r.images_per_s
        );
        if quiet && r.step % 20 == 0 {
            eprintln!("step {} {line} lr {:.4}", r.step, r.lr);
        }
        bar.set_message(line);
        if !estimated && r.images_per_s > 0.0 && r.step >= 2 {
            estimated = true;
            let msg = format!(
                "estimated time per epoch: {:.1} min",
                t.train.len() as f64 / r.images_per_s / 60.0
            );
            if quiet {
                eprintln!("{msg}");
            } else {
                bar.println(msg);
            }
        }
    };
    let result = trainer.run(&stop, &mut on_step);
    bar.finish();
    result?;
    let mins = started.elapsed().as_secs_f64() / 60.0;
    if stop.load(Ordering::SeqCst) {
        eprintln!("interrupted after {mins:.1} min at step {}", trainer.step);
        std::process::exit(130);
    }
    eprintln!(
        "done in {mins:.1} min at step {}; run dir {}",
        trainer.step,
        trainer.cfg.run_dir().display()
    );
    if let Some(knn) = trainer.history.iter().rev().find_map(|r| r.get("knn_top1")) {
        eprintln!(
            "kNN top-1 at the last evaluation: {:.2}%",
            100.0 * knn.as_f64().unwrap_or(0.0)
        );
    }
    Ok(())
}
