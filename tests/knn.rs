//! The kNN monitor (GPU similarities, host top-k and vote) against `knn.json` (PyTorch).
mod common;
use common::*;
use simclr_wgpu::eval::knn::{knn_eval, knn_votes, nearest};

fn u32s(v: &serde_json::Value) -> Vec<u32> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as u32)
        .collect()
}

#[test]
fn knn_matches_reference() {
    let Some(r) = reference("knn.json") else { return };
    let g = gpu();
    for case in r["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let c = case["num_classes"].as_u64().unwrap() as usize;
        let (tshape, train) = tensor(&case["train_features"]);
        let test = data(&case["test_features"]);
        let (ytr, yte) = (u32s(&case["train_labels"]), u32s(&case["test_labels"]));
        let d = tshape[1];
        for res in case["results"].as_array().unwrap() {
            let k = res["k"].as_u64().unwrap() as usize;
            let t = res["T"].as_f64().unwrap() as f32;
            let what = format!("{name} k={k}");
            let votes = knn_votes(g, &train, &ytr, &test, d, c, k, t).unwrap();
            let flat: Vec<f32> = votes.iter().flatten().map(|&v| v as f32).collect();
            assert_close(&format!("{what} votes"), &flat, &data(&res["votes"]), 1e-4, 1e-3);
            let pred: Vec<u32> = votes
                .iter()
                .map(|v| simclr_wgpu::eval::knn::ranking(v)[0] as u32)
                .collect();
            assert_eq!(pred, u32s(&res["pred"]), "{what} predictions");
            let acc = knn_eval(g, &train, &ytr, &test, &yte, d, c, k, t).unwrap();
            assert!(
                (acc.top1 - res["accuracy"].as_f64().unwrap()).abs() < 1e-9,
                "{what} accuracy"
            );
            assert_eq!(
                acc.k,
                res["k_effective"].as_u64().unwrap() as usize,
                "{what} k_effective"
            );
            if let Some(idx) = res.get("neighbour_indices") {
                let nn = nearest(g, &train, &test, d, k).unwrap();
                let got_idx: Vec<f32> = nn.iter().flatten().map(|&(_, i)| i as f32).collect();
                let got_sim: Vec<f32> = nn.iter().flatten().map(|&(s, _)| s).collect();
                assert_eq!(got_idx, data(idx), "{what} neighbour indices");
                assert_close(
                    &format!("{what} sims"),
                    &got_sim,
                    &data(&res["neighbour_sims"]),
                    0.0,
                    2e-6,
                );
            }
        }
    }
}

#[test]
fn nearest_of_a_bank_row_is_itself_with_similarity_one() {
    let g = gpu();
    let mut rng = Rng::new(7);
    let (n, d) = (300, 24);
    let bank = rng.vec(n * d);
    let queries: Vec<f32> = [5usize, 123, 299]
        .iter()
        .flat_map(|&i| bank[i * d..(i + 1) * d].to_vec())
        .collect();
    let nn = nearest(g, &bank, &queries, d, 4).unwrap();
    for (q, &i) in nn.iter().zip(&[5usize, 123, 299]) {
        assert_eq!(q.len(), 4);
        assert_eq!(q[0].1, i);
        assert!((q[0].0 - 1.0).abs() < 1e-5, "self-similarity {}", q[0].0);
        assert!(q.windows(2).all(|w| w[0].0 >= w[1].0), "sorted descending");
    }
}

#[test]
fn labels_outside_the_class_count_are_an_error() {
    let g = gpu();
    let err = knn_votes(g, &[1.0, 0.0, 0.0, 1.0], &[0, 7], &[1.0, 0.0], 2, 4, 2, 0.1).unwrap_err();
    assert!(err.to_string().contains("label 7"), "{err}");
}
