// Optimizer steps, one or two dispatches per parameter tensor (each tensor is its own buffer).
//   LARS (google-research/simclr, classic momentum): g' = g + wd·w (not for excluded params);
//     trust = η‖w‖/‖g'‖ (1 if either norm is 0, 1 for excluded); v = m·v + lr·trust·g'; w −= v.
//     lars_norms writes per-workgroup partial sums of w² and g'², lars_update sums them.
//   SGD (torch, dampening 0, no Nesterov): g' = g + wd·w; v = m·v + g'; w −= lr·v.
//   AdamW (torch): w ·= 1 − lr·wd; m = β1 m + (1−β1) g; s = β2 s + (1−β2) g²;
//     w −= lr·(m/bc1)/(√(s/bc2) + eps), bc = 1 − β^t.
// Excluded tensors (1-D: biases, batch-norm) get no weight decay in every optimizer.

struct Tensor {
    n: u32,
    excluded: u32,
    index: u32,    // slot in `trust`
    partial: u32,  // offset of this tensor's partial sums in `partials`
    groups: u32,   // workgroups of lars_norms
    _p0: u32,
    _p1: u32,
    _p2: u32,
}

struct Hyper {
    lr: f32,
    momentum: f32,
    weight_decay: f32,
    eta: f32,
    beta1: f32,
    beta2: f32,
    eps: f32,
    bc1: f32,      // 1 − β1^t
    bc2: f32,      // 1 − β2^t
    omb1: f32,     // 1 − β1 and 1 − β2, computed in f64 on the host (1 − 0.999 in f32 is off by 1e-5)
    omb2: f32,
    _p0: u32,
}

@group(0) @binding(0) var<uniform> t: Tensor;
@group(0) @binding(1) var<uniform> h: Hyper;
@group(0) @binding(2) var<storage, read_write> param: array<f32>;
@group(0) @binding(3) var<storage, read> grad: array<f32>;
@group(0) @binding(4) var<storage, read_write> state1: array<f32>;
@group(0) @binding(5) var<storage, read_write> state2: array<f32>;
@group(0) @binding(6) var<storage, read_write> partials: array<f32>;
@group(0) @binding(7) var<storage, read_write> trust: array<f32>;

const WG: u32 = 256u;

fn weight_decay() -> f32 {
    return select(h.weight_decay, 0.0, t.excluded != 0u);
}

var<workgroup> red_w: array<f32, 256>;
var<workgroup> red_g: array<f32, 256>;

// Partial sums of w² and g'² over a grid-stride slice; one pair per workgroup.
@compute @workgroup_size(256)
fn lars_norms(@builtin(local_invocation_index) l: u32, @builtin(workgroup_id) wid: vec3<u32>) {
    let wd = weight_decay();
    var sw = 0.0;
    var sg = 0.0;
    for (var i = wid.x * WG + l; i < t.n; i += t.groups * WG) {
        let w = param[i];
        let g = grad[i] + wd * w;
        sw += w * w;
        sg += g * g;
    }
    red_w[l] = sw;
    red_g[l] = sg;
    for (var s = 128u; s > 0u; s >>= 1u) {
        workgroupBarrier();
        if (l < s) {
            red_w[l] += red_w[l + s];
            red_g[l] += red_g[l + s];
        }
    }
    if (l == 0u) {
        partials[t.partial + 2u * wid.x] = red_w[0];
        partials[t.partial + 2u * wid.x + 1u] = red_g[0];
    }
}

@compute @workgroup_size(256)
fn lars_update(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let wd = weight_decay();
    var ratio = 1.0;
    if (t.excluded == 0u) {
        var sw = 0.0;
        var sg = 0.0;
        for (var k = 0u; k < t.groups; k++) {
            sw += partials[t.partial + 2u * k];
            sg += partials[t.partial + 2u * k + 1u];
        }
        if (sw > 0.0 && sg > 0.0) { ratio = h.eta * sqrt(sw) / sqrt(sg); }
    }
    let first = gid.x + gid.y * nwg.x * WG;
    if (first == 0u) { trust[t.index] = ratio; }
    let scale = h.lr * ratio;
    for (var i = first; i < t.n; i += nwg.x * nwg.y * WG) {
        let w = param[i];
        let v = h.momentum * state1[i] + scale * (grad[i] + wd * w);
        state1[i] = v;
        param[i] = w - v;
    }
}

@compute @workgroup_size(256)
fn sgd_update(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * WG;
    if (i >= t.n) { return; }
    let w = param[i];
    let v = h.momentum * state1[i] + grad[i] + weight_decay() * w;
    state1[i] = v;
    param[i] = w - h.lr * v;
}

@compute @workgroup_size(256)
fn adamw_update(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    let i = gid.x + gid.y * nwg.x * WG;
    if (i >= t.n) { return; }
    let g = grad[i];
    let m = h.beta1 * state1[i] + h.omb1 * g;
    let s = h.beta2 * state2[i] + h.omb2 * g * g;
    state1[i] = m;
    state2[i] = s;
    let w = param[i] * (1.0 - h.lr * weight_decay());
    param[i] = w - h.lr * (m / h.bc1) / (sqrt(s / h.bc2) + h.eps);
}
