//! Fully connected layer in PyTorch layout: weight (out, in), `y = x Wᵀ + b`.
//! Built on `nn::matmul`; ReLU backward is the caller's (`nn::elementwise::relu_backward`).

use super::matmul::{col_sum, gemm, Gemm};
use crate::gpu::{Gpu, GpuError, KernelFlavor, Program, Tensor};

/// (M, K, N) of x [M,K] and weight [N,K], with errors naming both shapes.
fn dims(op: &str, x: &Tensor, w: &Tensor) -> Result<(usize, usize, usize), GpuError> {
    if x.shape.len() != 2 || w.shape.len() != 2 || x.shape[1] != w.shape[1] {
        return Err(GpuError::shapes(op, (&x.name, &x.shape), (&w.name, &w.shape)));
    }
    Ok((x.shape[0], x.shape[1], w.shape[0]))
}

fn expect(op: &str, t: &Tensor, want: &[usize], other: &Tensor) -> Result<(), GpuError> {
    if t.shape != want {
        return Err(GpuError::shapes(op, (&t.name, &t.shape), (&other.name, &other.shape)));
    }
    Ok(())
}

/// y[M,N] = x[M,K] · w[N,K]ᵀ (+ b[N]) (then ReLU), with the kernels chosen for this adapter.
pub fn linear_forward(
    gpu: &Gpu,
    x: &Tensor,
    w: &Tensor,
    b: Option<&Tensor>,
    y: &Tensor,
    relu: bool,
) -> Result<Program, GpuError> {
    linear_forward_with(gpu, gpu.flavor, x, w, b, y, relu)
}

/// `linear_forward` with an explicit kernel flavour.
pub fn linear_forward_with(
    gpu: &Gpu,
    flavor: KernelFlavor,
    x: &Tensor,
    w: &Tensor,
    b: Option<&Tensor>,
    y: &Tensor,
    relu: bool,
) -> Result<Program, GpuError> {
    let op = "linear forward";
    let (m, _, n) = dims(op, x, w)?;
    expect(op, y, &[m, n], x)?;
    if let Some(b) = b {
        expect(op, b, &[n], w)?;
    }
    let g = Gemm {
        trans_b: true,
        bias: b,
        relu,
        ..Gemm::new(x, w, y)
    };
    gemm(gpu, flavor, &g)
}

/// Gradients of a linear layer for upstream gradient `dy` [M,N]; every output is overwritten:
/// dx = dy·w (skipped when `dx` is None, e.g. for the first layer), dw = dyᵀ·x, db = Σ_rows dy.
pub fn linear_backward(
    gpu: &Gpu,
    x: &Tensor,
    w: &Tensor,
    dy: &Tensor,
    dx: Option<&Tensor>,
    dw: &Tensor,
    db: Option<&Tensor>,
) -> Result<Program, GpuError> {
    linear_backward_with(gpu, gpu.flavor, x, w, dy, dx, dw, db)
}

/// `linear_backward` with an explicit kernel flavour.
#[allow(clippy::too_many_arguments)]
pub fn linear_backward_with(
    gpu: &Gpu,
    flavor: KernelFlavor,
    x: &Tensor,
    w: &Tensor,
    dy: &Tensor,
    dx: Option<&Tensor>,
    dw: &Tensor,
    db: Option<&Tensor>,
) -> Result<Program, GpuError> {
    let op = "linear backward";
    let (m, k, n) = dims(op, x, w)?;
    expect(op, dy, &[m, n], x)?;
    expect(op, dw, &[n, k], w)?;
    let mut prog = Program::new();
    if let Some(dx) = dx {
        expect(op, dx, &[m, k], x)?;
        prog.extend(&gemm(gpu, flavor, &Gemm::new(dy, w, dx))?);
    }
    let g = Gemm {
        trans_a: true,
        ..Gemm::new(dy, x, dw)
    };
    prog.extend(&gemm(gpu, flavor, &g)?);
    if let Some(db) = db {
        expect(op, db, &[n], dy)?;
        prog.extend(&col_sum(gpu, dy, db)?);
    }
    Ok(prog)
}
