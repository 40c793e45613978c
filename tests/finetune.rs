//! Fine-tuning (encoder + linear head, cross-entropy, crop + flip on the GPU) and its subset rule.
mod common;
use common::*;
use simclr_wgpu::data::{self, DatasetKind, Split};
use simclr_wgpu::eval::finetune::{balanced_subset, finetune, FinetuneConfig, LabelBudget};
use simclr_wgpu::nn::arch::{Arch, ModelConfig};

#[test]
fn balanced_subsets_are_balanced_seeded_and_sized() {
    let labels: Vec<u32> = (0..1000).map(|i| (i * 7 % 10) as u32).collect();
    let a = balanced_subset(&labels, 10, LabelBudget::Fraction(0.1), 3);
    assert_eq!(a.len(), 100);
    for c in 0..10 {
        assert_eq!(a.iter().filter(|&&i| labels[i as usize] == c).count(), 10, "class {c}");
    }
    assert_eq!(
        a,
        balanced_subset(&labels, 10, LabelBudget::Fraction(0.1), 3),
        "same seed, same subset"
    );
    assert_ne!(
        a,
        balanced_subset(&labels, 10, LabelBudget::Fraction(0.1), 4),
        "another seed, another subset"
    );
    assert_eq!(balanced_subset(&labels, 10, LabelBudget::Count(25), 0).len(), 25);
    assert!("0%".parse::<LabelBudget>().is_err() && "x".parse::<LabelBudget>().is_err());
    assert_eq!("1%".parse::<LabelBudget>().unwrap(), LabelBudget::Fraction(0.01));
}

/// A randomly initialised tiny encoder fine-tuned on 160 images learns them: evaluated (eval
/// mode, no augmentation) on those same images it is far above chance. This checks the whole
/// path: labels of both views, backward into the encoder, BN running statistics, evaluation.
#[test]
fn finetuning_fits_its_labelled_images() {
    let dir = std::env::var("SIMCLR_DATA")
        .map(Into::into)
        .unwrap_or_else(|_| shared_dir().join("data"));
    let Ok(all) = data::load(DatasetKind::Cifar10, &dir, Split::Train) else {
        eprintln!("SKIPPED: CIFAR-10 not found in {}", dir.display());
        return;
    };
    let ds = all.subset(&(0..160).collect::<Vec<_>>());
    let enc = ModelConfig {
        arch: Arch::Tiny,
        width: 0.5,
        ..Default::default()
    };
    let cfg = FinetuneConfig {
        labels: LabelBudget::Fraction(1.0),
        epochs: 12,
        batch: 32,
        lr: 0.1,
        weight_decay: 0.0,
        ..Default::default()
    };
    let mut losses = Vec::new();
    let r = finetune(gpu(), &enc, None, &ds, &ds, 10, &cfg, |_, l| losses.push(l)).unwrap();
    eprintln!("{r:?} losses {losses:?}");
    assert!(
        losses.last().unwrap() < &(losses[0] - 0.3),
        "loss did not fall: {losses:?}"
    );
    assert!(r.top1 > 0.3, "top-1 {} on its own training images", r.top1);
}
