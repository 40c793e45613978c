//! STL-10, binary version: `<split>_X.bin` holds 96×96 images as 3 planes each stored
//! column-major (x outer, y inner); `<split>_y.bin` holds one label byte 1..=10 per image.

use super::{find_dir, read_file, read_lines, Dataset, Split};
use anyhow::bail;
use std::path::Path;

const SIDE: usize = 96;
const PIXELS: usize = SIDE * SIDE;
const RECORD: usize = 3 * PIXELS;
const CLASSES: usize = 10;

pub(crate) fn load(dir: &Path, split: Split) -> anyhow::Result<Dataset> {
    let stem = split.name();
    let x_name = format!("{stem}_X.bin");
    let root = find_dir(dir, "stl10_binary", &x_name)?;
    let x_path = root.join(&x_name);
    let x = read_file(&x_path)?;
    if x.is_empty() || x.len() % RECORD != 0 {
        bail!(
            "{} is truncated or not an STL-10 file: {} bytes is not a whole number of {RECORD}-byte images \
             ({} images and {} bytes left over)",
            x_path.display(),
            x.len(),
            x.len() / RECORD,
            x.len() % RECORD
        );
    }
    let n = x.len() / RECORD;
    let mut images = vec![0u8; n * RECORD];
    for (img, out) in x.chunks_exact(RECORD).zip(images.chunks_exact_mut(RECORD)) {
        for c in 0..3 {
            for col in 0..SIDE {
                for row in 0..SIDE {
                    out[(row * SIDE + col) * 3 + c] = img[c * PIXELS + col * SIDE + row];
                }
            }
        }
    }
    let labels = if split == Split::Unlabeled {
        None
    } else {
        let y_path = root.join(format!("{stem}_y.bin"));
        let y = read_file(&y_path)?;
        if y.len() != n {
            bail!(
                "{} has {} bytes but {} holds {n} images (one label byte each expected)",
                y_path.display(),
                y.len(),
                x_path.display()
            );
        }
        let mut labels = Vec::with_capacity(n);
        for (i, &l) in y.iter().enumerate() {
            if !(1..=CLASSES as u8).contains(&l) {
                bail!("{}: label {l} of image {i} is outside 1..=10", y_path.display());
            }
            labels.push(l as u32 - 1);
        }
        Some(labels)
    };
    let names_path = root.join("class_names.txt");
    let mut classes = if names_path.exists() {
        read_lines(&names_path)?
    } else {
        Vec::new()
    };
    if classes.len() != CLASSES {
        classes = (0..CLASSES).map(|i| format!("class{i}")).collect();
    }
    Ok(Dataset {
        name: format!("stl10-{stem}"),
        images,
        labels,
        classes: if split == Split::Unlabeled { Vec::new() } else { classes },
        height: SIDE,
        width: SIDE,
        // Statistics of the train + unlabeled images, as commonly used for STL-10.
        mean: [0.4467, 0.4398, 0.4066],
        std: [0.2603, 0.2566, 0.2713],
    })
}
