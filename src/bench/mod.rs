//! Benchmarks on the selected adapter: kernel throughput and dispatch overhead.
//! Timing is host-side (submit + wait), so it works on every backend; each submission holds
//! many copies of the measured program so that the per-submit overhead (~0.1 ms on lavapipe)
//! does not dominate.

pub mod augment;
pub mod conv;
pub mod kernels;
pub mod loss;
pub mod train;

use crate::gpu::{Gpu, Program};
use std::time::Instant;

/// One line of a benchmark table. `flops` is the work of one run (0 for pure latency rows).
#[derive(Clone, Debug, serde::Serialize)]
pub struct BenchRow {
    pub name: String,
    pub flops: f64,
    pub seconds: f64,
}

impl BenchRow {
    pub fn new(name: impl Into<String>, flops: f64, seconds: f64) -> Self {
        BenchRow {
            name: name.into(),
            flops,
            seconds,
        }
    }

    /// Throughput, or None for latency rows.
    pub fn gflops(&self) -> Option<f64> {
        (self.flops > 0.0).then(|| self.flops / self.seconds / 1e9)
    }
}

/// Timed submissions per measurement; the median is reported. Fewer when one submission
/// takes over a second (a slow kernel on a software adapter), to keep the bench short.
const SAMPLES: usize = 5;
const SAMPLES_SLOW: usize = 3;

/// Median seconds per run of `program`, measured over up to `SAMPLES` submissions that each
/// hold `reps` copies of it, after one warm-up submission. NaN if the device fails.
pub fn time_program(gpu: &Gpu, program: &Program, reps: usize) -> f64 {
    let reps = reps.max(1);
    let mut batch = Program::new();
    for _ in 0..reps {
        batch.extend(program);
    }
    if gpu.run(&batch).is_err() {
        return f64::NAN;
    }
    let mut times = Vec::with_capacity(SAMPLES);
    while times.len() < SAMPLES {
        let t0 = Instant::now();
        if gpu.run(&batch).is_err() {
            return f64::NAN;
        }
        let t = t0.elapsed().as_secs_f64();
        times.push(t / reps as f64);
        if t > 1.0 && times.len() >= SAMPLES_SLOW {
            break;
        }
    }
    median(&mut times)
}

/// How many copies of `program` fill about `target_seconds` per submission (at least 1),
/// from one timed run (pipelines are compiled when planned, so a first run is not much slower).
pub fn auto_reps(gpu: &Gpu, program: &Program, target_seconds: f64) -> usize {
    let t0 = Instant::now();
    if gpu.run(program).is_err() {
        return 1;
    }
    let t = t0.elapsed().as_secs_f64().max(1e-6);
    ((target_seconds / t).ceil() as usize).clamp(1, 10_000)
}

pub fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.total_cmp(b));
    v[v.len() / 2]
}

/// The table `simclr bench` prints.
pub fn format_table(rows: &[BenchRow]) -> String {
    let width = rows.iter().map(|r| r.name.chars().count()).max().unwrap_or(0).max(6);
    let mut s = format!("{:width$}  {:>9}  {:>10}\n", "kernel", "GFLOP/s", "ms/run");
    for r in rows {
        let g = r.gflops().map_or("-".to_string(), |g| format!("{g:.2}"));
        s += &format!("{:width$}  {:>9}  {:>10.3}\n", r.name, g, r.seconds * 1e3);
    }
    s
}
