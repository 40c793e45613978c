//! End-to-end training on a few hundred real CIFAR-10 images (lavapipe in CI): the loss falls,
//! checkpoints are written, and a resumed run continues exactly like an uninterrupted one.

mod common;
use common::*;
use simclr_wgpu::data::{self, Dataset, DatasetKind, Split};
use simclr_wgpu::gpu::Gpu;
use simclr_wgpu::nn::arch::Arch;
use simclr_wgpu::train::{checkpoint, StepRecord, TrainConfig, Trainer};
use std::sync::atomic::AtomicBool;
use std::sync::{Arc, OnceLock};

fn shared_gpu() -> Arc<Gpu> {
    static G: OnceLock<Arc<Gpu>> = OnceLock::new();
    G.get_or_init(|| Arc::new(Gpu::open_default().expect("a GPU adapter")))
        .clone()
}

fn cifar_subset(n: usize) -> Option<Dataset> {
    let dir = std::env::var("SIMCLR_DATA")
        .map(Into::into)
        .unwrap_or_else(|_| shared_dir().join("data"));
    match data::load(DatasetKind::Cifar10, &dir, Split::Train) {
        Ok(ds) => Some(ds.subset(&(0..n as u32).collect::<Vec<_>>())),
        Err(e) => {
            eprintln!("SKIPPED: CIFAR-10 not found in {} ({e})", dir.display());
            None
        }
    }
}

fn config(name: &str, dir: &std::path::Path) -> TrainConfig {
    TrainConfig {
        name: name.into(),
        runs_dir: dir.to_path_buf(),
        arch: Arch::Tiny,
        width: 0.5,
        batch: 32,
        epochs: 4,
        warmup_epochs: 0,
        lr: 4.0,
        knn_every: 0,
        seed: 3,
        ..Default::default()
    }
}

fn run(t: &mut Trainer) -> Vec<StepRecord> {
    let mut recs = Vec::new();
    t.run(&AtomicBool::new(false), &mut |_, r| recs.push(r.clone()))
        .unwrap();
    recs
}

#[test]
fn loss_falls_and_resume_matches_uninterrupted_run() {
    let Some(ds) = cifar_subset(320) else { return };
    let tmp = tempdir("train");
    let gpu = shared_gpu();

    let mut full = Trainer::with_data(gpu.clone(), config("full", &tmp), ds.clone()).unwrap();
    let recs = run(&mut full);
    assert_eq!(recs.len(), 40, "4 epochs of 10 steps");
    let first: f32 = recs[..5].iter().map(|r| r.loss).sum::<f32>() / 5.0;
    let last: f32 = recs[35..].iter().map(|r| r.loss).sum::<f32>() / 5.0;
    assert!(
        last < first - 0.05,
        "loss did not fall: first steps {first}, last steps {last}"
    );
    let ckpts = checkpoint::list_checkpoints(&tmp.join("full"));
    assert_eq!(ckpts.len(), 3, "one checkpoint per epoch, the last 3 kept: {ckpts:?}");

    // Interrupted after 15 steps (mid-epoch), then resumed from the checkpoint.
    let mut cfg = config("resumed", &tmp);
    cfg.max_steps = Some(15);
    let mut part = Trainer::with_data(gpu.clone(), cfg, ds.clone()).unwrap();
    let before = run(&mut part);
    assert_eq!(before.len(), 15);
    drop(part);
    let mut resumed = Trainer::with_data(gpu.clone(), config("resumed", &tmp), ds.clone()).unwrap();
    let side = checkpoint::resolve(&tmp.join("resumed")).unwrap();
    resumed.load_checkpoint(&side).unwrap();
    assert_eq!(resumed.step, 15);
    let after = run(&mut resumed);
    assert_eq!(after.first().map(|r| r.step), Some(15));
    for (a, b) in recs[15..].iter().zip(&after) {
        assert_eq!(a.step, b.step);
        assert!(
            (a.loss - b.loss).abs() <= 1e-5,
            "step {}: uninterrupted loss {} vs resumed {}",
            a.step,
            a.loss,
            b.loss
        );
    }
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn nan_loss_stops_training_and_keeps_the_last_good_checkpoint() {
    let Some(ds) = cifar_subset(64) else { return };
    let tmp = tempdir("nan");
    let mut cfg = config("nan", &tmp);
    cfg.epochs = 3;
    let mut t = Trainer::with_data(shared_gpu(), cfg, ds).unwrap();
    t.cfg.max_steps = Some(2);
    run(&mut t);
    let good = checkpoint::list_checkpoints(&tmp.join("nan"));
    assert_eq!(good.len(), 1);
    // Poison the first conv weight: the next loss is NaN.
    let (_, w) = &t.model.named_tensors()[0];
    w.write_f32(&t.gpu, &vec![f32::NAN; w.numel()]);
    t.cfg.max_steps = None;
    let res = t.run(&AtomicBool::new(false), &mut |_, _| {});
    let err = res.expect_err("NaN must stop training").to_string();
    assert!(err.contains("step 2") && err.contains("NaN"), "{err}");
    assert_eq!(
        checkpoint::list_checkpoints(&tmp.join("nan")),
        good,
        "the good checkpoint is kept, none added"
    );
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn invalid_settings_are_rejected_before_gpu_work() {
    for (cfg, needle) in [
        (
            TrainConfig {
                batch: 1,
                ..Default::default()
            },
            "batch",
        ),
        (
            TrainConfig {
                tau: 0.0,
                ..Default::default()
            },
            "tau",
        ),
        (
            TrainConfig {
                optimizer: "adam".into(),
                ..Default::default()
            },
            "optimizer",
        ),
    ] {
        let err = cfg.validate().expect_err("must be rejected").to_string();
        assert!(err.contains(needle), "{err}");
    }
    let err = toml::from_str::<TrainConfig>("arch = \"resnet9\"")
        .expect_err("unknown arch")
        .to_string();
    assert!(err.contains("resnet9"), "{err}");
}

#[test]
fn a_batch_too_large_for_the_device_names_the_limit_and_the_largest_batch() {
    let ds = simclr_wgpu::bench::train::synthetic_dataset(8, 32);
    let mut cfg = config("big", &tempdir("big"));
    let gpu = shared_gpu();
    // Pick a batch whose first activation exceeds the binding limit.
    let per_view = 32 * 32 * 32 * 4 / 2; // width 0.5: 16 channels at 32×32
    cfg.batch = (gpu.limits.max_storage_buffer_binding_size as usize / per_view) / 2 + 8;
    let err = Trainer::with_data(gpu, cfg, ds)
        .err()
        .expect("must not fit")
        .to_string();
    assert!(err.contains("largest batch that fits"), "{err}");
}

fn tempdir(tag: &str) -> std::path::PathBuf {
    let d = std::env::temp_dir().join(format!("simclr-test-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}
