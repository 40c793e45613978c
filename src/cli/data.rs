//! `simclr data ...`: fetch and inspect datasets.

use crate::data::{self, DatasetKind, LoadOptions, Split};
use clap::{Args, Subcommand};
use std::path::PathBuf;

#[derive(Args, Debug)]
pub struct DataArgs {
    #[command(subcommand)]
    pub command: DataCommand,
}

#[derive(Subcommand, Debug)]
pub enum DataCommand {
    /// Download an official dataset archive over HTTPS, check its MD5 and unpack it.
    Download {
        #[arg(value_enum)]
        dataset: DatasetKind,
        /// Folder to unpack into (default: --data, $SIMCLR_DATA or ./data).
        #[arg(long)]
        to: Option<PathBuf>,
        /// Fetch `<URL>/<archive name>` from a mirror instead of the publisher's site.
        #[arg(long, value_name = "URL")]
        mirror: Option<String>,
    },
    /// Load a dataset and print its size, classes and channel statistics.
    Info(SourceArgs),
}

/// Which dataset to read: shared by the commands that load one.
#[derive(Args, Debug, Clone)]
pub struct SourceArgs {
    /// Data folder (default: $SIMCLR_DATA, else ./data). CIFAR-10 is found whether this is the
    /// cifar-10-batches-bin folder itself or its parent.
    #[arg(long)]
    pub data: Option<PathBuf>,
    #[arg(long, value_enum, default_value = "cifar10")]
    pub dataset: DatasetKind,
    #[arg(long, value_enum, default_value = "train")]
    pub split: Split,
    /// Image folders: working size (square side) every image is resized to.
    #[arg(long)]
    pub image_size: Option<usize>,
    /// Image folders: stop on the first file that does not decode instead of skipping it.
    #[arg(long)]
    pub strict: bool,
}

impl SourceArgs {
    pub fn load(&self) -> anyhow::Result<data::Dataset> {
        let dir = data::resolve_data_dir(self.data.as_deref());
        let opts = LoadOptions {
            image_size: self.image_size,
            strict: self.strict,
            ..Default::default()
        };
        data::load_with(self.dataset, &dir, self.split, &opts)
    }
}

pub fn run(args: &DataArgs) -> anyhow::Result<()> {
    match &args.command {
        DataCommand::Download { dataset, to, mirror } => {
            let to = data::resolve_data_dir(to.as_deref());
            let path = data::download(*dataset, &to, mirror.as_deref())?;
            println!("{}", path.display());
            Ok(())
        }
        DataCommand::Info(src) => {
            let ds = src.load()?;
            println!("{}: {} images of {}×{}", ds.name, ds.len(), ds.height, ds.width);
            if let Some(labels) = &ds.labels {
                let mut counts = vec![0usize; ds.classes.len()];
                for &l in labels {
                    counts[l as usize] += 1;
                }
                for (c, n) in ds.classes.iter().zip(counts) {
                    println!("  {c:<16} {n}");
                }
            } else {
                println!("  unlabeled");
            }
            // CIFAR and STL-10 carry their training split's published statistics for every
            // split (test images are normalised like training images), so say whose they are.
            println!(
                "  normalisation mean {:?} std {:?} (training-split statistics, used for every split)",
                ds.mean, ds.std
            );
            Ok(())
        }
    }
}
