//! Encoder features of a whole dataset: eval mode (running BN statistics), no augmentation,
//! images normalised by the dataset's channel mean and std; or augmented views for a linear probe
//! trained with augmentation.

use super::probe::Features;
use crate::augment::{batch_rng, AugmentConfig, Augmenter, GpuImages};
use crate::data::Dataset;
use crate::gpu::{Gpu, Program, Tensor};
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
pub fn extract_features(gpu: &Gpu, model: &Model, ds: &Dataset, limit: Option<usize>) -> Result<Vec<f32>> {
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
pub fn encoder_features(gpu: &Gpu, model: &Model, ds: &Dataset, limit: Option<usize>) -> Result<Features> {
    let data = extract_features(gpu, model, ds, limit)?;
    let d = model.features().shape[1];
    Features::new(data, labels_of(ds, limit)?, d)
}

/// Labelled raw pixels (normalised per channel, NCHW order) of the first `limit` images.
pub fn pixel_features(ds: &Dataset, limit: Option<usize>) -> Result<Features> {
    let n = limit.unwrap_or(ds.len()).min(ds.len());
    let d = 3 * ds.height * ds.width;
    let data = normalized_batch(ds, &(0..n).collect::<Vec<_>>(), n);
    Features::new(data, labels_of(ds, limit)?, d)
}

/// The first `limit` labels of `ds`, or an error naming the dataset when it has none.
pub fn labels_of(ds: &Dataset, limit: Option<usize>) -> Result<Vec<u32>> {
    let n = limit.unwrap_or(ds.len()).min(ds.len());
    match &ds.labels {
        Some(l) => Ok(l[..n].to_vec()),
        None => anyhow::bail!("dataset '{}' has no labels, but this evaluation needs them", ds.name),
    }
}

/// The linear-evaluation augmentation: the trainer's random resized crop + flip, colour ops off.
pub fn probe_augment_config(size: usize) -> AugmentConfig {
    AugmentConfig {
        jitter_p: 0.0,
        gray_p: 0.0,
        blur_p: 0.0,
        ..AugmentConfig::for_size(size)
    }
}

/// Labelled features of `views` augmented views (`aug`, drawn from `seed`) of each of the first
/// `limit` images, made by the trainer's GPU augmentation pass: encoder features (eval mode)
/// when `encoder` is given, else the augmented, normalised pixels (NCHW). Row v·n + i is view v
/// of image i. A pass makes as many views as the encoder's batch (256 for pixels).
pub fn augmented_features(
    gpu: &Gpu,
    ds: &Dataset,
    limit: Option<usize>,
    views: usize,
    aug: &AugmentConfig,
    seed: u64,
    encoder: Option<&Model>,
) -> Result<Features> {
    let n = limit.unwrap_or(ds.len()).min(ds.len());
    let labels = labels_of(ds, Some(n))?;
    let rows = encoder.map_or(256, |m| m.plan.batch);
    ensure!(views >= 1, "the number of augmented views must be at least 1");
    ensure!(
        rows >= 2 && rows % 2 == 0,
        "augmented features need an even batch of at least 2 (got {rows})"
    );
    let own;
    let input = match encoder {
        Some(m) => m.input(),
        None => {
            own = Tensor::zeros(gpu, "augmented.pixels", &[rows, 3, aug.out_size, aug.out_size])?;
            &own
        }
    };
    let images = GpuImages::upload(gpu, ds)?;
    let mut augmenter = Augmenter::new(gpu, &images, input, aug)?;
    let mut prog = Program::new();
    prog.extend(augmenter.program());
    let output = match encoder {
        Some(m) => {
            prog.extend(m.forward_eval());
            m.features()
        }
        None => input,
    };
    let f = output.shape[1..].iter().product::<usize>();
    let mut data = vec![0f32; views * n * f];
    let half = rows / 2;
    let mut batch = 0u64;
    // Each pass makes two views of every image (rows r and len + r of a batch).
    for pass in 0..views.div_ceil(2) {
        for start in (0..n).step_by(half) {
            let idx: Vec<u32> = (start..(start + half).min(n)).map(|i| i as u32).collect();
            augmenter.prepare(gpu, &idx, &mut batch_rng(seed ^ 0xa09e_1a7e, batch));
            batch += 1;
            gpu.run(&prog)?;
            let out = output.read_f32(gpu)?;
            for j in 0..2 {
                let v = 2 * pass + j;
                if v >= views {
                    break;
                }
                for (r, &i) in idx.iter().enumerate() {
                    let src = (j * idx.len() + r) * f;
                    let dst = (v * n + i as usize) * f;
                    data[dst..dst + f].copy_from_slice(&out[src..src + f]);
                }
            }
        }
    }
    Features::new(data, labels.repeat(views), f)
}
