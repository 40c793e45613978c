//! A SimCLR model on the GPU: the planned graph plus initialisation and named tensors for
//! checkpoints.

use super::arch::{build, ModelConfig};
use super::graph::{Graph, Planned};
use crate::gpu::{Gpu, GpuError, Program, Tensor};
use rand::{Rng, SeedableRng};

pub struct Model {
    pub cfg: ModelConfig,
    pub graph: Graph,
    pub plan: Planned,
}

/// torchvision's initialisation: Kaiming normal (fan-out, ReLU gain) for convs, BN γ = 1 and
/// β = 0, and torch.nn.Linear's default U(±1/√fan_in) for linear weights and biases.
pub fn init_params(g: &Graph, seed: u64) -> Vec<Vec<f32>> {
    let mut rng = rand_pcg::Pcg64::seed_from_u64(seed);
    let normal = move |rng: &mut rand_pcg::Pcg64| -> f32 {
        // Box–Muller; u1 in (0, 1] so the log is finite.
        let u1: f64 = 1.0 - rng.random::<f64>();
        let u2: f64 = rng.random::<f64>();
        ((-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()) as f32
    };
    let mut out = Vec::with_capacity(g.params.len());
    for (i, p) in g.params.iter().enumerate() {
        let n: usize = p.shape.iter().product();
        let v: Vec<f32> = if p.shape.len() == 4 {
            let fan_out = (p.shape[0] * p.shape[2] * p.shape[3]) as f32;
            let std = (2.0 / fan_out).sqrt();
            (0..n).map(|_| normal(&mut rng) * std).collect()
        } else if p.shape.len() == 2 {
            let bound = 1.0 / (p.shape[1] as f32).sqrt();
            (0..n).map(|_| rng.random_range(-bound..bound)).collect()
        } else if p.name.ends_with(".bias") && is_linear_bias(g, i) {
            let fan_in = linear_fan_in(g, i);
            let bound = 1.0 / (fan_in as f32).sqrt();
            (0..n).map(|_| rng.random_range(-bound..bound)).collect()
        } else if p.name.ends_with(".weight") {
            vec![1.0; n]
        } else {
            vec![0.0; n]
        };
        out.push(v);
    }
    out
}

fn linear_of_bias(g: &Graph, i: usize) -> Option<usize> {
    g.ops.iter().find_map(|op| match *op {
        super::graph::Op::Linear { w, b: Some(b), .. } if b == i => Some(w),
        _ => None,
    })
}
fn is_linear_bias(g: &Graph, i: usize) -> bool {
    linear_of_bias(g, i).is_some()
}
fn linear_fan_in(g: &Graph, i: usize) -> usize {
    linear_of_bias(g, i).map(|w| g.params[w].shape[1]).unwrap_or(1)
}

impl Model {
    /// Build and plan the model for `batch` rows (views), initialised from `seed`.
    pub fn new(gpu: &Gpu, cfg: &ModelConfig, batch: usize, seed: u64) -> Result<Model, GpuError> {
        let graph = build(cfg);
        let init = init_params(&graph, seed);
        let plan = Planned::new(gpu, &graph, batch, &init)?;
        Ok(Model {
            cfg: cfg.clone(),
            graph,
            plan,
        })
    }

    pub fn input(&self) -> &Tensor {
        &self.plan.acts[0]
    }
    pub fn features(&self) -> &Tensor {
        &self.plan.acts[self.graph.features]
    }
    pub fn output(&self) -> &Tensor {
        self.plan.acts.last().unwrap()
    }
    /// Where the loss writes dL/dz.
    pub fn output_grad(&self) -> &Tensor {
        self.plan.act_grads.last().unwrap().as_ref().unwrap()
    }
    pub fn forward_train(&self) -> &Program {
        &self.plan.forward_train
    }
    pub fn forward_eval(&self) -> &Program {
        &self.plan.forward_eval
    }
    /// Eval mode through the head (`forward_eval` stops at the features).
    pub fn forward_eval_all(&self) -> &Program {
        &self.plan.forward_eval_all
    }
    pub fn backward(&self) -> &Program {
        &self.plan.backward
    }

    /// Every tensor of a checkpoint's model part, by PyTorch name: parameters and BN running
    /// statistics.
    pub fn named_tensors(&self) -> Vec<(String, Tensor)> {
        let mut v: Vec<(String, Tensor)> = self
            .graph
            .params
            .iter()
            .zip(&self.plan.params)
            .map(|(p, t)| (p.name.clone(), t.clone()))
            .collect();
        for (s, b) in self.graph.bn.iter().zip(&self.plan.bn) {
            v.push((format!("{}.running_mean", s.prefix), b.running_mean.clone()));
            v.push((format!("{}.running_var", s.prefix), b.running_var.clone()));
        }
        v
    }

    /// (name, param, grad, excluded) for the optimizer.
    pub fn param_slots(&self) -> Vec<(String, Tensor, Tensor, bool)> {
        self.graph
            .params
            .iter()
            .enumerate()
            .map(|(i, p)| {
                (
                    p.name.clone(),
                    self.plan.params[i].clone(),
                    self.plan.grads[i].clone(),
                    p.excluded,
                )
            })
            .collect()
    }

    pub fn num_params(&self) -> usize {
        self.graph
            .params
            .iter()
            .map(|p| p.shape.iter().product::<usize>())
            .sum()
    }
}
