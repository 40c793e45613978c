// NT-Xent (and its V-view generalisation) forward + backward, never materialising the
// similarity matrix: each invocation owns R = 8 anchor rows and streams over all rows j in
// tiles of 16, recomputing s_ij = ẑ_i·ẑ_j with an online logsumexp. The streamed rows are the
// same for every invocation of a workgroup, the anchors' values are contiguous across
// invocations: no workgroup memory, no barriers, which suits CPU drivers and GPUs alike.
//
// Layout: z is [M = V·N, d] with row v·N + i = view v of image i; positives of i are the
// other rows j with j mod N == i mod N. ẑ (and the gradient gt) are stored in blocks of 16
// rows, each block [d][16]: element (i, k) at (i/16)·16d + 16k + i%16. A tile of streamed rows
// is then 4 vec4 per k, and k advances through memory sequentially for both operands. Rows
// are padded to MP (whole workgroups) with zeros.
//
// Passes: normalize → forward (online logsumexp, positives, argmax) → finalize (means) →
// backward (second streaming pass). Logits are a·s with a = 1/τ.

struct Params {
    m: u32,        // rows V·N
    n: u32,        // images N
    d: u32,
    mp: u32,       // padded rows: a multiple of the R·LANES anchors of a workgroup
    a: f32,        // 1/τ
    inv_m: f32,    // 1/M: the loss is the mean over all anchors
    inv_pos: f32,  // 1/(V−1): each anchor averages over its positives
    mj: u32,       // streamed rows: M rounded up to the 16-row tile
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> z: array<f32>;
@group(0) @binding(2) var<storage, read_write> zn_w: array<f32>;
@group(0) @binding(3) var<storage, read> zn: array<f32>;
@group(0) @binding(4) var<storage, read> zn4: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> norm: array<f32>;
@group(0) @binding(6) var<storage, read_write> lse: array<f32>;
@group(0) @binding(7) var<storage, read> lse4: array<vec4<f32>>;
@group(0) @binding(8) var<storage, read_write> per_anchor: array<f32>;
@group(0) @binding(9) var<storage, read_write> hit: array<f32>;
@group(0) @binding(10) var<storage, read_write> gt: array<f32>;
@group(0) @binding(11) var<storage, read_write> dz: array<f32>;
@group(0) @binding(12) var<storage, read_write> loss: array<f32>;
@group(0) @binding(13) var<storage, read_write> accuracy: array<f32>;

const WG: u32 = 64u;      // normalize
const EPS: f32 = 1e-12;   // F.normalize's floor on the norm
const NEG: f32 = -3.0e38; // masked logit: exp(NEG − m) = 0, and never beats a real maximum

fn row_index(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * WG;
}

// Index of element (row i, column 0) in the 16-row blocked layout; column k adds 16k.
fn blocked(i: u32) -> u32 {
    return (i / 16u) * 16u * p.d + i % 16u;
}

// ẑ = z / max(‖z‖, ε) in the blocked layout; padding rows (i ≥ M) get zeros. The norm is
// computed on z / max|z| so that neither huge nor tiny rows overflow or underflow.
@compute @workgroup_size(64)
fn normalize(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = row_index(gid, nwg);
    if (i >= p.mp) { return; }
    if (i >= p.m) {
        for (var k = 0u; k < p.d; k++) { zn_w[blocked(i) + 16u * k] = 0.0; }
        return;
    }
    let base = i * p.d;
    var mx = 0.0;
    for (var k = 0u; k < p.d; k++) { mx = max(mx, abs(z[base + k])); }
    var ss = 0.0;
    if (mx > 0.0) {
        for (var k = 0u; k < p.d; k++) { let t = z[base + k] / mx; ss += t * t; }
    }
    let nrm = mx * sqrt(ss);
    norm[i] = nrm;
    let scale = 1.0 / max(nrm, EPS);
    let out = blocked(i);
    for (var k = 0u; k < p.d; k++) { zn_w[out + 16u * k] = z[base + k] * scale; }
}

const R: u32 = 8u;        // anchors per invocation (register blocking)
// Invocations per workgroup of forward/backward: 16 on CPU drivers (more workgroups to spread
// over few cores), 64 on GPUs.
override LANES: u32 = 64u;

// Anchor r of this invocation: contiguous across the workgroup for each r.
fn anchor(wid: vec3<u32>, nwg: vec3<u32>, lid: u32, r: u32) -> u32 {
    return (wid.x + wid.y * nwg.x) * (R * LANES) + r * LANES + lid;
}

// valid: j < M and j ≠ i. pos: valid and a view of the same image.
fn valid4(i: u32, j: vec4<u32>) -> vec4<bool> {
    return (j < vec4(p.m)) & (j != vec4(i));
}

fn pos4(i: u32, j: vec4<u32>, valid: vec4<bool>) -> vec4<bool> {
    return valid & ((j % vec4(p.n)) == vec4(i % p.n));
}

fn hmax(v: vec4<f32>) -> f32 {
    return max(max(v.x, v.y), max(v.z, v.w));
}

fn hsum(v: vec4<f32>) -> f32 {
    return dot(v, vec4(1.0));
}

// Logits a·s of the R anchors (offsets bi = blocked(ii)) with rows j0..j0+15:
// acc[4r + q] holds columns j0+4q..j0+4q+3 of anchor r.
fn logit_tile(bi: array<u32, 8>, j0: u32) -> array<vec4<f32>, 32> {
    var acc: array<vec4<f32>, 32>;
    let q0 = (j0 / 16u) * 4u * p.d;
    for (var k = 0u; k < p.d; k++) {
        let q = q0 + 4u * k;
        let b0 = zn4[q];
        let b1 = zn4[q + 1u];
        let b2 = zn4[q + 2u];
        let b3 = zn4[q + 3u];
        for (var r = 0u; r < R; r++) {
            let x = vec4(zn[bi[r] + 16u * k]);
            acc[4u * r] = fma(x, b0, acc[4u * r]);
            acc[4u * r + 1u] = fma(x, b1, acc[4u * r + 1u]);
            acc[4u * r + 2u] = fma(x, b2, acc[4u * r + 2u]);
            acc[4u * r + 3u] = fma(x, b3, acc[4u * r + 3u]);
        }
    }
    for (var q = 0u; q < 32u; q++) { acc[q] *= p.a; }
    return acc;
}

// Per anchor: online logsumexp over j ≠ i (running max subtracted, so τ = 0.01 is fine),
// the sum of positive logits, and the first most similar other row.
@compute @workgroup_size(LANES)
fn forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
           @builtin(local_invocation_index) lid: u32) {
    var ii: array<u32, 8>;
    var bi: array<u32, 8>;
    for (var r = 0u; r < R; r++) { ii[r] = anchor(wid, nwg, lid, r); bi[r] = blocked(ii[r]); }
    if (ii[0] >= p.m) { return; }
    var run_max = array<f32, 8>(NEG, NEG, NEG, NEG, NEG, NEG, NEG, NEG);
    var run_sum: array<f32, 8>;
    var pos_sum: array<f32, 8>;
    var best = array<f32, 8>(NEG, NEG, NEG, NEG, NEG, NEG, NEG, NEG);
    var best_j: array<u32, 8>;
    for (var j0 = 0u; j0 < p.mj; j0 += 16u) {
        var x = logit_tile(bi, j0);
        for (var r = 0u; r < R; r++) {
            let i = ii[r];
            var tile_max = NEG;
            for (var q = 0u; q < 4u; q++) {
                let j = vec4(j0 + 4u * q) + vec4(0u, 1u, 2u, 3u);
                let valid = valid4(i, j);
                pos_sum[r] += hsum(select(vec4(0.0), x[4u * r + q], pos4(i, j, valid)));
                x[4u * r + q] = select(vec4(NEG), x[4u * r + q], valid);
                tile_max = max(tile_max, hmax(x[4u * r + q]));
            }
            if (tile_max > best[r]) {
                // Strict > while scanning j upwards keeps the first maximum, like torch.argmax.
                best[r] = tile_max;
                for (var q = 3u; q < 4u; q--) {
                    for (var c = 3u; c < 4u; c--) {
                        if (x[4u * r + q][c] == tile_max) { best_j[r] = j0 + 4u * q + c; }
                    }
                }
            }
            let new_max = max(run_max[r], tile_max);
            var acc = run_sum[r] * exp(run_max[r] - new_max);
            for (var q = 0u; q < 4u; q++) { acc += hsum(exp(x[4u * r + q] - vec4(new_max))); }
            run_sum[r] = acc;
            run_max[r] = new_max;
        }
    }
    for (var r = 0u; r < R; r++) {
        let i = ii[r];
        if (i < p.m) {
            lse[i] = run_max[r] + log(run_sum[r]);
            // ℓ = lse − mean positive logit. For N = 1, V = 2 the single term cancels exactly.
            per_anchor[i] = (run_max[r] - pos_sum[r] * p.inv_pos) + log(run_sum[r]);
            hit[i] = select(0.0, 1.0, best_j[r] != i && best_j[r] % p.n == i % p.n);
        }
    }
}

// dL/dẑ_i = Σ_j w_ij ẑ_j with w_ij = (a/M)(P_ij + P_ji − 2[j ∈ P(i)]/(V−1)) and
// P_ij = exp(a s_ij − lse_i), accumulated in gt (blocked layout); then through the normalisation:
// dz = (g − ẑ(ẑ·g)) / ‖z‖ above the floor, g / ε below it.
@compute @workgroup_size(LANES)
fn backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
            @builtin(local_invocation_index) lid: u32) {
    var ii: array<u32, 8>;
    var bi: array<u32, 8>;
    var lse_i: array<f32, 8>;
    for (var r = 0u; r < R; r++) {
        ii[r] = anchor(wid, nwg, lid, r);
        bi[r] = blocked(ii[r]);
        lse_i[r] = lse4[ii[r] / 4u][ii[r] % 4u];
    }
    if (ii[0] >= p.m) { return; }
    let d = p.d;
    for (var c = 0u; c < d; c++) {
        for (var r = 0u; r < R; r++) { gt[bi[r] + 16u * c] = 0.0; }
    }
    let scale = p.a * p.inv_m;
    let pos_w = 2.0 * p.inv_pos;
    for (var j0 = 0u; j0 < p.mj; j0 += 16u) {
        var w = logit_tile(bi, j0);
        for (var q = 0u; q < 4u; q++) {
            let j = vec4(j0 + 4u * q) + vec4(0u, 1u, 2u, 3u);
            let lse_j = lse4[j0 / 4u + q];
            for (var r = 0u; r < R; r++) {
                let s = w[4u * r + q];
                let valid = valid4(ii[r], j);
                let y = select(vec4(0.0), vec4(pos_w), pos4(ii[r], j, valid));
                let pij = exp(s - vec4(lse_i[r]));
                let pji = exp(s - lse_j);
                w[4u * r + q] = select(vec4(0.0), (pij + pji - y) * scale, valid);
            }
        }
        let q0 = (j0 / 16u) * 4u * d;
        for (var c = 0u; c < d; c++) {
            let q = q0 + 4u * c;
            let b0 = zn4[q];
            let b1 = zn4[q + 1u];
            let b2 = zn4[q + 2u];
            let b3 = zn4[q + 3u];
            for (var r = 0u; r < R; r++) {
                let g = dot(w[4u * r], b0) + dot(w[4u * r + 1u], b1) + dot(w[4u * r + 2u], b2)
                    + dot(w[4u * r + 3u], b3);
                gt[bi[r] + 16u * c] += g;
            }
        }
    }
    for (var r = 0u; r < R; r++) {
        let i = ii[r];
        if (i >= p.m) { continue; }
        let b = bi[r];
        var zg = 0.0;
        for (var c = 0u; c < d; c++) { zg += zn[b + 16u * c] * gt[b + 16u * c]; }
        let nrm = norm[i];
        for (var c = 0u; c < d; c++) {
            let g = gt[b + 16u * c];
            dz[i * d + c] = select(g / EPS, (g - zn[b + 16u * c] * zg) / nrm, nrm > EPS);
        }
    }
}

var<workgroup> red_loss: array<f32, 256>;
var<workgroup> red_hit: array<f32, 256>;

// loss = mean ℓ, accuracy = mean hit: one workgroup, tree reduction.
@compute @workgroup_size(256)
fn finalize(@builtin(local_invocation_index) t: u32) {
    var sl = 0.0;
    var sh = 0.0;
    for (var i = t; i < p.m; i += 256u) {
        sl += per_anchor[i];
        sh += hit[i];
    }
    red_loss[t] = sl;
    red_hit[t] = sh;
    for (var w = 128u; w > 0u; w >>= 1u) {
        workgroupBarrier();
        if (t < w) {
            red_loss[t] += red_loss[t + w];
            red_hit[t] += red_hit[t + w];
        }
    }
    if (t == 0u) {
        loss[0] = red_loss[0] * p.inv_m;
        accuracy[0] = red_hit[0] * p.inv_m;
    }
}
