//! CIFAR-10 and CIFAR-100, binary version: fixed-size records of label byte(s) followed by the
//! 1,024 red, 1,024 green and 1,024 blue bytes of a 32×32 image (planar, row-major).

use super::{find_dir, read_file, read_lines, Dataset, Split};
use anyhow::{bail, Context};
use std::path::Path;

pub(crate) struct Layout {
    pub name: &'static str,
    /// Folder the official archive unpacks to.
    pub folder: &'static str,
    pub train: &'static [&'static str],
    pub test: &'static str,
    /// Label bytes before the pixels; the last one is the label used (CIFAR-100: fine label).
    pub label_bytes: usize,
    pub classes_file: &'static str,
    pub num_classes: usize,
    pub mean: [f32; 3],
    pub std: [f32; 3],
}

pub(crate) const CIFAR10: Layout = Layout {
    name: "cifar10",
    folder: "cifar-10-batches-bin",
    train: &[
        "data_batch_1.bin",
        "data_batch_2.bin",
        "data_batch_3.bin",
        "data_batch_4.bin",
        "data_batch_5.bin",
    ],
    test: "test_batch.bin",
    label_bytes: 1,
    classes_file: "batches.meta.txt",
    num_classes: 10,
    // Training-set statistics (see ../shared/data/README.md).
    mean: [0.4914, 0.4822, 0.4465],
    std: [0.2470, 0.2435, 0.2616],
};

pub(crate) const CIFAR100: Layout = Layout {
    name: "cifar100",
    folder: "cifar-100-binary",
    train: &["train.bin"],
    test: "test.bin",
    label_bytes: 2,
    classes_file: "fine_label_names.txt",
    num_classes: 100,
    mean: [0.5071, 0.4865, 0.4409],
    std: [0.2673, 0.2564, 0.2762],
};

const SIDE: usize = 32;
const PIXELS: usize = SIDE * SIDE;

pub(crate) fn load(layout: Layout, dir: &Path, split: Split) -> anyhow::Result<Dataset> {
    let files: Vec<&str> = match split {
        Split::Train => layout.train.to_vec(),
        Split::Test => vec![layout.test],
        Split::Unlabeled => bail!(
            "{} has no unlabeled split; use the train split (labels are ignored by pretraining)",
            layout.name
        ),
    };
    let root = find_dir(dir, layout.folder, files[0])?;
    let record = layout.label_bytes + 3 * PIXELS;
    let mut images = Vec::new();
    let mut labels = Vec::new();
    for f in &files {
        let path = root.join(f);
        if !path.exists() {
            bail!("{} is missing (expected next to {})", path.display(), files[0]);
        }
        let bytes = read_file(&path)?;
        if bytes.is_empty() || bytes.len() % record != 0 {
            bail!(
                "{} is truncated or not a {} file: {} bytes is not a whole number of {}-byte records \
                 ({} records and {} bytes left over)",
                path.display(),
                layout.name,
                bytes.len(),
                record,
                bytes.len() / record,
                bytes.len() % record
            );
        }
        images.reserve(bytes.len() / record * 3 * PIXELS);
        for (r, rec) in bytes.chunks_exact(record).enumerate() {
            let label = rec[layout.label_bytes - 1] as usize;
            if label >= layout.num_classes {
                bail!(
                    "{}: record {r} has label {label}, above the {} classes of {}",
                    path.display(),
                    layout.num_classes,
                    layout.name
                );
            }
            labels.push(label as u32);
            let px = &rec[layout.label_bytes..];
            // Planar RGB → interleaved HWC.
            for p in 0..PIXELS {
                images.extend_from_slice(&[px[p], px[PIXELS + p], px[2 * PIXELS + p]]);
            }
        }
    }
    let classes_path = root.join(layout.classes_file);
    let mut classes = if classes_path.exists() {
        read_lines(&classes_path).with_context(|| "reading class names")?
    } else {
        Vec::new()
    };
    if classes.len() != layout.num_classes {
        // A missing or odd names file is not worth failing for: number the classes.
        classes = (0..layout.num_classes).map(|i| format!("class{i}")).collect();
    }
    Ok(Dataset {
        name: format!("{}-{}", layout.name, split.name()),
        images,
        labels: Some(labels),
        classes,
        height: SIDE,
        width: SIDE,
        mean: layout.mean,
        std: layout.std,
    })
}
