//! CPU reference of the augmentation pipeline, op by op as torchvision.transforms.functional
//! computes it on float32 CHW RGB images in [0, 1] (see ../shared/reference/color_ops.json).
//! Per-pixel maths in f32 like torchvision; the contrast mean and the blur accumulate in f64.

use crate::augment::params::{ViewParams, BRIGHTNESS, CONTRAST, SATURATION};

/// H×W×3 bytes → 3×H×W floats in [0, 1].
pub fn to_chw(src: &[u8], h: usize, w: usize) -> Vec<f32> {
    let mut out = vec![0f32; 3 * h * w];
    for p in 0..h * w {
        for c in 0..3 {
            out[c * h * w + p] = src[p * 3 + c] as f32 / 255.0;
        }
    }
    out
}

/// `F.resized_crop(img, top, left, ch, cw, [oh, ow])`, bilinear, antialias off: torch's
/// `upsample_bilinear2d` with align_corners = False.
#[allow(clippy::too_many_arguments)]
pub fn resized_crop(
    img: &[f32],
    h: usize,
    w: usize,
    top: usize,
    left: usize,
    ch: usize,
    cw: usize,
    oh: usize,
    ow: usize,
) -> Vec<f32> {
    let src = |size: usize, out: usize, d: usize| -> (usize, usize, f32) {
        let s = ((d as f32 + 0.5) * (size as f32 / out as f32) - 0.5).max(0.0);
        let i0 = (s as usize).min(size - 1);
        let i1 = (i0 + 1).min(size - 1);
        (i0, i1, s - i0 as f32)
    };
    let mut out = vec![0f32; 3 * oh * ow];
    for c in 0..3 {
        let plane = &img[c * h * w..(c + 1) * h * w];
        let at = |y: usize, x: usize| plane[(top + y) * w + left + x];
        for oy in 0..oh {
            let (y0, y1, ly) = src(ch, oh, oy);
            for ox in 0..ow {
                let (x0, x1, lx) = src(cw, ow, ox);
                let (hy, hx) = (1.0 - ly, 1.0 - lx);
                out[(c * oh + oy) * ow + ox] =
                    hy * (hx * at(y0, x0) + lx * at(y0, x1)) + ly * (hx * at(y1, x0) + lx * at(y1, x1));
            }
        }
    }
    out
}

/// out[c, i, j] = x[c, i, W-1-j]
pub fn hflip(img: &[f32], h: usize, w: usize) -> Vec<f32> {
    let mut out = img.to_vec();
    for row in out.chunks_exact_mut(w).take(3 * h) {
        row.reverse();
    }
    out
}

fn gray(r: f32, g: f32, b: f32) -> f32 {
    0.2989 * r + 0.587 * g + 0.114 * b
}

/// Per-pixel grayscale plane (weights add up to 0.9999, as torchvision's).
pub fn grayscale_plane(img: &[f32]) -> Vec<f32> {
    let n = img.len() / 3;
    (0..n).map(|p| gray(img[p], img[n + p], img[2 * n + p])).collect()
}

/// `rgb_to_grayscale(img, 3)`: the gray plane copied to three channels.
pub fn rgb_to_grayscale(img: &[f32]) -> Vec<f32> {
    let g = grayscale_plane(img);
    [g.as_slice(), g.as_slice(), g.as_slice()].concat()
}

fn blend(a: f32, b: f32, r: f32) -> f32 {
    (r * a + (1.0 - r) * b).clamp(0.0, 1.0)
}

pub fn adjust_brightness(img: &[f32], f: f32) -> Vec<f32> {
    img.iter().map(|&x| blend(x, 0.0, f)).collect()
}

/// The mean of the grayscale image: the one scalar contrast blends with.
pub fn gray_mean(img: &[f32]) -> f32 {
    let g = grayscale_plane(img);
    (g.iter().map(|&v| v as f64).sum::<f64>() / g.len() as f64) as f32
}

pub fn adjust_contrast(img: &[f32], f: f32) -> Vec<f32> {
    let m = gray_mean(img);
    img.iter().map(|&x| blend(x, m, f)).collect()
}

pub fn adjust_saturation(img: &[f32], f: f32) -> Vec<f32> {
    let g = grayscale_plane(img);
    let n = g.len();
    img.iter().enumerate().map(|(i, &x)| blend(x, g[i % n], f)).collect()
}

/// torchvision `_rgb2hsv` → h' = (h + f) mod 1 (floored) → `_hsv2rgb`, in f32.
pub fn hue_pixel(r: f32, g: f32, b: f32, f: f32) -> [f32; 3] {
    let maxc = r.max(g).max(b);
    let minc = r.min(g).min(b);
    let eqc = maxc == minc;
    let cr = maxc - minc;
    let s = cr / if eqc { 1.0 } else { maxc };
    let crd = if eqc { 1.0 } else { cr };
    let (rc, gc, bc) = ((maxc - r) / crd, (maxc - g) / crd, (maxc - b) / crd);
    let h = if maxc == r {
        bc - gc
    } else if maxc == g {
        2.0 + rc - bc
    } else {
        4.0 + gc - rc
    };
    let h = (h / 6.0 + 1.0) % 1.0; // positive here: fmod = floored mod
    let h = h + f;
    let h = h - h.floor();
    let v = maxc;
    let i = (h * 6.0).floor();
    let ff = h * 6.0 - i;
    let p = (v * (1.0 - s)).clamp(0.0, 1.0);
    let q = (v * (1.0 - s * ff)).clamp(0.0, 1.0);
    let t = (v * (1.0 - s * (1.0 - ff))).clamp(0.0, 1.0);
    match (i as i32).rem_euclid(6) {
        0 => [v, t, p],
        1 => [q, v, p],
        2 => [p, v, t],
        3 => [p, q, v],
        4 => [t, p, v],
        _ => [v, p, q],
    }
}

pub fn adjust_hue(img: &[f32], f: f32) -> Vec<f32> {
    let n = img.len() / 3;
    let mut out = vec![0f32; img.len()];
    for p in 0..n {
        let o = hue_pixel(img[p], img[n + p], img[2 * n + p], f);
        for c in 0..3 {
            out[c * n + p] = o[c];
        }
    }
    out
}

/// Normalised 1-D Gaussian: k_i ∝ exp(-x_i² / 2σ²), x = -(k-1)/2 ..= (k-1)/2.
pub fn gaussian_kernel1d(size: usize, sigma: f32) -> Vec<f64> {
    let half = (size as f64 - 1.0) / 2.0;
    let k: Vec<f64> = (0..size)
        .map(|i| {
            let x = (i as f64 - half) / sigma as f64;
            (-0.5 * x * x).exp()
        })
        .collect();
    let s: f64 = k.iter().sum();
    k.into_iter().map(|v| v / s).collect()
}

/// Reflect padding without repeating the edge: x[-1] = x[1], x[n] = x[n-2].
pub fn reflect(i: isize, n: usize) -> usize {
    if n == 1 {
        return 0;
    }
    let m = 2 * n as isize - 2;
    let j = i.abs() % m;
    (if j >= n as isize { m - j } else { j }) as usize
}

/// `F.gaussian_blur(img, [size, size], [sigma, sigma])` with reflect padding (separable).
pub fn gaussian_blur(img: &[f32], h: usize, w: usize, size: usize, sigma: f32) -> Vec<f32> {
    let k = gaussian_kernel1d(size, sigma);
    let r = (size / 2) as isize;
    let mut tmp = vec![0f64; img.len()];
    for c in 0..3 {
        for y in 0..h {
            for x in 0..w {
                tmp[(c * h + y) * w + x] = (0..size)
                    .map(|i| k[i] * img[(c * h + y) * w + reflect(x as isize + i as isize - r, w)] as f64)
                    .sum();
            }
        }
    }
    let mut out = vec![0f32; img.len()];
    for c in 0..3 {
        for y in 0..h {
            for x in 0..w {
                out[(c * h + y) * w + x] = (0..size)
                    .map(|i| k[i] * tmp[(c * h + reflect(y as isize + i as isize - r, h)) * w + x])
                    .sum::<f64>() as f32;
            }
        }
    }
    out
}

/// (x - mean[c]) / std[c]
pub fn normalize(img: &mut [f32], mean: [f32; 3], std: [f32; 3]) {
    let n = img.len() / 3;
    for (i, v) in img.iter_mut().enumerate() {
        let c = i / n;
        *v = (*v - mean[c]) / std[c];
    }
}

/// One view of a 3×H×W float image: crop + resize to `size`, flip, colour jitter in its order,
/// grayscale, blur (kernel `blur_kernel`), normalisation. The GPU pass must equal this.
#[allow(clippy::too_many_arguments)]
pub fn augment_view(
    img: &[f32],
    h: usize,
    w: usize,
    p: &ViewParams,
    size: usize,
    blur_kernel: usize,
    mean: [f32; 3],
    std: [f32; 3],
) -> Vec<f32> {
    let c = &p.crop;
    let (top, left) = (c.top as usize, c.left as usize);
    let mut x = resized_crop(img, h, w, top, left, c.height as usize, c.width as usize, size, size);
    if p.flip {
        x = hflip(&x, size, size);
    }
    let j = &p.jitter;
    for op in j.active_ops() {
        x = match op {
            BRIGHTNESS => adjust_brightness(&x, j.brightness),
            CONTRAST => adjust_contrast(&x, j.contrast),
            SATURATION => adjust_saturation(&x, j.saturation),
            _ => adjust_hue(&x, j.hue),
        };
    }
    if p.gray {
        x = rgb_to_grayscale(&x);
    }
    if p.blur_sigma > 0.0 {
        x = gaussian_blur(&x, size, size, blur_kernel, p.blur_sigma);
    }
    normalize(&mut x, mean, std);
    x
}
