//! Encoder features of a whole dataset: eval mode (running BN statistics), no augmentation,
//! images normalised by the dataset's channel mean and std.

use crate::data::Dataset;
use crate::nn::model::Model;
use anyhow::{ensure, Result};

/// NCHW floats of images `idx` of `ds`, normalised, padded with zeros to `rows` images.
pub fn normalized_batch(ds: &Dataset, idx: &[usize], rows: usize) -> Vec<f32> {
    let (h, w) = (ds.height, ds.width);
    let plane = h * w;
    let mut out = vec![0f32; rows * 3 * plane];
    for (r, &i) in idx.iter().enumerate() {
        let img = ds.image(i);
        for p in 0..plane {
            for c in 0..3 {
                let v = img[p * 3 + c] as f32 / 255.0;
                out[(r * 3 + c) * plane + p] = (v - ds.mean[c]) / ds.std[c];
            }
        }
    }
    out
}

/// Features (n × F, not normalised) of the first `limit` images of `ds`.
pub fn extract_features(gpu: &crate::gpu::Gpu, model: &Model, ds: &Dataset, limit: Option<usize>) -> Result<Vec<f32>> {
    let s = model.cfg.image_size;
    ensure!(
        ds.height == s && ds.width == s,
        "dataset '{}' has {}×{} images but the model was built for {s}×{s}",
        ds.name,
        ds.height,
        ds.width
    );
    let n = limit.unwrap_or(ds.len()).min(ds.len());
    let rows = model.plan.batch;
    let f = model.features().shape[1];
    let mut feats = Vec::with_capacity(n * f);
    for start in (0..n).step_by(rows) {
        let idx: Vec<usize> = (start..(start + rows).min(n)).collect();
        model.input().write_f32(gpu, &normalized_batch(ds, &idx, rows));
        gpu.run(model.forward_eval())?;
        let all = model.features().read_f32(gpu)?;
        feats.extend_from_slice(&all[..idx.len() * f]);
    }
    Ok(feats)
}

/// Labelled features of the first `limit` images of `ds` under `model`.
pub fn encoder_features(
    gpu: &crate::gpu::Gpu,
    model: &Model,
    ds: &Dataset,
    limit: Option<usize>,
) -> Result<super::probe::Features> {
    let data = extract_features(gpu, model, ds, limit)?;
    let d = model.features().shape[1];
    super::probe::Features::new(data, labels_of(ds, limit)?, d)
}

/// Labelled raw pixels (normalised per channel, NCHW order) of the first `limit` images.
pub fn pixel_features(ds: &Dataset, limit: Option<usize>) -> Result<super::probe::Features> {
    let n = limit.unwrap_or(ds.len()).min(ds.len());
    let d = 3 * ds.height * ds.width;
    let data = normalized_batch(ds, &(0..n).collect::<Vec<_>>(), n);
    super::probe::Features::new(data, labels_of(ds, limit)?, d)
}

/// The first `limit` labels of `ds`, or an error naming the dataset when it has none.
pub fn labels_of(ds: &Dataset, limit: Option<usize>) -> Result<Vec<u32>> {
    let n = limit.unwrap_or(ds.len()).min(ds.len());
    match &ds.labels {
        Some(l) => Ok(l[..n].to_vec()),
        None => anyhow::bail!("dataset '{}' has no labels, but this evaluation needs them", ds.name),
    }
}
