// SimCLR augmentation of a batch: both views of every image, written as normalised float NCHW
// into the encoder input [2N, 3, S, S] (row v < N: view 1 of image v; row N + v: view 2).
// Recipe and conventions: torchvision's (../shared/reference/color_ops.json):
//   random resized crop (bilinear, half-pixel centres, no antialias) → horizontal flip →
//   colour jitter (brightness, contrast, saturation, hue in a per-view order, each clamped) →
//   grayscale → Gaussian blur (reflect padding) → (x - mean) / std.
// Dispatch order: contrast_mean (the per-view mean that contrast blends with), augment, and, when
// blur is enabled, blur_h then blur_v; blurred views go through `out` un-normalised. Each has a
// per-pixel (or per-view workgroup) entry for GPUs and a `_rows` entry for CPU drivers, where one
// invocation loops over a row (or a view) and per-invocation overhead dominates.

struct Params {
    n: u32,          // images in this batch; views = 2n
    size: u32,       // output side S
    src_h: u32,
    src_w: u32,
    stride: u32,     // u32 words per source image
    src_float: u32,  // 1: images hold f32 HWC values (reference checks); 0: packed RGB bytes
    radius: u32,     // blur kernel radius (kernel side 2r + 1)
    _p0: u32,
    mean_r: f32,
    mean_g: f32,
    mean_b: f32,
    _p1: f32,
    std_r: f32,
    std_g: f32,
    std_b: f32,
    _p2: f32,
}

// Mirrors augment::pipeline::GpuView (16 words).
struct View {
    image: u32,      // slot in `images`
    top: u32,
    left: u32,
    crop_h: u32,
    crop_w: u32,
    flip: u32,
    gray: u32,
    n_ops: u32,      // colour-jitter ops that apply
    ops: u32,        // their ids, 4 bits each, first in the low bits: 0 b, 1 c, 2 s, 3 h
    brightness: f32,
    contrast: f32,
    saturation: f32,
    hue: f32,
    sigma: f32,      // blur σ, 0 = no blur
    _p0: u32,
    _p1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> images: array<u32>;
@group(0) @binding(2) var<storage, read> views: array<View>;
@group(0) @binding(3) var<storage, read_write> means: array<f32>;
@group(0) @binding(4) var<storage, read_write> out: array<f32>;
@group(0) @binding(5) var<storage, read_write> scratch: array<f32>;
@group(0) @binding(6) var<storage, read> weights: array<f32>;  // per view: radius + 1 blur weights

const OP_CONTRAST: u32 = 1u;

// Byte e of source image `img`, as a value in [0, 1].
fn src_byte(img: u32, e: u32) -> f32 {
    let w = images[img * p.stride + (e >> 2u)];
    return f32((w >> ((e & 3u) * 8u)) & 0xffu) / 255.0;
}

fn src_px(img: u32, y: u32, x: u32) -> vec3<f32> {
    let e = (y * p.src_w + x) * 3u;
    if (p.src_float != 0u) {
        let b = img * p.stride + e;
        return vec3<f32>(bitcast<f32>(images[b]), bitcast<f32>(images[b + 1u]), bitcast<f32>(images[b + 2u]));
    }
    return vec3<f32>(src_byte(img, e), src_byte(img, e + 1u), src_byte(img, e + 2u));
}

// Output pixel (oy, ox) of the resized crop, before flipping (torch upsample_bilinear2d,
// align_corners = False: src = max((dst + 0.5) * in / out - 0.5, 0), upper neighbour clamped).
fn resized(v: View, oy: u32, ox: u32) -> vec3<f32> {
    let sy = max((f32(oy) + 0.5) * (f32(v.crop_h) / f32(p.size)) - 0.5, 0.0);
    let sx = max((f32(ox) + 0.5) * (f32(v.crop_w) / f32(p.size)) - 0.5, 0.0);
    let y0 = min(u32(sy), v.crop_h - 1u);
    let x0 = min(u32(sx), v.crop_w - 1u);
    let y1 = min(y0 + 1u, v.crop_h - 1u);
    let x1 = min(x0 + 1u, v.crop_w - 1u);
    let ly = sy - f32(y0);
    let lx = sx - f32(x0);
    let hy = 1.0 - ly;
    let hx = 1.0 - lx;
    let a = src_px(v.image, v.top + y0, v.left + x0);
    let b = src_px(v.image, v.top + y0, v.left + x1);
    let c = src_px(v.image, v.top + y1, v.left + x0);
    let d = src_px(v.image, v.top + y1, v.left + x1);
    return hy * (hx * a + lx * b) + ly * (hx * c + lx * d);
}

fn gray(c: vec3<f32>) -> f32 {
    return 0.2989 * c.x + 0.587 * c.y + 0.114 * c.z;
}

// torchvision _blend: ratio * a + (1 - ratio) * b, clamped to [0, 1].
fn blend(a: vec3<f32>, b: vec3<f32>, r: f32) -> vec3<f32> {
    return clamp(r * a + (1.0 - r) * b, vec3<f32>(0.0), vec3<f32>(1.0));
}

// torchvision adjust_hue: _rgb2hsv (ties: r wins over g, g over b), h' = (h + f) mod 1 (floored),
// _hsv2rgb.
fn adjust_hue(c: vec3<f32>, f: f32) -> vec3<f32> {
    let r = c.x;
    let g = c.y;
    let b = c.z;
    let maxc = max(r, max(g, b));
    let minc = min(r, min(g, b));
    let eqc = maxc == minc;
    let cr = maxc - minc;
    let s = cr / select(maxc, 1.0, eqc);
    let crd = select(cr, 1.0, eqc);
    let rc = (maxc - r) / crd;
    let gc = (maxc - g) / crd;
    let bc = (maxc - b) / crd;
    var h: f32;
    if (maxc == r) {
        h = bc - gc;
    } else if (maxc == g) {
        h = 2.0 + rc - bc;
    } else {
        h = 4.0 + gc - rc;
    }
    h = fract(h / 6.0 + 1.0);
    h = h + f;
    h = h - floor(h);
    let v = maxc;
    let h6 = h * 6.0;
    let fi = floor(h6);
    let ff = h6 - fi;
    let i = u32(fi) % 6u;
    let pp = clamp(v * (1.0 - s), 0.0, 1.0);
    let q = clamp(v * (1.0 - s * ff), 0.0, 1.0);
    let t = clamp(v * (1.0 - s * (1.0 - ff)), 0.0, 1.0);
    var rgb: vec3<f32>;
    switch i {
        case 0u: { rgb = vec3<f32>(v, t, pp); }
        case 1u: { rgb = vec3<f32>(q, v, pp); }
        case 2u: { rgb = vec3<f32>(pp, v, t); }
        case 3u: { rgb = vec3<f32>(pp, q, v); }
        case 4u: { rgb = vec3<f32>(t, pp, v); }
        default: { rgb = vec3<f32>(v, pp, q); }
    }
    return rgb;
}

// The colour-jitter ops of view v in order. With `until_contrast`, stop before contrast (the
// image its mean is taken of); otherwise contrast blends with `mean`.
fn jitter(v: View, c0: vec3<f32>, mean: f32, until_contrast: bool) -> vec3<f32> {
    var c = c0;
    for (var k = 0u; k < v.n_ops; k++) {
        let op = (v.ops >> (4u * k)) & 0xfu;
        if (op == 0u) {
            c = blend(c, vec3<f32>(0.0), v.brightness);
        } else if (op == OP_CONTRAST) {
            if (until_contrast) {
                break;
            }
            c = blend(c, vec3<f32>(mean), v.contrast);
        } else if (op == 2u) {
            c = blend(c, vec3<f32>(gray(c)), v.saturation);
        } else {
            c = adjust_hue(c, v.hue);
        }
    }
    return c;
}

fn has_contrast(v: View) -> bool {
    for (var k = 0u; k < v.n_ops; k++) {
        if (((v.ops >> (4u * k)) & 0xfu) == OP_CONTRAST) {
            return true;
        }
    }
    return false;
}

// Sum of the gray values of row oy of the pre-contrast image (rows first: keeps f32 sums short).
fn row_gray_sum(v: View, oy: u32) -> f32 {
    var s = 0.0;
    for (var ox = 0u; ox < p.size; ox++) {
        s += gray(jitter(v, resized(v, oy, ox), 0.0, true));
    }
    return s;
}

// One invocation per view (CPU drivers: no workgroup memory).
@compute @workgroup_size(64)
fn contrast_mean_rows(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let view = gid.x + gid.y * nwg.x * 64u;
    if (view >= 2u * p.n) {
        return;
    }
    let v = views[view];
    var total = 0.0;
    if (has_contrast(v)) {
        for (var oy = 0u; oy < p.size; oy++) {
            total += row_gray_sum(v, oy);
        }
    }
    means[view] = total / f32(p.size * p.size);
}

const WG: u32 = 256u;
var<workgroup> partial: array<f32, WG>;

// One workgroup per view, tree reduction in workgroup memory (GPUs).
@compute @workgroup_size(256)
fn contrast_mean_tiled(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let view = wid.x + wid.y * nwg.x;
    let live = view < 2u * p.n;
    var s = 0.0;
    if (live) {
        let v = views[view];
        if (has_contrast(v)) {
            for (var px = lid; px < p.size * p.size; px += WG) {
                s += gray(jitter(v, resized(v, px / p.size, px % p.size), 0.0, true));
            }
        }
    }
    partial[lid] = s;
    workgroupBarrier();
    for (var half = WG / 2u; half > 0u; half >>= 1u) {
        if (lid < half) {
            partial[lid] += partial[lid + half];
        }
        workgroupBarrier();
    }
    if (live && lid == 0u) {
        means[view] = partial[0] / f32(p.size * p.size);
    }
}

fn normalised(c: vec3<f32>) -> vec3<f32> {
    return (c - vec3<f32>(p.mean_r, p.mean_g, p.mean_b)) / vec3<f32>(p.std_r, p.std_g, p.std_b);
}

fn pixel_index(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * WG;
}

fn plane(view: u32, ch: u32) -> u32 {
    return (view * 3u + ch) * p.size * p.size;
}

// Output pixel (oy, ox) of view `view`: crop, flip, jitter, grayscale; normalised unless blurred
// next (then the blur passes normalise).
fn augment_pixel(view: u32, v: View, mean: f32, oy: u32, ox: u32) {
    let sx = select(ox, p.size - 1u - ox, v.flip != 0u);
    var c = jitter(v, resized(v, oy, sx), mean, false);
    if (v.gray != 0u) {
        c = vec3<f32>(gray(c));
    }
    if (v.sigma <= 0.0) {
        c = normalised(c);
    }
    let px = oy * p.size + ox;
    out[plane(view, 0u) + px] = c.x;
    out[plane(view, 1u) + px] = c.y;
    out[plane(view, 2u) + px] = c.z;
}

// One invocation per output pixel (GPUs).
@compute @workgroup_size(256)
fn augment(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = pixel_index(gid, nwg);
    let ss = p.size * p.size;
    if (i >= 2u * p.n * ss) {
        return;
    }
    let view = i / ss;
    let px = i % ss;
    augment_pixel(view, views[view], means[view], px / p.size, px % p.size);
}

// One invocation per output row (CPU drivers: the view is read once per row).
@compute @workgroup_size(64)
fn augment_rows(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = gid.x + gid.y * nwg.x * 64u;
    if (r >= 2u * p.n * p.size) {
        return;
    }
    let view = r / p.size;
    let v = views[view];
    let mean = means[view];
    for (var ox = 0u; ox < p.size; ox++) {
        augment_pixel(view, v, mean, r % p.size, ox);
    }
}

// Reflect padding without repeating the edge: x[-1] = x[1], x[n] = x[n - 2].
fn reflect_index(i: i32, n: i32) -> u32 {
    if (n == 1) {
        return 0u;
    }
    let m = 2 * n - 2;
    var j = abs(i) % m;
    if (j >= n) {
        j = m - j;
    }
    return u32(j);
}

// Normalised Gaussian weight of offset k for view `view` (host-computed, k = 0..=radius).
fn weight(view: u32, k: i32) -> f32 {
    return weights[view * (p.radius + 1u) + u32(abs(k))];
}

// Horizontal pass of the separable blur at one pixel: out → scratch.
fn blur_h_pixel(view: u32, oy: u32, ox: u32) {
    let r = i32(p.radius);
    let row = oy * p.size;
    var acc = vec3<f32>(0.0);
    for (var k = -r; k <= r; k++) {
        let x = row + reflect_index(i32(ox) + k, i32(p.size));
        let c = vec3<f32>(out[plane(view, 0u) + x], out[plane(view, 1u) + x], out[plane(view, 2u) + x]);
        acc += weight(view, k) * c;
    }
    let px = row + ox;
    scratch[plane(view, 0u) + px] = acc.x;
    scratch[plane(view, 1u) + px] = acc.y;
    scratch[plane(view, 2u) + px] = acc.z;
}

// Vertical pass at one pixel: scratch → out, then normalisation.
fn blur_v_pixel(view: u32, oy: u32, ox: u32) {
    let r = i32(p.radius);
    var acc = vec3<f32>(0.0);
    for (var k = -r; k <= r; k++) {
        let y = reflect_index(i32(oy) + k, i32(p.size)) * p.size + ox;
        let c = vec3<f32>(scratch[plane(view, 0u) + y], scratch[plane(view, 1u) + y], scratch[plane(view, 2u) + y]);
        acc += weight(view, k) * c;
    }
    let c = normalised(acc);
    let px = oy * p.size + ox;
    out[plane(view, 0u) + px] = c.x;
    out[plane(view, 1u) + px] = c.y;
    out[plane(view, 2u) + px] = c.z;
}

// Blur entry points: per pixel (GPUs) or per row (CPU drivers); unblurred views return at once.
@compute @workgroup_size(256)
fn blur_h(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = pixel_index(gid, nwg);
    let ss = p.size * p.size;
    if (i >= 2u * p.n * ss || views[i / ss].sigma <= 0.0) {
        return;
    }
    blur_h_pixel(i / ss, (i % ss) / p.size, i % p.size);
}

@compute @workgroup_size(256)
fn blur_v(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = pixel_index(gid, nwg);
    let ss = p.size * p.size;
    if (i >= 2u * p.n * ss || views[i / ss].sigma <= 0.0) {
        return;
    }
    blur_v_pixel(i / ss, (i % ss) / p.size, i % p.size);
}

@compute @workgroup_size(64)
fn blur_h_rows(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = gid.x + gid.y * nwg.x * 64u;
    if (r >= 2u * p.n * p.size || views[r / p.size].sigma <= 0.0) {
        return;
    }
    for (var ox = 0u; ox < p.size; ox++) {
        blur_h_pixel(r / p.size, r % p.size, ox);
    }
}

@compute @workgroup_size(64)
fn blur_v_rows(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = gid.x + gid.y * nwg.x * 64u;
    if (r >= 2u * p.n * p.size || views[r / p.size].sigma <= 0.0) {
        return;
    }
    for (var ox = 0u; ox < p.size; ox++) {
        blur_v_pixel(r / p.size, r % p.size, ox);
    }
}
