// Conv2d as implicit GEMM (no im2col buffer): NCHW activations, OIHW weights, zero padding, no bias.
//   forward          y[n,o,q]   = Σ_{c,u,v} W[o,c,u,v] · x[n,c,oy·s+u−p, ox·s+v−p]      rows: output pixels, cols: o
//   backward-input   dx[n,c,iy,ix] = Σ_{o,u,v} W[o,c,u,v] · dy[n,o,(iy+p−u)/s,(ix+p−v)/s] rows: input pixels, cols: c
//   backward-weight  dW[o,c,u,v] = Σ_{n,oy,ox} dy[n,o,oy,ox] · x[n,c,oy·s+u−p, ox·s+v−p]    (split-K + reduce)
// Backward-input gathers: the input pixels are grouped in s×s classes by (iy+p) mod s, (ix+p) mod s, so that within
// a class exactly the taps u ≡ (iy+p) mod s contribute (no wasted taps at stride 2, no atomics).
//
// Two flavours of every pass:
//   *_rows  (CPU drivers): no workgroup memory or barriers. All invocations of a workgroup share the same 8 GEMM
//           rows (their im2col loads and bounds checks are uniform, i.e. scalar on lavapipe), and each owns 4
//           consecutive columns; one invocation holds an 8×4 register block.
//   *_tiled (GPUs): 16×16 invocations, 64×64 output tile, K-steps of 16 staged in workgroup memory, 4×4 per thread.
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

// Invocations per workgroup of the rows kernels (host: columns/4 rounded up to a multiple of 8, at most 64).
override WG: u32 = 16u;

const LANE4 = vec4<u32>(0u, 1u, 2u, 3u);

// ---------------------------------------------------------------------------------------------------------------
// Shared helpers

fn group_index(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return wid.x + wid.y * nwg.x;
}

// src0 at four indices, 0 where !ok; invalid lanes read element 0 so the address stays uniform and in bounds.
fn ld4(idx: vec4<i32>, ok: vec4<bool>) -> vec4<f32> {
    let j = vec4<u32>(select(vec4<i32>(0), idx, ok));
    return select(vec4<f32>(0.0), vec4<f32>(src0[j.x], src0[j.y], src0[j.z], src0[j.w]), ok);
}

fn inside(v: vec4<i32>, hi: u32) -> vec4<bool> {
    return (v >= vec4<i32>(0)) & (v < vec4<i32>(i32(hi)));
}

// src1 at four indices (the weights or dy: always valid, columns clamped by the caller).
fn ld1x4(j: vec4<u32>) -> vec4<f32> {
    return vec4<f32>(src1[j.x], src1[j.y], src1[j.z], src1[j.w]);
}

// acc[j] (column j, 4 rows) += a · b[j]
fn mac(acc: mat4x4<f32>, a: vec4<f32>, b: vec4<f32>) -> mat4x4<f32> {
    return mat4x4<f32>(fma(a, vec4<f32>(b.x), acc[0]), fma(a, vec4<f32>(b.y), acc[1]),
                       fma(a, vec4<f32>(b.z), acc[2]), fma(a, vec4<f32>(b.w), acc[3]));
}

// Store one column (4 rows) of a register block: dst[base + r] for rows with ok.
fn st4(base: vec4<u32>, ok: vec4<bool>, v: vec4<f32>) {
    if (ok.x) { dst[base.x] = v.x; }
    if (ok.y) { dst[base.y] = v.y; }
    if (ok.z) { dst[base.z] = v.z; }
    if (ok.w) { dst[base.w] = v.w; }
}

// Writes an 8×4 block: rows (lo, hi) at row offsets rlo/rhi, columns at offsets cof (+ column stride folded in).
fn store_block(rlo: vec4<u32>, rhi: vec4<u32>, okl: vec4<bool>, okh: vec4<bool>, cof: vec4<u32>, cok: vec4<bool>,
               lo: mat4x4<f32>, hi: mat4x4<f32>) {
    if (cok.x) { st4(rlo + cof.x, okl, lo[0]); st4(rhi + cof.x, okh, hi[0]); }
    if (cok.y) { st4(rlo + cof.y, okl, lo[1]); st4(rhi + cof.y, okh, hi[1]); }
    if (cok.z) { st4(rlo + cof.z, okl, lo[2]); st4(rhi + cof.z, okh, hi[2]); }
    if (cok.w) { st4(rlo + cof.w, okl, lo[3]); st4(rhi + cof.w, okh, hi[3]); }
}

// ---------------------------------------------------------------------------------------------------------------
// Rows flavour

// y[N,O,Ho,Wo] = conv(x, W). Rows: output pixels m = (n, oy, ox); columns: output channels.
@compute @workgroup_size(WG)
fn forward_rows(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>,
                @builtin(num_workgroups) nwg: vec3<u32>) {
    let g = group_index(wid, nwg);
    if (g >= p.groups) { return; }
    let rb = g % p.row_blocks;
    let ct = g / p.row_blocks;
    let P = p.ho * p.wo;
    let HW = p.h * p.w;
    let K = p.c * p.kh * p.kw;
    let s = p.stride;
    let mlo = vec4<u32>(rb * 8u) + LANE4;
    let mhi = mlo + 4u;
    let okl = mlo < vec4<u32>(p.rows);
    let okh = mhi < vec4<u32>(p.rows);
    let ml = min(mlo, vec4<u32>(p.rows - 1u));
    let mh = min(mhi, vec4<u32>(p.rows - 1u));
    let nl = ml / P;
    let nh = mh / P;
    let ql = ml % P;
    let qh = mh % P;
    let iy0l = vec4<i32>((ql / p.wo) * s) - i32(p.pad);
    let iy0h = vec4<i32>((qh / p.wo) * s) - i32(p.pad);
    let ix0l = vec4<i32>((ql % p.wo) * s) - i32(p.pad);
    let ix0h = vec4<i32>((qh % p.wo) * s) - i32(p.pad);
    let xbl = vec4<i32>(nl * p.c * HW) + ix0l;
    let xbh = vec4<i32>(nh * p.c * HW) + ix0h;
    let col = ct * WG * 4u + lid.x * 4u;
    let oc = vec4<u32>(col) + LANE4;
    let wb = min(oc, vec4<u32>(p.o - 1u)) * K;
    var lo = mat4x4<f32>();
    var hi = mat4x4<f32>();
    var k = 0u;
    for (var c = 0u; c < p.c; c++) {
        let cb = i32(c * HW);
        for (var u = 0u; u < p.kh; u++) {
            let iyl = iy0l + i32(u);
            let iyh = iy0h + i32(u);
            let vyl = inside(iyl, p.h);
            let vyh = inside(iyh, p.h);
            let rl = xbl + cb + iyl * i32(p.w);
            let rh = xbh + cb + iyh * i32(p.w);
            for (var v = 0u; v < p.kw; v++) {
                let vi = i32(v);
                let al = ld4(rl + vi, vyl & inside(ix0l + vi, p.w));
                let ah = ld4(rh + vi, vyh & inside(ix0h + vi, p.w));
                let b = ld1x4(wb + k);
                lo = mac(lo, al, b);
                hi = mac(hi, ah, b);
                k++;
            }
        }
    }
    // y[(n·O + o)·P + q]
    store_block(nl * p.o * P + ql, nh * p.o * P + qh, okl, okh, oc * P, oc < vec4<u32>(p.o), lo, hi);
}

// Input-pixel class of this workgroup and its first tap: class (ry, rx) holds the pixels with (iy+p) mod s = ry.
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

// dx[N,C,H,W] from dy[N,O,Ho,Wo] and W. Rows: input pixels of one class; columns: input channels.
@compute @workgroup_size(WG)
fn backward_input_rows(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>,
                       @builtin(num_workgroups) nwg: vec3<u32>) {
    let g = group_index(wid, nwg);
    if (g >= p.groups) { return; }
    let rb = g % p.row_blocks;
    let ct = (g / p.row_blocks) % p.col_tiles;
    let cl = class_of(g / (p.row_blocks * p.col_tiles));
    let s = p.stride;
    let P = p.ho * p.wo;
    let KK = p.kh * p.kw;
    let HWc = p.hc * p.wc;
    let mlo = vec4<u32>(rb * 8u) + LANE4;
    let mhi = mlo + 4u;
    let ml = min(mlo, vec4<u32>(p.rows - 1u));
    let mh = min(mhi, vec4<u32>(p.rows - 1u));
    let nl = ml / HWc;
    let nh = mh / HWc;
    let iyl = cl.fy + ((ml % HWc) / p.wc) * s;
    let iyh = cl.fy + ((mh % HWc) / p.wc) * s;
    let ixl = cl.fx + (ml % p.wc) * s;
    let ixh = cl.fx + (mh % p.wc) * s;
    let okl = (mlo < vec4<u32>(p.rows)) & (iyl < vec4<u32>(p.h)) & (ixl < vec4<u32>(p.w));
    let okh = (mhi < vec4<u32>(p.rows)) & (iyh < vec4<u32>(p.h)) & (ixh < vec4<u32>(p.w));
    // Output position reached by the class's first tap (u = ry): oy = (iy + p − ry)/s, exact.
    let oy0l = (vec4<i32>(iyl + p.pad) - i32(cl.ry)) / i32(s);
    let oy0h = (vec4<i32>(iyh + p.pad) - i32(cl.ry)) / i32(s);
    let ox0l = (vec4<i32>(ixl + p.pad) - i32(cl.rx)) / i32(s);
    let ox0h = (vec4<i32>(ixh + p.pad) - i32(cl.rx)) / i32(s);
    let col = ct * WG * 4u + lid.x * 4u;
    let cc = vec4<u32>(col) + LANE4;
    let wb = min(cc, vec4<u32>(p.c - 1u)) * KK + cl.ry * p.kw + cl.rx;
    var lo = mat4x4<f32>();
    var hi = mat4x4<f32>();
    for (var o = 0u; o < p.o; o++) {
        let dbl = vec4<i32>((nl * p.o + o) * P) + ox0l;
        let dbh = vec4<i32>((nh * p.o + o) * P) + ox0h;
        let wo = wb + o * p.c * KK;
        for (var ty = 0u; ty < cl.ty; ty++) {
            let oyl = oy0l - i32(ty);
            let oyh = oy0h - i32(ty);
            let vyl = inside(oyl, p.ho);
            let vyh = inside(oyh, p.ho);
            let rl = dbl + oyl * i32(p.wo);
            let rh = dbh + oyh * i32(p.wo);
            let wu = wo + ty * s * p.kw;
            for (var tx = 0u; tx < cl.tx; tx++) {
                let t = i32(tx);
                let al = ld4(rl - t, vyl & inside(ox0l - t, p.wo));
                let ah = ld4(rh - t, vyh & inside(ox0h - t, p.wo));
                let b = ld1x4(wu + tx * s);
                lo = mac(lo, al, b);
                hi = mac(hi, ah, b);
            }
        }
    }
    // dx[((n·C + c)·H + iy)·W + ix]
    let HW = p.h * p.w;
    store_block(nl * p.c * HW + iyl * p.w + ixl, nh * p.c * HW + iyh * p.w + ixh, okl, okh, cc * HW,
                cc < vec4<u32>(p.c), lo, hi);
}

// dW[O, C·KH·KW] (or one split's partial sum of it) from x and dy. Rows: (c,u,v); columns: output channels;
// reduction over flat (n, oy, ox) in [split·chunk, split·chunk + chunk), chunk a multiple of Wo.
@compute @workgroup_size(WG)
fn backward_weight_rows(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>,
                        @builtin(num_workgroups) nwg: vec3<u32>) {
    let g = group_index(wid, nwg);
    if (g >= p.groups) { return; }
    let rb = g % p.row_blocks;
    let ct = (g / p.row_blocks) % p.col_tiles;
    let split = g / (p.row_blocks * p.col_tiles);
    let s = p.stride;
    let P = p.ho * p.wo;
    let HW = p.h * p.w;
    let KK = p.kh * p.kw;
    let mlo = vec4<u32>(rb * 8u) + LANE4;
    let mhi = mlo + 4u;
    let okl = mlo < vec4<u32>(p.rows);
    let okh = mhi < vec4<u32>(p.rows);
    let ml = min(mlo, vec4<u32>(p.rows - 1u));
    let mh = min(mhi, vec4<u32>(p.rows - 1u));
    // Row (c, u, v): x offset within an image of tap (u, v) at output (0, 0).
    let ul = vec4<i32>((ml % KK) / p.kw) - i32(p.pad);
    let uh = vec4<i32>((mh % KK) / p.kw) - i32(p.pad);
    let vl = vec4<i32>(ml % p.kw) - i32(p.pad);
    let vh = vec4<i32>(mh % p.kw) - i32(p.pad);
    let cbl = vec4<i32>((ml / KK) * HW) + vl;
    let cbh = vec4<i32>((mh / KK) * HW) + vh;
    let col = ct * WG * 4u + lid.x * 4u;
    let oc = vec4<u32>(col) + LANE4;
    let ob = min(oc, vec4<u32>(p.o - 1u)) * P;
    let r0 = split * p.chunk / p.wo;                            // first image row (n·Ho + oy) of this split
    let r1 = min(r0 + p.chunk / p.wo, p.n * p.ho);
    var lo = mat4x4<f32>();
    var hi = mat4x4<f32>();
    for (var r = r0; r < r1; r++) {
        let n = r / p.ho;
        let oy = r % p.ho;
        let iyl = ul + i32(oy * s);
        let iyh = uh + i32(oy * s);
        let vyl = inside(iyl, p.h);
        let vyh = inside(iyh, p.h);
        let xl = cbl + i32(n * p.c * HW) + iyl * i32(p.w);
        let xh = cbh + i32(n * p.c * HW) + iyh * i32(p.w);
        let db = ob + n * p.o * P + oy * p.wo;
        for (var ox = 0u; ox < p.wo; ox++) {
            let ix = i32(ox * s);
            let al = ld4(xl + ix, vyl & inside(vl + ix, p.w));
            let ah = ld4(xh + ix, vyh & inside(vh + ix, p.w));
            let b = ld1x4(db + ox);
            lo = mac(lo, al, b);
            hi = mac(hi, ah, b);
        }
    }
    // dst[split·O·CKK + o·CKK + ckk]
    let base = split * p.o * p.rows;
    store_block(base + ml, base + mh, okl, okh, oc * p.rows, oc < vec4<u32>(p.o), lo, hi);
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
