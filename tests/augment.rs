mod common;
use common::*;
use simclr_wgpu::augment::preview::render_views;
use simclr_wgpu::augment::{batch_rng, sample_batch, AugmentConfig, Augmenter, CropBox, GpuImages, Jitter, ViewParams};
use simclr_wgpu::data::Dataset;
use simclr_wgpu::gpu::{KernelFlavor, Tensor};
use simclr_wgpu::reference::augment as cpu;

/// CHW → HWC (the GPU's float source layout).
fn hwc(chw: &[f32], h: usize, w: usize) -> Vec<f32> {
    let mut out = vec![0f32; chw.len()];
    for c in 0..3 {
        for p in 0..h * w {
            out[p * 3 + c] = chw[c * h * w + p];
        }
    }
    out
}

fn jitter_only(op: u8, factor: f32) -> Jitter {
    let mut j = Jitter {
        applied: true,
        order: [op, (op + 1) % 4, (op + 2) % 4, (op + 3) % 4],
        ..Jitter::NONE
    };
    match op {
        0 => j.brightness = factor,
        1 => j.contrast = factor,
        2 => j.saturation = factor,
        _ => j.hue = factor,
    }
    j
}

/// Run one float image (CHW) through the GPU pass with `p`, output side `size`, raw RGB.
fn gpu_view(chw: &[f32], h: usize, w: usize, p: ViewParams, size: usize, blur_kernel: Option<usize>) -> Vec<f32> {
    let g = gpu();
    let images = GpuImages::from_f32(g, &hwc(chw, h, w), 1, h, w).unwrap();
    let cfg = AugmentConfig {
        out_size: size,
        blur_kernel,
        ..Default::default()
    };
    let mut v = render_views(g, &images, &cfg, &[0], &[p, p], true).unwrap();
    v.truncate(3 * size * size);
    v
}

#[test]
fn colour_ops_match_torchvision_on_cpu_and_gpu() {
    let Some(r) = reference("color_ops.json") else { return };
    let img = data(&r["image_4x4"]);
    let ops = &r["ops_on_image_4x4"];
    let id = ViewParams::identity(4, 4);
    let cases: Vec<(&str, Vec<f32>, ViewParams)> = vec![
        (
            "adjust_brightness_1.3",
            cpu::adjust_brightness(&img, 1.3),
            ViewParams {
                jitter: jitter_only(0, 1.3),
                ..id
            },
        ),
        (
            "adjust_contrast_0.7",
            cpu::adjust_contrast(&img, 0.7),
            ViewParams {
                jitter: jitter_only(1, 0.7),
                ..id
            },
        ),
        (
            "adjust_saturation_1.5",
            cpu::adjust_saturation(&img, 1.5),
            ViewParams {
                jitter: jitter_only(2, 1.5),
                ..id
            },
        ),
        (
            "adjust_hue_0.1",
            cpu::adjust_hue(&img, 0.1),
            ViewParams {
                jitter: jitter_only(3, 0.1),
                ..id
            },
        ),
        (
            "adjust_hue_-0.45",
            cpu::adjust_hue(&img, -0.45),
            ViewParams {
                jitter: jitter_only(3, -0.45),
                ..id
            },
        ),
        (
            "rgb_to_grayscale_3ch",
            cpu::rgb_to_grayscale(&img),
            ViewParams { gray: true, ..id },
        ),
        ("hflip", cpu::hflip(&img, 4, 4), ViewParams { flip: true, ..id }),
    ];
    for (name, got_cpu, p) in cases {
        let want = data(&ops[name]["output"]);
        assert_close(&format!("{name} cpu"), &got_cpu, &want, 1e-5, 1e-6);
        assert_close(
            &format!("{name} gpu"),
            &gpu_view(&img, 4, 4, p, 4, None),
            &want,
            1e-5,
            2e-6,
        );
    }
    let m = ops["adjust_contrast_0.7"]["gray_mean"].as_f64().unwrap() as f32;
    assert_close("gray mean", &[cpu::gray_mean(&img)], &[m], 1e-6, 1e-7);

    let b = &r["gaussian_blur_k3_sigma1_on_5x5"];
    let k: Vec<f32> = cpu::gaussian_kernel1d(3, 1.0).iter().map(|&v| v as f32).collect();
    assert_close("blur kernel", &k, &data(&b["kernel1d"]), 1e-6, 1e-7);
    let x = data(&b["input"]);
    let want = data(&b["output"]);
    assert_close("blur cpu", &cpu::gaussian_blur(&x, 5, 5, 3, 1.0), &want, 1e-5, 1e-6);
    let p = ViewParams {
        blur_sigma: 1.0,
        ..ViewParams::identity(5, 5)
    };
    assert_close("blur gpu", &gpu_view(&x, 5, 5, p, 5, Some(3)), &want, 1e-5, 2e-6);

    let c = &r["resized_crop_8x8_to_4x4"];
    let x = data(&c["input"]);
    let want = data(&c["output"]);
    let (top, left, h, w) = (1, 2, 5, 6);
    assert_close(
        "resized crop cpu",
        &cpu::resized_crop(&x, 8, 8, top, left, h, w, 4, 4),
        &want,
        1e-5,
        1e-6,
    );
    let p = ViewParams {
        crop: CropBox {
            top: top as u32,
            left: left as u32,
            height: h as u32,
            width: w as u32,
        },
        ..ViewParams::identity(8, 8)
    };
    assert_close("resized crop gpu", &gpu_view(&x, 8, 8, p, 4, None), &want, 1e-5, 2e-6);
}

/// Random byte images of an odd, non-square size (catches H/W swaps).
fn random_dataset(n: usize, h: usize, w: usize, seed: u64) -> Dataset {
    let mut rng = Rng::new(seed);
    // Smooth-ish content (a gradient plus noise) so that crops and blurs have structure.
    let mut images = Vec::with_capacity(n * h * w * 3);
    for i in 0..n {
        for y in 0..h {
            for x in 0..w {
                for c in 0..3 {
                    let base = (x * 255 / w + y * 128 / h + 60 * c + 37 * i) % 256;
                    images.push(((base as f32 + 40.0 * rng.uniform()).clamp(0.0, 255.0)) as u8);
                }
            }
        }
    }
    Dataset {
        name: "random".into(),
        images,
        labels: None,
        classes: vec![],
        height: h,
        width: w,
        mean: [0.45, 0.5, 0.55],
        std: [0.2, 0.25, 0.3],
    }
}

#[test]
fn gpu_pass_equals_cpu_reference_on_random_params() {
    let g = gpu();
    let ds = random_dataset(7, 37, 45, 11);
    // Every op fires often; the batch (5) is smaller than the planned one (6).
    for (size, flavor, streamed) in [
        (32, KernelFlavor::Rows, false),
        (32, KernelFlavor::Tiled, true),
        (96, KernelFlavor::Tiled, false),
        (96, KernelFlavor::Rows, true),
    ] {
        let cfg = AugmentConfig {
            out_size: size,
            jitter_strength: 1.0,
            jitter_p: 0.9,
            gray_p: 0.3,
            blur_p: 0.6,
            ..Default::default()
        };
        let images = if streamed {
            GpuImages::upload_streamed(g, &ds).unwrap()
        } else {
            GpuImages::upload(g, &ds).unwrap()
        };
        assert_eq!(images.is_resident(), !streamed);
        let out = Tensor::zeros(g, "views", &[12, 3, size, size]).unwrap();
        let mut aug = Augmenter::with_flavor(g, &images, &out, &cfg, flavor).unwrap();
        let indices = [6u32, 0, 3, 3, 5];
        let n = indices.len();
        let params = aug.prepare(g, &indices, &mut batch_rng(5, size as u64));
        assert_eq!(params.len(), 2 * n);
        g.run(aug.program()).unwrap();
        let got = out.read_f32(g).unwrap();
        let plane = 3 * size * size;
        for (row, p) in params.iter().enumerate() {
            let i = indices[row % n] as usize;
            let src = cpu::to_chw(ds.image(i), ds.height, ds.width);
            let want = cpu::augment_view(
                &src,
                ds.height,
                ds.width,
                p,
                size,
                cfg.blur_kernel_size(),
                ds.mean,
                ds.std,
            );
            let what = format!("size {size} {flavor:?} streamed {streamed} row {row} {p:?}");
            assert_close(&what, &got[row * plane..(row + 1) * plane], &want, 0.0, 1e-4);
        }
        // The sampled batch exercised every op.
        assert!(params.iter().any(|p| p.blur_sigma > 0.0) && params.iter().any(|p| p.gray));
        assert!(params.iter().any(|p| p.jitter.active_ops().contains(&1)));
    }
}

#[test]
fn params_are_a_function_of_seed_and_step_and_stay_in_range() {
    let cfg = AugmentConfig::for_size(96);
    let a = sample_batch(&mut batch_rng(7, 3), &cfg, 8, 96, 96);
    let b = sample_batch(&mut batch_rng(7, 3), &cfg, 8, 96, 96);
    let c = sample_batch(&mut batch_rng(7, 4), &cfg, 8, 96, 96);
    let d = sample_batch(&mut batch_rng(8, 3), &cfg, 8, 96, 96);
    assert_eq!(a, b);
    assert_ne!(a, c);
    assert_ne!(a, d);
    // JSON round trip (the preview and checkpoints store them).
    let back: Vec<ViewParams> = serde_json::from_str(&serde_json::to_string(&a).unwrap()).unwrap();
    assert_eq!(a, back);

    let (h, w) = (40usize, 50usize);
    let many = sample_batch(&mut batch_rng(1, 0), &cfg, 2000, h, w);
    let rate = |f: &dyn Fn(&ViewParams) -> bool| many.iter().filter(|p| f(p)).count() as f32 / many.len() as f32;
    assert!((rate(&|p| p.flip) - 0.5).abs() < 0.04);
    assert!((rate(&|p| p.jitter.applied) - 0.8).abs() < 0.04);
    assert!((rate(&|p| p.gray) - 0.2).abs() < 0.04);
    assert!((rate(&|p| p.blur_sigma > 0.0) - 0.5).abs() < 0.04);
    for p in &many {
        let c = p.crop;
        assert!(c.height >= 1 && c.width >= 1);
        assert!(c.top + c.height <= h as u32 && c.left + c.width <= w as u32, "{c:?}");
        let area = (c.height * c.width) as f32 / (h * w) as f32;
        assert!((0.06..=1.0).contains(&area), "{c:?}");
        let j = p.jitter;
        let mut order = j.order;
        order.sort();
        assert_eq!(order, [0, 1, 2, 3]);
        for f in [j.brightness, j.contrast, j.saturation] {
            assert!((0.6..=1.4).contains(&f), "{j:?}");
        }
        assert!(j.hue.abs() <= 0.1, "{j:?}");
        assert!(p.blur_sigma == 0.0 || (0.1..=2.0).contains(&p.blur_sigma));
    }
    // Aspect ratios of successful tries are log-uniform in [3/4, 4/3] (rounding aside).
    let ratios: Vec<f32> = many
        .iter()
        .map(|p| p.crop.width as f32 / p.crop.height as f32)
        .collect();
    assert!(ratios.iter().all(|&r| (0.6..=1.7).contains(&r)));
    assert!(ratios.iter().any(|&r| r < 0.85) && ratios.iter().any(|&r| r > 1.2));
}

#[test]
fn bad_shapes_and_params_are_errors_not_panics() {
    let g = gpu();
    let ds = random_dataset(2, 8, 8, 1);
    let images = GpuImages::upload(g, &ds).unwrap();
    let cfg = AugmentConfig::default();
    let wrong = Tensor::zeros(g, "encoder.input", &[4, 3, 16, 16]).unwrap();
    let err = Augmenter::new(g, &images, &wrong, &cfg).err().unwrap().to_string();
    assert!(err.contains("encoder.input") && err.contains("[4, 3, 16, 16]"), "{err}");

    let out = Tensor::zeros(g, "encoder.input", &[4, 3, 32, 32]).unwrap();
    let mut aug = Augmenter::new(g, &images, &out, &cfg).unwrap();
    let mut p = ViewParams::identity(8, 8);
    p.crop.left = 4; // 4 + 8 > 8
    let err = aug.prepare_with(g, &[0], &[p, p]).unwrap_err().to_string();
    assert!(err.contains("crop"), "{err}");
    let blurred = ViewParams {
        blur_sigma: 1.0,
        ..ViewParams::identity(8, 8)
    };
    assert!(aug.prepare_with(g, &[0], &[blurred, blurred]).is_err());
    assert!(aug.prepare_with(g, &[2], &[ViewParams::identity(8, 8); 2]).is_err());
    assert!(aug
        .prepare_with(g, &[0, 1, 0], &[ViewParams::identity(8, 8); 6])
        .is_err());
    let bad = AugmentConfig {
        flip_p: 1.5,
        ..Default::default()
    };
    assert!(Augmenter::new(g, &images, &out, &bad).is_err());
}

/// A tiny CIFAR-10 layout (4 images per file) for the command tests.
fn tiny_cifar(dir: &std::path::Path) {
    let d = dir.join("cifar-10-batches-bin");
    std::fs::create_dir_all(&d).unwrap();
    let mut rng = Rng::new(99);
    for f in 1..=5 {
        let mut bytes = Vec::new();
        for r in 0..4u8 {
            bytes.push(r % 10);
            bytes.extend((0..3072).map(|_| (rng.next_u32() % 256) as u8));
        }
        std::fs::write(d.join(format!("data_batch_{f}.bin")), bytes).unwrap();
    }
}

#[test]
fn augment_command_writes_the_same_png_for_the_same_seed() {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("augment-command");
    let _ = std::fs::remove_dir_all(&dir);
    tiny_cifar(&dir);
    let run = |seed: &str, out: &str| {
        let status = std::process::Command::new(env!("CARGO_BIN_EXE_simclr"))
            .args(["augment", "--data"])
            .arg(&dir)
            .args(["--n", "3", "--seed", seed, "--out"])
            .arg(dir.join(out))
            .status()
            .unwrap();
        assert!(status.success());
        (
            std::fs::read(dir.join(out)).unwrap(),
            std::fs::read_to_string(dir.join(out).with_extension("json")).unwrap(),
        )
    };
    let (a, ja) = run("7", "a.png");
    let (b, jb) = run("7", "b.png");
    let (c, _) = run("8", "c.png");
    assert_eq!(a, b, "same seed, different PNG bytes");
    assert_eq!(ja, jb);
    assert_ne!(a, c);
    let png = image::load_from_memory(&a).unwrap();
    // 3 rows × (original | view 1 | view 2) of 128 px cells (32 px × scale 4) with 4 px gaps.
    assert_eq!((png.width(), png.height()), (3 * 128 + 4 * 4, 3 * (128 + 4) + 4));
    let j: serde_json::Value = serde_json::from_str(&ja).unwrap();
    assert_eq!(j["rows"].as_array().unwrap().len(), 3);
    assert!(j["rows"][0]["view2"]["crop"]["width"].as_u64().unwrap() >= 1);
}

#[test]
fn augment_benchmark_runs_and_reports_rates() {
    let b = simclr_wgpu::bench::augment::bench_augment_with(gpu(), &[8], 4, std::time::Duration::ZERO).unwrap();
    assert_eq!(b.rows.len(), 1);
    let r = &b.rows[0];
    assert!(r.iterations >= 3 && r.images_per_s > 0.0 && (r.views_per_s - 2.0 * r.images_per_s).abs() < 1e-6);
    assert!(b.to_string().contains("images/s"));
}
