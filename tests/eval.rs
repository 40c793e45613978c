//! Loading checkpoints for evaluation: the wrong architecture or a truncated file is an error
//! naming the problem (never a panic); a dataset without labels is refused by label-needing
//! metrics; neighbours of a dataset image start with the image itself.
mod common;
use common::*;
use simclr_wgpu::data::Dataset;
use simclr_wgpu::eval::{features, knn, load::load_model};
use simclr_wgpu::nn::arch::Arch;
use simclr_wgpu::nn::model::Model;
use simclr_wgpu::train::checkpoint::{self, HostTensor, Sidecar};
use simclr_wgpu::train::TrainConfig;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

fn tempdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("simclr-eval-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn tiny(width: f32) -> TrainConfig {
    TrainConfig {
        arch: Arch::Tiny,
        width,
        ..Default::default()
    }
}

/// A checkpoint whose sidecar claims `claimed` but whose tensors come from `actual`.
fn write_checkpoint(dir: &Path, claimed: &TrainConfig, actual: &TrainConfig) -> PathBuf {
    let g = gpu();
    // Seed 5: not the seed load_model builds with, so loading is visible.
    let m = Model::new(g, &actual.model(), 2, 5).unwrap();
    let tensors: BTreeMap<String, HostTensor> = m
        .named_tensors()
        .into_iter()
        .map(|(n, t)| {
            let data = t.read_f32(g).unwrap();
            (
                n,
                HostTensor {
                    shape: t.shape.clone(),
                    data,
                },
            )
        })
        .collect();
    let st = dir.join("checkpoint-00000001.safetensors");
    checkpoint::save_safetensors(&st, &tensors, &BTreeMap::new()).unwrap();
    let side = Sidecar {
        config: claimed.clone(),
        epoch: 1,
        step: 1,
        tensors: "checkpoint-00000001.safetensors".into(),
        metrics: vec![],
    };
    let sp = dir.join("checkpoint-00000001.json");
    std::fs::write(&sp, serde_json::to_string(&side).unwrap()).unwrap();
    sp
}

#[test]
fn a_matching_checkpoint_loads_and_gives_the_saved_weights() {
    let dir = tempdir("ok");
    let cfg = tiny(0.25);
    write_checkpoint(&dir, &cfg, &cfg);
    let (m, side) = load_model(gpu(), &dir, 4).unwrap();
    assert_eq!(side.step, 1);
    let saved = Model::new(gpu(), &cfg.model(), 2, 5).unwrap();
    let other = Model::new(gpu(), &cfg.model(), 2, 0).unwrap();
    let (name, t) = &m.named_tensors()[0];
    let got = t.read_f32(gpu()).unwrap();
    assert_eq!(got, saved.named_tensors()[0].1.read_f32(gpu()).unwrap(), "{name}");
    assert_ne!(got, other.named_tensors()[0].1.read_f32(gpu()).unwrap(), "{name}");
}

#[test]
fn a_checkpoint_of_another_width_names_the_mismatched_tensors() {
    let dir = tempdir("arch");
    write_checkpoint(&dir, &tiny(0.5), &tiny(0.25));
    let e = format!("{:#}", load_model(gpu(), &dir, 4).err().expect("must fail"));
    assert!(e.contains("encoder.") && e.contains("expected shape"), "{e}");
}

#[test]
fn a_truncated_checkpoint_is_an_error_naming_the_file() {
    let dir = tempdir("trunc");
    let cfg = tiny(0.25);
    write_checkpoint(&dir, &cfg, &cfg);
    let st = dir.join("checkpoint-00000001.safetensors");
    let bytes = std::fs::read(&st).unwrap();
    std::fs::write(&st, &bytes[..bytes.len() / 2]).unwrap();
    let e = format!("{:#}", load_model(gpu(), &dir, 4).err().expect("must fail"));
    assert!(
        e.contains("checkpoint-00000001.safetensors") && e.contains("truncated"),
        "{e}"
    );
    let e = format!(
        "{:#}",
        load_model(gpu(), &tempdir("empty"), 4).err().expect("must fail")
    );
    assert!(e.contains("no checkpoint"), "{e}");
}

#[test]
fn label_needing_metrics_refuse_unlabelled_data() {
    let ds = Dataset {
        name: "unlabelled-folder".into(),
        images: vec![0; 2 * 4 * 4 * 3],
        labels: None,
        classes: vec![],
        height: 4,
        width: 4,
        mean: [0.5; 3],
        std: [0.25; 3],
    };
    let e = features::pixel_features(&ds, None).unwrap_err().to_string();
    assert!(e.contains("unlabelled-folder") && e.contains("no labels"), "{e}");
}

#[test]
fn neighbours_of_dataset_images_start_with_themselves() {
    // Encoder features of real-looking images from a random-init tiny encoder.
    let g = gpu();
    let cfg = tiny(0.25);
    let m = Model::new(g, &cfg.model(), 8, 0).unwrap();
    let mut rng = Rng::new(3);
    let n = 20;
    let ds = Dataset {
        name: "noise".into(),
        images: (0..n * 32 * 32 * 3).map(|_| rng.next_u32() as u8).collect(),
        labels: Some((0..n as u32).map(|i| i % 10).collect()),
        classes: (0..10).map(|c| c.to_string()).collect(),
        height: 32,
        width: 32,
        mean: [0.5; 3],
        std: [0.25; 3],
    };
    let f = features::extract_features(g, &m, &ds, None).unwrap();
    let d = m.features().shape[1];
    for q in [0usize, 7, 19] {
        let nn = knn::nearest(g, &f, &f[q * d..(q + 1) * d], d, 5).unwrap().remove(0);
        assert_eq!(nn[0].1, q, "query {q}: {nn:?}");
        assert!((nn[0].0 - 1.0).abs() < 1e-4, "self-similarity {}", nn[0].0);
    }
}
