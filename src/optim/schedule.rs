//! Per-step learning rate: SimCLR's linear warmup from 0 then cosine decay to 0, and the
//! batch-size scaling rules for the base learning rate.

/// Learning rate for the 0-based optimizer step `step` (the rate used by update step + 1):
/// `base·step/W` during warmup (0 at step 0), then `base·½(1 + cos(π·min(step − W, T − W)/(T − W)))`,
/// which reaches 0 at `total_steps` and stays there. This is google-research/simclr's
/// `learning_rate_schedule` (which passes T = epochs·examples//B + 1).
pub fn lr_at(step: usize, base_lr: f64, warmup_steps: usize, total_steps: usize) -> f64 {
    if step < warmup_steps {
        return base_lr * step as f64 / warmup_steps as f64;
    }
    if total_steps <= warmup_steps {
        // No decay phase: the schedule has ended.
        return 0.0;
    }
    let span = (total_steps - warmup_steps) as f64;
    let progress = ((step - warmup_steps) as f64).min(span) / span;
    base_lr * 0.5 * (1.0 + (std::f64::consts::PI * progress).cos())
}

/// How the base learning rate grows with the batch size B.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LrScaling {
    /// lr · B / 256 (SimCLR with LARS, e.g. 0.3 · B/256).
    #[default]
    Linear,
    /// lr · √B (SimCLR's rule for small batches and long training, e.g. 0.075 · √B).
    Sqrt,
}

/// The base learning rate for batch size `batch` under `rule`.
pub fn scaled_lr(lr: f64, batch: usize, rule: LrScaling) -> f64 {
    match rule {
        LrScaling::Linear => lr * batch as f64 / 256.0,
        LrScaling::Sqrt => lr * (batch as f64).sqrt(),
    }
}
