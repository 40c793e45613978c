//! Linear probe (GPU softmax regression on frozen features).
mod common;
use common::*;
use simclr_wgpu::eval::probe::{linear_probe, Features, ProbeConfig};
use simclr_wgpu::optim::OptimizerKind;

/// Gaussian-ish clusters around well separated class centres: a linear solution exists.
fn separable(n: usize, d: usize, classes: usize, seed: u64) -> Features {
    let mut rng = Rng::new(seed);
    let mut data = Vec::with_capacity(n * d);
    let mut labels = Vec::with_capacity(n);
    for i in 0..n {
        let c = i % classes;
        for j in 0..d {
            let centre = if j % classes == c { 4.0 } else { 0.0 };
            data.push(centre + rng.uniform());
        }
        labels.push(c as u32);
    }
    Features::new(data, labels, d).unwrap()
}

#[test]
fn separable_features_are_classified_perfectly() {
    let g = gpu();
    let (train, test) = (separable(600, 20, 5, 1), separable(200, 20, 5, 2));
    for optimizer in [OptimizerKind::Sgd, OptimizerKind::AdamW] {
        let cfg = ProbeConfig {
            epochs: 10,
            batch: 64,
            lr: if optimizer == OptimizerKind::Sgd { 0.1 } else { 0.01 },
            optimizer,
            ..Default::default()
        };
        let mut losses = Vec::new();
        let r = linear_probe(g, &train, &test, 5, &cfg, |_, l| losses.push(l)).unwrap();
        assert_eq!(r.top1, 1.0, "{optimizer:?}: test top-1 {}", r.top1);
        assert_eq!(r.train_top1, 1.0, "{optimizer:?}");
        assert_eq!(r.top5, 1.0);
        assert!(
            losses.last().unwrap() < &losses[0],
            "{optimizer:?}: loss {losses:?} did not fall"
        );
    }
}

#[test]
fn shuffled_labels_cannot_be_learned() {
    // The same features with labels unrelated to them: test accuracy stays near chance (1/5),
    // so a perfect score above is not an artefact of the evaluation.
    let g = gpu();
    let mut train = separable(600, 20, 5, 1);
    let mut test = separable(200, 20, 5, 2);
    let mut rng = Rng::new(9);
    train.labels.iter_mut().for_each(|l| *l = rng.range(0, 4) as u32);
    test.labels.iter_mut().for_each(|l| *l = rng.range(0, 4) as u32);
    let cfg = ProbeConfig {
        epochs: 5,
        batch: 64,
        ..Default::default()
    };
    let r = linear_probe(g, &train, &test, 5, &cfg, |_, _| {}).unwrap();
    assert!(r.top1 < 0.35, "top-1 {} on random labels", r.top1);
}

#[test]
fn bad_labels_and_widths_are_errors() {
    let g = gpu();
    let train = separable(20, 4, 2, 1);
    let mut test = separable(10, 4, 2, 2);
    test.labels[3] = 9;
    let e = linear_probe(g, &train, &test, 2, &ProbeConfig::default(), |_, _| {}).unwrap_err();
    assert!(e.to_string().contains("label 9"), "{e}");
    let narrow = Features::new(vec![0.0; 30], vec![0; 10], 3).unwrap();
    let e = linear_probe(g, &train, &narrow, 2, &ProbeConfig::default(), |_, _| {}).unwrap_err();
    assert!(e.to_string().contains("width"), "{e}");
    assert!(Features::new(vec![0.0; 7], vec![0; 2], 4).is_err());
}

/// Raw CIFAR-10 pixels (normalised per channel) under the linear probe land where a linear
/// classifier on pixels is known to land (about 39–41% top-1).
#[test]
fn raw_cifar10_pixels_score_like_a_linear_classifier() {
    use simclr_wgpu::data::{load, DatasetKind, Split};
    use simclr_wgpu::eval::features::pixel_features;
    let dir = std::env::var("SIMCLR_DATA")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|_| shared_dir().join("data"));
    let (Ok(train), Ok(test)) = (
        load(DatasetKind::Cifar10, &dir, Split::Train),
        load(DatasetKind::Cifar10, &dir, Split::Test),
    ) else {
        eprintln!("SKIPPED: CIFAR-10 not found under {} (set SIMCLR_DATA)", dir.display());
        return;
    };
    let (ftr, fte) = (
        pixel_features(&train, None).unwrap(),
        pixel_features(&test, None).unwrap(),
    );
    // A short schedule with a larger step (the CLI default is 100 epochs at lr 1).
    let cfg = ProbeConfig {
        epochs: 6,
        lr: 4.0,
        ..Default::default()
    };
    let t = std::time::Instant::now();
    let r = linear_probe(gpu(), &ftr, &fte, 10, &cfg, |e, l| eprintln!("epoch {e} loss {l:.4}")).unwrap();
    eprintln!("raw pixels: {r:?} in {:.0?}", t.elapsed());
    assert!((0.37..=0.43).contains(&r.top1), "top-1 {:.4} outside 37–43%", r.top1);
}

/// `--augment`: view v of image i is row v·n + i, made by the trainer's augmentation pass. Under
/// a full-image crop the views are the plain normalised pixels; with flip p = 1, their mirror.
/// 300 images make several batches per pass and an odd view count drops a pass's second view.
#[test]
fn augmented_views_are_laid_out_by_view_then_image() {
    use simclr_wgpu::bench::train::synthetic_dataset;
    use simclr_wgpu::eval::features::{augmented_features, pixel_features, probe_augment_config};
    let g = gpu();
    let (n, s) = (300, 32);
    let ds = synthetic_dataset(n, s);
    let plain = pixel_features(&ds, None).unwrap();
    let identity = simclr_wgpu::augment::AugmentConfig {
        crop_scale: (1.0, 1.0),
        crop_ratio: (1.0, 1.0),
        flip_p: 0.0,
        ..probe_augment_config(s)
    };
    let a = augmented_features(g, &ds, None, 3, &identity, 7, None).unwrap();
    assert_eq!((a.len(), a.d), (3 * n, 3 * s * s));
    assert_eq!(a.labels, plain.labels.repeat(3));
    for v in 0..3 {
        let rows = &a.data[v * plain.data.len()..(v + 1) * plain.data.len()];
        assert_close(&format!("view {v}"), rows, &plain.data, 1e-5, 1e-5);
    }
    let flip = simclr_wgpu::augment::AugmentConfig {
        flip_p: 1.0,
        ..identity
    };
    let b = augmented_features(g, &ds, None, 1, &flip, 7, None).unwrap();
    let mirrored: Vec<f32> = plain.data.chunks(s).flat_map(|row| row.iter().rev().copied()).collect();
    assert_close("flipped views", &b.data, &mirrored, 1e-5, 1e-5);
    // Random crops differ from the plain images, and from one seed to another.
    let c = augmented_features(g, &ds, Some(10), 2, &probe_augment_config(s), 1, None).unwrap();
    let d = augmented_features(g, &ds, Some(10), 2, &probe_augment_config(s), 2, None).unwrap();
    assert_ne!(c.data[..plain.d], plain.data[..plain.d]);
    assert_ne!(c.data, d.data);
}

/// The encoder path: under a full-image crop, augmented encoder features are the plain ones.
#[test]
fn augmented_encoder_features_under_an_identity_crop_are_the_plain_features() {
    use simclr_wgpu::bench::train::synthetic_dataset;
    use simclr_wgpu::eval::features::{augmented_features, encoder_features, probe_augment_config};
    use simclr_wgpu::nn::{
        arch::{Arch, ModelConfig},
        model::Model,
    };
    let g = gpu();
    let ds = synthetic_dataset(70, 32);
    let cfg = ModelConfig {
        arch: Arch::Tiny,
        width: 0.25,
        ..Default::default()
    };
    let model = Model::new(g, &cfg, 32, 3).unwrap();
    let identity = simclr_wgpu::augment::AugmentConfig {
        crop_scale: (1.0, 1.0),
        crop_ratio: (1.0, 1.0),
        flip_p: 0.0,
        ..probe_augment_config(32)
    };
    let plain = encoder_features(g, &model, &ds, None).unwrap();
    let a = augmented_features(g, &ds, None, 2, &identity, 0, Some(&model)).unwrap();
    assert_eq!(a.labels, plain.labels.repeat(2));
    assert_close("view 0", &a.data[..plain.data.len()], &plain.data, 1e-4, 1e-5);
    assert_close("view 1", &a.data[plain.data.len()..], &plain.data, 1e-4, 1e-5);
}
