//! `simclr bench kernels`: matmul throughput for both kernel flavours and dispatch overhead.
//! Other kernel families (conv, ...) add their rows from sibling modules.

use super::{auto_reps, median, time_program, BenchRow};
use crate::gpu::{Gpu, GpuError, KernelFlavor, Program, Tensor};
use crate::nn::{elementwise, matmul};
use std::time::Instant;

/// Seconds of work per timed submission: long enough to hide submit overhead and timer noise.
const TARGET_SECONDS: f64 = 0.3;

/// Pseudo-random values in [-1, 1) (benchmarks need no statistical quality).
pub fn bench_data(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
    (0..n)
        .map(|_| {
            s = s.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect()
}

fn flavor_name(gpu: &Gpu, f: KernelFlavor) -> String {
    let chosen = if f == gpu.flavor { ", selected" } else { "" };
    format!("{}{chosen}", format!("{f:?}").to_lowercase())
}

/// Matmul rows: size³ for both flavours, and x·Wᵀ (the linear forward) for the selected one.
pub fn matmul_rows(gpu: &Gpu, size: usize) -> Result<Vec<BenchRow>, GpuError> {
    let a = Tensor::from_f32(gpu, "bench.a", &[size, size], &bench_data(size * size, 1))?;
    let b = Tensor::from_f32(gpu, "bench.b", &[size, size], &bench_data(size * size, 2))?;
    let c = Tensor::zeros(gpu, "bench.c", &[size, size])?;
    let flops = 2.0 * (size as f64).powi(3);
    let mut rows = Vec::new();
    for flavor in [KernelFlavor::Rows, KernelFlavor::Tiled] {
        let p = matmul::gemm(gpu, flavor, &matmul::Gemm::new(&a, &b, &c))?;
        let s = time_program(gpu, &p, auto_reps(gpu, &p, TARGET_SECONDS));
        rows.push(BenchRow::new(
            format!("matmul {size}³ ({})", flavor_name(gpu, flavor)),
            flops,
            s,
        ));
    }
    let g = matmul::Gemm {
        trans_b: true,
        ..matmul::Gemm::new(&a, &b, &c)
    };
    let p = matmul::gemm(gpu, gpu.flavor, &g)?;
    let s = time_program(gpu, &p, auto_reps(gpu, &p, TARGET_SECONDS));
    rows.push(BenchRow::new(
        format!("matmul {size}³ A·Bᵀ ({})", flavor_name(gpu, gpu.flavor)),
        flops,
        s,
    ));
    Ok(rows)
}

/// Dispatch overhead: a one-element kernel submitted and waited for alone (the round trip a
/// host read-back pays), and the same kernel 200 times within one submission.
pub fn dispatch_rows(gpu: &Gpu) -> Result<Vec<BenchRow>, GpuError> {
    let x = Tensor::zeros(gpu, "bench.tiny.x", &[1])?;
    let y = Tensor::zeros(gpu, "bench.tiny.y", &[1])?;
    let mut p = Program::new();
    p.push(elementwise::relu_forward(gpu, &x, &y)?);
    gpu.run(&p)?;
    let mut times = Vec::new();
    for _ in 0..50 {
        let t0 = Instant::now();
        gpu.run(&p)?;
        times.push(t0.elapsed().as_secs_f64());
    }
    Ok(vec![
        BenchRow::new("empty dispatch round trip (submit + wait)", 0.0, median(&mut times)),
        BenchRow::new("empty dispatch within a submission", 0.0, time_program(gpu, &p, 200)),
    ])
}

/// Every kernel row of `simclr bench kernels`.
pub fn run(gpu: &Gpu, size: usize) -> Result<Vec<BenchRow>, GpuError> {
    let mut rows = matmul_rows(gpu, size)?;
    rows.extend(dispatch_rows(gpu)?);
    Ok(rows)
}
