//! Max-pool 3×3 stride 2 padding 1 (with argmax) and global average pooling, as PyTorch computes
//! them. Shapes are [N,C,H,W]; the max-pool is generic over f32/f64 for the finite-difference tests.

/// Output size of the 3×3, stride-2, padding-1 max-pool: floor((H + 2 − 3) / 2) + 1.
pub fn maxpool_out_hw(h: usize, w: usize) -> (usize, usize) {
    // = (H − 1) / 2 + 1 for H ≥ 1, and 0 for H = 0.
    (h.div_ceil(2), w.div_ceil(2))
}

/// (y, argmax) with argmax = h·W + w in the input plane. Padding acts as −inf; the window is
/// scanned row-major and the first maximum wins (strict >).
pub fn maxpool_forward<T: Copy + PartialOrd>(x: &[T], shape: &[usize]) -> (Vec<T>, Vec<u32>) {
    let [n, c, h, w] = shape[..] else {
        panic!("max-pool expects [N,C,H,W], got {shape:?}")
    };
    let (ho, wo) = maxpool_out_hw(h, w);
    let mut y = Vec::with_capacity(n * c * ho * wo);
    let mut arg = Vec::with_capacity(n * c * ho * wo);
    for plane in 0..n * c {
        let xp = &x[plane * h * w..(plane + 1) * h * w];
        for oh in 0..ho {
            for ow in 0..wo {
                let mut best: Option<(T, usize)> = None;
                for hh in (2 * oh).saturating_sub(1)..(2 * oh + 2).min(h) {
                    for ww in (2 * ow).saturating_sub(1)..(2 * ow + 2).min(w) {
                        let v = xp[hh * w + ww];
                        if best.is_none_or(|(b, _)| v > b) {
                            best = Some((v, hh * w + ww));
                        }
                    }
                }
                let (v, i) = best.expect("every window holds at least one input");
                y.push(v);
                arg.push(i as u32);
            }
        }
    }
    (y, arg)
}

/// dx [N,C,H,W] = dy scattered to the argmax of each window, overlapping windows accumulating.
pub fn maxpool_backward(dy: &[f32], argmax: &[u32], x_shape: &[usize]) -> Vec<f32> {
    let [n, c, h, w] = x_shape[..] else {
        panic!("max-pool expects [N,C,H,W], got {x_shape:?}")
    };
    let (ho, wo) = maxpool_out_hw(h, w);
    let mut dx = vec![0.0f64; n * c * h * w];
    for plane in 0..n * c {
        for o in 0..ho * wo {
            let k = plane * ho * wo + o;
            dx[plane * h * w + argmax[k] as usize] += dy[k] as f64;
        }
    }
    dx.iter().map(|&v| v as f32).collect()
}

/// y [N,C] = mean over each H×W plane.
pub fn global_avgpool_forward_f64(x: &[f64], shape: &[usize]) -> Vec<f64> {
    let [n, c, h, w] = shape[..] else {
        panic!("global average pool expects [N,C,H,W], got {shape:?}")
    };
    (0..n * c)
        .map(|r| x[r * h * w..(r + 1) * h * w].iter().sum::<f64>() / (h * w) as f64)
        .collect()
}

/// f32 wrapper of `global_avgpool_forward_f64`.
pub fn global_avgpool_forward(x: &[f32], shape: &[usize]) -> Vec<f32> {
    let x: Vec<f64> = x.iter().map(|&v| v as f64).collect();
    global_avgpool_forward_f64(&x, shape)
        .iter()
        .map(|&v| v as f32)
        .collect()
}

/// dx [N,C,H,W] = dy[n,c] / (H·W).
pub fn global_avgpool_backward(dy: &[f32], x_shape: &[usize]) -> Vec<f32> {
    let [n, c, h, w] = x_shape[..] else {
        panic!("global average pool expects [N,C,H,W], got {x_shape:?}")
    };
    (0..n * c * h * w)
        .map(|e| (dy[e / (h * w)] as f64 / (h * w) as f64) as f32)
        .collect()
}
