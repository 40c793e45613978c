//! Augmentations panel: a few images and their two views exactly as the training kernel renders
//! them, each view's sampled parameters, and a slider for every setting.

use super::state::Shared;
use super::view::{chw_texture, rgb_texture};
use super::worker::{Cmd, Preview, Worker};
use crate::augment::{AugmentConfig, ViewParams};
use egui::{Color32, Rect, Stroke, TextureHandle, Vec2};

const SIDE: f32 = 112.0;
const VIEW_COLORS: [Color32; 2] = [Color32::from_rgb(80, 200, 255), Color32::from_rgb(255, 150, 40)];

pub struct AugmentPanel {
    pub cfg: AugmentConfig,
    /// Seed of the parameter draw; Re-sample moves it on.
    pub seed: u64,
    /// Images shown.
    pub count: usize,
    pub preview: Option<Preview>,
    /// A preview request is in flight.
    pub busy: bool,
    /// Settings changed while a request was in flight: ask again when it returns.
    stale: bool,
    /// Per image: original, view 1, view 2.
    textures: Vec<[TextureHandle; 3]>,
}

impl Default for AugmentPanel {
    fn default() -> Self {
        AugmentPanel {
            cfg: AugmentConfig::default(),
            seed: 7,
            count: 6,
            preview: None,
            busy: false,
            stale: false,
            textures: Vec::new(),
        }
    }
}

impl AugmentPanel {
    pub fn on_dataset(&mut self, shared: &Shared, worker: &Worker) {
        if let Some(ds) = &shared.dataset {
            // The recipe's default view size is the images' own (settings are kept otherwise).
            let side = ds.height.max(ds.width);
            if self.cfg.out_size != side {
                self.cfg = AugmentConfig::for_size(side);
            }
        }
        self.preview = None;
        self.textures.clear();
        self.busy = false;
        self.request(shared, worker);
    }

    /// Ask the engine for new views (or remember to, when one request is in flight).
    pub fn request(&mut self, shared: &Shared, worker: &Worker) {
        let Some(ds) = &shared.dataset else { return };
        if self.busy {
            self.stale = true;
            return;
        }
        // Evenly spread over the dataset, so that the sample shows several classes.
        let n = self.count.clamp(1, ds.len());
        let stride = (ds.len() / n).max(1);
        let indices = (0..n).map(|k| (k * stride) as u32).collect();
        self.busy = true;
        self.stale = false;
        worker.send(Cmd::Preview {
            cfg: self.cfg.clone(),
            indices,
            seed: self.seed,
        });
    }

    pub fn on_preview(&mut self, ctx: &egui::Context, p: Preview, _worker: &Worker) {
        self.busy = false;
        self.textures.clear();
        let n = p.indices.len();
        let plane = 3 * p.size * p.size;
        for r in 0..n {
            let view = |row: usize, tag: &str| {
                chw_texture(
                    ctx,
                    &format!("view{tag}-{r}"),
                    &p.views[row * plane..(row + 1) * plane],
                    p.size,
                )
            };
            // The original is filled in when the panel is drawn (it needs the dataset).
            let blank = rgb_texture(ctx, "blank", &[0, 0, 0], 1, 1);
            self.textures.push([blank, view(r, "1"), view(n + r, "2")]);
        }
        self.preview = Some(p);
    }

    pub fn show(&mut self, ui: &mut egui::Ui, shared: &mut Shared, worker: &Worker) {
        if self.stale && !self.busy {
            self.request(shared, worker);
        }
        if shared.dataset.is_none() {
            ui.label("Load a dataset (Data panel) to see its augmentations.");
            return;
        }
        ui.horizontal_top(|ui| {
            ui.vertical(|ui| {
                ui.set_width(300.0);
                if self.settings(ui) {
                    self.request(shared, worker);
                }
            });
            ui.separator();
            ui.vertical(|ui| self.views(ui, shared));
        });
    }

    /// Every setting of the recipe; returns true when one changed.
    fn settings(&mut self, ui: &mut egui::Ui) -> bool {
        let c = &mut self.cfg;
        let mut changed = false;
        let mut slider = |ui: &mut egui::Ui, v: &mut f32, range: std::ops::RangeInclusive<f32>, text: &str| {
            changed |= ui.add(egui::Slider::new(v, range).text(text)).changed();
        };
        ui.strong("Random resized crop");
        slider(ui, &mut c.crop_scale.0, 0.01..=1.0, "crop scale min");
        slider(ui, &mut c.crop_scale.1, 0.01..=1.0, "crop scale max");
        slider(ui, &mut c.crop_ratio.0, 0.2..=1.0, "aspect ratio min");
        slider(ui, &mut c.crop_ratio.1, 1.0..=5.0, "aspect ratio max");
        ui.strong("Flip, colour, blur");
        slider(ui, &mut c.flip_p, 0.0..=1.0, "flip p");
        slider(ui, &mut c.jitter_strength, 0.0..=2.5, "jitter strength");
        slider(ui, &mut c.jitter_p, 0.0..=1.0, "jitter p");
        slider(ui, &mut c.gray_p, 0.0..=1.0, "grayscale p");
        slider(ui, &mut c.blur_p, 0.0..=1.0, "blur p");
        slider(ui, &mut c.blur_sigma.0, 0.01..=5.0, "blur sigma min");
        slider(ui, &mut c.blur_sigma.1, 0.01..=5.0, "blur sigma max");
        // Keep the ranges ordered, as `validate` requires.
        c.crop_scale.1 = c.crop_scale.1.max(c.crop_scale.0);
        c.blur_sigma.1 = c.blur_sigma.1.max(c.blur_sigma.0);
        changed |= ui
            .add(egui::Slider::new(&mut c.out_size, 8..=224).text("view size (px)"))
            .changed();
        ui.weak("Training takes crop scale min, flip, jitter, grayscale and blur p from here.");
        ui.separator();
        changed |= ui
            .add(egui::Slider::new(&mut self.count, 1..=12).text("images"))
            .changed();
        ui.horizontal(|ui| {
            if ui.button("Re-sample").clicked() {
                self.seed = self.seed.wrapping_add(1);
                changed = true;
            }
            ui.label(format!("seed {}", self.seed));
            if self.busy {
                ui.spinner();
            }
        });
        changed
    }

    fn views(&mut self, ui: &mut egui::Ui, shared: &mut Shared) {
        let Some(p) = &self.preview else {
            ui.label("rendering…");
            return;
        };
        let n = p.indices.len();
        ui.label("original (crop boxes: view 1 blue, view 2 orange) | view 1 | view 2, from the training kernel");
        for r in 0..n.min(self.textures.len()) {
            let i = p.indices[r] as usize;
            if let Some(t) = shared.thumb(ui.ctx(), i) {
                self.textures[r][0] = t;
            }
            ui.horizontal(|ui| {
                let orig = ui.add(egui::Image::from_texture(&self.textures[r][0]).fit_to_exact_size(Vec2::splat(SIDE)));
                if let Some(ds) = &shared.dataset {
                    for (k, v) in [&p.params[r], &p.params[n + r]].into_iter().enumerate() {
                        draw_crop(ui, orig.rect, v, ds.height, ds.width, VIEW_COLORS[k]);
                    }
                }
                for k in 1..3 {
                    ui.add(egui::Image::from_texture(&self.textures[r][k]).fit_to_exact_size(Vec2::splat(SIDE)));
                }
                ui.vertical(|ui| {
                    ui.label(shared.caption(i));
                    for (k, v) in [&p.params[r], &p.params[n + r]].into_iter().enumerate() {
                        ui.colored_label(VIEW_COLORS[k], describe(k + 1, v));
                    }
                });
            });
        }
    }
}

/// The crop box of `v` on the original drawn in `rect` (source `h`×`w`).
fn draw_crop(ui: &egui::Ui, rect: Rect, v: &ViewParams, h: usize, w: usize, color: Color32) {
    let (sx, sy) = (rect.width() / w as f32, rect.height() / h as f32);
    let c = &v.crop;
    let r = Rect::from_min_size(
        rect.min + Vec2::new(c.left as f32 * sx, c.top as f32 * sy),
        Vec2::new(c.width as f32 * sx, c.height as f32 * sy),
    );
    ui.painter()
        .rect_stroke(r, 0.0, Stroke::new(2.0, color), egui::StrokeKind::Inside);
}

/// One view's sampled parameters in a line a person can read.
pub fn describe(k: usize, v: &ViewParams) -> String {
    let c = &v.crop;
    let mut s = format!("view {k}: crop {}×{} at ({}, {})", c.width, c.height, c.left, c.top);
    if v.flip {
        s += ", flipped";
    }
    let j = &v.jitter;
    if j.applied {
        let names = ["B", "C", "S", "H"];
        let order: Vec<&str> = j.order.iter().map(|&o| names[o as usize]).collect();
        s += &format!(
            ", jitter {} (b {:.2}, c {:.2}, s {:.2}, h {:+.3})",
            order.join(""),
            j.brightness,
            j.contrast,
            j.saturation,
            j.hue
        );
    }
    if v.gray {
        s += ", grayscale";
    }
    if v.blur_sigma > 0.0 {
        s += &format!(", blur σ {:.2}", v.blur_sigma);
    }
    s
}
