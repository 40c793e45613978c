//! Augmentation settings and the per-view random parameters, drawn on the CPU from a seeded
//! generator so that a run (and a preview) can be reproduced and every view can be shown.

use crate::data::{below, mix_seed};
use rand::{RngCore, SeedableRng};
use rand_pcg::Pcg64;
use serde::{Deserialize, Serialize};

/// The SimCLR augmentation recipe; every probability and strength is a setting.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AugmentConfig {
    /// Side of the square output views (32, 64, 96, 224, ...).
    pub out_size: usize,
    /// Random resized crop: fraction of the source area, sampled uniformly.
    pub crop_scale: (f32, f32),
    /// Random resized crop: aspect ratio w/h, sampled log-uniformly.
    pub crop_ratio: (f32, f32),
    pub flip_p: f32,
    /// Colour-jitter strength s: brightness, contrast, saturation 0.8s, hue 0.2s.
    pub jitter_strength: f32,
    pub jitter_p: f32,
    pub gray_p: f32,
    /// Gaussian blur probability (SimCLR: 0.5 on ImageNet/STL-10, off on CIFAR).
    pub blur_p: f32,
    pub blur_sigma: (f32, f32),
    /// Blur kernel side; `None`: 10% of `out_size`, made odd.
    pub blur_kernel: Option<usize>,
}

impl Default for AugmentConfig {
    /// SimCLR's CIFAR-10 recipe at 32 px: jitter strength 0.5, no blur.
    fn default() -> Self {
        AugmentConfig {
            out_size: 32,
            crop_scale: (0.08, 1.0),
            crop_ratio: (3.0 / 4.0, 4.0 / 3.0),
            flip_p: 0.5,
            jitter_strength: 0.5,
            jitter_p: 0.8,
            gray_p: 0.2,
            blur_p: 0.0,
            blur_sigma: (0.1, 2.0),
            blur_kernel: None,
        }
    }
}

impl AugmentConfig {
    /// The default recipe for `out_size`: blur (p = 0.5) above 32 px, off at 32 px and below.
    pub fn for_size(out_size: usize) -> Self {
        AugmentConfig {
            out_size,
            blur_p: if out_size > 32 { 0.5 } else { 0.0 },
            ..Default::default()
        }
    }

    /// Side of the Gaussian kernel: the setting, or int(0.1 × out_size) made odd (at least 1).
    pub fn blur_kernel_size(&self) -> usize {
        let k = self.blur_kernel.unwrap_or(self.out_size / 10).max(1);
        if k.is_multiple_of(2) {
            k + 1
        } else {
            k
        }
    }

    /// A message for the first setting out of range.
    pub fn validate(&self) -> anyhow::Result<()> {
        let prob = |name: &str, p: f32| {
            if (0.0..=1.0).contains(&p) {
                Ok(())
            } else {
                Err(anyhow::anyhow!(
                    "augmentation setting {name} = {p} is not a probability in [0, 1]"
                ))
            }
        };
        prob("flip_p", self.flip_p)?;
        prob("jitter_p", self.jitter_p)?;
        prob("gray_p", self.gray_p)?;
        prob("blur_p", self.blur_p)?;
        let range = |name: &str, (a, b): (f32, f32), hi: f32| {
            if a.is_finite() && b.is_finite() && 0.0 < a && a <= b && b <= hi {
                Ok(())
            } else {
                Err(anyhow::anyhow!(
                    "augmentation setting {name} = ({a}, {b}) needs 0 < lo <= hi <= {hi}"
                ))
            }
        };
        range("crop_scale", self.crop_scale, 1.0)?;
        range("crop_ratio", self.crop_ratio, f32::MAX)?;
        range("blur_sigma", self.blur_sigma, f32::MAX)?;
        if !(0.0..=2.5).contains(&self.jitter_strength) {
            anyhow::bail!(
                "augmentation setting jitter_strength = {} must be in [0, 2.5] (hue 0.2s may not exceed 0.5)",
                self.jitter_strength
            );
        }
        if self.out_size == 0 || self.out_size > 4096 {
            anyhow::bail!("augmentation setting out_size = {} must be in 1..=4096", self.out_size);
        }
        Ok(())
    }
}

/// A crop rectangle in source pixels.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct CropBox {
    pub top: u32,
    pub left: u32,
    pub height: u32,
    pub width: u32,
}

/// Colour-jitter op ids in `Jitter::order`.
pub const BRIGHTNESS: u8 = 0;
pub const CONTRAST: u8 = 1;
pub const SATURATION: u8 = 2;
pub const HUE: u8 = 3;

/// Colour jitter of one view: factors, the order they are applied in, and whether it applies.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct Jitter {
    pub applied: bool,
    /// A permutation of 0 brightness, 1 contrast, 2 saturation, 3 hue.
    pub order: [u8; 4],
    pub brightness: f32,
    pub contrast: f32,
    pub saturation: f32,
    pub hue: f32,
}

impl Jitter {
    pub const NONE: Jitter = Jitter {
        applied: false,
        order: [0, 1, 2, 3],
        brightness: 1.0,
        contrast: 1.0,
        saturation: 1.0,
        hue: 0.0,
    };

    /// The ops that change the image, in order. An identity factor is skipped, as torchvision
    /// skips a jitter component whose range is empty.
    pub fn active_ops(&self) -> Vec<u8> {
        if !self.applied {
            return Vec::new();
        }
        self.order
            .iter()
            .copied()
            .filter(|&op| match op {
                BRIGHTNESS => self.brightness != 1.0,
                CONTRAST => self.contrast != 1.0,
                SATURATION => self.saturation != 1.0,
                _ => self.hue != 0.0,
            })
            .collect()
    }
}

/// Everything random about one augmented view.
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
pub struct ViewParams {
    pub crop: CropBox,
    pub flip: bool,
    pub jitter: Jitter,
    pub gray: bool,
    /// Gaussian blur σ; 0 = no blur.
    pub blur_sigma: f32,
}

impl ViewParams {
    /// The whole source image, untouched: the "original" column of a preview.
    pub fn identity(src_h: usize, src_w: usize) -> Self {
        ViewParams {
            crop: CropBox {
                top: 0,
                left: 0,
                height: src_h as u32,
                width: src_w as u32,
            },
            flip: false,
            jitter: Jitter::NONE,
            gray: false,
            blur_sigma: 0.0,
        }
    }
}

/// Uniform in [0, 1) with 53 random bits (independent of the `rand` version).
fn unit(rng: &mut impl RngCore) -> f64 {
    (rng.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
}

fn uniform(rng: &mut impl RngCore, lo: f64, hi: f64) -> f64 {
    lo + (hi - lo) * unit(rng)
}

/// torchvision's `RandomResizedCrop.get_params`: up to 10 tries of (scale, log-uniform ratio),
/// then the central crop clamped to the ratio range. Python's `round` rounds half to even.
pub fn sample_crop(rng: &mut impl RngCore, scale: (f32, f32), ratio: (f32, f32), h: usize, w: usize) -> CropBox {
    let area = (h * w) as f64;
    let (lr0, lr1) = ((ratio.0 as f64).ln(), (ratio.1 as f64).ln());
    for _ in 0..10 {
        let target = area * uniform(rng, scale.0 as f64, scale.1 as f64);
        let ar = uniform(rng, lr0, lr1).exp();
        let cw = (target * ar).sqrt().round_ties_even() as usize;
        let ch = (target / ar).sqrt().round_ties_even() as usize;
        if 0 < cw && cw <= w && 0 < ch && ch <= h {
            let top = below(rng, (h - ch + 1) as u32);
            let left = below(rng, (w - cw + 1) as u32);
            return CropBox {
                top,
                left,
                height: ch as u32,
                width: cw as u32,
            };
        }
    }
    let in_ratio = w as f64 / h as f64;
    let (cw, ch) = if in_ratio < ratio.0 as f64 {
        (w, ((w as f64 / ratio.0 as f64).round_ties_even() as usize).clamp(1, h))
    } else if in_ratio > ratio.1 as f64 {
        (((h as f64 * ratio.1 as f64).round_ties_even() as usize).clamp(1, w), h)
    } else {
        (w, h)
    };
    CropBox {
        top: ((h - ch) / 2) as u32,
        left: ((w - cw) / 2) as u32,
        height: ch as u32,
        width: cw as u32,
    }
}

/// Draw one view's parameters for a `src_h`×`src_w` source, in torchvision's order: crop, flip,
/// jitter (order and factors drawn only when it applies), grayscale, blur (σ always drawn).
pub fn sample_params(rng: &mut impl rand::Rng, cfg: &AugmentConfig, src_h: usize, src_w: usize) -> ViewParams {
    let crop = sample_crop(rng, cfg.crop_scale, cfg.crop_ratio, src_h, src_w);
    let flip = unit(rng) < cfg.flip_p as f64;
    let jitter = if unit(rng) < cfg.jitter_p as f64 {
        let s = cfg.jitter_strength as f64;
        let mut order = [0u8, 1, 2, 3];
        for i in (1..4).rev() {
            order.swap(i, below(rng, i as u32 + 1) as usize);
        }
        let f = 0.8 * s;
        let lo = (1.0 - f).max(0.0);
        Jitter {
            applied: true,
            order,
            brightness: uniform(rng, lo, 1.0 + f) as f32,
            contrast: uniform(rng, lo, 1.0 + f) as f32,
            saturation: uniform(rng, lo, 1.0 + f) as f32,
            hue: uniform(rng, -0.2 * s, 0.2 * s) as f32,
        }
    } else {
        Jitter::NONE
    };
    let gray = unit(rng) < cfg.gray_p as f64;
    let blur = unit(rng) < cfg.blur_p as f64;
    let sigma = uniform(rng, cfg.blur_sigma.0 as f64, cfg.blur_sigma.1 as f64) as f32;
    ViewParams {
        crop,
        flip,
        jitter,
        gray,
        blur_sigma: if blur { sigma } else { 0.0 },
    }
}

/// Parameters of a batch of `n` images, in output-row order: rows 0..n are view 1 of each image,
/// rows n..2n view 2.
pub fn sample_batch(
    rng: &mut impl rand::Rng,
    cfg: &AugmentConfig,
    n: usize,
    src_h: usize,
    src_w: usize,
) -> Vec<ViewParams> {
    (0..2 * n).map(|_| sample_params(rng, cfg, src_h, src_w)).collect()
}

// Keeps the augmentation stream apart from the sampler's, drawn from the same run seed.
const AUGMENT_SALT: u64 = 0x4155_474D_454E_5400;

/// The generator for the augmentations of training step `step` of a run seeded with `seed`:
/// a pure function of both, so a resumed run draws the same views.
pub fn batch_rng(seed: u64, step: u64) -> Pcg64 {
    Pcg64::seed_from_u64(mix_seed(seed ^ AUGMENT_SALT, step))
}
