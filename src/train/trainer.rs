//! The SimCLR training loop. One step = augment → forward both views → NT-Xent → backward →
//! optimizer, recorded into one submission; the loss comes back a step late so the GPU never
//! waits for the host.

use super::checkpoint::{self, HostTensor, Sidecar};
use super::metrics::Metrics;
use super::setup::{augment_config, largest_activation, load_train_data, lr_scaling, optim_config};
use super::TrainConfig;
use crate::augment::{batch_rng, Augmenter, GpuImages};
use crate::data::{self, Dataset, DatasetKind, Sampler, Split};
use crate::eval::{features::extract_features, knn};
use crate::gpu::{Gpu, LaggedReadback, Program, Tensor};
use crate::loss::ntxent::NtXent;
use crate::nn::model::Model;
use crate::optim::{schedule, Optimizer};
use anyhow::{bail, Context, Result};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Instant;

/// What one step reported (read back a step late).
#[derive(Clone, Debug, serde::Serialize)]
pub struct StepRecord {
    pub step: usize,
    pub epoch: usize,
    pub loss: f32,
    pub pos_acc: f32,
    pub lr: f64,
    pub images_per_s: f64,
}

pub struct Trainer {
    pub cfg: TrainConfig,
    pub gpu: Arc<Gpu>,
    pub train: Dataset,
    /// The labelled test split for the kNN monitor, loaded on first use.
    test: OnceLock<Dataset>,
    pub model: Model,
    pub augmenter: Augmenter,
    _images: GpuImages,
    pub loss: NtXent,
    pub opt: Optimizer,
    step_program: Program,
    /// [loss, positive-retrieval accuracy, non-finite counts of z and of each parameter].
    stats: Tensor,
    readback: LaggedReadback,
    sampler: Sampler,
    epoch_batches: (usize, Vec<Vec<u32>>),
    /// Optimizer steps completed.
    pub step: usize,
    pub steps_per_epoch: usize,
    pub total_steps: usize,
    pub metrics: Metrics,
    /// Per-epoch summaries so far (saved in checkpoint sidecars).
    pub history: Vec<serde_json::Value>,
    lr_of_step: BTreeMap<usize, (f64, Instant)>,
    rate_start: Option<(usize, Instant)>,
    pub last_record: Option<StepRecord>,
    /// The augmentation parameters of the latest step's views (for display).
    pub last_views: Vec<crate::augment::ViewParams>,
}

impl Trainer {
    pub fn new(gpu: Arc<Gpu>, mut cfg: TrainConfig) -> Result<Trainer> {
        cfg.validate()?;
        // Record the folder actually used, so evaluation finds it without $SIMCLR_DATA.
        let dir = data::resolve_data_dir(cfg.data.as_deref());
        cfg.data = Some(std::fs::canonicalize(&dir).unwrap_or(dir));
        let train = load_train_data(&cfg)?;
        Self::with_data(gpu, cfg, train)
    }

    pub fn with_data(gpu: Arc<Gpu>, cfg: TrainConfig, train: Dataset) -> Result<Trainer> {
        cfg.validate()?;
        let n = cfg.batch;
        let (act, bytes) = largest_activation(&cfg);
        let limit = gpu.limits.max_storage_buffer_binding_size as usize;
        if 2 * n * bytes > limit {
            bail!(
                "batch {n} does not fit this device: activation {act} of {} needs {} MiB for 2×{n} views, above its \
                 max storage binding of {} MiB; the largest batch that fits is {}",
                format!("{:?}", cfg.arch).to_lowercase(),
                (2 * n * bytes) >> 20,
                limit >> 20,
                limit / (2 * bytes)
            );
        }
        if train.len() < n {
            bail!(
                "the training set has {} images, fewer than one batch of {n}",
                train.len()
            );
        }
        let model = Model::new(&gpu, &cfg.model(), 2 * n, cfg.seed)?;
        let images = GpuImages::upload(&gpu, &train)?;
        let aug_cfg = augment_config(&cfg);
        let augmenter = Augmenter::new(&gpu, &images, model.input(), &aug_cfg)?;
        let loss = NtXent::new(&gpu, model.output(), model.output_grad(), 2, cfg.tau)?;
        let opt = Optimizer::new(&gpu, &optim_config(&cfg)?, param_slots(&model))?;
        let slots = model.param_slots();
        // [loss, accuracy, non-finite counts of z and of every parameter]
        let stats = Tensor::zeros(&gpu, "step.stats", &[3 + slots.len()])?;
        let mut step_program = Program::new();
        step_program.extend(augmenter.program());
        step_program.extend(&compute_program(&model, &loss, &opt));
        step_program.copy_at(&loss.loss.buffer, 0, &stats.buffer, 0, 4);
        step_program.copy_at(&loss.accuracy.buffer, 0, &stats.buffer, 4, 4);
        // NaN guard on the embeddings and the weights: ReLU's max(x, 0) turns a NaN into 0,
        // so a diverged model can still give a finite loss.
        step_program.push(crate::nn::finite::count_nonfinite(&gpu, model.output(), &stats, 2)?);
        for (i, (_, p, _, _)) in slots.iter().enumerate() {
            step_program.push(crate::nn::finite::count_nonfinite(&gpu, p, &stats, 3 + i)?);
        }
        let readback = LaggedReadback::new(&gpu, stats.bytes(), 2);
        let sampler = Sampler::new(train.len(), n, true, cfg.seed)?;
        let steps_per_epoch = train.len() / n;
        let total_steps = steps_per_epoch * cfg.epochs;
        let metrics = Metrics::open(&cfg.run_dir())?;
        Ok(Trainer {
            cfg,
            gpu,
            train,
            test: OnceLock::new(),
            model,
            augmenter,
            _images: images,
            loss,
            opt,
            step_program,
            stats,
            readback,
            sampler,
            epoch_batches: (usize::MAX, Vec::new()),
            step: 0,
            steps_per_epoch,
            total_steps,
            metrics,
            history: Vec::new(),
            lr_of_step: BTreeMap::new(),
            rate_start: None,
            last_record: None,
            last_views: Vec::new(),
        })
    }

    /// Continue the run in `run_dir` from its newest checkpoint.
    pub fn resume(gpu: Arc<Gpu>, run_dir: &std::path::Path) -> Result<Trainer> {
        let side = checkpoint::read_sidecar(&checkpoint::resolve(run_dir)?)?;
        Self::resume_with(gpu, run_dir, side.config)
    }

    /// Resume with `cfg` (the checkpoint's settings, possibly with run-time settings such as
    /// the number of epochs changed by the caller).
    pub fn resume_with(gpu: Arc<Gpu>, run_dir: &std::path::Path, cfg: TrainConfig) -> Result<Trainer> {
        let side_path = checkpoint::resolve(run_dir)?;
        let mut t = Self::new(gpu, cfg)?;
        t.load_checkpoint(&side_path)?;
        Ok(t)
    }

    pub fn epoch(&self) -> usize {
        self.step / self.steps_per_epoch.max(1)
    }

    pub fn lr_at(&self, step: usize) -> f64 {
        let base = schedule::scaled_lr(self.cfg.lr, self.cfg.batch, lr_scaling(&self.cfg));
        let warm = self.cfg.warmup_epochs * self.steps_per_epoch;
        schedule::lr_at(step, base, warm, self.total_steps)
    }

    fn batch_indices(&mut self, step: usize) -> Vec<u32> {
        let (e, k) = (step / self.steps_per_epoch, step % self.steps_per_epoch);
        if self.epoch_batches.0 != e {
            self.epoch_batches = (e, self.sampler.batches(e as u64));
        }
        self.epoch_batches.1[k].clone()
    }

    /// Record and submit one step; returns the records of earlier steps that came back.
    pub fn step_once(&mut self) -> Result<Vec<StepRecord>> {
        let step = self.step;
        let idx = self.batch_indices(step);
        let mut rng = batch_rng(self.cfg.seed, step as u64);
        self.last_views = self.augmenter.prepare(&self.gpu, &idx, &mut rng);
        let lr = self.lr_at(step);
        self.opt.set_step(&self.gpu, lr as f32, step);
        self.lr_of_step.insert(step, (lr, Instant::now()));
        let done = self
            .readback
            .submit(&self.gpu, &self.step_program, &self.stats.buffer, step as u64)?;
        self.step += 1;
        self.records(done)
    }

    /// Wait for every submitted step and return their records.
    pub fn flush(&mut self) -> Result<Vec<StepRecord>> {
        let done = self.readback.collect(&self.gpu, 0)?;
        self.records(done)
    }

    fn records(&mut self, done: Vec<(u64, Vec<u8>)>) -> Result<Vec<StepRecord>> {
        let mut out = Vec::new();
        for (tag, bytes) in done {
            let step = tag as usize;
            let v: &[f32] = bytemuck::cast_slice(&bytes);
            let (lr, _) = self.lr_of_step.remove(&step).unwrap_or((0.0, Instant::now()));
            // Average since the first step of this process: records come back in pairs, so
            // the time between two of them says little.
            let start = *self.rate_start.get_or_insert((step, Instant::now()));
            let done = (step - start.0) as f64;
            let secs = if done > 0.0 {
                start.1.elapsed().as_secs_f64() / done
            } else {
                0.0
            };
            let rec = StepRecord {
                step,
                epoch: step / self.steps_per_epoch,
                loss: v[0],
                pos_acc: v[1],
                lr,
                images_per_s: if secs > 0.0 { self.cfg.batch as f64 / secs } else { 0.0 },
            };
            let nonfinite: f32 = v[2..].iter().sum();
            if !rec.loss.is_finite() || nonfinite > 0.0 {
                bail!(
                    "loss became {} at step {step}; training stopped, the last good checkpoint in {} is kept",
                    if rec.loss.is_finite() {
                        format!("NaN ({nonfinite} non-finite weights/embeddings)")
                    } else {
                        rec.loss.to_string()
                    },
                    self.cfg.run_dir().display()
                );
            }
            self.metrics
                .write(&serde_json::json!({"kind": "step", "step": step, "epoch": rec.epoch,
                "loss": rec.loss, "lr": lr, "pos_acc": rec.pos_acc, "images_per_s": rec.images_per_s}))?;
            self.last_record = Some(rec.clone());
            out.push(rec);
        }
        Ok(out)
    }

    /// kNN top-1/top-5 of the current encoder: labelled train split (the training images)
    /// against the test split.
    pub fn knn(&self) -> Result<knn::KnnResult> {
        // The test split is read from disk once per run, not at every evaluation.
        let test = match self.test.get() {
            Some(t) => t,
            None => {
                let dir = data::resolve_data_dir(self.cfg.data.as_deref());
                let _ = self.test.set(data::load(DatasetKind::Cifar10, &dir, Split::Test)?);
                self.test.get().unwrap()
            }
        };
        let (train_l, test_l) = (self.train.labels.as_ref(), test.labels.as_ref());
        let (Some(train_l), Some(test_l)) = (train_l, test_l) else {
            bail!("kNN needs labelled data")
        };
        let n_test = self.cfg.limit_test.unwrap_or(test.len()).min(test.len());
        let d = self.model.features().shape[1];
        let ftr = extract_features(&self.gpu, &self.model, &self.train, None)?;
        let fte = extract_features(&self.gpu, &self.model, test, Some(n_test))?;
        let classes = test.classes.len().max(1 + *train_l.iter().max().unwrap_or(&0) as usize);
        knn::knn_eval(
            &self.gpu,
            &ftr,
            train_l,
            &fte,
            &test_l[..n_test],
            d,
            classes,
            self.cfg.knn_k,
            self.cfg.knn_t,
        )
    }

    /// Write a checkpoint (after waiting for all submitted steps) and prune old ones.
    pub fn save_checkpoint(&mut self) -> Result<PathBuf> {
        self.flush()?;
        let dir = self.cfg.run_dir();
        let stem = checkpoint::checkpoint_stem(self.step);
        let mut tensors = BTreeMap::new();
        for (name, t) in self.model.named_tensors() {
            tensors.insert(
                name,
                HostTensor {
                    shape: t.shape.clone(),
                    data: t.read_f32(&self.gpu)?,
                },
            );
        }
        for (name, t) in self.opt.state() {
            tensors.insert(
                format!("optimizer.{name}"),
                HostTensor {
                    shape: t.shape.clone(),
                    data: t.read_f32(&self.gpu)?,
                },
            );
        }
        let i64s: BTreeMap<String, i64> = self
            .model
            .graph
            .bn
            .iter()
            .map(|s| (format!("{}.num_batches_tracked", s.prefix), self.step as i64))
            .collect();
        let st_path = dir.join(format!("{stem}.safetensors"));
        checkpoint::save_safetensors(&st_path, &tensors, &i64s)?;
        let side = Sidecar {
            config: self.cfg.clone(),
            epoch: self.epoch(),
            step: self.step,
            tensors: format!("{stem}.safetensors"),
            metrics: self.history.clone(),
        };
        let side_path = dir.join(format!("{stem}.json"));
        checkpoint::atomic_write(&side_path, serde_json::to_string_pretty(&side)?.as_bytes())?;
        checkpoint::prune(&dir, self.cfg.keep);
        Ok(side_path)
    }

    /// Restore weights, BN statistics, optimizer state and position from a sidecar.
    pub fn load_checkpoint(&mut self, side_path: &std::path::Path) -> Result<()> {
        let side = checkpoint::read_sidecar(side_path)?;
        let st = side_path.with_file_name(&side.tensors);
        let tensors = checkpoint::load_safetensors(&st)?;
        let mut want: Vec<(String, Tensor)> = self.model.named_tensors();
        want.extend(self.opt.state().into_iter().map(|(n, t)| (format!("optimizer.{n}"), t)));
        let spec: Vec<(String, Vec<usize>)> = want.iter().map(|(n, t)| (n.clone(), t.shape.clone())).collect();
        checkpoint::check_compatible(&tensors, &spec, &format!("checkpoint {}", st.display()))?;
        for (name, t) in &want {
            t.write_f32(&self.gpu, &tensors[name].data);
        }
        self.step = side.step;
        self.history = side.metrics;
        self.gpu.wait()?;
        Ok(())
    }

    /// Train until `epochs` (or `max_steps`) are done or `stop` is set; checkpoints every epoch,
    /// at the end, and when stopped.
    pub fn run(&mut self, stop: &AtomicBool, on_step: &mut dyn FnMut(&Trainer, &StepRecord)) -> Result<()> {
        let end = self
            .cfg
            .max_steps
            .map(|m| m.min(self.total_steps))
            .unwrap_or(self.total_steps);
        let mut epoch_start = Instant::now();
        let mut losses = Vec::new();
        while self.step < end {
            if stop.load(Ordering::SeqCst) {
                self.finish_records(&mut losses, on_step)?;
                let p = self.save_checkpoint()?;
                eprintln!(
                    "stopped at step {}; checkpoint {} (resume with --resume)",
                    self.step,
                    p.display()
                );
                return Ok(());
            }
            let recs = self.step_once()?;
            for r in &recs {
                losses.push(r.loss);
                on_step(self, r);
            }
            if self.step % self.steps_per_epoch == 0 || self.step == end {
                self.finish_records(&mut losses, on_step)?;
                // The 0-based index of the epoch just finished, as in the step records.
                let epoch = (self.step - 1) / self.steps_per_epoch;
                let secs = epoch_start.elapsed().as_secs_f64();
                let mean_loss = losses.iter().map(|&l| l as f64).sum::<f64>() / losses.len().max(1) as f64;
                let mut rec = serde_json::json!({"kind": "epoch", "epoch": epoch, "step": self.step,
                    "loss_mean": mean_loss, "seconds": secs});
                let complete = self.step % self.steps_per_epoch == 0;
                rec["partial"] = (!complete).into();
                if complete && self.cfg.knn_every > 0 && (epoch + 1) % self.cfg.knn_every == 0 {
                    match self.knn() {
                        Ok(k) => {
                            rec["knn_top1"] = k.top1.into();
                            rec["knn_top5"] = k.top5.into();
                        }
                        Err(e) => eprintln!("kNN monitor skipped: {e:#}"),
                    }
                }
                self.metrics.write(&rec)?;
                self.history.push(rec);
                self.save_checkpoint().context("writing checkpoint")?;
                losses.clear();
                epoch_start = Instant::now();
            }
        }
        Ok(())
    }

    fn finish_records(&mut self, losses: &mut Vec<f32>, on_step: &mut dyn FnMut(&Trainer, &StepRecord)) -> Result<()> {
        for r in self.flush()? {
            losses.push(r.loss);
            on_step(self, &r);
        }
        Ok(())
    }
}

/// Forward both views → NT-Xent → backward → optimizer (a step without the augmentation).
pub fn compute_program(model: &Model, loss: &NtXent, opt: &Optimizer) -> Program {
    let mut p = Program::new();
    p.extend(model.forward_train());
    p.extend(loss.program());
    p.extend(model.backward());
    p.extend(opt.program());
    p
}

fn param_slots(model: &Model) -> Vec<crate::optim::ParamSlot> {
    model
        .param_slots()
        .into_iter()
        .map(|(name, param, grad, excluded)| crate::optim::ParamSlot {
            name,
            param,
            grad,
            excluded,
        })
        .collect()
}
