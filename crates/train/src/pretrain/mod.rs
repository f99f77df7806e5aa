//! A whole pretraining run: sequences in, checkpoints, a final model in the Hugging Face layout
//! and a report against the unigram baseline out.
//!
//! The output directory holds `config.toml` (the recipe used), `checkpoint/` (burn-train's
//! model, optimiser and scheduler state after every `checkpoint_every` steps), `metrics.jsonl`,
//! `model/` (`config.json` + `model.safetensors`, loadable by prottrans and `transformers`) and
//! `report.json`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataloader::{DataLoader, DataLoaderBuilder};
use burn::data::dataset::Dataset;
use burn::data::dataset::transform::{SamplerDataset, SamplerDatasetOptions};
use burn::module::Module;
use burn::tensor::Device;
use burn::train::metric::{LearningRateMetric, LossMetric};
use burn::train::{ExecutionStrategy, Learner, LearnerModel, MultiDeviceOptim, SupervisedTraining};
use prottrans_data::{BatchedSequences, CropMode, ResidueBatch, SequenceStore, Tokenizer};
use prottrans_import::{
    save_albert_for_masked_lm, save_bert_for_masked_lm, save_pretrained, save_t5,
};
use prottrans_models::{ModelConfig, T5Config};
use serde::{Deserialize, Serialize};

use crate::baseline::UnigramBaseline;
use crate::error::TrainError;
use crate::objectives::StepSettings;
use crate::objectives::mlm::{MaskedLm, MaskedSequences, MlmBatcher, MlmModel, MlmScores};
use crate::objectives::span_corruption::{
    ReconstructionAccuracy, ReconstructionScores, SpanCorruption, SpanCorruptionBatcher,
};
use crate::recipe::PretrainConfig;
use crate::renderer::ProgressRenderer;
use prottrans_backend::Precision;

/// The metrics of objectives that predict tokens (`ClassificationOutput`): loss and accuracy,
/// the learning rate in training, perplexity in validation.
macro_rules! next_token_metrics {
    ($training:expr) => {
        $training
            .metric_train_numeric(burn::train::metric::LossMetric::new())
            .metric_train_numeric(burn::train::metric::AccuracyMetric::new())
            .metric_train_numeric(burn::train::metric::LearningRateMetric::new())
            .metric_valid_numeric(burn::train::metric::LossMetric::new())
            .metric_valid_numeric(burn::train::metric::AccuracyMetric::new())
            .metric_valid_numeric(burn::train::metric::PerplexityMetric::new())
    };
}

mod autoregressive;
mod electra;

pub use electra::{DiscriminatorReport, ReplacedTokenEvaluation, evaluate_replaced_token};

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
    /// Further devices for data-parallel training (burn-train's multi-device strategy): every
    /// device takes its own batch each step and the gradients are averaged on `device`, so a
    /// step sees `1 + extra_devices.len()` batches. Empty for one device.
    pub extra_devices: Vec<Device>,
    /// Continue from the latest checkpoint in `out`.
    pub resume: bool,
}

impl PretrainRun {
    /// Where and how training runs, for the log.
    pub fn placement(&self) -> String {
        let mut text = format!("{:?}", self.device);
        if !self.extra_devices.is_empty() {
            text += &format!(" and {:?} (data parallel)", self.extra_devices);
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

/// How well a T5 reconstructs whole validation sequences.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct ReconstructionReport {
    /// Target tokens scored (residues and `</s>`).
    pub tokens: u64,
    /// Mean cross-entropy over them (nats).
    pub loss: f64,
    /// Fraction reproduced.
    pub accuracy: f64,
    /// Accuracy of copying the corrupted input, with the majority residue at sentinels.
    pub copy_baseline_accuracy: f64,
}

impl std::fmt::Display for PretrainReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let hidden = match self.objective.as_str() {
            SPAN_CORRUPTION => "corrupted",
            autoregressive::CAUSAL_LM => "next",
            autoregressive::PERMUTATION_LM => "target",
            _ => "masked",
        };
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

const MASKED_LM: &str = "masked-lm";
const REPLACED_TOKEN_DETECTION: &str = "replaced-token-detection";
const SPAN_CORRUPTION: &str = "span-corruption";

/// The vocabulary a model is pretrained with. ALBERT, ELECTRA and Transformer-XL use ProtBert's:
/// ProtElectra was released with it, and ProtAlbert's own 34-piece table is not published in
/// full (nor was ProtTXL). XLNet needs its own layout (`residues <sep> <cls>`, left padding),
/// so it gets prottrans' XLNet vocabulary (not the released ProtXLNet ids).
fn tokenizer_for(config: &ModelConfig) -> Result<Tokenizer, TrainError> {
    let tokenizer = match config {
        ModelConfig::T5(_) => Tokenizer::prot_t5(),
        ModelConfig::Xlnet(_) => Tokenizer::new(prottrans_data::Vocabulary::prottrans_xlnet()),
        // ESM's alphabet, with U, Z, O and B as tokens of their own as its authors had them.
        ModelConfig::Esm(_) => Tokenizer::new(prottrans_data::Vocabulary::esm2())
            .with_rare_residues(prottrans_data::RareResidues::Keep),
        _ => Tokenizer::prot_bert(),
    };
    let vocabulary = tokenizer.vocabulary();
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
    Ok(tokenizer)
}

/// Writes `vocab.txt` beside a saved BERT-family model, so it is embedded with the vocabulary
/// it was trained with.
fn save_vocabulary(tokenizer: &Tokenizer, model_dir: &Path) -> Result<(), TrainError> {
    let path = model_dir.join("vocab.txt");
    std::fs::write(&path, tokenizer.vocabulary().to_vocab_txt())
        .map_err(|source| TrainError::Io { path, source })
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

/// The model and the unigram baseline scored on the same masked residues.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Evaluation {
    /// The model's sums over masked residues.
    pub model: MlmScores,
    /// Mean cross-entropy of the baseline (nats).
    pub unigram_loss: f64,
    /// Accuracy of the baseline's majority residue.
    pub unigram_accuracy: f64,
}

/// Masks every batch of `data` deterministically (so every call sees the same residues), hands
/// it to `score` and returns the original residues at the masked positions, for the baseline.
fn for_each_masked_batch(
    data: &BatchedSequences,
    batcher: &MlmBatcher,
    mut score: impl FnMut(MaskedSequences) -> Result<(), TrainError>,
) -> Result<Vec<u32>, TrainError> {
    let mut labels = Vec::new();
    for index in 0..data.len() {
        let batch = data
            .get(index)
            .map_err(|e| TrainError::Training(e.to_string()))?;
        let masked = batcher.mask(&batch);
        labels.extend(masked.labels.iter().map(|&l| l as u32));
        score(masked)?;
    }
    Ok(labels)
}

/// Scores every validation batch with `score`, which returns the model's sums and the residues
/// it predicted; the baseline is scored on the same residues.
pub(super) fn evaluate_residues(
    data: &BatchedSequences,
    baseline: &UnigramBaseline,
    mut score: impl FnMut(&ResidueBatch) -> (MlmScores, Vec<i64>),
) -> Result<Evaluation, TrainError> {
    let mut scores = MlmScores::default();
    let mut labels = Vec::new();
    for index in 0..data.len() {
        let batch = data
            .get(index)
            .map_err(|e| TrainError::Training(e.to_string()))?;
        let (batch_scores, batch_labels) = score(&batch);
        scores.add(batch_scores);
        labels.extend(batch_labels.into_iter().map(|l| l as u32));
    }
    let (unigram_loss, unigram_accuracy) = baseline.score(labels);
    Ok(Evaluation {
        model: scores,
        unigram_loss,
        unigram_accuracy,
    })
}

/// Scores `model` and `baseline` on every batch of `data` (cropped from the start, masked
/// deterministically, so every call sees the same residues).
pub fn evaluate(
    model: &MaskedLm,
    baseline: &UnigramBaseline,
    data: &BatchedSequences,
    batcher: &MlmBatcher,
    device: &Device,
) -> Result<Evaluation, TrainError> {
    evaluate_residues(data, baseline, |batch| {
        let masked = batcher.mask(batch);
        let labels = masked.labels.clone();
        (model.score(masked.to_tensors(device)), labels)
    })
}

/// A T5 and its baselines scored on the same corrupted validation sequences.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReconstructionEvaluation {
    /// The model's sums over every target and over the corrupted residues.
    pub model: ReconstructionScores,
    /// Mean cross-entropy of the unigram baseline on the corrupted residues (nats).
    pub unigram_loss: f64,
    /// Accuracy of the majority residue on the corrupted residues.
    pub unigram_accuracy: f64,
    /// Accuracy over every target of copying the input (majority residue at sentinels).
    pub copy_accuracy: f64,
}

/// Scores a T5 under span corruption on every batch of `data`, corrupted deterministically.
pub fn evaluate_reconstruction(
    model: &SpanCorruption,
    baseline: &UnigramBaseline,
    data: &BatchedSequences,
    batcher: &SpanCorruptionBatcher,
    device: &Device,
) -> Result<ReconstructionEvaluation, TrainError> {
    let mut scores = ReconstructionScores::default();
    let mut corrupted_labels = Vec::new();
    let (mut copied, mut targets) = (0u64, 0u64);
    for index in 0..data.len() {
        let batch = data
            .get(index)
            .map_err(|e| TrainError::Training(e.to_string()))?;
        let corrupted = batcher.corrupt(&batch);
        for (k, (&target, &hit)) in corrupted
            .targets
            .iter()
            .zip(&corrupted.corrupted)
            .enumerate()
        {
            if hit == 1 {
                corrupted_labels.push(target as u32);
            }
            let input = corrupted.input_ids[corrupted.target_positions[k] as usize];
            let guess = if batcher.is_sentinel(input) {
                i64::from(baseline.majority)
            } else {
                input
            };
            copied += u64::from(guess == target);
            targets += 1;
        }
        let batch_scores = model
            .score(corrupted.to_tensors(device))
            .map_err(|e| TrainError::Training(format!("reading scores: {e:?}")))?;
        scores.merge(batch_scores);
    }
    let (unigram_loss, unigram_accuracy) = baseline.score(corrupted_labels);
    Ok(ReconstructionEvaluation {
        model: scores,
        unigram_loss,
        unigram_accuracy,
        copy_accuracy: copied as f64 / targets.max(1) as f64,
    })
}

/// What every objective shares: the checked run directory, the data and the training device.
struct Prepared {
    checkpoint: Option<usize>,
    tokenizer: Tokenizer,
    train_store: Arc<SequenceStore>,
    valid_store: Arc<SequenceStore>,
    train_sampled: SamplerDataset<BatchedSequences, ResidueBatch>,
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

    let resume_from = latest_checkpoint(&run.out);
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
    if checkpoint.is_some() {
        let saved = PretrainConfig::from_toml_file(&recipe_path)?;
        if saved.model != config.model {
            return Err(TrainError::Resume {
                path: recipe_path,
                message: "the model configuration differs from the run being resumed".into(),
            });
        }
    }
    let recipe = toml::to_string_pretty(config).map_err(|e| TrainError::Invalid(e.to_string()))?;
    std::fs::write(&recipe_path, recipe).map_err(io(&recipe_path))?;

    let tokenizer = tokenizer_for(&config.model)?;
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
    for device in std::iter::once(&run.device).chain(&run.extra_devices) {
        config.optimizer.precision.check(device)?;
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
    let train_sampled = SamplerDataset::new(
        train_data,
        SamplerDatasetOptions::default()
            .with_fixed_size(items_per_epoch)
            .with_replacement()
            .with_seed(seed.wrapping_add(checkpoint.unwrap_or(0) as u64)),
    );
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

/// The training loader (planned batches sampled with replacement, `workers` threads) and the
/// validation loader, each item one planned batch.
#[allow(clippy::type_complexity)]
fn loaders<B, O>(
    batcher: &B,
    train: SamplerDataset<BatchedSequences, ResidueBatch>,
    valid: Arc<BatchedSequences>,
    workers: usize,
) -> (Arc<dyn DataLoader<O>>, Arc<dyn DataLoader<O>>)
where
    B: Batcher<ResidueBatch, O> + Clone + 'static,
    O: Send + Clone + std::fmt::Debug + 'static,
{
    let train_loader = DataLoaderBuilder::new(batcher.clone())
        .batch_size(1)
        .num_workers(workers.max(1))
        .build(train);
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
    let mut training = training;
    if !run.extra_devices.is_empty() {
        let devices = std::iter::once(run.device.clone())
            .chain(run.extra_devices.iter().cloned())
            .collect();
        training = training.with_training_strategy(
            ExecutionStrategy::multi(devices, MultiDeviceOptim::OptimMainDevice).into(),
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
    let report = match &run.config.model {
        ModelConfig::Bert(_) | ModelConfig::Albert(_) | ModelConfig::Esm(_) => {
            pretrain_masked_lm(&run, prepared, started)?
        }
        ModelConfig::Electra(electra) => {
            electra::pretrain_replaced_token(&run, prepared, electra, started)?
        }
        ModelConfig::T5(t5) => pretrain_span_corruption(&run, prepared, t5, started)?,
        ModelConfig::Xlnet(xlnet) => {
            autoregressive::pretrain_permutation_lm(&run, prepared, xlnet, started)?
        }
        ModelConfig::TransfoXl(txl) => {
            autoregressive::pretrain_causal_lm(&run, prepared, txl, started)?
        }
    };
    write_report(&run, &report)?;
    Ok(report)
}

fn pretrain_masked_lm(
    run: &PretrainRun,
    prepared: Prepared,
    started: Instant,
) -> Result<PretrainReport, TrainError> {
    let config = &run.config;
    let batcher = MlmBatcher::new(prepared.tokenizer.clone(), config.masking())?;
    let (train_loader, valid_loader) = loaders(
        &batcher,
        prepared.train_sampled,
        prepared.valid_data.clone(),
        config.data.num_workers,
    );

    let device = &prepared.train_device;
    let (model, shape): (MlmModel, _) = match &config.model {
        ModelConfig::Albert(albert) => (
            albert.init(device).into(),
            format!(
                "ALBERT, {} passes through {} group(s) of {} layer(s), width {} (embeddings {})",
                albert.num_hidden_layers,
                albert.num_hidden_groups,
                albert.inner_group_num,
                albert.hidden_size,
                albert.embedding_size
            ),
        ),
        ModelConfig::Bert(bert) => (
            bert.init(device).into(),
            format!(
                "BERT, {} layers, width {}",
                bert.num_hidden_layers, bert.hidden_size
            ),
        ),
        ModelConfig::Esm(esm) => (
            esm.init(device).into(),
            format!(
                "ESM-2, {} layers, width {}",
                esm.num_hidden_layers, esm.hidden_size
            ),
        ),
        other => {
            return Err(TrainError::Invalid(format!(
                "{} is not trained by masked LM",
                other.architecture()
            )));
        }
    };
    let model = MaskedLm::new(model, 1).with_steps(run.step_settings());
    eprintln!(
        "model: {shape}, {} parameters, on {}",
        model.num_params(),
        run.placement()
    );
    let training = next_token_metrics!(SupervisedTraining::new(
        &run.out,
        train_loader,
        valid_loader
    ));
    let trained = train(training, run, prepared.checkpoint, model)?;
    let model_dir = run.out.join("model");
    match (&trained.model, &config.model) {
        (MlmModel::Bert(model), ModelConfig::Bert(bert)) => {
            save_bert_for_masked_lm(model, bert, &model_dir)?
        }
        (MlmModel::Albert(model), ModelConfig::Albert(albert)) => {
            save_albert_for_masked_lm(model, albert, &model_dir)?
        }
        (MlmModel::Esm(model), ModelConfig::Esm(esm)) => save_pretrained(model, esm, &model_dir)?,
        _ => {
            return Err(TrainError::Invalid(
                "the trained model does not match its configuration".into(),
            ));
        }
    }
    save_vocabulary(&prepared.tokenizer, &model_dir)?;

    let eval_device = trained
        .devices()
        .into_iter()
        .next()
        .unwrap_or_else(|| run.device.clone());
    let baseline =
        UnigramBaseline::from_store(&prepared.train_store, prepared.tokenizer.vocabulary());
    let Evaluation {
        model: scores,
        unigram_loss,
        unigram_accuracy,
    } = evaluate(
        &trained,
        &baseline,
        &prepared.valid_data,
        &batcher,
        &eval_device,
    )?;

    Ok(PretrainReport {
        objective: MASKED_LM.into(),
        steps: config.schedule.steps,
        train_sequences: prepared.train_store.len(),
        valid_sequences: prepared.valid_store.len(),
        valid_masked_residues: scores.predicted,
        valid_loss: scores.loss(),
        valid_accuracy: scores.accuracy(),
        reconstruction: None,
        discriminator: None,
        valid_perplexity: scores.perplexity(),
        unigram_loss,
        unigram_accuracy,
        unigram_entropy: baseline.entropy,
        seconds: started.elapsed().as_secs_f64(),
        model_dir,
    })
}

fn pretrain_span_corruption(
    run: &PretrainRun,
    prepared: Prepared,
    t5: &T5Config,
    started: Instant,
) -> Result<PretrainReport, TrainError> {
    let config = &run.config;
    let start = u32::try_from(t5.decoder_start_token_id)
        .map_err(|_| TrainError::Invalid("decoder_start_token_id is out of range".into()))?;
    let batcher = SpanCorruptionBatcher::new(&prepared.tokenizer, config.corruption(), start)?;
    let (train_loader, valid_loader) = loaders(
        &batcher,
        prepared.train_sampled,
        prepared.valid_data.clone(),
        config.data.num_workers,
    );

    let model =
        SpanCorruption::new(t5.init(&prepared.train_device), 1).with_steps(run.step_settings());
    eprintln!(
        "model: T5, {}+{} layers, width {}, {} parameters, on {}",
        t5.num_layers,
        t5.decoder_layers(),
        t5.d_model,
        model.num_params(),
        run.placement()
    );
    let training = SupervisedTraining::new(&run.out, train_loader, valid_loader)
        .metric_train_numeric(LossMetric::new())
        .metric_train_numeric(ReconstructionAccuracy::corrupted())
        .metric_train_numeric(ReconstructionAccuracy::all())
        .metric_train_numeric(LearningRateMetric::new())
        .metric_valid_numeric(LossMetric::new())
        .metric_valid_numeric(ReconstructionAccuracy::corrupted())
        .metric_valid_numeric(ReconstructionAccuracy::all());
    let trained = train(training, run, prepared.checkpoint, model)?;
    let model_dir = run.out.join("model");
    save_t5(&trained.model, t5, &model_dir)?;

    let eval_device = trained
        .devices()
        .into_iter()
        .next()
        .unwrap_or_else(|| run.device.clone());
    let baseline =
        UnigramBaseline::from_store(&prepared.train_store, prepared.tokenizer.vocabulary());
    let evaluation = evaluate_reconstruction(
        &trained,
        &baseline,
        &prepared.valid_data,
        &batcher,
        &eval_device,
    )?;
    let corrupted = evaluation.model.corrupted;
    let all = evaluation.model.all;
    Ok(PretrainReport {
        objective: SPAN_CORRUPTION.into(),
        steps: config.schedule.steps,
        train_sequences: prepared.train_store.len(),
        valid_sequences: prepared.valid_store.len(),
        valid_masked_residues: corrupted.predicted,
        valid_loss: corrupted.loss(),
        valid_accuracy: corrupted.accuracy(),
        reconstruction: Some(ReconstructionReport {
            tokens: all.predicted,
            loss: all.loss(),
            accuracy: all.accuracy(),
            copy_baseline_accuracy: evaluation.copy_accuracy,
        }),
        discriminator: None,
        valid_perplexity: corrupted.loss().exp(),
        unigram_loss: evaluation.unigram_loss,
        unigram_accuracy: evaluation.unigram_accuracy,
        unigram_entropy: baseline.entropy,
        seconds: started.elapsed().as_secs_f64(),
        model_dir,
    })
}
