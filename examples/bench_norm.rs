//! Rough timings of the batch-norm, pooling and L2-normalisation kernels (not a test; speed
//! depends on the machine and its load). Prints wall time and, on Linux, process CPU time (which
//! includes lavapipe's worker threads and is steadier on a busy machine).
//!
//!     cargo run --example bench_norm              # batch norm on [256, 64, 32, 32], pools, L2
//!     cargo run --example bench_norm -- 512 2048  # batch norm on another shape only

use anyhow::Result;
use simclr_wgpu::gpu::{Gpu, KernelFlavor, Program, Tensor};
use simclr_wgpu::nn::{batchnorm as bn, l2norm, pool};
use std::time::Instant;

/// User + system CPU time of this process in ms (Linux), for comparison with wall time.
fn cpu_ms() -> Option<f64> {
    let s = std::fs::read_to_string("/proc/self/stat").ok()?;
    let f: Vec<&str> = s.rsplit(')').next()?.split_whitespace().collect();
    Some((f.get(11)?.parse::<f64>().ok()? + f.get(12)?.parse::<f64>().ok()?) * 10.0)
}

fn time(g: &Gpu, what: &str, p: &Program) -> Result<()> {
    const REPS: usize = 5;
    g.run(p)?;
    let (t, c0) = (Instant::now(), cpu_ms());
    for _ in 0..REPS {
        g.run(p)?;
    }
    let wall = t.elapsed().as_secs_f64() * 1e3 / REPS as f64;
    let cpu = match (c0, cpu_ms()) {
        (Some(a), Some(b)) => format!(", {:.1} ms cpu", (b - a) / REPS as f64),
        _ => String::new(),
    };
    println!("{what}: {wall:.2} ms wall{cpu} ({} dispatches)", p.dispatch_count());
    Ok(())
}

fn ramp(g: &Gpu, shape: &[usize]) -> Result<Tensor> {
    let n: usize = shape.iter().product();
    let v: Vec<f32> = (0..n).map(|i| ((i * 7919) % 101) as f32 * 0.01).collect();
    Ok(Tensor::from_f32(g, "x", shape, &v)?)
}

fn batchnorm(g: &Gpu, shape: &[usize]) -> Result<()> {
    let z = |s: &[usize]| Tensor::zeros(g, "t", s);
    let c = [shape[1]];
    let (x, dy) = (ramp(g, shape)?, ramp(g, shape)?);
    let (y, dx) = (z(shape)?, z(shape)?);
    let (gamma, beta, rm, rv) = (ramp(g, &c)?, z(&c)?, z(&c)?, ramp(g, &c)?);
    let (sm, si, dg, db) = (z(&c)?, z(&c)?, z(&c)?, z(&c)?);
    let f = bn::batchnorm_forward_train(g, &x, &gamma, &beta, &rm, &rv, &sm, &si, &y, true, 0.1, 1e-5)?;
    time(g, &format!("batchnorm forward (train, ReLU) {shape:?}"), &f)?;
    let b = bn::batchnorm_backward(g, &x, &y, &dy, &gamma, &sm, &si, &dx, &dg, &db, true)?;
    time(g, "batchnorm backward", &b)?;
    let mut copy = Program::new();
    copy.copy(&x.buffer, &y.buffer, x.bytes());
    time(g, "  (buffer copy of x, for scale)", &copy)
}

fn pools(g: &Gpu) -> Result<()> {
    let z = |s: &[usize]| Tensor::zeros(g, "t", s);
    let (x, y, a, dx) = (
        ramp(g, &[128, 64, 48, 48])?,
        z(&[128, 64, 24, 24])?,
        z(&[128, 64, 24, 24])?,
        z(&[128, 64, 48, 48])?,
    );
    time(
        g,
        "max-pool forward [128, 64, 48, 48]",
        &pool::maxpool_forward(g, &x, &y, &a)?,
    )?;
    time(g, "max-pool backward", &pool::maxpool_backward(g, &y, &a, &dx)?)?;
    let (x, y) = (ramp(g, &[512, 512, 4, 4])?, z(&[512, 512])?);
    time(
        g,
        "global avg-pool forward [512, 512, 4, 4]",
        &pool::global_avgpool_forward(g, &x, &y)?,
    )?;
    time(
        g,
        "global avg-pool backward",
        &pool::global_avgpool_backward(g, &y, &x)?,
    )
}

fn l2(g: &Gpu) -> Result<()> {
    for shape in [[1024, 128], [20000, 512]] {
        let (x, dy, y, dx) = (
            ramp(g, &shape)?,
            ramp(g, &shape)?,
            Tensor::zeros(g, "y", &shape)?,
            Tensor::zeros(g, "dx", &shape)?,
        );
        for f in [KernelFlavor::Tiled, KernelFlavor::Rows] {
            time(
                g,
                &format!("L2 normalize forward {shape:?} {f:?}"),
                &l2norm::l2_normalize_forward_with(g, f, &x, &y)?,
            )?;
            let p = l2norm::l2_normalize_backward_with(g, f, &x, &y, &dy, &dx)?;
            time(g, &format!("L2 normalize backward {shape:?} {f:?}"), &p)?;
        }
    }
    Ok(())
}

fn main() -> Result<()> {
    let g = Gpu::open_default()?;
    println!("{}", g.describe());
    let shape: Vec<usize> = std::env::args().skip(1).map(|a| a.parse()).collect::<Result<_, _>>()?;
    if !shape.is_empty() {
        return batchnorm(&g, &shape);
    }
    batchnorm(&g, &[256, 64, 32, 32])?;
    pools(&g)?;
    l2(&g)
}
