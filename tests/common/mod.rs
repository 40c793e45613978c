//! Shared test helpers: one GPU per test binary, reference JSON loading, tolerant comparison,
//! a seeded RNG for random shapes and data.
#![allow(dead_code)]

use serde_json::Value;
use simclr_wgpu::gpu::Gpu;
use std::path::PathBuf;
use std::sync::OnceLock;

/// The test GPU (lavapipe in CI). Opened once per test binary.
pub fn gpu() -> &'static Gpu {
    static GPU: OnceLock<Gpu> = OnceLock::new();
    GPU.get_or_init(|| Gpu::open_default().unwrap_or_else(|e| panic!("tests need a GPU adapter: {e}")))
}

/// `../shared/reference/<file>` (or `$SIMCLR_REFERENCE/<file>`), or None with a message.
pub fn reference(file: &str) -> Option<Value> {
    let dir = std::env::var("SIMCLR_REFERENCE")
        .map(PathBuf::from)
        .unwrap_or_else(|_| shared_dir().join("reference"));
    let path = dir.join(file);
    match std::fs::read_to_string(&path) {
        Ok(s) => Some(serde_json::from_str(&s).unwrap_or_else(|e| panic!("{}: {e}", path.display()))),
        Err(_) => {
            eprintln!(
                "SKIPPED: reference file {} not found (set SIMCLR_REFERENCE)",
                path.display()
            );
            None
        }
    }
}

/// `shared/` beside the project root (or beside one of its parent folders, for worktrees).
pub fn shared_dir() -> PathBuf {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    root.ancestors()
        .skip(1)
        .map(|p| p.join("shared"))
        .find(|p| p.is_dir())
        .unwrap_or_else(|| root.join("../shared"))
}

/// (shape, data) of a `{"shape": [..], "data": [..]}` tensor, or of a plain number list.
pub fn tensor(v: &Value) -> (Vec<usize>, Vec<f32>) {
    if let Some(arr) = v.as_array() {
        let data: Vec<f32> = arr.iter().map(|x| x.as_f64().unwrap() as f32).collect();
        return (vec![data.len()], data);
    }
    let shape = v["shape"]
        .as_array()
        .expect("tensor has shape")
        .iter()
        .map(|x| x.as_u64().unwrap() as usize)
        .collect();
    let data = v["data"]
        .as_array()
        .expect("tensor has data")
        .iter()
        .map(|x| x.as_f64().unwrap() as f32)
        .collect();
    (shape, data)
}

pub fn data(v: &Value) -> Vec<f32> {
    tensor(v).1
}

/// Assert |got - want| <= abs + rel * |want| element-wise, naming the first offender.
#[track_caller]
pub fn assert_close(what: &str, got: &[f32], want: &[f32], rel: f32, abs: f32) {
    assert_eq!(got.len(), want.len(), "{what}: length {} vs {}", got.len(), want.len());
    let mut worst = (0usize, 0f32);
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let err = (g - w).abs();
        let tol = abs + rel * w.abs();
        if !(err <= tol) {
            panic!("{what}: element {i}: got {g}, want {w} (|diff| {err} > tol {tol})");
        }
        if err > worst.1 {
            worst = (i, err);
        }
    }
}

/// A small seeded generator (tests only) so random shapes are reproducible.
pub struct Rng(u64);
impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407))
    }
    pub fn next_u32(&mut self) -> u32 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) as u32
    }
    /// Uniform in [-1, 1).
    pub fn uniform(&mut self) -> f32 {
        // next_u32 yields 31 random bits.
        (self.next_u32() as f32 / (1u64 << 30) as f32) - 1.0
    }
    pub fn vec(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.uniform()).collect()
    }
    /// Integer in [lo, hi].
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next_u32() as usize) % (hi - lo + 1)
    }
}
