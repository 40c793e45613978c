use crate::gpu::Gpu;
use crate::nn::arch::Arch;
use crate::train::TrainConfig;
use std::sync::Arc;

#[derive(clap::Args, Debug)]
pub struct BenchTrainArgs {
    #[arg(long, value_enum, default_value = "tiny")]
    pub arch: Arch,
    /// Channel width multiplier of the encoder.
    #[arg(long, default_value_t = 1.0)]
    pub width: f32,
    /// Source images per step (two views each).
    #[arg(long, default_value_t = 256)]
    pub batch: usize,
    #[arg(long, default_value_t = 32)]
    pub image_size: usize,
    /// Timed steps (after 3 warm-up steps).
    #[arg(long, default_value_t = 10)]
    pub steps: usize,
    /// Projection-head hidden width (bench_torch.py uses 512).
    #[arg(long, default_value_t = 512)]
    pub head_hidden: usize,
    #[arg(long)]
    pub json: bool,
}

pub fn run(gpu: Gpu, a: &BenchTrainArgs) -> anyhow::Result<()> {
    let cfg = TrainConfig {
        arch: a.arch,
        width: a.width,
        batch: a.batch,
        image_size: a.image_size,
        head_hidden: Some(a.head_hidden),
        knn_every: 0,
        ..Default::default()
    };
    cfg.validate()?;
    anyhow::ensure!(a.steps > 0, "--steps must be at least 1");
    let desc = gpu.describe();
    let r = crate::bench::train::bench_train(Arc::new(gpu), cfg, 3, a.steps)?;
    if a.json {
        println!("{}", serde_json::to_string(&r)?);
    } else {
        println!("{desc}");
        println!(
            "{} batch {} ({}×{} px, 2 views each), {} steps:\n  full step (with augmentation): {:>8.1} images/s  ({:.1} ms/step)\n  without augmentation:          {:>8.1} images/s  ({:.1} ms/step)",
            r.arch, r.batch, r.image_size, r.image_size, r.steps, r.images_per_s, r.step_ms, r.images_per_s_no_augment, r.step_ms_no_augment
        );
    }
    Ok(())
}
