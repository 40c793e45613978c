// Pooling over [N, C, H, W] planes: max-pool 3×3 stride 2 padding 1 (forward saves the argmax,
// backward gathers, no atomics) and global average pooling [N, C, H, W] → [N, C].

struct Params {
    planes: u32,     // N*C
    h: u32,
    w: u32,
    ho: u32,
    wo: u32,
    tiles_w: u32,    // 8-wide tiles across the plane a tiled kernel walks (forward: outputs, backward: 2×2 blocks)
    hw: u32,         // H*W
    total: u32,      // N*C*H*W
    seg: u32,        // avgpool backward: elements per lane group (a multiple of LANES)
    q8: u32,         // LANES = q8*hw + r8
    r8: u32,
    inv_hw: f32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<storage, read_write> argmax: array<u32>;
@group(0) @binding(4) var<storage, read> dy: array<f32>;
@group(0) @binding(5) var<storage, read> argmax_in: array<u32>;
@group(0) @binding(6) var<storage, read_write> dx: array<f32>;

// Tiled kernels: workgroup (tile, plane) with 8×8 invocations; the plane index may spill from
// y into z when there are more than 65535 planes. Returns (col, row, plane).
fn tile_pos(wid: vec3<u32>, nwg: vec3<u32>, lid: vec3<u32>) -> vec3<u32> {
    let ty = wid.x / p.tiles_w;
    let tx = wid.x - ty * p.tiles_w;
    return vec3<u32>(tx * 8u + lid.x, ty * 8u + lid.y, wid.y + wid.z * nwg.y);
}

// Window rows 2·oh − 1 .. 2·oh + 1 (padding acts as −inf, so out-of-range taps are skipped).
// Scan row-major and keep the FIRST maximum (strict >), as torch does. Interior windows (all of
// them but the first row and column, and the last when H or W is even) skip the bounds checks.
@compute @workgroup_size(8, 8)
fn maxpool_forward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                   @builtin(local_invocation_id) lid: vec3<u32>) {
    let pos = tile_pos(wid, nwg, lid);
    let ow = pos.x;
    let oh = pos.y;
    let plane = pos.z;
    if (ow >= p.wo || oh >= p.ho || plane >= p.planes) { return; }
    let base = plane * p.hw;
    var best = 0.0;
    var arg = 0u;
    if (oh > 0u && ow > 0u && 2u * oh + 1u < p.h && 2u * ow + 1u < p.w) {
        let first = (2u * oh - 1u) * p.w + 2u * ow - 1u;
        best = x[base + first];
        arg = first;
        for (var k = 1u; k < 9u; k++) {
            let idx = first + (k / 3u) * p.w + k % 3u;
            let v = x[base + idx];
            if (v > best) {
                best = v;
                arg = idx;
            }
        }
    } else {
        let h0 = i32(2u * oh) - 1;
        let w0 = i32(2u * ow) - 1;
        var found = false;
        for (var dh = 0; dh < 3; dh++) {
            let hh = h0 + dh;
            if (hh < 0 || hh >= i32(p.h)) { continue; }
            for (var dw = 0; dw < 3; dw++) {
                let ww = w0 + dw;
                if (ww < 0 || ww >= i32(p.w)) { continue; }
                let idx = u32(hh) * p.w + u32(ww);
                let v = x[base + idx];
                if (!found || v > best) {
                    best = v;
                    arg = idx;
                    found = true;
                }
            }
        }
    }
    let o = plane * p.ho * p.wo + oh * p.wo + ow;
    y[o] = best;
    argmax[o] = arg;
}

// Gather: one invocation per 2×2 block of inputs (rows 2a, 2a+1; columns 2b, 2b+1). Every window
// that may have chosen one of them is among outputs (a..a+1, b..b+1) (window rows 2·oh − 1 ..
// 2·oh + 1), and each window's dy goes to its argmax: no atomics, each output read ≤ 4 times
// instead of each input scanning its windows. Sums in output scan order, as torch.
@compute @workgroup_size(8, 8)
fn maxpool_backward(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
                    @builtin(local_invocation_id) lid: vec3<u32>) {
    let pos = tile_pos(wid, nwg, lid);
    let b = pos.x;
    let a = pos.y;
    let plane = pos.z;
    if (2u * b >= p.w || 2u * a >= p.h || plane >= p.planes) { return; }
    let right = 2u * b + 1u < p.w;    // column 2b+1 exists
    let below = 2u * a + 1u < p.h;    // row 2a+1 exists
    let i00 = 2u * a * p.w + 2u * b;
    let obase = plane * p.ho * p.wo;
    var acc = vec4<f32>(0.0);         // inputs (2a,2b), (2a,2b+1), (2a+1,2b), (2a+1,2b+1)
    for (var oh = a; oh <= min(a + 1u, p.ho - 1u); oh++) {
        for (var ow = b; ow <= min(b + 1u, p.wo - 1u); ow++) {
            let o = obase + oh * p.wo + ow;
            let m = argmax_in[o];
            let g = dy[o];
            if (m == i00) { acc.x += g; }
            if (right && m == i00 + 1u) { acc.y += g; }
            if (below && m == i00 + p.w) { acc.z += g; }
            if (right && below && m == i00 + p.w + 1u) { acc.w += g; }
        }
    }
    let d = plane * p.hw + i00;
    dx[d] = acc.x;
    if (right) { dx[d + 1u] = acc.y; }
    if (below) { dx[d + p.w] = acc.z; }
    if (right && below) { dx[d + p.w + 1u] = acc.w; }
}

// One invocation per (n, c) plane.
@compute @workgroup_size(64)
fn avgpool_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = gid.x + gid.y * nwg.x * 64u;
    if (r >= p.planes) { return; }
    let base = r * p.hw;
    var s = 0.0;
    for (var i = 0u; i < p.hw; i++) { s += x[base + i]; }
    y[r] = s * p.inv_hw;
}

const LANES: u32 = 8u;

// dx = dy[plane] / HW. Every group of LANES adjacent invocations streams through one contiguous
// segment, keeping (plane, offset) counters so that no division runs per element.
@compute @workgroup_size(256)
fn avgpool_backward(@builtin(global_invocation_id) gid: vec3<u32>) {
    let seg = (gid.x / LANES) * p.seg;
    var e = seg + gid.x % LANES;
    let end = min(seg + p.seg, p.total);
    var r = e / p.hw;
    var i = e - r * p.hw;
    while (e < end) {
        dx[e] = dy[r] * p.inv_hw;
        e += LANES;
        i += p.r8;
        r += p.q8;
        if (i >= p.hw) {
            i -= p.hw;
            r += 1u;
        }
    }
}
