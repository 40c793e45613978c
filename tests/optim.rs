mod common;
use common::*;
use serde_json::Value;
use simclr_wgpu::gpu::{Gpu, Tensor};
use simclr_wgpu::optim::schedule::{lr_at, scaled_lr, LrScaling};
use simclr_wgpu::optim::{OptimConfig, Optimizer, OptimizerKind, ParamSlot};
use simclr_wgpu::reference::optim::{self as cpu, Hyper, Slot};

fn f32s(v: &[f64]) -> Vec<f32> {
    v.iter().map(|&x| x as f32).collect()
}

#[track_caller]
fn check(what: &str, got: &[f32], want: &[f32]) {
    let scale = want.iter().fold(0f32, |m, x| m.max(x.abs()));
    assert_close(what, got, want, 1e-5, 1e-6 * scale + 1e-12);
}

fn hyper(cfg: &OptimConfig, lr: f64) -> Hyper {
    Hyper {
        lr,
        momentum: cfg.momentum,
        weight_decay: cfg.weight_decay,
        eta: cfg.eta,
        beta1: cfg.beta1,
        beta2: cfg.beta2,
        eps: cfg.eps,
    }
}

/// One optimizer on the GPU and its CPU twin, over the same tensors.
struct Pair {
    opt: Optimizer,
    cpu: Vec<Slot>,
    cfg: OptimConfig,
}

impl Pair {
    fn new(g: &Gpu, cfg: OptimConfig, tensors: &[(String, Vec<usize>, Vec<f32>, bool)]) -> Pair {
        let slots = tensors
            .iter()
            .map(|(name, shape, w, excluded)| ParamSlot {
                name: name.clone(),
                param: Tensor::from_f32(g, name, shape, w).unwrap(),
                grad: Tensor::zeros(g, &format!("{name}.grad"), shape).unwrap(),
                excluded: *excluded,
            })
            .collect();
        let cpu = tensors.iter().map(|(_, _, w, e)| Slot::new(w, *e)).collect();
        Pair {
            opt: Optimizer::new(g, &cfg, slots).unwrap(),
            cpu,
            cfg,
        }
    }

    /// Update `step` (0-based) with these gradients on both; returns the CPU trust ratios.
    fn step(&mut self, g: &Gpu, grads: &[Vec<f32>], lr: f64, step: usize) -> Vec<f64> {
        let h = hyper(&self.cfg, lr);
        let mut trust = Vec::new();
        for ((slot, s), grad) in self.opt.params().iter().zip(&mut self.cpu).zip(grads) {
            slot.grad.write_f32(g, grad);
            match self.cfg.kind {
                OptimizerKind::Lars => trust.push(cpu::lars_step(s, grad, &h)),
                OptimizerKind::Sgd => cpu::sgd_step(s, grad, &h),
                OptimizerKind::AdamW => cpu::adamw_step(s, grad, &h, step as u32 + 1),
            }
        }
        self.opt.set_step(g, lr as f32, step);
        g.run(self.opt.program()).unwrap();
        trust
    }

    /// The GPU state of tensor k by suffix ("momentum_buffer", "exp_avg", "exp_avg_sq").
    fn state(&self, g: &Gpu, k: usize, suffix: &str) -> Vec<f32> {
        let name = format!("{}.{suffix}", self.opt.params()[k].name);
        let (_, t) = self.opt.state().into_iter().find(|(n, _)| *n == name).unwrap();
        t.read_f32(g).unwrap()
    }
}

fn config(kind: OptimizerKind, hyper: &Value) -> OptimConfig {
    let f = |k: &str| hyper[k].as_f64();
    let mut cfg = OptimConfig {
        kind,
        ..Default::default()
    };
    cfg.weight_decay = f("weight_decay").unwrap();
    if let Some(m) = f("momentum") {
        cfg.momentum = m;
    }
    if let Some(e) = f("eta") {
        cfg.eta = e;
    }
    if let Some(eps) = f("eps") {
        cfg.eps = eps;
    }
    if let Some(b) = hyper["betas"].as_array() {
        cfg.beta1 = b[0].as_f64().unwrap();
        cfg.beta2 = b[1].as_f64().unwrap();
    }
    cfg
}

#[test]
fn two_steps_of_each_optimizer_match_torch() {
    let g = gpu();
    let Some(r) = reference("optimizers.json") else { return };
    let params = r["params"].as_array().unwrap();
    for (key, kind) in [
        ("lars_simclr", OptimizerKind::Lars),
        ("lars_simclr_wd0.1", OptimizerKind::Lars),
        ("sgd_momentum", OptimizerKind::Sgd),
        ("adamw", OptimizerKind::AdamW),
    ] {
        let case = &r[key];
        let cfg = config(kind, &case["hyper"]);
        let lr = case["hyper"]["lr"].as_f64().unwrap();
        // The torch references apply weight decay to every tensor for SGD and AdamW.
        let tensors: Vec<_> = params
            .iter()
            .map(|p| {
                let (shape, w) = tensor(&p["param"]);
                let excluded = kind == OptimizerKind::Lars && p["excluded_from_wd_and_lars"].as_bool().unwrap();
                (p["name"].as_str().unwrap().to_string(), shape, w, excluded)
            })
            .collect();
        let mut pair = Pair::new(g, cfg, &tensors);
        for step in 0..2 {
            let grads: Vec<Vec<f32>> = params
                .iter()
                .map(|p| data(&p[format!("grad_step{}", step + 1)]))
                .collect();
            let cpu_trust = pair.step(g, &grads, lr, step);
            let gpu_trust = pair.opt.trust_ratios().map(|t| t.read_f32(g).unwrap());
            for (k, want) in case["steps"][step].as_array().unwrap().iter().enumerate() {
                let what = format!("{key} step {} {}", step + 1, want["name"].as_str().unwrap());
                let w = data(&want["param"]);
                check(
                    &format!("{what} param gpu"),
                    &pair.opt.params()[k].param.read_f32(g).unwrap(),
                    &w,
                );
                check(&format!("{what} param cpu"), &f32s(&pair.cpu[k].param), &w);
                let states: &[(&str, bool)] = match kind {
                    OptimizerKind::AdamW => &[("exp_avg", true), ("exp_avg_sq", false)],
                    _ => &[("momentum_buffer", true)],
                };
                for &(s, first) in states {
                    let want_s = data(&want[s]);
                    let cpu_s = if first {
                        &pair.cpu[k].state1
                    } else {
                        &pair.cpu[k].state2
                    };
                    check(&format!("{what} {s} gpu"), &pair.state(g, k, s), &want_s);
                    check(&format!("{what} {s} cpu"), &f32s(cpu_s), &want_s);
                }
                if let Some(t) = want["trust_ratio"].as_f64() {
                    check(&format!("{what} trust cpu"), &[cpu_trust[k] as f32], &[t as f32]);
                    check(
                        &format!("{what} trust gpu"),
                        &[gpu_trust.as_ref().unwrap()[k]],
                        &[t as f32],
                    );
                }
            }
        }
    }
}

#[test]
fn gpu_matches_cpu_on_large_and_odd_tensors() {
    let g = gpu();
    let mut rng = Rng::new(21);
    // A multi-workgroup LARS reduction (70001 elements), odd 1-D tensors, an all-zero gradient.
    let shapes: [(&str, Vec<usize>, bool); 4] = [
        ("big.weight", vec![7, 73, 137], false),
        ("odd.bias", vec![37], true),
        ("zero_grad.weight", vec![5, 3], false),
        ("tiny.weight", vec![1, 1], false),
    ];
    for kind in [OptimizerKind::Lars, OptimizerKind::Sgd, OptimizerKind::AdamW] {
        let cfg = OptimConfig {
            kind,
            weight_decay: 0.01,
            ..Default::default()
        };
        let tensors: Vec<_> = shapes
            .iter()
            .map(|(n, s, e)| (n.to_string(), s.clone(), rng.vec(s.iter().product()), *e))
            .collect();
        let mut pair = Pair::new(g, cfg, &tensors);
        for (step, lr) in [0.5, 0.2, 0.1].into_iter().enumerate() {
            let grads: Vec<Vec<f32>> = tensors
                .iter()
                .map(|(n, s, _, _)| {
                    let len = s.iter().product();
                    if n.starts_with("zero_grad") {
                        vec![0.0; len]
                    } else {
                        rng.vec(len)
                    }
                })
                .collect();
            let cpu_trust = pair.step(g, &grads, lr, step);
            for (k, t) in tensors.iter().enumerate() {
                let what = format!("{kind:?} step {} {}", step + 1, t.0);
                check(
                    &what,
                    &pair.opt.params()[k].param.read_f32(g).unwrap(),
                    &f32s(&pair.cpu[k].param),
                );
            }
            if let Some(t) = pair.opt.trust_ratios() {
                check(&format!("{kind:?} trust"), &t.read_f32(g).unwrap(), &f32s(&cpu_trust));
            }
        }
    }
}

#[test]
fn state_names_config_and_errors() {
    let g = gpu();
    let w = Tensor::zeros(g, "fc.weight", &[2, 3]).unwrap();
    let gw = Tensor::zeros(g, "fc.weight.grad", &[2, 3]).unwrap();
    let b = Tensor::zeros(g, "fc.bias", &[2]).unwrap();
    let gb = Tensor::zeros(g, "fc.bias.grad", &[2]).unwrap();
    let slots = vec![ParamSlot::new("fc.weight", &w, &gw), ParamSlot::new("fc.bias", &b, &gb)];
    assert!(!slots[0].excluded && slots[1].excluded);
    let names = |kind| {
        let cfg = OptimConfig {
            kind,
            ..Default::default()
        };
        let o = Optimizer::new(g, &cfg, slots.clone()).unwrap();
        o.state().into_iter().map(|(n, _)| n).collect::<Vec<_>>()
    };
    assert_eq!(
        names(OptimizerKind::Lars),
        ["fc.weight.momentum_buffer", "fc.bias.momentum_buffer"]
    );
    assert_eq!(
        names(OptimizerKind::AdamW),
        [
            "fc.weight.exp_avg",
            "fc.weight.exp_avg_sq",
            "fc.bias.exp_avg",
            "fc.bias.exp_avg_sq"
        ]
    );

    let cfg: OptimConfig = toml::from_str("kind = \"adamw\"\nweight_decay = 0.05").unwrap();
    assert_eq!(
        (cfg.kind, cfg.weight_decay, cfg.eta, cfg.momentum),
        (OptimizerKind::AdamW, 0.05, 1e-3, 0.9)
    );
    let back: OptimConfig = toml::from_str(&toml::to_string(&cfg).unwrap()).unwrap();
    assert_eq!(back, cfg);

    let bad = OptimConfig {
        momentum: 1.5,
        ..Default::default()
    };
    let e = Optimizer::new(g, &bad, slots.clone()).err().unwrap().to_string();
    assert!(e.contains("momentum"), "{e}");
    let mismatched = vec![ParamSlot::new("fc.weight", &w, &gb)];
    let e = Optimizer::new(g, &OptimConfig::default(), mismatched)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("[2, 3]") && e.contains("[2]"), "{e}");
    let twice = vec![slots[0].clone(), slots[0].clone()];
    let e = Optimizer::new(g, &OptimConfig::default(), twice)
        .err()
        .unwrap()
        .to_string();
    assert!(e.contains("twice"), "{e}");
}

#[test]
fn lr_schedule_matches_reference_exactly() {
    let Some(r) = reference("lr_schedule.json") else { return };
    let f = |k: &str| r[k].as_f64().unwrap();
    let u = |k: &str| r[k].as_u64().unwrap() as usize;
    let base = scaled_lr(f("base_lr"), u("batch_size"), LrScaling::Linear);
    let steps = r["steps"].as_array().unwrap();
    let lrs = r["lr"].as_array().unwrap();
    assert!(steps.len() > 10);
    for (s, want) in steps.iter().zip(lrs) {
        let (s, want) = (s.as_u64().unwrap() as usize, want.as_f64().unwrap());
        let got = lr_at(s, base, u("warmup_steps"), u("total_steps"));
        // The reference is rounded to 7 significant digits.
        assert!(
            (got - want).abs() <= 5e-7 * want.abs() + 1e-15,
            "step {s}: {got} vs {want}"
        );
    }
    assert_eq!(lr_at(0, 0.3, 10, 100), 0.0);
    assert_eq!(lr_at(10, 0.3, 10, 100), 0.3);
    assert_eq!(lr_at(100, 0.3, 10, 100), 0.0);
    assert_eq!(lr_at(5000, 0.3, 10, 100), 0.0);
    assert_eq!(lr_at(3, 0.3, 0, 0), 0.0);
    assert_eq!(scaled_lr(0.3, 512, LrScaling::Linear), 0.6);
    assert!((scaled_lr(0.075, 4096, LrScaling::Sqrt) - 4.8).abs() < 1e-12);
}
