//! The whole model's forward pass on the CPU in f64, interpreting the same `Graph` the GPU
//! runs: the reference for finite-difference checks of the GPU backward.

use crate::nn::graph::{Graph, Op};

/// Activations of every graph node for `input` (batch `n`), BN in training mode.
pub fn forward_f64(g: &Graph, params: &[Vec<f64>], input: &[f64], n: usize) -> Vec<Vec<f64>> {
    let mut acts: Vec<Vec<f64>> = vec![Vec::new(); g.acts.len()];
    acts[0] = input.to_vec();
    let shape = |a: usize| [&[n][..], &g.acts[a][..]].concat();
    for op in &g.ops {
        let y = match *op {
            Op::Conv { w, geom, x, .. } => {
                let s = shape(x);
                let ws = &g.params[w].shape;
                let c = super::conv2d::Conv {
                    n,
                    c: s[1],
                    h: s[2],
                    w: s[3],
                    o: ws[0],
                    kh: ws[2],
                    kw: ws[3],
                    stride: geom.stride,
                    pad: geom.pad,
                };
                super::conv2d::forward_f64(&c, &acts[x], &params[w])
            }
            Op::BatchNorm {
                gamma, beta, x, relu, ..
            } => {
                let s = shape(x);
                let c = s[1];
                let (rm, rv) = (vec![0.0; c], vec![1.0; c]);
                super::batchnorm::forward_train_f64(
                    &acts[x],
                    &s,
                    &params[gamma],
                    &params[beta],
                    &rm,
                    &rv,
                    relu,
                    0.1,
                    1e-5,
                )
                .y
            }
            Op::Add { a, b, relu, .. } => acts[a]
                .iter()
                .zip(&acts[b])
                .map(|(p, q)| if relu { (p + q).max(0.0) } else { p + q })
                .collect(),
            Op::MaxPool { x, .. } => super::pool::maxpool_forward::<f64>(&acts[x], &shape(x)).0,
            Op::AvgPool { x, .. } => super::pool::global_avgpool_forward_f64(&acts[x], &shape(x)),
            Op::Linear { w, b, x, .. } => {
                let (out, inp) = (g.params[w].shape[0], g.params[w].shape[1]);
                super::matmul::linear_forward_f64(&acts[x], &params[w], b.map(|b| &params[b][..]), n, inp, out, false)
            }
        };
        acts[op.output()] = y;
    }
    acts
}
