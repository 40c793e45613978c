use super::error::GpuError;
use super::Gpu;

/// A named GPU buffer of 4-byte elements (f32, or u32 for labels and packed bytes) with a shape.
/// Allocated once when a model or step is planned and reused every step.
#[derive(Clone, Debug)]
pub struct Tensor {
    pub buffer: wgpu::Buffer,
    pub shape: Vec<usize>,
    pub name: String,
}

impl Tensor {
    /// A zero-filled tensor. Fails with a message naming the tensor when it exceeds the
    /// device's buffer or storage-binding limit.
    pub fn zeros(gpu: &Gpu, name: &str, shape: &[usize]) -> Result<Tensor, GpuError> {
        let bytes = Self::check_size(gpu, name, shape)?;
        let buffer = gpu.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some(name),
            // wgpu rejects zero-sized bindings; an empty tensor still gets one word.
            size: bytes.max(4),
            usage: wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::COPY_SRC | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        Ok(Tensor {
            buffer,
            shape: shape.to_vec(),
            name: name.to_string(),
        })
    }

    /// A tensor holding `data` (f32).
    pub fn from_f32(gpu: &Gpu, name: &str, shape: &[usize], data: &[f32]) -> Result<Tensor, GpuError> {
        Self::from_words(gpu, name, shape, bytemuck::cast_slice(data), data.len())
    }

    /// A tensor holding `data` (u32).
    pub fn from_u32(gpu: &Gpu, name: &str, shape: &[usize], data: &[u32]) -> Result<Tensor, GpuError> {
        Self::from_words(gpu, name, shape, bytemuck::cast_slice(data), data.len())
    }

    fn from_words(gpu: &Gpu, name: &str, shape: &[usize], bytes: &[u8], len: usize) -> Result<Tensor, GpuError> {
        let n: usize = shape.iter().product();
        if n != len {
            return Err(GpuError::Device(format!(
                "tensor '{name}': shape {shape:?} holds {n} elements but {len} were given"
            )));
        }
        let t = Self::zeros(gpu, name, shape)?;
        if !bytes.is_empty() {
            gpu.queue.write_buffer(&t.buffer, 0, bytes);
        }
        Ok(t)
    }

    fn check_size(gpu: &Gpu, name: &str, shape: &[usize]) -> Result<u64, GpuError> {
        let bytes = shape.iter().product::<usize>() as u64 * 4;
        let l = &gpu.limits;
        if bytes > l.max_storage_buffer_binding_size {
            return Err(GpuError::TooLarge {
                name: name.into(),
                bytes,
                what: "max storage buffer binding size",
                limit: l.max_storage_buffer_binding_size,
            });
        }
        if bytes > l.max_buffer_size {
            return Err(GpuError::TooLarge {
                name: name.into(),
                bytes,
                what: "max buffer size",
                limit: l.max_buffer_size,
            });
        }
        Ok(bytes)
    }

    pub fn numel(&self) -> usize {
        self.shape.iter().product()
    }

    pub fn bytes(&self) -> u64 {
        self.numel() as u64 * 4
    }

    /// Overwrite the contents (queued; visible to the next submission).
    pub fn write_f32(&self, gpu: &Gpu, data: &[f32]) {
        assert_eq!(data.len(), self.numel(), "write to tensor '{}'", self.name);
        gpu.queue.write_buffer(&self.buffer, 0, bytemuck::cast_slice(data));
    }

    pub fn write_u32(&self, gpu: &Gpu, data: &[u32]) {
        assert_eq!(data.len(), self.numel(), "write to tensor '{}'", self.name);
        gpu.queue.write_buffer(&self.buffer, 0, bytemuck::cast_slice(data));
    }

    /// Copy to the host and wait. For tests, checkpoints and evaluation; the training loop
    /// reads back only small scalars, asynchronously.
    pub fn read_f32(&self, gpu: &Gpu) -> Result<Vec<f32>, GpuError> {
        Ok(bytemuck::cast_slice(&read_bytes(gpu, &self.buffer, self.bytes())?).to_vec())
    }

    pub fn read_u32(&self, gpu: &Gpu) -> Result<Vec<u32>, GpuError> {
        Ok(bytemuck::cast_slice(&read_bytes(gpu, &self.buffer, self.bytes())?).to_vec())
    }

    /// An error naming both shapes when `self` does not have `expected` shape.
    pub fn expect_shape(&self, op: &str, expected: &[usize]) -> Result<(), GpuError> {
        if self.shape == expected {
            Ok(())
        } else {
            Err(GpuError::shapes(
                op,
                (&self.name, &self.shape),
                ("the expected operand", expected),
            ))
        }
    }
}

/// Copy `bytes` bytes of `src` (which needs COPY_SRC) into host memory, blocking.
pub fn read_bytes(gpu: &Gpu, src: &wgpu::Buffer, bytes: u64) -> Result<Vec<u8>, GpuError> {
    if bytes == 0 {
        return Ok(Vec::new());
    }
    let staging = gpu.device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("readback"),
        size: bytes,
        usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
        mapped_at_creation: false,
    });
    let mut enc = gpu.device.create_command_encoder(&wgpu::CommandEncoderDescriptor {
        label: Some("readback"),
    });
    enc.copy_buffer_to_buffer(src, 0, &staging, 0, bytes);
    gpu.queue.submit([enc.finish()]);
    let (tx, rx) = std::sync::mpsc::channel();
    staging.slice(..).map_async(wgpu::MapMode::Read, move |r| {
        let _ = tx.send(r);
    });
    gpu.wait()?;
    rx.recv()
        .map_err(|e| GpuError::Device(e.to_string()))?
        .map_err(|e| GpuError::Device(format!("mapping readback buffer: {e}")))?;
    let out = staging
        .slice(..)
        .get_mapped_range()
        .map_err(|e| GpuError::Device(e.to_string()))?
        .to_vec();
    staging.unmap();
    Ok(out)
}
