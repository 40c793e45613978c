//! `simclr train`: settings from defaults ← `--config` TOML ← flags; progress bar; Ctrl-C
//! writes a checkpoint.

use super::DeviceArgs;
use crate::nn::arch::Arch;
use crate::train::{StepRecord, TrainConfig, Trainer};
use anyhow::Result;
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
        let mut c = match &self.config {
            Some(p) => TrainConfig::from_toml_file(p)?,
            None => TrainConfig::default(),
        };
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
        if a.limit_train.is_some() {
            c.limit_train = a.limit_train;
        }
        if a.limit_test.is_some() {
            c.limit_test = a.limit_test;
        }
        if a.max_steps.is_some() {
            c.max_steps = a.max_steps;
        }
        if a.blur_p.is_some() {
            c.blur_p = a.blur_p;
        }
        if a.no_download {
            c.download = false;
        }
        c.validate()?;
        Ok(c)
    }
}

pub fn run(dev: &DeviceArgs, args: &TrainArgs) -> Result<()> {
    // Settings are checked before any GPU work.
    let cfg = if args.resume.is_none() {
        Some(args.to_config()?)
    } else {
        None
    };
    let gpu = Arc::new(dev.open()?);
    eprintln!("device: {}", gpu.describe());
    let mut trainer = match &args.resume {
        Some(dir) => Trainer::resume(gpu.clone(), dir)?,
        None => Trainer::new(gpu.clone(), cfg.unwrap())?,
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
        eprintln!(
            "note: '{}' is a software (CPU) adapter: training will be slow. {}",
            gpu.info.name,
            if c.arch != Arch::Tiny {
                "Consider --arch tiny."
            } else {
                ""
            }
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
    let bar = if args.quiet {
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
        bar.set_message(format!(
            "epoch {} loss {:.4} pos-acc {:.3} {:.0} img/s",
            r.epoch, r.loss, r.pos_acc, r.images_per_s
        ));
        if args.quiet && r.step % 20 == 0 {
            eprintln!(
                "step {} epoch {} loss {:.4} lr {:.4} {:.0} img/s",
                r.step, r.epoch, r.loss, r.lr, r.images_per_s
            );
        }
        if !estimated && r.images_per_s > 0.0 && r.step >= 2 {
            estimated = true;
            let epoch_s = t.train.len() as f64 / r.images_per_s;
            bar.println(format!("estimated time per epoch: {:.1} min", epoch_s / 60.0));
        }
    };
    let result = trainer.run(&stop, &mut on_step);
    bar.finish();
    result?;
    if let Some(last) = trainer.history.last() {
        eprintln!("done in {:.1} min: {last}", started.elapsed().as_secs_f64() / 60.0);
    }
    Ok(())
}
