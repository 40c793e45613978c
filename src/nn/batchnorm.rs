//! Host side of `shaders/batchnorm.wgsl`: BatchNorm2d ([N,C,H,W]) and BatchNorm1d ([N,C]) with an
//! optional fused ReLU, training and eval forward, and backward. Each op is three (eval: two)
//! dispatches: per-channel partial reductions, a per-channel finalize, an element-wise apply.

use crate::gpu::{Gpu, Kernel, KernelFlavor};
use crate::gpu::{GpuError, Program, Tensor, Uniform};

/// Invocations per workgroup of the reduction kernels (WG in the shader) and the apply kernels (AWG).
const WG: usize = 64;
const AWG: usize = 256;
/// GPUs: each reduction invocation covers ~64 values, so that a channel of 512·32·32 spreads over
/// 128 workgroups.
const GPU_PER_THREAD: usize = 64;
const MAX_SPLITS: usize = 256;
/// CPU drivers: a workgroup's tree costs several µs on lavapipe, so use as few workgroups as keep
/// the cores busy (~32 in all), each invocation covering ≥ 1024 values.
const CPU_GROUPS: usize = 32;
const CPU_PER_THREAD: usize = 1024;
/// Upper bound on apply workgroups (each invocation then loops over its segment).
const MAX_APPLY_GROUPS: usize = 4096;
/// Values per apply invocation at the least.
const APPLY_PER_THREAD: usize = 4;

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    n: u32,
    c: u32,
    hw: u32,
    m: u32,
    chw: u32,
    splits: u32,
    seg_t: u32,
    seg_a: u32,
    total: u32,
    q8: u32,
    r8: u32,
    q8c: u32,
    relu: u32,
    momentum: f32,
    eps: f32,
    inv_m: f32,
    unbias: f32,
}

/// Adjacent invocations that stream through one contiguous segment (LANES in the shader).
const LANES: usize = 8;

/// Segment length (vectors) when `threads` invocations in groups of LANES share `len` vectors.
fn segment(len: usize, threads: usize) -> usize {
    len.div_ceil(threads / LANES).div_ceil(LANES) * LANES
}

/// The planned geometry of one batch-norm op. Sizes in the params are in vectors of `width`
/// values: 4 (the `_v4` kernels) when HW % 4 == 0, else 1.
struct Plan {
    p: Params,
    c: usize,
    splits: usize,
    apply_groups: usize,
    suffix: &'static str,
}

impl Plan {
    fn new(flavor: KernelFlavor, x: &Tensor, relu: bool, momentum: f32, eps: f32) -> Plan {
        let (n, c, hw) = match x.shape[..] {
            [n, c] => (n, c, 1),
            [n, c, h, w] => (n, c, h * w),
            _ => unreachable!("checked by dims"),
        };
        let m = n * hw;
        let width = if hw % 4 == 0 { 4 } else { 1 };
        let hwv = hw / width;
        let totalv = n * c * hwv;
        let splits = match flavor {
            KernelFlavor::Tiled => m.div_ceil(WG * GPU_PER_THREAD).clamp(1, MAX_SPLITS),
            KernelFlavor::Rows => m.div_ceil(WG * CPU_PER_THREAD).clamp(1, CPU_GROUPS.div_ceil(c.max(1))),
        };
        let t = splits * WG;
        let apply_groups = totalv.div_ceil(AWG * APPLY_PER_THREAD).clamp(1, MAX_APPLY_GROUPS);
        let a = apply_groups * AWG;
        let p = Params {
            n: n as u32,
            c: c as u32,
            hw: hwv as u32,
            m: (n * hwv) as u32,
            chw: (c * hwv) as u32,
            splits: splits as u32,
            seg_t: segment(n * hwv, t) as u32,
            seg_a: segment(totalv, a) as u32,
            total: totalv as u32,
            q8: (LANES / hwv.max(1)) as u32,
            r8: (LANES % hwv.max(1)) as u32,
            q8c: ((LANES / hwv.max(1)) % c.max(1)) as u32,
            relu: relu as u32,
            momentum,
            eps,
            inv_m: 1.0 / m.max(1) as f32,
            unbias: if m > 1 { m as f32 / (m - 1) as f32 } else { 0.0 },
        };
        Plan {
            p,
            c,
            splits,
            apply_groups,
            suffix: if width == 4 { "_v4" } else { "" },
        }
    }

    fn empty(&self) -> bool {
        self.p.total == 0
    }

    fn kernel(&self, gpu: &Gpu, entry: &str, vectorised: bool) -> Result<Kernel, GpuError> {
        let suffix = if vectorised { self.suffix } else { "" };
        gpu.kernel("batchnorm", &format!("{entry}{suffix}"))
    }
}

/// The tensors bound by one op; unset ones are unused by its kernels.
#[derive(Default)]
struct Bind<'a> {
    gamma: Option<&'a Tensor>,
    beta: Option<&'a Tensor>,
    running_mean: Option<&'a Tensor>,
    running_var: Option<&'a Tensor>,
    save_mean: Option<&'a Tensor>,
    save_invstd: Option<&'a Tensor>,
    partials: Option<&'a Tensor>,
    coef: Option<&'a Tensor>,
    y: Option<&'a Tensor>,
    dy: Option<&'a Tensor>,
    dx: Option<&'a Tensor>,
    dgamma: Option<&'a Tensor>,
    dbeta: Option<&'a Tensor>,
}

impl<'a> Bind<'a> {
    /// Buffers by binding index (0..=20 in the shader); unused slots repeat `x`.
    fn buffers(&self, u: &'a Uniform, x: &'a Tensor) -> Vec<&'a wgpu::Buffer> {
        let b = |t: Option<&'a Tensor>| &t.unwrap_or(x).buffer;
        vec![
            &u.buffer,
            &x.buffer,
            b(self.gamma),
            b(self.beta),
            b(self.running_mean),
            b(self.running_var),
            b(self.save_mean),
            b(self.save_invstd),
            b(self.partials),
            b(self.coef),
            b(self.y),
            b(self.y),
            b(self.dy),
            b(self.dx),
            b(self.dgamma),
            b(self.dbeta),
            &x.buffer,
            b(self.y),
            b(self.y),
            b(self.dy),
            b(self.dx),
        ]
    }
}

fn dims(op: &str, x: &Tensor) -> Result<usize, GpuError> {
    match x.shape[..] {
        [_, c] | [_, c, _, _] => Ok(c),
        _ => Err(GpuError::Device(format!(
            "{op}: '{}' has shape {:?}; batch norm takes [N,C] or [N,C,H,W]",
            x.name, x.shape
        ))),
    }
}

fn same(op: &str, a: &Tensor, b: &Tensor) -> Result<(), GpuError> {
    if a.shape != b.shape {
        return Err(GpuError::shapes(op, (&a.name, &a.shape), (&b.name, &b.shape)));
    }
    Ok(())
}

fn per_channel(op: &str, x: &Tensor, c: usize, ts: &[&Tensor]) -> Result<(), GpuError> {
    for t in ts {
        if t.shape != [c] {
            return Err(GpuError::shapes(op, (&t.name, &t.shape), (&x.name, &x.shape)));
        }
    }
    Ok(())
}

/// Different buffers for an input and an output (wgpu cannot bind one buffer both ways).
fn distinct(op: &str, input: &Tensor, output: &Tensor) -> Result<(), GpuError> {
    if input.buffer == output.buffer {
        return Err(GpuError::Device(format!(
            "{op}: '{}' is both an input and the output '{}'; in-place is not supported",
            input.name, output.name
        )));
    }
    Ok(())
}

fn scratch(gpu: &Gpu, name: &str, plan: &Plan) -> Result<(Tensor, Tensor), GpuError> {
    let partials = Tensor::zeros(gpu, &format!("{name}.bn_partials"), &[plan.c * plan.splits, 4])?;
    let coef = Tensor::zeros(gpu, &format!("{name}.bn_coef"), &[plan.c, 4])?;
    Ok((partials, coef))
}

/// Training-mode forward. Writes `y`, the batch statistics `save_mean`/`save_invstd` (for the
/// backward) and updates `running_mean`/`running_var` in place (torch momentum: weight of the new
/// statistic; running variance unbiased). `relu` fuses max(·, 0) on the output.
#[allow(clippy::too_many_arguments)]
pub fn batchnorm_forward_train(
    gpu: &Gpu,
    x: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    running_mean: &Tensor,
    running_var: &Tensor,
    save_mean: &Tensor,
    save_invstd: &Tensor,
    y: &Tensor,
    relu: bool,
    momentum: f32,
    eps: f32,
) -> Result<Program, GpuError> {
    const OP: &str = "batchnorm forward (train)";
    let c = dims(OP, x)?;
    same(OP, x, y)?;
    per_channel(
        OP,
        x,
        c,
        &[gamma, beta, running_mean, running_var, save_mean, save_invstd],
    )?;
    distinct(OP, x, y)?;
    let plan = Plan::new(gpu.flavor, x, relu, momentum, eps);
    if plan.empty() {
        return Ok(Program::new());
    }
    if plan.p.m < 2 {
        return Err(GpuError::Device(format!(
            "{OP}: '{}' has shape {:?}: training needs more than one value per channel",
            x.name, x.shape
        )));
    }
    let (partials, coef) = scratch(gpu, &y.name, &plan)?;
    let u = Uniform::new(gpu, "batchnorm", &plan.p);
    let b = Bind {
        gamma: Some(gamma),
        beta: Some(beta),
        running_mean: Some(running_mean),
        running_var: Some(running_var),
        save_mean: Some(save_mean),
        save_invstd: Some(save_invstd),
        partials: Some(&partials),
        coef: Some(&coef),
        y: Some(y),
        ..Default::default()
    }
    .buffers(&u, x);
    let mut prog = Program::new();
    let (splits, c) = (plan.splits as u32, plan.c as u32);
    prog.push(gpu.dispatch(&plan.kernel(gpu, "stats_forward", true)?, &b, [splits, c, 1])?);
    prog.push(gpu.dispatch(
        &plan.kernel(gpu, "finalize_forward", false)?,
        &b,
        [c.div_ceil(64), 1, 1],
    )?);
    prog.push(gpu.dispatch(
        &plan.kernel(gpu, "apply_forward", true)?,
        &b,
        [plan.apply_groups as u32, 1, 1],
    )?);
    Ok(prog)
}

/// Eval-mode forward: normalise with the running statistics (left unchanged).
#[allow(clippy::too_many_arguments)]
pub fn batchnorm_forward_eval(
    gpu: &Gpu,
    x: &Tensor,
    gamma: &Tensor,
    beta: &Tensor,
    running_mean: &Tensor,
    running_var: &Tensor,
    y: &Tensor,
    relu: bool,
    eps: f32,
) -> Result<Program, GpuError> {
    const OP: &str = "batchnorm forward (eval)";
    let c = dims(OP, x)?;
    same(OP, x, y)?;
    per_channel(OP, x, c, &[gamma, beta, running_mean, running_var])?;
    distinct(OP, x, y)?;
    let plan = Plan::new(gpu.flavor, x, relu, 0.0, eps);
    if plan.empty() {
        return Ok(Program::new());
    }
    let coef = Tensor::zeros(gpu, &format!("{}.bn_coef", y.name), &[plan.c, 4])?;
    let u = Uniform::new(gpu, "batchnorm", &plan.p);
    let b = Bind {
        gamma: Some(gamma),
        beta: Some(beta),
        running_mean: Some(running_mean),
        running_var: Some(running_var),
        coef: Some(&coef),
        y: Some(y),
        ..Default::default()
    }
    .buffers(&u, x);
    let mut prog = Program::new();
    let c = plan.c as u32;
    prog.push(gpu.dispatch(&plan.kernel(gpu, "eval_coef", false)?, &b, [c.div_ceil(64), 1, 1])?);
    prog.push(gpu.dispatch(
        &plan.kernel(gpu, "apply_forward", true)?,
        &b,
        [plan.apply_groups as u32, 1, 1],
    )?);
    Ok(prog)
}

/// Backward of the training-mode forward; overwrites `dx`, `dgamma`, `dbeta`. `y` (the forward
/// output) is read only with `relu`, for the mask y > 0.
#[allow(clippy::too_many_arguments)]
pub fn batchnorm_backward(
    gpu: &Gpu,
    x: &Tensor,
    y: &Tensor,
    dy: &Tensor,
    gamma: &Tensor,
    save_mean: &Tensor,
    save_invstd: &Tensor,
    dx: &Tensor,
    dgamma: &Tensor,
    dbeta: &Tensor,
    relu: bool,
) -> Result<Program, GpuError> {
    const OP: &str = "batchnorm backward";
    let c = dims(OP, x)?;
    same(OP, x, y)?;
    same(OP, x, dy)?;
    same(OP, x, dx)?;
    per_channel(OP, x, c, &[gamma, save_mean, save_invstd, dgamma, dbeta])?;
    for input in [x, y, dy] {
        distinct(OP, input, dx)?;
    }
    let plan = Plan::new(gpu.flavor, x, relu, 0.0, 0.0);
    if plan.empty() {
        return Ok(Program::new());
    }
    let (partials, coef) = scratch(gpu, &dx.name, &plan)?;
    let u = Uniform::new(gpu, "batchnorm", &plan.p);
    let b = Bind {
        gamma: Some(gamma),
        save_mean: Some(save_mean),
        save_invstd: Some(save_invstd),
        partials: Some(&partials),
        coef: Some(&coef),
        y: Some(y),
        dy: Some(dy),
        dx: Some(dx),
        dgamma: Some(dgamma),
        dbeta: Some(dbeta),
        ..Default::default()
    }
    .buffers(&u, x);
    let mut prog = Program::new();
    let (splits, c) = (plan.splits as u32, plan.c as u32);
    prog.push(gpu.dispatch(&plan.kernel(gpu, "stats_backward", true)?, &b, [splits, c, 1])?);
    prog.push(gpu.dispatch(
        &plan.kernel(gpu, "finalize_backward", false)?,
        &b,
        [c.div_ceil(64), 1, 1],
    )?);
    prog.push(gpu.dispatch(
        &plan.kernel(gpu, "apply_backward", true)?,
        &b,
        [plan.apply_groups as u32, 1, 1],
    )?);
    Ok(prog)
}
