//! `simclr bench loss`: NT-Xent forward + backward time for N = 256, 1024, 4096 images
//! (2N rows) of d = 128.

use crate::gpu::{Gpu, Tensor};
use crate::loss::NtXent;
use std::time::Instant;

/// (label, median seconds) of one NT-Xent forward + backward per batch size, after a warm-up.
pub fn bench_loss(gpu: &Gpu) -> anyhow::Result<Vec<(String, f64)>> {
    let d = 128;
    let mut out = Vec::new();
    for n in [256usize, 1024, 4096] {
        let rows = 2 * n;
        // Deterministic pseudo-random embeddings; the kernel's cost does not depend on values.
        let z: Vec<f32> = (0..rows * d)
            .map(|k| ((k as u64).wrapping_mul(2654435761) % 2001) as f32 / 1000.0 - 1.0)
            .collect();
        let zt = Tensor::from_f32(gpu, "bench.z", &[rows, d], &z)?;
        let dz = Tensor::zeros(gpu, "bench.dz", &[rows, d])?;
        let loss = NtXent::new(gpu, &zt, &dz, 2, 0.1)?;
        gpu.run(loss.program())?;
        let reps = if n >= 4096 { 3 } else { 7 };
        let mut times = Vec::with_capacity(reps);
        for _ in 0..reps {
            let t = Instant::now();
            gpu.run(loss.program())?;
            times.push(t.elapsed().as_secs_f64());
        }
        times.sort_by(f64::total_cmp);
        let l = loss.loss.read_f32(gpu)?[0];
        anyhow::ensure!(l.is_finite(), "NT-Xent loss is {l} at N = {n}");
        out.push((format!("ntxent fwd+bwd N={n} d={d}"), times[reps / 2]));
    }
    Ok(out)
}
