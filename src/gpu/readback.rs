//! Reading small results (the loss, an accuracy) back without stalling the GPU: each step's
//! values are copied into a mappable slot and collected one step later, while the next step
//! already runs.

use super::{Gpu, GpuError, Program};
use std::collections::VecDeque;
use std::sync::mpsc::{channel, Receiver};

type MapResult = Result<(), wgpu::BufferAsyncError>;

struct InFlight {
    slot: usize,
    index: wgpu::SubmissionIndex,
    rx: Receiver<MapResult>,
    tag: u64,
}

pub struct LaggedReadback {
    slots: Vec<wgpu::Buffer>,
    free: Vec<usize>,
    inflight: VecDeque<InFlight>,
    bytes: u64,
}

impl LaggedReadback {
    /// `bytes` per submission; `depth` submissions may be in flight at once.
    pub fn new(gpu: &Gpu, bytes: u64, depth: usize) -> Self {
        let slots: Vec<wgpu::Buffer> = (0..depth.max(1))
            .map(|i| {
                gpu.device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some(&format!("readback{i}")),
                    size: bytes,
                    usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                })
            })
            .collect();
        let free = (0..slots.len()).rev().collect();
        LaggedReadback {
            slots,
            free,
            inflight: VecDeque::new(),
            bytes,
        }
    }

    /// Submit `program` followed by a copy of the first `bytes` of `src` into a free slot.
    /// When all slots are in flight, the oldest is collected first (returned).
    pub fn submit(
        &mut self,
        gpu: &Gpu,
        program: &Program,
        src: &wgpu::Buffer,
        tag: u64,
    ) -> Result<Vec<(u64, Vec<u8>)>, GpuError> {
        let mut done = Vec::new();
        if self.free.is_empty() {
            done = self.collect(gpu, self.inflight.len() - 1)?;
        }
        let slot = self.free.pop().expect("a free slot after collecting");
        let mut enc = gpu
            .device
            .create_command_encoder(&wgpu::CommandEncoderDescriptor { label: Some("step") });
        program.record(&mut enc);
        enc.copy_buffer_to_buffer(src, 0, &self.slots[slot], 0, self.bytes);
        let index = gpu.queue.submit([enc.finish()]);
        let (tx, rx) = channel();
        self.slots[slot].slice(..).map_async(wgpu::MapMode::Read, move |r| {
            let _ = tx.send(r);
        });
        self.inflight.push_back(InFlight { slot, index, rx, tag });
        Ok(done)
    }

    /// Wait for and return the results of all but the newest `keep` submissions, oldest first.
    pub fn collect(&mut self, gpu: &Gpu, keep: usize) -> Result<Vec<(u64, Vec<u8>)>, GpuError> {
        let mut out = Vec::new();
        while self.inflight.len() > keep {
            let f = self.inflight.pop_front().unwrap();
            gpu.device
                .poll(wgpu::PollType::Wait {
                    submission_index: Some(f.index),
                    timeout: None,
                })
                .map_err(|e| GpuError::Device(e.to_string()))?;
            f.rx.recv()
                .map_err(|e| GpuError::Device(e.to_string()))?
                .map_err(|e| GpuError::Device(format!("reading back results: {e}")))?;
            let buf = &self.slots[f.slot];
            let bytes = buf
                .slice(..)
                .get_mapped_range()
                .map_err(|e| GpuError::Device(e.to_string()))?
                .to_vec();
            buf.unmap();
            self.free.push(f.slot);
            out.push((f.tag, bytes));
        }
        Ok(out)
    }
}
