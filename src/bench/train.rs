//! `simclr bench train`: images/s of the whole training step, with the same definition as
//! `../shared/bench/bench_torch.py` (source images per second; each gives two views).

use crate::data::Dataset;
use crate::gpu::Gpu;
use crate::train::{trainer::compute_program, TrainConfig, Trainer};
use anyhow::Result;
use std::sync::Arc;
use std::time::Instant;

#[derive(Clone, Debug, serde::Serialize)]
pub struct TrainBench {
    pub arch: String,
    pub batch: usize,
    pub image_size: usize,
    pub steps: usize,
    /// Full step: augmentation, forward, NT-Xent, backward, optimizer.
    pub images_per_s: f64,
    pub step_ms: f64,
    /// The same step on already-augmented views (what bench_torch.py measures).
    pub images_per_s_no_augment: f64,
    pub step_ms_no_augment: f64,
}

/// Random images (the step's cost does not depend on their content).
pub fn synthetic_dataset(n: usize, size: usize) -> Dataset {
    let mut state = 0x9e3779b97f4a7c15u64;
    let images = (0..n * size * size * 3)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 56) as u8
        })
        .collect();
    Dataset {
        name: "synthetic".into(),
        images,
        labels: Some((0..n as u32).map(|i| i % 10).collect()),
        classes: (0..10).map(|i| format!("class{i}")).collect(),
        height: size,
        width: size,
        mean: [0.5; 3],
        std: [0.25; 3],
    }
}

pub fn bench_train(gpu: Arc<Gpu>, mut cfg: TrainConfig, warmup: usize, steps: usize) -> Result<TrainBench> {
    let tmp = std::env::temp_dir().join(format!("simclr-bench-{}", std::process::id()));
    cfg.runs_dir = tmp.clone();
    cfg.name = "bench".into();
    cfg.epochs = 1000;
    cfg.warmup_epochs = 1;
    let ds = synthetic_dataset(cfg.batch * 2, cfg.image_size);
    let mut t = Trainer::with_data(gpu.clone(), cfg.clone(), ds)?;
    for _ in 0..warmup {
        t.step_once()?;
    }
    t.flush()?;
    let start = Instant::now();
    for _ in 0..steps {
        t.step_once()?;
    }
    t.flush()?;
    let full = start.elapsed().as_secs_f64() / steps as f64;
    let compute = compute_program(&t.model, &t.loss, &t.opt);
    gpu.run(&compute)?;
    let start = Instant::now();
    for _ in 0..steps {
        gpu.submit(&compute);
    }
    gpu.wait()?;
    let bare = start.elapsed().as_secs_f64() / steps as f64;
    let _ = std::fs::remove_dir_all(&tmp);
    Ok(TrainBench {
        arch: format!("{:?}", cfg.arch).to_lowercase(),
        batch: cfg.batch,
        image_size: cfg.image_size,
        steps,
        images_per_s: cfg.batch as f64 / full,
        step_ms: full * 1e3,
        images_per_s_no_augment: cfg.batch as f64 / bare,
        step_ms_no_augment: bare * 1e3,
    })
}
