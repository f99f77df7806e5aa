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

use burn::data::dataloader::DataLoaderBuilder;
use burn::data::dataset::Dataset;
use burn::data::dataset::transform::{SamplerDataset, SamplerDatasetOptions};
use burn::module::Module;
use burn::tensor::Device;
use burn::train::metric::{AccuracyMetric, LearningRateMetric, LossMetric, PerplexityMetric};
use burn::train::{Learner, SupervisedTraining};
use prottrans_data::{BatchedSequences, CropMode, SequenceStore, Tokenizer};
use prottrans_import::save_bert_for_masked_lm;
use prottrans_models::ModelConfig;
use serde::{Deserialize, Serialize};

use crate::baseline::UnigramBaseline;
use crate::error::TrainError;
use crate::objectives::mlm::{MaskedLm, MlmBatcher, MlmScores};
use crate::recipe::PretrainConfig;
use crate::renderer::ProgressRenderer;

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
    /// Where to train.
    pub device: Device,
    /// Continue from the latest checkpoint in `out`.
    pub resume: bool,
}

/// Scores of the final model and of the unigram baseline on the validation set.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PretrainReport {
    /// Optimiser steps of the whole schedule.
    pub steps: usize,
    /// Training sequences.
    pub train_sequences: usize,
    /// Validation sequences.
    pub valid_sequences: usize,
    /// Masked residues scored in validation.
    pub valid_masked_residues: u64,
    /// Mean cross-entropy of the model on masked validation residues (nats).
    pub valid_loss: f64,
    /// Fraction of masked validation residues the model recovers.
    pub valid_accuracy: f64,
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
        writeln!(
            f,
            "validation: {} masked residues in {} sequences",
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
        .filter_map(|name| name.strip_prefix(prefix)?.strip_suffix(".bpk")?.parse().ok())
        .collect()
}

fn tokenizer_for(config: &ModelConfig) -> Result<Tokenizer, TrainError> {
    match config {
        ModelConfig::Bert(bert) => {
            let tokenizer = Tokenizer::prot_bert();
            if bert.vocab_size != tokenizer.vocabulary().len() {
                return Err(TrainError::Invalid(format!(
                    "model.vocab_size is {} but the ProtBert vocabulary has {} tokens",
                    bert.vocab_size,
                    tokenizer.vocabulary().len()
                )));
            }
            Ok(tokenizer)
        }
    }
}

fn load_store(path: &Path, tokenizer: &Tokenizer, what: &str) -> Result<Arc<SequenceStore>, TrainError> {
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

/// Scores `model` and `baseline` on every batch of `data` (cropped from the start, masked
/// deterministically, so every call sees the same residues).
pub fn evaluate(
    model: &MaskedLm,
    baseline: &UnigramBaseline,
    data: &BatchedSequences,
    batcher: &MlmBatcher,
    device: &Device,
) -> Result<Evaluation, TrainError> {
    let mut scores = MlmScores::default();
    let mut labels = Vec::new();
    for index in 0..data.len() {
        let batch = data
            .get(index)
            .map_err(|e| TrainError::Training(e.to_string()))?;
        let masked = batcher.mask(&batch);
        labels.extend(masked.labels.iter().map(|&l| l as u32));
        scores.add(model.score(masked.to_tensors(device)));
    }
    let (unigram_loss, unigram_accuracy) = baseline.score(labels);
    Ok(Evaluation {
        model: scores,
        unigram_loss,
        unigram_accuracy,
    })
}

/// Runs (or resumes) a pretraining job.
pub fn pretrain(run: PretrainRun) -> Result<PretrainReport, TrainError> {
    let started = Instant::now();
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
            eprintln!("resuming from checkpoint {epoch} (step {})", epoch * config.schedule.checkpoint_every);
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
    let valid_data = BatchedSequences::new(valid_store.clone(), &planner, CropMode::Start, seed ^ 0x5eed)?;
    let accumulation = config.optimizer.grad_accumulation;
    let steps_per_epoch = config.schedule.checkpoint_every;
    let items_per_epoch = steps_per_epoch * accumulation;
    eprintln!(
        "batches: {} train (sampled {} per checkpoint interval), {} valid; {} epochs of {} steps",
        train_data.len(),
        items_per_epoch,
        valid_data.len(),
        config.num_epochs(),
        steps_per_epoch
    );

    let batcher = MlmBatcher::new(tokenizer.clone(), config.masking)?;
    let train_sampled = SamplerDataset::new(
        train_data,
        SamplerDatasetOptions::default()
            .with_fixed_size(items_per_epoch)
            .with_replacement()
            .with_seed(seed.wrapping_add(checkpoint.unwrap_or(0) as u64)),
    );
    let train_loader = DataLoaderBuilder::new(batcher.clone())
        .batch_size(1)
        .num_workers(config.data.num_workers.max(1))
        .build(train_sampled);
    let valid_data = Arc::new(valid_data);
    let valid_loader = DataLoaderBuilder::new(batcher.clone())
        .batch_size(1)
        .num_workers(1)
        .build(valid_data.clone());

    let ModelConfig::Bert(bert) = &config.model;
    // Parameters must be created on an autodiff device to be trained.
    let train_device = if run.device.is_autodiff() {
        run.device.clone()
    } else {
        run.device.clone().autodiff()
    };
    train_device.seed(seed);
    let model = MaskedLm::new(bert.init(&train_device), accumulation);
    eprintln!(
        "model: BERT, {} layers, width {}, {} parameters, on {:?}",
        bert.num_hidden_layers,
        bert.hidden_size,
        model.num_params(),
        run.device
    );

    let renderer = ProgressRenderer::new(&run.out.join("metrics.jsonl"), steps_per_epoch, accumulation)
        .map_err(io(&run.out.join("metrics.jsonl")))?;
    let mut training = SupervisedTraining::new(&run.out, train_loader, valid_loader)
        .metric_train_numeric(LossMetric::new())
        .metric_train_numeric(AccuracyMetric::new())
        .metric_train_numeric(LearningRateMetric::new())
        .metric_valid_numeric(LossMetric::new())
        .metric_valid_numeric(AccuracyMetric::new())
        .metric_valid_numeric(PerplexityMetric::new())
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
    if let Some(error) = result.error {
        return Err(TrainError::Training(error.to_string()));
    }

    let trained = result.model;
    let model_dir = run.out.join("model");
    save_bert_for_masked_lm(&trained.model, bert, &model_dir)?;

    let eval_device = trained.devices().into_iter().next().unwrap_or_else(|| run.device.clone());
    let baseline = UnigramBaseline::from_store(&train_store, tokenizer.vocabulary());
    let Evaluation {
        model: scores,
        unigram_loss,
        unigram_accuracy,
    } = evaluate(&trained, &baseline, &valid_data, &batcher, &eval_device)?;

    let report = PretrainReport {
        steps: config.schedule.steps,
        train_sequences: train_store.len(),
        valid_sequences: valid_store.len(),
        valid_masked_residues: scores.predicted,
        valid_loss: scores.loss(),
        valid_accuracy: scores.accuracy(),
        valid_perplexity: scores.perplexity(),
        unigram_loss,
        unigram_accuracy,
        unigram_entropy: baseline.entropy,
        seconds: started.elapsed().as_secs_f64(),
        model_dir,
    };
    let report_path = run.out.join("report.json");
    let json = serde_json::to_string_pretty(&report).map_err(|e| TrainError::Invalid(e.to_string()))?;
    std::fs::write(&report_path, json).map_err(io(&report_path))?;
    Ok(report)
}
