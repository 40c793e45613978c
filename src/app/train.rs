//! Training panel: start, pause, resume and stop; the `train` settings; live curves; the current
//! batch's similarity matrix.

use super::state::Shared;
use super::view::{heat_texture, similarity_color};
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
            .show(ui, |ui| {
                ui.add_enabled_ui(!self.busy(), |ui| settings(ui, &mut self.cfg));
            });
        self.curves(ui);
        self.similarity(ui);
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
        ui.horizontal(|ui| {
            plot(ui, "rate", "images/s", series(&|r| r.images_per_s), false);
        });
    }

    fn similarity(&self, ui: &mut egui::Ui) {
        ui.strong("Similarity of the current batch");
        let Some((step, rows, tex)) = &self.heatmap else {
            ui.weak("Shown every few steps while training and this panel is open.");
            return;
        };
        ui.horizontal(|ui| {
            ui.add(egui::Image::from_texture(tex).fit_to_exact_size(Vec2::splat(320.0)));
            ui.vertical(|ui| {
                ui.label(format!("step {step}: cosine similarity of {rows} embeddings"));
                ui.label(format!(
                    "rows/columns: view 1 of {} images, then their view 2;\nthe positive pairs are the two bands {} off the diagonal.",
                    rows / 2,
                    rows / 2
                ));
                for (s, t) in [(1.0, "+1"), (0.0, "0"), (-1.0, "−1")] {
                    ui.colored_label(similarity_color(s), format!("■ {t}"));
                }
            });
        });
    }
}

/// The `train` settings as widgets.
fn settings(ui: &mut egui::Ui, c: &mut TrainConfig) {
    egui::Grid::new("train-settings").num_columns(4).show(ui, |ui| {
        ui.label("run name");
        ui.text_edit_singleline(&mut c.name);
        ui.label("runs folder");
        let mut runs = c.runs_dir.display().to_string();
        if ui.text_edit_singleline(&mut runs).changed() {
            c.runs_dir = runs.into();
        }
        ui.end_row();
        ui.label("encoder");
        egui::ComboBox::from_id_salt("arch")
            .selected_text(format!("{:?}", c.arch).to_lowercase())
            .show_ui(ui, |ui| {
                for a in [Arch::Tiny, Arch::Resnet18, Arch::Resnet34, Arch::Resnet50] {
                    ui.selectable_value(&mut c.arch, a, format!("{a:?}").to_lowercase());
                }
            });
        ui.label("width");
        ui.add(egui::DragValue::new(&mut c.width).range(0.125..=4.0).speed(0.05));
        ui.end_row();
        ui.label("batch");
        ui.add(egui::DragValue::new(&mut c.batch).range(2..=4096));
        ui.label("epochs");
        ui.add(egui::DragValue::new(&mut c.epochs).range(1..=10_000));
        ui.end_row();
        ui.label("warmup epochs");
        ui.add(egui::DragValue::new(&mut c.warmup_epochs).range(0..=1000));
        ui.label("base lr");
        ui.add(egui::DragValue::new(&mut c.lr).range(0.0..=100.0).speed(0.01));
        ui.end_row();
        ui.label("optimizer");
        egui::ComboBox::from_id_salt("opt")
            .selected_text(c.optimizer.clone())
            .show_ui(ui, |ui| {
                for o in ["lars", "sgd", "adamw"] {
                    ui.selectable_value(&mut c.optimizer, o.to_string(), o);
                }
            });
        ui.label("lr scaling");
        egui::ComboBox::from_id_salt("scaling")
            .selected_text(c.lr_scaling.clone())
            .show_ui(ui, |ui| {
                for o in ["linear", "sqrt"] {
                    ui.selectable_value(&mut c.lr_scaling, o.to_string(), o);
                }
            });
        ui.end_row();
        ui.label("momentum");
        ui.add(egui::DragValue::new(&mut c.momentum).range(0.0..=1.0).speed(0.01));
        ui.label("weight decay");
        ui.add(egui::DragValue::new(&mut c.weight_decay).range(0.0..=1.0).speed(1e-5));
        ui.end_row();
        ui.label("temperature τ");
        ui.add(egui::DragValue::new(&mut c.tau).range(0.01..=10.0).speed(0.01));
        ui.label("seed");
        ui.add(egui::DragValue::new(&mut c.seed));
        ui.end_row();
        ui.label("kNN every (epochs)");
        ui.add(egui::DragValue::new(&mut c.knn_every).range(0..=1000));
        ui.label("kNN k, T");
        ui.horizontal(|ui| {
            ui.add(egui::DragValue::new(&mut c.knn_k).range(1..=1000));
            ui.add(egui::DragValue::new(&mut c.knn_t).range(0.01..=10.0).speed(0.01));
        });
        ui.end_row();
        ui.label("kNN test images");
        let mut n = c.limit_test.unwrap_or(0);
        if ui.add(egui::DragValue::new(&mut n).range(0..=100_000)).changed() {
            c.limit_test = (n > 0).then_some(n);
        }
        ui.label("stop after steps");
        let mut m = c.max_steps.unwrap_or(0);
        if ui.add(egui::DragValue::new(&mut m).range(0..=10_000_000)).changed() {
            c.max_steps = (m > 0).then_some(m);
        }
        ui.end_row();
        ui.label("checkpoints kept");
        ui.add(egui::DragValue::new(&mut c.keep).range(1..=100));
        ui.end_row();
    });
}
