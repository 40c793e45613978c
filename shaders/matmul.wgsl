// C[M,N] = op(A)·op(B) (+ bias[N]) (then ReLU), f32, any M, K, N.
// op(A) = A (stored [M,K]) or Aᵀ (stored [K,M]) when TRANS_A; op(B) = B ([K,N]) or Bᵀ ([N,K]) when TRANS_B.
// Two kernels of the same maths (see gpu::KernelFlavor):
//   matmul_tiled: workgroup-memory tiles + 4×4 register blocking, for real GPUs;
//   matmul_rows:  no workgroup memory and no barriers, for CPU drivers (lavapipe).
// Helpers: col_sum (bias gradient), transpose (lets matmul_rows read B row-major).
// Tiles are numbered linearly over a grid that may be split over x and y (gpu::grid_1d).

struct Params {
    m: u32,
    n: u32,
    k: u32,
    tiles_n: u32,  // tiles along N
    tiles_m: u32,  // tiles along M
    _p0: u32,
    _p1: u32,
    _p2: u32,
}

override TRANS_A: bool = false;
override TRANS_B: bool = false;
override HAS_BIAS: bool = false;
override RELU: bool = false;

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read> bias: array<f32>;
@group(0) @binding(4) var<storage, read_write> c: array<f32>;

fn epilogue(v: f32, col: u32) -> f32 {
    var s = v;
    if (HAS_BIAS) { s += bias[col]; }
    if (RELU) { s = max(s, 0.0); }
    return s;
}

// ---------------------------------------------------------------------------------------------
// Tiled: a 64×64 tile of C per workgroup of 16×16 invocations, each owning 4×4 outputs strided by
// 16 (conflict-free workgroup-memory reads, coalesced stores); K is walked in slices of 16.

const TS: u32 = 64u;
const BK: u32 = 16u;
const TPAD: u32 = 65u;  // odd row length: the transposing stores into the tiles avoid bank conflicts

var<workgroup> tile_a: array<f32, 1040>;  // [BK][TPAD], op(A) slice stored k-major
var<workgroup> tile_b: array<f32, 1040>;  // [BK][TPAD], op(B) slice stored k-major

@compute @workgroup_size(16, 16)
fn matmul_tiled(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) li: u32,
) {
    let t = wid.x + wid.y * nwg.x;
    let tm = t / p.tiles_n;
    if (tm >= p.tiles_m) { return; }  // uniform per workgroup, so the barriers below stay legal
    let tn = t - tm * p.tiles_n;
    let row0 = tm * TS;
    let col0 = tn * TS;
    let tx = li % 16u;
    let ty = li / 16u;
    var acc: array<vec4<f32>, 4>;  // acc[i][j] = C[row0 + ty + 16i, col0 + tx + 16j]
    for (var k0 = 0u; k0 < p.k; k0 += BK) {
        // Each invocation stages 4 elements of each slice; consecutive invocations read
        // consecutive addresses whichever way the operand is stored.
        for (var i = 0u; i < 4u; i++) {
            let e = li + i * 256u;
            var r: u32;
            var kk: u32;
            if (TRANS_A) { kk = e / TS; r = e % TS; } else { r = e / BK; kk = e % BK; }
            let gr = row0 + r;
            let gk = k0 + kk;
            var v = 0.0;
            if (gr < p.m && gk < p.k) { v = a[select(gr * p.k + gk, gk * p.m + gr, TRANS_A)]; }
            tile_a[kk * TPAD + r] = v;
            var cc: u32;
            if (TRANS_B) { cc = e / BK; kk = e % BK; } else { kk = e / TS; cc = e % TS; }
            let gc = col0 + cc;
            let gk2 = k0 + kk;
            var w = 0.0;
            if (gc < p.n && gk2 < p.k) { w = b[select(gk2 * p.n + gc, gc * p.k + gk2, TRANS_B)]; }
            tile_b[kk * TPAD + cc] = w;
        }
        workgroupBarrier();
        for (var kk = 0u; kk < BK; kk++) {
            let o = kk * TPAD;
            let bv = vec4(tile_b[o + tx], tile_b[o + tx + 16u], tile_b[o + tx + 32u], tile_b[o + tx + 48u]);
            acc[0] = fma(vec4(tile_a[o + ty]), bv, acc[0]);
            acc[1] = fma(vec4(tile_a[o + ty + 16u]), bv, acc[1]);
            acc[2] = fma(vec4(tile_a[o + ty + 32u]), bv, acc[2]);
            acc[3] = fma(vec4(tile_a[o + ty + 48u]), bv, acc[3]);
        }
        workgroupBarrier();
    }
    // Constant indices only, so that the accumulators stay in registers.
    store_tiled(row0 + ty, col0 + tx, acc[0]);
    store_tiled(row0 + ty + 16u, col0 + tx, acc[1]);
    store_tiled(row0 + ty + 32u, col0 + tx, acc[2]);
    store_tiled(row0 + ty + 48u, col0 + tx, acc[3]);
}

// Columns col, col+16, col+32, col+48 of one row.
fn store_tiled(row: u32, col: u32, v: vec4<f32>) {
    if (row >= p.m) { return; }
    let o = row * p.n;
    if (col < p.n) { c[o + col] = epilogue(v.x, col); }
    if (col + 16u < p.n) { c[o + col + 16u] = epilogue(v.y, col + 16u); }
    if (col + 32u < p.n) { c[o + col + 32u] = epilogue(v.z, col + 32u); }
    if (col + 48u < p.n) { c[o + col + 48u] = epilogue(v.w, col + 48u); }
}

// ---------------------------------------------------------------------------------------------
// Rows: all invocations of a workgroup share RM rows of op(A) (uniform loads, which a CPU driver
// does once per SIMD batch instead of once per lane) and each owns 8 adjacent columns of C.
// B must be row-major [K,N] (the host transposes it first when needed; strided per-lane reads
// of Bᵀ ran at half speed on lavapipe). 16 rows × 8 columns per lane was the fastest shape
// measured on lavapipe (Mesa 25, 1024³): more columns per lane spill, fewer rows reload B.
// Column tiles are the outer index so that consecutive workgroups reuse one B panel in cache.

const RM: u32 = 16u;
override LANES: u32 = 16u;  // 8 when N is small, so that a workgroup's 8·LANES columns are not wasted

@compute @workgroup_size(LANES)
fn matmul_rows(
    @builtin(workgroup_id) wid: vec3<u32>,
    @builtin(num_workgroups) nwg: vec3<u32>,
    @builtin(local_invocation_index) lid: u32,
) {
    let t = wid.x + wid.y * nwg.x;
    let tn = t / p.tiles_m;
    if (tn >= p.tiles_n) { return; }
    let tm = t - tn * p.tiles_m;
    let row0 = tm * RM;
    let col0 = (tn * LANES + lid) * 8u;
    // Loads are clamped to the last row / column so that the inner loop has no branches;
    // the stores are masked instead.
    let last = p.n - 1u;
    let c0 = min(col0, last);
    let c1 = min(col0 + 1u, last);
    let c2 = min(col0 + 2u, last);
    let c3 = min(col0 + 3u, last);
    let c4 = min(col0 + 4u, last);
    let c5 = min(col0 + 5u, last);
    let c6 = min(col0 + 6u, last);
    let c7 = min(col0 + 7u, last);
    // op(A)[r, k] = a[r * row_stride + k * k_stride]
    let row_stride = select(p.k, 1u, TRANS_A);
    let k_stride = select(1u, p.m, TRANS_A);
    var rows: array<u32, RM>;
    for (var r = 0u; r < RM; r++) { rows[r] = min(row0 + r, p.m - 1u) * row_stride; }
    var acc: array<array<vec4<f32>, 2>, RM>;
    for (var k = 0u; k < p.k; k++) {
        let o = k * p.n;
        let b0 = vec4(b[o + c0], b[o + c1], b[o + c2], b[o + c3]);
        let b1 = vec4(b[o + c4], b[o + c5], b[o + c6], b[o + c7]);
        let ak = k * k_stride;
        for (var r = 0u; r < RM; r++) {
            let av = vec4(a[rows[r] + ak]);
            acc[r][0] = fma(av, b0, acc[r][0]);
            acc[r][1] = fma(av, b1, acc[r][1]);
        }
    }
    for (var r = 0u; r < RM; r++) {
        if (row0 + r < p.m) { store_rows(row0 + r, col0, acc[r][0], acc[r][1]); }
    }
}

// Columns col .. col+7 of one row.
fn store_rows(row: u32, col: u32, v0: vec4<f32>, v1: vec4<f32>) {
    let o = row * p.n;
    if (col < p.n) { c[o + col] = epilogue(v0.x, col); }
    if (col + 1u < p.n) { c[o + col + 1u] = epilogue(v0.y, col + 1u); }
    if (col + 2u < p.n) { c[o + col + 2u] = epilogue(v0.z, col + 2u); }
    if (col + 3u < p.n) { c[o + col + 3u] = epilogue(v0.w, col + 3u); }
    if (col + 4u < p.n) { c[o + col + 4u] = epilogue(v1.x, col + 4u); }
    if (col + 5u < p.n) { c[o + col + 5u] = epilogue(v1.y, col + 5u); }
    if (col + 6u < p.n) { c[o + col + 6u] = epilogue(v1.z, col + 6u); }
    if (col + 7u < p.n) { c[o + col + 7u] = epilogue(v1.w, col + 7u); }
}

// ---------------------------------------------------------------------------------------------
// c[n] = Σ_m a[m, n] for a [M, N] (p.m, p.n): the bias gradient. One invocation per column.

@compute @workgroup_size(64)
fn col_sum(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let col = gid.x + gid.y * nwg.x * 64u;
    if (col >= p.n) { return; }
    var s = 0.0;
    for (var r = 0u; r < p.m; r++) { s += a[r * p.n + col]; }
    c[col] = s;
}

// c = aᵀ for a [M, N] (p.m, p.n): c is [N, M]. One invocation per output element, so the
// stores are contiguous.

@compute @workgroup_size(64)
fn transpose(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * 64u;
    if (i >= p.m * p.n) { return; }
    let col = i / p.m;  // row of c
    let row = i - col * p.m;
    c[i] = a[row * p.n + col];
}
