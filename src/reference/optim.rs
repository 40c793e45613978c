//! One optimizer step on the CPU, in f64, with the same semantics as `shaders/optim.wgsl`:
//! LARS as in google-research/simclr, SGD with momentum and AdamW as in torch.optim.

/// Hyper-parameters of one step (the learning rate of that step included).
#[derive(Clone, Copy, Debug)]
pub struct Hyper {
    pub lr: f64,
    pub momentum: f64,
    pub weight_decay: f64,
    pub eta: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
}

/// One parameter tensor with its optimizer state (`state2` is only used by AdamW).
#[derive(Clone, Debug)]
pub struct Slot {
    pub param: Vec<f64>,
    pub state1: Vec<f64>,
    pub state2: Vec<f64>,
    /// 1-D tensors (biases, batch-norm): no weight decay, no LARS trust ratio.
    pub excluded: bool,
}

impl Slot {
    pub fn new(param: &[f32], excluded: bool) -> Self {
        Slot {
            param: param.iter().map(|&v| v as f64).collect(),
            state1: vec![0.0; param.len()],
            state2: vec![0.0; param.len()],
            excluded,
        }
    }

    fn wd(&self, h: &Hyper) -> f64 {
        if self.excluded {
            0.0
        } else {
            h.weight_decay
        }
    }
}

fn norm(v: impl Iterator<Item = f64>) -> f64 {
    v.map(|x| x * x).sum::<f64>().sqrt()
}

/// LARS: g' = g + wd·w; trust = η‖w‖/‖g'‖ (1 if a norm is 0 or the tensor is excluded);
/// v = m·v + lr·trust·g'; w −= v. Returns the trust ratio.
pub fn lars_step(s: &mut Slot, grad: &[f32], h: &Hyper) -> f64 {
    let wd = s.wd(h);
    let g: Vec<f64> = grad.iter().zip(&s.param).map(|(&g, &w)| g as f64 + wd * w).collect();
    let (wn, gn) = (norm(s.param.iter().copied()), norm(g.iter().copied()));
    let trust = if s.excluded || wn == 0.0 || gn == 0.0 {
        1.0
    } else {
        h.eta * wn / gn
    };
    for (i, &gi) in g.iter().enumerate() {
        s.state1[i] = h.momentum * s.state1[i] + h.lr * trust * gi;
        s.param[i] -= s.state1[i];
    }
    trust
}

/// torch.optim.SGD (dampening 0, no Nesterov): v = m·v + g + wd·w; w −= lr·v.
/// (torch sets v = g on the first step, which equals this from a zero buffer.)
pub fn sgd_step(s: &mut Slot, grad: &[f32], h: &Hyper) {
    let wd = s.wd(h);
    for (i, &gi) in grad.iter().enumerate() {
        s.state1[i] = h.momentum * s.state1[i] + gi as f64 + wd * s.param[i];
        s.param[i] -= h.lr * s.state1[i];
    }
}

/// torch.optim.AdamW for update number `t` (1-based): decoupled decay, bias correction,
/// eps added after the square root.
pub fn adamw_step(s: &mut Slot, grad: &[f32], h: &Hyper, t: u32) {
    let wd = s.wd(h);
    let (bc1, bc2) = (1.0 - h.beta1.powi(t as i32), 1.0 - h.beta2.powi(t as i32));
    for (i, &g) in grad.iter().enumerate() {
        let g = g as f64;
        s.param[i] *= 1.0 - h.lr * wd;
        s.state1[i] = h.beta1 * s.state1[i] + (1.0 - h.beta1) * g;
        s.state2[i] = h.beta2 * s.state2[i] + (1.0 - h.beta2) * g * g;
        s.param[i] -= h.lr * (s.state1[i] / bc1) / ((s.state2[i] / bc2).sqrt() + h.eps);
    }
}
