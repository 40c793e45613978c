//! Optimizers on the GPU (host side of `shaders/optim.wgsl`) and the learning-rate schedule.
//!
//! Every parameter tensor is its own buffer, so each gets its own dispatches: LARS needs two
//! (partial norms, then the update) for weight tensors and one for excluded 1-D tensors; SGD
//! and AdamW one. For resnet18 (~62 tensors) that is ~80 dispatches, ~2 ms on lavapipe.
//! All hyper-parameters live in one uniform shared by every dispatch: `set_lr` / `set_step`
//! rewrite it between steps without allocating.

pub mod schedule;

use crate::gpu::{grid_1d, Gpu, GpuError, Program, Tensor, Uniform};
use std::sync::Mutex;

/// A parameter tensor, its gradient (same shape), and whether it is excluded from weight
/// decay and from the LARS trust ratio (SimCLR excludes every 1-D tensor: biases, batch-norm).
#[derive(Clone, Debug)]
pub struct ParamSlot {
    pub name: String,
    pub param: Tensor,
    pub grad: Tensor,
    pub excluded: bool,
}

impl ParamSlot {
    /// A slot with SimCLR's rule: 1-D tensors are excluded.
    pub fn new(name: &str, param: &Tensor, grad: &Tensor) -> Self {
        ParamSlot {
            name: name.to_string(),
            param: param.clone(),
            grad: grad.clone(),
            excluded: param.shape.len() <= 1,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    /// LARS as in google-research/simclr (learning rate inside the momentum buffer).
    #[default]
    Lars,
    /// torch.optim.SGD with momentum (dampening 0, no Nesterov).
    Sgd,
    /// torch.optim.AdamW.
    #[value(name = "adamw")]
    AdamW,
}

/// Optimizer hyper-parameters; the defaults are SimCLR's LARS. `weight_decay` applies to the
/// non-excluded tensors in every optimizer (coupled for LARS/SGD, decoupled for AdamW).
#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct OptimConfig {
    pub kind: OptimizerKind,
    /// LARS and SGD.
    pub momentum: f64,
    pub weight_decay: f64,
    /// LARS trust coefficient η.
    pub eta: f64,
    /// AdamW.
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
}

impl Default for OptimConfig {
    fn default() -> Self {
        OptimConfig {
            kind: OptimizerKind::Lars,
            momentum: 0.9,
            weight_decay: 1e-6,
            eta: 1e-3,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
        }
    }
}

impl OptimConfig {
    fn validate(&self) -> Result<(), GpuError> {
        let bad = |what: &str, v: f64| GpuError::invalid("optimizer", format!("{what} = {v} is out of range"));
        let unit = |v: f64| v.is_finite() && (0.0..1.0).contains(&v);
        if !unit(self.momentum) {
            return Err(bad("momentum (0 ≤ m < 1)", self.momentum));
        }
        if !(self.weight_decay.is_finite() && self.weight_decay >= 0.0) {
            return Err(bad("weight_decay (≥ 0)", self.weight_decay));
        }
        if !(self.eta.is_finite() && self.eta > 0.0) {
            return Err(bad("eta (> 0)", self.eta));
        }
        if !unit(self.beta1) || !unit(self.beta2) {
            return Err(bad(
                "beta1/beta2 (0 ≤ β < 1)",
                if unit(self.beta1) { self.beta2 } else { self.beta1 },
            ));
        }
        if !(self.eps.is_finite() && self.eps > 0.0) {
            return Err(bad("eps (> 0)", self.eps));
        }
        Ok(())
    }
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct TensorParams {
    n: u32,
    excluded: u32,
    index: u32,
    partial: u32,
    groups: u32,
    _pad: [u32; 3],
}

#[repr(C)]
#[derive(Clone, Copy, Debug, bytemuck::Pod, bytemuck::Zeroable)]
struct Hyper {
    lr: f32,
    momentum: f32,
    weight_decay: f32,
    eta: f32,
    beta1: f32,
    beta2: f32,
    eps: f32,
    bc1: f32,
    bc2: f32,
    omb1: f32,
    omb2: f32,
    _pad: u32,
}

/// Most workgroups of one LARS norm reduction (the update sums this many partials).
const MAX_GROUPS: usize = 64;
const WG: usize = 256;

/// An optimizer planned for a fixed list of parameters: state buffers and dispatches are
/// created once; `program()` is replayed every step after `set_lr` / `set_step`.
pub struct Optimizer {
    cfg: OptimConfig,
    params: Vec<ParamSlot>,
    state: Vec<(String, Tensor)>,
    trust: Option<Tensor>,
    hyper_uniform: Uniform,
    hyper: Mutex<Hyper>,
    program: Program,
}

impl Optimizer {
    /// Plan the optimizer. The learning rate starts at 0: call `set_lr` or `set_step` first.
    pub fn new(gpu: &Gpu, cfg: &OptimConfig, params: Vec<ParamSlot>) -> Result<Self, GpuError> {
        cfg.validate()?;
        for (k, p) in params.iter().enumerate() {
            if p.param.shape != p.grad.shape {
                return Err(GpuError::shapes(
                    "optimizer",
                    (&p.param.name, &p.param.shape),
                    (&p.grad.name, &p.grad.shape),
                ));
            }
            if params[..k].iter().any(|q| q.name == p.name) {
                return Err(GpuError::invalid(
                    "optimizer",
                    format!("parameter name '{}' is used twice", p.name),
                ));
            }
        }
        let hyper = Hyper {
            lr: 0.0,
            momentum: cfg.momentum as f32,
            weight_decay: cfg.weight_decay as f32,
            eta: cfg.eta as f32,
            beta1: cfg.beta1 as f32,
            beta2: cfg.beta2 as f32,
            eps: cfg.eps as f32,
            bc1: (1.0 - cfg.beta1) as f32,
            bc2: (1.0 - cfg.beta2) as f32,
            omb1: (1.0 - cfg.beta1) as f32,
            omb2: (1.0 - cfg.beta2) as f32,
            _pad: 0,
        };
        let hyper_uniform = Uniform::new(gpu, "optim.hyper", &hyper);
        let count = params.len().max(1);
        let lars = cfg.kind == OptimizerKind::Lars;
        let trust = if lars {
            Some(Tensor::from_f32(gpu, "optim.trust_ratio", &[count], &vec![1.0; count])?)
        } else {
            None
        };
        let partials = Tensor::zeros(gpu, "optim.partial_norms", &[count * 2 * MAX_GROUPS])?;
        let mut state = Vec::new();
        let mut program = Program::new();
        for (index, p) in params.iter().enumerate() {
            let shape = &p.param.shape;
            let (s1, s2) = match cfg.kind {
                OptimizerKind::Lars | OptimizerKind::Sgd => {
                    let buf = Tensor::zeros(gpu, &format!("{}.momentum_buffer", p.name), shape)?;
                    (buf.clone(), buf)
                }
                OptimizerKind::AdamW => (
                    Tensor::zeros(gpu, &format!("{}.exp_avg", p.name), shape)?,
                    Tensor::zeros(gpu, &format!("{}.exp_avg_sq", p.name), shape)?,
                ),
            };
            state.push((s1.name.clone(), s1.clone()));
            if cfg.kind == OptimizerKind::AdamW {
                state.push((s2.name.clone(), s2.clone()));
            }
            let n = p.param.numel();
            if n == 0 {
                continue;
            }
            if n > u32::MAX as usize / 2 {
                return Err(GpuError::invalid("optimizer", format!("'{}' is too large", p.name)));
            }
            let groups = n.div_ceil(16 * WG).clamp(1, MAX_GROUPS);
            let u = Uniform::new(
                gpu,
                &format!("optim.{}", p.name),
                &TensorParams {
                    n: n as u32,
                    excluded: p.excluded as u32,
                    index: index as u32,
                    partial: (index * 2 * MAX_GROUPS) as u32,
                    groups: groups as u32,
                    _pad: [0; 3],
                },
            );
            let trust_buf = trust.as_ref().unwrap_or(&partials);
            let b = [
                &u.buffer,
                &hyper_uniform.buffer,
                &p.param.buffer,
                &p.grad.buffer,
                &s1.buffer,
                &s2.buffer,
                &partials.buffer,
                &trust_buf.buffer,
            ];
            let full = grid_1d(n.div_ceil(WG) as u32);
            match cfg.kind {
                OptimizerKind::Lars if !p.excluded => {
                    program.push(gpu.launch("optim", "lars_norms", &b, [groups as u32, 1, 1])?);
                    program.push(gpu.launch("optim", "lars_update", &b, [groups as u32, 1, 1])?);
                }
                OptimizerKind::Lars => program.push(gpu.launch("optim", "lars_update", &b, full)?),
                OptimizerKind::Sgd => program.push(gpu.launch("optim", "sgd_update", &b, full)?),
                OptimizerKind::AdamW => program.push(gpu.launch("optim", "adamw_update", &b, full)?),
            }
        }
        Ok(Optimizer {
            cfg: cfg.clone(),
            params,
            state,
            trust,
            hyper_uniform,
            hyper: Mutex::new(hyper),
            program,
        })
    }

    /// Set the learning rate of the next updates (writes the uniform; allocates nothing).
    /// AdamW keeps the bias correction of the last `set_step` (of step 0 if never called).
    pub fn set_lr(&self, gpu: &Gpu, lr: f32) {
        let mut h = self.hyper.lock().unwrap();
        h.lr = lr;
        self.hyper_uniform.write(gpu, &*h);
    }

    /// Set the learning rate and the step for the next update: `step` is the 0-based count
    /// of updates already applied (the same `step` as `schedule::lr_at`), so AdamW's bias
    /// correction uses t = step + 1. Call this before every replay when using AdamW.
    pub fn set_step(&self, gpu: &Gpu, lr: f32, step: usize) {
        let t = step.saturating_add(1).min(i32::MAX as usize) as i32;
        let mut h = self.hyper.lock().unwrap();
        h.lr = lr;
        h.bc1 = (1.0 - self.cfg.beta1.powi(t)) as f32;
        h.bc2 = (1.0 - self.cfg.beta2.powi(t)) as f32;
        self.hyper_uniform.write(gpu, &*h);
    }

    /// One update of every parameter from its gradient.
    pub fn program(&self) -> &Program {
        &self.program
    }

    /// Named state tensors for checkpoints: "<param>.momentum_buffer" (LARS, SGD) or
    /// "<param>.exp_avg" and "<param>.exp_avg_sq" (AdamW). Writing into them restores state.
    pub fn state(&self) -> Vec<(String, Tensor)> {
        self.state.clone()
    }

    pub fn params(&self) -> &[ParamSlot] {
        &self.params
    }

    pub fn config(&self) -> &OptimConfig {
        &self.cfg
    }

    /// LARS only: [params] trust ratio used by the last update of each tensor (1 for excluded).
    pub fn trust_ratios(&self) -> Option<&Tensor> {
        self.trust.as_ref()
    }
}
