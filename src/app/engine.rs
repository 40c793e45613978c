//! The engine thread's state and its handling of each command (see `worker` for the protocol).

use super::embed::{self, Bank};
use super::worker::{Cmd, Control, DataSource, Event, Heatmap, Level, Preview, TrainState};
use crate::augment::preview::render_views;
use crate::augment::{batch_rng, sample_batch, AugmentConfig, GpuImages};
use crate::data::{self, Dataset, DatasetKind, Split};
use crate::gpu::{DeviceOptions, Gpu};
use crate::nn::model::Model;
use crate::train::metrics::read_metrics;
use crate::train::{checkpoint, StepRecord, TrainConfig, Trainer};
use anyhow::{bail, Context, Result};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::sync::atomic::Ordering;
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender};
use std::sync::Arc;
use std::time::Duration;

pub(super) struct Engine {
    pub(super) gpu: Option<Arc<Gpu>>,
    pub(super) tx: Sender<Event>,
    pub(super) ctl: Arc<Control>,
    pub(super) data: Option<(Arc<Dataset>, DataSource)>,
    /// The run opened with `simclr gui RUN_DIR` (or the Open button): its directory.
    pub(super) opened: Option<PathBuf>,
    /// The encoder used for retrieval when no trainer exists: the opened run's checkpoint, or
    /// a random initialisation. With a label for the UI.
    pub(super) eval_model: Option<(Model, String)>,
    pub(super) bank: Option<Bank>,
}

/// A panic inside a command (a device error wgpu reports by panicking, say) as a message.
fn guarded<T>(f: impl FnOnce() -> Result<T>) -> Result<T> {
    match catch_unwind(AssertUnwindSafe(f)) {
        Ok(r) => r,
        Err(p) => {
            let msg = p
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| p.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_else(|| "unknown panic".into());
            bail!("internal error: {msg}")
        }
    }
}

impl Engine {
    pub(super) fn main(device: DeviceOptions, rx: Receiver<Cmd>, tx: Sender<Event>, ctl: Arc<Control>) {
        let mut e = Engine {
            gpu: None,
            tx,
            ctl,
            data: None,
            opened: None,
            eval_model: None,
            bank: None,
        };
        match guarded(|| Ok(Gpu::open(&device)?)) {
            Ok(g) => {
                e.send(Event::Device(g.describe()));
                e.gpu = Some(Arc::new(g));
            }
            Err(err) => e.error(format!("no GPU adapter: {err:#}")),
        }
        let mut trainer: Option<Trainer> = None;
        while let Ok(cmd) = rx.recv() {
            match cmd {
                Cmd::Shutdown => break,
                Cmd::Start { cfg, resume } => {
                    e.ctl.stop.store(false, Ordering::SeqCst);
                    e.send(Event::State(TrainState::Starting));
                    let prev = trainer.take();
                    match guarded(|| e.build_trainer(*cfg, resume, prev)) {
                        Ok(t) => {
                            let mut t = t;
                            let ok = e.train(&mut t, &rx);
                            // A failed run's weights are not trusted (NaN, lost device).
                            trainer = ok.then_some(t);
                        }
                        Err(err) => {
                            e.error(format!("cannot start training: {err:#}"));
                            e.send(Event::State(TrainState::Failed));
                        }
                    }
                    if e.ctl.shutdown.load(Ordering::SeqCst) {
                        break;
                    }
                }
                Cmd::OpenRun(dir) => {
                    // The opened run replaces the current trainer (Continue resumes the run).
                    trainer = None;
                    e.handle(Cmd::OpenRun(dir), None);
                }
                other => e.handle(other, trainer.as_ref()),
            }
        }
    }

    pub(super) fn send(&self, ev: Event) {
        let _ = self.tx.send(ev);
        if let Some(f) = self.ctl.repaint.lock().unwrap().as_ref() {
            f();
        }
    }

    fn error(&self, msg: String) {
        self.send(Event::Message(Level::Error, msg));
    }

    fn info(&self, msg: String) {
        self.send(Event::Message(Level::Info, msg));
    }

    pub(super) fn gpu(&self) -> Result<Arc<Gpu>> {
        self.gpu.clone().context("no GPU adapter is open")
    }

    /// Serve one command; `t` is the trainer (mid-run when called from the step callback).
    fn handle(&mut self, cmd: Cmd, t: Option<&Trainer>) {
        let res = guarded(|| match cmd {
            Cmd::LoadData(src) => self.load_data(src),
            Cmd::OpenRun(dir) => self.open_run(&dir),
            Cmd::Preview { cfg, indices, seed } => self.preview(cfg, indices, seed),
            Cmd::Retrieve {
                query,
                k,
                bank,
                fallback,
            } => self.retrieve(t, query, k, bank, &fallback),
            Cmd::Embed { bank, fallback } => {
                self.bank = None;
                self.ensure_bank(t, bank, &fallback).map(|_| ())
            }
            Cmd::Start { .. } => bail!("training is already running"),
            Cmd::Shutdown => Ok(()),
        });
        if let Err(err) = res {
            self.error(format!("{err:#}"));
        }
    }

    fn load_data(&mut self, src: DataSource) -> Result<()> {
        let ds = data::load(src.kind, &src.dir, Split::Train)?;
        let ds = match src.limit {
            Some(n) if n < ds.len() => ds.subset(&(0..n as u32).collect::<Vec<_>>()),
            _ => ds,
        };
        if ds.is_empty() {
            bail!("{} holds no images", src.dir.display());
        }
        let ds = Arc::new(ds);
        self.data = Some((ds.clone(), src.clone()));
        self.bank = None;
        self.send(Event::Data(ds, src));
        Ok(())
    }

    /// Open a run trained headless: settings, curves, its encoder for retrieval, its data.
    fn open_run(&mut self, path: &Path) -> Result<()> {
        let dir = if path.is_dir() {
            path.to_path_buf()
        } else {
            path.parent().unwrap_or(Path::new(".")).to_path_buf()
        };
        let metrics = dir.join("metrics.jsonl");
        let records = if metrics.exists() {
            read_metrics(&metrics)?
        } else {
            Vec::new()
        };
        let steps: Vec<StepRecord> = records.iter().filter_map(embed::step_record).collect();
        let epochs: Vec<serde_json::Value> = records.into_iter().filter(|r| r["kind"] == "epoch").collect();
        let side_path = match checkpoint::resolve(path) {
            Ok(p) => p,
            Err(e) if !steps.is_empty() => {
                self.error(format!("{e:#}; showing its curves only"));
                self.send(Event::RunOpened {
                    dir,
                    cfg: Box::default(),
                    steps,
                    epochs,
                });
                return Ok(());
            }
            Err(e) => return Err(e),
        };
        let side = checkpoint::read_sidecar(&side_path)?;
        let mut cfg = side.config.clone();
        // The run lives where it was found, even if it was moved.
        cfg.runs_dir = dir.parent().map(Path::to_path_buf).unwrap_or_default();
        cfg.name = dir
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        self.opened = Some(dir.clone());
        self.send(Event::RunOpened {
            dir: dir.clone(),
            cfg: Box::new(cfg.clone()),
            steps,
            epochs,
        });
        let gpu = self.gpu()?;
        let (model, _) = crate::eval::load::load_model(&gpu, &side_path, 64)?;
        self.eval_model = Some((model, format!("checkpoint step {}", side.step)));
        self.bank = None;
        self.info(format!("opened run {} at step {}", dir.display(), side.step));
        let src = DataSource {
            kind: DatasetKind::Cifar10,
            dir: data::resolve_data_dir(cfg.data.as_deref()),
            limit: cfg.limit_train,
        };
        self.load_data(src)
            .context("the run's data did not load (choose it in the Data panel)")
    }

    pub(super) fn dataset(&self) -> Result<Arc<Dataset>> {
        Ok(self
            .data
            .as_ref()
            .context("load a dataset first (Data panel)")?
            .0
            .clone())
    }

    /// Views rendered by the training augmentation kernel (`Augmenter` through `render_views`),
    /// parameters drawn as a training step draws them.
    fn preview(&mut self, cfg: AugmentConfig, indices: Vec<u32>, seed: u64) -> Result<()> {
        cfg.validate()?;
        let ds = self.dataset()?;
        let indices: Vec<u32> = indices.into_iter().filter(|&i| (i as usize) < ds.len()).collect();
        if indices.is_empty() {
            bail!("no images to augment");
        }
        let gpu = self.gpu()?;
        let sub = ds.subset(&indices);
        let images = GpuImages::upload(&gpu, &sub)?;
        let n = indices.len();
        let params = sample_batch(&mut batch_rng(seed, 0), &cfg, n, ds.height, ds.width);
        let local: Vec<u32> = (0..n as u32).collect();
        let views = render_views(&gpu, &images, &cfg, &local, &params, true)?;
        self.send(Event::Preview(Preview {
            indices,
            params,
            views,
            size: cfg.out_size,
        }));
        Ok(())
    }

    fn build_trainer(&mut self, mut cfg: TrainConfig, resume: bool, prev: Option<Trainer>) -> Result<Trainer> {
        let gpu = self.gpu()?;
        if resume {
            if let Some(mut t) = prev {
                run_time_settings(&mut t.cfg, &cfg);
                t.total_steps = t.steps_per_epoch * t.cfg.epochs;
                return Ok(t);
            }
        }
        let ds = self.dataset()?;
        if resume {
            // As `train --resume`: the run's own settings, only run-time ones from the panel.
            let dir = self.opened.clone().context("nothing to continue: start a new run")?;
            let side = checkpoint::resolve(&dir)?;
            let mut saved = checkpoint::read_sidecar(&side)?.config;
            saved.runs_dir = cfg.runs_dir.clone();
            saved.name = cfg.name.clone();
            run_time_settings(&mut saved, &cfg);
            let src = self.data.as_ref().map(|d| &d.1);
            let want = data::resolve_data_dir(saved.data.as_deref());
            if src.is_none_or(|s| s.kind != DatasetKind::Cifar10 || s.limit != saved.limit_train || s.dir != want) {
                bail!(
                    "the run trained on CIFAR-10 from {} (first {:?} images): load that data to continue it",
                    want.display(),
                    saved.limit_train
                );
            }
            let mut t = Trainer::with_data(gpu, saved, (*ds).clone())?;
            t.load_checkpoint(&side)?;
            return Ok(t);
        }
        cfg.image_size = ds.height;
        if let Some((_, src)) = &self.data {
            if src.kind == DatasetKind::Cifar10 {
                cfg.data = Some(std::fs::canonicalize(&src.dir).unwrap_or(src.dir.clone()));
            }
            cfg.limit_train = src.limit;
        }
        cfg.name = fresh_name(&cfg.runs_dir, &cfg.name);
        Trainer::with_data(gpu, cfg, (*ds).clone())
    }

    /// Run `t` until it ends, is stopped or fails; serve commands between steps. Returns false
    /// when training failed.
    fn train(&mut self, t: &mut Trainer, rx: &Receiver<Cmd>) -> bool {
        self.send(Event::Training {
            dir: t.cfg.run_dir(),
            cfg: Box::new(t.cfg.clone()),
            step: t.step,
            total: t.cfg.max_steps.unwrap_or(usize::MAX).min(t.total_steps),
        });
        self.send(Event::State(TrainState::Running));
        let ctl = self.ctl.clone();
        let mut epochs_sent = t.history.len();
        let mut on_step = |t: &Trainer, r: &StepRecord| {
            self.send(Event::Step(r.clone()));
            for rec in &t.history[epochs_sent..] {
                self.send(Event::Epoch(rec.clone()));
            }
            epochs_sent = t.history.len();
            let every = ctl.heatmap_every.load(Ordering::Relaxed);
            if ctl.heatmap.load(Ordering::Relaxed) && every > 0 && r.step.is_multiple_of(every) {
                if let Err(e) = self.heatmap(t) {
                    self.error(format!("similarity heat map: {e:#}"));
                }
            }
            self.serve_between_steps(t, rx);
        };
        let res = guarded(|| t.run(&ctl.stop, &mut on_step));
        for rec in &t.history[epochs_sent.min(t.history.len())..] {
            self.send(Event::Epoch(rec.clone()));
        }
        match res {
            Ok(()) => {
                let stopped = ctl.stop.swap(false, Ordering::SeqCst);
                ctl.pause.store(false, Ordering::SeqCst);
                let state = if stopped {
                    TrainState::Stopped
                } else {
                    TrainState::Finished
                };
                let ckpt = checkpoint::resolve(&t.cfg.run_dir())
                    .map(|p| p.display().to_string())
                    .unwrap_or_else(|e| e.to_string());
                let what = if stopped { "stopped" } else { "finished" };
                self.info(format!("training {what} at step {}; checkpoint {ckpt}", t.step));
                self.bank = None;
                self.send(Event::State(state));
                true
            }
            Err(err) => {
                self.error(format!(
                    "training failed: {err:#} (the last checkpoint in {} is kept)",
                    t.cfg.run_dir().display()
                ));
                ctl.pause.store(false, Ordering::SeqCst);
                self.send(Event::State(TrainState::Failed));
                false
            }
        }
    }

    /// Commands that arrived during a step; while paused, wait here for more (or a stop).
    fn serve_between_steps(&mut self, t: &Trainer, rx: &Receiver<Cmd>) {
        let mut paused = false;
        loop {
            while let Ok(cmd) = rx.try_recv() {
                self.serve_one(cmd, t);
            }
            if self.ctl.shutdown.load(Ordering::SeqCst) {
                self.ctl.stop.store(true, Ordering::SeqCst);
            }
            let stop = self.ctl.stop.load(Ordering::SeqCst);
            if !self.ctl.pause.load(Ordering::SeqCst) || stop {
                break;
            }
            if !paused {
                paused = true;
                self.send(Event::State(TrainState::Paused));
            }
            match rx.recv_timeout(Duration::from_millis(100)) {
                Ok(c) => self.serve_one(c, t),
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => self.ctl.stop.store(true, Ordering::SeqCst),
            }
        }
        if paused {
            self.send(Event::State(TrainState::Running));
        }
    }

    /// A command that arrived mid-run. The data and the run cannot change under a trainer.
    fn serve_one(&mut self, cmd: Cmd, t: &Trainer) {
        match cmd {
            Cmd::Shutdown => self.ctl.shutdown.store(true, Ordering::SeqCst),
            Cmd::LoadData(_) | Cmd::OpenRun(_) => self.error("stop training before loading other data or a run".into()),
            c => self.handle(c, Some(t)),
        }
    }

    /// Cosine similarities of the latest step's embeddings (the loss never materialises them).
    fn heatmap(&self, t: &Trainer) -> Result<()> {
        let out = t.model.output();
        let (rows, d) = (out.shape[0], out.shape[1]);
        let z = out.read_f32(&t.gpu)?;
        let n = rows / 2;
        let m = n.min(128);
        let pick: Vec<usize> = (0..m).chain(n..n + m).collect();
        self.send(Event::Heatmap(Heatmap {
            step: t.step.saturating_sub(1),
            rows: 2 * m,
            values: embed::cosine_matrix(&z, d, &pick),
        }));
        Ok(())
    }
}

/// The settings that may change when a run continues (as `train --resume` allows).
fn run_time_settings(run: &mut TrainConfig, ui: &TrainConfig) {
    run.epochs = ui.epochs;
    run.max_steps = ui.max_steps;
    run.knn_every = ui.knn_every;
    run.knn_k = ui.knn_k;
    run.knn_t = ui.knn_t;
    run.keep = ui.keep;
    run.limit_test = ui.limit_test;
}

/// A run name not used yet in `runs_dir`: `name`, else `name-2`, `name-3`, ... (as `train`).
fn fresh_name(runs_dir: &Path, name: &str) -> String {
    let used = |n: &str| {
        !checkpoint::list_checkpoints(&runs_dir.join(n)).is_empty() || runs_dir.join(n).join("metrics.jsonl").exists()
    };
    if !used(name) {
        return name.to_string();
    }
    (2..).map(|i| format!("{name}-{i}")).find(|n| !used(n)).unwrap()
}
