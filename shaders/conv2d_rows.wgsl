// Conv2d "rows" kernels for CPU drivers (lavapipe); the maths and the GPU (tiled) kernels are in conv2d.wgsl.
// No workgroup memory, no barriers. A workgroup owns 16 GEMM rows; each invocation owns 4 consecutive GEMM
// columns and keeps a 16×4 register block (two 8×4 Blocks). The rows' operand is loaded once per subgroup:
// lane i loads rows i % 8 and 8 + i % 8, and subgroupBroadcast hands the values to every lane. lavapipe turns
// each storage load into 8 scalar loads with bounds checks, so loads per FMA are what this layout minimises
// (2 shared + 4 own loads per 64 FMAs). Needs subgroups of at least 8 invocations.
// Kernel size (and for backward-input the stride class) are pipeline constants, so the tap loops unroll; loops
// are further unrolled by hand where it is cheap, because lavapipe masks every accumulator update inside a loop
// once per iteration.

struct Params {
    n: u32, c: u32, h: u32, w: u32,
    o: u32, kh: u32, kw: u32, ho: u32,
    wo: u32, stride: u32, pad: u32, rows: u32,
    cols: u32, row_blocks: u32, col_tiles: u32, groups: u32,
    splits: u32, chunk: u32, hc: u32, wc: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> src0: array<f32>;   // fwd: x, bwd-input: dy, bwd-weight: x
@group(0) @binding(2) var<storage, read> src1: array<f32>;   // fwd: W, bwd-input: W, bwd-weight: dy
@group(0) @binding(3) var<storage, read_write> dst: array<f32>;

override WG: u32 = 16u;      // invocations per workgroup: 4 columns each
override KH: u32 = 3u;
override KW: u32 = 3u;
override S: u32 = 1u;        // backward-input: stride, and the class (RY, RX) of input pixels this dispatch owns
override RY: u32 = 0u;
override RX: u32 = 0u;

const LANE4 = vec4<u32>(0u, 1u, 2u, 3u);

fn group_index(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return wid.x + wid.y * nwg.x;
}

fn inside(v: i32, hi: u32) -> bool {
    return v >= 0 && v < i32(hi);
}

// src0[i], or 0 when !ok (then element 0 is read, so the address is always in bounds).
fn ld0(i: i32, ok: bool) -> f32 {
    return select(0.0, src0[select(0, i, ok)], ok);
}

fn ld1x4(j: vec4<u32>) -> vec4<f32> {
    return vec4<f32>(src1[j.x], src1[j.y], src1[j.z], src1[j.w]);
}

// 8 rows × 4 columns: lo[j] / hi[j] hold rows 0-3 / 4-7 of column j.
struct Block {
    lo: mat4x4<f32>,
    hi: mat4x4<f32>,
}

// acc += (the 8 rows' values, lane i holding row i % 8 in `a`) ⊗ b
fn mac(acc: ptr<function, Block>, a: f32, b: vec4<f32>) {
    let al = vec4<f32>(subgroupBroadcast(a, 0u), subgroupBroadcast(a, 1u), subgroupBroadcast(a, 2u),
                       subgroupBroadcast(a, 3u));
    let ah = vec4<f32>(subgroupBroadcast(a, 4u), subgroupBroadcast(a, 5u), subgroupBroadcast(a, 6u),
                       subgroupBroadcast(a, 7u));
    (*acc).lo = mat4x4<f32>(fma(al, vec4<f32>(b.x), (*acc).lo[0]), fma(al, vec4<f32>(b.y), (*acc).lo[1]),
                            fma(al, vec4<f32>(b.z), (*acc).lo[2]), fma(al, vec4<f32>(b.w), (*acc).lo[3]));
    (*acc).hi = mat4x4<f32>(fma(ah, vec4<f32>(b.x), (*acc).hi[0]), fma(ah, vec4<f32>(b.y), (*acc).hi[1]),
                            fma(ah, vec4<f32>(b.z), (*acc).hi[2]), fma(ah, vec4<f32>(b.w), (*acc).hi[3]));
}

// One k-step of the 16×4 block: rows 0-7 (acc1, this lane's value a1) and 8-15 (acc2, a2).
fn step(acc1: ptr<function, Block>, acc2: ptr<function, Block>, a1: f32, a2: f32, b: vec4<f32>) {
    mac(acc1, a1, b);
    mac(acc2, a2, b);
}

fn st4(base: vec4<u32>, ok: vec4<bool>, v: vec4<f32>) {
    if (ok.x) { dst[base.x] = v.x; }
    if (ok.y) { dst[base.y] = v.y; }
    if (ok.z) { dst[base.z] = v.z; }
    if (ok.w) { dst[base.w] = v.w; }
}

// 8 consecutive GEMM rows (two vec4s, clamped to the last row) and whether each exists.
struct Rows {
    lo: vec4<u32>,
    hi: vec4<u32>,
    okl: vec4<bool>,
    okh: vec4<bool>,
}

fn rows8(first: u32) -> Rows {
    var r: Rows;
    let mlo = vec4<u32>(first) + LANE4;
    let mhi = mlo + 4u;
    r.okl = mlo < vec4<u32>(p.rows);
    r.okh = mhi < vec4<u32>(p.rows);
    r.lo = min(mlo, vec4<u32>(p.rows - 1u));
    r.hi = min(mhi, vec4<u32>(p.rows - 1u));
    return r;
}

// dst[row offset + column offset] for an 8×4 Block; rows (lo, hi) and columns masked by ok flags.
fn store_block(rlo: vec4<u32>, rhi: vec4<u32>, okl: vec4<bool>, okh: vec4<bool>, cof: vec4<u32>, cok: vec4<bool>,
               acc: Block) {
    if (cok.x) { st4(rlo + cof.x, okl, acc.lo[0]); st4(rhi + cof.x, okh, acc.hi[0]); }
    if (cok.y) { st4(rlo + cof.y, okl, acc.lo[1]); st4(rhi + cof.y, okh, acc.hi[1]); }
    if (cok.z) { st4(rlo + cof.z, okl, acc.lo[2]); st4(rhi + cof.z, okh, acc.hi[2]); }
    if (cok.w) { st4(rlo + cof.w, okl, acc.lo[3]); st4(rhi + cof.w, okh, acc.hi[3]); }
}

// ---------------------------------------------------------------------------------------------------------------
// Forward: y[N,O,Ho,Wo] = conv(x, W). Rows: output pixels m = (n, oy, ox); columns: output channels o.

// This lane's two rows: x offset of input (iy0, ix0 + 0) in channel 0, and (iy0, ix0).
struct FwdRow {
    xb: i32,
    iy0: i32,
    ix0: i32,
}

fn fwd_row_of(m: u32) -> FwdRow {
    let P = p.ho * p.wo;
    let q = m % P;
    var r: FwdRow;
    r.iy0 = i32((q / p.wo) * p.stride) - i32(p.pad);
    r.ix0 = i32((q % p.wo) * p.stride) - i32(p.pad);
    r.xb = i32((m / P) * p.c * p.h * p.w) + r.ix0;
    return r;
}

// One kernel row u of taps for channel offset cb; weights W[o·K + k0 + v].
fn fwd_taps(acc1: ptr<function, Block>, acc2: ptr<function, Block>, r1: FwdRow, r2: FwdRow, cb: i32, u: i32,
            wk: vec4<u32>) {
    let iy1 = r1.iy0 + u;
    let iy2 = r2.iy0 + u;
    let vy1 = inside(iy1, p.h);
    let vy2 = inside(iy2, p.h);
    let x1 = r1.xb + cb + iy1 * i32(p.w);
    let x2 = r2.xb + cb + iy2 * i32(p.w);
    for (var v = 0; v < i32(KW); v++) {
        step(acc1, acc2, ld0(x1 + v, vy1 && inside(r1.ix0 + v, p.w)), ld0(x2 + v, vy2 && inside(r2.ix0 + v, p.w)),
             ld1x4(wk + u32(v)));
    }
}

@compute @workgroup_size(WG)
fn forward_rows(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>,
                @builtin(num_workgroups) nwg: vec3<u32>, @builtin(subgroup_invocation_id) sgi: u32) {
    let g = group_index(wid, nwg);
    if (g >= p.groups) { return; }
    let rb = g % p.row_blocks;
    let ct = g / p.row_blocks;
    let P = p.ho * p.wo;
    let HW = p.h * p.w;
    let K = p.c * KH * KW;
    let r1 = fwd_row_of(min(rb * 16u + sgi % 8u, p.rows - 1u));
    let r2 = fwd_row_of(min(rb * 16u + 8u + sgi % 8u, p.rows - 1u));
    let oc = vec4<u32>(ct * WG * 4u + lid.x * 4u) + LANE4;
    let wb = min(oc, vec4<u32>(p.o - 1u)) * K;
    var acc1: Block;
    var acc2: Block;
    var k = 0u;
    for (var c = 0u; c < p.c; c++) {
        let cb = i32(c * HW);
        if (KH == 3u) {
            fwd_taps(&acc1, &acc2, r1, r2, cb, 0, wb + k);
            fwd_taps(&acc1, &acc2, r1, r2, cb, 1, wb + k + KW);
            fwd_taps(&acc1, &acc2, r1, r2, cb, 2, wb + k + 2u * KW);
        } else {
            for (var u = 0u; u < KH; u++) {
                fwd_taps(&acc1, &acc2, r1, r2, cb, i32(u), wb + k + u * KW);
            }
        }
        k += KH * KW;
    }
    // y[(n·O + o)·P + q]
    let cof = oc * P;
    let cok = oc < vec4<u32>(p.o);
    let a = rows8(rb * 16u);
    store_block((a.lo / P) * p.o * P + a.lo % P, (a.hi / P) * p.o * P + a.hi % P, a.okl, a.okh, cof, cok, acc1);
    let b = rows8(rb * 16u + 8u);
    store_block((b.lo / P) * p.o * P + b.lo % P, (b.hi / P) * p.o * P + b.hi % P, b.okl, b.okh, cof, cok, acc2);
}

// ---------------------------------------------------------------------------------------------------------------
// Backward-input: dx[N,C,H,W] for the input pixels of class (RY, RX), i.e. (iy + pad) mod S = RY and
// (ix + pad) mod S = RX, laid out as rows (n, a, b) with iy = fy + S·a, ix = fx + S·b (a < p.hc, b < p.wc).
// Exactly the taps u = RY + S·i, v = RX + S·j reach them. Columns: input channels c.

fn class_first(r: u32) -> u32 {
    return (r + S - p.pad % S) % S;
}

// Input pixel (iy, ix) of class row m.
fn bin_pixel(m: u32) -> vec2<u32> {
    let HWc = p.hc * p.wc;
    return vec2<u32>(class_first(RY) + ((m % HWc) / p.wc) * S, class_first(RX) + (m % p.wc) * S);
}

// This lane's row: dy offset of output (oy0, ox0) reached by the class's first tap (exact division) in channel 0.
struct BinRow {
    db: i32,
    oy0: i32,
    ox0: i32,
}

fn bin_row_of(m: u32) -> BinRow {
    let px = bin_pixel(m);
    var r: BinRow;
    r.oy0 = i32(px.x + p.pad - RY) / i32(S);
    r.ox0 = i32(px.y + p.pad - RX) / i32(S);
    r.db = i32((m / (p.hc * p.wc)) * p.o * p.ho * p.wo) + r.ox0;
    return r;
}

// One row of class taps: output row oy0 − t (channel offset ob), weights from column offsets wu.
fn bin_taps(acc1: ptr<function, Block>, acc2: ptr<function, Block>, r1: BinRow, r2: BinRow, ob: i32, t: i32,
            wu: vec4<u32>) {
    let TX = select(0u, (KW - RX + S - 1u) / S, RX < KW);
    let oy1 = r1.oy0 - t;
    let oy2 = r2.oy0 - t;
    let vy1 = inside(oy1, p.ho);
    let vy2 = inside(oy2, p.ho);
    let d1 = r1.db + ob + oy1 * i32(p.wo);
    let d2 = r2.db + ob + oy2 * i32(p.wo);
    for (var tx = 0; tx < i32(TX); tx++) {
        step(acc1, acc2, ld0(d1 - tx, vy1 && inside(r1.ox0 - tx, p.wo)),
             ld0(d2 - tx, vy2 && inside(r2.ox0 - tx, p.wo)), ld1x4(wu + u32(tx) * S));
    }
}

@compute @workgroup_size(WG)
fn backward_input_rows(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>,
                       @builtin(num_workgroups) nwg: vec3<u32>, @builtin(subgroup_invocation_id) sgi: u32) {
    let g = group_index(wid, nwg);
    if (g >= p.groups) { return; }
    let rb = g % p.row_blocks;
    let ct = g / p.row_blocks;
    let TY = select(0u, (KH - RY + S - 1u) / S, RY < KH);
    let P = p.ho * p.wo;
    let KK = KH * KW;
    let r1 = bin_row_of(min(rb * 16u + sgi % 8u, p.rows - 1u));
    let r2 = bin_row_of(min(rb * 16u + 8u + sgi % 8u, p.rows - 1u));
    let cc = vec4<u32>(ct * WG * 4u + lid.x * 4u) + LANE4;
    let wb = min(cc, vec4<u32>(p.c - 1u)) * KK + RY * KW + RX;
    var acc1: Block;
    var acc2: Block;
    for (var o = 0u; o < p.o; o++) {
        let ob = i32(o * P);
        let wo = wb + o * p.c * KK;
        if (TY == 3u) {
            bin_taps(&acc1, &acc2, r1, r2, ob, 0, wo);
            bin_taps(&acc1, &acc2, r1, r2, ob, 1, wo + S * KW);
            bin_taps(&acc1, &acc2, r1, r2, ob, 2, wo + 2u * S * KW);
        } else {
            for (var t = 0u; t < TY; t++) {
                bin_taps(&acc1, &acc2, r1, r2, ob, i32(t), wo + t * S * KW);
            }
        }
    }
    // dx[((n·C + c)·H + iy)·W + ix]; rows past the class's last pixel (iy ≥ H or ix ≥ W) are skipped.
    let HW = p.h * p.w;
    let HWc = p.hc * p.wc;
    let cof = cc * HW;
    let cok = cc < vec4<u32>(p.c);
    for (var half = 0u; half < 2u; half++) {
        let r = rows8(rb * 16u + half * 8u);
        let fy = class_first(RY);
        let fx = class_first(RX);
        let yl = fy + ((r.lo % HWc) / p.wc) * S;
        let yh = fy + ((r.hi % HWc) / p.wc) * S;
        let xl = fx + (r.lo % p.wc) * S;
        let xh = fx + (r.hi % p.wc) * S;
        let okl = r.okl & (yl < vec4<u32>(p.h)) & (xl < vec4<u32>(p.w));
        let okh = r.okh & (yh < vec4<u32>(p.h)) & (xh < vec4<u32>(p.w));
        let rl = (r.lo / HWc) * p.c * HW + yl * p.w + xl;
        let rh = (r.hi / HWc) * p.c * HW + yh * p.w + xh;
        if (half == 0u) {
            store_block(rl, rh, okl, okh, cof, cok, acc1);
        } else {
            store_block(rl, rh, okl, okh, cof, cok, acc2);
        }
    }
}

// ---------------------------------------------------------------------------------------------------------------
// Backward-weight: dW[O, C·KH·KW] (or one split's partial sum) from x and dy. Rows: (c, u, v); columns: output
// channels; reduction over the image rows (n, oy) in [split·chunk, split·chunk + chunk) / Wo, and ox.

// This lane's row (c, u, v): x offset of tap (u, v) at output (0, 0) of image 0, and (u − pad, v − pad).
struct BwRow {
    xc: i32,
    u0: i32,
    v0: i32,
}

fn bw_row_of(m: u32) -> BwRow {
    let KK = KH * KW;
    var r: BwRow;
    r.u0 = i32((m % KK) / KW) - i32(p.pad);
    r.v0 = i32(m % KW) - i32(p.pad);
    r.xc = i32((m / KK) * p.h * p.w) + r.v0;
    return r;
}

// One output column ox: x rows at offsets x1/x2 (valid rows vy1/vy2), dy at db + ox.
fn bw_step(acc1: ptr<function, Block>, acc2: ptr<function, Block>, r1: BwRow, r2: BwRow, x1: i32, x2: i32,
           vy1: bool, vy2: bool, ox: u32, db: vec4<u32>) {
    let ix = i32(ox * p.stride);
    step(acc1, acc2, ld0(x1 + ix, vy1 && inside(r1.v0 + ix, p.w)), ld0(x2 + ix, vy2 && inside(r2.v0 + ix, p.w)),
         ld1x4(db + ox));
}

@compute @workgroup_size(WG)
fn backward_weight_rows(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>,
                        @builtin(num_workgroups) nwg: vec3<u32>, @builtin(subgroup_invocation_id) sgi: u32) {
    let g = group_index(wid, nwg);
    if (g >= p.groups) { return; }
    let rb = g % p.row_blocks;
    let ct = (g / p.row_blocks) % p.col_tiles;
    let split = g / (p.row_blocks * p.col_tiles);
    let P = p.ho * p.wo;
    let CHW = p.c * p.h * p.w;
    let r1 = bw_row_of(min(rb * 16u + sgi % 8u, p.rows - 1u));
    let r2 = bw_row_of(min(rb * 16u + 8u + sgi % 8u, p.rows - 1u));
    let oc = vec4<u32>(ct * WG * 4u + lid.x * 4u) + LANE4;
    let ob = min(oc, vec4<u32>(p.o - 1u)) * P;
    let i0 = split * p.chunk / p.wo;                            // first image row (n·Ho + oy) of this split
    let i1 = min(i0 + p.chunk / p.wo, p.n * p.ho);
    var acc1: Block;
    var acc2: Block;
    for (var i = i0; i < i1; i++) {
        let n = i / p.ho;
        let sy = i32((i % p.ho) * p.stride);
        let vy1 = inside(r1.u0 + sy, p.h);
        let vy2 = inside(r2.u0 + sy, p.h);
        let x1 = r1.xc + i32(n * CHW) + (r1.u0 + sy) * i32(p.w);
        let x2 = r2.xc + i32(n * CHW) + (r2.u0 + sy) * i32(p.w);
        let db = ob + n * p.o * P + (i % p.ho) * p.wo;
        var ox = 0u;
        for (; ox + 3u < p.wo; ox += 4u) {
            bw_step(&acc1, &acc2, r1, r2, x1, x2, vy1, vy2, ox, db);
            bw_step(&acc1, &acc2, r1, r2, x1, x2, vy1, vy2, ox + 1u, db);
            bw_step(&acc1, &acc2, r1, r2, x1, x2, vy1, vy2, ox + 2u, db);
            bw_step(&acc1, &acc2, r1, r2, x1, x2, vy1, vy2, ox + 3u, db);
        }
        for (; ox < p.wo; ox++) {
            bw_step(&acc1, &acc2, r1, r2, x1, x2, vy1, vy2, ox, db);
        }
    }
    // dst[split·O·CKK + o·CKK + ckk]
    let base = split * p.o * p.rows;
    let cof = oc * p.rows;
    let cok = oc < vec4<u32>(p.o);
    let a = rows8(rb * 16u);
    store_block(base + a.lo, base + a.hi, a.okl, a.okh, cof, cok, acc1);
    let b = rows8(rb * 16u + 8u);
    store_block(base + b.lo, base + b.hi, b.okl, b.okh, cof, cok, acc2);
}
