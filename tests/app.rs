//! The desktop app driven headless through egui_kittest (lavapipe in CI, no display): the panels
//! exist, sliders change the sampled augmentation parameters, start/pause/stop drive the trainer,
//! retrieval finds the query image first, bad input gives messages, a headless run opens, and a
//! screenshot of each panel (rendered offscreen by egui-wgpu) is not blank.

mod common;
use common::*;
use egui::accesskit::Role;
use egui_kittest::kittest::Queryable;
use egui_kittest::Harness;
use simclr_wgpu::app::worker::{Level, Query, TrainState};
use simclr_wgpu::app::{AppOptions, Panel, SimclrApp};
use simclr_wgpu::data::{self, DatasetKind, Split};
use simclr_wgpu::gpu::DeviceOptions;
use simclr_wgpu::nn::arch::Arch;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

fn cifar_dir() -> Option<PathBuf> {
    let dir = std::env::var("SIMCLR_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|_| shared_dir().join("data"));
    match data::load(DatasetKind::Cifar10, &dir, Split::Test) {
        Ok(_) => Some(dir),
        Err(e) => {
            eprintln!("SKIPPED: CIFAR-10 not found in {} ({e:#})", dir.display());
            None
        }
    }
}

/// A file dropped on the window, as the native integration hands it to egui.
#[derive(Debug)]
struct Dropped(PathBuf);

impl egui::DroppedFile for Dropped {
    fn path(&self) -> &Path {
        &self.0
    }
    fn bytes(&self) -> Result<Vec<u8>, String> {
        std::fs::read(&self.0).map_err(|e| e.to_string())
    }
}

fn tempdir(tag: &str) -> PathBuf {
    let d = std::env::temp_dir().join(format!("simclr-app-{tag}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    std::fs::create_dir_all(&d).unwrap();
    d
}

fn app(data_dir: Option<PathBuf>, run_dir: Option<PathBuf>) -> SimclrApp {
    SimclrApp::new(AppOptions {
        device: DeviceOptions::from_env(),
        run_dir,
        data_dir,
        load_data: false,
    })
}

fn harness(app: SimclrApp) -> Harness<'static, SimclrApp> {
    Harness::builder()
        .with_size([1280.0, 960.0])
        .build_ui_state(|ui, app: &mut SimclrApp| app.show(ui), app)
}

/// Run frames until `cond` holds (the engine answers on its own thread).
#[track_caller]
fn wait(h: &mut Harness<'_, SimclrApp>, what: &str, secs: u64, cond: impl Fn(&SimclrApp) -> bool) {
    let start = Instant::now();
    loop {
        h.step();
        if cond(h.state()) {
            return;
        }
        if start.elapsed() > Duration::from_secs(secs) {
            panic!(
                "timed out waiting for {what}; last error: {:?}",
                h.state().shared.last_error()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// An app with the first `n` CIFAR-10 training images loaded through the Data panel.
fn with_data(n: usize) -> Option<Harness<'static, SimclrApp>> {
    let dir = cifar_dir()?;
    let mut a = app(Some(dir), None);
    a.data.limit = n;
    let mut h = harness(a);
    h.get_by_label("Load dataset").click();
    wait(&mut h, "the dataset", 120, |a| a.shared.dataset.is_some());
    assert_eq!(h.state().shared.dataset.as_ref().unwrap().len(), n);
    Some(h)
}

fn goto(h: &mut Harness<'_, SimclrApp>, p: Panel) {
    h.get_by_label(p.title()).click();
    h.step();
    h.step();
    assert_eq!(h.state().panel, p);
}

fn small_training(a: &mut SimclrApp, runs: &Path, name: &str) {
    let c = &mut a.train.cfg;
    c.runs_dir = runs.to_path_buf();
    c.name = name.into();
    c.arch = Arch::Tiny;
    c.width = 0.5;
    c.batch = 16;
    c.epochs = 50;
    c.warmup_epochs = 0;
    c.knn_every = 0;
}

#[test]
fn panels_exist_and_bad_input_gives_messages() {
    let mut h = harness(app(Some("/nonexistent/simclr-data".into()), None));
    for p in Panel::ALL {
        goto(&mut h, p);
        h.get_by_label(p.heading());
    }
    goto(&mut h, Panel::Data);
    h.get_by_label("Load dataset").click();
    wait(&mut h, "an error for a missing folder", 60, |a| {
        a.shared.last_error().is_some_and(|m| m.contains("does not exist"))
    });
    // A run directory without a checkpoint.
    let empty = tempdir("empty-run");
    h.state_mut().data.run_dir = empty.display().to_string();
    h.get_by_label("Open run").click();
    wait(&mut h, "an error for a run without checkpoint", 60, |a| {
        a.shared.last_error().is_some_and(|m| m.contains("no checkpoint"))
    });
    // The error is on screen, not only in the state.
    h.get_by_label_contains("no checkpoint");
    // Training without data is refused with a message.
    goto(&mut h, Panel::Train);
    h.get_by_label("Start").click();
    wait(&mut h, "an error for training without data", 30, |a| {
        a.shared.last_error().is_some_and(|m| m.contains("load a dataset"))
    });
    assert_eq!(h.state().train.state, TrainState::Idle);
}

#[test]
fn sliders_change_the_sampled_augmentation_parameters() {
    let Some(mut h) = with_data(200) else { return };
    goto(&mut h, Panel::Augment);
    wait(&mut h, "the first preview", 120, |a| a.augment.preview.is_some());
    for (p, gray) in [(1.0, true), (0.0, false)] {
        h.get_by_role_and_label(Role::Slider, "grayscale p")
            .set_value_accesskit(p);
        wait(&mut h, "views with the new grayscale probability", 120, |a| {
            a.augment.cfg.gray_p == p as f32
                && !a.augment.busy
                && a.augment
                    .preview
                    .as_ref()
                    .is_some_and(|v| v.params.iter().all(|v| v.gray == gray))
        });
        // The kernel's output follows the parameters: grayscale views have r = g = b.
        let pv = h.state().augment.preview.as_ref().unwrap();
        let plane = pv.size * pv.size;
        let all_gray = pv
            .views
            .chunks_exact(3 * plane)
            .all(|v| (0..plane).all(|i| (v[i] - v[plane + i]).abs() < 1e-4 && (v[i] - v[2 * plane + i]).abs() < 1e-4));
        assert_eq!(all_gray, gray);
    }
    // Re-sample draws new parameters for the same images.
    let before = h.state().augment.preview.as_ref().unwrap().params.clone();
    h.get_by_label("Re-sample").click();
    wait(&mut h, "re-sampled views", 120, |a| {
        !a.augment.busy && a.augment.preview.as_ref().is_some_and(|v| v.params != before)
    });
    assert!(h.query_all_by_label_contains("view 1: crop").count() >= 1);
}

#[test]
fn start_pause_stop_drive_the_trainer() {
    let Some(mut h) = with_data(64) else { return };
    let runs = tempdir("startstop");
    small_training(h.state_mut(), &runs, "gui-test");
    goto(&mut h, Panel::Train);
    h.get_by_label("Start").click();
    wait(&mut h, "training steps", 300, |a| {
        a.train.state == TrainState::Running && a.train.steps.len() >= 2
    });
    h.get_by_label("Pause").click();
    wait(&mut h, "the paused state", 120, |a| a.train.state == TrainState::Paused);
    let n = h.state().train.steps.len();
    std::thread::sleep(Duration::from_millis(500));
    h.step();
    assert!(
        h.state().train.steps.len() <= n + 2,
        "at most the in-flight steps arrive while paused"
    );
    h.get_by_label("Resume").click();
    wait(&mut h, "running again", 120, |a| a.train.state == TrainState::Running);
    h.get_by_label("Stop").click();
    wait(&mut h, "the stopped state", 300, |a| {
        a.train.state == TrainState::Stopped
    });
    let run = runs.join("gui-test");
    let ckpts = simclr_wgpu::train::checkpoint::list_checkpoints(&run);
    assert!(!ckpts.is_empty(), "stopping writes a checkpoint in {}", run.display());
    // Continue goes on from the same trainer, then closing the window stops it cleanly.
    let steps = h.state().train.steps.last().unwrap().step;
    h.get_by_label("Continue").click();
    wait(&mut h, "continued steps", 300, |a| {
        a.train.steps.last().is_some_and(|r| r.step > steps + 1)
    });
    let mut a = h.into_state();
    a.shutdown();
    let after = simclr_wgpu::train::checkpoint::list_checkpoints(&run);
    assert!(
        after.last() > ckpts.last(),
        "closing writes a newer checkpoint: {after:?}"
    );
    let _ = std::fs::remove_dir_all(&runs);
}

#[test]
fn retrieval_of_a_dataset_image_returns_itself_first() {
    let Some(mut h) = with_data(100) else { return };
    h.state_mut().retrieval.bank = 100;
    goto(&mut h, Panel::Retrieval);
    h.state_mut().shared.retrieve = Some(Query::Index(37));
    wait(&mut h, "neighbours", 300, |a| a.retrieval.result.is_some());
    let r = h.state().retrieval.result.as_ref().unwrap();
    assert_eq!(r.hits[0].1, 37, "{:?}", r.hits);
    assert!((r.hits[0].0 - 1.0).abs() < 1e-3, "{:?}", r.hits);
    assert_eq!(r.hits.len(), h.state().retrieval.k);
    assert_eq!(h.state().retrieval.embedding.as_ref().unwrap().points.len(), 100);
    assert!(h.query_all_by_label_contains("sim 1.000").count() >= 1);

    // A dropped image file: the same pixels as image 5 find image 5.
    let tmp = tempdir("drop");
    let ds = h.state().shared.dataset.clone().unwrap();
    let png = tmp.join("five.png");
    image::RgbImage::from_raw(32, 32, ds.image(5).to_vec())
        .unwrap()
        .save(&png)
        .unwrap();
    h.state_mut().shared.retrieve = Some(Query::File(png.clone()));
    wait(&mut h, "neighbours of a file", 300, |a| {
        a.retrieval
            .result
            .as_ref()
            .is_some_and(|r| r.query == Query::File(png.clone()))
    });
    assert_eq!(h.state().retrieval.result.as_ref().unwrap().hits[0].1, 5);
    // A file that is not an image, dropped on the window: a message, no crash.
    let txt = tmp.join("notes.txt");
    std::fs::write(&txt, "not an image").unwrap();
    h.input_mut().dropped_files.push(std::sync::Arc::new(Dropped(txt)));
    wait(&mut h, "an error for a non-image", 60, |a| {
        a.shared
            .messages
            .last()
            .is_some_and(|(l, m)| *l == Level::Error && m.contains("not an image"))
    });
    let _ = std::fs::remove_dir_all(&tmp);
}

#[test]
fn a_run_trained_headless_opens_with_curves_and_retrieval() {
    use simclr_wgpu::train::{TrainConfig, Trainer};
    let Some(dir) = cifar_dir() else { return };
    let runs = tempdir("headless");
    let full = data::load(DatasetKind::Cifar10, &dir, Split::Train).unwrap();
    let ds = full.subset(&(0..64).collect::<Vec<u32>>());
    let cfg = TrainConfig {
        name: "headless".into(),
        runs_dir: runs.clone(),
        data: Some(dir.clone()),
        limit_train: Some(64),
        arch: Arch::Tiny,
        width: 0.5,
        batch: 16,
        epochs: 1,
        warmup_epochs: 0,
        knn_every: 0,
        ..Default::default()
    };
    let gpu = std::sync::Arc::new(simclr_wgpu::gpu::Gpu::open_default().unwrap());
    let mut t = Trainer::with_data(gpu, cfg, ds).unwrap();
    t.run(&Default::default(), &mut |_, _| {}).unwrap();
    drop(t);

    let mut h = harness(app(None, Some(runs.join("headless"))));
    wait(&mut h, "the opened run and its data", 120, |a| {
        a.train.steps.len() == 4 && a.shared.dataset.is_some()
    });
    assert_eq!(h.state().panel, Panel::Train);
    assert!(h.state().train.can_continue);
    h.state_mut().retrieval.bank = 64;
    h.state_mut().shared.retrieve = Some(Query::Index(3));
    wait(&mut h, "neighbours under the run's encoder", 300, |a| {
        a.retrieval.result.is_some()
    });
    let r = h.state().retrieval.result.as_ref().unwrap();
    assert_eq!(r.hits[0].1, 3);
    assert!(r.encoder.contains("checkpoint step 4"), "{}", r.encoder);
    // Its augmentations are the run's; Continue resumes it for one more epoch.
    assert_eq!(h.state().augment.cfg.gray_p, 0.2);
    h.state_mut().train.cfg.epochs = 2;
    goto(&mut h, Panel::Train);
    h.get_by_label("Continue").click();
    wait(&mut h, "the resumed run to finish", 300, |a| {
        a.train.state == TrainState::Finished
    });
    let last = h.state().train.steps.last().unwrap().step;
    assert_eq!(last, 7, "steps 4..8 after the checkpoint at step 4");
    let ckpts = simclr_wgpu::train::checkpoint::list_checkpoints(&runs.join("headless"));
    assert!(ckpts.last().unwrap().ends_with("checkpoint-00000008.json"), "{ckpts:?}");
    let _ = std::fs::remove_dir_all(&runs);
}

/// Not blank: many colours and some contrast.
fn assert_not_blank(img: &image::RgbaImage, what: &str) {
    let mut colours = std::collections::HashSet::new();
    let (mut sum, mut sq, mut n) = (0f64, 0f64, 0f64);
    for p in img.pixels() {
        colours.insert(p.0);
        let l = (p.0[0] as f64 + p.0[1] as f64 + p.0[2] as f64) / 3.0;
        sum += l;
        sq += l * l;
        n += 1.0;
    }
    let sd = (sq / n - (sum / n).powi(2)).max(0.0).sqrt();
    assert!(
        colours.len() > 64 && sd > 8.0,
        "{what} looks blank: {} colours, sd {sd:.1}",
        colours.len()
    );
}

#[test]
fn screenshots_of_every_panel_after_a_few_training_steps() {
    let Some(dir) = cifar_dir() else { return };
    let runs = tempdir("shots");
    let mut a = app(Some(dir), None);
    a.data.limit = 256;
    small_training(&mut a, &runs, "screenshots");
    a.train.cfg.batch = 32;
    a.train.cfg.max_steps = Some(12);
    a.retrieval.bank = 256;
    a.worker
        .control
        .heatmap_every
        .store(2, std::sync::atomic::Ordering::SeqCst);
    let mut h = Harness::builder()
        .with_size([1280.0, 900.0])
        .wgpu()
        .build_ui_state(|ui, app: &mut SimclrApp| app.show(ui), a);
    h.get_by_label("Load dataset").click();
    wait(&mut h, "the dataset", 120, |a| a.shared.dataset.is_some());
    goto(&mut h, Panel::Train);
    h.get_by_label("Start").click();
    wait(&mut h, "a finished short run with a heat map", 600, |a| {
        a.train.state == TrainState::Finished && a.train.steps.len() >= 10 && a.train.has_heatmap()
    });
    h.state_mut().shared.retrieve = Some(Query::Index(0));
    wait(&mut h, "neighbours", 300, |a| a.retrieval.result.is_some());
    goto(&mut h, Panel::Augment);
    wait(&mut h, "a preview", 120, |a| {
        a.augment.preview.is_some() && !a.augment.busy
    });

    let out = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
    std::fs::create_dir_all(&out).unwrap();
    let keep = std::env::var("SIMCLR_UPDATE_SCREENSHOTS").is_ok_and(|v| v == "1");
    for p in Panel::ALL {
        goto(&mut h, p);
        h.remove_cursor();
        h.run_steps(3);
        let img = h.render().expect("offscreen rendering");
        let name = format!("{}.png", p.title().to_lowercase());
        img.save(out.join(&name)).unwrap();
        assert_not_blank(&img, &name);
        if keep {
            let assets = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("assets/screenshots");
            std::fs::create_dir_all(&assets).unwrap();
            img.save(assets.join(&name)).unwrap();
        }
    }
    eprintln!("screenshots in {}", out.display());
    let _ = std::fs::remove_dir_all(&runs);
}

#[test]
fn a_nan_loss_stops_training_with_a_message() {
    let Some(mut h) = with_data(64) else { return };
    let runs = tempdir("nan");
    small_training(h.state_mut(), &runs, "nan");
    // An infinite learning rate turns the weights non-finite at the first update.
    h.state_mut().train.cfg.optimizer = "sgd".into();
    h.state_mut().train.cfg.lr = 1e300;
    goto(&mut h, Panel::Train);
    h.get_by_label("Start").click();
    wait(&mut h, "the failed state", 300, |a| a.train.state == TrainState::Failed);
    let err = h.state().shared.last_error().unwrap().to_string();
    assert!(err.contains("NaN") || err.contains("inf"), "{err}");
    assert!(err.contains("checkpoint"), "{err}");
    let _ = std::fs::remove_dir_all(&runs);
}
