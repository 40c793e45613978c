//! The desktop app (`simclr gui [RUN_DIR]`): see the data, the augmented pairs as the training
//! kernel renders them, live training curves and a similarity heat map, and nearest-neighbour
//! retrieval. The UI thread only draws; the GPU, the trainer and every computation live on the
//! engine thread (`worker`, `engine`), reached through channels.

#[allow(clippy::module_inception)]
mod app;
mod augment;
mod data;
mod embed;
mod engine;
mod retrieval;
mod state;
mod train;
mod view;
pub mod worker;

pub use app::{AppOptions, SimclrApp};
pub use augment::{describe, AugmentPanel};
pub use data::DataPanel;
pub use retrieval::RetrievalPanel;
pub use state::{Panel, Shared};
pub use train::TrainPanel;

/// Open the window and run until it is closed (training is stopped with a checkpoint first).
pub fn run(opts: AppOptions) -> anyhow::Result<()> {
    let native = eframe::NativeOptions {
        viewport: egui::ViewportBuilder::default()
            .with_title("SimCLR")
            .with_inner_size([1280.0, 900.0]),
        ..Default::default()
    };
    eframe::run_native(
        "simclr",
        native,
        Box::new(move |_cc| Ok(Box::new(SimclrApp::new(opts)))),
    )
    .map_err(|e| anyhow::anyhow!("the window could not be opened: {e}"))
}
