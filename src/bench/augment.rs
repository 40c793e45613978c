//! `simclr bench augment`: augmented images per second at batch 512 for 32 px and 96 px views
//! (the default recipe for each size: no blur at 32 px, blur p = 0.5 at 96 px), on random images
//! of the output size (CIFAR-like at 32, STL-10-like at 96). Each batch is timed from parameter
//! sampling to the end of the GPU work, as a training step would pay for it.

use crate::augment::{batch_rng, AugmentConfig, Augmenter, GpuImages};
use crate::data::{Dataset, Sampler};
use crate::gpu::{Gpu, Tensor};
use serde::Serialize;
use std::fmt;
use std::time::{Duration, Instant};

#[derive(Clone, Debug, Serialize)]
pub struct AugmentBenchRow {
    pub out_size: usize,
    pub batch: usize,
    pub blur_p: f32,
    pub iterations: usize,
    /// Wall time per batch: sampling + upload + the GPU pass + waiting for it.
    pub ms_per_batch: f64,
    /// Of which: drawing the 2N views' parameters on the CPU and queueing the uploads.
    pub prepare_ms: f64,
    /// Source images per second (each gives two views).
    pub images_per_s: f64,
    pub views_per_s: f64,
}

#[derive(Clone, Debug, Serialize)]
pub struct AugmentBench {
    pub device: String,
    pub rows: Vec<AugmentBenchRow>,
}

impl fmt::Display for AugmentBench {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "augmentation on {}", self.device)?;
        writeln!(
            f,
            "{:>5} {:>6} {:>6} {:>6} {:>12} {:>11} {:>12} {:>12}",
            "size", "batch", "blur_p", "iters", "ms/batch", "prepare ms", "images/s", "views/s"
        )?;
        for r in &self.rows {
            writeln!(
                f,
                "{:>5} {:>6} {:>6} {:>6} {:>12.2} {:>11.3} {:>12.0} {:>12.0}",
                r.out_size,
                r.batch,
                r.blur_p,
                r.iterations,
                r.ms_per_batch,
                r.prepare_ms,
                r.images_per_s,
                r.views_per_s
            )?;
        }
        Ok(())
    }
}

/// Random RGB images (a fixed LCG: the same every run).
fn random_images(n: usize, side: usize) -> Dataset {
    let mut state = 0x2545_F491_4F6C_DD1Du64;
    let images = (0..n * side * side * 3)
        .map(|_| {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (state >> 56) as u8
        })
        .collect();
    Dataset {
        name: format!("random-{side}px"),
        images,
        labels: None,
        classes: Vec::new(),
        height: side,
        width: side,
        mean: [0.5; 3],
        std: [0.25; 3],
    }
}

/// Batch 512 at 32 px and 96 px, about two seconds each.
pub fn bench_augment(gpu: &Gpu) -> anyhow::Result<AugmentBench> {
    bench_augment_with(gpu, &[32, 96], 512, Duration::from_secs(2))
}

/// The benchmark for any sizes and batch; each size runs one warm-up batch, then batches until
/// `min_time` has passed (at least 3, at most 100).
pub fn bench_augment_with(
    gpu: &Gpu,
    sizes: &[usize],
    batch: usize,
    min_time: Duration,
) -> anyhow::Result<AugmentBench> {
    let mut rows = Vec::new();
    for &size in sizes {
        let cfg = AugmentConfig::for_size(size);
        let ds = random_images((4 * batch).max(64), size);
        let images = GpuImages::upload(gpu, &ds)?;
        let out = Tensor::zeros(gpu, "bench.views", &[2 * batch, 3, size, size])?;
        let mut aug = Augmenter::new(gpu, &images, &out, &cfg)?;
        let sampler = Sampler::new(ds.len(), batch, true, 1)?;
        let batches = sampler.batches(0);
        let mut step = 0u64;
        let mut run_one = |aug: &mut Augmenter| -> anyhow::Result<Duration> {
            let t = Instant::now();
            let idx = &batches[step as usize % batches.len()];
            aug.prepare(gpu, idx, &mut batch_rng(1, step));
            let prep = t.elapsed();
            step += 1;
            gpu.run(aug.program())?;
            Ok(prep)
        };
        run_one(&mut aug)?;
        let start = Instant::now();
        let (mut iters, mut prep) = (0usize, Duration::ZERO);
        while iters < 3 || (start.elapsed() < min_time && iters < 100) {
            prep += run_one(&mut aug)?;
            iters += 1;
        }
        let secs = start.elapsed().as_secs_f64() / iters as f64;
        rows.push(AugmentBenchRow {
            out_size: size,
            batch,
            blur_p: cfg.blur_p,
            iterations: iters,
            ms_per_batch: secs * 1e3,
            prepare_ms: prep.as_secs_f64() * 1e3 / iters as f64,
            images_per_s: batch as f64 / secs,
            views_per_s: 2.0 * batch as f64 / secs,
        });
    }
    Ok(AugmentBench {
        device: gpu.describe(),
        rows,
    })
}
