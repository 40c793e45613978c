use clap::Parser;

fn main() {
    let cli = simclr_wgpu::cli::Cli::parse();
    if let Err(e) = simclr_wgpu::cli::run(cli) {
        eprintln!("error: {e:#}");
        std::process::exit(1);
    }
}
