//! The seeded batch sampler: a fresh shuffle of the dataset every epoch, a pure function of
//! (seed, epoch), so that a resumed run sees exactly the batches it would have seen.

use rand::{RngCore, SeedableRng};
use rand_pcg::Pcg64;

/// SplitMix64 finaliser: spreads nearby inputs over the whole 64-bit range.
fn splitmix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Combine a seed with a counter (epoch, step) into one well-mixed seed.
pub fn mix_seed(seed: u64, counter: u64) -> u64 {
    splitmix(seed ^ splitmix(counter))
}

/// Uniform integer in [0, n) by Lemire's method, written out so that the sequence depends only
/// on the PCG stream and not on the `rand` version.
pub fn below(rng: &mut impl RngCore, n: u32) -> u32 {
    assert!(n > 0, "below(0)");
    let mut m = rng.next_u32() as u64 * n as u64;
    if (m as u32) < n {
        let t = n.wrapping_neg() % n;
        while (m as u32) < t {
            m = rng.next_u32() as u64 * n as u64;
        }
    }
    (m >> 32) as u32
}

/// Shuffled batches of dataset indices.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Sampler {
    pub len: usize,
    pub batch_size: usize,
    /// Drop the last batch when it is smaller than `batch_size`.
    pub drop_last: bool,
    pub seed: u64,
}

// Keeps the sampler's stream apart from other streams drawn from the same run seed.
const SAMPLER_SALT: u64 = 0x5341_4D50_4C45_5200;

impl Sampler {
    /// Fails when the batch size is 0, or when `drop_last` would leave no batch at all.
    pub fn new(len: usize, batch_size: usize, drop_last: bool, seed: u64) -> anyhow::Result<Sampler> {
        if batch_size == 0 {
            anyhow::bail!("the batch size must be at least 1");
        }
        if len == 0 || (drop_last && len < batch_size) {
            anyhow::bail!("a dataset of {len} images gives no full batch of {batch_size}");
        }
        if len > u32::MAX as usize {
            anyhow::bail!("{len} images are more than the sampler can index");
        }
        Ok(Sampler {
            len,
            batch_size,
            drop_last,
            seed,
        })
    }

    pub fn batches_per_epoch(&self) -> usize {
        if self.drop_last {
            self.len / self.batch_size
        } else {
            self.len.div_ceil(self.batch_size)
        }
    }

    /// The permutation of 0..len used in `epoch` (Fisher–Yates).
    pub fn order(&self, epoch: u64) -> Vec<u32> {
        let mut rng = Pcg64::seed_from_u64(mix_seed(self.seed ^ SAMPLER_SALT, epoch));
        let mut v: Vec<u32> = (0..self.len as u32).collect();
        for i in (1..v.len()).rev() {
            let j = below(&mut rng, i as u32 + 1) as usize;
            v.swap(i, j);
        }
        v
    }

    /// The batches of `epoch`, in order; the last one may be short unless `drop_last`.
    pub fn batches(&self, epoch: u64) -> Vec<Vec<u32>> {
        let order = self.order(epoch);
        let mut out: Vec<Vec<u32>> = order.chunks(self.batch_size).map(<[u32]>::to_vec).collect();
        if self.drop_last && out.last().is_some_and(|b| b.len() < self.batch_size) {
            out.pop();
        }
        out
    }
}
