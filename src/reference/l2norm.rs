//! Row-wise L2 normalisation as torch's `F.normalize(x, dim=1)`: y = x / max(‖x‖, 1e-12).
//! f64 cores (for the finite-difference tests) behind f32 wrappers.

/// torch's default `eps` of `F.normalize`.
pub const FLOOR: f64 = 1e-12;

/// y = x / max(‖x‖, 1e-12) for each row of x [M, D] (row-major, `d` columns).
pub fn forward_f64(x: &[f64], d: usize) -> Vec<f64> {
    x.chunks(d)
        .flat_map(|row| {
            let denom = row.iter().map(|v| v * v).sum::<f64>().sqrt().max(FLOOR);
            row.iter().map(move |v| v / denom)
        })
        .collect()
}

/// dx = (dy − y·(y·dy)) / ‖x‖ when ‖x‖ > 1e-12; below the floor the denominator is the constant
/// 1e-12, so dx = dy / 1e-12.
pub fn backward_f64(x: &[f64], y: &[f64], dy: &[f64], d: usize) -> Vec<f64> {
    let mut dx = Vec::with_capacity(x.len());
    for ((xr, yr), gr) in x.chunks(d).zip(y.chunks(d)).zip(dy.chunks(d)) {
        let norm = xr.iter().map(|v| v * v).sum::<f64>().sqrt();
        if norm > FLOOR {
            let dot: f64 = yr.iter().zip(gr).map(|(a, b)| a * b).sum();
            dx.extend(yr.iter().zip(gr).map(|(yv, g)| (g - yv * dot) / norm));
        } else {
            dx.extend(gr.iter().map(|g| g / FLOOR));
        }
    }
    dx
}

fn f64s(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

fn f32s(v: &[f64]) -> Vec<f32> {
    v.iter().map(|&x| x as f32).collect()
}

/// f32 wrapper of `forward_f64`.
pub fn forward(x: &[f32], d: usize) -> Vec<f32> {
    f32s(&forward_f64(&f64s(x), d))
}

/// f32 wrapper of `backward_f64`.
pub fn backward(x: &[f32], y: &[f32], dy: &[f32], d: usize) -> Vec<f32> {
    f32s(&backward_f64(&f64s(x), &f64s(y), &f64s(dy), d))
}
