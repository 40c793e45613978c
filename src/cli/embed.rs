//! `simclr embed` (features of every image to safetensors) and `simclr neighbors` (a query's
//! nearest images under the encoder, as a picture).

use super::DeviceArgs;
use crate::data::{self, Dataset, DatasetKind, Split};
use crate::eval::{embed, features, knn, load::load_model, retrieval};
use crate::gpu::Gpu;
use crate::nn::model::Model;
use crate::train::checkpoint;
use anyhow::{bail, Result};
use std::path::{Path, PathBuf};

/// The encoder and the images to embed.
#[derive(clap::Args, Debug, Clone)]
pub struct EmbedSource {
    /// Run directory (newest checkpoint) or a checkpoint file.
    #[arg(long)]
    pub checkpoint: PathBuf,
    /// Dataset folder (else the checkpoint's, $SIMCLR_DATA, ./data).
    #[arg(long)]
    pub data: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "cifar10")]
    pub dataset: DatasetKind,
    #[arg(long, value_enum, default_value = "train")]
    pub split: Split,
    /// Only the first N images.
    #[arg(long)]
    pub limit: Option<usize>,
    /// Images per forward pass.
    #[arg(long, default_value_t = 256)]
    pub batch: usize,
}

#[derive(clap::Args, Debug)]
pub struct EmbedArgs {
    #[command(flatten)]
    pub src: EmbedSource,
    /// Output file: `features` [n, d] f32 and `labels` [n] i64 (when the dataset has labels).
    #[arg(long)]
    pub out: PathBuf,
}

#[derive(clap::Args, Debug)]
pub struct NeighborsArgs {
    #[command(flatten)]
    pub src: EmbedSource,
    /// An image index in the dataset split, or an image file (decoded, resized and embedded
    /// like the dataset's images).
    #[arg(long)]
    pub query: String,
    #[arg(long, default_value_t = 8)]
    pub k: usize,
    /// Picture of the query and its neighbours (PNG); the list is also written as JSON beside it.
    #[arg(long, default_value = "neighbors.png")]
    pub out: PathBuf,
}

struct Loaded {
    gpu: Gpu,
    model: Model,
    ds: Dataset,
    n: usize,
}

fn load(dev: &DeviceArgs, s: &EmbedSource) -> Result<Loaded> {
    anyhow::ensure!(s.batch >= 1, "--batch must be at least 1");
    let side = checkpoint::read_sidecar(&checkpoint::resolve(&s.checkpoint)?)?;
    let dir = data::resolve_data_dir(s.data.as_deref().or(side.config.data.as_deref()));
    let opts = data::LoadOptions {
        image_size: Some(side.config.image_size),
        ..Default::default()
    };
    let ds = data::load_with(s.dataset, &dir, s.split, &opts)?;
    let n = s.limit.unwrap_or(ds.len()).min(ds.len());
    anyhow::ensure!(n > 0, "the dataset has no images");
    let gpu = dev.open()?;
    // No more rows than images: a forward pass costs its planned rows, used or not.
    let (model, _) = load_model(&gpu, &s.checkpoint, s.batch.min(n))?;
    Ok(Loaded { gpu, model, ds, n })
}

pub fn run_embed(dev: &DeviceArgs, a: &EmbedArgs) -> Result<()> {
    let l = load(dev, &a.src)?;
    let t = std::time::Instant::now();
    let f = features::extract_features(&l.gpu, &l.model, &l.ds, Some(l.n))?;
    let d = l.model.features().shape[1];
    let labels = l.ds.labels.as_ref().map(|v| &v[..l.n]);
    embed::save_features(&a.out, &f, d, labels)?;
    println!(
        "{} images × {d} features{} of {} in {:.1?} → {}",
        l.n,
        if labels.is_some() { " + labels" } else { "" },
        l.ds.name,
        t.elapsed(),
        a.out.display()
    );
    Ok(())
}

/// The query's pixels (HWC) and features: a dataset index or an image file.
fn query(l: &Loaded, q: &str, bank: &[f32], d: usize) -> Result<(Vec<u8>, Vec<f32>, Option<usize>)> {
    if let Ok(i) = q.parse::<usize>() {
        if i >= l.n {
            bail!("query index {i} is outside the {} images searched", l.n);
        }
        return Ok((l.ds.image(i).to_vec(), bank[i * d..(i + 1) * d].to_vec(), Some(i)));
    }
    let path = Path::new(q);
    if !path.is_file() {
        bail!("--query {q}: neither an image index nor an image file");
    }
    let pixels = data::folder::load_image_file(path, l.ds.height.max(l.ds.width))?;
    let one = Dataset {
        name: q.to_string(),
        images: pixels.clone(),
        labels: None,
        classes: Vec::new(),
        ..l.ds.subset(&[])
    };
    let f = features::extract_features(&l.gpu, &l.model, &one, None)?;
    Ok((pixels, f, None))
}

pub fn run_neighbors(dev: &DeviceArgs, a: &NeighborsArgs) -> Result<()> {
    anyhow::ensure!(a.k >= 1, "--k must be at least 1");
    let l = load(dev, &a.src)?;
    let d = l.model.features().shape[1];
    let bank = features::extract_features(&l.gpu, &l.model, &l.ds, Some(l.n))?;
    let (qpix, qf, qidx) = query(&l, &a.query, &bank, d)?;
    let nn = knn::nearest(&l.gpu, &bank, &qf, d, a.k)?.remove(0);
    let label = |i: usize| -> String {
        match l.ds.label(i) {
            Some(c) => l.ds.classes.get(c as usize).cloned().unwrap_or_else(|| c.to_string()),
            None => "-".into(),
        }
    };
    println!(
        "query {}{}: {} nearest of {} images",
        a.query,
        qidx.map(|i| format!(" ({})", label(i))).unwrap_or_default(),
        nn.len(),
        l.n
    );
    let mut list = Vec::new();
    for (rank, &(s, i)) in nn.iter().enumerate() {
        println!("  {:>2}. image {i:>6}  {:<12} similarity {s:.4}", rank + 1, label(i));
        list.push(serde_json::json!({"rank": rank + 1, "index": i, "label": l.ds.label(i), "similarity": s}));
    }
    let cells: Vec<(&[u8], f32)> = nn.iter().map(|&(s, i)| (l.ds.image(i), s)).collect();
    let img = retrieval::neighbour_grid(&qpix, &cells, l.ds.height, l.ds.width, 3);
    img.save(&a.out)
        .map_err(|e| anyhow::anyhow!("writing {}: {e}", a.out.display()))?;
    let json = serde_json::json!({"query": a.query, "query_index": qidx, "neighbours": list});
    let jpath = a.out.with_extension("json");
    crate::train::checkpoint::atomic_write(&jpath, serde_json::to_string_pretty(&json)?.as_bytes())?;
    println!("written {} and {}", a.out.display(), jpath.display());
    Ok(())
}
