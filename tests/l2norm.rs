mod common;
use common::*;
use simclr_wgpu::gpu::{GpuError, KernelFlavor, Program, Tensor};
use simclr_wgpu::nn::l2norm;
use simclr_wgpu::reference::l2norm as cpu;

const FLAVORS: [KernelFlavor; 2] = [KernelFlavor::Tiled, KernelFlavor::Rows];

/// GPU (y, dx) for x [M, D] with upstream gradient dy, in the given kernel flavour.
fn run_gpu(flavor: KernelFlavor, m: usize, d: usize, x: &[f32], dy: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let g = gpu();
    let xt = Tensor::from_f32(g, "x", &[m, d], x).unwrap();
    let yt = Tensor::zeros(g, "y", &[m, d]).unwrap();
    let dyt = Tensor::from_f32(g, "dy", &[m, d], dy).unwrap();
    let dxt = Tensor::from_f32(g, "dx", &[m, d], &vec![7.0; x.len()]).unwrap();
    let mut p = l2norm::l2_normalize_forward_with(g, flavor, &xt, &yt).unwrap();
    p.extend(&l2norm::l2_normalize_backward_with(g, flavor, &xt, &yt, &dyt, &dxt).unwrap());
    g.run(&p).unwrap();
    (yt.read_f32(g).unwrap(), dxt.read_f32(g).unwrap())
}

/// dx is a difference of terms of size |dy|/‖x‖ per row: scale the absolute tolerance by that.
#[track_caller]
fn assert_dx_close(what: &str, got: &[f32], want: &[f32], x: &[f32], dy: &[f32], d: usize) {
    for (r, ((g, w), (xr, dr))) in got
        .chunks(d)
        .zip(want.chunks(d))
        .zip(x.chunks(d).zip(dy.chunks(d)))
        .enumerate()
    {
        let norm = xr.iter().map(|v| v * v).sum::<f32>().sqrt().max(1e-12);
        let scale = dr.iter().fold(0f32, |m, v| m.max(v.abs())) / norm;
        assert_close(&format!("{what} row {r}"), g, w, 1e-4, 1e-5 * scale);
    }
}

#[test]
fn matches_torch_normalize_in_the_ntxent_reference() {
    let Some(r) = reference("ntxent.json") else { return };
    for case in r["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let (shape, z) = tensor(&case["z"]);
        let (m, d) = (shape[0], shape[1]);
        let zn = data(&case["z_normalized"]);
        let dzn = data(&case["grad_z_normalized"]);
        let dz = data(&case["grad_z"]);
        assert_close(&format!("{name} cpu y"), &cpu::forward(&z, d), &zn, 1e-5, 1e-6);
        let cdx = cpu::backward(&z, &cpu::forward(&z, d), &dzn, d);
        assert_dx_close(&format!("{name} cpu dx"), &cdx, &dz, &z, &dzn, d);
        for flavor in FLAVORS {
            let (y, dx) = run_gpu(flavor, m, d, &z, &dzn);
            assert_close(&format!("{name} {flavor:?} y"), &y, &zn, 1e-5, 1e-6);
            assert_dx_close(&format!("{name} {flavor:?} dx"), &dx, &dz, &z, &dzn, d);
        }
    }
}

#[test]
fn gpu_matches_cpu_on_odd_shapes_zero_and_tiny_rows() {
    let mut rng = Rng::new(31);
    for (m, d) in [(1, 1), (7, 9), (3, 1000), (70, 129), (1025, 3)] {
        let mut x = rng.vec(m * d);
        let dy = rng.vec(m * d);
        // Row 0 all zeros; row 1 (when there is one) far below the floor; row 2 huge.
        x[..d].fill(0.0);
        if m > 2 {
            x[d..2 * d].iter_mut().for_each(|v| *v *= 1e-14);
            x[2 * d..3 * d].iter_mut().for_each(|v| *v *= 1e15);
        }
        let y = cpu::forward(&x, d);
        let dx = cpu::backward(&x, &y, &dy, d);
        for flavor in FLAVORS {
            let (gy, gdx) = run_gpu(flavor, m, d, &x, &dy);
            assert!(
                gy.iter().chain(&gdx).all(|v| v.is_finite()),
                "{m}x{d} {flavor:?}: non-finite"
            );
            assert!(gy[..d].iter().all(|&v| v == 0.0), "{m}x{d} {flavor:?}: zero row");
            assert_close(&format!("{m}x{d} {flavor:?} y"), &gy, &y, 1e-5, 1e-6);
            assert_dx_close(&format!("{m}x{d} {flavor:?} dx"), &gdx, &dx, &x, &dy, d);
        }
    }
}

#[test]
fn cpu_backward_matches_finite_differences() {
    let mut rng = Rng::new(32);
    let d = 5;
    let mut x: Vec<f64> = rng.vec(3 * d).iter().map(|&v| v as f64).collect();
    x[d..2 * d].iter_mut().for_each(|v| *v *= 1e-3); // a small (but above-floor) row
    let dy: Vec<f64> = rng.vec(3 * d).iter().map(|&v| v as f64).collect();
    let loss = |x: &[f64]| -> f64 { cpu::forward_f64(x, d).iter().zip(&dy).map(|(a, b)| a * b).sum() };
    let an = cpu::backward_f64(&x, &cpu::forward_f64(&x, d), &dy, d);
    for k in 0..x.len() {
        let h = 1e-7 * x[k].abs().max(1e-3);
        let (mut xp, mut xm) = (x.clone(), x.clone());
        xp[k] += h;
        xm[k] -= h;
        let num = (loss(&xp) - loss(&xm)) / (2.0 * h);
        assert!(
            (an[k] - num).abs() <= 1e-6 * num.abs().max(1.0),
            "dx[{k}]: analytic {}, numeric {num}",
            an[k]
        );
    }
    // Below the floor the map is linear: y = x / 1e-12.
    let tiny = [1e-14, -2e-14, 3e-14];
    let dyt = [0.5, -1.0, 2.0];
    let an = cpu::backward_f64(&tiny, &cpu::forward_f64(&tiny, 3), &dyt, 3);
    for k in 0..3 {
        assert!((an[k] - dyt[k] * 1e12).abs() <= 1e-3 * (dyt[k] * 1e12).abs());
    }
}

#[test]
fn shape_errors_name_the_tensors() {
    let g = gpu();
    let z = |name: &str, shape: &[usize]| Tensor::zeros(g, name, shape).unwrap();
    let err = |r: Result<Program, GpuError>| r.err().expect("must fail").to_string();
    let x = z("features", &[4, 8]);
    let e = err(l2norm::l2_normalize_forward(g, &x, &z("z", &[4, 9])));
    assert!(e.contains("z") && e.contains("[4, 9]") && e.contains("[4, 8]"), "{e}");
    let e = err(l2norm::l2_normalize_forward(
        g,
        &z("x3", &[2, 2, 2]),
        &z("y", &[2, 2, 2]),
    ));
    assert!(e.contains("x3") && e.contains("[2, 2, 2]"), "{e}");
    let e = err(l2norm::l2_normalize_backward(
        g,
        &x,
        &x,
        &z("dz", &[8, 4]),
        &z("dx", &[4, 8]),
    ));
    assert!(e.contains("dz") && e.contains("[8, 4]"), "{e}");
}
