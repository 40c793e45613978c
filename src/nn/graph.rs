//! A model as a plain list of layer ops over named activation buffers, planned once for a
//! batch size. Forward runs the list in order; backward runs it in reverse, each op writing
//! explicit gradients. An activation read by two ops (a residual block's input) gets one
//! gradient buffer per reader, summed by an `add` dispatch.

use super::{batchnorm, conv2d, elementwise, linear, pool};
use crate::gpu::{Gpu, GpuError, Program, Tensor};

pub type ActId = usize;
pub type ParamId = usize;

/// A learnable tensor with its gradient. `excluded` marks 1-D tensors (biases, BN), which
/// LARS leaves out of weight decay and the trust ratio.
#[derive(Clone, Debug)]
pub struct Param {
    pub name: String,
    pub shape: Vec<usize>,
    pub excluded: bool,
}

/// Batch-norm state that is not learned: running statistics (saved in checkpoints).
#[derive(Clone, Debug)]
pub struct BnState {
    pub prefix: String,
    pub channels: usize,
}

#[derive(Clone, Debug)]
pub enum Op {
    Conv {
        w: ParamId,
        geom: conv2d::ConvGeom,
        x: ActId,
        y: ActId,
    },
    /// `state` indexes `Graph::bn`; gamma/beta are params.
    BatchNorm {
        gamma: ParamId,
        beta: ParamId,
        state: usize,
        x: ActId,
        y: ActId,
        relu: bool,
    },
    Add {
        a: ActId,
        b: ActId,
        y: ActId,
        relu: bool,
    },
    MaxPool {
        x: ActId,
        y: ActId,
    },
    AvgPool {
        x: ActId,
        y: ActId,
    },
    Linear {
        w: ParamId,
        b: Option<ParamId>,
        x: ActId,
        y: ActId,
    },
}

/// The symbolic model: ops, parameter specs and activation shapes per sample (batch excluded).
#[derive(Clone, Debug, Default)]
pub struct Graph {
    pub ops: Vec<Op>,
    pub params: Vec<Param>,
    pub bn: Vec<BnState>,
    /// Per-sample shape of every activation; activation 0 is the input.
    pub acts: Vec<Vec<usize>>,
    /// Ops `[0, encoder_end)` form the encoder; the eval program stops there.
    pub encoder_end: usize,
    /// The encoder's output (features) activation.
    pub features: ActId,
}

impl Graph {
    pub fn new(input: &[usize]) -> Self {
        Graph {
            acts: vec![input.to_vec()],
            ..Default::default()
        }
    }
    pub fn act(&mut self, shape: Vec<usize>) -> ActId {
        self.acts.push(shape);
        self.acts.len() - 1
    }
    pub fn param(&mut self, name: String, shape: Vec<usize>) -> ParamId {
        let excluded = shape.len() == 1;
        self.params.push(Param { name, shape, excluded });
        self.params.len() - 1
    }
    /// Readers of each activation, in forward order.
    fn readers(&self) -> Vec<Vec<usize>> {
        let mut r = vec![Vec::new(); self.acts.len()];
        for (i, op) in self.ops.iter().enumerate() {
            for a in op.inputs() {
                r[a].push(i);
            }
        }
        r
    }
}

impl Op {
    pub fn inputs(&self) -> Vec<ActId> {
        match *self {
            Op::Conv { x, .. } | Op::BatchNorm { x, .. } | Op::MaxPool { x, .. } | Op::AvgPool { x, .. } => vec![x],
            Op::Linear { x, .. } => vec![x],
            Op::Add { a, b, .. } => vec![a, b],
        }
    }
    pub fn output(&self) -> ActId {
        match *self {
            Op::Conv { y, .. }
            | Op::BatchNorm { y, .. }
            | Op::Add { y, .. }
            | Op::MaxPool { y, .. }
            | Op::AvgPool { y, .. }
            | Op::Linear { y, .. } => y,
        }
    }
}

/// GPU buffers of one BN layer.
pub struct BnBuffers {
    pub running_mean: Tensor,
    pub running_var: Tensor,
    pub save_mean: Tensor,
    pub save_invstd: Tensor,
}

/// A graph with every buffer allocated for `batch` and its programs recorded.
pub struct Planned {
    pub batch: usize,
    pub params: Vec<Tensor>,
    pub grads: Vec<Tensor>,
    pub bn: Vec<BnBuffers>,
    pub acts: Vec<Tensor>,
    /// Gradient of each activation (the sum over its readers); None for the input.
    pub act_grads: Vec<Option<Tensor>>,
    pub forward_train: Program,
    /// Eval mode, encoder only (features).
    pub forward_eval: Program,
    /// Eval mode through the head too (logits of a fine-tuned classifier).
    pub forward_eval_all: Program,
    pub backward: Program,
    /// u32 argmax of each max-pool op, by op index.
    _argmax: Vec<Option<Tensor>>,
    _scratch: Vec<Tensor>,
}

pub const BN_MOMENTUM: f32 = 0.1;
pub const BN_EPS: f32 = 1e-5;

impl Planned {
    /// Allocate everything for `batch` samples and record forward (train and eval) and
    /// backward programs. `param_init` gives the initial value of each parameter.
    pub fn new(gpu: &Gpu, g: &Graph, batch: usize, param_init: &[Vec<f32>]) -> Result<Planned, GpuError> {
        let with_batch = |s: &[usize]| [&[batch][..], s].concat();
        let mut params = Vec::new();
        let mut grads = Vec::new();
        for (p, init) in g.params.iter().zip(param_init) {
            params.push(Tensor::from_f32(gpu, &p.name, &p.shape, init)?);
            grads.push(Tensor::zeros(gpu, &format!("{}.grad", p.name), &p.shape)?);
        }
        let mut bn = Vec::new();
        for s in &g.bn {
            let c = s.channels;
            bn.push(BnBuffers {
                running_mean: Tensor::zeros(gpu, &format!("{}.running_mean", s.prefix), &[c])?,
                running_var: Tensor::from_f32(gpu, &format!("{}.running_var", s.prefix), &[c], &vec![1.0; c])?,
                save_mean: Tensor::zeros(gpu, &format!("{}.save_mean", s.prefix), &[c])?,
                save_invstd: Tensor::zeros(gpu, &format!("{}.save_invstd", s.prefix), &[c])?,
            });
        }
        let mut acts = Vec::new();
        for (i, s) in g.acts.iter().enumerate() {
            acts.push(Tensor::zeros(gpu, &format!("act{i}"), &with_batch(s))?);
        }
        let readers = g.readers();
        // One gradient buffer per (activation, reader); the activation's gradient is their sum.
        let mut act_grads: Vec<Option<Tensor>> = Vec::new();
        let mut reader_grads: Vec<Vec<Tensor>> = Vec::new();
        for (i, s) in g.acts.iter().enumerate() {
            let n = readers[i].len();
            let total = if i == 0 {
                None
            } else {
                Some(Tensor::zeros(gpu, &format!("act{i}.grad"), &with_batch(s))?)
            };
            let mut per = Vec::new();
            if n > 1 && i != 0 {
                for k in 0..n {
                    per.push(Tensor::zeros(gpu, &format!("act{i}.grad.r{k}"), &with_batch(s))?);
                }
            }
            act_grads.push(total);
            reader_grads.push(per);
        }
        // The buffer op `op` writes as the gradient of its input `a` (None: input, not needed).
        let grad_target = |a: ActId, op: usize| -> Option<Tensor> {
            if a == 0 {
                return None;
            }
            if readers[a].len() > 1 {
                let k = readers[a].iter().position(|&o| o == op).unwrap();
                Some(reader_grads[a][k].clone())
            } else {
                act_grads[a].clone()
            }
        };

        let mut argmax: Vec<Option<Tensor>> = vec![None; g.ops.len()];
        let mut scratch = Vec::new();
        let mut fwd_train = Program::new();
        let mut eval_prog = Program::new();
        let mut eval_all = Program::new();
        for (i, op) in g.ops.iter().enumerate() {
            // Only the encoder runs in eval mode (feature extraction); the head is train-only.
            let mut fwd_eval = Program::new();
            match *op {
                Op::Conv { w, geom, x, y } => {
                    let p = conv2d::conv2d_forward(gpu, &acts[x], &params[w], &acts[y], geom)?;
                    fwd_train.extend(&p);
                    fwd_eval.extend(&p);
                }
                Op::BatchNorm {
                    gamma,
                    beta,
                    state,
                    x,
                    y,
                    relu,
                } => {
                    let b = &bn[state];
                    fwd_train.extend(&batchnorm::batchnorm_forward_train(
                        gpu,
                        &acts[x],
                        &params[gamma],
                        &params[beta],
                        &b.running_mean,
                        &b.running_var,
                        &b.save_mean,
                        &b.save_invstd,
                        &acts[y],
                        relu,
                        BN_MOMENTUM,
                        BN_EPS,
                    )?);
                    fwd_eval.extend(&batchnorm::batchnorm_forward_eval(
                        gpu,
                        &acts[x],
                        &params[gamma],
                        &params[beta],
                        &b.running_mean,
                        &b.running_var,
                        &acts[y],
                        relu,
                        BN_EPS,
                    )?);
                }
                Op::Add { a, b, y, relu } => {
                    let d = elementwise::add(gpu, &acts[a], &acts[b], &acts[y], relu)?;
                    fwd_train.push(d.clone());
                    fwd_eval.push(d);
                }
                Op::MaxPool { x, y } => {
                    let am = Tensor::zeros(gpu, &format!("op{i}.argmax"), &acts[y].shape)?;
                    let p = pool::maxpool_forward(gpu, &acts[x], &acts[y], &am)?;
                    fwd_train.extend(&p);
                    fwd_eval.extend(&p);
                    argmax[i] = Some(am);
                }
                Op::AvgPool { x, y } => {
                    let p = pool::global_avgpool_forward(gpu, &acts[x], &acts[y])?;
                    fwd_train.extend(&p);
                    fwd_eval.extend(&p);
                }
                Op::Linear { w, b, x, y } => {
                    let p = linear::linear_forward(gpu, &acts[x], &params[w], b.map(|b| &params[b]), &acts[y], false)?;
                    fwd_train.extend(&p);
                    fwd_eval.extend(&p);
                }
            }
            if i < g.encoder_end {
                eval_prog.extend(&fwd_eval);
            }
            eval_all.extend(&fwd_eval);
        }

        let mut bwd = Program::new();
        for (i, op) in g.ops.iter().enumerate().rev() {
            let y = op.output();
            // The output's gradient is complete once all its readers ran (they come later in
            // forward order, so earlier in this reverse loop); sum the per-reader parts now.
            if readers[y].len() > 1 {
                let parts = &reader_grads[y];
                let total = act_grads[y].as_ref().unwrap();
                bwd.push(elementwise::add(gpu, &parts[0], &parts[1], total, false)?);
                for extra in &parts[2..] {
                    let tmp = Tensor::zeros(gpu, &format!("act{y}.grad.sum"), &total.shape)?;
                    bwd.copy(&total.buffer, &tmp.buffer, total.bytes());
                    bwd.push(elementwise::add(gpu, &tmp, extra, total, false)?);
                    scratch.push(tmp);
                }
            }
            let Some(dy) = act_grads[y].clone() else { continue };
            match *op {
                Op::Conv { w, geom, x, .. } => {
                    if let Some(dx) = grad_target(x, i) {
                        bwd.extend(&conv2d::conv2d_backward_input(gpu, &dy, &params[w], &dx, geom)?);
                    }
                    bwd.extend(&conv2d::conv2d_backward_weight(gpu, &acts[x], &dy, &grads[w], geom)?);
                }
                Op::BatchNorm {
                    gamma,
                    beta,
                    state,
                    x,
                    y,
                    relu,
                } => {
                    let b = &bn[state];
                    let dx = grad_target(x, i).expect("BN never reads the input image");
                    bwd.extend(&batchnorm::batchnorm_backward(
                        gpu,
                        &acts[x],
                        &acts[y],
                        &dy,
                        &params[gamma],
                        &b.save_mean,
                        &b.save_invstd,
                        &dx,
                        &grads[gamma],
                        &grads[beta],
                        relu,
                    )?);
                }
                Op::Add { a, b, y, relu } => {
                    // Both inputs receive d(sum): ReLU-masked when the join has a ReLU.
                    let targets: Vec<Tensor> = [a, b].iter().filter_map(|&s| grad_target(s, i)).collect();
                    if let Some(first) = targets.first() {
                        if relu {
                            bwd.push(elementwise::relu_backward(gpu, &acts[y], &dy, first)?);
                        } else {
                            bwd.copy(&dy.buffer, &first.buffer, dy.bytes());
                        }
                        for t in &targets[1..] {
                            bwd.copy(&first.buffer, &t.buffer, first.bytes());
                        }
                    }
                }
                Op::MaxPool { x, .. } => {
                    if let Some(dx) = grad_target(x, i) {
                        bwd.extend(&pool::maxpool_backward(gpu, &dy, argmax[i].as_ref().unwrap(), &dx)?);
                    }
                }
                Op::AvgPool { x, .. } => {
                    if let Some(dx) = grad_target(x, i) {
                        bwd.extend(&pool::global_avgpool_backward(gpu, &dy, &dx)?);
                    }
                }
                Op::Linear { w, b, x, .. } => {
                    let dx = grad_target(x, i);
                    bwd.extend(&linear::linear_backward(
                        gpu,
                        &acts[x],
                        &params[w],
                        &dy,
                        dx.as_ref(),
                        &grads[w],
                        b.map(|b| &grads[b]),
                    )?);
                }
            }
        }
        Ok(Planned {
            batch,
            params,
            grads,
            bn,
            acts,
            act_grads,
            forward_train: fwd_train,
            forward_eval: eval_prog,
            forward_eval_all: eval_all,
            backward: bwd,
            _argmax: argmax,
            _scratch: scratch,
        })
    }
}
