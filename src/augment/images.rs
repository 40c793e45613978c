//! The images the augmentation pass reads: packed bytes on the device, or streamed per batch.

use crate::data::Dataset;
use crate::gpu::{Gpu, GpuError, Tensor};
use std::sync::Arc;

/// A dataset's images on the device as packed RGB bytes (4 per u32 word, each image starting on a
/// word), uploaded once. When they exceed the device's binding limit they stay on the host and
/// each batch's images are streamed into a fixed staging tensor by `Augmenter::prepare`.
pub struct GpuImages {
    pub count: usize,
    pub height: usize,
    pub width: usize,
    /// The dataset's channel statistics, used to normalise the views.
    pub mean: [f32; 3],
    pub std: [f32; 3],
    /// u32 words per image.
    pub(crate) stride: usize,
    /// The images are f32 HWC values instead of bytes (reference checks on float inputs).
    pub(crate) src_float: bool,
    pub(crate) store: Store,
}

pub(crate) enum Store {
    Resident(Tensor),
    Streamed(Arc<Vec<u32>>),
}

/// Pack RGB bytes into little-endian u32 words, `stride` words per image.
fn pack(ds: &Dataset, stride: usize) -> Vec<u32> {
    let mut words = vec![0u32; ds.len() * stride];
    for (i, w) in words.chunks_exact_mut(stride).enumerate() {
        for (k, b) in ds.image(i).chunks(4).enumerate() {
            let mut q = [0u8; 4];
            q[..b.len()].copy_from_slice(b);
            w[k] = u32::from_le_bytes(q);
        }
    }
    words
}

impl GpuImages {
    /// Upload `ds`: resident when it fits in one storage binding, streamed otherwise.
    pub fn upload(gpu: &Gpu, ds: &Dataset) -> Result<GpuImages, GpuError> {
        let stride = ds.image_bytes().div_ceil(4);
        let bytes = (ds.len() * stride * 4) as u64;
        let limit = gpu
            .limits
            .max_storage_buffer_binding_size
            .min(gpu.limits.max_buffer_size);
        Self::build(gpu, ds, stride, bytes <= limit)
    }

    /// Keep the images on the host and stream each batch (saves device memory; tests use it to
    /// check that both paths agree).
    pub fn upload_streamed(gpu: &Gpu, ds: &Dataset) -> Result<GpuImages, GpuError> {
        let stride = ds.image_bytes().div_ceil(4);
        Self::build(gpu, ds, stride, false)
    }

    /// Float images (`count`×H×W×3 values in [0, 1], HWC) instead of bytes, resident. For checking
    /// the pass against reference values computed on float inputs.
    pub fn from_f32(gpu: &Gpu, hwc: &[f32], count: usize, height: usize, width: usize) -> Result<GpuImages, GpuError> {
        let stride = height * width * 3;
        if hwc.len() != count * stride {
            return Err(GpuError::shapes(
                "GpuImages::from_f32",
                ("the data", &[hwc.len()]),
                ("count×H×W×3", &[count, height, width, 3]),
            ));
        }
        let t = Tensor::from_f32(gpu, "images.f32", &[hwc.len()], hwc)?;
        Ok(GpuImages {
            count,
            height,
            width,
            mean: [0.0; 3],
            std: [1.0; 3],
            stride,
            src_float: true,
            store: Store::Resident(t),
        })
    }

    fn build(gpu: &Gpu, ds: &Dataset, stride: usize, resident: bool) -> Result<GpuImages, GpuError> {
        if ds.is_empty() {
            return Err(GpuError::Device(format!(
                "dataset '{}' has no images to upload",
                ds.name
            )));
        }
        let words = pack(ds, stride);
        let store = if resident {
            let t = Tensor::zeros(gpu, "images", &[words.len()])?;
            // In 16 MiB slices, each flushed by an empty submit, so that wgpu's staging copies
            // of a large dataset are not all alive at once.
            const CHUNK: usize = 4 << 20;
            for (k, c) in words.chunks(CHUNK).enumerate() {
                gpu.queue
                    .write_buffer(&t.buffer, (k * CHUNK * 4) as u64, bytemuck::cast_slice(c));
                gpu.queue.submit(std::iter::empty());
            }
            Store::Resident(t)
        } else {
            Store::Streamed(Arc::new(words))
        };
        Ok(GpuImages {
            count: ds.len(),
            height: ds.height,
            width: ds.width,
            mean: ds.mean,
            std: ds.std,
            stride,
            src_float: false,
            store,
        })
    }

    /// True when the images live on the device (false: streamed per batch).
    pub fn is_resident(&self) -> bool {
        matches!(self.store, Store::Resident(_))
    }
}
