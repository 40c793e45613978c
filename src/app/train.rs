//! Training panel: start, pause, resume and stop; the `train` settings; live curves; the current
//! batch's similarity matrix.

use super::state::Shared;
use super::view::{heat_texture, labelled, similarity_color};
use super::worker::{Cmd, Heatmap, Level, TrainState, Worker};
use crate::augment::AugmentConfig;
use crate::nn::arch::Arch;
use crate::train::{StepRecord, TrainConfig};
use egui::{TextureHandle, Vec2};
use egui_plot::{Line, Plot, PlotPoints, Points};
use std::path::PathBuf;

pub struct TrainPanel {
    pub cfg: TrainConfig,
    pub state: TrainState,
    pub steps: Vec<StepRecord>,
    pub epochs: Vec<serde_json::Value>,
    /// The run directory shown (being trained or opened).
    pub run_dir: Option<PathBuf>,
    /// Steps of the run when it ends.
    pub total: usize,
    /// A trainer or an opened checkpoint exists, so Continue makes sense.
    pub can_continue: bool,
    heatmap: Option<(usize, usize, TextureHandle)>,
    /// Fold the settings away when a run starts, so the curves fit the window.
    fold_settings: bool,
}

impl Default for TrainPanel {
    /// Settings that train in minutes on a software adapter: the `tiny` encoder, small batches,
    /// kNN on 1,000 test images. Every one can be changed before starting.
    fn default() -> Self {
        TrainPanel {
            cfg: TrainConfig {
                name: "gui".into(),
                arch: Arch::Tiny,
                batch: 64,
                epochs: 20,
                warmup_epochs: 1,
                lr: 1.0,
                limit_test: Some(1000),
                ..Default::default()
            },
            state: TrainState::Idle,
            steps: Vec::new(),
            epochs: Vec::new(),
            run_dir: None,
            total: 0,
            can_continue: false,
            heatmap: None,
            fold_settings: false,
        }
    }
}

impl TrainPanel {
    /// Training is starting or running: the window keeps repainting.
    pub fn busy(&self) -> bool {
        matches!(
            self.state,
            TrainState::Starting | TrainState::Running | TrainState::Paused
        )
    }

    pub fn on_opened(
        &mut self,
        dir: PathBuf,
        cfg: TrainConfig,
        steps: Vec<StepRecord>,
        epochs: Vec<serde_json::Value>,
    ) {
        self.cfg = cfg;
        self.steps = steps;
        self.epochs = epochs;
        self.total = self.cfg.max_steps.unwrap_or(usize::MAX).min(self.total_guess());
        self.run_dir = Some(dir);
        self.can_continue = true;
    }

    fn total_guess(&self) -> usize {
        // steps per epoch from the records (an opened run has no trainer to ask).
        let last = self.steps.last().map(|r| (r.step, r.epoch));
        match last {
            Some((s, e)) if s > 0 => (s + 1).div_ceil(e + 1) * self.cfg.epochs,
            _ => 0,
        }
    }

    pub fn on_training(&mut self, dir: PathBuf, cfg: TrainConfig, step: usize, total: usize) {
        if self.run_dir.as_ref() != Some(&dir) {
            self.steps.clear();
            self.epochs.clear();
        }
        // Records past the restart point are replaced by the new ones.
        self.steps.retain(|r| r.step < step);
        self.cfg = cfg;
        self.total = total;
        self.run_dir = Some(dir);
        self.can_continue = true;
    }

    pub fn has_heatmap(&self) -> bool {
        self.heatmap.is_some()
    }

    pub fn on_heatmap(&mut self, ctx: &egui::Context, h: Heatmap) {
        let tex = heat_texture(ctx, &h.values, h.rows);
        self.heatmap = Some((h.step, h.rows, tex));
    }

    pub fn show(&mut self, ui: &mut egui::Ui, shared: &mut Shared, worker: &Worker, aug: &AugmentConfig) {
        ui.label(format!("Device: {}", shared.device.as_deref().unwrap_or("opening…")));
        self.controls(ui, shared, worker, aug);
        self.status(ui);
        egui::CollapsingHeader::new("Settings (as `simclr train`)")
            .default_open(!self.busy() && self.steps.is_empty())
            .open(std::mem::take(&mut self.fold_settings).then_some(false))
            .show(ui, |ui| {
                ui.add_enabled_ui(!self.busy(), |ui| settings(ui, &mut self.cfg));
            });
        self.curves(ui);
    }

    fn controls(&mut self, ui: &mut egui::Ui, shared: &mut Shared, worker: &Worker, aug: &AugmentConfig) {
        let busy = self.busy();
        ui.horizontal(|ui| {
            if ui.add_enabled(!busy, egui::Button::new("Start")).clicked() {
                self.start(shared, worker, aug, false);
            }
            let cont = ui.add_enabled(!busy && self.can_continue, egui::Button::new("Continue"));
            if cont.on_hover_text("resume the run from where it stopped").clicked() {
                self.start(shared, worker, aug, true);
            }
            let paused =
                self.state == TrainState::Paused || worker.control.pause.load(std::sync::atomic::Ordering::SeqCst);
            let label = if paused { "Resume" } else { "Pause" };
            if ui.add_enabled(busy, egui::Button::new(label)).clicked() {
                worker.pause(!paused);
            }
            if ui.add_enabled(busy, egui::Button::new("Stop")).clicked() {
                worker.stop();
            }
            ui.label(format!("state: {:?}", self.state).to_lowercase());
        });
    }

    fn start(&mut self, shared: &mut Shared, worker: &Worker, aug: &AugmentConfig, resume: bool) {
        let mut cfg = self.cfg.clone();
        // The augmentation settings of the Augmentations panel that the trainer has.
        cfg.jitter_strength = aug.jitter_strength;
        cfg.jitter_p = aug.jitter_p;
        cfg.gray_p = aug.gray_p;
        cfg.flip_p = aug.flip_p;
        cfg.crop_min_scale = aug.crop_scale.0;
        cfg.blur_p = Some(aug.blur_p);
        if !resume {
            if let Err(e) = cfg.validate() {
                shared.message(Level::Error, format!("{e:#}"));
                return;
            }
        }
        if shared.dataset.is_none() && !resume {
            shared.message(Level::Error, "load a dataset first (Data panel)".into());
            return;
        }
        worker.pause(false);
        self.fold_settings = true;
        self.state = TrainState::Starting;
        worker.send(Cmd::Start {
            cfg: Box::new(cfg),
            resume,
        });
    }

    fn status(&self, ui: &mut egui::Ui) {
        let Some(last) = self.steps.last() else {
            ui.label("No steps yet.");
            return;
        };
        let rate = last.images_per_s;
        let left = self.total.saturating_sub(last.step + 1);
        let eta = if rate > 0.0 {
            let secs = left as f64 * self.cfg.batch as f64 / rate;
            format!("{}m{:02}s", (secs / 60.0) as u64, secs as u64 % 60)
        } else {
            "—".into()
        };
        let knn = self
            .epochs
            .iter()
            .rev()
            .find_map(|e| e["knn_top1"].as_f64())
            .map(|a| format!("{:.1}%", 100.0 * a))
            .unwrap_or_else(|| "—".into());
        ui.label(format!(
            "step {} / {} · epoch {} · loss {:.4} · lr {:.4} · positive acc {:.1}% · kNN top-1 {knn} · {:.1} images/s · ETA {eta}",
            last.step + 1,
            self.total,
            last.epoch + 1,
            last.loss,
            last.lr,
            100.0 * last.pos_acc,
            rate
        ));
        if let Some(d) = &self.run_dir {
            ui.weak(format!("run directory: {}", d.display()));
        }
    }

    fn curves(&self, ui: &mut egui::Ui) {
        let series = |f: &dyn Fn(&StepRecord) -> f64| -> Vec<[f64; 2]> {
            self.steps.iter().map(|r| [r.step as f64, f(r)]).collect()
        };
        let knn: Vec<[f64; 2]> = self
            .epochs
            .iter()
            .filter_map(|e| Some([e["step"].as_f64()?, 100.0 * e["knn_top1"].as_f64()?]))
            .collect();
        let width = (ui.available_width() / 2.0 - 12.0).max(200.0);
        let plot = |ui: &mut egui::Ui, id: &str, name: &str, pts: Vec<[f64; 2]>, dots: bool| {
            ui.vertical(|ui| {
                ui.label(name);
                Plot::new(id)
                    .width(width)
                    .height(150.0)
                    .allow_scroll(false)
                    .show(ui, |p| {
                        if dots {
                            p.points(Points::new(name, PlotPoints::from(pts.clone())).radius(3.0));
                        }
                        p.line(Line::new(name, PlotPoints::from(pts)));
                    });
            });
        };
        ui.horizontal(|ui| {
            plot(ui, "loss", "NT-Xent loss", series(&|r| r.loss as f64), false);
            plot(ui, "lr", "learning rate", series(&|r| r.lr), false);
        });
        ui.horizontal(|ui| {
            plot(
                ui,
                "acc",
                "positive-retrieval accuracy (%)",
                series(&|r| 100.0 * r.pos_acc as f64),
                false,
            );
            plot(ui, "knn", "kNN top-1 (%), per epoch", knn, true);
        });
        // The heat map sits beside the last curve so that everything fits one screen.
        ui.horizontal_top(|ui| {
            plot(ui, "rate", "images/s", series(&|r| r.images_per_s), false);
            ui.vertical(|ui| self.similarity(ui));
        });
    }

    fn similarity(&self, ui: &mut egui::Ui) {
        ui.strong("Similarity of the current batch");
        let Some((step, rows, tex)) = &self.heatmap else {
            ui.weak("Shown every few steps while training and this panel is open.");
            return;
        };
        ui.horizontal(|ui| {
            ui.add(egui::Image::from_texture(tex).fit_to_exact_size(Vec2::splat(200.0)));
            ui.vertical(|ui| {
                ui.label(format!("step {step}: cosine similarity of {rows} embeddings"));
                ui.label(format!(
                    "rows/columns: view 1 of {} images, then their view 2;\nthe positive pairs are the two bands {} off the diagonal.",
                    rows / 2,
                    rows / 2
                ));
                for (s, t) in [(1.0, "+1"), (0.0, "0"), (-1.0, "-1")] {
                    ui.colored_label(similarity_color(s), format!("{t}: this colour"));
                }
            });
        });
    }
}

/// The `train` settings as widgets.
fn settings(ui: &mut egui::Ui, c: &mut TrainConfig) {
    fn drag<N: egui::emath::Numeric>(
        ui: &mut egui::Ui,
        name: &str,
        v: &mut N,
        range: std::ops::RangeInclusive<N>,
        speed: f64,
    ) {
        // A value from an opened run or a config outside the widget's range is kept as it is.
        let w = egui::DragValue::new(v)
            .range(range)
            .speed(speed)
            .clamp_existing_to_range(false);
        labelled(ui, name, |ui| ui.add(w));
    }
    fn choice(ui: &mut egui::Ui, name: &str, v: &mut String, options: &[&str]) {
        labelled(ui, name, |ui| {
            egui::ComboBox::from_id_salt(name)
                .selected_text(v.clone())
                .show_ui(ui, |ui| {
                    for o in options {
                        ui.selectable_value(v, o.to_string(), *o);
                    }
                })
                .response
        });
    }
    /// 0 in the widget stands for "not set".
    fn optional(ui: &mut egui::Ui, name: &str, v: &mut Option<usize>) {
        let mut n = v.unwrap_or(0);
        if labelled(ui, name, |ui| {
            ui.add(egui::DragValue::new(&mut n).range(0..=10_000_000))
        })
        .changed()
        {
            *v = (n > 0).then_some(n);
        }
    }
    egui::Grid::new("train-settings").num_columns(4).show(ui, |ui| {
        labelled(ui, "run name", |ui| ui.text_edit_singleline(&mut c.name));
        let mut runs = c.runs_dir.display().to_string();
        if labelled(ui, "runs folder", |ui| ui.text_edit_singleline(&mut runs)).changed() {
            c.runs_dir = runs.into();
        }
        ui.end_row();
        labelled(ui, "encoder", |ui| {
            egui::ComboBox::from_id_salt("arch")
                .selected_text(format!("{:?}", c.arch).to_lowercase())
                .show_ui(ui, |ui| {
                    for a in [Arch::Tiny, Arch::Resnet18, Arch::Resnet34, Arch::Resnet50] {
                        ui.selectable_value(&mut c.arch, a, format!("{a:?}").to_lowercase());
                    }
                })
                .response
        });
        drag(ui, "width", &mut c.width, 0.125..=4.0, 0.05);
        ui.end_row();
        drag(ui, "batch", &mut c.batch, 2..=4096, 1.0);
        drag(ui, "epochs", &mut c.epochs, 1..=10_000, 1.0);
        ui.end_row();
        drag(ui, "warmup epochs", &mut c.warmup_epochs, 0..=1000, 1.0);
        drag(ui, "base lr", &mut c.lr, 0.0..=100.0, 0.01);
        ui.end_row();
        choice(ui, "optimizer", &mut c.optimizer, &["lars", "sgd", "adamw"]);
        choice(ui, "lr scaling", &mut c.lr_scaling, &["linear", "sqrt"]);
        ui.end_row();
        drag(ui, "momentum", &mut c.momentum, 0.0..=1.0, 0.01);
        drag(ui, "weight decay", &mut c.weight_decay, 0.0..=1.0, 1e-5);
        ui.end_row();
        drag(ui, "temperature τ", &mut c.tau, 0.01..=10.0, 0.01);
        drag(ui, "seed", &mut c.seed, 0..=u64::MAX, 1.0);
        ui.end_row();
        drag(ui, "kNN every (epochs)", &mut c.knn_every, 0..=1000, 1.0);
        drag(ui, "kNN k", &mut c.knn_k, 1..=1000, 1.0);
        ui.end_row();
        drag(ui, "kNN temperature", &mut c.knn_t, 0.01..=10.0, 0.01);
        optional(ui, "kNN test images (0 = all)", &mut c.limit_test);
        ui.end_row();
        optional(ui, "stop after steps (0 = never)", &mut c.max_steps);
        drag(ui, "checkpoints kept", &mut c.keep, 1..=100, 1.0);
        ui.end_row();
    });
}
