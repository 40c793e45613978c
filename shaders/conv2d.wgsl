// Conv2d as implicit GEMM (no im2col buffer): NCHW activations, OIHW weights, zero padding, no bias.
//   forward          y[n,o,q]      = Σ_{c,u,v} W[o,c,u,v] · x[n,c,oy·s+u−p, ox·s+v−p]      rows: output pixels, cols: o
//   backward-input   dx[n,c,iy,ix] = Σ_{o,u,v} W[o,c,u,v] · dy[n,o,(iy+p−u)/s,(ix+p−v)/s] rows: input pixels, cols: c
//   backward-weight  dW[o,c,u,v]   = Σ_{n,oy,ox} dy[n,o,oy,ox] · x[n,c,oy·s+u−p, ox·s+v−p]  (split-K, then reduce)
// Backward-input gathers: the input pixels are grouped in s×s classes by ((iy+p) mod s, (ix+p) mod s); within a
// class exactly the taps u ≡ (iy+p) mod s, v ≡ (ix+p) mod s contribute (no wasted taps at stride 2, no atomics).
//
// This file holds the GPU flavour ("tiled": 16×16 invocations, 64×64 output tile, K-steps of 16 staged in
// workgroup memory, 4×4 outputs per invocation) and the split-K reduction. The CPU-driver flavour ("rows",
// subgroups, no workgroup memory) is in conv2d_rows.wgsl.
// Workgroups are numbered linearly (x + y·nwg.x, see gpu::grid_1d) and decoded into row block, column tile and
// class/split; p.groups bounds the linear index.

struct Params {
    n: u32, c: u32, h: u32, w: u32,
    o: u32, kh: u32, kw: u32, ho: u32,
    wo: u32, stride: u32, pad: u32, rows: u32,        // rows: GEMM rows (bwd-input: per class, N·Hc·Wc)
    cols: u32, row_blocks: u32, col_tiles: u32, groups: u32,
    splits: u32, chunk: u32, hc: u32, wc: u32,        // bwd-weight: K range per split; bwd-input: class grid
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src0: array<f32>;   // fwd: x, bwd-input: dy, bwd-weight: x, reduce: partials
@group(0) @binding(2) var<storage, read> src1: array<f32>;   // fwd: W, bwd-input: W, bwd-weight: dy
@group(0) @binding(3) var<storage, read_write> dst: array<f32>;

fn group_index(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return wid.x + wid.y * nwg.x;
}

// Input-pixel class of a tiled workgroup: class (ry, rx) holds the pixels with (iy+p) mod s = ry.
struct Class {
    ry: u32, rx: u32,
    fy: u32, fx: u32,   // first input row/column of the class
    ty: u32, tx: u32,   // taps per class along y/x: u = ry, ry+s, ... < kh
}

fn class_of(cls: u32) -> Class {
    let s = p.stride;
    let ry = cls / s;
    let rx = cls % s;
    let pm = p.pad % s;
    var c: Class;
    c.ry = ry;
    c.rx = rx;
    c.fy = (ry + s - pm) % s;
    c.fx = (rx + s - pm) % s;
    c.ty = select(0u, (p.kh - ry + s - 1u) / s, ry < p.kh);
    c.tx = select(0u, (p.kw - rx + s - 1u) / s, rx < p.kw);
    return c;
}

// dW[i] = Σ_split partial[split, i]; p.rows = O·C·KH·KW.
@compute @workgroup_size(256)
fn reduce_splits(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= p.rows) { return; }
    var acc = 0.0;
    for (var sp = 0u; sp < p.splits; sp++) {
        acc += src0[sp * p.rows + i];
    }
    dst[i] = acc;
}

// ---------------------------------------------------------------------------------------------------------------
// Tiled flavour: 16×16 invocations, 64×64 output tile (row = lid.x + 16i, column = lid.y + 16j), K-steps of 16.

const TS: u32 = 64u;
const TK: u32 = 16u;
var<workgroup> ta: array<f32, 1024>;   // [k][row]
var<workgroup> tb: array<f32, 1024>;   // [k][column]

fn tile_mac(tx: u32, ty: u32, acc: ptr<function, array<vec4<f32>, 4>>) {
    for (var kk = 0u; kk < TK; kk++) {
        let r = kk * TS + tx;
        let c = kk * TS + ty;
        let a = vec4<f32>(ta[r], ta[r + 16u], ta[r + 32u], ta[r + 48u]);
        let b = vec4<f32>(tb[c], tb[c + 16u], tb[c + 32u], tb[c + 48u]);
        (*acc)[0] = fma(vec4<f32>(a.x), b, (*acc)[0]);
        (*acc)[1] = fma(vec4<f32>(a.y), b, (*acc)[1]);
        (*acc)[2] = fma(vec4<f32>(a.z), b, (*acc)[2]);
        (*acc)[3] = fma(vec4<f32>(a.w), b, (*acc)[3]);
    }
}

fn in_range(v: i32, hi: u32) -> bool {
    return v >= 0 && v < i32(hi);
}

@compute @workgroup_size(16, 16)
fn forward_tiled(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(local_invocation_index) li: u32,
                 @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let g = group_index(wid, nwg);
    if (g >= p.groups) { return; }
    let m0 = (g % p.row_blocks) * TS;
    let n0 = (g / p.row_blocks) * TS;
    let P = p.ho * p.wo;
    let HW = p.h * p.w;
    let KK = p.kh * p.kw;
    let K = p.c * KK;
    // This thread stages row am of A (k rows li/64 + 4i) and column bn + 16i of B (k row li % 16).
    let am = m0 + li % TS;
    let amc = min(am, p.rows - 1u);
    let aq = amc % P;
    let iy0 = i32((aq / p.wo) * p.stride) - i32(p.pad);
    let ix0 = i32((aq % p.wo) * p.stride) - i32(p.pad);
    let xb = (amc / P) * p.c * HW;
    let bk = li % TK;
    let bn = n0 + li / TK;
    var acc: array<vec4<f32>, 4>;
    for (var k0 = 0u; k0 < K; k0 += TK) {
        for (var i = 0u; i < 4u; i++) {
            let kl = li / TS + 4u * i;
            let k = k0 + kl;
            let r = k % KK;
            let iy = iy0 + i32(r / p.kw);
            let ix = ix0 + i32(r % p.kw);
            var a = 0.0;
            if (am < p.rows && k < K && in_range(iy, p.h) && in_range(ix, p.w)) {
                a = src0[xb + (k / KK) * HW + u32(iy) * p.w + u32(ix)];
            }
            ta[kl * TS + li % TS] = a;
            let col = bn + 16u * i;
            var b = 0.0;
            if (col < p.o && k0 + bk < K) {
                b = src1[col * K + k0 + bk];
            }
            tb[bk * TS + li / TK + 16u * i] = b;
        }
        workgroupBarrier();
        tile_mac(lid.x, lid.y, &acc);
        workgroupBarrier();
    }
    for (var i = 0u; i < 4u; i++) {
        let m = m0 + lid.x + 16u * i;
        if (m >= p.rows) { continue; }
        let yb = (m / P) * p.o * P + m % P;
        for (var j = 0u; j < 4u; j++) {
            let o = n0 + lid.y + 16u * j;
            if (o < p.o) { dst[yb + o * P] = acc[i][j]; }
        }
    }
}

@compute @workgroup_size(16, 16)
fn backward_input_tiled(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(local_invocation_index) li: u32,
                        @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let g = group_index(wid, nwg);
    if (g >= p.groups) { return; }
    let m0 = (g % p.row_blocks) * TS;
    let n0 = ((g / p.row_blocks) % p.col_tiles) * TS;
    let cl = class_of(g / (p.row_blocks * p.col_tiles));
    let s = p.stride;
    let P = p.ho * p.wo;
    let KK = p.kh * p.kw;
    let HWc = p.hc * p.wc;
    let T = cl.ty * cl.tx;
    let K = p.o * T;
    let am = m0 + li % TS;
    let amc = min(am, p.rows - 1u);
    let iy = cl.fy + ((amc % HWc) / p.wc) * s;
    let ix = cl.fx + (amc % p.wc) * s;
    let a_ok = am < p.rows && iy < p.h && ix < p.w;
    let oy0 = (i32(iy + p.pad) - i32(cl.ry)) / i32(s);
    let ox0 = (i32(ix + p.pad) - i32(cl.rx)) / i32(s);
    let db = (amc / HWc) * p.o * P;
    let bk = li % TK;
    let bn = n0 + li / TK;
    let wc0 = cl.ry * p.kw + cl.rx;
    var acc: array<vec4<f32>, 4>;
    for (var k0 = 0u; k0 < K; k0 += TK) {
        for (var i = 0u; i < 4u; i++) {
            let kl = li / TS + 4u * i;
            let k = k0 + kl;
            let t = k % max(T, 1u);
            let oy = oy0 - i32(t / cl.tx);
            let ox = ox0 - i32(t % cl.tx);
            var a = 0.0;
            if (a_ok && k < K && in_range(oy, p.ho) && in_range(ox, p.wo)) {
                a = src0[db + (k / T) * P + u32(oy) * p.wo + u32(ox)];
            }
            ta[kl * TS + li % TS] = a;
            let col = bn + 16u * i;
            let kb = k0 + bk;
            var b = 0.0;
            if (col < p.c && kb < K) {
                let tb_ = kb % T;
                b = src1[((kb / T) * p.c + col) * KK + wc0 + (tb_ / cl.tx) * s * p.kw + (tb_ % cl.tx) * s];
            }
            tb[bk * TS + li / TK + 16u * i] = b;
        }
        workgroupBarrier();
        tile_mac(lid.x, lid.y, &acc);
        workgroupBarrier();
    }
    let HW = p.h * p.w;
    for (var i = 0u; i < 4u; i++) {
        let m = m0 + lid.x + 16u * i;
        if (m >= p.rows) { continue; }
        let y = cl.fy + ((m % HWc) / p.wc) * s;
        let x = cl.fx + (m % p.wc) * s;
        if (y >= p.h || x >= p.w) { continue; }
        let xb = (m / HWc) * p.c * HW + y * p.w + x;
        for (var j = 0u; j < 4u; j++) {
            let c = n0 + lid.y + 16u * j;
            if (c < p.c) { dst[xb + c * HW] = acc[i][j]; }
        }
    }
}

// Rows: output channels; columns: (c, u, v); K: flat (n, oy, ox) of this split.
@compute @workgroup_size(16, 16)
fn backward_weight_tiled(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(local_invocation_index) li: u32,
                         @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let g = group_index(wid, nwg);
    if (g >= p.groups) { return; }
    let m0 = (g % p.row_blocks) * TS;
    let n0 = ((g / p.row_blocks) % p.col_tiles) * TS;
    let split = g / (p.row_blocks * p.col_tiles);
    let P = p.ho * p.wo;
    let HW = p.h * p.w;
    let KK = p.kh * p.kw;
    let CKK = p.c * KK;
    let kb = split * p.chunk;
    let ke = min(kb + p.chunk, p.n * P);
    let kl = li % TK;
    let rl = li / TK;   // + 16i: the A row (output channel) and B column (c,u,v) this thread stages
    var bc: vec4<u32>;
    var bu: vec4<i32>;
    var bv: vec4<i32>;
    for (var i = 0u; i < 4u; i++) {
        let col = min(n0 + rl + 16u * i, CKK - 1u);
        bc[i] = (col / KK) * HW;
        bu[i] = i32((col % KK) / p.kw) - i32(p.pad);
        bv[i] = i32(col % p.kw) - i32(p.pad);
    }
    var acc: array<vec4<f32>, 4>;
    for (var k0 = kb; k0 < ke; k0 += TK) {
        let k = k0 + kl;
        let kc = min(k, ke - 1u);
        let n = kc / P;
        let q = kc % P;
        let iy0 = i32((q / p.wo) * p.stride);
        let ix0 = i32((q % p.wo) * p.stride);
        for (var i = 0u; i < 4u; i++) {
            let o = m0 + rl + 16u * i;
            var a = 0.0;
            if (k < ke && o < p.o) {
                a = src1[(n * p.o + o) * P + q];
            }
            ta[kl * TS + rl + 16u * i] = a;
            let col = n0 + rl + 16u * i;
            let iy = iy0 + bu[i];
            let ix = ix0 + bv[i];
            var b = 0.0;
            if (k < ke && col < CKK && in_range(iy, p.h) && in_range(ix, p.w)) {
                b = src0[n * p.c * HW + bc[i] + u32(iy) * p.w + u32(ix)];
            }
            tb[kl * TS + rl + 16u * i] = b;
        }
        workgroupBarrier();
        tile_mac(lid.x, lid.y, &acc);
        workgroupBarrier();
    }
    let base = split * p.o * CKK;
    for (var i = 0u; i < 4u; i++) {
        let o = m0 + lid.x + 16u * i;
        if (o >= p.o) { continue; }
        for (var j = 0u; j < 4u; j++) {
            let col = n0 + lid.y + 16u * j;
            if (col < CKK) { dst[base + o * CKK + col] = acc[i][j]; }
        }
    }
}
