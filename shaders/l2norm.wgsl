// Row-wise L2 normalisation of x [M, D]: y = x / max(‖x‖, 1e-12) (torch F.normalize), and its
// backward dx = (dy − y·(y·dy)) / ‖x‖ for ‖x‖ > 1e-12, dx = dy / 1e-12 at or below the floor.
// Two flavours: `*_wg` = one 64-invocation workgroup per row with a tree reduction (GPUs);
// `*_row` = one invocation per row, no workgroup memory or barriers (CPU drivers such as lavapipe,
// where a workgroup's barriers cost several µs).

struct Params {
    m: u32,
    d: u32,
    _p0: u32,
    _p1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@group(0) @binding(3) var<storage, read> y_in: array<f32>;
@group(0) @binding(4) var<storage, read> dy: array<f32>;
@group(0) @binding(5) var<storage, read_write> dx: array<f32>;

const FLOOR: f32 = 1e-12;
const WG: u32 = 64u;

var<workgroup> red: array<vec2<f32>, WG>;

// Sum of `v` over the workgroup, in red[0] on return (read it before the next call).
fn tree(lid: u32, v: vec2<f32>) -> vec2<f32> {
    red[lid] = v;
    workgroupBarrier();
    for (var off = WG / 2u; off > 0u; off >>= 1u) {
        if (lid < off) { red[lid] += red[lid + off]; }
        workgroupBarrier();
    }
    return red[0];
}

// Row index of a workgroup on a grid that may spill from x into y (gpu::grid_1d).
fn wg_row(wid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return wid.x + wid.y * nwg.x;
}

@compute @workgroup_size(64)
fn forward_wg(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
              @builtin(local_invocation_index) lid: u32) {
    let r = wg_row(wid, nwg);
    if (r >= p.m) { return; }   // uniform across the workgroup
    let base = r * p.d;
    var ss = 0.0;
    for (var k = lid; k < p.d; k += WG) { ss = fma(x[base + k], x[base + k], ss); }
    let denom = max(sqrt(tree(lid, vec2<f32>(ss, 0.0)).x), FLOOR);
    for (var k = lid; k < p.d; k += WG) { y[base + k] = x[base + k] / denom; }
}

@compute @workgroup_size(64)
fn backward_wg(@builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>,
               @builtin(local_invocation_index) lid: u32) {
    let r = wg_row(wid, nwg);
    if (r >= p.m) { return; }
    let base = r * p.d;
    var acc = vec2<f32>(0.0);
    for (var k = lid; k < p.d; k += WG) {
        let e = base + k;
        acc += vec2<f32>(x[e] * x[e], y_in[e] * dy[e]);
    }
    let t = tree(lid, acc);
    let norm = sqrt(t.x);
    if (norm > FLOOR) {
        for (var k = lid; k < p.d; k += WG) { dx[base + k] = (dy[base + k] - y_in[base + k] * t.y) / norm; }
    } else {
        for (var k = lid; k < p.d; k += WG) { dx[base + k] = dy[base + k] / FLOOR; }
    }
}

@compute @workgroup_size(64)
fn forward_row(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = gid.x + gid.y * nwg.x * WG;
    if (r >= p.m) { return; }
    let base = r * p.d;
    var ss = 0.0;
    for (var k = 0u; k < p.d; k++) { ss = fma(x[base + k], x[base + k], ss); }
    let denom = max(sqrt(ss), FLOOR);
    for (var k = 0u; k < p.d; k++) { y[base + k] = x[base + k] / denom; }
}

@compute @workgroup_size(64)
fn backward_row(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let r = gid.x + gid.y * nwg.x * WG;
    if (r >= p.m) { return; }
    let base = r * p.d;
    var ss = 0.0;
    var dot = 0.0;
    for (var k = 0u; k < p.d; k++) {
        ss = fma(x[base + k], x[base + k], ss);
        dot = fma(y_in[base + k], dy[base + k], dot);
    }
    let norm = sqrt(ss);
    if (norm > FLOOR) {
        for (var k = 0u; k < p.d; k++) { dx[base + k] = (dy[base + k] - y_in[base + k] * dot) / norm; }
    } else {
        for (var k = 0u; k < p.d; k++) { dx[base + k] = dy[base + k] / FLOOR; }
    }
}
