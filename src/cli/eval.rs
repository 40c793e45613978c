//! `simclr eval knn`: the training monitor's kNN on a saved checkpoint.

use super::DeviceArgs;
use crate::data::{self, DatasetKind, Split};
use crate::eval::{features::extract_features, knn, load::load_model};
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
}

pub fn run(dev: &DeviceArgs, cmd: &EvalCommand) -> Result<()> {
    match cmd {
        EvalCommand::Knn(a) => {
            let gpu = dev.open()?;
            let (model, side) = load_model(&gpu, &a.checkpoint, a.batch)?;
            let dir = data::resolve_data_dir(a.data.as_deref().or(side.config.data.as_deref()));
            let train = data::load(DatasetKind::Cifar10, &dir, Split::Train)?;
            let test = data::load(DatasetKind::Cifar10, &dir, Split::Test)?;
            let (Some(ltr), Some(lte)) = (&train.labels, &test.labels) else {
                bail!("kNN needs labelled data")
            };
            let d = model.features().shape[1];
            let n_tr = a.limit_train.unwrap_or(train.len()).min(train.len());
            let n_te = a.limit_test.unwrap_or(test.len()).min(test.len());
            let mut ftr = extract_features(&gpu, &model, &train, Some(n_tr))?;
            let mut fte = extract_features(&gpu, &model, &test, Some(n_te))?;
            knn::l2_normalize_rows(&mut ftr, d);
            knn::l2_normalize_rows(&mut fte, d);
            let r = knn::knn_eval(
                &gpu,
                &ftr,
                &ltr[..n_tr],
                &fte,
                &lte[..n_te],
                d,
                test.classes.len().max(10),
                a.k,
                a.t,
            )?;
            println!(
                "kNN (k={}, T={}): top-1 {:.2}%  top-5 {:.2}%  ({} train, {} test)",
                r.k,
                r.t,
                100.0 * r.top1,
                100.0 * r.top5,
                r.n_train,
                r.n_test
            );
            let side_path = crate::train::checkpoint::resolve(&a.checkpoint)?;
            let out = side_path.with_file_name("eval_knn.json");
            crate::train::checkpoint::atomic_write(&out, serde_json::to_string_pretty(&r)?.as_bytes())?;
            Ok(())
        }
    }
}
