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
    let shapes: Vec<(usize, usize, usize)> = match std::env::var("SHAPES") {
        Ok(s) => s
            .split(',')
            .map(|t| {
                let v: Vec<usize> = t.split('x').map(|a| a.parse().unwrap()).collect();
                (v[0], v[1], v[2])
            })
            .collect(),
        Err(_) => vec![(64, 64, 32), (512, 512, 4)],
    };
    for (ci, ch, hw) in shapes {
        let x = Tensor::from_f32(g, "x", &[b, ci, hw, hw], &vec![0.5; b * ci * hw * hw]).unwrap();
        let w = Tensor::from_f32(g, "w", &[ch, ci, 3, 3], &vec![0.01; ch * ci * 9]).unwrap();
        let y = Tensor::zeros(g, "y", &[b, ch, hw, hw]).unwrap();
        let dx = Tensor::zeros(g, "dx", &[b, ci, hw, hw]).unwrap();
        let dw = Tensor::zeros(g, "dw", &[ch, ci, 3, 3]).unwrap();
        let flops = 2.0 * (b * ci * hw * hw * ch * 9) as f64;
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
    let ch: usize = std::env::var("CH").map(|s| s.parse().unwrap()).unwrap_or(64);
    let hw: usize = std::env::var("HW").map(|s| s.parse().unwrap()).unwrap_or(32);
    let b: usize = std::env::var("B").map(|s| s.parse().unwrap()).unwrap_or(1);
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

#[test]
#[ignore]
fn one_bw() {
    let g = common::gpu();
    let x = Tensor::zeros(g, "x", &[1, 8, 8, 8]).unwrap();
    let dy = Tensor::zeros(g, "dy", &[1, 64, 8, 8]).unwrap();
    let dw = Tensor::zeros(g, "dw", &[64, 8, 3, 3]).unwrap();
    let p = conv2d_backward_weight_with(g, &x, &dy, &dw, ConvGeom { stride: 1, pad: 1 }, KernelFlavor::Rows).unwrap();
    g.run(&p).unwrap();
}
