use super::DeviceArgs;
use crate::bench;

#[derive(clap::Args, Debug)]
pub struct BenchArgs {
    #[command(subcommand)]
    pub which: BenchCommand,
}

#[derive(clap::Subcommand, Debug)]
pub enum BenchCommand {
    /// GFLOP/s of the matmul kernels (both flavours) and the dispatch round-trip time.
    Kernels(KernelsArgs),
    /// NT-Xent forward+backward time at N = 256, 1024, 4096 (d = 128).
    Loss,
    /// Augmented images/s at batch 512 for 32 px and 96 px outputs.
    Augment,
    /// Images/s of the full training step, with and without augmentation.
    Train(super::bench_train::BenchTrainArgs),
}

#[derive(clap::Args, Debug)]
pub struct KernelsArgs {
    /// Matrix size n of the n×n×n products.
    #[arg(long, default_value_t = 1024)]
    pub size: usize,
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
    /// Batch of the conv2d rows (ResNet-18 CIFAR layer shapes); 0 skips them.
    #[arg(long, default_value_t = 256)]
    pub conv_batch: usize,
}

pub fn run(dev: &DeviceArgs, args: &BenchArgs) -> anyhow::Result<()> {
    let gpu = dev.open()?;
    let (rows, json) = match &args.which {
        BenchCommand::Loss => {
            println!("{}\nNT-Xent forward+backward, d = 128 (median):", gpu.describe());
            for (name, secs) in bench::loss::bench_loss(&gpu)? {
                println!("  {name:<24} {:>10.2} ms", secs * 1e3);
            }
            return Ok(());
        }
        BenchCommand::Augment => {
            println!("{}", gpu.describe());
            println!("{}", bench::augment::bench_augment(&gpu)?);
            return Ok(());
        }
        BenchCommand::Train(a) => return super::bench_train::run(gpu, a),
        BenchCommand::Kernels(k) => {
            anyhow::ensure!(k.size > 0, "--size must be at least 1");
            let mut rows = bench::kernels::run(&gpu, k.size)?;
            if k.conv_batch > 0 {
                for (name, flops, secs) in bench::conv::conv_rows_at(&gpu, k.conv_batch)? {
                    rows.push(bench::BenchRow::new(name, flops, secs));
                }
            }
            (rows, k.json)
        }
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&rows)?);
    } else {
        println!("{} ({:?} kernels selected)\n", gpu.describe(), gpu.flavor);
        print!("{}", bench::format_table(&rows));
    }
    Ok(())
}
