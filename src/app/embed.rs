//! The engine's retrieval side (the embedding bank, nearest neighbours, the 2-D PCA map, a
//! dropped image file turned into a query) and the batch's cosine-similarity matrix.

use super::engine::Engine;
use super::worker::{Embedding, Event, Neighbours, Query};
use crate::data::Dataset;
use crate::nn::model::Model;
use crate::train::{StepRecord, Trainer};
use anyhow::{Context, Result};
use std::path::Path;

/// Encoder features of the first `n` dataset images (rows of width `d`).
pub struct Bank {
    pub feats: Vec<f32>,
    pub d: usize,
    pub n: usize,
    /// The trainer's step when computed (None: not the trainer's encoder).
    pub step: Option<usize>,
    pub trained: bool,
    pub encoder: String,
}

/// A `{"kind": "step", ...}` line of metrics.jsonl as a record.
pub fn step_record(v: &serde_json::Value) -> Option<StepRecord> {
    if v["kind"] != "step" {
        return None;
    }
    Some(StepRecord {
        step: v["step"].as_u64()? as usize,
        epoch: v["epoch"].as_u64().unwrap_or(0) as usize,
        loss: v["loss"].as_f64()? as f32,
        pos_acc: v["pos_acc"].as_f64().unwrap_or(0.0) as f32,
        lr: v["lr"].as_f64().unwrap_or(0.0),
        images_per_s: v["images_per_s"].as_f64().unwrap_or(0.0),
    })
}

fn unit_rows(z: &[f32], d: usize, rows: &[usize]) -> Vec<Vec<f32>> {
    rows.iter()
        .map(|&r| {
            let v = &z[r * d..(r + 1) * d];
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
            v.iter().map(|x| x / norm).collect()
        })
        .collect()
}

/// Cosine similarity between the chosen rows of `z` (width `d`), row-major |rows|².
pub fn cosine_matrix(z: &[f32], d: usize, rows: &[usize]) -> Vec<f32> {
    let u = unit_rows(z, d, rows);
    let m = u.len();
    let mut out = vec![0f32; m * m];
    for i in 0..m {
        for j in i..m {
            let s: f32 = u[i].iter().zip(&u[j]).map(|(a, b)| a * b).sum();
            out[i * m + j] = s;
            out[j * m + i] = s;
        }
    }
    out
}

/// The first two principal components of the bank (power iteration with deflation on the
/// centred rows; the covariance matrix is never formed).
pub fn pca2(x: &[f32], n: usize, d: usize) -> Vec<[f32; 2]> {
    let mut mean = vec![0f64; d];
    for r in x.chunks_exact(d) {
        for (m, v) in mean.iter_mut().zip(r) {
            *m += *v as f64 / n as f64;
        }
    }
    let c: Vec<f64> = x
        .chunks_exact(d)
        .flat_map(|r| r.iter().zip(&mean).map(|(v, m)| *v as f64 - m))
        .collect();
    let mut comps: Vec<Vec<f64>> = Vec::new();
    for k in 0..2 {
        // A fixed, non-degenerate start so that the map is reproducible.
        let mut v: Vec<f64> = (0..d).map(|i| 1.0 + ((i * 7 + k * 13) % 11) as f64 / 10.0).collect();
        for _ in 0..100 {
            let proj: Vec<f64> = c.chunks_exact(d).map(|r| dot(r, &v)).collect();
            let mut w = vec![0f64; d];
            for (r, p) in c.chunks_exact(d).zip(&proj) {
                for (wi, ri) in w.iter_mut().zip(r) {
                    *wi += ri * p;
                }
            }
            for u in &comps {
                let a = dot(&w, u);
                w.iter_mut().zip(u).for_each(|(wi, ui)| *wi -= a * ui);
            }
            let norm = dot(&w, &w).sqrt();
            if norm < 1e-12 {
                break;
            }
            v = w.into_iter().map(|x| x / norm).collect();
        }
        comps.push(v);
    }
    c.chunks_exact(d)
        .map(|r| [dot(r, &comps[0]) as f32, dot(r, &comps[1]) as f32])
        .collect()
}

fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

pub fn embedding(bank: &Bank, ds: &Dataset) -> Embedding {
    Embedding {
        points: pca2(&bank.feats, bank.n, bank.d),
        labels: ds.labels.as_ref().map(|l| l[..bank.n].to_vec()),
        encoder: bank.encoder.clone(),
    }
}

/// A dropped image file as a one-image dataset shaped like `like` (centre-cropped to a square,
/// resized, normalised with `like`'s statistics). A file that is not an image is an error.
pub fn image_as_dataset(path: &Path, like: &Dataset) -> Result<Dataset> {
    let img = image::ImageReader::open(path)
        .with_context(|| format!("reading {}", path.display()))?
        .with_guessed_format()
        .with_context(|| format!("reading {}", path.display()))?
        .decode()
        .with_context(|| format!("{} is not an image this app can read (PNG or JPEG)", path.display()))?
        .to_rgb8();
    let side = img.width().min(img.height());
    let (x, y) = ((img.width() - side) / 2, (img.height() - side) / 2);
    let square = image::imageops::crop_imm(&img, x, y, side, side).to_image();
    let resized = image::imageops::resize(
        &square,
        like.width as u32,
        like.height as u32,
        image::imageops::FilterType::Triangle,
    );
    Ok(Dataset {
        name: path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default(),
        images: resized.into_raw(),
        labels: None,
        classes: Vec::new(),
        height: like.height,
        width: like.width,
        mean: like.mean,
        std: like.std,
    })
}

impl Engine {
    /// The encoder for retrieval: the trainer's, else the opened run's, else a random one.
    fn encoder<'a>(
        &'a mut self,
        t: Option<&'a Trainer>,
        fallback: &crate::nn::arch::ModelConfig,
    ) -> Result<(&'a Model, String)> {
        if let Some(t) = t {
            return Ok((&t.model, format!("training step {}", t.step)));
        }
        let gpu = self.gpu()?;
        let mut cfg = fallback.clone();
        cfg.image_size = self.dataset()?.height;
        let fits = matches!(&self.eval_model, Some((m, _)) if self.opened.is_some() || m.cfg == cfg);
        if !fits {
            self.eval_model = Some((Model::new(&gpu, &cfg, 64, 0)?, "random initialisation".into()));
        }
        let (m, what) = self.eval_model.as_ref().unwrap();
        Ok((m, what.clone()))
    }

    pub(super) fn ensure_bank(
        &mut self,
        t: Option<&Trainer>,
        n: usize,
        fallback: &crate::nn::arch::ModelConfig,
    ) -> Result<&Bank> {
        let ds = self.dataset()?;
        let n = n.clamp(1, ds.len());
        let tag = t.map(|t| t.step);
        let fresh = matches!(&self.bank, Some(b) if b.n == n && b.step == tag && t.is_some() == b.trained);
        if !fresh {
            let gpu = self.gpu()?;
            let (model, what) = self.encoder(t, fallback)?;
            let feats = crate::eval::features::extract_features(&gpu, model, &ds, Some(n))?;
            let d = model.features().shape[1];
            let bank = Bank {
                feats,
                d,
                n,
                step: tag,
                trained: t.is_some(),
                encoder: what,
            };
            self.send(Event::Embedding(embedding(&bank, &ds)));
            self.bank = Some(bank);
        }
        Ok(self.bank.as_ref().unwrap())
    }

    pub(super) fn retrieve(
        &mut self,
        t: Option<&Trainer>,
        query: Query,
        k: usize,
        bank_n: usize,
        fallback: &crate::nn::arch::ModelConfig,
    ) -> Result<()> {
        let ds = self.dataset()?;
        let gpu = self.gpu()?;
        let (q_ds, q_rgb) = match &query {
            Query::Index(i) => {
                anyhow::ensure!(*i < ds.len(), "image {i} is not in the dataset");
                (ds.subset(&[*i as u32]), ds.image(*i).to_vec())
            }
            Query::File(p) => {
                let q = image_as_dataset(p, &ds)?;
                let rgb = q.images.clone();
                (q, rgb)
            }
        };
        self.ensure_bank(t, bank_n, fallback)?;
        let (model, _) = self.encoder(t, fallback)?;
        let q = crate::eval::features::extract_features(&gpu, model, &q_ds, None)?;
        let bank = self.bank.as_ref().unwrap();
        let hits = crate::eval::knn::nearest(&gpu, &bank.feats, &q, bank.d, k)?
            .pop()
            .unwrap_or_default();
        let encoder = bank.encoder.clone();
        self.send(Event::Neighbours(Neighbours {
            query,
            query_rgb: q_rgb,
            hits,
            encoder,
        }));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pca_finds_the_spread_direction() {
        // Points along (1, 1, 0) with a little noise along z: PC1 separates the ends.
        let x: Vec<f32> = (0..20)
            .flat_map(|i| {
                let t = i as f32 - 10.0;
                [t, t, 0.01 * (i % 3) as f32]
            })
            .collect();
        let p = pca2(&x, 20, 3);
        assert!((p[0][0] - p[19][0]).abs() > 20.0, "{:?}", p);
    }

    #[test]
    fn cosine_matrix_is_symmetric_with_unit_diagonal() {
        let z = [1.0, 0.0, 0.0, 2.0, 1.0, 1.0];
        let m = cosine_matrix(&z, 2, &[0, 1, 2]);
        assert!((m[0] - 1.0).abs() < 1e-6 && (m[4] - 1.0).abs() < 1e-6);
        assert!(m[1].abs() < 1e-6 && (m[2] - m[6]).abs() < 1e-6);
    }
}
