mod common;
use common::*;
use simclr_wgpu::gpu::{Gpu, KernelFlavor, Program, Tensor};
use simclr_wgpu::nn::conv2d::*;
use simclr_wgpu::reference::conv2d::{self as cpu, Conv};

const FLAVORS: [KernelFlavor; 2] = [KernelFlavor::Rows, KernelFlavor::Tiled];

struct Out {
    y: Vec<f32>,
    dx: Vec<f32>,
    dw: Vec<f32>,
}

/// Runs forward, backward-input and backward-weight on the GPU. The outputs start filled with garbage,
/// so a kernel that accumulates instead of overwriting fails.
fn run_gpu(g: &Gpu, c: &Conv, x: &[f32], w: &[f32], dy: &[f32], flavor: KernelFlavor) -> Out {
    let (ho, wo) = c.out_hw();
    let geom = ConvGeom {
        stride: c.stride,
        pad: c.pad,
    };
    let xs = [c.n, c.c, c.h, c.w];
    let ws = [c.o, c.c, c.kh, c.kw];
    let ys = [c.n, c.o, ho, wo];
    let xt = Tensor::from_f32(g, "x", &xs, x).unwrap();
    let wt = Tensor::from_f32(g, "w", &ws, w).unwrap();
    let dyt = Tensor::from_f32(g, "dy", &ys, dy).unwrap();
    let yt = Tensor::from_f32(g, "y", &ys, &vec![7.0; c.y_len()]).unwrap();
    let dxt = Tensor::from_f32(g, "dx", &xs, &vec![7.0; c.x_len()]).unwrap();
    let dwt = Tensor::from_f32(g, "dw", &ws, &vec![7.0; c.w_len()]).unwrap();
    let mut p = Program::new();
    p.extend(&conv2d_forward_with(g, &xt, &wt, &yt, geom, flavor).unwrap());
    p.extend(&conv2d_backward_input_with(g, &dyt, &wt, &dxt, geom, flavor).unwrap());
    p.extend(&conv2d_backward_weight_with(g, &xt, &dyt, &dwt, geom, flavor).unwrap());
    g.run(&p).unwrap();
    Out {
        y: yt.read_f32(g).unwrap(),
        dx: dxt.read_f32(g).unwrap(),
        dw: dwt.read_f32(g).unwrap(),
    }
}

#[test]
fn conv2d_matches_torch_reference_both_flavors() {
    let g = gpu();
    let Some(r) = reference("conv2d.json") else { return };
    for case in r["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let (xs, x) = tensor(&case["x"]);
        let (ws, w) = tensor(&case["weight"]);
        let bias = data(&case["bias"]);
        let dy = data(&case["dy"]);
        let k = case["kernel"].as_u64().unwrap() as usize;
        let c = Conv {
            n: xs[0],
            c: xs[1],
            h: xs[2],
            w: xs[3],
            o: ws[0],
            kh: k,
            kw: k,
            stride: case["stride"].as_u64().unwrap() as usize,
            pad: case["padding"].as_u64().unwrap() as usize,
        };
        assert_eq!(ws, [c.o, c.c, k, k], "{name}");
        let (ho, wo) = c.out_hw();
        let geom = ConvGeom {
            stride: c.stride,
            pad: c.pad,
        };
        assert_eq!(conv2d_out_hw(c.h, c.w, k, k, geom), (ho, wo), "{name}");
        assert_eq!(tensor(&case["y"]).0, [c.n, c.o, ho, wo], "{name}");
        // Our conv has no bias (BN follows); torch's y includes it.
        let plus_bias = |y: &[f32]| -> Vec<f32> {
            y.iter()
                .enumerate()
                .map(|(i, &v)| (v as f64 + bias[(i / (ho * wo)) % c.o] as f64) as f32)
                .collect()
        };
        let (want_y, want_dx, want_dw) = (data(&case["y"]), data(&case["dx"]), data(&case["dweight"]));
        let dbias: Vec<f32> = (0..c.o)
            .map(|o| {
                let per = ho * wo;
                (0..c.n)
                    .map(|n| dy[(n * c.o + o) * per..][..per].iter().map(|&v| v as f64).sum::<f64>())
                    .sum::<f64>() as f32
            })
            .collect();
        assert_close(
            &format!("{name} dbias = Σdy"),
            &dbias,
            &data(&case["dbias"]),
            1e-5,
            1e-5,
        );
        let cpu_y = plus_bias(&cpu::forward(&c, &x, &w));
        assert_close(&format!("{name} cpu y"), &cpu_y, &want_y, 1e-5, 1e-6);
        let cpu_dx = cpu::backward_input(&c, &dy, &w);
        assert_close(&format!("{name} cpu dx"), &cpu_dx, &want_dx, 1e-5, 1e-6);
        let cpu_dw = cpu::backward_weight(&c, &x, &dy);
        assert_close(&format!("{name} cpu dweight"), &cpu_dw, &want_dw, 1e-5, 1e-6);
        for flavor in FLAVORS {
            let out = run_gpu(g, &c, &x, &w, &dy, flavor);
            assert_close(&format!("{name} {flavor:?} y"), &plus_bias(&out.y), &want_y, 1e-4, 1e-5);
            assert_close(&format!("{name} {flavor:?} dx"), &out.dx, &want_dx, 1e-4, 1e-5);
            assert_close(&format!("{name} {flavor:?} dweight"), &out.dw, &want_dw, 1e-4, 1e-4);
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn conv(n: usize, c: usize, h: usize, w: usize, o: usize, k: usize, stride: usize, pad: usize) -> Conv {
    Conv {
        n,
        c,
        h,
        w,
        o,
        kh: k,
        kw: k,
        stride,
        pad,
    }
}

#[test]
fn conv2d_gpu_matches_cpu_on_odd_shapes_both_flavors() {
    let g = gpu();
    let mut rng = Rng::new(11);
    let cases = [
        conv(1, 3, 7, 9, 5, 3, 1, 1),     // odd, non-square, batch 1
        conv(3, 5, 7, 9, 70, 3, 2, 1),    // O beyond one tile, batch 3
        conv(2, 67, 8, 8, 9, 1, 2, 0),    // 1×1 stride-2 downsample, C beyond one tile
        conv(1, 3, 15, 13, 8, 7, 2, 3),   // 7×7 s2 p3 stem
        conv(3, 20, 5, 5, 36, 3, 1, 1),   // 3×3 s1
        conv(2, 4, 9, 6, 3, 2, 3, 0),     // kernel 2, stride 3 (leftover input rows/columns)
        conv(1, 2, 4, 5, 3, 1, 1, 2),     // padding wider than the kernel (zero border outputs)
        conv(5, 3, 33, 33, 6, 3, 1, 1),   // long reduction: backward-weight is split in two (uneven)
        conv(2, 130, 4, 4, 131, 3, 1, 1), // channels beyond two tiles, tiny image
    ];
    for c in cases {
        let (x, w, dy) = (rng.vec(c.x_len()), rng.vec(c.w_len()), rng.vec(c.y_len()));
        let (ho, wo) = c.out_hw();
        let want_y = cpu::forward(&c, &x, &w);
        let want_dx = cpu::backward_input(&c, &dy, &w);
        let want_dw = cpu::backward_weight(&c, &x, &dy);
        // Values are in [-1, 1): allow f32 rounding over the length of each sum.
        let k_fwd = (c.c * c.kh * c.kw) as f32;
        let k_bin = (c.o * c.kh * c.kw) as f32;
        let k_bw = (c.n * ho * wo) as f32;
        for flavor in FLAVORS {
            let out = run_gpu(g, &c, &x, &w, &dy, flavor);
            assert_close(&format!("{c:?} {flavor:?} y"), &out.y, &want_y, 1e-4, 1e-6 * k_fwd);
            assert_close(&format!("{c:?} {flavor:?} dx"), &out.dx, &want_dx, 1e-4, 1e-6 * k_bin);
            assert_close(&format!("{c:?} {flavor:?} dw"), &out.dw, &want_dw, 1e-4, 1e-6 * k_bw);
        }
    }
}

/// The CPU backward passes agree with central differences of L = Σ forward(x, w) · dy, in f64.
#[test]
fn cpu_backward_matches_finite_differences() {
    let mut rng = Rng::new(5);
    for c in [
        conv(2, 2, 5, 4, 3, 3, 2, 1),
        conv(1, 3, 4, 4, 2, 1, 1, 0),
        conv(1, 2, 7, 5, 2, 3, 2, 2),
    ] {
        let f = |v: Vec<f32>| v.into_iter().map(|a| a as f64).collect::<Vec<f64>>();
        let (x, w, dy) = (f(rng.vec(c.x_len())), f(rng.vec(c.w_len())), f(rng.vec(c.y_len())));
        let loss =
            |x: &[f64], w: &[f64]| -> f64 { cpu::forward_f64(&c, x, w).iter().zip(&dy).map(|(a, b)| a * b).sum() };
        let eps = 1e-4;
        let dx = cpu::backward_input_f64(&c, &dy, &w);
        for i in 0..x.len() {
            let (mut xp, mut xm) = (x.clone(), x.clone());
            xp[i] += eps;
            xm[i] -= eps;
            let fd = (loss(&xp, &w) - loss(&xm, &w)) / (2.0 * eps);
            assert!(
                (fd - dx[i]).abs() < 1e-8,
                "{c:?} dx[{i}]: analytic {} vs fd {fd}",
                dx[i]
            );
        }
        let dw = cpu::backward_weight_f64(&c, &x, &dy);
        for i in 0..w.len() {
            let (mut wp, mut wm) = (w.clone(), w.clone());
            wp[i] += eps;
            wm[i] -= eps;
            let fd = (loss(&x, &wp) - loss(&x, &wm)) / (2.0 * eps);
            assert!(
                (fd - dw[i]).abs() < 1e-8,
                "{c:?} dw[{i}]: analytic {} vs fd {fd}",
                dw[i]
            );
        }
    }
}

#[test]
fn shape_mismatch_is_an_error_naming_both_shapes() {
    let g = gpu();
    let geom = ConvGeom { stride: 1, pad: 1 };
    let x = Tensor::zeros(g, "layer1.0.bn1.out", &[2, 3, 8, 8]).unwrap();
    let w = Tensor::zeros(g, "layer1.0.conv2.weight", &[4, 5, 3, 3]).unwrap();
    let y = Tensor::zeros(g, "layer1.0.conv2.out", &[2, 4, 8, 8]).unwrap();
    let err = conv2d_forward(g, &x, &w, &y, geom)
        .err()
        .expect("C mismatch must fail")
        .to_string();
    assert!(
        err.contains("layer1.0.bn1.out") && err.contains("[2, 3, 8, 8]") && err.contains("[4, 5, 3, 3]"),
        "{err}"
    );
    let w = Tensor::zeros(g, "layer1.0.conv2.weight", &[4, 3, 3, 3]).unwrap();
    let y_bad = Tensor::zeros(g, "layer1.0.conv2.out", &[2, 4, 4, 4]).unwrap();
    let err = conv2d_forward(g, &x, &w, &y_bad, geom)
        .err()
        .expect("y mismatch must fail")
        .to_string();
    assert!(err.contains("[2, 4, 4, 4]") && err.contains("[2, 4, 8, 8]"), "{err}");
    let dw = Tensor::zeros(g, "dw", &[4, 3, 3, 3]).unwrap();
    let err = conv2d_backward_weight(g, &x, &y_bad, &dw, geom)
        .err()
        .expect("dy mismatch")
        .to_string();
    assert!(err.contains("[2, 4, 4, 4]") && err.contains("[2, 4, 8, 8]"), "{err}");
    let dx = Tensor::zeros(g, "dx", &[2, 3, 8, 8]).unwrap();
    let err = conv2d_backward_input(g, &y_bad, &w, &dx, geom)
        .err()
        .expect("dy mismatch")
        .to_string();
    assert!(err.contains("[2, 4, 4, 4]") && err.contains("[2, 4, 8, 8]"), "{err}");
    let too_big = ConvGeom { stride: 1, pad: 0 };
    let tiny = Tensor::zeros(g, "tiny", &[1, 3, 2, 2]).unwrap();
    assert!(conv2d_forward(g, &tiny, &w, &y, too_big).is_err());
    assert_eq!(conv2d_out_hw(2, 2, 3, 3, too_big), (0, 0));
    assert_eq!(conv2d_out_hw(7, 9, 3, 3, ConvGeom { stride: 2, pad: 1 }), (4, 5));
}

/// Conv2d timings at the ResNet-18 CIFAR shapes (slow on lavapipe, minutes): run by hand with
/// `cargo test --test conv2d -- --ignored --nocapture` (SIMCLR_KERNELS=rows|tiled picks the flavour).
#[test]
#[ignore]
fn bench_conv_kernels() {
    let g = gpu();
    println!("{}", g.describe());
    for (name, flops, secs) in simclr_wgpu::bench::conv::conv_rows(g).unwrap() {
        println!("{name:50} {:8.3} ms {:7.2} GFLOP/s", secs * 1e3, flops / secs / 1e9);
    }
}
