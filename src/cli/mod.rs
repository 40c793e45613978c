//! The `simclr` command line: parses arguments and calls the layers below.

pub mod augment;
mod bench;
mod bench_train;
pub mod data;
mod devices;
mod embed;
mod eval;
mod train;

use crate::gpu::{BackendChoice, DeviceOptions, Gpu};
use clap::{Args, Parser, Subcommand};

#[derive(Parser, Debug)]
#[command(
    name = "simclr",
    version,
    about = "SimCLR self-supervised training on any GPU through wgpu"
)]
pub struct Cli {
    #[command(flatten)]
    pub device: DeviceArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Device selection shared by every command.
#[derive(Args, Debug, Clone)]
pub struct DeviceArgs {
    /// Graphics API: auto prefers a discrete GPU, then integrated, then a software adapter.
    #[arg(long, global = true, env = "SIMCLR_BACKEND", value_enum, default_value = "auto")]
    pub backend: BackendChoice,
    /// Use the adapter whose name contains this text (case-insensitive).
    #[arg(long, global = true, env = "SIMCLR_ADAPTER")]
    pub adapter: Option<String>,
}

impl DeviceArgs {
    pub fn options(&self) -> DeviceOptions {
        DeviceOptions {
            backend: self.backend,
            adapter: self.adapter.clone(),
        }
    }
    pub fn open(&self) -> anyhow::Result<Gpu> {
        Ok(Gpu::open(&self.options())?)
    }
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// List every GPU adapter wgpu can see, with its limits and optional features.
    Devices(devices::DevicesArgs),
    /// Train a SimCLR encoder (defaults: the SimCLR CIFAR-10 recipe).
    #[command(allow_negative_numbers = true)]
    Train(Box<train::TrainArgs>),
    /// Evaluate a trained encoder.
    #[command(subcommand)]
    Eval(eval::EvalCommand),
    /// Features of every image of a dataset to a safetensors file (numpy/PyTorch readable).
    Embed(embed::EmbedArgs),
    /// A query image's nearest neighbours under the encoder, as a PNG with similarities.
    Neighbors(embed::NeighborsArgs),
    /// Download or inspect datasets.
    Data(data::DataArgs),
    /// Write a preview grid of augmented pairs (original | view 1 | view 2) and their parameters.
    Augment(augment::AugmentArgs),
    /// Benchmarks on the selected adapter (`simclr bench kernels`).
    Bench(bench::BenchArgs),
    /// The desktop app: data, augmented views, live training, retrieval (optionally a run).
    Gui(GuiArgs),
}

#[derive(Args, Debug)]
pub struct GuiArgs {
    /// A run directory (runs/NAME) to open: its curves, its encoder for retrieval, its data.
    pub run_dir: Option<std::path::PathBuf>,
    /// Dataset folder (default: $SIMCLR_DATA, else ./data).
    #[arg(long)]
    pub data: Option<std::path::PathBuf>,
}

pub fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Devices(a) => devices::run(&cli.device, &a),
        Command::Train(a) => train::run(&cli.device, &a),
        Command::Eval(c) => eval::run(&cli.device, &c),
        Command::Embed(a) => embed::run_embed(&cli.device, &a),
        Command::Neighbors(a) => embed::run_neighbors(&cli.device, &a),
        Command::Data(a) => data::run(&a),
        Command::Augment(a) => augment::run(&cli.device, &a),
        Command::Bench(a) => bench::run(&cli.device, &a),
        Command::Gui(a) => crate::app::run(crate::app::AppOptions {
            device: cli.device.options(),
            run_dir: a.run_dir,
            data_dir: a.data,
            load_data: true,
        }),
    }
}
