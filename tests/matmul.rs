mod common;
use common::*;
use simclr_wgpu::gpu::{KernelFlavor, Program, Tensor};
use simclr_wgpu::nn::linear::{linear_backward_with, linear_forward_with};
use simclr_wgpu::nn::matmul::{col_sum, gemm, matmul, transpose, Gemm};
use simclr_wgpu::reference::matmul as cpu;

const FLAVORS: [KernelFlavor; 2] = [KernelFlavor::Tiled, KernelFlavor::Rows];

fn upload(name: &str, shape: &[usize], data: &[f32]) -> Tensor {
    Tensor::from_f32(gpu(), name, shape, data).unwrap()
}

fn run(p: &Program) {
    gpu().run(p).unwrap();
}

fn read(t: &Tensor) -> Vec<f32> {
    t.read_f32(gpu()).unwrap()
}

#[test]
fn gemm_matches_cpu_on_odd_shapes_all_transposes_both_flavors() {
    let g = gpu();
    let mut rng = Rng::new(11);
    // (M, K, N): tiny, odd, larger than one tile in each direction, K not a multiple of the slice.
    let shapes = [(1, 1, 1), (7, 9, 5), (33, 65, 17), (130, 3, 257), (70, 40, 150)];
    let mut case = 0;
    for &(m, k, n) in &shapes {
        let a = rng.vec(m * k);
        let b = rng.vec(k * n);
        let bias = rng.vec(n);
        let bias_t = upload("bias", &[n], &bias);
        for trans_a in [false, true] {
            for trans_b in [false, true] {
                let at = upload("a", &if trans_a { [k, m] } else { [m, k] }, &a);
                let bt = upload("b", &if trans_b { [n, k] } else { [k, n] }, &b);
                let c = Tensor::zeros(g, "c", &[m, n]).unwrap();
                // Cycle through the four epilogues so each shape and transpose sees several.
                let (with_bias, relu) = [(false, false), (true, false), (false, true), (true, true)][case % 4];
                case += 1;
                let mut want = cpu::matmul(&a, &b, m, k, n, trans_a, trans_b);
                for (i, v) in want.iter_mut().enumerate() {
                    if with_bias {
                        *v += bias[i % n];
                    }
                    if relu {
                        *v = v.max(0.0);
                    }
                }
                for flavor in FLAVORS {
                    c.write_f32(g, &vec![f32::NAN; m * n]);
                    let spec = Gemm {
                        trans_a,
                        trans_b,
                        bias: with_bias.then_some(&bias_t),
                        relu,
                        ..Gemm::new(&at, &bt, &c)
                    };
                    run(&gemm(g, flavor, &spec).unwrap());
                    let what = format!("{flavor:?} {m}x{k}x{n} ta={trans_a} tb={trans_b} bias={with_bias} relu={relu}");
                    assert_close(&what, &read(&c), &want, 1e-4, 1e-6 * k as f32 + 1e-6);
                }
            }
        }
    }
}

#[test]
fn public_matmul_uses_the_adapter_flavor() {
    let g = gpu();
    let mut rng = Rng::new(5);
    let (m, k, n) = (9, 13, 11);
    let (a, b) = (rng.vec(m * k), rng.vec(k * n));
    let c = Tensor::zeros(g, "c", &[m, n]).unwrap();
    run(&matmul(g, &upload("a", &[k, m], &a), &upload("b", &[k, n], &b), &c, true, false).unwrap());
    assert_close(
        "matmul",
        &read(&c),
        &cpu::matmul(&a, &b, m, k, n, true, false),
        1e-4,
        1e-5,
    );
}

#[test]
fn grids_beyond_65535_workgroups_cover_every_element() {
    let g = gpu();
    // Rows: an M×1×1 product with 65537 row tiles, so the grid is split over x and y. (Tiled
    // would need 65536 tiles of 64×64 outputs, 1 GiB, above lavapipe's binding limit.)
    let m = 16 * 65536 + 5;
    let a: Vec<f32> = (0..m).map(|i| (i % 1000) as f32).collect();
    let c = Tensor::zeros(g, "c", &[m, 1]).unwrap();
    c.write_f32(g, &vec![f32::NAN; m]);
    let (at, bt) = (upload("a", &[m, 1], &a), upload("b", &[1, 1], &[2.0]));
    run(&gemm(g, KernelFlavor::Rows, &Gemm::new(&at, &bt, &c)).unwrap());
    let want: Vec<f32> = a.iter().map(|v| v * 2.0).collect();
    assert_close("rows M=1048581", &read(&c), &want, 0.0, 0.0);
    // The helpers launch one invocation per element / column: over 65535·64 of them.
    let (r, cols) = (2100, 2050);
    let x: Vec<f32> = (0..r * cols).map(|i| i as f32).collect();
    let xt = Tensor::zeros(g, "xt", &[cols, r]).unwrap();
    run(&transpose(g, &upload("x", &[r, cols], &x), &xt).unwrap());
    let want: Vec<f32> = (0..r * cols).map(|i| x[(i % r) * cols + i / r]).collect();
    assert_close("transpose", &read(&xt), &want, 0.0, 0.0);
    let n = 4_200_000;
    let y: Vec<f32> = (0..2 * n).map(|i| (i % 7) as f32).collect();
    let s = Tensor::zeros(g, "s", &[n]).unwrap();
    run(&col_sum(g, &upload("y", &[2, n], &y), &s).unwrap());
    let want: Vec<f32> = (0..n).map(|j| y[j] + y[n + j]).collect();
    assert_close("col_sum", &read(&s), &want, 0.0, 0.0);
}

#[allow(clippy::too_many_arguments)]
fn linear_both_flavors(
    name: &str,
    x: (&[usize], &[f32]),
    w: (&[usize], &[f32]),
    b: &[f32],
    dy: &[f32],
    want: [&[f32]; 4],
    rel: f32,
    abs: f32,
) {
    let g = gpu();
    let (m, k, n) = (x.0[0], x.0[1], w.0[0]);
    let (xt, wt) = (upload("x", x.0, x.1), upload("weight", w.0, w.1));
    let bt = upload("bias", &[n], b);
    let dyt = upload("dy", &[m, n], dy);
    let y = Tensor::zeros(g, "y", &[m, n]).unwrap();
    let dx = Tensor::zeros(g, "dx", &[m, k]).unwrap();
    let dw = Tensor::zeros(g, "dweight", &[n, k]).unwrap();
    let db = Tensor::zeros(g, "dbias", &[n]).unwrap();
    for flavor in FLAVORS {
        let mut p = linear_forward_with(g, flavor, &xt, &wt, Some(&bt), &y, false).unwrap();
        p.extend(&linear_backward_with(g, flavor, &xt, &wt, &dyt, Some(&dx), &dw, Some(&db)).unwrap());
        // Twice: backward overwrites its outputs, it does not accumulate.
        run(&p);
        run(&p);
        for (what, t, want) in [("y", &y, want[0]), ("dx", &dx, want[1]), ("dweight", &dw, want[2])] {
            assert_close(&format!("{name} {what} {flavor:?}"), &read(t), want, rel, abs);
        }
        assert_close(&format!("{name} dbias {flavor:?}"), &read(&db), want[3], rel, abs);
    }
}

#[test]
fn linear_matches_torch_layers_json() {
    let Some(r) = reference("layers.json") else { return };
    let l = &r["linear"];
    let (xs, x) = tensor(&l["x"]);
    let (ws, w) = tensor(&l["weight"]);
    let (b, dy) = (data(&l["bias"]), data(&l["dy"]));
    let want = [data(&l["y"]), data(&l["dx"]), data(&l["dweight"]), data(&l["dbias"])];
    let (m, k, n) = (xs[0], xs[1], ws[0]);
    // CPU reference first, then both GPU flavours.
    assert_close(
        "cpu y",
        &cpu::linear_forward(&x, &w, Some(&b), m, k, n, false),
        &want[0],
        1e-5,
        1e-6,
    );
    let gr = cpu::linear_backward(&x, &w, &dy, m, k, n);
    assert_close("cpu dx", &gr.dx, &want[1], 1e-5, 1e-6);
    assert_close("cpu dweight", &gr.dw, &want[2], 1e-5, 1e-6);
    assert_close("cpu dbias", &gr.db, &want[3], 1e-5, 1e-6);
    let w4 = [&want[0][..], &want[1][..], &want[2][..], &want[3][..]];
    linear_both_flavors("linear", (&xs, &x), (&ws, &w), &b, &dy, w4, 1e-5, 1e-6);
}

#[test]
fn linear_probe_matches_torch_cross_entropy_json() {
    let Some(r) = reference("cross_entropy.json") else {
        return;
    };
    let l = &r["linear_probe"];
    let (fs, f) = tensor(&l["features"]);
    let (ws, w) = tensor(&l["weight"]);
    let b = data(&l["bias"]);
    let labels: Vec<usize> = data(&l["labels"]).iter().map(|&v| v as usize).collect();
    let logits = data(&l["logits"]);
    let (bsz, classes) = (fs[0], ws[0]);
    // dlogits = (softmax(logits) − onehot(labels)) / B, in f64 from torch's logits.
    let mut dlogits = vec![0f32; bsz * classes];
    for i in 0..bsz {
        let row: Vec<f64> = logits[i * classes..(i + 1) * classes]
            .iter()
            .map(|&v| v as f64)
            .collect();
        let mx = row.iter().cloned().fold(f64::NEG_INFINITY, f64::max);
        let z: f64 = row.iter().map(|v| (v - mx).exp()).sum();
        for j in 0..classes {
            let p = (row[j] - mx).exp() / z;
            dlogits[i * classes + j] = ((p - (j == labels[i]) as u32 as f64) / bsz as f64) as f32;
        }
    }
    let want = [
        data(&l["logits"]),
        data(&l["dfeatures"]),
        data(&l["dweight"]),
        data(&l["dbias"]),
    ];
    let w4 = [&want[0][..], &want[1][..], &want[2][..], &want[3][..]];
    linear_both_flavors("linear_probe", (&fs, &f), (&ws, &w), &b, &dlogits, w4, 1e-4, 1e-6);
}

#[test]
fn cpu_linear_backward_matches_finite_differences() {
    let (m, k, n) = (3, 4, 2);
    let mut rng = Rng::new(7);
    let to64 = |v: Vec<f32>| v.into_iter().map(|x| x as f64).collect::<Vec<f64>>();
    let (x, w, b, dy) = (
        to64(rng.vec(m * k)),
        to64(rng.vec(n * k)),
        to64(rng.vec(n)),
        to64(rng.vec(m * n)),
    );
    // L = sum(y ⊙ dy)
    let loss = |x: &[f64], w: &[f64], b: &[f64]| -> f64 {
        let y = cpu::linear_forward_f64(x, w, Some(b), m, k, n, false);
        y.iter().zip(&dy).map(|(a, g)| a * g).sum()
    };
    let g = cpu::linear_backward_f64(&x, &w, &dy, m, k, n);
    let h = 1e-6;
    let fd = |which: usize, i: usize| {
        let mut args = [x.clone(), w.clone(), b.clone()];
        args[which][i] += h;
        let up = loss(&args[0], &args[1], &args[2]);
        args[which][i] -= 2.0 * h;
        let down = loss(&args[0], &args[1], &args[2]);
        (up - down) / (2.0 * h)
    };
    for (which, name, grad) in [(0, "dx", &g.dx), (1, "dweight", &g.dw), (2, "dbias", &g.db)] {
        for (i, &an) in grad.iter().enumerate() {
            let num = fd(which, i);
            assert!((num - an).abs() < 1e-7, "{name}[{i}]: analytic {an}, numeric {num}");
        }
    }
}

#[test]
fn shape_mismatches_are_errors_naming_both_shapes() {
    let g = gpu();
    let x = Tensor::zeros(g, "head.in", &[4, 5]).unwrap();
    let w = Tensor::zeros(g, "head.weight", &[3, 6]).unwrap();
    let y = Tensor::zeros(g, "head.out", &[4, 3]).unwrap();
    let err = linear_forward_with(g, KernelFlavor::Rows, &x, &w, None, &y, false)
        .err()
        .expect("mismatch must fail")
        .to_string();
    assert!(
        err.contains("head.in") && err.contains("[4, 5]") && err.contains("head.weight") && err.contains("[3, 6]"),
        "{err}"
    );
    // Inner dimensions of a transposed product: op(A) is [5,4], op(B) is [3,6].
    let err = matmul(g, &x, &w, &y, true, true)
        .err()
        .expect("mismatch must fail")
        .to_string();
    assert!(
        err.contains("[4, 5]") && err.contains("[3, 6]") && err.contains("Aᵀ·Bᵀ"),
        "{err}"
    );
    // Wrong output shape.
    let w2 = Tensor::zeros(g, "w2", &[5, 2]).unwrap();
    let err = matmul(g, &x, &w2, &y, false, false)
        .err()
        .expect("mismatch must fail")
        .to_string();
    assert!(
        err.contains("head.out") && err.contains("[4, 3]") && err.contains("[4, 2]"),
        "{err}"
    );
    // Backward: dy of the wrong shape.
    let w3 = Tensor::zeros(g, "w3", &[3, 5]).unwrap();
    let dy = Tensor::zeros(g, "dy", &[4, 2]).unwrap();
    let dw = Tensor::zeros(g, "dw", &[3, 5]).unwrap();
    let err = linear_backward_with(g, KernelFlavor::Tiled, &x, &w3, &dy, None, &dw, None)
        .err()
        .expect("mismatch must fail")
        .to_string();
    assert!(err.contains("dy") && err.contains("[4, 2]"), "{err}");
    // Output aliasing an input is refused instead of failing wgpu validation.
    let sq = Tensor::zeros(g, "sq", &[4, 4]).unwrap();
    assert!(matmul(g, &sq, &sq, &sq, false, false).is_err());
}
