//! What every panel shares: the loaded dataset, its thumbnails, the device line and the
//! message log, plus requests one panel makes of another.

use super::view::rgb_texture;
use super::worker::{DataSource, Level, Query};
use crate::data::Dataset;
use egui::TextureHandle;
use std::collections::HashMap;
use std::sync::Arc;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Panel {
    Data,
    Augment,
    Train,
    Retrieval,
}

impl Panel {
    pub const ALL: [Panel; 4] = [Panel::Data, Panel::Augment, Panel::Train, Panel::Retrieval];

    /// The tab's label.
    pub fn title(self) -> &'static str {
        match self {
            Panel::Data => "Data",
            Panel::Augment => "Augmentations",
            Panel::Train => "Training",
            Panel::Retrieval => "Retrieval",
        }
    }

    /// The panel's heading (different from the tab's label, so each names one widget).
    pub fn heading(self) -> &'static str {
        match self {
            Panel::Data => "Dataset browser",
            Panel::Augment => "Augmented views",
            Panel::Train => "Training run",
            Panel::Retrieval => "Nearest neighbours",
        }
    }
}

#[derive(Default)]
pub struct Shared {
    pub dataset: Option<Arc<Dataset>>,
    pub source: Option<DataSource>,
    /// The adapter the engine opened.
    pub device: Option<String>,
    pub messages: Vec<(Level, String)>,
    /// A panel asks to switch to another one.
    pub goto: Option<Panel>,
    /// A panel asks the Retrieval panel to look this up.
    pub retrieve: Option<Query>,
    /// The engine is loading a dataset or opening a run.
    pub loading: bool,
    thumbs: HashMap<usize, TextureHandle>,
}

impl Shared {
    pub fn set_dataset(&mut self, ds: Arc<Dataset>, src: DataSource) {
        self.dataset = Some(ds);
        self.source = Some(src);
        self.thumbs.clear();
    }

    pub fn message(&mut self, level: Level, text: String) {
        self.messages.push((level, text));
        // The log is for the latest news, not a history.
        if self.messages.len() > 20 {
            self.messages.remove(0);
        }
    }

    pub fn last_error(&self) -> Option<&str> {
        self.messages
            .iter()
            .rev()
            .find(|(l, _)| *l == Level::Error)
            .map(|(_, m)| m.as_str())
    }

    /// The texture of dataset image `i` (made once per dataset).
    pub fn thumb(&mut self, ctx: &egui::Context, i: usize) -> Option<TextureHandle> {
        let ds = self.dataset.as_ref()?;
        if i >= ds.len() {
            return None;
        }
        Some(
            self.thumbs
                .entry(i)
                .or_insert_with(|| rgb_texture(ctx, &format!("img{i}"), ds.image(i), ds.width, ds.height))
                .clone(),
        )
    }

    /// "#i cat" for image `i`.
    pub fn caption(&self, i: usize) -> String {
        let Some(ds) = &self.dataset else {
            return format!("#{i}");
        };
        match ds.label(i).and_then(|l| ds.classes.get(l as usize)) {
            Some(c) => format!("#{i} {c}"),
            None => match ds.label(i) {
                Some(l) => format!("#{i} class {l}"),
                None => format!("#{i}"),
            },
        }
    }
}
