//! Weighted kNN classifier on L2-normalised features (the SimCLR/InstDisc monitor): cosine
//! similarity on the GPU in blocks, top-k and the exp(s/T)-weighted vote on the host.

use crate::gpu::{Gpu, Program, Tensor};
use crate::nn::matmul::matmul;
use anyhow::Result;

#[derive(Clone, Debug, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct KnnResult {
    pub top1: f64,
    pub top5: f64,
    pub k: usize,
    pub t: f32,
    pub n_train: usize,
    pub n_test: usize,
}

/// Row-wise L2 normalisation in place (rows of width `d`).
pub fn l2_normalize_rows(x: &mut [f32], d: usize) {
    for row in x.chunks_exact_mut(d) {
        let n = row.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
        row.iter_mut().for_each(|v| *v /= n);
    }
}

/// Class votes of one query from its neighbours' (similarity, label).
pub fn vote(neigh: &[(f32, u32)], num_classes: usize, t: f32) -> Vec<f64> {
    let mut votes = vec![0f64; num_classes];
    for &(s, l) in neigh {
        votes[l as usize] += ((s / t) as f64).exp();
    }
    votes
}

/// Classes ordered by decreasing vote (ties: lower class first).
pub fn ranking(votes: &[f64]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..votes.len()).collect();
    idx.sort_by(|&a, &b| votes[b].total_cmp(&votes[a]).then(a.cmp(&b)));
    idx
}

/// The `k` largest (similarity, index) pairs of `sims`, sorted descending.
pub fn top_k(sims: &[f32], k: usize) -> Vec<(f32, usize)> {
    best_k(sims.iter().copied().enumerate().map(|(i, s)| (s, i)).collect(), k)
}

/// The `k` pairs of `v` with the largest similarity, sorted descending (ties: lower index).
fn best_k(mut v: Vec<(f32, usize)>, k: usize) -> Vec<(f32, usize)> {
    let k = k.min(v.len());
    if k == 0 {
        return Vec::new();
    }
    v.select_nth_unstable_by(k - 1, |a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    v.truncate(k);
    v.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    v
}

/// For each row of `queries`, its `k` most cosine-similar rows of `bank` as (similarity, bank
/// index), sorted descending (ties: lower index). Rows have width `d` and are L2-normalised
/// here; similarities are computed on the GPU in blocks that fit the binding limit.
pub fn nearest(gpu: &Gpu, bank: &[f32], queries: &[f32], d: usize, k: usize) -> Result<Vec<Vec<(f32, usize)>>> {
    anyhow::ensure!(
        d > 0 && bank.len() % d == 0 && queries.len() % d == 0,
        "nearest neighbours: feature lengths are not multiples of the width {d}"
    );
    let (n_bank, n_q) = (bank.len() / d, queries.len() / d);
    anyhow::ensure!(n_bank > 0, "nearest neighbours need at least one bank row");
    let (mut bank, mut queries) = (bank.to_vec(), queries.to_vec());
    l2_normalize_rows(&mut bank, d);
    l2_normalize_rows(&mut queries, d);
    // Blocks sized to stay well inside the storage-binding limit.
    let limit = (gpu.limits.max_storage_buffer_binding_size / 4) as usize;
    let bank_chunk = n_bank.min((limit / 2 / d).max(1));
    let q_block = n_q.clamp(1, ((limit / 2) / bank_chunk).clamp(1, 1024));
    let k_eff = k.min(n_bank);
    let q_t = Tensor::zeros(gpu, "knn.query_block", &[q_block, d])?;
    let mut chunks = Vec::new();
    for start in (0..n_bank).step_by(bank_chunk) {
        let rows = bank_chunk.min(n_bank - start);
        let t_bank = Tensor::from_f32(gpu, "knn.bank_chunk", &[rows, d], &bank[start * d..(start + rows) * d])?;
        let sims = Tensor::zeros(gpu, "knn.similarity", &[q_block, rows])?;
        let prog: Program = matmul(gpu, &q_t, &t_bank, &sims, false, true)?;
        chunks.push((start, rows, sims, prog, t_bank));
    }
    let mut out = Vec::with_capacity(n_q);
    for qstart in (0..n_q).step_by(q_block) {
        let qrows = q_block.min(n_q - qstart);
        let mut block = vec![0f32; q_block * d];
        block[..qrows * d].copy_from_slice(&queries[qstart * d..(qstart + qrows) * d]);
        q_t.write_f32(gpu, &block);
        let mut best: Vec<Vec<(f32, usize)>> = vec![Vec::new(); qrows];
        for (start, rows, sims, prog, _) in &chunks {
            gpu.run(prog)?;
            let s = sims.read_f32(gpu)?;
            for (r, b) in best.iter_mut().enumerate() {
                b.extend(
                    top_k(&s[r * rows..(r + 1) * rows], k_eff)
                        .into_iter()
                        .map(|(v, i)| (v, i + start)),
                );
                if chunks.len() > 1 {
                    *b = best_k(std::mem::take(b), k_eff);
                }
            }
        }
        out.extend(best);
    }
    Ok(out)
}

/// Weighted-vote scores (n_test × classes) of every test row against the labelled train rows.
#[allow(clippy::too_many_arguments)]
pub fn knn_votes(
    gpu: &Gpu,
    train: &[f32],
    train_labels: &[u32],
    test: &[f32],
    d: usize,
    num_classes: usize,
    k: usize,
    t: f32,
) -> Result<Vec<Vec<f64>>> {
    anyhow::ensure!(
        train.len() == train_labels.len() * d,
        "kNN: {} train features of width {d} but {} labels",
        train.len() / d.max(1),
        train_labels.len()
    );
    if let Some(&bad) = train_labels.iter().find(|&&l| l as usize >= num_classes) {
        anyhow::bail!("kNN: label {bad} is not below the class count {num_classes}");
    }
    Ok(nearest(gpu, train, test, d, k)?
        .iter()
        .map(|b| {
            let neigh: Vec<(f32, u32)> = b.iter().map(|&(s, i)| (s, train_labels[i])).collect();
            vote(&neigh, num_classes, t)
        })
        .collect())
}

/// kNN top-1/top-5 of `test` against `train` (rows of width `d`; L2-normalised here).
#[allow(clippy::too_many_arguments)]
pub fn knn_eval(
    gpu: &Gpu,
    train: &[f32],
    train_labels: &[u32],
    test: &[f32],
    test_labels: &[u32],
    d: usize,
    num_classes: usize,
    k: usize,
    t: f32,
) -> Result<KnnResult> {
    let (n_train, n_test) = (train_labels.len(), test_labels.len());
    anyhow::ensure!(
        train.len() == n_train * d && test.len() == n_test * d,
        "kNN: feature/label counts differ"
    );
    anyhow::ensure!(
        n_train > 0 && n_test > 0,
        "kNN needs at least one train and one test image"
    );
    let votes = knn_votes(gpu, train, train_labels, test, d, num_classes, k, t)?;
    let (mut c1, mut c5) = (0usize, 0usize);
    for (v, &label) in votes.iter().zip(test_labels) {
        let rank = ranking(v);
        c1 += (rank[0] == label as usize) as usize;
        c5 += rank.iter().take(5).any(|&c| c == label as usize) as usize;
    }
    Ok(KnnResult {
        top1: c1 as f64 / n_test as f64,
        top5: c5 as f64 / n_test as f64,
        k: k.min(n_train),
        t,
        n_train,
        n_test,
    })
}
