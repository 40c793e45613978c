//! The window: tabs, the message bar, and the routing of engine events to the panels.

use super::augment::AugmentPanel;
use super::data::DataPanel;
use super::retrieval::RetrievalPanel;
use super::state::{Panel, Shared};
use super::train::TrainPanel;
use super::worker::{Cmd, DataSource, Event, Level, Query, Worker};
use crate::data::DatasetKind;
use crate::gpu::DeviceOptions;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::Duration;

/// How the app starts.
#[derive(Clone, Debug, Default)]
pub struct AppOptions {
    pub device: DeviceOptions,
    /// A run directory to open (`simclr gui runs/NAME`).
    pub run_dir: Option<PathBuf>,
    /// The dataset folder (default: $SIMCLR_DATA, else ./data).
    pub data_dir: Option<PathBuf>,
    /// Load CIFAR-10 from the data folder at start (when no run is opened).
    pub load_data: bool,
}

pub struct SimclrApp {
    pub panel: Panel,
    pub worker: Worker,
    pub shared: Shared,
    pub data: DataPanel,
    pub augment: AugmentPanel,
    pub train: TrainPanel,
    pub retrieval: RetrievalPanel,
    repaint_hooked: bool,
}

impl SimclrApp {
    pub fn new(opts: AppOptions) -> SimclrApp {
        let worker = Worker::spawn(opts.device.clone());
        let dir = crate::data::resolve_data_dir(opts.data_dir.as_deref());
        let mut app = SimclrApp {
            panel: Panel::Data,
            worker,
            shared: Shared::default(),
            data: DataPanel::new(&dir),
            augment: AugmentPanel::default(),
            train: TrainPanel::default(),
            retrieval: RetrievalPanel::default(),
            repaint_hooked: false,
        };
        if let Some(run) = opts.run_dir {
            app.data.run_dir = run.display().to_string();
            app.shared.loading = true;
            app.worker.send(Cmd::OpenRun(run));
            app.panel = Panel::Train;
        } else if opts.load_data && dir.exists() {
            app.shared.loading = true;
            app.worker.send(Cmd::LoadData(DataSource {
                kind: DatasetKind::Cifar10,
                dir,
                limit: app.data.limit(),
            }));
        }
        app
    }

    /// Draw one frame (the eframe `App::ui` and the UI tests both call this).
    pub fn show(&mut self, ui: &mut egui::Ui) {
        if !self.repaint_hooked {
            let ctx = ui.ctx().clone();
            self.worker.set_repaint(Box::new(move || ctx.request_repaint()));
            self.repaint_hooked = true;
        }
        self.drain_events(ui.ctx());
        self.take_dropped_files(ui.ctx());
        // The heat map costs a readback: only while its panel is on screen.
        self.worker
            .control
            .heatmap
            .store(self.panel == Panel::Train, Ordering::Relaxed);

        egui::Panel::top("tabs").show(ui, |ui| {
            ui.horizontal(|ui| {
                ui.strong("SimCLR");
                ui.separator();
                for p in Panel::ALL {
                    ui.selectable_value(&mut self.panel, p, p.title());
                }
                ui.separator();
                let dev = self.shared.device.as_deref().unwrap_or("opening the GPU…");
                ui.weak(dev);
            });
        });
        egui::Panel::bottom("messages").show(ui, |ui| self.messages(ui));
        egui::CentralPanel::default().show(ui, |ui| {
            egui::ScrollArea::vertical().auto_shrink(false).show(ui, |ui| {
                ui.heading(self.panel.heading());
                match self.panel {
                    Panel::Data => self.data.show(ui, &mut self.shared, &self.worker),
                    Panel::Augment => self.augment.show(ui, &mut self.shared, &self.worker),
                    Panel::Train => self.train.show(ui, &mut self.shared, &self.worker, &self.augment.cfg),
                    Panel::Retrieval => {
                        self.retrieval
                            .show(ui, &mut self.shared, &self.worker, &self.train.cfg.model())
                    }
                }
            });
        });
        if let Some(q) = self.shared.retrieve.take() {
            self.retrieval.request(&self.worker, q, &self.train.cfg.model());
            self.panel = Panel::Retrieval;
        }
        if let Some(p) = self.shared.goto.take() {
            self.panel = p;
        }
        if self.train.busy() {
            // Curves move even when nothing else asks for a frame.
            ui.ctx().request_repaint_after(Duration::from_millis(250));
        }
    }

    fn messages(&mut self, ui: &mut egui::Ui) {
        ui.horizontal(|ui| {
            if self.shared.loading {
                ui.spinner();
                ui.label("loading…");
            }
            match self.shared.messages.last() {
                Some((Level::Error, m)) => {
                    ui.colored_label(egui::Color32::from_rgb(255, 110, 100), m);
                }
                Some((Level::Info, m)) => {
                    ui.label(m);
                }
                None => {
                    ui.weak("Drop an image file on the window to find its nearest neighbours.");
                }
            }
            if !self.shared.messages.is_empty() && ui.small_button("clear").clicked() {
                self.shared.messages.clear();
            }
        });
    }

    fn drain_events(&mut self, ctx: &egui::Context) {
        while let Some(ev) = self.worker.try_recv() {
            match ev {
                Event::Device(d) => self.shared.device = Some(d),
                Event::Message(level, text) => {
                    if level == Level::Error {
                        self.shared.loading = false;
                        self.augment.busy = false;
                        self.retrieval.busy = false;
                    }
                    self.shared.message(level, text);
                }
                Event::Data(ds, src) => {
                    self.shared.loading = false;
                    self.shared.set_dataset(ds, src);
                    self.data.on_dataset();
                    self.retrieval.on_dataset();
                    self.augment.on_dataset(&self.shared, &self.worker);
                }
                Event::Preview(p) => self.augment.on_preview(ctx, p, &self.worker),
                Event::State(s) => self.train.state = s,
                Event::Step(r) => self.train.steps.push(r),
                Event::Epoch(e) => self.train.epochs.push(e),
                Event::RunOpened {
                    dir,
                    cfg,
                    steps,
                    epochs,
                } => {
                    // The run's own augmentation settings, so that its views can be inspected.
                    if cfg.validate().is_ok() {
                        self.augment.cfg = crate::train::setup::augment_config(&cfg);
                    }
                    self.train.on_opened(dir, *cfg, steps, epochs);
                }
                Event::Training { dir, cfg, step, total } => self.train.on_training(dir, *cfg, step, total),
                Event::Heatmap(h) => self.train.on_heatmap(ctx, h),
                Event::Neighbours(n) => self.retrieval.on_neighbours(ctx, n),
                Event::Embedding(e) => self.retrieval.embedding = Some(e),
            }
        }
    }

    fn take_dropped_files(&mut self, ctx: &egui::Context) {
        let dropped = ctx.input(|i| i.raw.dropped_files.clone());
        if let Some(f) = dropped.first() {
            self.shared.retrieve = Some(Query::File(f.path().to_path_buf()));
        }
    }

    /// Stop training with a checkpoint and end the engine (closing the window).
    pub fn shutdown(&mut self) {
        self.worker.shutdown();
    }
}

impl eframe::App for SimclrApp {
    fn ui(&mut self, ui: &mut egui::Ui, _frame: &mut eframe::Frame) {
        self.show(ui);
    }

    fn on_exit(&mut self) {
        self.shutdown();
    }
}
