//! Retrieval panel: click an image (or drop a file) to see its nearest neighbours under the
//! current encoder, and a PCA map of the embeddings coloured by label.

use super::state::Shared;
use super::view::{label_color, labelled, rgb_texture, thumb};
use super::worker::{Cmd, Embedding, Neighbours, Query, Worker};
use crate::nn::arch::ModelConfig;
use egui::{TextureHandle, Vec2};
use egui_plot::{Legend, Plot, PlotPoints, Points};

const PER_PAGE: usize = 20;

pub struct RetrievalPanel {
    pub k: usize,
    /// Neighbours are searched among the first `bank` images.
    pub bank: usize,
    pub result: Option<Neighbours>,
    pub embedding: Option<Embedding>,
    /// A request is in flight.
    pub busy: bool,
    page: usize,
    query_tex: Option<TextureHandle>,
}

impl Default for RetrievalPanel {
    fn default() -> Self {
        RetrievalPanel {
            k: 8,
            bank: 2000,
            result: None,
            embedding: None,
            busy: false,
            page: 0,
            query_tex: None,
        }
    }
}

impl RetrievalPanel {
    pub fn on_dataset(&mut self) {
        self.result = None;
        self.embedding = None;
        self.query_tex = None;
        self.page = 0;
        self.busy = false;
    }

    pub fn request(&mut self, worker: &Worker, query: Query, fallback: &ModelConfig) {
        self.busy = true;
        worker.send(Cmd::Retrieve {
            query,
            k: self.k,
            bank: self.bank,
            fallback: fallback.clone(),
        });
    }

    pub fn on_neighbours(&mut self, ctx: &egui::Context, n: Neighbours) {
        self.busy = false;
        let side = ((n.query_rgb.len() / 3) as f64).sqrt() as usize;
        self.query_tex = (side > 0).then(|| rgb_texture(ctx, "query", &n.query_rgb, side, side));
        self.result = Some(n);
    }

    pub fn show(&mut self, ui: &mut egui::Ui, shared: &mut Shared, worker: &Worker, fallback: &ModelConfig) {
        let Some(ds) = shared.dataset.clone() else {
            ui.label("Load a dataset (Data panel) to search it.");
            return;
        };
        ui.horizontal(|ui| {
            ui.add(egui::Slider::new(&mut self.k, 1..=32).text("neighbours k"));
            labelled(ui, "among the first", |ui| {
                ui.add(egui::DragValue::new(&mut self.bank).range(1..=ds.len()))
            });
            ui.label("images");
            if ui.button("Refresh embeddings").clicked() {
                self.busy = true;
                worker.send(Cmd::Embed {
                    bank: self.bank,
                    fallback: fallback.clone(),
                });
            }
            if self.busy {
                ui.spinner();
            }
        });
        ui.label("Click an image, or drop an image file on the window.");
        let pages = ds.len().min(self.bank).div_ceil(PER_PAGE).max(1);
        self.page = self.page.min(pages - 1);
        ui.horizontal(|ui| {
            if ui.button("< prev").clicked() && self.page > 0 {
                self.page -= 1;
            }
            let start = self.page * PER_PAGE;
            for i in start..(start + PER_PAGE).min(ds.len()) {
                if let Some(t) = shared.thumb(ui.ctx(), i) {
                    let chosen = matches!(&self.result, Some(r) if r.query == Query::Index(i));
                    if thumb(ui, &t, 40.0, chosen).on_hover_text(shared.caption(i)).clicked() {
                        self.request(worker, Query::Index(i), fallback);
                    }
                }
            }
            if ui.button("next >").clicked() && self.page + 1 < pages {
                self.page += 1;
            }
        });
        ui.separator();
        self.results(ui, shared);
        ui.separator();
        self.map(ui, &ds.classes);
    }

    fn results(&self, ui: &mut egui::Ui, shared: &mut Shared) {
        let Some(r) = &self.result else {
            ui.weak("No query yet.");
            return;
        };
        let what = match &r.query {
            Query::Index(i) => shared.caption(*i),
            Query::File(p) => p.display().to_string(),
        };
        ui.label(format!("query {what}; encoder: {}", r.encoder));
        ui.horizontal_wrapped(|ui| {
            if let Some(t) = &self.query_tex {
                ui.vertical(|ui| {
                    ui.add(egui::Image::from_texture(t).fit_to_exact_size(Vec2::splat(80.0)));
                    ui.strong("query");
                });
                ui.separator();
            }
            for (rank, &(sim, i)) in r.hits.iter().enumerate() {
                if let Some(t) = shared.thumb(ui.ctx(), i) {
                    ui.vertical(|ui| {
                        ui.set_width(80.0);
                        ui.add(egui::Image::from_texture(&t).fit_to_exact_size(Vec2::splat(80.0)));
                        ui.small(format!("{}. {}", rank + 1, shared.caption(i)));
                        ui.small(format!("sim {sim:.3}"));
                    });
                }
            }
        });
    }

    fn map(&self, ui: &mut egui::Ui, classes: &[String]) {
        let Some(e) = &self.embedding else {
            ui.weak("The embedding map appears with the first query (or Refresh embeddings).");
            return;
        };
        ui.label(format!(
            "PCA of {} embeddings ({}), coloured by label",
            e.points.len(),
            e.encoder
        ));
        Plot::new("pca")
            .height(320.0)
            .data_aspect(1.0)
            .legend(Legend::default())
            .show(ui, |p| match &e.labels {
                Some(labels) => {
                    let top = labels.iter().copied().max().unwrap_or(0);
                    for l in 0..=top.min(19) {
                        let pts: Vec<[f64; 2]> = e
                            .points
                            .iter()
                            .zip(labels)
                            .filter(|(_, &x)| x == l)
                            .map(|(q, _)| [q[0] as f64, q[1] as f64])
                            .collect();
                        let name = classes.get(l as usize).cloned().unwrap_or(format!("class {l}"));
                        p.points(
                            Points::new(name, PlotPoints::from(pts))
                                .radius(2.0)
                                .color(label_color(l)),
                        );
                    }
                }
                None => {
                    let pts: Vec<[f64; 2]> = e.points.iter().map(|q| [q[0] as f64, q[1] as f64]).collect();
                    p.points(Points::new("images", PlotPoints::from(pts)).radius(2.0));
                }
            });
    }
}
