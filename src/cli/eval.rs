//! `simclr eval knn`: the training monitor's kNN on a saved checkpoint, optionally next to the
//! same kNN on a randomly initialised encoder and on raw pixels.

use super::DeviceArgs;
use crate::data::{self, Dataset, DatasetKind, Split};
use crate::eval::{features::extract_features, features::normalized_batch, knn, load::load_model};
use crate::gpu::Gpu;
use crate::nn::model::Model;
use anyhow::{bail, Result};
use std::path::PathBuf;

#[derive(clap::Subcommand, Debug)]
pub enum EvalCommand {
    /// Weighted kNN top-1/top-5 on the test split.
    Knn(KnnArgs),
}

#[derive(clap::Args, Debug)]
pub struct KnnArgs {
    /// Run directory (newest checkpoint) or a checkpoint file.
    #[arg(long)]
    pub checkpoint: PathBuf,
    #[arg(long, default_value_t = 200)]
    pub k: usize,
    #[arg(long, default_value_t = 0.1)]
    pub t: f32,
    /// Dataset folder (else the checkpoint's, $SIMCLR_DATA, ./data).
    #[arg(long)]
    pub data: Option<PathBuf>,
    /// Use the first N training images as the kNN memory bank.
    #[arg(long)]
    pub limit_train: Option<usize>,
    /// Evaluate on the first N test images.
    #[arg(long)]
    pub limit_test: Option<usize>,
    #[arg(long, default_value_t = 256)]
    pub batch: usize,
    /// Also report a randomly initialised encoder and raw pixels.
    #[arg(long)]
    pub baselines: bool,
}

struct Splits {
    train: Dataset,
    test: Dataset,
    n_train: usize,
    n_test: usize,
}

fn knn_of(gpu: &Gpu, s: &Splits, ftr: Vec<f32>, fte: Vec<f32>, d: usize, a: &KnnArgs) -> Result<knn::KnnResult> {
    let (Some(ltr), Some(lte)) = (&s.train.labels, &s.test.labels) else {
        bail!("kNN needs labelled data")
    };
    let classes = s.test.classes.len().max(10);
    knn::knn_eval(
        gpu,
        &ftr,
        &ltr[..s.n_train],
        &fte,
        &lte[..s.n_test],
        d,
        classes,
        a.k,
        a.t,
    )
}

fn features(gpu: &Gpu, m: &Model, s: &Splits) -> Result<(Vec<f32>, Vec<f32>)> {
    Ok((
        extract_features(gpu, m, &s.train, Some(s.n_train))?,
        extract_features(gpu, m, &s.test, Some(s.n_test))?,
    ))
}

fn pixels(ds: &Dataset, n: usize) -> Vec<f32> {
    normalized_batch(ds, &(0..n).collect::<Vec<_>>(), n)
}

pub fn run(dev: &DeviceArgs, cmd: &EvalCommand) -> Result<()> {
    let EvalCommand::Knn(a) = cmd;
    anyhow::ensure!(a.batch >= 1, "--batch must be at least 1");
    anyhow::ensure!(
        a.k >= 1 && a.t > 0.0,
        "--k must be >= 1 and --t > 0 (got {} and {})",
        a.k,
        a.t
    );
    let gpu = dev.open()?;
    let (model, side) = load_model(&gpu, &a.checkpoint, a.batch)?;
    let dir = data::resolve_data_dir(a.data.as_deref().or(side.config.data.as_deref()));
    let train = data::load(DatasetKind::Cifar10, &dir, Split::Train)?;
    let test = data::load(DatasetKind::Cifar10, &dir, Split::Test)?;
    let n_train = a.limit_train.unwrap_or(train.len()).min(train.len());
    let n_test = a.limit_test.unwrap_or(test.len()).min(test.len());
    let s = Splits {
        train,
        test,
        n_train,
        n_test,
    };
    let d = model.features().shape[1];
    let mut rows = Vec::new();
    let (ftr, fte) = features(&gpu, &model, &s)?;
    rows.push((
        format!("SimCLR encoder (step {})", side.step),
        knn_of(&gpu, &s, ftr, fte, d, a)?,
    ));
    if a.baselines {
        let random = Model::new(&gpu, &side.config.model(), a.batch, side.config.seed)?;
        let (ftr, fte) = features(&gpu, &random, &s)?;
        rows.push(("random-init encoder".into(), knn_of(&gpu, &s, ftr, fte, d, a)?));
        let px = 3 * s.train.height * s.train.width;
        let (ptr, pte) = (pixels(&s.train, n_train), pixels(&s.test, n_test));
        rows.push(("raw pixels".into(), knn_of(&gpu, &s, ptr, pte, px, a)?));
    }
    println!(
        "kNN (k={}, T={}), {} train / {} test images:",
        a.k, a.t, n_train, n_test
    );
    for (name, r) in &rows {
        println!(
            "  {name:<32} top-1 {:>6.2}%  top-5 {:>6.2}%",
            100.0 * r.top1,
            100.0 * r.top5
        );
    }
    let json: serde_json::Value = rows
        .iter()
        .map(|(n, r)| (n.clone(), serde_json::to_value(r).unwrap()))
        .collect();
    let side_path = crate::train::checkpoint::resolve(&a.checkpoint)?;
    let out = side_path.with_file_name("eval_knn.json");
    crate::train::checkpoint::atomic_write(&out, serde_json::to_string_pretty(&json)?.as_bytes())?;
    println!("written {}", out.display());
    Ok(())
}
