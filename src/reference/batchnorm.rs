//! Batch normalisation (BatchNorm2d on [N,C,H,W], BatchNorm1d on [N,C]) as PyTorch computes it,
//! with an optional fused ReLU on the output. f64 cores (`*_f64`, used by the finite-difference
//! tests) behind f32 wrappers.

/// (N, C, H*W) of an [N,C,H,W] or [N,C] shape.
pub fn dims(shape: &[usize]) -> (usize, usize, usize) {
    match shape {
        [n, c] => (*n, *c, 1),
        [n, c, h, w] => (*n, *c, h * w),
        _ => panic!("batchnorm expects [N,C] or [N,C,H,W], got {shape:?}"),
    }
}

/// Everything a training-mode forward produces.
#[derive(Clone, Debug)]
pub struct BnTrain<T> {
    pub y: Vec<T>,
    pub mean: Vec<T>,
    pub var_biased: Vec<T>,
    pub var_unbiased: Vec<T>,
    pub invstd: Vec<T>,
    pub running_mean: Vec<T>,
    pub running_var: Vec<T>,
}

/// Index of value `j` (= n*HW + i) of channel `c`.
fn at(c: usize, j: usize, cc: usize, hw: usize) -> usize {
    (j / hw) * cc * hw + c * hw + j % hw
}

fn relu_if(v: f64, relu: bool) -> f64 {
    if relu {
        v.max(0.0)
    } else {
        v
    }
}

/// Training mode: batch statistics (two-pass), biased variance to normalise, unbiased for the
/// running variance; running = (1−momentum)·running + momentum·stat.
#[allow(clippy::too_many_arguments)]
pub fn forward_train_f64(
    x: &[f64],
    shape: &[usize],
    gamma: &[f64],
    beta: &[f64],
    running_mean: &[f64],
    running_var: &[f64],
    relu: bool,
    momentum: f64,
    eps: f64,
) -> BnTrain<f64> {
    let (n, cc, hw) = dims(shape);
    let m = n * hw;
    let mut out = BnTrain {
        y: vec![0.0; x.len()],
        mean: vec![0.0; cc],
        var_biased: vec![0.0; cc],
        var_unbiased: vec![0.0; cc],
        invstd: vec![0.0; cc],
        running_mean: vec![0.0; cc],
        running_var: vec![0.0; cc],
    };
    for c in 0..cc {
        let mean = (0..m).map(|j| x[at(c, j, cc, hw)]).sum::<f64>() / m as f64;
        let ss: f64 = (0..m).map(|j| (x[at(c, j, cc, hw)] - mean).powi(2)).sum();
        let var_b = ss / m as f64;
        let var_u = ss / (m as f64 - 1.0);
        let invstd = 1.0 / (var_b + eps).sqrt();
        for j in 0..m {
            let e = at(c, j, cc, hw);
            out.y[e] = relu_if((x[e] - mean) * invstd * gamma[c] + beta[c], relu);
        }
        out.mean[c] = mean;
        out.var_biased[c] = var_b;
        out.var_unbiased[c] = var_u;
        out.invstd[c] = invstd;
        out.running_mean[c] = (1.0 - momentum) * running_mean[c] + momentum * mean;
        out.running_var[c] = (1.0 - momentum) * running_var[c] + momentum * var_u;
    }
    out
}

/// Eval mode: normalise with the running statistics.
#[allow(clippy::too_many_arguments)]
pub fn forward_eval_f64(
    x: &[f64],
    shape: &[usize],
    gamma: &[f64],
    beta: &[f64],
    running_mean: &[f64],
    running_var: &[f64],
    relu: bool,
    eps: f64,
) -> Vec<f64> {
    let (_, cc, hw) = dims(shape);
    x.iter()
        .enumerate()
        .map(|(e, &v)| {
            let c = (e / hw) % cc;
            relu_if(
                (v - running_mean[c]) / (running_var[c] + eps).sqrt() * gamma[c] + beta[c],
                relu,
            )
        })
        .collect()
}

/// Backward of the training-mode forward: (dx, dgamma, dbeta). With `relu`, dy is first masked
/// by y > 0 (y = the forward output).
/// dx = γ·invstd/M·(M·dy − Σdy − x̂·Σ(dy·x̂)), dγ = Σ dy·x̂, dβ = Σ dy.
#[allow(clippy::too_many_arguments)]
pub fn backward_f64(
    x: &[f64],
    y: &[f64],
    dy: &[f64],
    shape: &[usize],
    gamma: &[f64],
    mean: &[f64],
    invstd: &[f64],
    relu: bool,
) -> (Vec<f64>, Vec<f64>, Vec<f64>) {
    let (n, cc, hw) = dims(shape);
    let m = n * hw;
    let g = |e: usize| if !relu || y[e] > 0.0 { dy[e] } else { 0.0 };
    let mut dx = vec![0.0; x.len()];
    let (mut dgamma, mut dbeta) = (vec![0.0; cc], vec![0.0; cc]);
    for c in 0..cc {
        let xhat = |e: usize| (x[e] - mean[c]) * invstd[c];
        let idx = |j| at(c, j, cc, hw);
        let sum_g: f64 = (0..m).map(|j| g(idx(j))).sum();
        let sum_gx: f64 = (0..m).map(|j| g(idx(j)) * xhat(idx(j))).sum();
        for j in 0..m {
            let e = idx(j);
            dx[e] = gamma[c] * invstd[c] / m as f64 * (m as f64 * g(e) - sum_g - xhat(e) * sum_gx);
        }
        dgamma[c] = sum_gx;
        dbeta[c] = sum_g;
    }
    (dx, dgamma, dbeta)
}

pub fn f64s(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

pub fn f32s(v: &[f64]) -> Vec<f32> {
    v.iter().map(|&x| x as f32).collect()
}

/// f32 wrapper of `forward_train_f64`.
#[allow(clippy::too_many_arguments)]
pub fn forward_train(
    x: &[f32],
    shape: &[usize],
    gamma: &[f32],
    beta: &[f32],
    running_mean: &[f32],
    running_var: &[f32],
    relu: bool,
    momentum: f32,
    eps: f32,
) -> BnTrain<f32> {
    let o = forward_train_f64(
        &f64s(x),
        shape,
        &f64s(gamma),
        &f64s(beta),
        &f64s(running_mean),
        &f64s(running_var),
        relu,
        momentum as f64,
        eps as f64,
    );
    BnTrain {
        y: f32s(&o.y),
        mean: f32s(&o.mean),
        var_biased: f32s(&o.var_biased),
        var_unbiased: f32s(&o.var_unbiased),
        invstd: f32s(&o.invstd),
        running_mean: f32s(&o.running_mean),
        running_var: f32s(&o.running_var),
    }
}

/// f32 wrapper of `forward_eval_f64`.
#[allow(clippy::too_many_arguments)]
pub fn forward_eval(
    x: &[f32],
    shape: &[usize],
    gamma: &[f32],
    beta: &[f32],
    running_mean: &[f32],
    running_var: &[f32],
    relu: bool,
    eps: f32,
) -> Vec<f32> {
    f32s(&forward_eval_f64(
        &f64s(x),
        shape,
        &f64s(gamma),
        &f64s(beta),
        &f64s(running_mean),
        &f64s(running_var),
        relu,
        eps as f64,
    ))
}

/// f32 wrapper of `backward_f64`: (dx, dgamma, dbeta).
#[allow(clippy::too_many_arguments)]
pub fn backward(
    x: &[f32],
    y: &[f32],
    dy: &[f32],
    shape: &[usize],
    gamma: &[f32],
    mean: &[f32],
    invstd: &[f32],
    relu: bool,
) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let (dx, dg, db) = backward_f64(
        &f64s(x),
        &f64s(y),
        &f64s(dy),
        shape,
        &f64s(gamma),
        &f64s(mean),
        &f64s(invstd),
        relu,
    );
    (f32s(&dx), f32s(&dg), f32s(&db))
}
