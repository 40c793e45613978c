/// y = max(x, 0)
pub fn relu_forward(x: &[f32]) -> Vec<f32> {
    x.iter().map(|&v| v.max(0.0)).collect()
}

/// dx = dy where x > 0 (0 at x == 0, as torch).
pub fn relu_backward(x: &[f32], dy: &[f32]) -> Vec<f32> {
    x.iter().zip(dy).map(|(&v, &g)| if v > 0.0 { g } else { 0.0 }).collect()
}

/// y = a + b, optionally followed by ReLU.
pub fn add(a: &[f32], b: &[f32], relu: bool) -> Vec<f32> {
    a.iter()
        .zip(b)
        .map(|(&x, &y)| if relu { (x + y).max(0.0) } else { x + y })
        .collect()
}
