mod common;
use common::*;
use serde_json::Value;
use simclr_wgpu::gpu::{Gpu, KernelFlavor, Tensor};
use simclr_wgpu::loss::NtXent;
use simclr_wgpu::reference::ntxent::{self as cpu, NtXentOut};

type GpuOut = (f32, Vec<f32>, Vec<f32>, f32);

fn run_flavor(g: &Gpu, flavor: KernelFlavor, z: &[f32], rows: usize, d: usize, views: usize, tau: f32) -> GpuOut {
    let zt = Tensor::from_f32(g, "z", &[rows, d], z).unwrap();
    let dz = Tensor::zeros(g, "dz", &[rows, d]).unwrap();
    let l = NtXent::with_flavor(g, flavor, &zt, &dz, views, tau).unwrap();
    g.run(l.program()).unwrap();
    (
        l.loss.read_f32(g).unwrap()[0],
        l.per_anchor.read_f32(g).unwrap(),
        dz.read_f32(g).unwrap(),
        l.accuracy.read_f32(g).unwrap()[0],
    )
}

/// GPU results (loss, per_anchor, grad, accuracy) of the Rows flavour, after checking that
/// the Tiled flavour (other workgroup size and padding) gives the same within rounding.
fn gpu_ntxent(g: &Gpu, z: &[f32], rows: usize, d: usize, views: usize, tau: f32) -> GpuOut {
    let a = run_flavor(g, KernelFlavor::Rows, z, rows, d, views, tau);
    let b = run_flavor(g, KernelFlavor::Tiled, z, rows, d, views, tau);
    check("tiled vs rows loss", &[b.0], &[a.0], 1e-6);
    check("tiled vs rows per-anchor", &b.1, &a.1, 1e-6);
    check("tiled vs rows grad", &b.2, &a.2, 1e-6);
    assert_eq!(a.3, b.3, "tiled vs rows accuracy");
    a
}

fn f32s(v: &[f64]) -> Vec<f32> {
    v.iter().map(|&x| x as f32).collect()
}

fn max_abs(v: &[f32]) -> f32 {
    v.iter().fold(0.0, |m, x| m.max(x.abs()))
}

/// Compare with tolerances scaled by the size of the wanted values.
#[track_caller]
fn check(what: &str, got: &[f32], want: &[f32], rel: f32) {
    assert_close(what, got, want, rel, rel * max_abs(want).max(1e-30));
}

#[track_caller]
fn check_cpu(what: &str, c: &NtXentOut, loss: f32, per_anchor: &[f32], grad: &[f32], acc: f32) {
    check(&format!("{what} cpu loss"), &[c.loss as f32], &[loss], 1e-5);
    check(
        &format!("{what} cpu per-anchor"),
        &f32s(&c.per_anchor),
        per_anchor,
        1e-5,
    );
    check(&format!("{what} cpu grad"), &f32s(&c.grad), grad, 1e-5);
    assert_eq!(c.accuracy as f32, acc, "{what} cpu accuracy");
}

#[test]
fn reference_cases_both_layouts_gpu_and_cpu() {
    let g = gpu();
    let Some(r) = reference("ntxent.json") else { return };
    let cases = r["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 8);
    for c in cases {
        let name = c["name"].as_str().unwrap();
        let (n, tau) = (c["N"].as_u64().unwrap() as usize, c["tau"].as_f64().unwrap());
        let (shape, z) = tensor(&c["z"]);
        let d = shape[1];
        let (loss, per_anchor, grad) = (
            c["loss"].as_f64().unwrap() as f32,
            data(&c["per_anchor_loss"]),
            data(&c["grad_z"]),
        );
        let acc = c["top1_positive_retrieval_acc"].as_f64().unwrap() as f32;

        // Halves layout = the kernel's grouped layout.
        check_cpu(name, &cpu::ntxent(&z, d, 2, tau), loss, &per_anchor, &grad, acc);
        let (gl, gp, gg, ga) = gpu_ntxent(g, &z, 2 * n, d, 2, tau as f32);
        check(&format!("{name} gpu loss"), &[gl], &[loss], 1e-4);
        check(&format!("{name} gpu per-anchor"), &gp, &per_anchor, 1e-4);
        check(&format!("{name} gpu grad"), &gg, &grad, 2e-4);
        assert_eq!(ga, acc, "{name} gpu accuracy");

        // Interleaved layout: the CPU reference takes it directly; the GPU gets its rows
        // permuted into the grouped layout and its results permuted back.
        let il: &Value = &c["interleaved"];
        let zi = data(&il["z"]);
        let perm: Vec<usize> = il["perm_from_halves"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_u64().unwrap() as usize)
            .collect();
        let (li, pi, gi) = (
            il["loss"].as_f64().unwrap() as f32,
            data(&il["per_anchor_loss"]),
            data(&il["grad_z"]),
        );
        let ai = il["top1_positive_retrieval_acc"].as_f64().unwrap() as f32;
        let z64: Vec<f64> = zi.iter().map(|&v| v as f64).collect();
        let ci = cpu::ntxent_groups(&z64, d, &cpu::interleaved_layout(2 * n, 2), tau);
        check_cpu(&format!("{name} interleaved"), &ci, li, &pi, &gi, ai);
        let mut zh = vec![0.0; zi.len()];
        for (k, &h) in perm.iter().enumerate() {
            zh[h * d..(h + 1) * d].copy_from_slice(&zi[k * d..(k + 1) * d]);
        }
        let (gl, gp, gg, ga) = gpu_ntxent(g, &zh, 2 * n, d, 2, tau as f32);
        let gp: Vec<f32> = perm.iter().map(|&h| gp[h]).collect();
        let gg: Vec<f32> = perm.iter().flat_map(|&h| gg[h * d..(h + 1) * d].to_vec()).collect();
        check(&format!("{name} interleaved gpu loss"), &[gl], &[li], 1e-4);
        check(&format!("{name} interleaved gpu per-anchor"), &gp, &pi, 1e-4);
        check(&format!("{name} interleaved gpu grad"), &gg, &gi, 2e-4);
        assert_eq!(ga, ai, "{name} interleaved gpu accuracy");
    }
}

/// Random embeddings with row norms spread over a few orders of magnitude.
fn embeddings(rng: &mut Rng, rows: usize, d: usize) -> Vec<f32> {
    let mut z = rng.vec(rows * d);
    for r in 0..rows {
        let s = 10f32.powf(2.0 * rng.uniform());
        z[r * d..(r + 1) * d].iter_mut().for_each(|v| *v *= s);
    }
    z
}

#[test]
fn v_views_gpu_matches_cpu_on_odd_sizes() {
    let g = gpu();
    let mut rng = Rng::new(11);
    for (views, n, d, tau) in [
        (2, 7, 9, 0.3),
        (3, 5, 7, 0.1),
        (4, 9, 33, 0.5),
        (3, 1, 4, 0.2),
        (5, 13, 16, 0.07),
    ] {
        let rows = views * n;
        let z = embeddings(&mut rng, rows, d);
        let c = cpu::ntxent(&z, d, views, tau);
        let (gl, gp, gg, ga) = gpu_ntxent(g, &z, rows, d, views, tau as f32);
        let what = format!("V={views} N={n} d={d}");
        check(&format!("{what} loss"), &[gl], &[c.loss as f32], 1e-4);
        check(&format!("{what} per-anchor"), &gp, &f32s(&c.per_anchor), 1e-4);
        check(&format!("{what} grad"), &gg, &f32s(&c.grad), 2e-4);
        // A count over rows: equal up to the rounding of the final division.
        assert!(
            (ga - c.accuracy as f32).abs() <= 1e-6,
            "{what} accuracy: {ga} vs {}",
            c.accuracy
        );
    }
}

/// The V-view loss written out independently: mean over anchors of the mean over positives
/// of the two-view NT-Xent term; for V = 2 it is NT-Xent itself.
#[test]
fn v_view_cpu_reference_matches_the_formula() {
    let mut rng = Rng::new(5);
    for views in [2, 3, 4] {
        let (n, d, tau) = (3, 5, 0.25);
        let rows = views * n;
        let z = embeddings(&mut rng, rows, d);
        let zn: Vec<Vec<f64>> = (0..rows)
            .map(|i| {
                let r: Vec<f64> = z[i * d..(i + 1) * d].iter().map(|&v| v as f64).collect();
                let nrm = r.iter().map(|v| v * v).sum::<f64>().sqrt();
                r.iter().map(|v| v / nrm).collect()
            })
            .collect();
        let s = |i: usize, j: usize| zn[i].iter().zip(&zn[j]).map(|(a, b)| a * b).sum::<f64>() / tau;
        let mut total = 0.0;
        for i in 0..rows {
            let lse = (0..rows).filter(|&j| j != i).map(|j| s(i, j).exp()).sum::<f64>().ln();
            let positives: Vec<usize> = (1..views).map(|v| (i + v * n) % rows).collect();
            total += positives.iter().map(|&p| lse - s(i, p)).sum::<f64>() / positives.len() as f64;
        }
        let got = cpu::ntxent(&z, d, views, tau).loss;
        assert!(
            (got - total / rows as f64).abs() < 1e-12,
            "V={views}: {got} vs {}",
            total / rows as f64
        );
    }
}

#[test]
fn larger_batch_not_a_multiple_of_the_tile() {
    let g = gpu();
    let mut rng = Rng::new(7);
    let (n, d) = (300, 128);
    let z = embeddings(&mut rng, 2 * n, d);
    let c = cpu::ntxent(&z, d, 2, 0.1);
    let (gl, gp, gg, ga) = gpu_ntxent(g, &z, 2 * n, d, 2, 0.1);
    check("N=300 loss", &[gl], &[c.loss as f32], 1e-4);
    check("N=300 per-anchor", &gp, &f32s(&c.per_anchor), 1e-4);
    check("N=300 grad", &gg, &f32s(&c.grad), 5e-4);
    assert!(
        (ga - c.accuracy as f32).abs() < 1e-6,
        "N=300 accuracy {ga} vs {}",
        c.accuracy
    );
}

#[test]
fn cpu_gradient_matches_finite_differences() {
    let mut rng = Rng::new(9);
    for (views, n, d, tau) in [(2, 3, 4, 0.5), (3, 2, 5, 0.1)] {
        let rows = views * n;
        let z: Vec<f64> = embeddings(&mut rng, rows, d).iter().map(|&v| v as f64).collect();
        let groups = cpu::grouped_layout(rows, views);
        let grad = cpu::ntxent_groups(&z, d, &groups, tau).grad;
        for k in 0..z.len() {
            let h = 1e-6 * z[k].abs().max(1e-3);
            let (mut zp, mut zm) = (z.clone(), z.clone());
            zp[k] += h;
            zm[k] -= h;
            let fd = (cpu::ntxent_groups(&zp, d, &groups, tau).loss - cpu::ntxent_groups(&zm, d, &groups, tau).loss)
                / (2.0 * h);
            let scale = grad.iter().fold(0f64, |m, x| m.max(x.abs()));
            assert!(
                (fd - grad[k]).abs() <= 1e-6 * scale + 1e-5 * fd.abs(),
                "V={views} dz[{k}]: fd {fd} vs {}",
                grad[k]
            );
        }
    }
}

#[test]
fn one_image_gives_zero_loss_and_gradient() {
    let g = gpu();
    let z = [0.3f32, -1.2, 0.7, 2.0, 0.1, -0.4];
    let (gl, gp, gg, ga) = gpu_ntxent(g, &z, 2, 3, 2, 0.1);
    assert_eq!(gl, 0.0);
    assert_eq!(gp, vec![0.0, 0.0]);
    assert_eq!(gg, vec![0.0; 6]);
    assert_eq!(ga, 1.0);
    let c = cpu::ntxent(&z, 3, 2, 0.1);
    assert!(c.loss.abs() < 1e-15 && c.grad.iter().all(|v| v.abs() < 1e-12), "{c:?}");
}

#[test]
fn zero_row_and_tiny_tau_stay_finite() {
    let g = gpu();
    let mut rng = Rng::new(13);
    let (n, d) = (6, 8);
    let mut z = embeddings(&mut rng, 2 * n, d);
    z[3 * d..4 * d].iter_mut().for_each(|v| *v = 0.0);
    for tau in [0.5, 0.01, 0.005] {
        let c = cpu::ntxent(&z, d, 2, tau);
        let (gl, gp, gg, _) = gpu_ntxent(g, &z, 2 * n, d, 2, tau as f32);
        assert!(
            gl.is_finite() && gp.iter().chain(&gg).all(|v| v.is_finite()),
            "tau {tau}"
        );
        check(&format!("zero row tau {tau} loss"), &[gl], &[c.loss as f32], 1e-4);
        check(
            &format!("zero row tau {tau} per-anchor"),
            &gp,
            &f32s(&c.per_anchor),
            1e-4,
        );
        // The zero row's gradient is g/1e-12 (F.normalize's floor): compare rows separately.
        for r in 0..2 * n {
            let (a, b) = (r * d, (r + 1) * d);
            check(
                &format!("zero row tau {tau} grad row {r}"),
                &gg[a..b],
                &f32s(&c.grad[a..b]),
                1e-3,
            );
        }
    }
}

#[test]
fn replaying_the_program_gives_the_same_results() {
    let g = gpu();
    let mut rng = Rng::new(17);
    let z = embeddings(&mut rng, 40, 12);
    let zt = Tensor::from_f32(g, "z", &[40, 12], &z).unwrap();
    let dz = Tensor::zeros(g, "dz", &[40, 12]).unwrap();
    let l = NtXent::new(g, &zt, &dz, 4, 0.2).unwrap();
    g.run(l.program()).unwrap();
    let first = (l.loss.read_f32(g).unwrap(), dz.read_f32(g).unwrap());
    g.run(l.program()).unwrap();
    g.run(l.program()).unwrap();
    assert_eq!(first, (l.loss.read_f32(g).unwrap(), dz.read_f32(g).unwrap()));
}

#[test]
fn invalid_inputs_are_clear_errors() {
    let g = gpu();
    let z = Tensor::zeros(g, "proj.out", &[6, 4]).unwrap();
    let dz = Tensor::zeros(g, "proj.grad", &[6, 4]).unwrap();
    let err = |r: Result<NtXent, simclr_wgpu::gpu::GpuError>| r.err().expect("must fail").to_string();
    assert!(err(NtXent::new(g, &z, &dz, 1, 0.1)).contains("at least 2 views"));
    assert!(err(NtXent::new(g, &z, &dz, 4, 0.1)).contains("not a multiple of 4 views"));
    assert!(err(NtXent::new(g, &z, &dz, 2, 0.0)).contains("temperature"));
    assert!(err(NtXent::new(g, &z, &dz, 2, f32::NAN)).contains("temperature"));
    let bad = Tensor::zeros(g, "proj.grad", &[6, 5]).unwrap();
    let e = err(NtXent::new(g, &z, &bad, 2, 0.1));
    assert!(e.contains("[6, 4]") && e.contains("[6, 5]"), "{e}");
}

#[test]
#[ignore = "benchmark: run with --ignored --nocapture"]
fn bench_loss_prints_times() {
    for (name, secs) in simclr_wgpu::bench::loss::bench_loss(gpu()).unwrap() {
        println!("{name}: {:.2} ms", secs * 1e3);
    }
}
