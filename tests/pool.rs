mod common;
use common::*;
use simclr_wgpu::gpu::{GpuError, Program, Tensor};
use simclr_wgpu::nn::pool;
use simclr_wgpu::reference::pool as cpu;

/// GPU max-pool: (y, argmax, dx).
fn gpu_maxpool(shape: &[usize], x: &[f32], dy: &[f32]) -> (Vec<f32>, Vec<u32>, Vec<f32>) {
    let g = gpu();
    let (ho, wo) = pool::maxpool_out_hw(shape[2], shape[3]);
    let oshape = [shape[0], shape[1], ho, wo];
    let xt = Tensor::from_f32(g, "x", shape, x).unwrap();
    let yt = Tensor::zeros(g, "y", &oshape).unwrap();
    let at = Tensor::zeros(g, "argmax", &oshape).unwrap();
    let dyt = Tensor::from_f32(g, "dy", &oshape, dy).unwrap();
    // dx starts non-zero: the backward must overwrite, not accumulate.
    let dxt = Tensor::from_f32(g, "dx", shape, &vec![7.0; x.len()]).unwrap();
    let mut p = pool::maxpool_forward(g, &xt, &yt, &at).unwrap();
    p.extend(&pool::maxpool_backward(g, &dyt, &at, &dxt).unwrap());
    g.run(&p).unwrap();
    (
        yt.read_f32(g).unwrap(),
        at.read_u32(g).unwrap(),
        dxt.read_f32(g).unwrap(),
    )
}

/// GPU global average pool: (y, dx).
fn gpu_avgpool(shape: &[usize], x: &[f32], dy: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let g = gpu();
    let xt = Tensor::from_f32(g, "x", shape, x).unwrap();
    let yt = Tensor::zeros(g, "y", &shape[..2]).unwrap();
    let dyt = Tensor::from_f32(g, "dy", &shape[..2], dy).unwrap();
    let dxt = Tensor::from_f32(g, "dx", shape, &vec![7.0; x.len()]).unwrap();
    let mut p = Program::new();
    p.extend(&pool::global_avgpool_forward(g, &xt, &yt).unwrap());
    p.extend(&pool::global_avgpool_backward(g, &dyt, &dxt).unwrap());
    g.run(&p).unwrap();
    (yt.read_f32(g).unwrap(), dxt.read_f32(g).unwrap())
}

#[test]
fn maxpool_matches_torch_reference_including_ties() {
    let Some(r) = reference("layers.json") else { return };
    let cases = r["max_pool_3x3_s2_p1"]["cases"].as_array().unwrap();
    assert_eq!(cases.len(), 3);
    for case in cases {
        let name = case["name"].as_str().unwrap();
        let (shape, x) = tensor(&case["x"]);
        let (oshape, y) = tensor(&case["y"]);
        let dy = data(&case["dy"]);
        let arg: Vec<u32> = data(&case["argmax_flat_hw"]).iter().map(|&v| v as u32).collect();
        let dx = data(&case["dx"]);
        let (ho, wo) = pool::maxpool_out_hw(shape[2], shape[3]);
        assert_eq!(oshape, [shape[0], shape[1], ho, wo], "{name}: output shape");
        assert_eq!(cpu::maxpool_out_hw(shape[2], shape[3]), (ho, wo));

        let (cy, carg) = cpu::maxpool_forward(&x, &shape);
        assert_close(&format!("{name} cpu y"), &cy, &y, 0.0, 0.0);
        assert_eq!(carg, arg, "{name} cpu argmax");
        assert_close(
            &format!("{name} cpu dx"),
            &cpu::maxpool_backward(&dy, &arg, &shape),
            &dx,
            1e-5,
            1e-6,
        );

        let (gy, garg, gdx) = gpu_maxpool(&shape, &x, &dy);
        assert_close(&format!("{name} gpu y"), &gy, &y, 0.0, 0.0);
        assert_eq!(garg, arg, "{name} gpu argmax");
        assert_close(&format!("{name} gpu dx"), &gdx, &dx, 1e-5, 1e-6);
    }
}

#[test]
fn global_avgpool_matches_torch_reference() {
    let Some(r) = reference("layers.json") else { return };
    let c = &r["global_avg_pool"];
    let (shape, x) = tensor(&c["x"]);
    let (dy, y, dx) = (data(&c["dy"]), data(&c["y"]), data(&c["dx"]));
    assert_close("cpu y", &cpu::global_avgpool_forward(&x, &shape), &y, 1e-5, 1e-6);
    assert_close("cpu dx", &cpu::global_avgpool_backward(&dy, &shape), &dx, 1e-5, 1e-6);
    let (gy, gdx) = gpu_avgpool(&shape, &x, &dy);
    assert_close("gpu y", &gy, &y, 1e-5, 1e-6);
    assert_close("gpu dx", &gdx, &dx, 1e-5, 1e-6);
}

#[test]
fn maxpool_gpu_matches_cpu_on_odd_shapes_and_ties() {
    let mut rng = Rng::new(21);
    let shapes: &[&[usize]] = &[
        &[1, 1, 1, 1],
        &[1, 1, 2, 3],
        &[1, 2, 7, 9],
        &[3, 5, 7, 9],
        &[2, 3, 33, 17],
        &[1, 70_000, 1, 2], // more planes than one grid dimension holds
    ];
    for shape in shapes {
        let n: usize = shape.iter().product();
        let (ho, wo) = cpu::maxpool_out_hw(shape[2], shape[3]);
        let dy = rng.vec(shape[0] * shape[1] * ho * wo);
        // Random values, and small integers with many ties.
        let ties: Vec<f32> = (0..n).map(|_| rng.range(0, 2) as f32).collect();
        for x in [rng.vec(n), ties] {
            let (y, arg) = cpu::maxpool_forward(&x, shape);
            let dx = cpu::maxpool_backward(&dy, &arg, shape);
            let (gy, garg, gdx) = gpu_maxpool(shape, &x, &dy);
            assert_close(&format!("{shape:?} y"), &gy, &y, 0.0, 0.0);
            assert_eq!(garg, arg, "{shape:?} argmax");
            assert_close(&format!("{shape:?} dx"), &gdx, &dx, 1e-6, 1e-6);
        }
    }
}

#[test]
fn global_avgpool_gpu_matches_cpu_on_odd_shapes() {
    let mut rng = Rng::new(22);
    let shapes: &[&[usize]] = &[
        &[1, 1, 1, 1],
        &[3, 5, 7, 9],
        &[2, 67, 4, 4],
        &[1, 3, 1, 5],
        &[8, 300, 3, 3],
    ];
    for shape in shapes {
        let n: usize = shape.iter().product();
        let (x, dy) = (rng.vec(n), rng.vec(shape[0] * shape[1]));
        let (gy, gdx) = gpu_avgpool(shape, &x, &dy);
        assert_close(
            &format!("{shape:?} y"),
            &gy,
            &cpu::global_avgpool_forward(&x, shape),
            1e-5,
            1e-6,
        );
        assert_close(
            &format!("{shape:?} dx"),
            &gdx,
            &cpu::global_avgpool_backward(&dy, shape),
            1e-6,
            0.0,
        );
    }
}

#[test]
fn cpu_backwards_match_finite_differences() {
    let mut rng = Rng::new(23);
    let shape = [2, 2, 5, 4];
    let n: usize = shape.iter().product();
    // Distinct values, spaced far wider than the step, so no window changes its argmax.
    let mut x: Vec<f64> = (0..n).map(|i| i as f64 * 0.1).collect();
    for i in (1..n).rev() {
        x.swap(i, rng.range(0, i));
    }
    let (ho, wo) = cpu::maxpool_out_hw(5, 4);
    let dy = rng.vec(2 * 2 * ho * wo);
    let dya = rng.vec(2 * 2);
    let max_loss = |x: &[f64]| -> f64 {
        let (y, _) = cpu::maxpool_forward(x, &shape);
        y.iter().zip(&dy).map(|(y, &d)| y * d as f64).sum()
    };
    let avg_loss = |x: &[f64]| -> f64 {
        let y = cpu::global_avgpool_forward_f64(x, &shape);
        y.iter().zip(&dya).map(|(y, &d)| y * d as f64).sum()
    };
    let (_, arg) = cpu::maxpool_forward(&x, &shape);
    let dx_max = cpu::maxpool_backward(&dy, &arg, &shape);
    let dx_avg = cpu::global_avgpool_backward(&dya, &shape);
    let h = 1e-4;
    for k in 0..n {
        let mut xp = x.clone();
        xp[k] += h;
        let mut xm = x.clone();
        xm[k] -= h;
        for (what, f, an) in [
            ("max-pool", &max_loss as &dyn Fn(&[f64]) -> f64, dx_max[k]),
            ("avg-pool", &avg_loss, dx_avg[k]),
        ] {
            let num = (f(&xp) - f(&xm)) / (2.0 * h);
            assert!(
                (an as f64 - num).abs() <= 1e-6 + 1e-6 * num.abs(),
                "{what} dx[{k}]: analytic {an}, numeric {num}"
            );
        }
    }
}

#[test]
fn shape_errors_name_the_tensors() {
    let g = gpu();
    let z = |name: &str, shape: &[usize]| Tensor::zeros(g, name, shape).unwrap();
    let err = |r: Result<Program, GpuError>| r.err().expect("must fail").to_string();
    let x = z("stem.x", &[2, 3, 7, 9]);
    let e = err(pool::maxpool_forward(
        g,
        &x,
        &z("pool.y", &[2, 3, 3, 4]),
        &z("a", &[2, 3, 4, 5]),
    ));
    assert!(
        e.contains("pool.y") && e.contains("[2, 3, 3, 4]") && e.contains("[2, 3, 7, 9]"),
        "{e}"
    );
    let e = err(pool::maxpool_forward(
        g,
        &x,
        &z("y", &[2, 3, 4, 5]),
        &z("pool.argmax", &[2, 3, 5, 4]),
    ));
    assert!(e.contains("pool.argmax") && e.contains("[2, 3, 5, 4]"), "{e}");
    let e = err(pool::maxpool_backward(
        g,
        &z("dy", &[2, 3, 4, 5]),
        &z("a", &[2, 3, 4, 5]),
        &z("dx3", &[2, 3, 7]),
    ));
    assert!(e.contains("dx3") && e.contains("[2, 3, 7]"), "{e}");
    let e = err(pool::global_avgpool_forward(g, &x, &z("feat", &[2, 4])));
    assert!(
        e.contains("feat") && e.contains("[2, 4]") && e.contains("[2, 3, 7, 9]"),
        "{e}"
    );
    let e = err(pool::global_avgpool_backward(g, &z("dfeat", &[3, 3]), &x));
    assert!(e.contains("dfeat") && e.contains("[3, 3]"), "{e}");
}
