//! Matrix products and the linear layer (weight (out, in), `y = x Wᵀ + b`), accumulated in f64.
//! The `_f64` versions serve finite-difference checks.

/// op(A)[i, k]: `a` is [m,k] row-major, or [k,m] when `trans`.
fn at(a: &[f64], trans: bool, rows: usize, cols: usize, i: usize, j: usize) -> f64 {
    if trans {
        a[j * rows + i]
    } else {
        a[i * cols + j]
    }
}

/// C[m,n] = op(A)[m,k] · op(B)[k,n]; `a` is stored [m,k] (or [k,m] with `trans_a`), `b` [k,n]
/// (or [n,k] with `trans_b`).
pub fn matmul_f64(a: &[f64], b: &[f64], m: usize, k: usize, n: usize, trans_a: bool, trans_b: bool) -> Vec<f64> {
    assert_eq!(a.len(), m * k, "matmul: A has {} elements, want {m}×{k}", a.len());
    assert_eq!(b.len(), k * n, "matmul: B has {} elements, want {k}×{n}", b.len());
    let mut c = vec![0.0; m * n];
    for i in 0..m {
        for j in 0..n {
            c[i * n + j] = (0..k)
                .map(|p| at(a, trans_a, m, k, i, p) * at(b, trans_b, k, n, p, j))
                .sum();
        }
    }
    c
}

/// f32 in and out, f64 inside.
pub fn matmul(a: &[f32], b: &[f32], m: usize, k: usize, n: usize, trans_a: bool, trans_b: bool) -> Vec<f32> {
    to32(&matmul_f64(&to64(a), &to64(b), m, k, n, trans_a, trans_b))
}

/// y[m,n] = x[m,k] · w[n,k]ᵀ + b[n], then ReLU if `relu`.
pub fn linear_forward_f64(
    x: &[f64],
    w: &[f64],
    b: Option<&[f64]>,
    m: usize,
    k: usize,
    n: usize,
    relu: bool,
) -> Vec<f64> {
    let mut y = matmul_f64(x, w, m, k, n, false, true);
    for (idx, v) in y.iter_mut().enumerate() {
        if let Some(b) = b {
            *v += b[idx % n];
        }
        if relu {
            *v = v.max(0.0);
        }
    }
    y
}

pub fn linear_forward(x: &[f32], w: &[f32], b: Option<&[f32]>, m: usize, k: usize, n: usize, relu: bool) -> Vec<f32> {
    let b = b.map(to64);
    to32(&linear_forward_f64(&to64(x), &to64(w), b.as_deref(), m, k, n, relu))
}

/// Gradients of sum(y ⊙ dy) for y = x wᵀ + b (no ReLU).
#[derive(Clone, Debug)]
pub struct LinearGrads<T> {
    /// [m,k] = dy · w
    pub dx: Vec<T>,
    /// [n,k] = dyᵀ · x
    pub dw: Vec<T>,
    /// [n] = column sums of dy
    pub db: Vec<T>,
}

pub fn linear_backward_f64(x: &[f64], w: &[f64], dy: &[f64], m: usize, k: usize, n: usize) -> LinearGrads<f64> {
    let dx = matmul_f64(dy, w, m, n, k, false, false);
    let dw = matmul_f64(dy, x, n, m, k, true, false);
    let db = (0..n).map(|j| (0..m).map(|i| dy[i * n + j]).sum()).collect();
    LinearGrads { dx, dw, db }
}

pub fn linear_backward(x: &[f32], w: &[f32], dy: &[f32], m: usize, k: usize, n: usize) -> LinearGrads<f32> {
    let g = linear_backward_f64(&to64(x), &to64(w), &to64(dy), m, k, n);
    LinearGrads {
        dx: to32(&g.dx),
        dw: to32(&g.dw),
        db: to32(&g.db),
    }
}

fn to64(v: &[f32]) -> Vec<f64> {
    v.iter().map(|&x| x as f64).collect()
}

fn to32(v: &[f64]) -> Vec<f32> {
    v.iter().map(|&x| x as f32).collect()
}
