//! The app's engine thread. It owns the GPU, the dataset on the device, the trainer and every
//! computation, so that no frame ever waits for the device: the UI sends `Cmd`s and drains
//! `Event`s once per frame. While training, commands are served between steps (from the
//! trainer's step callback), so retrieval and previews use the encoder as it is trained.

use super::engine::Engine;
use crate::augment::{AugmentConfig, ViewParams};
use crate::data::{Dataset, DatasetKind};
use crate::gpu::DeviceOptions;
use crate::nn::arch::ModelConfig;
use crate::train::{StepRecord, TrainConfig};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

/// Where the Data panel loads from.
#[derive(Clone, Debug, PartialEq)]
pub struct DataSource {
    pub kind: DatasetKind,
    pub dir: PathBuf,
    /// Keep the first N images only (quick experiments on a slow device).
    pub limit: Option<usize>,
}

/// What to look up in the Retrieval panel.
#[derive(Clone, Debug, PartialEq)]
pub enum Query {
    /// An image of the loaded dataset.
    Index(usize),
    /// An image file (dropped on the window).
    File(PathBuf),
}

pub enum Cmd {
    LoadData(DataSource),
    OpenRun(PathBuf),
    /// Render augmented views of `indices` with parameters drawn from `seed`.
    Preview {
        cfg: AugmentConfig,
        indices: Vec<u32>,
        seed: u64,
    },
    /// Train; `resume` continues the current trainer or the opened run's checkpoint.
    Start {
        cfg: Box<TrainConfig>,
        resume: bool,
    },
    /// Neighbours among the first `bank` images; `fallback` builds a random encoder when
    /// there is neither a trainer nor an opened run.
    Retrieve {
        query: Query,
        k: usize,
        bank: usize,
        fallback: ModelConfig,
    },
    /// Recompute the embedding bank and its PCA map.
    Embed {
        bank: usize,
        fallback: ModelConfig,
    },
    Shutdown,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TrainState {
    Idle,
    Starting,
    Running,
    Paused,
    Stopped,
    Finished,
    Failed,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Info,
    Error,
}

/// Augmented views as the training kernel wrote them, plain RGB in [0, 1].
pub struct Preview {
    pub indices: Vec<u32>,
    /// 2 per image, output-row order (rows 0..n view 1, n..2n view 2).
    pub params: Vec<ViewParams>,
    /// [2n, 3, size, size].
    pub views: Vec<f32>,
    pub size: usize,
}

/// Cosine similarities of the current batch's embeddings (`rows` × `rows`; view 1 of the first
/// `rows / 2` images, then their view 2: positives sit on the ±rows/2 diagonals).
pub struct Heatmap {
    pub step: usize,
    pub rows: usize,
    pub values: Vec<f32>,
}

pub struct Neighbours {
    pub query: Query,
    /// The query image as the encoder saw it (H×W RGB), for display.
    pub query_rgb: Vec<u8>,
    pub hits: Vec<(f32, usize)>,
    /// Which encoder answered (e.g. "training step 40").
    pub encoder: String,
}

/// 2-D PCA of the bank's embeddings.
pub struct Embedding {
    pub points: Vec<[f32; 2]>,
    pub labels: Option<Vec<u32>>,
    pub encoder: String,
}

pub enum Event {
    Device(String),
    Data(Arc<Dataset>, DataSource),
    Message(Level, String),
    Preview(Preview),
    State(TrainState),
    Step(StepRecord),
    Epoch(serde_json::Value),
    /// A run opened from disk: its settings, and every metrics record so far.
    RunOpened {
        dir: PathBuf,
        cfg: Box<TrainConfig>,
        steps: Vec<StepRecord>,
        epochs: Vec<serde_json::Value>,
    },
    /// Training (re)started: the run directory written to and the step it starts from.
    Training {
        dir: PathBuf,
        cfg: Box<TrainConfig>,
        step: usize,
        total: usize,
    },
    Heatmap(Heatmap),
    Neighbours(Neighbours),
    Embedding(Embedding),
}

/// Flags the UI sets without waiting for the engine (read between steps).
#[derive(Default)]
pub struct Control {
    pub stop: AtomicBool,
    /// The window is closing: stop (with a checkpoint) and end the engine.
    pub shutdown: AtomicBool,
    pub pause: AtomicBool,
    /// The Training panel is visible: compute the similarity heat map.
    pub heatmap: AtomicBool,
    /// Heat map every this many steps (0 = never).
    pub heatmap_every: AtomicUsize,
    /// Called after each event so that the window repaints.
    pub repaint: Mutex<Option<Box<dyn Fn() + Send>>>,
}

/// The UI's end of the engine: a command sender, an event receiver, the shared flags.
pub struct Worker {
    pub control: Arc<Control>,
    tx: Sender<Cmd>,
    rx: Receiver<Event>,
    thread: Option<JoinHandle<()>>,
}

impl Worker {
    pub fn spawn(device: DeviceOptions) -> Worker {
        let (tx, cmd_rx) = channel();
        let (ev_tx, rx) = channel();
        let control = Arc::new(Control {
            heatmap_every: AtomicUsize::new(5),
            ..Default::default()
        });
        let ctl = control.clone();
        let thread = std::thread::Builder::new()
            .name("simclr-engine".into())
            .spawn(move || Engine::main(device, cmd_rx, ev_tx, ctl))
            .expect("spawning the engine thread");
        Worker {
            control,
            tx,
            rx,
            thread: Some(thread),
        }
    }

    pub fn send(&self, cmd: Cmd) {
        // A closed channel means the engine ended (its error was reported): nothing to do.
        let _ = self.tx.send(cmd);
    }

    pub fn try_recv(&self) -> Option<Event> {
        self.rx.try_recv().ok()
    }

    pub fn set_repaint(&self, f: Box<dyn Fn() + Send>) {
        *self.control.repaint.lock().unwrap() = Some(f);
    }

    pub fn pause(&self, on: bool) {
        self.control.pause.store(on, Ordering::SeqCst);
    }

    /// Ask a running training to stop; it writes a checkpoint first.
    pub fn stop(&self) {
        self.control.stop.store(true, Ordering::SeqCst);
    }

    /// Stop training (with a checkpoint) and wait for the engine to finish.
    pub fn shutdown(&mut self) {
        self.control.shutdown.store(true, Ordering::SeqCst);
        self.control.stop.store(true, Ordering::SeqCst);
        self.control.pause.store(false, Ordering::SeqCst);
        self.send(Cmd::Shutdown);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.shutdown();
    }
}
