//! Host side of `shaders/ntxent.wgsl`: NT-Xent and its V-view generalisation, forward and
//! backward, planned once for given tensors and replayed every step.

use crate::gpu::{grid_1d, Gpu, GpuError, KernelFlavor, Program, Tensor, Uniform};

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct Params {
    m: u32,
    n: u32,
    d: u32,
    mp: u32,
    a: f32,
    inv_m: f32,
    inv_pos: f32,
    mj: u32,
}

/// The kernel streams rows in tiles of 16.
const TILE: usize = 16;
const WG: u32 = 64;
/// Anchors per invocation of forward/backward (`R` in the shader).
const ANCHORS_PER_LANE: usize = 8;

/// Invocations per workgroup of forward/backward, the only difference between the flavours:
/// the kernel uses no workgroup memory on either (the streamed rows are loaded uniformly by the
/// whole workgroup, which a GPU's cache broadcasts). CPU drivers run a workgroup on one core, so
/// smaller groups spread a small batch over more cores; GPUs want whole warps.
fn lanes(flavor: KernelFlavor) -> usize {
    match flavor {
        KernelFlavor::Rows => 16,
        KernelFlavor::Tiled => 64,
    }
}

/// NT-Xent over z = [V·N, d] (row v·N + i is view v of image i): the mean over all V·N anchors
/// of −mean_{p∈P(i)} s_ip/τ + log Σ_{j≠i} exp(s_ij/τ), with s the cosine similarities.
/// The V·N × V·N matrix is never stored (streamed with an online logsumexp), so large batches
/// fit small storage-binding limits.
pub struct NtXent {
    /// [1] mean loss.
    pub loss: Tensor,
    /// [V·N] loss of each anchor.
    pub per_anchor: Tensor,
    /// [1] fraction of anchors whose most similar other row (first on ties) is a positive.
    pub accuracy: Tensor,
    pub views: usize,
    pub images: usize,
    pub dim: usize,
    pub tau: f32,
    forward: Program,
    program: Program,
}

impl NtXent {
    /// Plan the loss for embeddings `z` [V·N, d]; the backward pass writes dloss/dz into `dz`
    /// (overwritten, same shape). All buffers and dispatches are created here.
    pub fn new(gpu: &Gpu, z: &Tensor, dz: &Tensor, views: usize, tau: f32) -> Result<Self, GpuError> {
        Self::with_flavor(gpu, gpu.flavor, z, dz, views, tau)
    }

    /// `new` with an explicit kernel flavour (tests run both).
    pub fn with_flavor(
        gpu: &Gpu,
        flavor: KernelFlavor,
        z: &Tensor,
        dz: &Tensor,
        views: usize,
        tau: f32,
    ) -> Result<Self, GpuError> {
        const OP: &str = "NT-Xent";
        if z.shape.len() != 2 || z.shape[0] == 0 || z.shape[1] == 0 {
            return Err(GpuError::shapes(OP, (&z.name, &z.shape), ("[views·N, d]", &[])));
        }
        if dz.shape != z.shape {
            return Err(GpuError::shapes(OP, (&z.name, &z.shape), (&dz.name, &dz.shape)));
        }
        let (m, d) = (z.shape[0], z.shape[1]);
        if views < 2 {
            return Err(GpuError::invalid(
                OP,
                format!("needs at least 2 views per image, got {views}"),
            ));
        }
        if m % views != 0 {
            return Err(GpuError::invalid(
                OP,
                format!("{} has {m} rows, not a multiple of {views} views", z.name),
            ));
        }
        if !(tau > 0.0 && tau.is_finite() && (1.0 / tau).is_finite()) {
            return Err(GpuError::invalid(
                OP,
                format!("temperature must be positive and finite, got {tau}"),
            ));
        }
        if m > u32::MAX as usize / 2 || m * d > u32::MAX as usize / 2 {
            return Err(GpuError::invalid(
                OP,
                format!("{m}×{d} embeddings are too many for 32-bit indices"),
            ));
        }
        // Anchors are padded to whole workgroups so padding invocations need no special case.
        let per_group = ANCHORS_PER_LANE * lanes(flavor);
        let mp = m.div_ceil(per_group) * per_group;
        let u = Uniform::new(
            gpu,
            "ntxent.params",
            &Params {
                m: m as u32,
                n: (m / views) as u32,
                d: d as u32,
                mp: mp as u32,
                a: 1.0 / tau,
                inv_m: 1.0 / m as f32,
                inv_pos: 1.0 / (views - 1) as f32,
                mj: m.div_ceil(TILE) as u32 * TILE as u32,
            },
        );
        let zn = Tensor::zeros(gpu, "ntxent.normalized", &[mp, d])?;
        let norm = Tensor::zeros(gpu, "ntxent.norm", &[mp])?;
        let lse = Tensor::zeros(gpu, "ntxent.logsumexp", &[mp])?;
        let hit = Tensor::zeros(gpu, "ntxent.hit", &[m])?;
        let gt = Tensor::zeros(gpu, "ntxent.grad_normalized", &[mp, d])?;
        let loss = Tensor::zeros(gpu, "ntxent.loss", &[1])?;
        let per_anchor = Tensor::zeros(gpu, "ntxent.per_anchor", &[m])?;
        let accuracy = Tensor::zeros(gpu, "ntxent.accuracy", &[1])?;
        // Binding order of shaders/ntxent.wgsl; zn and lse are bound twice (scalar and vec4 views).
        let b = [
            &u.buffer,
            &z.buffer,
            &zn.buffer,
            &zn.buffer,
            &zn.buffer,
            &norm.buffer,
            &lse.buffer,
            &lse.buffer,
            &per_anchor.buffer,
            &hit.buffer,
            &gt.buffer,
            &dz.buffer,
            &loss.buffer,
            &accuracy.buffer,
        ];
        let normalize = gpu.launch("ntxent", "normalize", &b, grid_1d((mp as u32).div_ceil(WG)))?;
        let finalize = gpu.launch("ntxent", "finalize", &b, [1, 1, 1])?;
        let lanes = [("LANES", lanes(flavor) as f64)];
        let anchor_grid = grid_1d((mp / per_group) as u32);
        let fwd = gpu.dispatch(&gpu.kernel_with("ntxent", "forward", &lanes)?, &b, anchor_grid)?;
        let bwd = gpu.dispatch(&gpu.kernel_with("ntxent", "backward", &lanes)?, &b, anchor_grid)?;
        let mut forward = Program::new();
        forward.push(normalize);
        forward.push(fwd);
        forward.push(finalize);
        let mut program = forward.clone();
        program.push(bwd);
        Ok(NtXent {
            loss,
            per_anchor,
            accuracy,
            views,
            images: m / views,
            dim: d,
            tau,
            forward,
            program,
        })
    }

    /// Forward and backward: writes `loss`, `per_anchor`, `accuracy` and dz.
    pub fn program(&self) -> &Program {
        &self.program
    }

    /// Forward only (loss, per-anchor loss, accuracy), e.g. for a validation loss.
    pub fn forward_program(&self) -> &Program {
        &self.forward
    }
}
