//! Checkpoints: a safetensors file (PyTorch names and layouts) plus a JSON sidecar, both
//! written atomically (temp file + rename), the last K kept.

use anyhow::{anyhow, bail, Context, Result};
use safetensors::{tensor::TensorView, Dtype, SafeTensors};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

/// A host copy of one named f32 tensor.
#[derive(Clone, Debug)]
pub struct HostTensor {
    pub shape: Vec<usize>,
    pub data: Vec<f32>,
}

/// Write `bytes` to `path` so that a reader sees the old file or the new one, never a torn one.
pub fn atomic_write(path: &Path, bytes: &[u8]) -> Result<()> {
    use std::io::Write;
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let tmp = dir.join(format!(".{}.tmp", path.file_name().unwrap().to_string_lossy()));
    {
        let mut f = std::fs::File::create(&tmp).with_context(|| format!("creating {}", tmp.display()))?;
        f.write_all(bytes)
            .with_context(|| format!("writing {}", tmp.display()))?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path).with_context(|| format!("renaming {} to {}", tmp.display(), path.display()))?;
    Ok(())
}

/// Serialise f32 tensors (and i64 scalars such as BN's `num_batches_tracked`) as safetensors.
pub fn save_safetensors(
    path: &Path,
    tensors: &BTreeMap<String, HostTensor>,
    i64s: &BTreeMap<String, i64>,
) -> Result<()> {
    let i64_bytes: BTreeMap<&String, [u8; 8]> = i64s.iter().map(|(k, v)| (k, v.to_le_bytes())).collect();
    let mut views: Vec<(String, TensorView)> = Vec::new();
    for (name, t) in tensors {
        views.push((
            name.clone(),
            TensorView::new(Dtype::F32, t.shape.clone(), bytemuck::cast_slice(&t.data))?,
        ));
    }
    for (name, b) in &i64_bytes {
        views.push(((*name).clone(), TensorView::new(Dtype::I64, vec![], &b[..])?));
    }
    let bytes = safetensors::serialize(views, None)?;
    atomic_write(path, &bytes)
}

/// Read every f32 tensor of a safetensors file (other dtypes are skipped). A truncated or
/// corrupt file gives an error naming it.
pub fn load_safetensors(path: &Path) -> Result<BTreeMap<String, HostTensor>> {
    let bytes = std::fs::read(path).with_context(|| format!("reading checkpoint {}", path.display()))?;
    let st = SafeTensors::deserialize(&bytes).map_err(|e| {
        anyhow!(
            "{} is not a valid safetensors file (truncated or corrupt?): {e}",
            path.display()
        )
    })?;
    let mut out = BTreeMap::new();
    for (name, view) in st.tensors() {
        if view.dtype() != Dtype::F32 {
            continue;
        }
        let data: Vec<f32> = view
            .data()
            .chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect();
        out.insert(
            name,
            HostTensor {
                shape: view.shape().to_vec(),
                data,
            },
        );
    }
    Ok(out)
}

/// Check that `have` provides every (name, shape) in `want`, naming each mismatch.
pub fn check_compatible(have: &BTreeMap<String, HostTensor>, want: &[(String, Vec<usize>)], what: &str) -> Result<()> {
    let mut problems = Vec::new();
    for (name, shape) in want {
        match have.get(name) {
            None => problems.push(format!("missing tensor '{name}' (expected shape {shape:?})")),
            Some(t) if &t.shape != shape => problems.push(format!(
                "tensor '{name}': expected shape {shape:?}, checkpoint has {:?}",
                t.shape
            )),
            _ => {}
        }
    }
    if problems.is_empty() {
        return Ok(());
    }
    let n = problems.len();
    problems.truncate(8);
    bail!(
        "{what} does not match this model ({n} problem(s); a different architecture or width?):\n  {}",
        problems.join("\n  ")
    )
}

/// The JSON written next to each checkpoint.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Sidecar {
    pub config: super::TrainConfig,
    /// Epochs completed.
    pub epoch: usize,
    /// Optimizer steps completed.
    pub step: usize,
    pub tensors: String,
    /// Every metrics record so far (per-epoch summaries).
    pub metrics: Vec<serde_json::Value>,
}

pub fn checkpoint_stem(step: usize) -> String {
    format!("checkpoint-{step:08}")
}

/// Sidecars in `run_dir`, oldest first.
pub fn list_checkpoints(run_dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(run_dir)
        .map(|rd| {
            rd.filter_map(|e| e.ok().map(|e| e.path()))
                .filter(|p| {
                    let n = p.file_name().unwrap().to_string_lossy();
                    n.starts_with("checkpoint-") && n.ends_with(".json")
                })
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

/// The newest checkpoint's sidecar: `path` may be a run directory or a sidecar/safetensors file.
pub fn resolve(path: &Path) -> Result<PathBuf> {
    if path.is_dir() {
        return list_checkpoints(path)
            .pop()
            .ok_or_else(|| anyhow!("no checkpoint in {} (expected checkpoint-*.json)", path.display()));
    }
    if !path.exists() {
        bail!(
            "checkpoint {} not found (give a run directory or a checkpoint-*.json/.safetensors file)",
            path.display()
        );
    }
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if !name.starts_with("checkpoint-") {
        bail!(
            "{} is not a checkpoint (expected a run directory or a checkpoint-*.json/.safetensors file)",
            path.display()
        );
    }
    let side = path.with_extension("json");
    if side.is_file() {
        return Ok(side);
    }
    bail!(
        "checkpoint {}: its sidecar {} is missing (it holds the model settings)",
        path.display(),
        side.display()
    )
}

pub fn read_sidecar(path: &Path) -> Result<Sidecar> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    serde_json::from_str(&text).with_context(|| format!("{} is not a checkpoint sidecar", path.display()))
}

/// Delete all but the newest `keep` checkpoints.
pub fn prune(run_dir: &Path, keep: usize) {
    let all = list_checkpoints(run_dir);
    if all.len() <= keep.max(1) {
        return;
    }
    for side in &all[..all.len() - keep.max(1)] {
        let _ = std::fs::remove_file(side.with_extension("safetensors"));
        let _ = std::fs::remove_file(side);
    }
}
