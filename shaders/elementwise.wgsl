// Element-wise ops: ReLU forward/backward, residual add (with optional fused ReLU), scale.
// One invocation per element; the grid may be split over x and y (see gpu::grid_1d).

struct Params {
    n: u32,
    relu: u32,   // add: apply ReLU to the sum
    _p0: u32,
    _p1: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> a: array<f32>;
@group(0) @binding(2) var<storage, read> b: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

const WG: u32 = 256u;

fn index(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * WG;
}

// out = max(a, 0)
@compute @workgroup_size(256)
fn relu_forward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = index(gid, nwg);
    if (i >= p.n) { return; }
    out[i] = max(a[i], 0.0);
}

// out = b where a > 0 (a: forward output or input, b: upstream gradient). Gradient at 0 is 0, as in torch.
@compute @workgroup_size(256)
fn relu_backward(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = index(gid, nwg);
    if (i >= p.n) { return; }
    out[i] = select(0.0, b[i], a[i] > 0.0);
}

// out = a + b, then ReLU when p.relu != 0 (the residual join of a basic block).
@compute @workgroup_size(256)
fn add(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = index(gid, nwg);
    if (i >= p.n) { return; }
    let s = a[i] + b[i];
    out[i] = select(s, max(s, 0.0), p.relu != 0u);
}
