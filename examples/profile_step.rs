//! Rough per-phase timing of one tiny training step (development aid, not a test).
use simclr_wgpu::gpu::{Gpu, Program};
use simclr_wgpu::nn::arch::{Arch, ModelConfig};
use simclr_wgpu::nn::model::Model;
use std::time::Instant;

fn time(gpu: &Gpu, p: &Program, reps: usize) -> f64 {
    gpu.run(p).unwrap();
    let t = Instant::now();
    for _ in 0..reps {
        gpu.run(p).unwrap();
    }
    t.elapsed().as_secs_f64() / reps as f64 * 1e3
}

fn main() {
    let gpu = Gpu::open_default().unwrap();
    let cfg = ModelConfig {
        arch: Arch::Tiny,
        head_hidden: Some(512),
        ..Default::default()
    };
    let m = Model::new(&gpu, &cfg, 512, 0).unwrap();
    println!("forward_train {:.0} ms", time(&gpu, m.forward_train(), 2));
    println!("backward      {:.0} ms", time(&gpu, m.backward(), 2));
    for (i, c) in m.backward().cmds.iter().enumerate() {
        if let simclr_wgpu::gpu::Cmd::Dispatch(d) = c {
            let mut p = Program::new();
            p.push(d.clone());
            println!("  bwd {i:2} {:<40} {:.1} ms", d.label, time(&gpu, &p, 1));
        }
    }
    for (i, c) in m.forward_train().cmds.iter().enumerate() {
        if let simclr_wgpu::gpu::Cmd::Dispatch(d) = c {
            let mut p = Program::new();
            p.push(d.clone());
            println!("  fwd {i:2} {:<40} {:.1} ms", d.label, time(&gpu, &p, 1));
        }
    }
}
