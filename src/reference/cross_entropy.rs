//! Softmax cross-entropy, mean over the batch, in f64.

#[derive(Clone, Debug)]
pub struct CrossEntropyOut {
    pub loss: f64,
    pub per_sample: Vec<f64>,
    /// dloss/dlogits = (softmax − onehot)/B.
    pub dlogits: Vec<f64>,
    /// First arg-max of each row.
    pub pred: Vec<usize>,
    pub accuracy: f64,
}

/// `logits` is [labels.len(), k] row-major.
pub fn cross_entropy(logits: &[f32], labels: &[usize], k: usize) -> CrossEntropyOut {
    let b = labels.len();
    assert_eq!(logits.len(), b * k, "logits must be [batch, classes]");
    let mut out = CrossEntropyOut {
        loss: 0.0,
        per_sample: vec![0.0; b],
        dlogits: vec![0.0; b * k],
        pred: vec![0; b],
        accuracy: 0.0,
    };
    for r in 0..b {
        let x: Vec<f64> = logits[r * k..(r + 1) * k].iter().map(|&v| v as f64).collect();
        let mut arg = 0;
        for c in 1..k {
            if x[c] > x[arg] {
                arg = c;
            }
        }
        let mx = x[arg];
        let lse = mx + x.iter().map(|v| (v - mx).exp()).sum::<f64>().ln();
        out.per_sample[r] = lse - x[labels[r]];
        out.pred[r] = arg;
        for (c, &xc) in x.iter().enumerate() {
            let onehot = if c == labels[r] { 1.0 } else { 0.0 };
            out.dlogits[r * k + c] = ((xc - lse).exp() - onehot) / b as f64;
        }
    }
    out.loss = out.per_sample.iter().sum::<f64>() / b as f64;
    out.accuracy = (0..b).filter(|&r| out.pred[r] == labels[r]).count() as f64 / b as f64;
    out
}
