//! What the pretraining runner ([`crate::pretrain`]) needs from an objective. Each objective
//! implements [`PretrainingObjective`] once, in its own file; the runner is the same for all.

use std::fmt::Debug;
use std::path::Path;

use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::Dataset;
use burn::tensor::Device;
use burn::train::{InferenceStep, LearnerModel, SupervisedTraining, TrainStep};
use prottrans_data::{BatchedSequences, ResidueBatch, Tokenizer};
use prottrans_import::save_pretrained;
use prottrans_models::{ArchitectureConfig, Objective, PretrainedModel, RegisteredConfig};

use super::StepSettings;
use super::mlm::{MaskingConfig, MlmScores};
use super::replaced_token::DiscriminatorReport;
use super::span_corruption::{CorruptionConfig, ReconstructionReport};
use crate::baseline::UnigramBaseline;
use crate::error::TrainError;
use crate::objectives::replaced_token::Replacements;

/// A pretraining objective: the model under training (with its burn-train steps) and what it
/// brings to a run: batcher, initialisation, metrics, saving and validation scores.
pub trait PretrainingObjective:
    LearnerModel + InferenceStep<Input = <Self as TrainStep>::Input> + Sized
{
    /// The configuration of the architecture it trains.
    type Config: ArchitectureConfig;
    /// Frames, pads and hides planned batches of residues for the model.
    type Batcher: Batcher<ResidueBatch, <Self as TrainStep>::Input> + Clone + 'static;

    /// Which objective this is (its name goes to `report.json`).
    const OBJECTIVE: Objective;

    /// The batcher for `tokenizer`'s vocabulary and the recipe's settings.
    fn batcher(
        config: &Self::Config,
        settings: &ObjectiveSettings,
        tokenizer: &Tokenizer,
    ) -> Result<Self::Batcher, TrainError>;

    /// The untrained model on `device`, stepping with `steps`.
    fn init(
        config: &Self::Config,
        settings: &ObjectiveSettings,
        steps: StepSettings,
        device: &Device,
    ) -> Self;

    /// The objective's settings for the log, each after `, ` (empty when it has none).
    fn describe(settings: &ObjectiveSettings) -> String {
        let _ = settings;
        String::new()
    }

    /// `training` with the objective's metrics.
    fn metrics(training: SupervisedTraining<Self>) -> SupervisedTraining<Self>;

    /// Writes the model in the Hugging Face layout to `dir`, with the vocabulary beside it
    /// where loaders read one.
    fn save(
        &self,
        config: &Self::Config,
        dir: &Path,
        tokenizer: &Tokenizer,
    ) -> Result<(), TrainError>;

    /// Scores the model and `baseline` on the same hidden residues of every batch of `data`
    /// (hidden deterministically, so every call sees the same residues).
    fn evaluate(
        &self,
        batcher: &Self::Batcher,
        baseline: &UnigramBaseline,
        data: &BatchedSequences,
        device: &Device,
        settings: &ObjectiveSettings,
    ) -> Result<ValidationScores, TrainError>;
}

/// The recipe's settings the objectives read (defaults filled in).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ObjectiveSettings {
    /// Masked LM and ELECTRA: the masking rates.
    pub masking: MaskingConfig,
    /// T5: the corruption rates.
    pub corruption: CorruptionConfig,
    /// ELECTRA: the weight of the discriminator loss.
    pub discriminator_weight: f64,
    /// ELECTRA: where the discriminator's replacements come from.
    pub replacements: Replacements,
    /// XLNet: one residue in `partial_prediction` is a target.
    pub partial_prediction: usize,
    /// Transformer-XL: tokens per segment.
    pub segment_length: usize,
    /// The run's data seed (ELECTRA's validation samples derive from it).
    pub seed: u64,
}

/// Code run with the objective an architecture is pretrained by, generic over it.
pub trait ObjectiveVisitor {
    /// What the visit returns.
    type Output;

    /// Visits objective `O` on `config`.
    fn visit<O>(self, config: &O::Config) -> Self::Output
    where
        O: PretrainingObjective,
        <O as TrainStep>::Input: Send + Clone + Debug + 'static;
}

/// An objective's validation scores: what `report.json` says beyond the run's facts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ValidationScores {
    /// The model's sums over the residues the objective hides.
    pub model: MlmScores,
    /// Mean cross-entropy of the unigram baseline on the same residues (nats).
    pub unigram_loss: f64,
    /// Accuracy of the baseline's majority residue on them.
    pub unigram_accuracy: f64,
    /// T5: the whole reconstruction.
    pub reconstruction: Option<ReconstructionReport>,
    /// ELECTRA: the discriminator.
    pub discriminator: Option<DiscriminatorReport>,
}

impl ValidationScores {
    /// Scores over hidden residues alone.
    pub fn of_residues(model: MlmScores, unigram: (f64, f64)) -> Self {
        Self {
            model,
            unigram_loss: unigram.0,
            unigram_accuracy: unigram.1,
            reconstruction: None,
            discriminator: None,
        }
    }
}

/// Scores every batch of `data` with `score`, which returns the model's sums and the residues
/// it predicted; the baseline is scored on the same residues.
pub fn score_residues(
    data: &BatchedSequences,
    baseline: &UnigramBaseline,
    mut score: impl FnMut(&ResidueBatch) -> Result<(MlmScores, Vec<i64>), TrainError>,
) -> Result<ValidationScores, TrainError> {
    let mut scores = MlmScores::default();
    let mut labels = Vec::new();
    for index in 0..data.len() {
        let batch = data
            .get(index)
            .map_err(|e| TrainError::Training(e.to_string()))?;
        let (batch_scores, batch_labels) = score(&batch)?;
        scores.add(batch_scores);
        labels.extend(batch_labels.into_iter().map(|l| l as u32));
    }
    Ok(ValidationScores::of_residues(
        scores,
        baseline.score(labels),
    ))
}

/// Writes `model` in the Hugging Face layout to `dir`, with `tokenizer`'s `vocab.txt` beside it.
pub fn save_with_vocabulary<M: PretrainedModel>(
    model: &M,
    config: &M::Config,
    dir: &Path,
    tokenizer: &Tokenizer,
) -> Result<(), TrainError>
where
    M::Config: RegisteredConfig,
{
    save_pretrained(model, config, dir)?;
    save_vocabulary(tokenizer, dir)
}

/// Writes `vocab.txt` beside a saved model, so it is embedded with the vocabulary it was
/// trained with.
pub fn save_vocabulary(tokenizer: &Tokenizer, model_dir: &Path) -> Result<(), TrainError> {
    let path = model_dir.join("vocab.txt");
    std::fs::write(&path, tokenizer.vocabulary().to_vocab_txt())
        .map_err(|source| TrainError::Io { path, source })
}
