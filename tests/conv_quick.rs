mod common;
use simclr_wgpu::gpu::{KernelFlavor, Program, Tensor};
use simclr_wgpu::nn::conv2d::*;
use std::time::Instant;

fn cpu_ticks() -> f64 {
    let s = std::fs::read_to_string("/proc/self/stat").unwrap();
    let f: Vec<&str> = s.rsplit(')').next().unwrap().split_whitespace().collect();
    (f[11].parse::<f64>().unwrap() + f[12].parse::<f64>().unwrap()) / 100.0
}

#[test]
#[ignore]
fn quick() {
    let g = common::gpu();
    let b: usize = std::env::var("B").map(|s| s.parse().unwrap()).unwrap_or(16);
    let only = std::env::var("ONLY").unwrap_or_default();
    let flavor = if std::env::var("TILED").is_ok() {
        KernelFlavor::Tiled
    } else {
        KernelFlavor::Rows
    };
    let geo = ConvGeom { stride: 1, pad: 1 };
    for (ch, hw) in [(64usize, 32usize), (512, 4)] {
        let x = Tensor::from_f32(g, "x", &[b, ch, hw, hw], &vec![0.5; b * ch * hw * hw]).unwrap();
        let w = Tensor::from_f32(g, "w", &[ch, ch, 3, 3], &vec![0.01; ch * ch * 9]).unwrap();
        let y = Tensor::zeros(g, "y", &[b, ch, hw, hw]).unwrap();
        let dx = Tensor::zeros(g, "dx", &[b, ch, hw, hw]).unwrap();
        let dw = Tensor::zeros(g, "dw", &[ch, ch, 3, 3]).unwrap();
        let flops = 2.0 * (b * ch * hw * hw * ch * 9) as f64;
        let progs = [
            ("fwd", conv2d_forward_with(g, &x, &w, &y, geo, flavor).unwrap()),
            ("bin", conv2d_backward_input_with(g, &y, &w, &dx, geo, flavor).unwrap()),
            ("bw", conv2d_backward_weight_with(g, &x, &y, &dw, geo, flavor).unwrap()),
        ];
        for (name, p) in progs {
            if !only.is_empty() && !only.contains(name) {
                continue;
            }
            g.run(&p).unwrap();
            let mut n = 0;
            let (t0, c0) = (Instant::now(), cpu_ticks());
            while cpu_ticks() - c0 < 2.0 {
                let mut q = Program::new();
                q.extend(&p);
                g.run(&q).unwrap();
                n += 1;
            }
            let (wall, cpu) = (t0.elapsed().as_secs_f64(), cpu_ticks() - c0);
            println!(
                "{ch}x{hw} {name}: wall {:6.2} GFLOP/s, per cpu-second {:6.2} GFLOP/s (x2 cores = {:6.2})",
                flops * n as f64 / wall / 1e9,
                flops * n as f64 / cpu / 1e9,
                2.0 * flops * n as f64 / cpu / 1e9
            );
        }
    }
}

#[test]
#[ignore]
fn one_fwd() {
    let g = common::gpu();
    let x = Tensor::zeros(g, "x", &[1, 8, 8, 8]).unwrap();
    let w = Tensor::zeros(g, "w", &[64, 8, 3, 3]).unwrap();
    let y = Tensor::zeros(g, "y", &[1, 64, 8, 8]).unwrap();
    let p = conv2d_forward_with(g, &x, &w, &y, ConvGeom { stride: 1, pad: 1 }, KernelFlavor::Rows).unwrap();
    g.run(&p).unwrap();
}

/// One run of each pass at a small shape (for instruction counting under valgrind).
#[test]
#[ignore]
fn once() {
    let g = common::gpu();
    let flavor = if std::env::var("TILED").is_ok() {
        KernelFlavor::Tiled
    } else {
        KernelFlavor::Rows
    };
    let only = std::env::var("ONLY").unwrap_or_default();
    let geo = ConvGeom { stride: 1, pad: 1 };
    let (b, ch, hw) = (1usize, 64usize, 32usize);
    let x = Tensor::from_f32(g, "x", &[b, ch, hw, hw], &vec![0.5; b * ch * hw * hw]).unwrap();
    let w = Tensor::from_f32(g, "w", &[ch, ch, 3, 3], &vec![0.01; ch * ch * 9]).unwrap();
    let y = Tensor::zeros(g, "y", &[b, ch, hw, hw]).unwrap();
    let dx = Tensor::zeros(g, "dx", &[b, ch, hw, hw]).unwrap();
    let dw = Tensor::zeros(g, "dw", &[ch, ch, 3, 3]).unwrap();
    let progs = [
        ("fwd", conv2d_forward_with(g, &x, &w, &y, geo, flavor).unwrap()),
        ("bin", conv2d_backward_input_with(g, &y, &w, &dx, geo, flavor).unwrap()),
        ("bw", conv2d_backward_weight_with(g, &x, &y, &dw, geo, flavor).unwrap()),
    ];
    for (name, p) in progs {
        if !only.is_empty() && !only.contains(name) {
            continue;
        }
        let reps: usize = std::env::var("REPS").map(|s| s.parse().unwrap()).unwrap_or(1);
        for _ in 0..reps {
            g.run(&p).unwrap();
        }
    }
}
