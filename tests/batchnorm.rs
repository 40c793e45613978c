mod common;
use common::*;
use simclr_wgpu::gpu::Tensor;
use simclr_wgpu::nn::batchnorm as bn;
use simclr_wgpu::reference::batchnorm as cpu;

const EPS: f32 = 1e-5;
const MOMENTUM: f32 = 0.1;

/// Everything the GPU computes for one batch-norm layer: train forward, backward, eval forward.
struct Out {
    y: Vec<f32>,
    mean: Vec<f32>,
    invstd: Vec<f32>,
    running_mean: Vec<f32>,
    running_var: Vec<f32>,
    dx: Vec<f32>,
    dgamma: Vec<f32>,
    dbeta: Vec<f32>,
    y_eval: Vec<f32>,
    /// Scale of the abs tolerance of dx (see `dx_scale`).
    dx_scale: f32,
}

/// Inputs: x, gamma, beta, running_mean, running_var, dy.
struct In {
    shape: Vec<usize>,
    x: Vec<f32>,
    gamma: Vec<f32>,
    beta: Vec<f32>,
    rm: Vec<f32>,
    rv: Vec<f32>,
    dy: Vec<f32>,
}

/// `n` values uniform in [lo, hi), from the low 24 bits (`Rng::uniform` covers only [-1, 0)).
fn uniform(rng: &mut Rng, n: usize, lo: f32, hi: f32) -> Vec<f32> {
    let unit = |r: &mut Rng| (r.next_u32() & 0xff_ffff) as f32 / (1 << 24) as f32;
    (0..n).map(|_| lo + unit(rng) * (hi - lo)).collect()
}

impl In {
    fn random(rng: &mut Rng, shape: &[usize]) -> In {
        let n: usize = shape.iter().product();
        let c = shape[1];
        In {
            shape: shape.to_vec(),
            x: uniform(rng, n, -2.0, 3.0),
            gamma: uniform(rng, c, 0.5, 1.5),
            beta: uniform(rng, c, -1.0, 1.0),
            rm: uniform(rng, c, -1.0, 1.0),
            rv: uniform(rng, c, 0.5, 1.5),
            dy: uniform(rng, n, -1.0, 1.0),
        }
    }
}

fn run_gpu(i: &In, relu: bool) -> Out {
    let g = gpu();
    let c = [i.shape[1]];
    let t = |name: &str, shape: &[usize], v: &[f32]| Tensor::from_f32(g, name, shape, v).unwrap();
    let x = t("x", &i.shape, &i.x);
    let gamma = t("gamma", &c, &i.gamma);
    let beta = t("beta", &c, &i.beta);
    let rm = t("running_mean", &c, &i.rm);
    let rv = t("running_var", &c, &i.rv);
    let mean = Tensor::zeros(g, "save_mean", &c).unwrap();
    let invstd = Tensor::zeros(g, "save_invstd", &c).unwrap();
    let y = Tensor::zeros(g, "y", &i.shape).unwrap();
    let y_eval = Tensor::zeros(g, "y_eval", &i.shape).unwrap();
    let dy = t("dy", &i.shape, &i.dy);
    let dx = Tensor::zeros(g, "dx", &i.shape).unwrap();
    let dgamma = Tensor::zeros(g, "dgamma", &c).unwrap();
    let dbeta = Tensor::zeros(g, "dbeta", &c).unwrap();
    // Eval first: it reads the running statistics before the training forward updates them.
    let mut p = bn::batchnorm_forward_eval(g, &x, &gamma, &beta, &rm, &rv, &y_eval, relu, EPS).unwrap();
    p.extend(
        &bn::batchnorm_forward_train(g, &x, &gamma, &beta, &rm, &rv, &mean, &invstd, &y, relu, MOMENTUM, EPS).unwrap(),
    );
    p.extend(&bn::batchnorm_backward(g, &x, &y, &dy, &gamma, &mean, &invstd, &dx, &dgamma, &dbeta, relu).unwrap());
    g.run(&p).unwrap();
    let r = |t: &Tensor| t.read_f32(g).unwrap();
    Out {
        y: r(&y),
        mean: r(&mean),
        invstd: r(&invstd),
        running_mean: r(&rm),
        running_var: r(&rv),
        dx: r(&dx),
        dgamma: r(&dgamma),
        dbeta: r(&dbeta),
        y_eval: r(&y_eval),
        dx_scale: 0.0,
    }
}

fn max_abs(v: &[f32]) -> f32 {
    v.iter().fold(0.0, |m, x| m.max(x.abs()))
}

/// Reductions: rel 1e-4, abs scaled to the size of the values.
#[track_caller]
fn close(what: &str, got: &[f32], want: &[f32], rel: f32) {
    assert_close(what, got, want, rel, rel * 0.1 * max_abs(want).max(1e-3));
}

/// The CPU reference for the same inputs, kept in f64 from forward to backward (as torch's f64
/// reference: with M = 2 the backward cancels almost completely and f32 statistics would show).
fn run_cpu(i: &In, relu: bool) -> Out {
    let d = cpu::f64s;
    let (x, gamma, beta, rm, rv) = (d(&i.x), d(&i.gamma), d(&i.beta), d(&i.rm), d(&i.rv));
    let f = cpu::forward_train_f64(&x, &i.shape, &gamma, &beta, &rm, &rv, relu, MOMENTUM as f64, EPS as f64);
    let (dx, dgamma, dbeta) = cpu::backward_f64(&x, &f.y, &d(&i.dy), &i.shape, &gamma, &f.mean, &f.invstd, relu);
    let y_eval = cpu::forward_eval_f64(&x, &i.shape, &gamma, &beta, &rm, &rv, relu, EPS as f64);
    let s = cpu::f32s;
    Out {
        y: s(&f.y),
        mean: s(&f.mean),
        invstd: s(&f.invstd),
        running_mean: s(&f.running_mean),
        running_var: s(&f.running_var),
        dx: s(&dx),
        dgamma: s(&dgamma),
        dbeta: s(&dbeta),
        y_eval: s(&y_eval),
        dx_scale: dx_scale(i, &s(&f.invstd)),
    }
}

/// The size of the terms that cancel in dx: max |γ·invstd| · max |dy|.
fn dx_scale(i: &In, invstd: &[f32]) -> f32 {
    let a = i.gamma.iter().zip(invstd).fold(0f32, |m, (g, s)| m.max((g * s).abs()));
    a * max_abs(&i.dy)
}

#[track_caller]
fn compare(what: &str, got: &Out, want: &Out, rel: f32) {
    close(&format!("{what} y"), &got.y, &want.y, rel);
    close(&format!("{what} mean"), &got.mean, &want.mean, rel);
    close(&format!("{what} invstd"), &got.invstd, &want.invstd, rel);
    close(
        &format!("{what} running_mean"),
        &got.running_mean,
        &want.running_mean,
        rel,
    );
    close(&format!("{what} running_var"), &got.running_var, &want.running_var, rel);
    assert_close(&format!("{what} dx"), &got.dx, &want.dx, rel, rel * 0.1 * want.dx_scale);
    // dγ = invstd·Σ dy·(x − mean) inherits the f32 rounding of the mean times Σ dy.
    let slack = (0..want.mean.len())
        .map(|c| (want.dbeta[c] * want.mean[c] * want.invstd[c]).abs())
        .fold(0f32, f32::max);
    let abs = rel * 0.1 * max_abs(&want.dgamma).max(1e-3) + 2e-7 * slack;
    assert_close(&format!("{what} dgamma"), &got.dgamma, &want.dgamma, rel, abs);
    close(&format!("{what} dbeta"), &got.dbeta, &want.dbeta, rel);
    close(&format!("{what} y_eval"), &got.y_eval, &want.y_eval, rel);
}

#[test]
fn matches_torch_reference_on_gpu_and_cpu() {
    let Some(r) = reference("batchnorm.json") else { return };
    for case in r["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        assert_eq!(case["eps"].as_f64().unwrap() as f32, EPS);
        assert_eq!(case["momentum"].as_f64().unwrap() as f32, MOMENTUM);
        let (shape, x) = tensor(&case["x"]);
        let i = In {
            shape,
            x,
            gamma: data(&case["gamma"]),
            beta: data(&case["beta"]),
            rm: data(&case["running_mean_in"]),
            rv: data(&case["running_var_in"]),
            dy: data(&case["dy"]),
        };
        let want = Out {
            y: data(&case["y"]),
            mean: data(&case["batch_mean"]),
            invstd: data(&case["invstd"]),
            running_mean: data(&case["running_mean_out"]),
            running_var: data(&case["running_var_out"]),
            dx: data(&case["dx"]),
            dgamma: data(&case["dgamma"]),
            dbeta: data(&case["dbeta"]),
            y_eval: data(&case["y_eval_with_running_in"]),
            dx_scale: dx_scale(&i, &data(&case["invstd"])),
        };
        let f = cpu::forward_train(&i.x, &i.shape, &i.gamma, &i.beta, &i.rm, &i.rv, false, MOMENTUM, EPS);
        close(
            &format!("{name} cpu var_b"),
            &f.var_biased,
            &data(&case["batch_var_biased"]),
            1e-5,
        );
        close(
            &format!("{name} cpu var_u"),
            &f.var_unbiased,
            &data(&case["batch_var_unbiased"]),
            1e-5,
        );
        compare(&format!("{name} cpu"), &run_cpu(&i, false), &want, 1e-5);
        compare(&format!("{name} gpu"), &run_gpu(&i, false), &want, 1e-4);
    }
}

#[test]
fn gpu_matches_cpu_on_odd_shapes_with_and_without_relu() {
    let mut rng = Rng::new(11);
    let shapes: &[&[usize]] = &[
        &[3, 5, 7, 9],
        &[1, 3, 5, 5],
        &[2, 67, 3, 1],
        &[9, 2, 50, 50],  // 22500 values per channel: several workgroups per channel on GPUs
        &[70, 2, 33, 31], // 71610 per channel: several workgroups per channel on CPU drivers too
        &[64, 3, 32, 36], // the same with vec4 kernels
        &[5, 6, 2, 2],    // vec4 kernels, one vec4 per plane
        &[37, 300],       // BatchNorm1d, C not a multiple of 64
        &[1000, 5],       // BatchNorm1d, many values per invocation
        &[2, 4],
    ];
    for shape in shapes {
        let i = In::random(&mut rng, shape);
        for relu in [false, true] {
            compare(
                &format!("{shape:?} relu={relu}"),
                &run_gpu(&i, relu),
                &run_cpu(&i, relu),
                1e-4,
            );
        }
    }
}

#[test]
fn gpu_matches_cpu_on_a_big_reduction() {
    let mut rng = Rng::new(12);
    let i = In::random(&mut rng, &[64, 16, 16, 16]);
    compare("64x16x16x16", &run_gpu(&i, true), &run_cpu(&i, true), 1e-4);
}

#[test]
fn statistics_survive_a_large_mean_and_a_lone_outlier() {
    let mut rng = Rng::new(13);
    let shape = [16, 2, 40, 40];
    let mut i = In::random(&mut rng, &shape);
    let plane = 1600;
    for n in 0..16 {
        for k in 0..plane {
            // Channel 0: mean 300, spread 0.01. Channel 1: zeros except the very first value,
            // which a single per-channel shift would take as its reference point.
            i.x[n * 2 * plane + k] = 300.0 + uniform(&mut rng, 1, -0.01, 0.01)[0];
            i.x[n * 2 * plane + plane + k] = if n == 0 && k == 0 { 5.0 } else { 0.0 };
        }
    }
    let got = run_gpu(&i, false);
    let want = run_cpu(&i, false);
    close("invstd", &got.invstd, &want.invstd, 1e-3);
    close("running_var", &got.running_var, &want.running_var, 1e-3);
    close("mean", &got.mean, &want.mean, 1e-5);
    // x − mean carries the f32 rounding of a mean of 300 (ulp 3e-5) scaled by invstd (~170).
    assert_close("y", &got.y, &want.y, 1e-3, 1e-2);
}

#[test]
fn replaying_the_program_updates_running_statistics_each_time() {
    let g = gpu();
    let mut rng = Rng::new(14);
    let i = In::random(&mut rng, &[4, 3, 5, 5]);
    let t = |name: &str, shape: &[usize], v: &[f32]| Tensor::from_f32(g, name, shape, v).unwrap();
    let (x, gamma, beta) = (t("x", &i.shape, &i.x), t("g", &[3], &i.gamma), t("b", &[3], &i.beta));
    let (rm, rv) = (t("rm", &[3], &i.rm), t("rv", &[3], &i.rv));
    let (mean, invstd) = (t("m", &[3], &[0.0; 3]), t("s", &[3], &[0.0; 3]));
    let y = Tensor::zeros(g, "y", &i.shape).unwrap();
    let p = bn::batchnorm_forward_train(g, &x, &gamma, &beta, &rm, &rv, &mean, &invstd, &y, false, 0.1, EPS).unwrap();
    g.run(&p).unwrap();
    g.run(&p).unwrap();
    let once = cpu::forward_train(&i.x, &i.shape, &i.gamma, &i.beta, &i.rm, &i.rv, false, 0.1, EPS);
    let twice = cpu::forward_train(
        &i.x,
        &i.shape,
        &i.gamma,
        &i.beta,
        &once.running_mean,
        &once.running_var,
        false,
        0.1,
        EPS,
    );
    close("running_mean", &rm.read_f32(g).unwrap(), &twice.running_mean, 1e-5);
    close("running_var", &rv.read_f32(g).unwrap(), &twice.running_var, 1e-5);
}

/// loss = Σ y·dy of the training-mode forward, in f64.
fn loss(i: &In, x: &[f64], gamma: &[f64], beta: &[f64], relu: bool) -> f64 {
    let rm = cpu::f64s(&i.rm);
    let rv = cpu::f64s(&i.rv);
    let f = cpu::forward_train_f64(x, &i.shape, gamma, beta, &rm, &rv, relu, 0.1, 1e-5);
    f.y.iter().zip(&i.dy).map(|(y, &d)| y * d as f64).sum()
}

#[test]
fn cpu_backward_matches_finite_differences() {
    let mut rng = Rng::new(15);
    for (shape, relu) in [
        (&[2usize, 3, 2, 3][..], false),
        (&[2, 3, 2, 3], true),
        (&[5, 2], false),
        (&[5, 2], true),
    ] {
        let i = In::random(&mut rng, shape);
        let (x, gamma, beta) = (cpu::f64s(&i.x), cpu::f64s(&i.gamma), cpu::f64s(&i.beta));
        let f = cpu::forward_train_f64(
            &x,
            shape,
            &gamma,
            &beta,
            &cpu::f64s(&i.rm),
            &cpu::f64s(&i.rv),
            relu,
            0.1,
            1e-5,
        );
        let (dx, dgamma, dbeta) =
            cpu::backward_f64(&x, &f.y, &cpu::f64s(&i.dy), shape, &gamma, &f.mean, &f.invstd, relu);
        let h = 1e-6;
        let num = |which: usize, k: usize| {
            let mut v = [x.clone(), gamma.clone(), beta.clone()];
            v[which][k] += h;
            let up = loss(&i, &v[0], &v[1], &v[2], relu);
            v[which][k] -= 2.0 * h;
            let down = loss(&i, &v[0], &v[1], &v[2], relu);
            (up - down) / (2.0 * h)
        };
        for (which, grad) in [(0, &dx), (1, &dgamma), (2, &dbeta)] {
            for (k, &an) in grad.iter().enumerate() {
                let nu = num(which, k);
                assert!(
                    (an - nu).abs() <= 1e-6 + 1e-5 * nu.abs(),
                    "{shape:?} relu={relu} grad {which}[{k}]: analytic {an}, numeric {nu}"
                );
            }
        }
    }
}

#[test]
fn shape_errors_name_the_tensors() {
    let g = gpu();
    let z = |name: &str, shape: &[usize]| Tensor::zeros(g, name, shape).unwrap();
    let (x, y) = (z("layer1.x", &[2, 3, 4, 4]), z("layer1.y", &[2, 3, 4, 4]));
    let (c3, c4) = (z("c3", &[3]), z("bn.weight", &[4]));
    let err = |r: Result<_, simclr_wgpu::gpu::GpuError>| r.err().expect("must fail").to_string();
    let e = err(bn::batchnorm_forward_train(
        g, &x, &c4, &c3, &c3, &c3, &c3, &c3, &y, false, 0.1, EPS,
    ));
    assert!(
        e.contains("bn.weight") && e.contains("[4]") && e.contains("[2, 3, 4, 4]"),
        "{e}"
    );
    let e = err(bn::batchnorm_forward_eval(
        g,
        &x,
        &c3,
        &c3,
        &c3,
        &c3,
        &z("y2", &[2, 3, 4, 5]),
        false,
        EPS,
    ));
    assert!(e.contains("y2") && e.contains("[2, 3, 4, 5]"), "{e}");
    let e = err(bn::batchnorm_backward(
        g,
        &x,
        &y,
        &z("dy", &[2, 3, 16]),
        &c3,
        &c3,
        &c3,
        &y,
        &c3,
        &c3,
        false,
    ));
    assert!(e.contains("dy") && e.contains("[2, 3, 16]"), "{e}");
    let e = err(bn::batchnorm_forward_eval(
        g,
        &z("x3", &[2, 3, 4]),
        &c3,
        &c3,
        &c3,
        &c3,
        &y,
        false,
        EPS,
    ));
    assert!(e.contains("x3") && e.contains("[2, 3, 4]"), "{e}");
    let (x1, y1) = (z("x1", &[1, 3]), z("y1", &[1, 3]));
    let e = err(bn::batchnorm_forward_train(
        g, &x1, &c3, &c3, &c3, &c3, &c3, &c3, &y1, false, 0.1, EPS,
    ));
    assert!(e.contains("more than one value per channel"), "{e}");
    let e = err(bn::batchnorm_forward_eval(g, &x, &c3, &c3, &c3, &c3, &x, false, EPS));
    assert!(e.contains("in-place"), "{e}");
}

#[test]
fn eval_mode_takes_a_single_sample() {
    let g = gpu();
    let mut rng = Rng::new(16);
    let i = In::random(&mut rng, &[1, 5]);
    let t = |name: &str, v: &[f32]| Tensor::from_f32(g, name, &[v.len()], v).unwrap();
    let x = Tensor::from_f32(g, "x", &[1, 5], &i.x).unwrap();
    let y = Tensor::zeros(g, "y", &[1, 5]).unwrap();
    let (gamma, beta, rm, rv) = (t("g", &i.gamma), t("b", &i.beta), t("rm", &i.rm), t("rv", &i.rv));
    g.run(&bn::batchnorm_forward_eval(g, &x, &gamma, &beta, &rm, &rv, &y, true, EPS).unwrap())
        .unwrap();
    let want = cpu::forward_eval(&i.x, &i.shape, &i.gamma, &i.beta, &i.rm, &i.rv, true, EPS);
    close("y", &y.read_f32(g).unwrap(), &want, 1e-5);
}
