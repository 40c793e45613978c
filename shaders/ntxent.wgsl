// NT-Xent (and its V-view generalisation) forward + backward, never materialising the
// similarity matrix: each invocation owns one anchor row i and streams over all rows j in
// tiles of 16, recomputing s_ij = ẑ_i·ẑ_j. The streamed rows are the same for every
// invocation of a workgroup (uniform loads, broadcast by a GPU's cache and by lavapipe), the
// anchor's own values are contiguous across invocations: no workgroup memory, no barriers.
//
// Layout: z is [M = V·N, d] with row v·N + i = view v of image i; positives of i are the
// other rows j with j mod N == i mod N. ẑ is kept transposed, znT [d, MP] (MP = M rounded up
// to 16, zero padding), so both the anchor values (znT[k, i]) and a tile of streamed rows
// (znT[k, j0..j0+16] as four vec4) are contiguous.
//
// Passes: normalize → forward (online logsumexp, positives, argmax) → backward (second
// streaming pass) → finalize (means). Logits are a·s with a = 1/τ.

struct Params {
    m: u32,        // rows V·N
    n: u32,        // images N
    d: u32,
    mp: u32,       // padded row count, multiple of 16
    a: f32,        // 1/τ
    inv_m: f32,    // 1/M: the loss is the mean over all anchors
    inv_pos: f32,  // 1/(V−1): each anchor averages over its positives
    _pad: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> z: array<f32>;
@group(0) @binding(2) var<storage, read_write> znt_w: array<f32>;
@group(0) @binding(3) var<storage, read> znt: array<f32>;
@group(0) @binding(4) var<storage, read> znt4: array<vec4<f32>>;
@group(0) @binding(5) var<storage, read_write> norm: array<f32>;
@group(0) @binding(6) var<storage, read_write> lse: array<f32>;
@group(0) @binding(7) var<storage, read> lse4: array<vec4<f32>>;
@group(0) @binding(8) var<storage, read_write> per_anchor: array<f32>;
@group(0) @binding(9) var<storage, read_write> hit: array<f32>;
@group(0) @binding(10) var<storage, read_write> gt: array<f32>;
@group(0) @binding(11) var<storage, read_write> dz: array<f32>;
@group(0) @binding(12) var<storage, read_write> loss: array<f32>;
@group(0) @binding(13) var<storage, read_write> accuracy: array<f32>;

const WG: u32 = 64u;
const EPS: f32 = 1e-12;   // F.normalize's floor on the norm
const NEG: f32 = -3.0e38; // masked logit: exp(NEG − m) = 0, and never beats a real maximum

fn row_index(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * WG;
}

// ẑ = z / max(‖z‖, ε), written transposed; padding rows (i ≥ M) get zeros. The norm is
// computed on z / max|z| so that neither huge nor tiny rows overflow or underflow.
@compute @workgroup_size(64)
fn normalize(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = row_index(gid, nwg);
    if (i >= p.mp) { return; }
    if (i >= p.m) {
        for (var k = 0u; k < p.d; k++) { znt_w[k * p.mp + i] = 0.0; }
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
    for (var k = 0u; k < p.d; k++) { znt_w[k * p.mp + i] = z[base + k] * scale; }
}

// Similarities of anchor i with the 16 rows j0..j0+15, as four vec4.
struct Tile { s0: vec4<f32>, s1: vec4<f32>, s2: vec4<f32>, s3: vec4<f32> }

fn sim_tile(i: u32, j0: u32) -> Tile {
    var t = Tile(vec4(0.0), vec4(0.0), vec4(0.0), vec4(0.0));
    let q0 = j0 / 4u;
    let q_stride = p.mp / 4u;
    for (var k = 0u; k < p.d; k++) {
        let x = znt[k * p.mp + i];
        let q = k * q_stride + q0;
        t.s0 += x * znt4[q];
        t.s1 += x * znt4[q + 1u];
        t.s2 += x * znt4[q + 2u];
        t.s3 += x * znt4[q + 3u];
    }
    return t;
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

// Per anchor: online logsumexp over j ≠ i (running max subtracted, so τ = 0.01 is fine),
// the sum of positive logits, and the first most similar other row.
@compute @workgroup_size(64)
fn forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = row_index(gid, nwg);
    if (i >= p.m) { return; }
    var run_max = NEG;
    var run_sum = 0.0;
    var pos_sum = 0.0;
    var best = NEG;
    var best_j = 0u;
    for (var j0 = 0u; j0 < p.mp; j0 += 16u) {
        let t = sim_tile(i, j0);
        var x = array<vec4<f32>, 4>(t.s0 * p.a, t.s1 * p.a, t.s2 * p.a, t.s3 * p.a);
        var tile_max = NEG;
        for (var q = 0u; q < 4u; q++) {
            let j = vec4(j0 + 4u * q) + vec4(0u, 1u, 2u, 3u);
            let valid = valid4(i, j);
            pos_sum += hsum(select(vec4(0.0), x[q], pos4(i, j, valid)));
            x[q] = select(vec4(NEG), x[q], valid);
            tile_max = max(tile_max, hmax(x[q]));
        }
        if (tile_max > best) {
            // Strict > while scanning j upwards keeps the first maximum, like torch.argmax.
            best = tile_max;
            for (var q = 3u; q < 4u; q--) {
                for (var c = 3u; c < 4u; c--) {
                    if (x[q][c] == tile_max) { best_j = j0 + 4u * q + c; }
                }
            }
        }
        let new_max = max(run_max, tile_max);
        var acc = run_sum * exp(run_max - new_max);
        for (var q = 0u; q < 4u; q++) { acc += hsum(exp(x[q] - vec4(new_max))); }
        run_sum = acc;
        run_max = new_max;
    }
    let l = run_max + log(run_sum);
    lse[i] = l;
    // ℓ = lse − mean positive logit. For N = 1, V = 2 the single term cancels exactly.
    per_anchor[i] = (run_max - pos_sum * p.inv_pos) + log(run_sum);
    hit[i] = select(0.0, 1.0, best_j != i && best_j % p.n == i % p.n);
}

// dL/dẑ_i = Σ_j w_ij ẑ_j with w_ij = (a/M)(P_ij + P_ji − 2[j ∈ P(i)]/(V−1)) and
// P_ij = exp(a s_ij − lse_i), accumulated in gt [d, MP]; then through the normalisation:
// dz = (g − ẑ(ẑ·g)) / ‖z‖ above the floor, g / ε below it.
@compute @workgroup_size(64)
fn backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = row_index(gid, nwg);
    if (i >= p.m) { return; }
    let d = p.d;
    let mp = p.mp;
    for (var c = 0u; c < d; c++) { gt[c * mp + i] = 0.0; }
    let lse_i = lse4[i / 4u][i % 4u];
    let scale = p.a * p.inv_m;
    let pos_w = 2.0 * p.inv_pos;
    for (var j0 = 0u; j0 < mp; j0 += 16u) {
        let t = sim_tile(i, j0);
        let s = array<vec4<f32>, 4>(t.s0 * p.a, t.s1 * p.a, t.s2 * p.a, t.s3 * p.a);
        var w: array<vec4<f32>, 4>;
        for (var q = 0u; q < 4u; q++) {
            let j = vec4(j0 + 4u * q) + vec4(0u, 1u, 2u, 3u);
            let valid = valid4(i, j);
            let y = select(vec4(0.0), vec4(pos_w), pos4(i, j, valid));
            let pij = exp(s[q] - vec4(lse_i));
            let pji = exp(s[q] - lse4[j0 / 4u + q]);
            w[q] = select(vec4(0.0), (pij + pji - y) * scale, valid);
        }
        let q0 = j0 / 4u;
        for (var c = 0u; c < d; c++) {
            let q = c * (mp / 4u) + q0;
            let g = dot(w[0], znt4[q]) + dot(w[1], znt4[q + 1u]) + dot(w[2], znt4[q + 2u]) + dot(w[3], znt4[q + 3u]);
            gt[c * mp + i] += g;
        }
    }
    var zg = 0.0;
    for (var c = 0u; c < d; c++) { zg += znt[c * mp + i] * gt[c * mp + i]; }
    let nrm = norm[i];
    for (var c = 0u; c < d; c++) {
        let g = gt[c * mp + i];
        dz[i * d + c] = select(g / EPS, (g - znt[c * mp + i] * zg) / nrm, nrm > EPS);
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
