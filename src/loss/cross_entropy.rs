//! Host side of `shaders/cross_entropy.wgsl`: softmax cross-entropy (mean over the batch) with
//! its gradient, predictions and accuracy; the linear probe's loss.

use crate::gpu::{grid_1d, Gpu, GpuError, Program, Tensor, Uniform};

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    b: u32,
    k: u32,
    inv_b: f32,
    _pad: u32,
}

/// Cross-entropy of `logits` [B, K] against `labels` [B] (u32 class ids < K).
pub struct CrossEntropy {
    /// [1] mean loss.
    pub loss: Tensor,
    /// [B] loss of each sample.
    pub per_sample: Tensor,
    /// [B] u32 arg-max class (first on ties).
    pub pred: Tensor,
    /// [1] fraction of samples with pred == label.
    pub accuracy: Tensor,
    program: Program,
}

impl CrossEntropy {
    /// Plan the loss; the program writes `loss`, `per_sample`, `pred`, `accuracy` and
    /// dlogits = (softmax − onehot)/B (overwritten, same shape as `logits`).
    pub fn new(gpu: &Gpu, logits: &Tensor, labels: &Tensor, dlogits: &Tensor) -> Result<Self, GpuError> {
        const OP: &str = "cross-entropy";
        if logits.shape.len() != 2 || logits.shape[0] == 0 || logits.shape[1] == 0 {
            return Err(GpuError::shapes(
                OP,
                (&logits.name, &logits.shape),
                ("[batch, classes]", &[]),
            ));
        }
        let (b, k) = (logits.shape[0], logits.shape[1]);
        if labels.shape != [b] {
            return Err(GpuError::shapes(
                OP,
                (&logits.name, &logits.shape),
                (&labels.name, &labels.shape),
            ));
        }
        if dlogits.shape != logits.shape {
            return Err(GpuError::shapes(
                OP,
                (&logits.name, &logits.shape),
                (&dlogits.name, &dlogits.shape),
            ));
        }
        let u = Uniform::new(
            gpu,
            "cross_entropy.params",
            &Params {
                b: b as u32,
                k: k as u32,
                inv_b: 1.0 / b as f32,
                _pad: 0,
            },
        );
        let per_sample = Tensor::zeros(gpu, "cross_entropy.per_sample", &[b])?;
        let pred = Tensor::zeros(gpu, "cross_entropy.pred", &[b])?;
        let correct = Tensor::zeros(gpu, "cross_entropy.correct", &[b])?;
        let loss = Tensor::zeros(gpu, "cross_entropy.loss", &[1])?;
        let accuracy = Tensor::zeros(gpu, "cross_entropy.accuracy", &[1])?;
        let bufs = [
            &u.buffer,
            &logits.buffer,
            &labels.buffer,
            &dlogits.buffer,
            &per_sample.buffer,
            &pred.buffer,
            &correct.buffer,
            &loss.buffer,
            &accuracy.buffer,
        ];
        let mut program = Program::new();
        program.push(gpu.launch("cross_entropy", "rows", &bufs, grid_1d((b as u32).div_ceil(64)))?);
        program.push(gpu.launch("cross_entropy", "finalize", &bufs, [1, 1, 1])?);
        Ok(CrossEntropy {
            loss,
            per_sample,
            pred,
            accuracy,
            program,
        })
    }

    pub fn program(&self) -> &Program {
        &self.program
    }
}
