//! Training a head with burn-train: features in memory, padded batches, the weighted
//! multi-task loss over known labels, per-task metrics, early stopping on validation loss,
//! checkpoints every epoch and resume. The kept weights are those of the best epoch.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use burn::data::dataloader::DataLoaderBuilder;
use burn::data::dataset::InMemDataset;
use burn::lr_scheduler::module_lr_scheduler::ModuleLrScheduler;
use burn::module::{Module, ParamGroup};
use burn::optim::AdamWConfig;
use burn::store::{BurnpackStore, ModuleSnapshot};
use burn::tensor::activation::log_softmax;
use burn::tensor::{Device, Int, Tensor};
use burn::train::checkpoint::{
    ComposedCheckpointingStrategy, KeepLastNCheckpoints, MetricCheckpointingStrategy,
};
use burn::train::metric::LossMetric;
use burn::train::metric::store::{Aggregate, Direction, Split};
use burn::train::{
    InferenceStep, Learner, LearnerModel, MetricEarlyStoppingStrategy, StoppingCondition,
    SupervisedTraining, TrainOutput, TrainStep,
};
use ndarray::Array2;
use prottrans_train::epochs::{EpochLoader, EpochShuffled};
use prottrans_train::renderer::{ProgressRenderer, forget_metrics_after};
use serde::{Deserialize, Serialize};

use crate::batches::{Example, HeadBatch, HeadBatcher};
use crate::datasets::LabelledSet;
use crate::error::TransferError;
use crate::features::{FeatureSpec, ProteinRef, compute_features};
use crate::heads::{Pooling, ProteinHead, ProteinHeadConfig, ResidueHead, ResidueHeadConfig};
use crate::labels::Task;
use crate::metrics::{HeadOutput, TaskMetric, TaskMetricKind, TaskOutput};
use crate::saved::{Head, SavedHead};

/// How a head is trained.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HeadOptions {
    /// Upper bound on epochs.
    pub epochs: usize,
    /// Stop after this many epochs without a lower validation loss.
    pub patience: usize,
    /// Proteins per batch.
    pub batch_size: usize,
    /// Adam(W) learning rate.
    pub learning_rate: f64,
    /// AdamW weight decay.
    pub weight_decay: f64,
    /// Loss weight of each label set, in output order (empty: all 1).
    pub loss_weights: Vec<f64>,
    /// Pooling of the per-protein head.
    pub pooling: Pooling,
    /// Train the 2-class disorder classifier too (needs disorder labels).
    pub disorder: bool,
    /// Dropout of the heads.
    pub dropout: f64,
    /// Seed of initialisation and shuffling.
    pub seed: u64,
}

impl Default for HeadOptions {
    fn default() -> Self {
        Self {
            epochs: 40,
            patience: 5,
            batch_size: 16,
            learning_rate: 1e-3,
            weight_decay: 0.0,
            loss_weights: Vec::new(),
            pooling: Pooling::Mean,
            disorder: false,
            dropout: 0.25,
            seed: 42,
        }
    }
}

/// A training run.
#[derive(Debug, Clone)]
pub struct HeadTraining {
    /// Training proteins with labels.
    pub train: LabelledSet,
    /// Validation proteins with labels (early stopping, kept epoch).
    pub valid: LabelledSet,
    /// Where the features come from.
    pub features: FeatureSpec,
    /// Precomputed embeddings of the training proteins (for [`FeatureSpec::Embeddings`]).
    pub train_embeddings: Option<PathBuf>,
    /// Precomputed embeddings of the validation proteins.
    pub valid_embeddings: Option<PathBuf>,
    /// Proteins longer than this were left out of both sets (recorded in `head.json`).
    pub max_length: Option<usize>,
    /// Options.
    pub options: HeadOptions,
    /// Output directory: `head.json`, `head.safetensors`, `checkpoint/`, `metrics.jsonl`,
    /// `curves.png`/`.svg`, `training.json`.
    pub out: PathBuf,
    /// Where to train.
    pub device: Device,
    /// Continue an interrupted run in `out`.
    pub resume: bool,
}

/// What a finished run reports.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrainingSummary {
    /// Epochs run (early stopping may end before `epochs`).
    pub epochs_run: usize,
    /// Epoch kept.
    pub best_epoch: usize,
    /// Validation loss of the kept epoch.
    pub best_valid_loss: f64,
    /// Training proteins and residues.
    pub train_proteins: usize,
    /// Validation proteins.
    pub valid_proteins: usize,
    /// Feature width.
    pub input_size: usize,
    /// Seconds for the whole run, features included.
    pub seconds: f64,
    /// The head directory.
    pub head_dir: PathBuf,
}

/// Cross-entropy over the rows whose target is known (>= 0), averaged over them.
///
/// # Shapes
/// - `logits`: `[N, k]`, `targets`: `[N]` -> `[1]`
pub fn masked_cross_entropy(logits: Tensor<2>, targets: Tensor<1, Int>) -> Tensor<1> {
    let [n, _] = logits.dims();
    let known = targets.clone().greater_equal_elem(0).float();
    let safe = targets.clamp_min(0).reshape([n, 1]);
    let nll = log_softmax(logits, 1).gather(1, safe).reshape([n]).neg() * known.clone();
    nll.sum() / known.sum().clamp_min(1.0)
}

fn weighted_loss(tasks: &[TaskOutput], weights: &[f64]) -> Tensor<1> {
    let mut total: Option<Tensor<1>> = None;
    for (task, &weight) in tasks.iter().zip(weights) {
        if weight == 0.0 {
            continue;
        }
        let loss = masked_cross_entropy(task.logits.clone(), task.targets.clone()) * weight;
        total = Some(match total {
            Some(t) => t + loss,
            None => loss,
        });
    }
    total.unwrap_or_else(|| tasks[0].logits.clone().sum() * 0.0)
}

/// The per-residue head with its loss weights, as burn-train trains it.
#[derive(Module, Debug)]
pub struct ResidueModel {
    /// The head.
    pub head: ResidueHead,
    #[module(skip)]
    loss_weights: Vec<f64>,
}

/// A head that computes its outputs and weighted loss from a [`HeadBatch`]; the fine-tuning
/// model feeds it an encoder's hidden states.
pub trait HeadModel {
    /// Logits, targets and loss of a batch.
    fn head_output(&self, batch: HeadBatch) -> HeadOutput;
}

impl HeadModel for ResidueModel {
    fn head_output(&self, batch: HeadBatch) -> HeadOutput {
        self.forward_output(batch)
    }
}

impl HeadModel for ProteinModel {
    fn head_output(&self, batch: HeadBatch) -> HeadOutput {
        self.forward_output(batch)
    }
}

impl ResidueModel {
    /// The head, trained with these loss weights (one per label set).
    pub fn new(head: ResidueHead, loss_weights: Vec<f64>) -> Self {
        Self { head, loss_weights }
    }

    /// Logits, targets and loss of a batch.
    pub fn forward_output(&self, batch: HeadBatch) -> HeadOutput {
        let [b, l, _] = batch.features.dims();
        let tasks: Vec<TaskOutput> = self
            .head
            .forward(batch.features, batch.mask)
            .into_iter()
            .zip(batch.targets)
            .map(|(logits, targets)| {
                let k = logits.dims()[2];
                TaskOutput {
                    logits: logits.reshape([b * l, k]),
                    targets,
                }
            })
            .collect();
        HeadOutput {
            loss: weighted_loss(&tasks, &self.loss_weights),
            tasks,
        }
    }
}

/// The per-protein head with its loss weights, as burn-train trains it.
#[derive(Module, Debug)]
pub struct ProteinModel {
    /// The head.
    pub head: ProteinHead,
    #[module(skip)]
    loss_weights: Vec<f64>,
}

impl ProteinModel {
    /// The head, trained with these loss weights (one per label set).
    pub fn new(head: ProteinHead, loss_weights: Vec<f64>) -> Self {
        Self { head, loss_weights }
    }

    /// Logits, targets and loss of a batch.
    pub fn forward_output(&self, batch: HeadBatch) -> HeadOutput {
        let tasks: Vec<TaskOutput> = self
            .head
            .forward(batch.features, batch.mask)
            .into_iter()
            .zip(batch.targets)
            .map(|(logits, targets)| TaskOutput { logits, targets })
            .collect();
        HeadOutput {
            loss: weighted_loss(&tasks, &self.loss_weights),
            tasks,
        }
    }
}

macro_rules! impl_steps {
    ($model:ty) => {
        impl TrainStep for $model {
            type Input = HeadBatch;
            type Output = HeadOutput;

            fn step(&self, batch: HeadBatch) -> TrainOutput<HeadOutput> {
                let output = self.forward_output(batch);
                let grads = output.loss.backward();
                TrainOutput::new(self, grads, output)
            }
        }

        impl InferenceStep for $model {
            type Input = HeadBatch;
            type Output = HeadOutput;

            fn step(&self, batch: HeadBatch) -> HeadOutput {
                self.forward_output(batch)
            }
        }
    };
}
impl_steps!(ResidueModel);
impl_steps!(ProteinModel);

/// Features of a set's proteins, shared.
pub fn set_features(
    set: &LabelledSet,
    spec: &FeatureSpec,
    embeddings: Option<&Path>,
    device: &Device,
) -> Result<Vec<Arc<Array2<f32>>>, TransferError> {
    let proteins: Vec<ProteinRef<'_>> = set
        .records
        .iter()
        .map(|r| ProteinRef {
            id: &r.id,
            sequence: &r.sequence,
        })
        .collect();
    eprintln!(
        "features of {} ({} proteins): {}",
        set.path.display(),
        proteins.len(),
        spec.describe()
    );
    Ok(compute_features(spec, &proteins, embeddings, device)?
        .into_iter()
        .map(Arc::new)
        .collect())
}

fn examples(set: &LabelledSet, features: &[Arc<Array2<f32>>], tasks: usize) -> Vec<Example> {
    set.records
        .iter()
        .zip(features)
        .map(|(record, features)| Example {
            features: features.clone(),
            labels: record.labels[..tasks].to_vec(),
        })
        .collect()
}

/// Trains a head; see [`HeadTraining`].
pub fn train_head(run: HeadTraining) -> Result<TrainingSummary, TransferError> {
    let started = Instant::now();
    let options = &run.options;
    let task = run.train.task;
    if options.batch_size == 0 {
        return Err(TransferError::Invalid(
            "the batch size must be at least 1".into(),
        ));
    }
    let label_sets = task.label_sets(options.disorder);
    let tasks = label_sets.len();
    let weights = check_run(
        &run.train,
        &run.valid,
        &Checked {
            epochs: options.epochs,
            learning_rate: options.learning_rate,
            weight_decay: options.weight_decay,
            dropout: options.dropout,
            loss_weights: &options.loss_weights,
            disorder: options.disorder,
        },
    )?;

    let latest = start_or_resume(&run.out, run.resume, options, |saved| HeadOptions {
        epochs: options.epochs,
        ..saved.clone()
    })?;

    let train_features = set_features(
        &run.train,
        &run.features,
        run.train_embeddings.as_deref(),
        &run.device,
    )?;
    let valid_features = set_features(
        &run.valid,
        &run.features,
        run.valid_embeddings.as_deref(),
        &run.device,
    )?;
    let input_size = train_features.first().map_or(0, |f| f.ncols());
    if let Some(bad) = valid_features.iter().find(|f| f.ncols() != input_size) {
        return Err(TransferError::Invalid(format!(
            "validation features have width {}, training features {input_size}",
            bad.ncols()
        )));
    }
    if task == Task::SecondaryStructure
        && let Some((record, _)) = run
            .train
            .records
            .iter()
            .zip(&train_features)
            .find(|(r, f)| f.nrows() != r.sequence.len())
    {
        return Err(TransferError::Invalid(format!(
            "secondary structure needs per-residue features, but '{}' has a single (per-protein) vector",
            record.id
        )));
    }

    let per_residue = task == Task::SecondaryStructure;
    let batcher = HeadBatcher { per_residue };
    let train_examples = examples(&run.train, &train_features, tasks);
    let valid_examples = examples(&run.valid, &valid_features, tasks);
    let steps_per_epoch = train_examples.len().div_ceil(options.batch_size);
    if let Some(epoch) = latest {
        // What the interrupted run logged after its checkpoint is logged again.
        let metrics = run.out.join("metrics.jsonl");
        forget_metrics_after(&metrics, epoch * steps_per_epoch)
            .map_err(TransferError::io(&metrics))?;
    }
    // Shuffled per epoch from the seed and the epoch, so a resumed run sees the same order.
    let train_examples = EpochShuffled::new(train_examples, options.seed);
    let handle = train_examples.handle();
    let train_loader = DataLoaderBuilder::new(batcher)
        .batch_size(options.batch_size)
        .num_workers(1)
        .build(train_examples);
    let train_loader = Arc::new(EpochLoader::new(train_loader, handle, latest.unwrap_or(0)));
    let valid_loader = DataLoaderBuilder::new(batcher)
        .batch_size(options.batch_size)
        .num_workers(1)
        .build(InMemDataset::new(valid_examples));

    let train_device = if run.device.is_autodiff() {
        run.device.clone()
    } else {
        run.device.clone().autodiff()
    };
    train_device.seed(options.seed);
    let saved = SavedHead {
        format: 1,
        task,
        features: match &run.features {
            FeatureSpec::Embeddings { .. } => FeatureSpec::Embeddings { width: input_size },
            other => other.clone(),
        },
        input_size,
        pooling: options.pooling,
        disorder: options.disorder,
        hidden_size: 32,
        kernel_size: 7,
        dropout: options.dropout,
        label_sets: label_sets.iter().map(|s| s.name.to_string()).collect(),
        training_class_counts: (0..tasks).map(|i| run.train.class_counts(i)).collect(),
        max_length: run.max_length,
        best_epoch: 0,
        epochs_run: 0,
        train_file: run.train.path.clone(),
        valid_file: run.valid.path.clone(),
    };
    eprintln!(
        "head: {task}, input width {input_size}, {} training and {} validation proteins, {} steps per epoch",
        run.train.records.len(),
        run.valid.records.len(),
        steps_per_epoch
    );

    let fit = Fit {
        settings: FitSettings {
            out: &run.out,
            epochs: options.epochs,
            patience: options.patience,
            learning_rate: options.learning_rate,
            head_learning_rate: None,
            weight_decay: options.weight_decay,
            accumulation: 1,
            // Progress counts examples: `batch_size` of them make a step.
            progress_unit: options.batch_size,
        },
        train_loader,
        valid_loader,
        steps_per_epoch,
        label_sets: &label_sets,
        valid_class_counts: run.valid.class_counts(0),
        resume_from: latest,
    };
    let (head, epochs_run, best_epoch, best_valid_loss) = match task {
        Task::SecondaryStructure => {
            let head = ResidueHeadConfig::new(input_size)
                .with_dropout(options.dropout)
                .with_disorder(options.disorder)
                .init(&train_device);
            let (model, epochs, best, loss) = fit.run(ResidueModel {
                head,
                loss_weights: weights.clone(),
            })?;
            (
                Head::Residue(Box::new(model.head.valid())),
                epochs,
                best,
                loss,
            )
        }
        Task::Localization => {
            let head = ProteinHeadConfig::new(input_size)
                .with_pooling(options.pooling)
                .with_dropout(options.dropout)
                .init(&train_device);
            let (model, epochs, best, loss) = fit.run(ProteinModel {
                head,
                loss_weights: weights.clone(),
            })?;
            (
                Head::Protein(Box::new(model.head.valid())),
                epochs,
                best,
                loss,
            )
        }
    };
    let saved = SavedHead {
        best_epoch,
        epochs_run,
        ..saved
    };
    head.save(&saved, &run.out)?;
    if let Err(e) =
        crate::plots::training_curves(&run.out.join("metrics.jsonl"), &run.out.join("curves"))
    {
        eprintln!("warning: training curves not drawn: {e}");
    }
    Ok(TrainingSummary {
        epochs_run,
        best_epoch,
        best_valid_loss,
        train_proteins: run.train.records.len(),
        valid_proteins: run.valid.records.len(),
        input_size,
        seconds: started.elapsed().as_secs_f64(),
        head_dir: run.out.clone(),
    })
}

/// Options every training of a head checks the same way.
pub(crate) struct Checked<'a> {
    pub epochs: usize,
    pub learning_rate: f64,
    pub weight_decay: f64,
    pub dropout: f64,
    pub loss_weights: &'a [f64],
    pub disorder: bool,
}

/// Checks the sets and options of a run; returns the loss weight of each label set.
pub(crate) fn check_run(
    train: &LabelledSet,
    valid: &LabelledSet,
    options: &Checked<'_>,
) -> Result<Vec<f64>, TransferError> {
    let task = train.task;
    if valid.task != task {
        return Err(TransferError::Invalid(
            "training and validation sets are of different tasks".into(),
        ));
    }
    if options.epochs == 0 {
        return Err(TransferError::Invalid("epochs must be at least 1".into()));
    }
    if !(options.learning_rate.is_finite() && options.learning_rate > 0.0) {
        return Err(TransferError::Invalid(format!(
            "the learning rate must be a positive number, got {}",
            options.learning_rate
        )));
    }
    crate::heads::check_dropout(options.dropout).map_err(TransferError::Invalid)?;
    if !(options.weight_decay.is_finite() && options.weight_decay >= 0.0) {
        return Err(TransferError::Invalid(format!(
            "the weight decay must be zero or positive, got {}",
            options.weight_decay
        )));
    }
    if train.records.is_empty() || valid.records.is_empty() {
        return Err(TransferError::Invalid(format!(
            "{} has no proteins",
            if train.records.is_empty() {
                train.path.display()
            } else {
                valid.path.display()
            }
        )));
    }
    let label_sets = task.label_sets(options.disorder);
    let tasks = label_sets.len();
    let weights = if options.loss_weights.is_empty() {
        vec![1.0; tasks]
    } else {
        options.loss_weights.to_vec()
    };
    if weights.len() != tasks || weights.iter().any(|w| !(w.is_finite() && *w >= 0.0)) {
        return Err(TransferError::Invalid(format!(
            "{} loss weights given for {tasks} outputs ({}); weights must be finite and >= 0",
            weights.len(),
            label_sets
                .iter()
                .map(|s| s.name)
                .collect::<Vec<_>>()
                .join(", ")
        )));
    }
    for (index, set) in label_sets.iter().enumerate() {
        if weights[index] > 0.0 && !train.has_labels(index) {
            return Err(TransferError::Invalid(format!(
                "{} has no {} labels; give that output weight 0 (e.g. --loss-weights) or use a set that has them",
                train.path.display(),
                set.name
            )));
        }
    }
    Ok(weights)
}

/// Prepares a training directory: a fresh run refuses one that holds checkpoints, `resume`
/// finds the latest readable checkpoint (returned) and checks that `options` are those of the
/// run being continued (after `with_these_epochs`, which takes the new epoch count over). The
/// options are written to `training.json`.
pub(crate) fn start_or_resume<O>(
    out: &Path,
    resume: bool,
    options: &O,
    with_these_epochs: impl Fn(&O) -> O,
) -> Result<Option<usize>, TransferError>
where
    O: Serialize + serde::de::DeserializeOwned + PartialEq,
{
    std::fs::create_dir_all(out).map_err(TransferError::io(out))?;
    let latest = if resume {
        match prottrans_train::pretrain::latest_readable_checkpoint(out) {
            Ok((epoch, passed_over)) => {
                for problem in &passed_over {
                    eprintln!(
                        "warning: the checkpoint of epoch {} does not read back ({problem}); resuming from an earlier one",
                        problem.epoch
                    );
                }
                epoch
            }
            Err(unreadable) => {
                return Err(TransferError::Invalid(format!(
                    "--resume: no checkpoint in {} reads back: {}; remove its checkpoint directory to start over",
                    out.display(),
                    unreadable
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("; ")
                )));
            }
        }
    } else {
        prottrans_train::pretrain::latest_checkpoint(out)
    };
    let options_path = out.join("training.json");
    match (resume, latest) {
        (false, Some(_)) => {
            return Err(TransferError::Invalid(format!(
                "{} already holds checkpoints of a run; pass --resume to continue it or choose another directory",
                out.display()
            )));
        }
        (true, None) => {
            return Err(TransferError::Invalid(format!(
                "--resume: no complete checkpoint in {}",
                out.display()
            )));
        }
        (true, Some(_)) => {
            let text =
                std::fs::read_to_string(&options_path).map_err(TransferError::io(&options_path))?;
            let saved: O = serde_json::from_str(&text)
                .map_err(|e| TransferError::Invalid(format!("{}: {e}", options_path.display())))?;
            // More epochs may be asked for; anything else must match the run being continued.
            if with_these_epochs(&saved) != *options {
                return Err(TransferError::Invalid(format!(
                    "--resume: the options differ from the run in {} (recorded in {}); only --epochs may change",
                    out.display(),
                    options_path.display()
                )));
            }
        }
        (false, None) => {
            // A fresh run: metrics of an earlier, checkpoint-less attempt would confuse the curves.
            let _ = std::fs::remove_file(out.join("metrics.jsonl"));
        }
    }
    let json =
        serde_json::to_string_pretty(options).map_err(|e| TransferError::Invalid(e.to_string()))?;
    std::fs::write(&options_path, json).map_err(TransferError::io(&options_path))?;
    Ok(latest)
}

/// How burn-train runs a head (or an encoder with its head).
pub(crate) struct FitSettings<'a> {
    pub out: &'a Path,
    pub epochs: usize,
    pub patience: usize,
    pub learning_rate: f64,
    /// Learning rate of the parameters under `head.` instead (a fine-tuned encoder's head).
    pub head_learning_rate: Option<f64>,
    pub weight_decay: f64,
    /// Batches whose gradients are summed before each optimiser step.
    pub accumulation: usize,
    /// What the progress bar counts per batch.
    pub progress_unit: usize,
}

pub(crate) struct Fit<'a, B> {
    pub settings: FitSettings<'a>,
    pub train_loader: Arc<dyn burn::data::dataloader::DataLoader<B>>,
    pub valid_loader: Arc<dyn burn::data::dataloader::DataLoader<B>>,
    pub steps_per_epoch: usize,
    pub label_sets: &'a [crate::labels::LabelSet],
    pub valid_class_counts: Vec<u64>,
    pub resume_from: Option<usize>,
}

impl<B: Send + 'static> Fit<'_, B> {
    /// Runs burn-train and returns the model of the best epoch, the epochs run, the best
    /// epoch and its validation loss.
    pub(crate) fn run<M>(self, model: M) -> Result<(M, usize, usize, f64), TransferError>
    where
        M: LearnerModel
            + TrainStep<Input = B, Output = HeadOutput>
            + InferenceStep<Input = B, Output = HeadOutput>,
    {
        let options = &self.settings;
        let out = options.out;
        let metrics_path = out.join("metrics.jsonl");
        let renderer =
            ProgressRenderer::new(&metrics_path, self.steps_per_epoch, options.progress_unit)
                .map_err(TransferError::io(&metrics_path))?;
        let loss = LossMetric::new();
        let mut training = SupervisedTraining::new(out, self.train_loader, self.valid_loader)
            .metric_train_numeric(LossMetric::new())
            .metric_valid_numeric(LossMetric::new());
        for (index, set) in self.label_sets.iter().enumerate() {
            training = training
                .metric_train_numeric(TaskMetric::new(set.metric, index, TaskMetricKind::Accuracy))
                .metric_valid_numeric(TaskMetric::new(set.metric, index, TaskMetricKind::Accuracy))
                .metric_valid_numeric(TaskMetric::new(
                    format!("MCC {}", set.name),
                    index,
                    TaskMetricKind::Mcc,
                ));
        }
        // Per-class recall of the first output (3-state structure, or location) on validation,
        // for the classes validation has examples of.
        if let Some(first) = self.label_sets.first() {
            for (class, name) in first.classes.iter().enumerate() {
                if self.valid_class_counts.get(class).copied().unwrap_or(0) == 0 {
                    continue;
                }
                training = training.metric_valid_numeric(TaskMetric::new(
                    // burn-train logs each metric to a file named after it.
                    format!("recall {}", name.replace('/', "-")),
                    0,
                    TaskMetricKind::Recall(class),
                ));
            }
        }
        let strategy = ComposedCheckpointingStrategy::builder()
            .add(KeepLastNCheckpoints::new(1))
            .add(MetricCheckpointingStrategy::new(
                &loss,
                Aggregate::Mean,
                Direction::Lowest,
                Split::Valid,
            ))
            .build();
        training = training
            .with_default_checkpointers()
            .with_checkpointing_strategy(strategy)
            .early_stopping(MetricEarlyStoppingStrategy::new(
                &loss,
                Aggregate::Mean,
                Direction::Lowest,
                Split::Valid,
                StoppingCondition::NoImprovementSince {
                    n_epochs: options.patience.max(1),
                },
            ))
            .num_epochs(options.epochs);
        if options.accumulation > 1 {
            training = training.grads_accumulation(options.accumulation);
        }
        let (renderer, loss_watch) = renderer.stopping_on_non_finite_loss(training.interrupter());
        training = training.renderer(Box::new(renderer));
        if let Some(epoch) = self.resume_from {
            eprintln!("resuming from the checkpoint of epoch {epoch}");
            training = training.checkpoint(epoch);
        }
        let learner = Learner::new(
            model,
            AdamWConfig::new()
                .with_weight_decay(options.weight_decay as f32)
                .init(),
            match options.head_learning_rate {
                Some(head) => ModuleLrScheduler::from(options.learning_rate).with_group(
                    ParamGroup::from_regex(r"^head\.").map_err(|e| {
                        TransferError::Invalid(format!("the head's parameter group: {e:?}"))
                    })?,
                    head,
                ),
                None => ModuleLrScheduler::from(options.learning_rate),
            },
        );
        let result = training.launch(learner);
        if let Some(loss) = loss_watch.tripped() {
            return Err(TransferError::Invalid(format!(
                "{}: the training {} was {} at step {}, so training stopped and no head was saved (the checkpoints of earlier epochs are kept); a lower --learning-rate usually avoids it",
                out.display(),
                loss.metric.to_lowercase(),
                loss.value,
                loss.step
            )));
        }
        if let Some(error) = result.error {
            return Err(TransferError::Training(error.to_string()));
        }
        let mut model = result.model;
        let losses = valid_losses(&metrics_path);
        let epochs_run = losses
            .iter()
            .map(|(e, _)| *e)
            .max()
            .unwrap_or(options.epochs);
        let (best_epoch, best_loss) = losses
            .iter()
            .copied()
            .min_by(|a, b| a.1.total_cmp(&b.1))
            .unwrap_or((epochs_run, f64::NAN));
        if best_epoch != epochs_run {
            let path = out
                .join("checkpoint")
                .join(format!("model-{best_epoch}.bpk"));
            let mut store = BurnpackStore::from_file(&path);
            model
                .load_from(&mut store)
                .map_err(|e| TransferError::Head {
                    path: path.clone(),
                    message: format!("best checkpoint unreadable: {e}"),
                })?;
            eprintln!(
                "kept epoch {best_epoch} (lowest validation loss {best_loss:.4}) of {epochs_run}"
            );
        }
        Ok((model, epochs_run, best_epoch, best_loss))
    }
}

/// `(epoch, validation loss)` from a run's `metrics.jsonl`; the last line of an epoch wins.
pub fn valid_losses(metrics: &Path) -> Vec<(usize, f64)> {
    let text = std::fs::read_to_string(metrics).unwrap_or_default();
    let mut by_epoch = std::collections::BTreeMap::new();
    for line in text.lines() {
        let Ok(value) = serde_json::from_str::<serde_json::Value>(line) else {
            continue;
        };
        if value["split"] == "valid"
            && let (Some(epoch), Some(loss)) = (value["epoch"].as_u64(), value["loss"].as_f64())
        {
            by_epoch.insert(epoch as usize, loss);
        }
    }
    by_epoch.into_iter().collect()
}
