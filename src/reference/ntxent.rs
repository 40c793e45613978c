//! NT-Xent (SimCLR's normalised temperature-scaled cross-entropy) and its V-view generalisation,
//! written directly from the formula in f64.
//!
//! Rows sharing a group id are views of the same image (positives of each other):
//! ẑ = z / max(‖z‖, 1e-12), s = ẑ ẑᵀ, and for each anchor i with positives P(i)
//! ℓᵢ = mean_{p∈P(i)} (−s_ip/τ) + log Σ_{j≠i} exp(s_ij/τ); loss = mean_i ℓᵢ.
//! For two views this is exactly NT-Xent.

/// Everything the GPU kernel produces, in f64.
#[derive(Clone, Debug)]
pub struct NtXentOut {
    pub loss: f64,
    pub per_anchor: Vec<f64>,
    /// dloss/dz, row-major like z.
    pub grad: Vec<f64>,
    /// Fraction of anchors whose most similar other row (first on ties) is a positive.
    pub accuracy: f64,
}

const NORM_FLOOR: f64 = 1e-12;

/// Group ids for the grouped-by-view layout: row v·N + i is view v of image i.
pub fn grouped_layout(rows: usize, views: usize) -> Vec<usize> {
    let n = rows / views;
    (0..rows).map(|r| r % n).collect()
}

/// Group ids for the interleaved layout: rows V·k .. V·k + V − 1 are the views of image k.
pub fn interleaved_layout(rows: usize, views: usize) -> Vec<usize> {
    (0..rows).map(|r| r / views).collect()
}

/// NT-Xent over f32 embeddings `z` ([groups.len(), d], row-major) in the grouped layout.
pub fn ntxent(z: &[f32], d: usize, views: usize, tau: f64) -> NtXentOut {
    let z: Vec<f64> = z.iter().map(|&v| v as f64).collect();
    ntxent_groups(&z, d, &grouped_layout(z.len() / d, views), tau)
}

/// NT-Xent with positives given by `groups` (rows with equal ids are positives; every row
/// needs at least one positive).
pub fn ntxent_groups(z: &[f64], d: usize, groups: &[usize], tau: f64) -> NtXentOut {
    let m = groups.len();
    assert_eq!(z.len(), m * d, "z must be [rows, d]");
    let a = 1.0 / tau;
    let norms: Vec<f64> = (0..m)
        .map(|i| z[i * d..(i + 1) * d].iter().map(|v| v * v).sum::<f64>().sqrt())
        .collect();
    let zn: Vec<f64> = (0..m * d).map(|k| z[k] / norms[k / d].max(NORM_FLOOR)).collect();
    let row = |i: usize| &zn[i * d..(i + 1) * d];
    let sim: Vec<f64> = (0..m * m)
        .map(|k| row(k / m).iter().zip(row(k % m)).map(|(x, y)| x * y).sum())
        .collect();
    let is_pos = |i: usize, j: usize| i != j && groups[i] == groups[j];
    let npos: Vec<usize> = (0..m).map(|i| (0..m).filter(|&j| is_pos(i, j)).count()).collect();

    // Log-sum-exp over j ≠ i with the row maximum subtracted, and the softmax P.
    let mut lse = vec![0.0; m];
    let mut per_anchor = vec![0.0; m];
    let mut hits = 0usize;
    for i in 0..m {
        let logits = (0..m).filter(|&j| j != i).map(|j| a * sim[i * m + j]);
        let mx = logits.clone().fold(f64::NEG_INFINITY, f64::max);
        lse[i] = mx + logits.map(|x| (x - mx).exp()).sum::<f64>().ln();
        let pos: f64 = (0..m).filter(|&j| is_pos(i, j)).map(|j| a * sim[i * m + j]).sum();
        per_anchor[i] = lse[i] - pos / npos[i] as f64;
        // First maximum over j ≠ i (torch.argmax keeps the first on ties).
        let mut best = None::<(usize, f64)>;
        for j in (0..m).filter(|&j| j != i) {
            if best.is_none_or(|(_, b)| sim[i * m + j] > b) {
                best = Some((j, sim[i * m + j]));
            }
        }
        if best.is_some_and(|(j, _)| is_pos(i, j)) {
            hits += 1;
        }
    }
    let loss = per_anchor.iter().sum::<f64>() / m as f64;

    // dL/ds_ij = (a/M)(P_ij − Y_ij) with Y_ij = [j ∈ P(i)]/|P(i)|; s is symmetric in ẑ, so
    // dL/dẑ_k = Σ_j (dL/ds_kj + dL/ds_jk) ẑ_j.
    let ds = |i: usize, j: usize| {
        if i == j {
            return 0.0;
        }
        let p = (a * sim[i * m + j] - lse[i]).exp();
        let y = if is_pos(i, j) { 1.0 / npos[i] as f64 } else { 0.0 };
        a / m as f64 * (p - y)
    };
    let mut gzn = vec![0.0; m * d];
    for k in 0..m {
        for j in 0..m {
            let w = ds(k, j) + ds(j, k);
            for c in 0..d {
                gzn[k * d + c] += w * zn[j * d + c];
            }
        }
    }
    // Through ẑ = z / max(‖z‖, ε): (g − ẑ(ẑ·g))/‖z‖ above the floor, g/ε below it.
    let mut grad = vec![0.0; m * d];
    for k in 0..m {
        let (g, zk) = (&gzn[k * d..(k + 1) * d], row(k));
        if norms[k] > NORM_FLOOR {
            let dot: f64 = g.iter().zip(zk).map(|(x, y)| x * y).sum();
            for c in 0..d {
                grad[k * d + c] = (g[c] - zk[c] * dot) / norms[k];
            }
        } else {
            for c in 0..d {
                grad[k * d + c] = g[c] / NORM_FLOOR;
            }
        }
    }
    NtXentOut {
        loss,
        per_anchor,
        grad,
        accuracy: hits as f64 / m as f64,
    }
}
