// Conv2d "rows" kernels for CPU drivers (lavapipe); the maths and the GPU (tiled) kernels are in conv2d.wgsl.
// No workgroup memory, no barriers. A workgroup owns 8 GEMM rows; each invocation owns 4 consecutive GEMM
// columns and keeps an 8×4 register block. The rows' operand is loaded once per subgroup (lane i loads row
// i % 8) and handed to every lane with subgroupBroadcast: lavapipe turns each storage load into 8 scalar
// loads with bounds checks, so this halves the instructions per FMA. Needs subgroups of ≥ 8 invocations.
// Kernel size (and for backward-input the stride class) are pipeline constants, so the tap loops unroll.

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

// Register block: lo[j] / hi[j] hold rows 0-3 / 4-7 of column j. `a` is this lane's row value (row sgi % 8).
struct Block {
    lo: mat4x4<f32>,
    hi: mat4x4<f32>,
}

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

fn st4(base: vec4<u32>, ok: vec4<bool>, v: vec4<f32>) {
    if (ok.x) { dst[base.x] = v.x; }
    if (ok.y) { dst[base.y] = v.y; }
    if (ok.z) { dst[base.z] = v.z; }
    if (ok.w) { dst[base.w] = v.w; }
}

// dst[row offset + column offset] for the 8×4 block; rows (lo, hi) and columns masked by ok flags.
fn store_block(rlo: vec4<u32>, rhi: vec4<u32>, okl: vec4<bool>, okh: vec4<bool>, cof: vec4<u32>, cok: vec4<bool>,
               acc: Block) {
    if (cok.x) { st4(rlo + cof.x, okl, acc.lo[0]); st4(rhi + cof.x, okh, acc.hi[0]); }
    if (cok.y) { st4(rlo + cof.y, okl, acc.lo[1]); st4(rhi + cof.y, okh, acc.hi[1]); }
    if (cok.z) { st4(rlo + cof.z, okl, acc.lo[2]); st4(rhi + cof.z, okh, acc.hi[2]); }
    if (cok.w) { st4(rlo + cof.w, okl, acc.lo[3]); st4(rhi + cof.w, okh, acc.hi[3]); }
}

// The block's 8 rows as two vec4s, and whether each exists.
struct Rows {
    lo: vec4<u32>,
    hi: vec4<u32>,
    okl: vec4<bool>,
    okh: vec4<bool>,
}

fn block_rows(rb: u32) -> Rows {
    var r: Rows;
    let mlo = vec4<u32>(rb * 8u) + LANE4;
    let mhi = mlo + 4u;
    r.okl = mlo < vec4<u32>(p.rows);
    r.okh = mhi < vec4<u32>(p.rows);
    r.lo = min(mlo, vec4<u32>(p.rows - 1u));
    r.hi = min(mhi, vec4<u32>(p.rows - 1u));
    return r;
}

// y[N,O,Ho,Wo] = conv(x, W). Rows: output pixels m = (n, oy, ox); columns: output channels o.
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
    // This lane's row: output pixel m → top-left input position (iy0, ix0).
    let m = min(rb * 8u + sgi % 8u, p.rows - 1u);
    let q = m % P;
    let iy0 = i32((q / p.wo) * p.stride) - i32(p.pad);
    let ix0 = i32((q % p.wo) * p.stride) - i32(p.pad);
    let xb = i32((m / P) * p.c * HW) + ix0;
    let oc = vec4<u32>(ct * WG * 4u + lid.x * 4u) + LANE4;
    let wb = min(oc, vec4<u32>(p.o - 1u)) * K;
    var acc: Block;
    var k = 0u;
    for (var c = 0u; c < p.c; c++) {
        let cb = xb + i32(c * HW);
        for (var u = 0u; u < KH; u++) {
            let iy = iy0 + i32(u);
            let vy = inside(iy, p.h);
            let r = cb + iy * i32(p.w);
            for (var v = 0u; v < KW; v++) {
                mac(&acc, ld0(r + i32(v), vy && inside(ix0 + i32(v), p.w)), ld1x4(wb + k));
                k++;
            }
        }
    }
    // y[(n·O + o)·P + q]
    let br = block_rows(rb);
    store_block((br.lo / P) * p.o * P + br.lo % P, (br.hi / P) * p.o * P + br.hi % P, br.okl, br.okh, oc * P,
                oc < vec4<u32>(p.o), acc);
}

// dx[N,C,H,W] for the input pixels of class (RY, RX): (iy + pad) mod S = RY, (ix + pad) mod S = RX, laid out
// as rows (n, a, b) with iy = fy + S·a, ix = fx + S·b (a < p.hc, b < p.wc). Exactly the taps u = RY + S·i,
// v = RX + S·j reach them; columns: input channels c.
@compute @workgroup_size(WG)
fn backward_input_rows(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>,
                       @builtin(num_workgroups) nwg: vec3<u32>, @builtin(subgroup_invocation_id) sgi: u32) {
    let g = group_index(wid, nwg);
    if (g >= p.groups) { return; }
    let rb = g % p.row_blocks;
    let ct = g / p.row_blocks;
    let TY = select(0u, (KH - RY + S - 1u) / S, RY < KH);
    let TX = select(0u, (KW - RX + S - 1u) / S, RX < KW);
    let fy = (RY + S - p.pad % S) % S;
    let fx = (RX + S - p.pad % S) % S;
    let P = p.ho * p.wo;
    let KK = KH * KW;
    let HWc = p.hc * p.wc;
    // This lane's row: input pixel → output position (oy0, ox0) reached by the first tap (exact division).
    let m = rb * 8u + sgi % 8u;
    let mc = min(m, p.rows - 1u);
    let iy = fy + ((mc % HWc) / p.wc) * S;
    let ix = fx + (mc % p.wc) * S;
    let oy0 = i32(iy + p.pad - RY) / i32(S);
    let ox0 = i32(ix + p.pad - RX) / i32(S);
    let db = i32((mc / HWc) * p.o * P) + ox0;
    let cc = vec4<u32>(ct * WG * 4u + lid.x * 4u) + LANE4;
    let wb = min(cc, vec4<u32>(p.c - 1u)) * KK + RY * KW + RX;
    var acc: Block;
    for (var o = 0u; o < p.o; o++) {
        let ob = db + i32(o * P);
        let wo = wb + o * p.c * KK;
        for (var ty = 0u; ty < TY; ty++) {
            let oy = oy0 - i32(ty);
            let vy = inside(oy, p.ho);
            let r = ob + oy * i32(p.wo);
            let wu = wo + ty * S * KW;
            for (var tx = 0u; tx < TX; tx++) {
                mac(&acc, ld0(r - i32(tx), vy && inside(ox0 - i32(tx), p.wo)), ld1x4(wu + tx * S));
            }
        }
    }
    // dx[((n·C + c)·H + iy)·W + ix]
    let br = block_rows(rb);
    let HW = p.h * p.w;
    let yl = fy + ((br.lo % HWc) / p.wc) * S;
    let yh = fy + ((br.hi % HWc) / p.wc) * S;
    let xl = fx + (br.lo % p.wc) * S;
    let xh = fx + (br.hi % p.wc) * S;
    let okl = br.okl & (yl < vec4<u32>(p.h)) & (xl < vec4<u32>(p.w));
    let okh = br.okh & (yh < vec4<u32>(p.h)) & (xh < vec4<u32>(p.w));
    store_block((br.lo / HWc) * p.c * HW + yl * p.w + xl, (br.hi / HWc) * p.c * HW + yh * p.w + xh, okl, okh,
                cc * HW, cc < vec4<u32>(p.c), acc);
}

// dW[O, C·KH·KW] (or one split's partial sum) from x and dy. Rows: (c, u, v); columns: output channels;
// reduction over the image rows (n, oy) in [split·chunk, split·chunk + chunk) / Wo, and ox.
@compute @workgroup_size(WG)
fn backward_weight_rows(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>,
                        @builtin(num_workgroups) nwg: vec3<u32>, @builtin(subgroup_invocation_id) sgi: u32) {
    let g = group_index(wid, nwg);
    if (g >= p.groups) { return; }
    let rb = g % p.row_blocks;
    let ct = (g / p.row_blocks) % p.col_tiles;
    let split = g / (p.row_blocks * p.col_tiles);
    let s = p.stride;
    let P = p.ho * p.wo;
    let HW = p.h * p.w;
    let KK = KH * KW;
    // This lane's row (c, u, v): x offset of tap (u, v) for output (0, 0) of image 0.
    let m = min(rb * 8u + sgi % 8u, p.rows - 1u);
    let u0 = i32((m % KK) / KW) - i32(p.pad);
    let v0 = i32(m % KW) - i32(p.pad);
    let xc = i32((m / KK) * HW) + v0;
    let oc = vec4<u32>(ct * WG * 4u + lid.x * 4u) + LANE4;
    let ob = min(oc, vec4<u32>(p.o - 1u)) * P;
    let r0 = split * p.chunk / p.wo;                            // first image row (n·Ho + oy) of this split
    let r1 = min(r0 + p.chunk / p.wo, p.n * p.ho);
    var acc: Block;
    for (var r = r0; r < r1; r++) {
        let n = r / p.ho;
        let oy = r % p.ho;
        let iy = u0 + i32(oy * s);
        let vy = inside(iy, p.h);
        let xr = xc + i32(n * p.c * HW) + iy * i32(p.w);
        let db = ob + n * p.o * P + oy * p.wo;
        // Two output columns per iteration: half the loop overhead (accumulator updates in a loop are
        // masked on lavapipe).
        var ox = 0u;
        for (; ox + 1u < p.wo; ox += 2u) {
            let ix = i32(ox * s);
            mac(&acc, ld0(xr + ix, vy && inside(v0 + ix, p.w)), ld1x4(db + ox));
            let ix1 = ix + i32(s);
            mac(&acc, ld0(xr + ix1, vy && inside(v0 + ix1, p.w)), ld1x4(db + ox + 1u));
        }
        if (ox < p.wo) {
            let ix = i32(ox * s);
            mac(&acc, ld0(xr + ix, vy && inside(v0 + ix, p.w)), ld1x4(db + ox));
        }
    }
    // dst[split·O·CKK + o·CKK + ckk]
    let br = block_rows(rb);
    let base = split * p.o * p.rows;
    store_block(base + br.lo, base + br.hi, br.okl, br.okh, oc * p.rows, oc < vec4<u32>(p.o), acc);
}
