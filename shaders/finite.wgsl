// Counts the non-finite (NaN or ±Inf) values of a tensor into out[index]. The test looks at the exponent bits,
// which a compiler that assumes "no NaNs" (fast-math) cannot fold away, unlike x != x.

struct Params {
    n: u32,
    index: u32,  // which element of `out` receives the count
    _p1: u32,
    _p2: u32,
}

@group(0) @binding(0) var<uniform> p: Params;
@group(0) @binding(1) var<storage, read> x: array<f32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

var<workgroup> partial: array<u32, 256>;

// One workgroup: each invocation strides over the tensor, then a tree sum.
@compute @workgroup_size(256)
fn count_nonfinite(@builtin(local_invocation_index) lid: u32) {
    var c = 0u;
    for (var i = lid; i < p.n; i += 256u) {
        c += select(0u, 1u, (bitcast<u32>(x[i]) & 0x7f800000u) == 0x7f800000u);
    }
    partial[lid] = c;
    workgroupBarrier();
    for (var s = 128u; s > 0u; s >>= 1u) {
        if (lid < s) {
            partial[lid] += partial[lid + s];
        }
        workgroupBarrier();
    }
    if (lid == 0u) {
        out[p.index] = f32(partial[0]);
    }
}
