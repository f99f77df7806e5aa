//! A whole pretraining run: sequences in, checkpoints, a final model in the Hugging Face layout
//! and a report against the unigram baseline out. One runner serves every objective through
//! [`PretrainingObjective`]; the architecture's [`Objective`] picks which.
//!
//! The output directory holds `config.toml` (the recipe used), `checkpoint/` (burn-train's
//! model, optimiser and scheduler state after every `checkpoint_every` steps), `metrics.jsonl`,
//! `model/` (`config.json` + `model.safetensors`, loadable by prottrans and `transformers`) and
//! `report.json`.

use std::fmt::Debug;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataloader::{DataLoader, DataLoaderBuilder};
use burn::data::dataset::Dataset;
use burn::tensor::Device;
use burn::tensor::distributed::{DistributedConfig, ReduceOperation};
use burn::train::{
    ExecutionStrategy, Learner, LearnerModel, MultiDeviceOptim, SupervisedTraining, TrainStep,
};
use prottrans_data::{
    BatchedSequences, CropMode, RareResidues, ResidueBatch, SequenceStore, Tokenizer,
    UnknownResidues,
};
use prottrans_models::{ArchitectureConfig, ModelConfig, Objective};
use serde::{Deserialize, Serialize};

use crate::baseline::UnigramBaseline;
use crate::epochs::{EpochLoader, IntervalDraws};
use crate::error::TrainError;
use crate::objectives::replaced_token::DiscriminatorReport;
use crate::objectives::span_corruption::ReconstructionReport;
use crate::objectives::{ByObjective, StepSettings};
use crate::recipe::PretrainConfig;
use crate::renderer::{ProgressRenderer, forget_metrics_after};
use prottrans_backend::Precision;

pub use crate::objectives::pretraining::{ObjectiveVisitor, PretrainingObjective};

/// What to run.
#[derive(Debug, Clone)]
pub struct PretrainRun {
    /// The recipe.
    pub config: PretrainConfig,
    /// Training FASTA (plain or gzip).
    pub train: PathBuf,
    /// Validation FASTA.
    pub valid: PathBuf,
    /// Output directory.
    pub out: PathBuf,
    /// Where to train (and validate).
    pub device: Device,
    /// Further devices for data-parallel training: every device takes its own batch each step
    /// and the gradients are averaged (as `strategy` says), so a step sees
    /// `1 + extra_devices.len()` batches. Empty for one device.
    pub extra_devices: Vec<Device>,
    /// How the devices train together.
    pub strategy: DataParallel,
    /// Continue from the latest checkpoint in `out`.
    pub resume: bool,
}

/// How several devices train one model. Both give every device its own batch and the same
/// update: gradients are summed over devices after each one's loss was divided by the number
/// of batches in the step, so a recipe trains the same whichever is chosen.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum DataParallel {
    /// burn-train's multi-device strategy, on any backend: the gradients are moved to the
    /// first device and summed there, where the optimiser steps once.
    #[default]
    Gather,
    /// burn-train's distributed data parallel (DDP): one thread per device, the gradients
    /// all-reduced during the backward pass and an optimiser on every device. In burn 0.22 only
    /// CUDA devices have the collective (NCCL), and only within one machine.
    Ddp,
}

impl std::str::FromStr for DataParallel {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text.trim().to_ascii_lowercase().as_str() {
            "gather" => Ok(Self::Gather),
            "ddp" => Ok(Self::Ddp),
            _ => Err(format!(
                "unknown data-parallel strategy '{text}'; expected gather or ddp"
            )),
        }
    }
}

impl std::fmt::Display for DataParallel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Gather => "gather",
            Self::Ddp => "ddp",
        })
    }
}

impl PretrainRun {
    /// Every device, the first (which validates and checkpoints) first.
    pub fn devices(&self) -> Vec<Device> {
        std::iter::once(self.device.clone())
            .chain(self.extra_devices.iter().cloned())
            .collect()
    }

    /// Where and how training runs, for the log.
    pub fn placement(&self) -> String {
        let mut text = format!("{:?}", self.device);
        if !self.extra_devices.is_empty() || self.strategy == DataParallel::Ddp {
            text += &format!(
                " and {:?} (data parallel, {})",
                self.extra_devices, self.strategy
            );
        }
        let precision = self.config.mixed_precision();
        if precision.compute() != Precision::F32 {
            text += &format!(
                ", computing in {} (loss scale {})",
                precision.compute(),
                precision.loss_scale()
            );
        }
        text
    }

    /// Loss scaling (gradients averaged over accumulation and devices) and precision of the
    /// training steps.
    pub fn step_settings(&self) -> StepSettings {
        StepSettings::default()
            .averaging_over(
                self.config.optimizer.grad_accumulation,
                1 + self.extra_devices.len(),
            )
            .with_precision(self.config.mixed_precision())
    }

    /// Batches behind each optimiser step: gradient accumulation times data-parallel devices.
    pub fn batches_per_step(&self) -> usize {
        self.config.optimizer.grad_accumulation * (1 + self.extra_devices.len())
    }
}

/// Scores of the final model and of the unigram baseline on the validation set.
///
/// `valid_*` and `unigram_*` are over the residues the objective hides (masked for BERT,
/// corrupted for T5), so the two are directly comparable whatever the objective.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PretrainReport {
    /// `masked-lm`, `replaced-token-detection`, `span-corruption`, `causal-lm` or
    /// `permutation-lm`.
    pub objective: String,
    /// Optimiser steps of the whole schedule.
    pub steps: usize,
    /// Training sequences.
    pub train_sequences: usize,
    /// Validation sequences.
    pub valid_sequences: usize,
    /// Masked (or corrupted) residues scored in validation.
    pub valid_masked_residues: u64,
    /// Mean cross-entropy of the model on masked validation residues (nats).
    pub valid_loss: f64,
    /// Fraction of masked validation residues the model recovers.
    pub valid_accuracy: f64,
    /// T5: the whole reconstruction (every residue and `</s>`), with a copy-the-input baseline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reconstruction: Option<ReconstructionReport>,
    /// ELECTRA: the discriminator on the validation tokens.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub discriminator: Option<DiscriminatorReport>,
    /// `exp(valid_loss)`.
    pub valid_perplexity: f64,
    /// Cross-entropy of the training residue frequencies on the same residues (nats).
    pub unigram_loss: f64,
    /// Accuracy of always predicting the most frequent training residue.
    pub unigram_accuracy: f64,
    /// Entropy of the training residue distribution (nats).
    pub unigram_entropy: f64,
    /// Wall time of this invocation (seconds).
    pub seconds: f64,
    /// Where the final model was written.
    pub model_dir: PathBuf,
}

impl std::fmt::Display for PretrainReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hidden = Objective::from_name(&self.objective)
            .map_or("masked", crate::objectives::scored_residues);
        writeln!(
            f,
            "validation: {} {hidden} residues in {} sequences",
            self.valid_masked_residues, self.valid_sequences
        )?;
        writeln!(
            f,
            "  model:    loss {:.4} nats  accuracy {:.2}%  perplexity {:.2}",
            self.valid_loss,
            100.0 * self.valid_accuracy,
            self.valid_perplexity
        )?;
        writeln!(
            f,
            "  unigram:  loss {:.4} nats  accuracy {:.2}%  perplexity {:.2}  (training residue frequencies)",
            self.unigram_loss,
            100.0 * self.unigram_accuracy,
            self.unigram_loss.exp()
        )?;
        if let Some(d) = &self.discriminator {
            writeln!(f, "{d}")?;
        }
        if let Some(r) = &self.reconstruction {
            writeln!(
                f,
                "  whole sequences ({} tokens): loss {:.4} nats  accuracy {:.2}%  (copying the input: {:.2}%)",
                r.tokens,
                r.loss,
                100.0 * r.accuracy,
                100.0 * r.copy_baseline_accuracy
            )?;
        }
        write!(f, "model saved to {}", self.model_dir.display())
    }
}

/// The latest complete checkpoint epoch in `out/checkpoint`, if any.
pub fn latest_checkpoint(out: &Path) -> Option<usize> {
    let names = entries_list(out);
    let optim = entries_named(&names, "optim-");
    let scheduler = entries_named(&names, "scheduler-");
    entries_named(&names, "model-")
        .into_iter()
        .filter(|e| optim.contains(e) && scheduler.contains(e))
        .max()
}

/// A checkpoint record that does not read back (a run killed while writing it, a truncated or
/// damaged copy).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnreadableCheckpoint {
    /// The checkpoint's epoch.
    pub epoch: usize,
    /// The record file.
    pub file: PathBuf,
    /// Why it does not read back.
    pub reason: String,
}

impl std::fmt::Display for UnreadableCheckpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.file.display(), self.reason)
    }
}

/// The latest checkpoint epoch in `out/checkpoint` whose model, optimiser and scheduler records
/// all read back (burn-train panics on one that does not), and the later ones passed over. `Ok`
/// with `None` when there is no complete checkpoint; `Err` with every failure when there are
/// checkpoints but none reads back.
pub fn latest_readable_checkpoint(
    out: &Path,
) -> Result<(Option<usize>, Vec<UnreadableCheckpoint>), Vec<UnreadableCheckpoint>> {
    let names = entries_list(out);
    let optim = entries_named(&names, "optim-");
    let scheduler = entries_named(&names, "scheduler-");
    let mut complete: Vec<usize> = entries_named(&names, "model-")
        .into_iter()
        .filter(|e| optim.contains(e) && scheduler.contains(e))
        .collect();
    complete.sort_unstable_by(|a, b| b.cmp(a));
    let mut unreadable = Vec::new();
    for &epoch in &complete {
        match check_checkpoint_records(out, epoch) {
            Ok(()) => return Ok((Some(epoch), unreadable)),
            Err(problem) => unreadable.push(problem),
        }
    }
    if unreadable.is_empty() {
        Ok((None, unreadable))
    } else {
        Err(unreadable)
    }
}

/// Reads back the headers of checkpoint `epoch`'s three records (burnpack files: the tensor data
/// stays on disk, its size is checked against the header).
fn check_checkpoint_records(out: &Path, epoch: usize) -> Result<(), UnreadableCheckpoint> {
    use burn::lr_scheduler::LrSchedulerRecord;
    use burn::optim::OptimizerRecord;
    use burn::store::{ModuleRecord, RecordError};
    let dir = out.join("checkpoint");
    let unreadable = |name: &str, error: RecordError| UnreadableCheckpoint {
        epoch,
        file: dir.join(format!("{name}-{epoch}.bpk")),
        reason: error.to_string(),
    };
    ModuleRecord::load(dir.join(format!("model-{epoch}.bpk")))
        .map_err(|e| unreadable("model", e))?;
    OptimizerRecord::load(dir.join(format!("optim-{epoch}.bpk")))
        .map_err(|e| unreadable("optim", e))?;
    LrSchedulerRecord::load(dir.join(format!("scheduler-{epoch}.bpk")))
        .map_err(|e| unreadable("scheduler", e))?;
    Ok(())
}

fn entries_list(out: &Path) -> Vec<String> {
    std::fs::read_dir(out.join("checkpoint"))
        .map(|dir| {
            dir.filter_map(|e| e.ok())
                .filter_map(|e| e.file_name().into_string().ok())
                .collect()
        })
        .unwrap_or_default()
}

fn entries_named(names: &[String], prefix: &str) -> Vec<usize> {
    names
        .iter()
        .filter_map(|name| {
            name.strip_prefix(prefix)?
                .strip_suffix(".bpk")?
                .parse()
                .ok()
        })
        .collect()
}

/// The checkpoint `--resume` continues from: the latest that reads back, saying which later
/// ones were passed over and why; an error naming every record when none reads back.
fn readable_checkpoint_to_resume(out: &Path) -> Result<Option<usize>, TrainError> {
    match latest_readable_checkpoint(out) {
        Ok((epoch, passed_over)) => {
            for problem in &passed_over {
                eprintln!(
                    "warning: checkpoint {} does not read back ({problem}); resuming from an earlier one",
                    problem.epoch
                );
            }
            Ok(epoch)
        }
        Err(unreadable) => Err(TrainError::Resume {
            path: out.to_path_buf(),
            message: format!(
                "no checkpoint reads back, so there is nothing to resume from: {}; remove the checkpoint directory to start over",
                unreadable
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join("; ")
            ),
        }),
    }
}

/// A resumed run must use the recipe it started with; only the step budget may grow.
fn check_resumed_recipe(
    saved: &PretrainConfig,
    config: &PretrainConfig,
    path: &Path,
) -> Result<(), TrainError> {
    let table = |recipe: &PretrainConfig| {
        toml::Value::try_from(recipe).map_err(|e| TrainError::Invalid(e.to_string()))
    };
    let (mut before, mut now) = (table(saved)?, table(config)?);
    for value in [&mut before, &mut now] {
        if let Some(schedule) = value.get_mut("schedule").and_then(|s| s.as_table_mut()) {
            schedule.remove("steps");
        }
    }
    let mut changed = Vec::new();
    differing_keys("", &before, &now, &mut changed);
    if !changed.is_empty() {
        return Err(TrainError::Resume {
            path: path.to_path_buf(),
            message: format!(
                "the recipe differs from the run being resumed in {}; only schedule.steps may change (to continue longer)",
                changed.join(", ")
            ),
        });
    }
    if config.schedule.steps < saved.schedule.steps {
        return Err(TrainError::Resume {
            path: path.to_path_buf(),
            message: format!(
                "schedule.steps may only grow on --resume ({} before, {} now)",
                saved.schedule.steps, config.schedule.steps
            ),
        });
    }
    Ok(())
}

/// Dotted keys whose values differ between two TOML values.
fn differing_keys(prefix: &str, a: &toml::Value, b: &toml::Value, out: &mut Vec<String>) {
    match (a.as_table(), b.as_table()) {
        (Some(a), Some(b)) => {
            let keys: std::collections::BTreeSet<&String> = a.keys().chain(b.keys()).collect();
            for key in keys {
                let name = if prefix.is_empty() {
                    key.clone()
                } else {
                    format!("{prefix}.{key}")
                };
                match (a.get(key), b.get(key)) {
                    (Some(x), Some(y)) => differing_keys(&name, x, y, out),
                    _ => out.push(name),
                }
            }
        }
        _ if a != b => out.push(prefix.to_string()),
        _ => {}
    }
}

/// The tokenizer `config`'s architecture is pretrained with (its default vocabulary, rare
/// residues as its authors had them), checked against the model's vocabulary size.
pub fn pretraining_tokenizer(config: &ModelConfig) -> Result<Tokenizer, TrainError> {
    let vocabulary = config.default_vocabulary();
    let vocab_size = config.vocab_size();
    if vocab_size != vocabulary.len() {
        return Err(TrainError::Invalid(format!(
            "model.vocab_size is {vocab_size} but {} is pretrained with the {} vocabulary of {} tokens; set model.vocab_size = {}",
            config.architecture(),
            vocabulary.name(),
            vocabulary.len(),
            vocabulary.len()
        )));
    }
    let rare = if config.keeps_rare_residues() {
        RareResidues::Keep
    } else {
        RareResidues::MapToX
    };
    // Training data is checked, not silently mapped: a letter the vocabulary lacks is an error.
    Ok(Tokenizer::new(vocabulary)
        .with_rare_residues(rare)
        .with_unknown_residues(UnknownResidues::Reject))
}

fn load_store(
    path: &Path,
    tokenizer: &Tokenizer,
    what: &str,
) -> Result<Arc<SequenceStore>, TrainError> {
    let start = Instant::now();
    let store = SequenceStore::from_fasta(path, tokenizer)?;
    eprintln!(
        "{what}: {} sequences, {} residues from {} ({:.1}s)",
        store.len(),
        store.total_residues(),
        path.display(),
        start.elapsed().as_secs_f64()
    );
    Ok(Arc::new(store))
}

/// What every objective shares: the checked run directory, the data and the training device.
struct Prepared {
    checkpoint: Option<usize>,
    tokenizer: Tokenizer,
    train_store: Arc<SequenceStore>,
    valid_store: Arc<SequenceStore>,
    train_sampled: IntervalDraws,
    valid_data: Arc<BatchedSequences>,
    train_device: Device,
}

fn prepare(run: &PretrainRun) -> Result<Prepared, TrainError> {
    let config = &run.config;
    config.validate()?;
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| TrainError::Io { path, source }
    };
    std::fs::create_dir_all(&run.out).map_err(io(&run.out))?;

    let resume_from = if run.resume {
        readable_checkpoint_to_resume(&run.out)?
    } else {
        latest_checkpoint(&run.out)
    };
    let checkpoint = match (run.resume, resume_from) {
        (true, Some(epoch)) => {
            eprintln!(
                "resuming from checkpoint {epoch} (step {})",
                epoch * config.schedule.checkpoint_every
            );
            Some(epoch)
        }
        (true, None) => {
            return Err(TrainError::Resume {
                path: run.out.clone(),
                message: "--resume given but there is no complete checkpoint here".into(),
            });
        }
        (false, Some(_)) => {
            return Err(TrainError::Resume {
                path: run.out.clone(),
                message: "already holds checkpoints of a run; pass --resume to continue it or choose another directory".into(),
            });
        }
        (false, None) => None,
    };
    let recipe_path = run.out.join("config.toml");
    if let Some(epoch) = checkpoint {
        let metrics = run.out.join("metrics.jsonl");
        forget_metrics_after(&metrics, epoch * config.schedule.checkpoint_every)
            .map_err(io(&metrics))?;
        let saved = PretrainConfig::from_toml_file(&recipe_path)?;
        check_resumed_recipe(&saved, config, &recipe_path)?;
        if saved.schedule.steps != config.schedule.steps {
            // The record keeps both: config.toml gets the new budget, this line the change.
            let log = run.out.join("resumes.jsonl");
            let line = serde_json::json!({
                "resumed_at_step": epoch * config.schedule.checkpoint_every,
                "steps_before": saved.schedule.steps,
                "steps": config.schedule.steps,
            });
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&log)
                .map_err(io(&log))?;
            std::io::Write::write_all(&mut file, format!("{line}\n").as_bytes())
                .map_err(io(&log))?;
        }
    }
    let recipe = toml::to_string_pretty(config).map_err(|e| TrainError::Invalid(e.to_string()))?;
    std::fs::write(&recipe_path, recipe).map_err(io(&recipe_path))?;

    let tokenizer = pretraining_tokenizer(&config.model)?;
    let train_store = load_store(&run.train, &tokenizer, "train")?;
    let valid_store = load_store(&run.valid, &tokenizer, "valid")?;
    let planner = config.planner();
    let seed = config.data.seed;
    let train_data = BatchedSequences::new(train_store.clone(), &planner, CropMode::Random, seed)?;
    let valid_data = BatchedSequences::new(
        valid_store.clone(),
        &planner,
        CropMode::Start,
        seed ^ 0x5eed,
    )?;
    for device in run.devices() {
        config.optimizer.precision.check(&device)?;
    }
    if run.strategy == DataParallel::Ddp {
        let lacking: Vec<String> = run
            .devices()
            .iter()
            .filter(|d| !prottrans_backend::supports_collectives(d))
            .map(|d| format!("{d:?}"))
            .collect();
        if !lacking.is_empty() {
            return Err(TrainError::NoCollectives {
                devices: lacking.join(", "),
            });
        }
    }
    let steps_per_epoch = config.schedule.checkpoint_every;
    let items_per_epoch = steps_per_epoch * run.batches_per_step();
    eprintln!(
        "batches: {} train (sampled {} per checkpoint interval), {} valid; {} epochs of {} steps",
        train_data.len(),
        items_per_epoch,
        valid_data.len(),
        config.num_epochs(),
        steps_per_epoch
    );
    let train_sampled = IntervalDraws::new(train_data, items_per_epoch, seed);
    // Parameters must be created on an autodiff device to be trained.
    let train_device = if run.device.is_autodiff() {
        run.device.clone()
    } else {
        run.device.clone().autodiff()
    };
    train_device.seed(seed);
    Ok(Prepared {
        checkpoint,
        tokenizer,
        train_store,
        valid_store,
        train_sampled,
        valid_data: Arc::new(valid_data),
        train_device,
    })
}

/// The training loader (planned batches drawn with replacement, per checkpoint interval from
/// `first` on, `workers` threads) and the validation loader, each item one planned batch.
#[allow(clippy::type_complexity)]
fn loaders<B, O>(
    batcher: &B,
    train: IntervalDraws,
    first: usize,
    valid: Arc<BatchedSequences>,
    workers: usize,
) -> (Arc<dyn DataLoader<O>>, Arc<dyn DataLoader<O>>)
where
    B: Batcher<ResidueBatch, O> + Clone + 'static,
    O: Send + Clone + std::fmt::Debug + 'static,
{
    let handle = train.handle();
    let train_loader = DataLoaderBuilder::new(batcher.clone())
        .batch_size(1)
        .num_workers(workers.max(1))
        .build(train);
    let train_loader = Arc::new(EpochLoader::new(train_loader, handle, first));
    let valid_loader = DataLoaderBuilder::new(batcher.clone())
        .batch_size(1)
        .num_workers(1)
        .build(valid);
    (train_loader, valid_loader)
}

/// Runs `training` with what every objective shares (checkpoints, length, progress,
/// accumulation, resume) and returns the trained model.
fn train<M: LearnerModel>(
    training: SupervisedTraining<M>,
    run: &PretrainRun,
    checkpoint: Option<usize>,
    model: M,
) -> Result<M, TrainError> {
    let config = &run.config;
    let accumulation = config.optimizer.grad_accumulation;
    let metrics = run.out.join("metrics.jsonl");
    let renderer = ProgressRenderer::new(
        &metrics,
        config.schedule.checkpoint_every,
        run.batches_per_step(),
    )
    .map_err(|source| TrainError::Io {
        path: metrics,
        source,
    })?;
    let (renderer, loss_watch) = renderer.stopping_on_non_finite_loss(training.interrupter());
    let mut training = training;
    if run.strategy == DataParallel::Ddp {
        // Summed, not averaged: the step settings already divide each device's loss by the
        // number of batches in a step, as they do for the gathering strategy.
        let reduce = DistributedConfig {
            all_reduce_op: ReduceOperation::Sum,
        };
        training =
            training.with_training_strategy(ExecutionStrategy::ddp(run.devices(), reduce).into());
    } else if !run.extra_devices.is_empty() {
        training = training.with_training_strategy(
            ExecutionStrategy::multi(run.devices(), MultiDeviceOptim::OptimMainDevice).into(),
        );
    }
    let mut training = training
        .with_default_checkpointers()
        .num_epochs(config.num_epochs())
        .renderer(Box::new(renderer));
    if accumulation > 1 {
        training = training.grads_accumulation(accumulation);
    }
    if let Some(epoch) = checkpoint {
        training = training.checkpoint(epoch);
    }
    let result = training.launch(Learner::new(model, config.optimizer(), config.scheduler()?));
    if let Some(loss) = loss_watch.tripped() {
        let kept = match latest_checkpoint(&run.out) {
            Some(epoch) => format!(
                "the last checkpoint before it, from step {}, is kept in {}",
                epoch * config.schedule.checkpoint_every,
                run.out.join("checkpoint").display()
            ),
            None => "no checkpoint had been written yet".to_string(),
        };
        return Err(TrainError::NonFiniteLoss {
            path: run.out.clone(),
            metric: loss.metric.to_lowercase(),
            value: loss.value,
            step: loss.step,
            kept,
        });
    }
    match result.error {
        Some(error) => Err(TrainError::Training(error.to_string())),
        None => Ok(result.model),
    }
}

fn write_report(run: &PretrainRun, report: &PretrainReport) -> Result<(), TrainError> {
    let path = run.out.join("report.json");
    let json =
        serde_json::to_string_pretty(report).map_err(|e| TrainError::Invalid(e.to_string()))?;
    std::fs::write(&path, json).map_err(|source| TrainError::Io { path, source })
}

/// Runs (or resumes) a pretraining job with the objective of the recipe's architecture.
pub fn pretrain(run: PretrainRun) -> Result<PretrainReport, TrainError> {
    let started = Instant::now();
    let prepared = prepare(&run)?;
    let report = run.config.model.pretraining(ByObjective(Runner {
        run: &run,
        prepared,
        started,
    }))?;
    write_report(&run, &report)?;
    Ok(report)
}

/// The run of one objective.
struct Runner<'a> {
    run: &'a PretrainRun,
    prepared: Prepared,
    started: Instant,
}

impl ObjectiveVisitor for Runner<'_> {
    type Output = Result<PretrainReport, TrainError>;

    fn visit<O>(self, config: &O::Config) -> Self::Output
    where
        O: PretrainingObjective,
        <O as TrainStep>::Input: Send + Clone + Debug + 'static,
    {
        let Runner {
            run,
            prepared,
            started,
        } = self;
        let recipe = &run.config;
        let settings = recipe.objective_settings();
        let batcher = O::batcher(config, &settings, &prepared.tokenizer)?;
        let (train_loader, valid_loader) = loaders(
            &batcher,
            prepared.train_sampled,
            prepared.checkpoint.unwrap_or(0),
            prepared.valid_data.clone(),
            recipe.data.num_workers,
        );
        let model = O::init(
            config,
            &settings,
            run.step_settings(),
            &prepared.train_device,
        );
        eprintln!(
            "model: {}, {} parameters{}, on {}",
            config.describe(),
            model.num_params(),
            O::describe(&settings),
            run.placement()
        );
        let training = O::metrics(SupervisedTraining::new(
            &run.out,
            train_loader,
            valid_loader,
        ));
        let trained = train(training, run, prepared.checkpoint, model)?;
        let model_dir = run.out.join("model");
        trained.save(config, &model_dir, &prepared.tokenizer)?;

        let device = trained
            .devices()
            .into_iter()
            .next()
            .unwrap_or_else(|| run.device.clone());
        let baseline =
            UnigramBaseline::from_store(&prepared.train_store, prepared.tokenizer.vocabulary());
        let scores = trained.evaluate(
            &batcher,
            &baseline,
            &prepared.valid_data,
            &device,
            &settings,
        )?;
        Ok(PretrainReport {
            objective: O::OBJECTIVE.name().into(),
            steps: recipe.schedule.steps,
            train_sequences: prepared.train_store.len(),
            valid_sequences: prepared.valid_store.len(),
            valid_masked_residues: scores.model.predicted,
            valid_loss: scores.model.loss(),
            valid_accuracy: scores.model.accuracy(),
            reconstruction: scores.reconstruction,
            discriminator: scores.discriminator,
            valid_perplexity: scores.model.perplexity(),
            unigram_loss: scores.unigram_loss,
            unigram_accuracy: scores.unigram_accuracy,
            unigram_entropy: baseline.entropy,
            seconds: started.elapsed().as_secs_f64(),
            model_dir,
        })
    }
}

/// Writes a randomly initialised model of `recipe`'s shape to `out`, as `pretrain` would save
/// it before its first step (vocabulary included), and returns its shape in words.
pub fn init_model(
    recipe: &PretrainConfig,
    device: &Device,
    out: &Path,
) -> Result<String, TrainError> {
    recipe.validate()?;
    let tokenizer = pretraining_tokenizer(&recipe.model)?;
    recipe.model.pretraining(ByObjective(InitModel {
        recipe,
        device,
        out,
        tokenizer: &tokenizer,
    }))?;
    Ok(recipe.model.shape())
}

struct InitModel<'a> {
    recipe: &'a PretrainConfig,
    device: &'a Device,
    out: &'a Path,
    tokenizer: &'a Tokenizer,
}

impl ObjectiveVisitor for InitModel<'_> {
    type Output = Result<(), TrainError>;

    fn visit<O>(self, config: &O::Config) -> Self::Output
    where
        O: PretrainingObjective,
        <O as TrainStep>::Input: Send + Clone + Debug + 'static,
    {
        O::init(
            config,
            &self.recipe.objective_settings(),
            StepSettings::default(),
            self.device,
        )
        .save(config, self.out, self.tokenizer)
    }
}
