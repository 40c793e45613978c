//! Feature files: `features` (n × d, f32) and, when known, `labels` (n, i64) in safetensors,
//! loadable with `safetensors.numpy.load_file` or `safetensors.torch.load_file`. `embed` writes
//! them; the evaluation commands also use them as a cache next to the checkpoint.

use super::probe::Features;
use crate::train::checkpoint::atomic_write;
use anyhow::{anyhow, bail, Context, Result};
use safetensors::{tensor::TensorView, Dtype, SafeTensors};
use std::path::Path;

/// Write `features` [n, d] and `labels` [n] (skipped when `labels` is None).
pub fn save_features(path: &Path, data: &[f32], d: usize, labels: Option<&[u32]>) -> Result<()> {
    let n = data.len() / d.max(1);
    let mut views = vec![(
        "features".to_string(),
        TensorView::new(Dtype::F32, vec![n, d], bytemuck::cast_slice(data))?,
    )];
    let label_bytes: Vec<u8> = labels
        .unwrap_or(&[])
        .iter()
        .flat_map(|&l| (l as i64).to_le_bytes())
        .collect();
    if let Some(l) = labels {
        anyhow::ensure!(l.len() == n, "{} labels for {n} feature rows", l.len());
        views.push(("labels".into(), TensorView::new(Dtype::I64, vec![n], &label_bytes)?));
    }
    atomic_write(path, &safetensors::serialize(views, None)?)
}

/// Read a feature file; labels are empty when the file has none.
pub fn load_features(path: &Path) -> Result<(Vec<f32>, usize, Option<Vec<u32>>)> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let st = SafeTensors::deserialize(&bytes)
        .map_err(|e| anyhow!("{} is not a valid safetensors file: {e}", path.display()))?;
    let f = st
        .tensor("features")
        .map_err(|_| anyhow!("{} has no 'features' tensor", path.display()))?;
    if f.dtype() != Dtype::F32 || f.shape().len() != 2 {
        bail!(
            "{}: 'features' must be a 2-D f32 tensor (is {:?} {:?})",
            path.display(),
            f.dtype(),
            f.shape()
        );
    }
    let (n, d) = (f.shape()[0], f.shape()[1]);
    let data: Vec<f32> = f
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect();
    let labels = match st.tensor("labels") {
        Ok(l) if l.dtype() == Dtype::I64 && l.shape() == [n] => Some(
            l.data()
                .chunks_exact(8)
                .map(|b| i64::from_le_bytes(b.try_into().unwrap()) as u32)
                .collect(),
        ),
        Ok(_) => bail!("{}: 'labels' must be an i64 tensor of {n} values", path.display()),
        Err(_) => None,
    };
    Ok((data, d, labels))
}

/// Load labelled features from `path` if it exists and has `n` rows; otherwise compute them
/// with `make` and write them there (a failed write only loses the cache).
pub fn cached(path: &Path, n: usize, make: impl FnOnce() -> Result<Features>) -> Result<Features> {
    if let Ok((data, d, Some(labels))) = load_features(path) {
        if labels.len() == n {
            return Features::new(data, labels, d);
        }
    }
    let f = make()?;
    if let Err(e) = save_features(path, &f.data, f.d, Some(&f.labels)) {
        eprintln!("note: could not cache features in {}: {e:#}", path.display());
    }
    Ok(f)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn feature_files_round_trip_with_and_without_labels() {
        let dir = std::env::temp_dir().join(format!("simclr-embed-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let data: Vec<f32> = (0..12).map(|i| i as f32 * 0.5 - 2.0).collect();
        let p = dir.join("a.safetensors");
        save_features(&p, &data, 4, Some(&[2, 0, 1])).unwrap();
        assert_eq!(load_features(&p).unwrap(), (data.clone(), 4, Some(vec![2, 0, 1])));
        save_features(&p, &data, 3, None).unwrap();
        assert_eq!(load_features(&p).unwrap(), (data.clone(), 3, None));
        assert!(save_features(&p, &data, 4, Some(&[1])).is_err(), "label count checked");
        std::fs::write(&p, b"not a safetensors file").unwrap();
        let e = load_features(&p).unwrap_err().to_string();
        assert!(e.contains("a.safetensors"), "{e}");
        // A cache that does not match the wanted row count is recomputed.
        save_features(&p, &data, 4, Some(&[2, 0, 1])).unwrap();
        let f = cached(&p, 2, || Features::new(vec![1.0; 4], vec![0, 1], 2)).unwrap();
        assert_eq!(f.labels, vec![0, 1]);
        let f = cached(&p, 2, || panic!("the fresh cache is used")).unwrap();
        assert_eq!(f.data, vec![1.0; 4]);
        std::fs::remove_dir_all(&dir).ok();
    }
}
