//! Conv2d kernel timings at the ResNet-18 CIFAR layer shapes (batch 256, 3×3, stride 1, padding 1).

use crate::gpu::{Gpu, Program, Tensor};
use crate::nn::conv2d::{conv2d_backward_input, conv2d_backward_weight, conv2d_forward, ConvGeom};
use std::time::Instant;

const BATCH: usize = 256;
/// (channels, spatial size) of the four ResNet-18 stages on 32×32 inputs.
const LAYERS: [(usize, usize); 4] = [(64, 32), (128, 16), (256, 8), (512, 4)];
/// Timed submits per kernel (the median is reported), after one warm-up.
const REPS: usize = 3;
/// Each submit repeats the kernel until it takes about this long, so submit overhead stays invisible.
const SUBMIT_SECONDS: f64 = 0.2;

/// (name, FLOPs, median seconds per call) for forward, backward-input and backward-weight of each layer,
/// with the kernel flavour the device chose (`SIMCLR_KERNELS=tiled|rows` forces one).
pub fn conv_rows(gpu: &Gpu) -> anyhow::Result<Vec<(String, f64, f64)>> {
    conv_rows_at(gpu, BATCH)
}

/// `conv_rows` at another batch size (a quick look on slow devices).
pub fn conv_rows_at(gpu: &Gpu, batch: usize) -> anyhow::Result<Vec<(String, f64, f64)>> {
    let mut out = Vec::new();
    let g = ConvGeom { stride: 1, pad: 1 };
    for (ch, hw) in LAYERS {
        let shape = [batch, ch, hw, hw];
        let x = Tensor::from_f32(gpu, "bench.x", &shape, &pattern(batch * ch * hw * hw, 1.0))?;
        let w_scale = 1.0 / ((ch * 9) as f32).sqrt();
        let w = Tensor::from_f32(gpu, "bench.w", &[ch, ch, 3, 3], &pattern(ch * ch * 9, w_scale))?;
        let y = Tensor::zeros(gpu, "bench.y", &shape)?;
        let dx = Tensor::zeros(gpu, "bench.dx", &shape)?;
        let dw = Tensor::zeros(gpu, "bench.dw", &[ch, ch, 3, 3])?;
        let flops = 2.0 * (batch * ch * hw * hw * ch * 9) as f64;
        let passes = [
            ("forward", conv2d_forward(gpu, &x, &w, &y, g)?),
            // y doubles as dy: the timing does not depend on the values.
            ("backward-input", conv2d_backward_input(gpu, &y, &w, &dx, g)?),
            ("backward-weight", conv2d_backward_weight(gpu, &x, &y, &dw, g)?),
        ];
        for (pass, prog) in passes {
            let secs = time_program(gpu, &prog)?;
            out.push((format!("conv3x3 b{batch} {ch}x{hw}x{hw}->{ch} {pass}"), flops, secs));
        }
    }
    Ok(out)
}

/// Median seconds per run of `prog`: one warm-up (pipelines, first touch of memory), then REPS submits.
fn time_program(gpu: &Gpu, prog: &Program) -> anyhow::Result<f64> {
    let t = Instant::now();
    gpu.run(prog)?;
    let warm = t.elapsed().as_secs_f64();
    let per_submit = ((SUBMIT_SECONDS / warm.max(1e-6)).ceil() as usize).clamp(1, 200);
    let mut batch = Program::new();
    for _ in 0..per_submit {
        batch.extend(prog);
    }
    let mut times: Vec<f64> = (0..REPS)
        .map(|_| {
            let t = Instant::now();
            gpu.run(&batch).map(|_| t.elapsed().as_secs_f64() / per_submit as f64)
        })
        .collect::<Result<_, _>>()?;
    times.sort_by(f64::total_cmp);
    Ok(times[REPS / 2])
}

/// Deterministic values in [-scale, scale) (no RNG needed for timing).
fn pattern(n: usize, scale: f32) -> Vec<f32> {
    (0..n)
        .map(|i| ((i.wrapping_mul(2654435761) % 2000) as f32 / 1000.0 - 1.0) * scale)
        .collect()
}
