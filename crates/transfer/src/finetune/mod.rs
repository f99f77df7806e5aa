//! Fine-tuning an encoder together with the paper's heads: LoRA adapters on chosen linear
//! layers (the rest frozen), or every weight ("full"). Proteins are tokenised as the
//! checkpoint's own tokenizer does, grouped by length into batches under a padded-token
//! budget, run through the encoder, and the residues' hidden states (special tokens and
//! padding dropped, as `prottrans embed` drops them) feed the head; the weighted multi-task
//! loss trains both through burn-train, with the head's metrics, early stopping, checkpoints
//! every epoch and resume.
//!
//! The run writes what other tools read: the head (`head.json` naming the model it reads, so
//! `evaluate` and `predict` run the fine-tuned encoder), the adapter in PEFT's layout
//! (`adapter/`, which `peft.PeftModel.from_pretrained` applies to the `transformers` model) and,
//! for full fine-tuning or with `merge`, the encoder as a checkpoint (`model/`).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use burn::data::dataloader::DataLoaderBuilder;
use burn::data::dataset::InMemDataset;
use burn::module::{Lora, Module, ModuleDisplay, ParamGroup};
use burn::store::ModuleSnapshot;
use burn::tensor::{Device, FloatDType, Tensor};
use prottrans_data::batching::BatchPlanner;
use prottrans_embed::Precision;
use prottrans_import::{Checkpoint, checkpoint_tokenizer};
use prottrans_models::{ArchitectureConfig, ConfigVisitor, Encoder, ProteinEncoder};
use prottrans_train::epochs::{EpochLoader, EpochShuffled};
use prottrans_train::precision::MixedPrecision;
use serde::{Deserialize, Serialize};

use crate::datasets::LabelledSet;
use crate::error::{TransferError, write_atomically};
use crate::heads::{Pooling, ProteinHeadConfig, ResidueHeadConfig};
use crate::labels::Task;
use crate::saved::{Head, SavedHead};
use crate::train::{
    Checked, Fit, FitSettings, HeadModel, ProteinModel, ResidueModel, check_run, start_or_resume,
};

mod batches;
mod lora;
mod model;
mod outputs;

pub use batches::{PlannedBatch, TokenBatch, TokenBatcher, TokenExample};
pub use lora::lora_layers;
pub use model::{Finetuned, count_parameters};

/// Directory of the adapter inside a fine-tuning run.
pub const ADAPTER_DIR: &str = "adapter";
/// Directory of the fine-tuned (or merged) checkpoint inside a fine-tuning run.
pub const MODEL_DIR: &str = "model";
/// The run's summary file.
pub const SUMMARY_FILE: &str = "finetune.json";

/// What is trained in the encoder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case", deny_unknown_fields)]
pub enum Method {
    /// LoRA adapters `W + alpha / rank * B A` on the chosen linear layers; every encoder
    /// weight stays frozen.
    Lora {
        /// Rank of each adapter.
        rank: usize,
        /// Scaling numerator.
        alpha: f64,
        /// Short names of the adapted layers (`q`, `k`, `v`, `o`, `ffn`); see
        /// [`ArchitectureConfig::LORA_TARGETS`].
        targets: Vec<String>,
    },
    /// Every encoder weight.
    Full,
}

impl Default for Method {
    fn default() -> Self {
        Self::Lora {
            rank: 4,
            alpha: 8.0,
            targets: ["q", "k", "v", "o"].map(String::from).to_vec(),
        }
    }
}

/// How a fine-tuning run trains.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct FinetuneOptions {
    /// LoRA or full fine-tuning.
    pub method: Method,
    /// Upper bound on epochs.
    pub epochs: usize,
    /// Stop after this many epochs without a lower validation loss.
    pub patience: usize,
    /// Padded tokens per batch (`proteins x longest framed protein`).
    pub max_tokens: usize,
    /// Proteins per batch at most.
    pub max_proteins: usize,
    /// Batches whose gradients are summed before each optimiser step.
    pub accumulation: usize,
    /// AdamW learning rate of the encoder (its adapters, for LoRA).
    pub learning_rate: f64,
    /// AdamW learning rate of the head, which starts from scratch.
    pub head_learning_rate: f64,
    /// AdamW weight decay.
    pub weight_decay: f64,
    /// Precision of the forward and backward passes; weights and optimiser state stay f32.
    pub precision: Precision,
    /// Loss weight of each label set, in output order (empty: all 1).
    pub loss_weights: Vec<f64>,
    /// Pooling of the per-protein head.
    pub pooling: Pooling,
    /// Dropout of the head (the encoder keeps its own).
    pub dropout: f64,
    /// Seed of initialisation, batching and shuffling.
    pub seed: u64,
}

impl Default for FinetuneOptions {
    fn default() -> Self {
        Self {
            method: Method::default(),
            epochs: 10,
            patience: 3,
            max_tokens: 4096,
            max_proteins: 64,
            accumulation: 1,
            learning_rate: 3e-4,
            head_learning_rate: 1e-3,
            weight_decay: 0.0,
            precision: Precision::F32,
            loss_weights: Vec::new(),
            pooling: Pooling::Mean,
            dropout: 0.25,
            seed: 42,
        }
    }
}

/// A fine-tuning run.
#[derive(Debug, Clone)]
pub struct Finetuning {
    /// The checkpoint directory (Hugging Face layout) to start from.
    pub model: PathBuf,
    /// Training proteins with labels.
    pub train: LabelledSet,
    /// Validation proteins with labels (early stopping, kept epoch).
    pub valid: LabelledSet,
    /// Proteins longer than this were left out of both sets (recorded in `head.json`).
    pub max_length: Option<usize>,
    /// Options.
    pub options: FinetuneOptions,
    /// Also write the encoder with the adapter merged into its weights (`model/`).
    pub merge: bool,
    /// Output directory.
    pub out: PathBuf,
    /// Where to train.
    pub device: Device,
    /// Continue an interrupted run in `out`.
    pub resume: bool,
}

/// What a finished run reports (also written to `finetune.json`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FinetuneSummary {
    /// `lora` or `full`.
    pub method: String,
    /// Epochs run (early stopping may end before the limit).
    pub epochs_run: usize,
    /// Epoch kept (lowest validation loss).
    pub best_epoch: usize,
    /// Validation loss of the kept epoch.
    pub best_valid_loss: f64,
    /// Parameters that trained (adapters or encoder, and the head).
    pub trainable_parameters: usize,
    /// Parameters of the encoder and head, adapters included.
    pub total_parameters: usize,
    /// The adapted layers, by checkpoint name (LoRA).
    pub adapted_layers: Vec<String>,
    /// Training batches per epoch.
    pub steps_per_epoch: usize,
    /// Seconds of training (burn-train's loop, validation included) per epoch run.
    pub seconds_per_epoch: f64,
    /// Peak resident memory of the process, where the system reports it (Linux).
    pub peak_memory_bytes: Option<u64>,
    /// Largest difference between the trained encoder's hidden states and those of the model
    /// read back from the files written, on a few validation proteins.
    pub reload_max_difference: f64,
    /// The head directory (`evaluate --head`, `predict --head`).
    pub head_dir: PathBuf,
    /// The adapter in PEFT's layout (LoRA).
    pub adapter_dir: Option<PathBuf>,
    /// The fine-tuned or merged checkpoint.
    pub model_dir: Option<PathBuf>,
}

/// Fine-tunes; see [`Finetuning`].
pub fn finetune(run: Finetuning) -> Result<FinetuneSummary, TransferError> {
    let checkpoint = Checkpoint::open(&run.model).map_err(prottrans_embed::EmbedError::from)?;
    checkpoint.config().clone().visit(FinetuneArchitecture {
        run: &run,
        checkpoint: &checkpoint,
    })
}

struct FinetuneArchitecture<'a> {
    run: &'a Finetuning,
    checkpoint: &'a Checkpoint,
}

impl ConfigVisitor for FinetuneArchitecture<'_> {
    type Output = Result<FinetuneSummary, TransferError>;

    fn visit<C: ArchitectureConfig>(self, config: &C) -> Self::Output
    where
        Encoder: From<C::Encoder>,
    {
        finetune_as(self.run, self.checkpoint, config)
    }
}

pub(crate) fn import_error(e: prottrans_import::ImportError) -> TransferError {
    TransferError::Embed(e.into())
}

fn finetune_as<C: ArchitectureConfig>(
    run: &Finetuning,
    checkpoint: &Checkpoint,
    config: &C,
) -> Result<FinetuneSummary, TransferError> {
    let options = &run.options;
    let task = run.train.task;
    let label_sets = task.label_sets(false);
    let weights = check_run(
        &run.train,
        &run.valid,
        &Checked {
            epochs: options.epochs,
            learning_rate: options.learning_rate,
            weight_decay: options.weight_decay,
            dropout: options.dropout,
            loss_weights: &options.loss_weights,
            disorder: false,
        },
    )?;
    if !(options.head_learning_rate.is_finite() && options.head_learning_rate > 0.0) {
        return Err(TransferError::Invalid(format!(
            "the head's learning rate must be a positive number, got {}",
            options.head_learning_rate
        )));
    }
    if options.max_proteins == 0 || options.accumulation == 0 {
        return Err(TransferError::Invalid(
            "--max-proteins and --accumulation must be at least 1".into(),
        ));
    }
    if let Method::Lora { rank, alpha, .. } = &options.method
        && (*rank == 0 || !(alpha.is_finite() && *alpha > 0.0))
    {
        return Err(TransferError::Invalid(format!(
            "--lora-rank must be at least 1 and --lora-alpha a positive number, got {rank} and {alpha}"
        )));
    }
    let tokenizer =
        checkpoint_tokenizer(checkpoint.dir(), checkpoint.config()).map_err(import_error)?;
    let tokenize = |set: &LabelledSet| -> Result<Vec<TokenExample>, TransferError> {
        set.records
            .iter()
            .map(|record| {
                let residues = tokenizer
                    .encode_residues(&record.id, record.sequence.as_bytes())
                    .map_err(|e| TransferError::Csv {
                        path: set.path.clone(),
                        line: record.line,
                        message: e.to_string(),
                    })?;
                Ok(TokenExample {
                    residues: Arc::new(residues),
                    labels: record.labels[..label_sets.len()].to_vec(),
                })
            })
            .collect()
    };
    let train_examples = tokenize(&run.train)?;
    let valid_examples = tokenize(&run.valid)?;
    let specials = tokenizer.num_special_tokens();
    let limit = config.max_tokens().map(|t| t.saturating_sub(specials));
    let longest = train_examples
        .iter()
        .chain(&valid_examples)
        .map(|e| e.residues.len())
        .max()
        .unwrap_or(1);
    if let Some(limit) = limit
        && longest > limit
    {
        return Err(TransferError::Invalid(format!(
            "a protein of {longest} residues is longer than the {limit} {} takes; nothing is truncated: leave such proteins out (--max-length {limit})",
            run.model.display()
        )));
    }
    let device = if run.device.is_autodiff() {
        run.device.clone()
    } else {
        run.device.clone().autodiff()
    };
    device.seed(options.seed);
    options
        .precision
        .check(&device)
        .map_err(|e| TransferError::Invalid(format!("--precision {}: {e}", options.precision)))?;
    let (mut encoder, _) = checkpoint
        .load_encoder_as(config, &device, FloatDType::F32)
        .map_err(import_error)?;
    // XLNet and Transformer-XL are set up as their authors embed, as `prottrans embed` reads
    // them: a protein longer than one segment is read in segments after the memory of the
    // previous ones, alone.
    let segment = encoder.prepare_for_embedding();
    // A protein longer than a segment runs alone (unpadded, in segments).
    let segmented = segment.is_some_and(|segment| longest + specials > segment);
    let planner = BatchPlanner {
        max_tokens: options.max_tokens,
        max_sequences: if segmented { 1 } else { options.max_proteins },
        max_residues: longest,
        special_tokens: specials,
    };
    planner.validate().map_err(|e| {
        TransferError::Invalid(format!(
            "--max-tokens {}: {e} (the longest protein has {longest} residues)",
            options.max_tokens
        ))
    })?;
    let plan = |examples: &[TokenExample], seed: u64| -> Result<Vec<PlannedBatch>, TransferError> {
        let lengths: Vec<usize> = examples.iter().map(|e| e.residues.len()).collect();
        Ok(planner
            .plan(&lengths, seed)
            .map_err(|e| TransferError::Invalid(e.to_string()))?
            .into_iter()
            .map(|batch| batch.into_iter().map(|i| examples[i].clone()).collect())
            .collect())
    };
    let train_batches = plan(&train_examples, options.seed)?;
    let valid_batches = plan(&valid_examples, options.seed)?;
    let steps_per_epoch = train_batches.len();

    let latest = start_or_resume(&run.out, run.resume, options, |saved| FinetuneOptions {
        epochs: options.epochs,
        ..saved.clone()
    })?;
    if let Some(epoch) = latest {
        let metrics = run.out.join("metrics.jsonl");
        prottrans_train::renderer::forget_metrics_after(&metrics, epoch * steps_per_epoch)
            .map_err(TransferError::io(&metrics))?;
    }

    // Checkpoint names of the encoder's own tensors (a T5 checkpoint also names its decoder's).
    let mut names = checkpoint.encoder_key_names().map_err(import_error)?;
    let paths: std::collections::HashSet<String> = encoder
        .collect(None, None, false)
        .into_iter()
        .map(|t| t.name)
        .collect();
    names.retain(|path, _| paths.contains(path));
    let (encoder, adapted) = match &options.method {
        Method::Lora {
            rank,
            alpha,
            targets,
        } => {
            let layers = lora_layers(C::NAME, C::LORA_TARGETS, targets, &names)?;
            let group =
                ParamGroup::from_paths(layers.iter().map(|(path, _)| path.clone()).collect());
            let encoder = encoder.apply_lora(Lora::new(*rank, *alpha).set_param_group(group));
            (encoder, layers.into_iter().map(|(_, key)| key).collect())
        }
        Method::Full => (encoder, Vec::new()),
    };
    let hidden = config.hidden_size();
    let precision = MixedPrecision::new(options.precision, None);
    let loss_factor = 1.0 / options.accumulation as f64;
    let settings = FitSettings {
        out: &run.out,
        epochs: options.epochs,
        patience: options.patience,
        learning_rate: options.learning_rate,
        head_learning_rate: Some(options.head_learning_rate),
        weight_decay: options.weight_decay,
        accumulation: options.accumulation,
        progress_unit: 1,
    };
    let per_residue = task == Task::SecondaryStructure;
    let batcher = TokenBatcher {
        tokenizer: tokenizer.clone(),
        per_residue,
    };
    let train_set = EpochShuffled::new(train_batches, options.seed);
    let handle = train_set.handle();
    let train_loader = DataLoaderBuilder::new(batcher.clone())
        .batch_size(1)
        .num_workers(1)
        .build(train_set);
    let train_loader = Arc::new(EpochLoader::new(train_loader, handle, latest.unwrap_or(0)));
    // A few validation proteins, to check that the files written reproduce the trained model.
    let check_examples: Vec<TokenExample> = valid_batches
        .iter()
        .flatten()
        .take(if segmented { 1 } else { 4 })
        .cloned()
        .collect();
    let check_batch = batcher.build(&check_examples, &device.clone().inner());
    let valid_loader = DataLoaderBuilder::new(batcher)
        .batch_size(1)
        .num_workers(1)
        .build(InMemDataset::new(valid_batches));
    let fit = Fit {
        settings,
        train_loader,
        valid_loader,
        steps_per_epoch,
        label_sets: &label_sets,
        valid_class_counts: run.valid.class_counts(0),
        resume_from: latest,
    };
    eprintln!(
        "fine-tuning {} ({}) for {task}: {} training and {} validation proteins, {steps_per_epoch} batches per epoch",
        run.model.display(),
        config.describe(),
        run.train.records.len(),
        run.valid.records.len(),
    );
    let started = Instant::now();
    let (encoder, head, trained) = match task {
        Task::SecondaryStructure => {
            let head = ResidueHeadConfig::new(hidden)
                .with_dropout(options.dropout)
                .init(&device);
            let model = Finetuned {
                encoder,
                head: ResidueModel::new(head, weights),
                precision,
                loss_factor,
                segment,
            };
            let (model, trained) = train(fit, model, &adapted, &check_batch)?;
            (
                model.encoder,
                Head::Residue(Box::new(model.head.head)),
                trained,
            )
        }
        Task::Localization => {
            let head = ProteinHeadConfig::new(hidden)
                .with_pooling(options.pooling)
                .with_dropout(options.dropout)
                .init(&device);
            let model = Finetuned {
                encoder,
                head: ProteinModel::new(head, weights),
                precision,
                loss_factor,
                segment,
            };
            let (model, trained) = train(fit, model, &adapted, &check_batch)?;
            (
                model.encoder,
                Head::Protein(Box::new(model.head.head)),
                trained,
            )
        }
    };
    let seconds = started.elapsed().as_secs_f64();
    let Trained {
        parameters: counts,
        epochs_run,
        best_epoch,
        best_valid_loss,
        states: trained_states,
    } = trained;

    let written = outputs::write(run, checkpoint, &encoder, &names)?;
    let reload_max_difference =
        outputs::reload_difference(&written.features, &check_examples, &trained_states)?;
    if reload_max_difference > 1e-3 {
        return Err(TransferError::Invalid(format!(
            "the written model does not reproduce the trained encoder: hidden states differ by {reload_max_difference:.2e}; please report this"
        )));
    }
    let saved = SavedHead {
        format: 1,
        task,
        features: written.features.clone(),
        input_size: hidden,
        pooling: options.pooling,
        disorder: false,
        hidden_size: 32,
        kernel_size: 7,
        dropout: options.dropout,
        label_sets: label_sets.iter().map(|s| s.name.to_string()).collect(),
        training_class_counts: (0..label_sets.len())
            .map(|i| run.train.class_counts(i))
            .collect(),
        max_length: run.max_length,
        best_epoch,
        epochs_run,
        train_file: run.train.path.clone(),
        valid_file: run.valid.path.clone(),
    };
    head.save(&saved, &run.out)?;
    if let Err(e) =
        crate::plots::training_curves(&run.out.join("metrics.jsonl"), &run.out.join("curves"))
    {
        eprintln!("warning: training curves not drawn: {e}");
    }
    let summary = FinetuneSummary {
        method: match options.method {
            Method::Lora { .. } => "lora".into(),
            Method::Full => "full".into(),
        },
        epochs_run,
        best_epoch,
        best_valid_loss,
        trainable_parameters: counts.0,
        total_parameters: counts.1,
        adapted_layers: adapted,
        steps_per_epoch,
        seconds_per_epoch: seconds / epochs_run.max(1) as f64,
        peak_memory_bytes: peak_memory(),
        reload_max_difference,
        head_dir: outputs::canonical(&run.out),
        adapter_dir: written.adapter_dir,
        model_dir: written.model_dir,
    };
    let json = serde_json::to_string_pretty(&summary)
        .map_err(|e| TransferError::Invalid(e.to_string()))?;
    write_atomically(&run.out.join(SUMMARY_FILE), |file| {
        file.write_all(json.as_bytes())
    })?;
    Ok(summary)
}

/// What a training reports besides the model.
struct Trained {
    /// `(trainable, total)` parameters.
    parameters: (usize, usize),
    epochs_run: usize,
    best_epoch: usize,
    best_valid_loss: f64,
    /// The trained encoder's hidden states of the check batch, computed in f32.
    states: Tensor<3>,
}

/// Trains `model` through burn-train; returns the kept epoch's model (for inference) and what
/// the run reports.
fn train<E, H>(
    fit: Fit<'_, TokenBatch>,
    model: Finetuned<E, H>,
    adapted: &[String],
    check: &TokenBatch,
) -> Result<(Finetuned<E, H>, Trained), TransferError>
where
    E: Module + ModuleDisplay + ProteinEncoder + 'static,
    H: Module + ModuleDisplay + HeadModel + 'static,
{
    let parameters = report_parameters(&model, adapted);
    let (model, epochs_run, best_epoch, best_valid_loss) = fit.run(model)?;
    let model = model.valid().in_f32();
    let states = model.residue_states(check);
    Ok((
        model,
        Trained {
            parameters,
            epochs_run,
            best_epoch,
            best_valid_loss,
            states,
        },
    ))
}

/// Prints and returns `(trainable, total)` parameters.
fn report_parameters<M: Module>(model: &M, adapted: &[String]) -> (usize, usize) {
    let (trainable, total) = count_parameters(model);
    let what = if adapted.is_empty() {
        String::new()
    } else {
        format!(" (LoRA on {} layers)", adapted.len())
    };
    eprintln!(
        "trainable parameters: {trainable} of {total} ({:.2}%){what}",
        100.0 * trainable as f64 / total.max(1) as f64
    );
    (trainable, total)
}

/// Peak resident memory of this process (`VmHWM`), on Linux.
fn peak_memory() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}
