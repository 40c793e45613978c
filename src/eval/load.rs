//! Loading a trained model from a checkpoint (run directory, sidecar or safetensors path).

use crate::gpu::Gpu;
use crate::nn::model::Model;
use crate::train::checkpoint::{self, Sidecar};
use anyhow::Result;
use std::path::Path;

/// Build the checkpoint's model for `batch` rows and load its weights and BN statistics.
/// Names and shapes are checked first: a checkpoint of another architecture is an error
/// listing the mismatches.
pub fn load_model(gpu: &Gpu, path: &Path, batch: usize) -> Result<(Model, Sidecar)> {
    let side_path = checkpoint::resolve(path)?;
    let side = checkpoint::read_sidecar(&side_path)?;
    let tensors = checkpoint::load_safetensors(&side_path.with_file_name(&side.tensors))?;
    let model = Model::new(gpu, &side.config.model(), batch, 0)?;
    let named = model.named_tensors();
    let spec: Vec<(String, Vec<usize>)> = named.iter().map(|(n, t)| (n.clone(), t.shape.clone())).collect();
    checkpoint::check_compatible(&tensors, &spec, &format!("checkpoint {}", side_path.display()))?;
    for (name, t) in &named {
        t.write_f32(gpu, &tensors[name].data);
    }
    gpu.wait()?;
    Ok((model, side))
}
