//! Datasets on the host: CIFAR-10/100 and STL-10 in their official binary layouts, image folders,
//! the seeded batch sampler and the downloader. No GPU code lives here: `augment` uploads the
//! bytes of a loaded `Dataset` once.

mod cifar;
pub mod download;
pub mod folder;
mod sampler;
mod stl10;

pub use download::{download, download_archive, ArchiveSpec};
pub use folder::{FolderReport, DEFAULT_FOLDER_SIZE};
pub use sampler::{below, mix_seed, Sampler};

use anyhow::{bail, Context};
use std::path::{Path, PathBuf};

/// Images in memory as RGB bytes, all of one size.
#[derive(Clone, Debug)]
pub struct Dataset {
    /// "cifar10-train", the folder's name, ...
    pub name: String,
    /// N×H×W×3 RGB bytes: each image HWC, row-major, images one after another.
    pub images: Vec<u8>,
    /// One class index per image; `None` for unlabeled data.
    pub labels: Option<Vec<u32>>,
    /// Class names in label order (empty for unlabeled data).
    pub classes: Vec<String>,
    pub height: usize,
    pub width: usize,
    /// Per-channel mean and standard deviation of the pixel values in [0, 1], used to normalise
    /// the augmented views (the training split's statistics for the built-in datasets).
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

impl Dataset {
    /// Bytes of one image (H×W×3).
    pub fn image_bytes(&self) -> usize {
        self.height * self.width * 3
    }

    pub fn len(&self) -> usize {
        if self.image_bytes() == 0 {
            0
        } else {
            self.images.len() / self.image_bytes()
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Image `i` as H×W×3 RGB bytes. Panics when `i >= len()` (a programming error).
    pub fn image(&self, i: usize) -> &[u8] {
        let n = self.image_bytes();
        &self.images[i * n..(i + 1) * n]
    }

    pub fn label(&self, i: usize) -> Option<u32> {
        self.labels.as_ref().map(|l| l[i])
    }

    /// A new dataset holding the images at `indices` (in that order), same statistics.
    /// Panics on an index out of range (a programming error).
    pub fn subset(&self, indices: &[u32]) -> Dataset {
        let mut images = Vec::with_capacity(indices.len() * self.image_bytes());
        for &i in indices {
            images.extend_from_slice(self.image(i as usize));
        }
        Dataset {
            name: format!("{}[{} images]", self.name, indices.len()),
            images,
            labels: self
                .labels
                .as_ref()
                .map(|l| indices.iter().map(|&i| l[i as usize]).collect()),
            classes: self.classes.clone(),
            height: self.height,
            width: self.width,
            mean: self.mean,
            std: self.std,
        }
    }

    /// Per-channel mean and standard deviation (population) of all pixels, in [0, 1] units.
    pub fn channel_stats(&self) -> ([f32; 3], [f32; 3]) {
        channel_stats(&self.images)
    }
}

/// Per-channel mean and population standard deviation of interleaved RGB bytes, in [0, 1].
pub fn channel_stats(rgb: &[u8]) -> ([f32; 3], [f32; 3]) {
    let mut sum = [0f64; 3];
    let mut sq = [0f64; 3];
    for px in rgb.chunks_exact(3) {
        for c in 0..3 {
            let v = px[c] as f64 / 255.0;
            sum[c] += v;
            sq[c] += v * v;
        }
    }
    let n = (rgb.len() / 3).max(1) as f64;
    let mut mean = [0f32; 3];
    let mut std = [0f32; 3];
    for c in 0..3 {
        let m = sum[c] / n;
        mean[c] = m as f32;
        // A constant image would give std 0 and divide by zero when normalising.
        std[c] = ((sq[c] / n - m * m).max(0.0).sqrt() as f32).max(1e-3);
    }
    (mean, std)
}

/// The dataset families `load` understands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DatasetKind {
    Cifar10,
    Cifar100,
    Stl10,
    /// A folder of images: one subfolder per class (labelled) or images directly inside (unlabeled).
    Folder,
}

impl DatasetKind {
    pub fn name(self) -> &'static str {
        match self {
            DatasetKind::Cifar10 => "cifar10",
            DatasetKind::Cifar100 => "cifar100",
            DatasetKind::Stl10 => "stl10",
            DatasetKind::Folder => "folder",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, clap::ValueEnum, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Split {
    Train,
    Test,
    /// STL-10's 100,000 unlabeled images; for a folder, its `unlabeled/` subfolder.
    Unlabeled,
}

impl Split {
    pub fn name(self) -> &'static str {
        match self {
            Split::Train => "train",
            Split::Test => "test",
            Split::Unlabeled => "unlabeled",
        }
    }
}

/// Settings that only some dataset kinds use.
#[derive(Clone, Debug, Default)]
pub struct LoadOptions {
    /// Folder datasets: side of the square working size every image is resized to
    /// (shorter side scaled, then centre-cropped). Default: the images' own size when they all
    /// share one no larger than 256 px, else `DEFAULT_FOLDER_SIZE`.
    pub image_size: Option<usize>,
    /// Folder datasets: fail on the first file that does not decode instead of skipping it.
    pub strict: bool,
    /// Folder datasets: where decoded folders are cached (default: see `folder::cache_dir`).
    pub cache_dir: Option<PathBuf>,
    /// Folder datasets: do not read or write the cache.
    pub no_cache: bool,
}

/// `--data DIR` if given, else `$SIMCLR_DATA`, else `./data`.
pub fn resolve_data_dir(cli: Option<&Path>) -> PathBuf {
    if let Some(p) = cli {
        return p.to_path_buf();
    }
    match std::env::var_os("SIMCLR_DATA") {
        Some(v) if !v.is_empty() => PathBuf::from(v),
        _ => PathBuf::from("data"),
    }
}

/// Load one split of a dataset from `dir` with default options.
pub fn load(kind: DatasetKind, dir: &Path, split: Split) -> anyhow::Result<Dataset> {
    load_with(kind, dir, split, &LoadOptions::default())
}

/// Load one split of a dataset from `dir`. Every failure names the path (and, for truncated
/// files, the byte count); nothing under `dir` is modified.
pub fn load_with(kind: DatasetKind, dir: &Path, split: Split, opts: &LoadOptions) -> anyhow::Result<Dataset> {
    if !dir.exists() {
        bail!(
            "data directory {} does not exist (set it with --data DIR or $SIMCLR_DATA; \
             `simclr data download {}` fetches the built-in datasets)",
            dir.display(),
            kind.name()
        );
    }
    match kind {
        DatasetKind::Cifar10 => cifar::load(cifar::CIFAR10, dir, split),
        DatasetKind::Cifar100 => cifar::load(cifar::CIFAR100, dir, split),
        DatasetKind::Stl10 => stl10::load(dir, split),
        DatasetKind::Folder => {
            let (ds, report) = folder::load(dir, split, opts)?;
            if report.skipped > 0 {
                eprintln!("warning: {}", report.skipped_message());
            }
            Ok(ds)
        }
    }
    .with_context(|| format!("loading {} ({}) from {}", kind.name(), split.name(), dir.display()))
}

/// `dir` itself when it holds `marker`, else `dir/sub` when that does; otherwise an error that
/// says both places were looked at.
pub(crate) fn find_dir(dir: &Path, sub: &str, marker: &str) -> anyhow::Result<PathBuf> {
    if dir.join(marker).exists() {
        return Ok(dir.to_path_buf());
    }
    let inner = dir.join(sub);
    if inner.join(marker).exists() {
        return Ok(inner);
    }
    bail!("{marker} not found in {} nor in {}", dir.display(), inner.display())
}

/// Read a whole file, naming it on failure.
pub(crate) fn read_file(path: &Path) -> anyhow::Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("reading {}", path.display()))
}

/// Non-empty trimmed lines of a text file (class-name lists).
pub(crate) fn read_lines(path: &Path) -> anyhow::Result<Vec<String>> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(String::from)
        .collect())
}
