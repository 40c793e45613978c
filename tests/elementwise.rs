mod common;
use common::*;
use simclr_wgpu::gpu::{Program, Tensor};
use simclr_wgpu::{nn::elementwise as ew, reference::elementwise as cpu};

#[test]
fn relu_matches_cpu_and_torch() {
    let g = gpu();
    let Some(r) = reference("layers.json") else { return };
    let (shape, x) = tensor(&r["relu"]["x"]);
    let dy = data(&r["relu"]["dy"]);
    let xt = Tensor::from_f32(g, "x", &shape, &x).unwrap();
    let dyt = Tensor::from_f32(g, "dy", &shape, &dy).unwrap();
    let yt = Tensor::zeros(g, "y", &shape).unwrap();
    let dxt = Tensor::zeros(g, "dx", &shape).unwrap();
    let mut p = Program::new();
    p.push(ew::relu_forward(g, &xt, &yt).unwrap());
    p.push(ew::relu_backward(g, &xt, &dyt, &dxt).unwrap());
    g.run(&p).unwrap();
    assert_close("relu y cpu", &cpu::relu_forward(&x), &data(&r["relu"]["y"]), 1e-5, 1e-6);
    assert_close(
        "relu dx cpu",
        &cpu::relu_backward(&x, &dy),
        &data(&r["relu"]["dx"]),
        1e-5,
        1e-6,
    );
    assert_close(
        "relu y gpu",
        &yt.read_f32(g).unwrap(),
        &data(&r["relu"]["y"]),
        1e-5,
        1e-6,
    );
    assert_close(
        "relu dx gpu",
        &dxt.read_f32(g).unwrap(),
        &data(&r["relu"]["dx"]),
        1e-5,
        1e-6,
    );
}

#[test]
fn residual_add_matches_cpu_on_odd_sizes() {
    let g = gpu();
    let mut rng = Rng::new(3);
    for n in [1usize, 7 * 9, 1000, 70_001] {
        let (a, b) = (rng.vec(n), rng.vec(n));
        let at = Tensor::from_f32(g, "a", &[n], &a).unwrap();
        let bt = Tensor::from_f32(g, "b", &[n], &b).unwrap();
        let out = Tensor::zeros(g, "out", &[n]).unwrap();
        for relu in [false, true] {
            let mut p = Program::new();
            p.push(ew::add(g, &at, &bt, &out, relu).unwrap());
            g.run(&p).unwrap();
            assert_close("add", &out.read_f32(g).unwrap(), &cpu::add(&a, &b, relu), 0.0, 0.0);
        }
    }
}

#[test]
fn shape_mismatch_is_an_error_naming_both_shapes() {
    let g = gpu();
    let a = Tensor::zeros(g, "block.out", &[2, 3]).unwrap();
    let b = Tensor::zeros(g, "shortcut", &[3, 2]).unwrap();
    let err = ew::add(g, &a, &b, &a, false)
        .err()
        .expect("mismatch must fail")
        .to_string();
    assert!(
        err.contains("block.out") && err.contains("[2, 3]") && err.contains("[3, 2]"),
        "{err}"
    );
}

#[test]
fn oversized_tensor_is_an_error_naming_it() {
    let g = gpu();
    let limit = g.limits.max_storage_buffer_binding_size;
    let n = (limit / 4 + 1) as usize;
    let err = Tensor::zeros(g, "huge.similarity", &[n])
        .err()
        .expect("must fail")
        .to_string();
    assert!(
        err.contains("huge.similarity") && err.contains(&limit.to_string()),
        "{err}"
    );
}
