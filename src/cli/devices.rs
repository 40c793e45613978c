use super::DeviceArgs;
use crate::gpu::adapter_report;

#[derive(clap::Args, Debug)]
pub struct DevicesArgs {
    /// Print JSON instead of a table.
    #[arg(long)]
    pub json: bool,
}

pub fn run(dev: &DeviceArgs, args: &DevicesArgs) -> anyhow::Result<()> {
    let reports = adapter_report(dev.backend);
    if args.json {
        println!("{}", serde_json::to_string_pretty(&reports)?);
    }
    if reports.is_empty() {
        // Same message as a failed open, so the user learns how to get a driver.
        dev.open()?;
    }
    if args.json {
        return Ok(());
    }
    let mib = |b: u64| format!("{} MiB", b >> 20);
    for r in &reports {
        println!("{} [{} / {}]", r.name, r.backend, r.device_type);
        println!("  driver:                 {}", r.driver);
        println!("  max storage binding:    {}", mib(r.max_storage_buffer_binding_size));
        println!("  max buffer:             {}", mib(r.max_buffer_size));
        println!(
            "  workgroup storage:      {} KiB",
            r.max_compute_workgroup_storage_size / 1024
        );
        println!("  invocations/workgroup:  {}", r.max_compute_invocations_per_workgroup);
        println!("  storage buffers/stage:  {}", r.max_storage_buffers_per_shader_stage);
        println!(
            "  features:               f16={} subgroups={} timestamp-queries={}",
            r.shader_f16, r.subgroups, r.timestamp_queries
        );
    }
    let gpu = dev.open()?;
    println!("\nselected: {} ({:?} kernels)", gpu.describe(), gpu.flavor);
    Ok(())
}
