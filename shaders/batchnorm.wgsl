// Batch normalisation over x [N, C, HW] (BatchNorm2d: HW = H*W; BatchNorm1d: HW = 1), per channel
// over M = N*HW values, with an optional fused ReLU on the output.
//
// Training forward: stats_forward (workgroup (s, c) reduces one slice of channel c) → finalize_forward
// (one invocation per channel: statistics, running update, per-channel coefficients) → apply_forward.
// Eval forward: eval_coef → apply_forward. Backward: stats_backward → finalize_backward → apply_backward.
//
// Reductions: the `splits` workgroups of a channel share its values out in contiguous segments (see
// LANES), keeping (n, hw) counters so that no integer division runs per element; each workgroup
// then reduces in workgroup memory (one tree, amortised over many values), and the finalize kernel
// combines the `splits` partials of each channel.
// Variance: every invocation accumulates values shifted by its own first value and turns them into
// (count, mean, M2); these are merged with Chan's formula. The cancellation error is then bounded by
// ~eps·(values per invocation), not eps·M as with one shift per channel.

// Sizes are in units of the kernel's vector: f32 for the scalar kernels, vec4 for the `_v4` ones
// (used when HW % 4 == 0, so that a vec4 never straddles two channels; ~3x faster on lavapipe).
struct Params {
    n: u32,
    c: u32,
    hw: u32,         // HW / width
    m: u32,          // N*HW / width: vectors per channel
    chw: u32,        // C*HW / width: stride between samples
    splits: u32,     // workgroups per channel in the stats kernels
    seg_t: u32,      // stats: vectors per lane group (a multiple of LANES)
    seg_a: u32,      // apply: vectors per lane group (a multiple of LANES)
    total: u32,      // N*C*HW / width
    q8: u32,         // LANES = q8*hw + r8
    r8: u32,
    q8c: u32,        // q8 mod C
    relu: u32,
    momentum: f32,
    eps: f32,
    inv_m: f32,      // 1/M (values, not vectors)
    unbias: f32,     // M/(M-1)
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read> gamma: array<f32>;
@group(0) @binding(3) var<storage, read> beta: array<f32>;
@group(0) @binding(4) var<storage, read_write> running_mean: array<f32>;
@group(0) @binding(5) var<storage, read_write> running_var: array<f32>;
@group(0) @binding(6) var<storage, read_write> save_mean: array<f32>;
@group(0) @binding(7) var<storage, read_write> save_invstd: array<f32>;
// Per (channel, split): forward (count, mean, M2, -), backward (Σg, Σg·(x-mean), -, -).
@group(0) @binding(8) var<storage, read_write> partials: array<vec4<f32>>;
// Per channel: forward (scale, mean, beta, -), backward (a, k, mean, b): dx = a·g − k·(x−mean) + b.
@group(0) @binding(9) var<storage, read_write> coef: array<vec4<f32>>;
@group(0) @binding(10) var<storage, read_write> y: array<f32>;
@group(0) @binding(11) var<storage, read> y_in: array<f32>;   // forward output: ReLU mask in backward
@group(0) @binding(12) var<storage, read> dy: array<f32>;
@group(0) @binding(13) var<storage, read_write> dx: array<f32>;
@group(0) @binding(14) var<storage, read_write> dgamma: array<f32>;
@group(0) @binding(15) var<storage, read_write> dbeta: array<f32>;
// vec4 views of the same tensors for the `_v4` kernels.
@group(0) @binding(16) var<storage, read> x4: array<vec4<f32>>;
@group(0) @binding(17) var<storage, read_write> y4: array<vec4<f32>>;
@group(0) @binding(18) var<storage, read> y_in4: array<vec4<f32>>;
@group(0) @binding(19) var<storage, read> dy4: array<vec4<f32>>;
@group(0) @binding(20) var<storage, read_write> dx4: array<vec4<f32>>;

// Stats kernels: 64 invocations (a tree of 256 with its barriers costs ~4x more per workgroup on
// lavapipe); apply kernels: 256, no barriers.
const WG: u32 = 64u;
const AWG: u32 = 256u;

var<workgroup> w_a: array<f32, WG>;
var<workgroup> w_b: array<f32, WG>;
var<workgroup> w_c: array<f32, WG>;

// Memory order: every group of LANES adjacent invocations streams through one contiguous segment,
// LANES vectors per step (a SIMD chunk on lavapipe runs its whole loop before the next chunk starts,
// so this keeps each chunk on consecutive cache lines; on a GPU a warp reads full 128-byte lines).
const LANES: u32 = 8u;

// Stats kernels: invocation t of channel c covers j = start, start + LANES, ... < end of its group's
// segment, i.e. sample n = j / hw, offset i = j % hw, advanced without dividing.
struct Cursor {
    j: u32,
    end: u32,
    n: u32,
    i: u32,
}

fn cursor(t: u32) -> Cursor {
    let seg = (t / LANES) * p.seg_t;
    let j = seg + t % LANES;
    let n = j / p.hw;
    return Cursor(j, min(seg + p.seg_t, p.m), n, j - n * p.hw);
}

fn advance(cur: ptr<function, Cursor>) {
    (*cur).j += LANES;
    (*cur).i += p.r8;
    (*cur).n += p.q8;
    if ((*cur).i >= p.hw) {
        (*cur).i -= p.hw;
        (*cur).n += 1u;
    }
}

fn addr(c: u32, cur: Cursor) -> u32 {
    return cur.n * p.chw + c * p.hw + cur.i;
}

// Apply kernels: the same over the flat index e, with its offset i and channel c.
struct Flat {
    e: u32,
    end: u32,
    i: u32,
    c: u32,
}

fn flat(gid: u32) -> Flat {
    let seg = (gid / LANES) * p.seg_a;
    let e = seg + gid % LANES;
    let row = e / p.hw;
    return Flat(e, min(seg + p.seg_a, p.total), e - row * p.hw, row % p.c);
}

fn step(f: ptr<function, Flat>) {
    (*f).e += LANES;
    (*f).i += p.r8;
    (*f).c += p.q8c;
    if ((*f).i >= p.hw) {
        (*f).i -= p.hw;
        (*f).c += 1u;
    }
    if ((*f).c >= p.c) {
        (*f).c -= p.c;
    }
}

// Merge (count, mean, M2) b into a (Chan et al.).
fn merge(a: vec3<f32>, b: vec3<f32>) -> vec3<f32> {
    if (b.x == 0.0) { return a; }
    if (a.x == 0.0) { return b; }
    let n = a.x + b.x;
    let d = b.y - a.y;
    let f = b.x / n;
    return vec3<f32>(n, a.y + d * f, a.z + b.z + d * d * a.x * f);
}

// One invocation's shifted sums (values − k) → (count, mean, M2), merged over the workgroup.
fn finish_forward(lid: u32, s: u32, c: u32, cnt: f32, k: f32, s1: f32, s2: f32) {
    var st = vec3<f32>(0.0);
    if (cnt > 0.0) {
        st = vec3<f32>(cnt, k + s1 / cnt, max(s2 - s1 * s1 / cnt, 0.0));
    }
    w_a[lid] = st.x;
    w_b[lid] = st.y;
    w_c[lid] = st.z;
    workgroupBarrier();
    for (var off = WG / 2u; off > 0u; off >>= 1u) {
        if (lid < off) {
            let r = merge(vec3<f32>(w_a[lid], w_b[lid], w_c[lid]),
                          vec3<f32>(w_a[lid + off], w_b[lid + off], w_c[lid + off]));
            w_a[lid] = r.x;
            w_b[lid] = r.y;
            w_c[lid] = r.z;
        }
        workgroupBarrier();
    }
    if (lid == 0u) {
        partials[c * p.splits + s] = vec4<f32>(w_a[0], w_b[0], w_c[0], 0.0);
    }
}

@compute @workgroup_size(64)
fn stats_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let c = wid.y;
    var cur = cursor(wid.x * WG + lid);
    var k = 0.0;
    if (cur.j < cur.end) { k = x[addr(c, cur)]; }
    var cnt = 0u;
    var s1 = 0.0;
    var s2 = 0.0;
    while (cur.j < cur.end) {
        let v = x[addr(c, cur)] - k;
        s1 += v;
        s2 = fma(v, v, s2);
        cnt += 1u;
        advance(&cur);
    }
    finish_forward(lid, wid.x, c, f32(cnt), k, s1, s2);
}

@compute @workgroup_size(64)
fn stats_forward_v4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let c = wid.y;
    var cur = cursor(wid.x * WG + lid);
    var k = 0.0;
    if (cur.j < cur.end) { k = x4[addr(c, cur)].x; }
    var cnt = 0u;
    var s1 = vec4<f32>(0.0);
    var s2 = vec4<f32>(0.0);
    while (cur.j < cur.end) {
        let v = x4[addr(c, cur)] - k;
        s1 += v;
        s2 = fma(v, v, s2);
        cnt += 1u;
        advance(&cur);
    }
    let one = vec4<f32>(1.0);
    finish_forward(lid, wid.x, c, 4.0 * f32(cnt), k, dot(s1, one), dot(s2, one));
}

// One invocation per channel: batch statistics, running update (torch momentum: weight of the new
// statistic; unbiased variance), and the coefficients of apply_forward.
@compute @workgroup_size(64)
fn finalize_forward(@builtin(global_invocation_id) gid: vec3<u32>) {
    let c = gid.x;
    if (c >= p.c) { return; }
    var st = vec3<f32>(0.0);
    for (var s = 0u; s < p.splits; s++) {
        st = merge(st, partials[c * p.splits + s].xyz);
    }
    let mean = st.y;
    let var_b = st.z * p.inv_m;
    let invstd = 1.0 / sqrt(var_b + p.eps);
    save_mean[c] = mean;
    save_invstd[c] = invstd;
    running_mean[c] = (1.0 - p.momentum) * running_mean[c] + p.momentum * mean;
    running_var[c] = (1.0 - p.momentum) * running_var[c] + p.momentum * var_b * p.unbias;
    coef[c] = vec4<f32>(gamma[c] * invstd, mean, beta[c], 0.0);
}

// Eval mode: the same coefficients from the running statistics.
@compute @workgroup_size(64)
fn eval_coef(@builtin(global_invocation_id) gid: vec3<u32>) {
    let c = gid.x;
    if (c >= p.c) { return; }
    let invstd = 1.0 / sqrt(running_var[c] + p.eps);
    coef[c] = vec4<f32>(gamma[c] * invstd, running_mean[c], beta[c], 0.0);
}

// y = (x − mean)·scale + beta, then ReLU if asked.
@compute @workgroup_size(256)
fn apply_forward(@builtin(global_invocation_id) gid: vec3<u32>) {
    var f = flat(gid.x);
    while (f.e < f.end) {
        let k = coef[f.c];
        var v = (x[f.e] - k.y) * k.x + k.z;
        if (p.relu != 0u) { v = max(v, 0.0); }
        y[f.e] = v;
        step(&f);
    }
}

@compute @workgroup_size(256)
fn apply_forward_v4(@builtin(global_invocation_id) gid: vec3<u32>) {
    var f = flat(gid.x);
    while (f.e < f.end) {
        let k = coef[f.c];
        var v = (x4[f.e] - k.y) * k.x + k.z;
        if (p.relu != 0u) { v = max(v, vec4<f32>(0.0)); }
        y4[f.e] = v;
        step(&f);
    }
}

// The upstream gradient behind the fused ReLU: zero where the output was clamped (y <= 0).
fn grad(e: u32) -> f32 {
    if (p.relu != 0u && !(y_in[e] > 0.0)) { return 0.0; }
    return dy[e];
}

fn grad4(e: u32) -> vec4<f32> {
    if (p.relu != 0u) { return select(vec4<f32>(0.0), dy4[e], y_in4[e] > vec4<f32>(0.0)); }
    return dy4[e];
}

fn finish_backward(lid: u32, s: u32, c: u32, s1: f32, s2: f32) {
    w_a[lid] = s1;
    w_b[lid] = s2;
    workgroupBarrier();
    for (var off = WG / 2u; off > 0u; off >>= 1u) {
        if (lid < off) {
            w_a[lid] += w_a[lid + off];
            w_b[lid] += w_b[lid + off];
        }
        workgroupBarrier();
    }
    if (lid == 0u) {
        partials[c * p.splits + s] = vec4<f32>(w_a[0], w_b[0], 0.0, 0.0);
    }
}

// Partial Σg and Σg·(x − mean) of channel c.
@compute @workgroup_size(64)
fn stats_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let c = wid.y;
    let mean = save_mean[c];
    var cur = cursor(wid.x * WG + lid);
    var s1 = 0.0;
    var s2 = 0.0;
    while (cur.j < cur.end) {
        let e = addr(c, cur);
        let g = grad(e);
        s1 += g;
        s2 = fma(g, x[e] - mean, s2);
        advance(&cur);
    }
    finish_backward(lid, wid.x, c, s1, s2);
}

@compute @workgroup_size(64)
fn stats_backward_v4(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let c = wid.y;
    let mean = save_mean[c];
    var cur = cursor(wid.x * WG + lid);
    var s1 = vec4<f32>(0.0);
    var s2 = vec4<f32>(0.0);
    while (cur.j < cur.end) {
        let e = addr(c, cur);
        let g = grad4(e);
        s1 += g;
        s2 = fma(g, x4[e] - mean, s2);
        advance(&cur);
    }
    let one = vec4<f32>(1.0);
    finish_backward(lid, wid.x, c, dot(s1, one), dot(s2, one));
}

// dβ = Σg, dγ = Σg·x̂; dx = γ·invstd/M·(M·g − Σg − x̂·dγ) = a·g − k·(x − mean) + b.
@compute @workgroup_size(64)
fn finalize_backward(@builtin(global_invocation_id) gid: vec3<u32>) {
    let c = gid.x;
    if (c >= p.c) { return; }
    var s1 = 0.0;
    var s2 = 0.0;
    for (var s = 0u; s < p.splits; s++) {
        let q = partials[c * p.splits + s];
        s1 += q.x;
        s2 += q.y;
    }
    let invstd = save_invstd[c];
    let dg = s2 * invstd;
    dgamma[c] = dg;
    dbeta[c] = s1;
    let a = gamma[c] * invstd;
    coef[c] = vec4<f32>(a, a * invstd * dg * p.inv_m, save_mean[c], -a * s1 * p.inv_m);
}

@compute @workgroup_size(256)
fn apply_backward(@builtin(global_invocation_id) gid: vec3<u32>) {
    var f = flat(gid.x);
    while (f.e < f.end) {
        let k = coef[f.c];
        dx[f.e] = k.x * grad(f.e) - k.y * (x[f.e] - k.z) + k.w;
        step(&f);
    }
}

@compute @workgroup_size(256)
fn apply_backward_v4(@builtin(global_invocation_id) gid: vec3<u32>) {
    var f = flat(gid.x);
    while (f.e < f.end) {
        let k = coef[f.c];
        dx4[f.e] = k.x * grad4(f.e) - k.y * (x4[f.e] - k.z) + k.w;
        step(&f);
    }
}
