mod common;
use common::*;
use simclr_wgpu::gpu::Tensor;
use simclr_wgpu::loss::CrossEntropy;
use simclr_wgpu::reference::cross_entropy::cross_entropy;

fn labels(v: &serde_json::Value) -> Vec<usize> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as usize)
        .collect()
}

fn f32s(v: &[f64]) -> Vec<f32> {
    v.iter().map(|&x| x as f32).collect()
}

/// GPU (loss, per_sample, dlogits, pred, accuracy).
fn gpu_ce(logits: &[f32], y: &[usize], k: usize) -> (f32, Vec<f32>, Vec<f32>, Vec<u32>, f32) {
    let g = gpu();
    let b = y.len();
    let lt = Tensor::from_f32(g, "logits", &[b, k], logits).unwrap();
    let yu: Vec<u32> = y.iter().map(|&v| v as u32).collect();
    let yt = Tensor::from_u32(g, "labels", &[b], &yu).unwrap();
    let dl = Tensor::zeros(g, "dlogits", &[b, k]).unwrap();
    let ce = CrossEntropy::new(g, &lt, &yt, &dl).unwrap();
    g.run(ce.program()).unwrap();
    (
        ce.loss.read_f32(g).unwrap()[0],
        ce.per_sample.read_f32(g).unwrap(),
        dl.read_f32(g).unwrap(),
        ce.pred.read_u32(g).unwrap(),
        ce.accuracy.read_f32(g).unwrap()[0],
    )
}

#[test]
fn reference_cases_gpu_and_cpu() {
    let Some(r) = reference("cross_entropy.json") else {
        return;
    };
    for c in r["cases"].as_array().unwrap() {
        let name = c["name"].as_str().unwrap();
        let (shape, logits) = tensor(&c["logits"]);
        let y = labels(&c["labels"]);
        let (loss, per, dl) = (
            c["loss"].as_f64().unwrap() as f32,
            data(&c["per_sample_loss"]),
            data(&c["dlogits"]),
        );
        let pred: Vec<u32> = labels(&c["pred"]).iter().map(|&v| v as u32).collect();
        let cpu = cross_entropy(&logits, &y, shape[1]);
        assert_close(&format!("{name} cpu loss"), &[cpu.loss as f32], &[loss], 1e-6, 0.0);
        assert_close(
            &format!("{name} cpu per-sample"),
            &f32s(&cpu.per_sample),
            &per,
            1e-6,
            0.0,
        );
        assert_close(&format!("{name} cpu dlogits"), &f32s(&cpu.dlogits), &dl, 1e-6, 1e-9);
        assert_eq!(
            cpu.pred.iter().map(|&v| v as u32).collect::<Vec<_>>(),
            pred,
            "{name} cpu pred"
        );
        let (gl, gp, gd, gpred, _) = gpu_ce(&logits, &y, shape[1]);
        assert_close(&format!("{name} gpu loss"), &[gl], &[loss], 1e-5, 1e-6);
        assert_close(&format!("{name} gpu per-sample"), &gp, &per, 1e-5, 1e-6);
        assert_close(&format!("{name} gpu dlogits"), &gd, &dl, 1e-5, 1e-7);
        assert_eq!(gpred, pred, "{name} gpu pred");
    }
}

/// The linear probe's head: logits from the reference, its loss, accuracy and the chain rule
/// into dweight = dlogitsᵀ·features, dbias = Σ dlogits.
#[test]
fn linear_probe_loss_and_gradients() {
    let Some(r) = reference("cross_entropy.json") else {
        return;
    };
    let lp = &r["linear_probe"];
    let (fs, feats) = tensor(&lp["features"]);
    let (ls, logits) = tensor(&lp["logits"]);
    let y = labels(&lp["labels"]);
    let (b, d, k) = (fs[0], fs[1], ls[1]);
    let cpu = cross_entropy(&logits, &y, k);
    assert_close(
        "probe loss",
        &[cpu.loss as f32],
        &[lp["loss"].as_f64().unwrap() as f32],
        1e-6,
        0.0,
    );
    let acc = lp["accuracy"].as_f64().unwrap() as f32;
    assert_close("probe accuracy", &[cpu.accuracy as f32], &[acc], 1e-6, 0.0);
    let mut dw = vec![0.0f64; k * d];
    let mut db = vec![0.0f64; k];
    for r in 0..b {
        for c in 0..k {
            db[c] += cpu.dlogits[r * k + c];
            for i in 0..d {
                dw[c * d + i] += cpu.dlogits[r * k + c] * feats[r * d + i] as f64;
            }
        }
    }
    assert_close("probe dweight", &f32s(&dw), &data(&lp["dweight"]), 1e-5, 1e-7);
    assert_close("probe dbias", &f32s(&db), &data(&lp["dbias"]), 1e-5, 1e-7);
    let (gl, _, _, _, ga) = gpu_ce(&logits, &y, k);
    assert_close(
        "probe gpu loss",
        &[gl],
        &[lp["loss"].as_f64().unwrap() as f32],
        1e-5,
        0.0,
    );
    assert_close("probe gpu accuracy", &[ga], &[acc], 1e-6, 0.0);
}

#[test]
fn gpu_matches_cpu_on_random_odd_shapes() {
    let mut rng = Rng::new(4);
    for (b, k, scale) in [(1, 1, 1.0), (7, 9, 3.0), (300, 10, 50.0), (65, 1000, 1000.0)] {
        let logits: Vec<f32> = rng.vec(b * k).iter().map(|v| v * scale).collect();
        let y: Vec<usize> = (0..b).map(|_| rng.range(0, k - 1)).collect();
        let cpu = cross_entropy(&logits, &y, k);
        let (gl, gp, gd, gpred, ga) = gpu_ce(&logits, &y, k);
        let what = format!("B={b} K={k}");
        assert_close(&format!("{what} loss"), &[gl], &[cpu.loss as f32], 1e-5, 1e-6);
        assert_close(&format!("{what} per-sample"), &gp, &f32s(&cpu.per_sample), 1e-5, 1e-5);
        assert_close(&format!("{what} dlogits"), &gd, &f32s(&cpu.dlogits), 1e-4, 1e-7);
        assert_eq!(
            gpred.iter().map(|&v| v as usize).collect::<Vec<_>>(),
            cpu.pred,
            "{what} pred"
        );
        assert_close(&format!("{what} accuracy"), &[ga], &[cpu.accuracy as f32], 0.0, 1e-6);
    }
}

#[test]
fn shape_errors_name_both_shapes() {
    let g = gpu();
    let l = Tensor::zeros(g, "probe.logits", &[4, 10]).unwrap();
    let y = Tensor::zeros(g, "probe.labels", &[5]).unwrap();
    let e = CrossEntropy::new(g, &l, &y, &l).err().unwrap().to_string();
    assert!(e.contains("[4, 10]") && e.contains("[5]"), "{e}");
}
