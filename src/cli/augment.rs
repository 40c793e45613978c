//! `simclr augment`: a headless preview of the augmentations (PNG grid + JSON parameters).

use super::data::SourceArgs;
use super::DeviceArgs;
use crate::augment::preview::{preview, PreviewOptions};
use crate::augment::AugmentConfig;
use anyhow::Context;
use clap::Args;
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct AugmentArgs {
    #[command(flatten)]
    pub source: SourceArgs,
    /// Images (grid rows).
    #[arg(long, default_value_t = 16)]
    pub n: usize,
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
    /// The grid: original | view 1 | view 2 per row. The parameters go next to it as .json.
    #[arg(long, default_value = "pairs.png")]
    pub out: PathBuf,
    /// Output view side (default: the source size, e.g. 32 for CIFAR, 96 for STL-10).
    #[arg(long)]
    pub size: Option<usize>,
    /// Augmentation settings (TOML with AugmentConfig's fields); --size overrides out_size.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Upscaling of the grid cells.
    #[arg(long, default_value_t = 4)]
    pub scale: usize,
}

pub fn run(dev: &DeviceArgs, args: &AugmentArgs) -> anyhow::Result<()> {
    let ds = args.source.load()?;
    let mut cfg = match &args.config {
        Some(p) => {
            let text = std::fs::read_to_string(p).with_context(|| format!("reading {}", p.display()))?;
            toml::from_str::<AugmentConfig>(&text).with_context(|| format!("parsing {}", p.display()))?
        }
        None => AugmentConfig::for_size(args.size.unwrap_or(ds.height.max(ds.width))),
    };
    if let Some(s) = args.size {
        cfg.out_size = s;
    }
    let gpu = dev.open()?;
    let opts = PreviewOptions {
        n: args.n,
        seed: args.seed,
        cfg,
        scale: args.scale,
    };
    let (png, json) = preview(&gpu, &ds, &opts)?;
    png.save(&args.out)
        .with_context(|| format!("writing {}", args.out.display()))?;
    let json_path = args.out.with_extension("json");
    std::fs::write(&json_path, json).with_context(|| format!("writing {}", json_path.display()))?;
    println!("wrote {} and {}", args.out.display(), json_path.display());
    Ok(())
}
