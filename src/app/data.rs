//! Data panel: choose a dataset (or open a run), browse its images with their labels.

use super::state::Shared;
use super::view::{labelled, thumb};
use super::worker::{Cmd, DataSource, Query, Worker};
use crate::data::DatasetKind;
use std::path::{Path, PathBuf};

const PER_ROW: usize = 10;
const ROWS: usize = 5;
const SIDE: f32 = 64.0;

pub struct DataPanel {
    pub kind: DatasetKind,
    pub dir: String,
    /// Use the first N images (0 = all): a slow device trains a subset in reasonable time.
    pub limit: usize,
    pub run_dir: String,
    pub page: usize,
    pub selected: Option<usize>,
}

impl DataPanel {
    pub fn new(dir: &Path) -> DataPanel {
        DataPanel {
            kind: DatasetKind::Cifar10,
            dir: dir.display().to_string(),
            limit: 5000,
            run_dir: "runs/".into(),
            page: 0,
            selected: None,
        }
    }

    pub fn limit(&self) -> Option<usize> {
        (self.limit > 0).then_some(self.limit)
    }

    pub fn on_dataset(&mut self) {
        self.page = 0;
        self.selected = None;
    }

    pub fn show(&mut self, ui: &mut egui::Ui, shared: &mut Shared, worker: &Worker) {
        egui::Grid::new("data-source").num_columns(3).show(ui, |ui| {
            labelled(ui, "Dataset", |ui| {
                egui::ComboBox::from_id_salt("kind")
                    .selected_text(kind_label(self.kind))
                    .show_ui(ui, |ui| {
                        for k in [
                            DatasetKind::Cifar10,
                            DatasetKind::Cifar100,
                            DatasetKind::Stl10,
                            DatasetKind::Folder,
                        ] {
                            ui.selectable_value(&mut self.kind, k, kind_label(k));
                        }
                    })
                    .response
            });
            ui.end_row();
            labelled(ui, "Folder", |ui| {
                ui.add(egui::TextEdit::singleline(&mut self.dir).desired_width(360.0))
            });
            ui.end_row();
            labelled(ui, "Images", |ui| {
                ui.horizontal(|ui| {
                    let r = ui.add(egui::DragValue::new(&mut self.limit).range(0..=1_000_000));
                    ui.weak("first N of the training split (0 = all)");
                    r
                })
                .inner
            });
            ui.end_row();
        });
        ui.horizontal(|ui| {
            let load = ui.add_enabled(!shared.loading, egui::Button::new("Load dataset"));
            if load.clicked() {
                shared.loading = true;
                worker.send(Cmd::LoadData(DataSource {
                    kind: self.kind,
                    dir: PathBuf::from(self.dir.trim()),
                    limit: self.limit(),
                }));
            }
            ui.separator();
            labelled(ui, "Run", |ui| {
                ui.add(egui::TextEdit::singleline(&mut self.run_dir).desired_width(220.0))
            });
            if ui.add_enabled(!shared.loading, egui::Button::new("Open run")).clicked() {
                shared.loading = true;
                worker.send(Cmd::OpenRun(PathBuf::from(self.run_dir.trim())));
            }
        });
        ui.separator();
        let Some(ds) = shared.dataset.clone() else {
            ui.label("No dataset loaded yet: choose one above and press Load dataset.");
            return;
        };
        let classes = if ds.classes.is_empty() {
            "unlabeled".to_string()
        } else if ds.classes.len() <= 12 {
            ds.classes.join(", ")
        } else {
            format!("{} classes", ds.classes.len())
        };
        ui.label(format!(
            "{}: {} images of {}×{} px; {classes}",
            ds.name,
            ds.len(),
            ds.width,
            ds.height
        ));
        let per_page = PER_ROW * ROWS;
        let pages = ds.len().div_ceil(per_page).max(1);
        self.page = self.page.min(pages - 1);
        ui.horizontal(|ui| {
            if ui.button("< prev").clicked() && self.page > 0 {
                self.page -= 1;
            }
            ui.label(format!("page {} / {pages}", self.page + 1));
            if ui.button("next >").clicked() && self.page + 1 < pages {
                self.page += 1;
            }
        });
        let start = self.page * per_page;
        egui::Grid::new("data-grid").spacing([6.0, 6.0]).show(ui, |ui| {
            for i in start..(start + per_page).min(ds.len()) {
                if let Some(tex) = shared.thumb(ui.ctx(), i) {
                    ui.vertical(|ui| {
                        ui.set_width(SIDE);
                        let r = thumb(ui, &tex, SIDE, self.selected == Some(i));
                        if r.on_hover_text(shared.caption(i)).clicked() {
                            self.selected = Some(i);
                        }
                        let label = shared.caption(i);
                        ui.add(egui::Label::new(egui::RichText::new(label).small()).truncate());
                    });
                }
                if (i - start + 1).is_multiple_of(PER_ROW) {
                    ui.end_row();
                }
            }
        });
        if let Some(i) = self.selected {
            ui.horizontal(|ui| {
                ui.label(format!("selected {}", shared.caption(i)));
                if ui.button("Find its nearest neighbours").clicked() {
                    shared.retrieve = Some(Query::Index(i));
                }
            });
        }
    }
}

fn kind_label(k: DatasetKind) -> &'static str {
    match k {
        DatasetKind::Cifar10 => "CIFAR-10",
        DatasetKind::Cifar100 => "CIFAR-100",
        DatasetKind::Stl10 => "STL-10",
        DatasetKind::Folder => "image folder",
    }
}
