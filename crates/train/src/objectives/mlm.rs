//! Masked language modelling, as BERT and ProtBert: 15% of residues are chosen; of those 80%
//! become `[MASK]`, 10% a random standard residue and 10% stay as they are; the model predicts
//! the original residue at every chosen position. Special tokens and padding are never chosen.
//! ProtBert and ProtAlbert train this way; ProtElectra's generator uses the same masking.

use std::path::Path;

use burn::data::dataloader::batcher::Batcher;
use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::tensor::{Device, Int, Tensor, TensorData, activation};
use burn::train::{ClassificationOutput, SupervisedTraining};
use prottrans_data::{BatchedSequences, ResidueBatch, Tokenizer};
use prottrans_models::{EncoderInput, MaskedLanguageModel, Objective, RegisteredConfig};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::baseline::UnigramBaseline;
use crate::error::TrainError;
use crate::objectives::pretraining::{
    ObjectiveSettings, PretrainingObjective, ValidationScores, save_with_vocabulary, score_residues,
};
use crate::objectives::{StepSettings, next_token_metrics};

/// Masking rates.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MaskingConfig {
    /// Fraction of residues chosen for prediction.
    pub probability: f64,
    /// Of the chosen, the fraction replaced by `[MASK]`.
    pub mask_fraction: f64,
    /// Of the chosen, the fraction replaced by a random standard residue (the rest stay).
    pub random_fraction: f64,
}

impl Default for MaskingConfig {
    fn default() -> Self {
        Self {
            probability: 0.15,
            mask_fraction: 0.8,
            random_fraction: 0.1,
        }
    }
}

impl MaskingConfig {
    /// Checks the rates.
    pub fn validate(&self) -> Result<(), TrainError> {
        let ok = |p: f64| (0.0..=1.0).contains(&p);
        let valid = self.probability > 0.0
            && ok(self.probability)
            && ok(self.mask_fraction)
            && ok(self.random_fraction)
            && self.mask_fraction + self.random_fraction <= 1.0 + 1e-9;
        if !valid {
            return Err(TrainError::Invalid(format!(
                "masking rates must be probabilities with probability > 0 and mask_fraction + random_fraction <= 1, got {self:?}"
            )));
        }
        Ok(())
    }
}

/// A masked batch on the host, before it becomes tensors.
#[derive(Debug, Clone, PartialEq)]
pub struct MaskedSequences {
    /// Sequences in the batch.
    pub batch: usize,
    /// Padded length (special tokens included).
    pub seq: usize,
    /// Model input, row-major `[batch, seq]`.
    pub input_ids: Vec<i64>,
    /// 1 at tokens, 0 at padding, `[batch, seq]`.
    pub attention_mask: Vec<i64>,
    /// Flat indices (`row * seq + column`) of the positions to predict.
    pub positions: Vec<i64>,
    /// Original ids at `positions`.
    pub labels: Vec<i64>,
}

/// Frames, pads and masks [`ResidueBatch`]es.
#[derive(Debug, Clone)]
pub struct MlmBatcher {
    tokenizer: Tokenizer,
    config: MaskingConfig,
    mask_id: u32,
    pad_id: u32,
    random_ids: Vec<u32>,
}

impl MlmBatcher {
    /// A batcher for `tokenizer`'s vocabulary, which must have `[MASK]` and padding tokens.
    pub fn new(tokenizer: Tokenizer, config: MaskingConfig) -> Result<Self, TrainError> {
        config.validate()?;
        let vocabulary = tokenizer.vocabulary();
        let specials = vocabulary.specials();
        let pad_id = specials.pad;
        let Some(mask_id) = specials.mask else {
            return Err(TrainError::Invalid(format!(
                "vocabulary `{}` has no [MASK] token; masked LM needs one",
                vocabulary.name()
            )));
        };
        let random_ids = vocabulary.standard_residue_ids();
        Ok(Self {
            tokenizer,
            config,
            mask_id,
            pad_id,
            random_ids,
        })
    }

    /// Frames, pads and masks one batch, with randomness from `batch.seed`.
    ///
    /// At least one residue per batch is chosen, so the loss is always defined.
    pub fn mask(&self, batch: &ResidueBatch) -> MaskedSequences {
        let mut rng = StdRng::seed_from_u64(batch.seed);
        let rows = batch.sequences.len();
        let seq = batch.max_len() + self.tokenizer.num_special_tokens();
        let mut input_ids = vec![i64::from(self.pad_id); rows * seq];
        let mut attention_mask = vec![0i64; rows * seq];
        let mut candidates = Vec::new();
        let mut positions = Vec::new();
        for (row, residues) in batch.sequences.iter().enumerate() {
            let framed = self.tokenizer.frame(residues.iter().copied());
            let offset = row * seq;
            for (column, &id) in framed.iter().enumerate() {
                input_ids[offset + column] = i64::from(id);
                attention_mask[offset + column] = 1;
            }
            for column in self.tokenizer.residue_span(residues.len()) {
                let flat = offset + column;
                candidates.push(flat);
                if rng.random_bool(self.config.probability) {
                    positions.push(flat);
                }
            }
        }
        if positions.is_empty() && !candidates.is_empty() {
            positions.push(candidates[rng.random_range(0..candidates.len())]);
        }
        let mut labels = Vec::with_capacity(positions.len());
        for &flat in &positions {
            labels.push(input_ids[flat]);
            let draw: f64 = rng.random();
            if draw < self.config.mask_fraction {
                input_ids[flat] = i64::from(self.mask_id);
            } else if draw < self.config.mask_fraction + self.config.random_fraction {
                let random = self.random_ids[rng.random_range(0..self.random_ids.len())];
                input_ids[flat] = i64::from(random);
            }
        }
        MaskedSequences {
            batch: rows,
            seq,
            input_ids,
            attention_mask,
            positions: positions.into_iter().map(|p| p as i64).collect(),
            labels,
        }
    }
}

/// A masked batch as tensors.
#[derive(Debug, Clone)]
pub struct MlmBatch {
    /// `[batch, seq]`.
    pub input_ids: Tensor<2, Int>,
    /// `[batch, seq]`, 1 at tokens; `None` when no sequence is padded.
    pub attention_mask: Option<Tensor<2, Int>>,
    /// `[n]` flat positions to predict.
    pub positions: Tensor<1, Int>,
    /// `[n]` original ids.
    pub labels: Tensor<1, Int>,
}

impl MaskedSequences {
    /// Moves the batch to `device`.
    pub fn to_tensors(self, device: &Device) -> MlmBatch {
        let shape = [self.batch, self.seq];
        let n = self.positions.len();
        MlmBatch {
            input_ids: Tensor::from_data(TensorData::new(self.input_ids, shape), device),
            attention_mask: (self.attention_mask.contains(&0))
                .then(|| Tensor::from_data(TensorData::new(self.attention_mask, shape), device)),
            positions: Tensor::from_data(TensorData::new(self.positions, [n]), device),
            labels: Tensor::from_data(TensorData::new(self.labels, [n]), device),
        }
    }
}

impl Batcher<ResidueBatch, MlmBatch> for MlmBatcher {
    fn batch(&self, items: Vec<ResidueBatch>, device: &Device) -> MlmBatch {
        // Items are whole planned batches; the data loader is built with batch size 1.
        let merged = ResidueBatch::merge(items);
        self.mask(&merged).to_tensors(device)
    }
}

/// A masked language model under training: the model plus how its loss is scaled.
#[derive(Module, Debug)]
pub struct MaskedLm<M: MaskedLanguageModel> {
    /// The model.
    pub model: M,
    /// Loss scaling and precision.
    #[module(skip)]
    pub steps: StepSettings,
}

impl<M: MaskedLanguageModel> MaskedLm<M> {
    /// Wraps `model`; gradients of `accumulation` steps are averaged.
    pub fn new(model: M, accumulation: usize) -> Self {
        Self {
            model,
            steps: StepSettings::default().averaging_over(accumulation, 1),
        }
    }

    /// Runs steps with `steps`' loss scaling and precision.
    pub fn with_steps(mut self, steps: StepSettings) -> Self {
        self.steps = steps;
        self
    }

    /// Loss, logits and targets of one batch.
    pub fn forward_loss(&self, batch: MlmBatch) -> ClassificationOutput {
        let input = EncoderInput {
            attention_mask: batch.attention_mask,
            ..EncoderInput::unpadded(batch.input_ids)
        };
        let model = self.steps.precision.autocast(&self.model);
        let logits = self
            .steps
            .precision
            .to_f32(model.logits_at(input, batch.positions));
        let loss = CrossEntropyLossConfig::new()
            .init(&logits.device())
            .forward(logits.clone(), batch.labels.clone());
        ClassificationOutput::new(loss, logits, batch.labels)
    }

    /// Summed loss, correct predictions and predictions of one batch (for exact averages).
    pub fn score(&self, batch: MlmBatch) -> MlmScores {
        let input = EncoderInput {
            attention_mask: batch.attention_mask,
            ..EncoderInput::unpadded(batch.input_ids)
        };
        let logits = self.model.logits_at(input, batch.positions);
        MlmScores::of(logits, batch.labels)
    }
}

crate::objectives::classification_steps!([M: MaskedLanguageModel] MaskedLm<M>, MlmBatch);

impl<M> PretrainingObjective for MaskedLm<M>
where
    M: MaskedLanguageModel,
    M::Config: RegisteredConfig,
{
    type Config = M::Config;
    type Batcher = MlmBatcher;
    const OBJECTIVE: Objective = Objective::MaskedLm;

    fn batcher(
        _: &M::Config,
        settings: &ObjectiveSettings,
        tokenizer: &Tokenizer,
    ) -> Result<MlmBatcher, TrainError> {
        MlmBatcher::new(tokenizer.clone(), settings.masking)
    }

    fn init(
        config: &M::Config,
        _: &ObjectiveSettings,
        steps: StepSettings,
        device: &Device,
    ) -> Self {
        Self::new(M::init(config, device), 1).with_steps(steps)
    }

    fn metrics(training: SupervisedTraining<Self>) -> SupervisedTraining<Self> {
        next_token_metrics(training)
    }

    fn save(
        &self,
        config: &M::Config,
        dir: &Path,
        tokenizer: &Tokenizer,
    ) -> Result<(), TrainError> {
        save_with_vocabulary(&self.model, config, dir, tokenizer)
    }

    fn evaluate(
        &self,
        batcher: &MlmBatcher,
        baseline: &UnigramBaseline,
        data: &BatchedSequences,
        device: &Device,
        _: &ObjectiveSettings,
    ) -> Result<ValidationScores, TrainError> {
        score_residues(data, baseline, |batch| {
            let masked = batcher.mask(batch);
            let labels = masked.labels.clone();
            Ok((self.score(masked.to_tensors(device)), labels))
        })
    }
}

/// Sums over predicted tokens (masked residues; for T5 also corrupted residues or whole
/// targets), for exact token-weighted averages.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct MlmScores {
    /// Summed cross-entropy (nats).
    pub loss_sum: f64,
    /// Correct argmax predictions.
    pub correct: u64,
    /// Predicted positions.
    pub predicted: u64,
}

impl MlmScores {
    /// Scores of `logits` against `labels`.
    ///
    /// # Shapes
    /// - logits: `[n, vocab]`, labels: `[n]`
    pub fn of(logits: Tensor<2>, labels: Tensor<1, Int>) -> Self {
        let n = labels.dims()[0];
        let labels = labels.reshape([n, 1]);
        let log_probs = activation::log_softmax(logits.clone(), 1);
        let nll: f64 = -log_probs
            .gather(1, labels.clone())
            .sum()
            .into_scalar::<f64>();
        let correct = logits
            .argmax(1)
            .equal(labels)
            .int()
            .sum()
            .into_scalar::<i64>();
        MlmScores {
            loss_sum: nll,
            correct: correct as u64,
            predicted: n as u64,
        }
    }

    /// Adds another batch.
    pub fn add(&mut self, other: MlmScores) {
        self.loss_sum += other.loss_sum;
        self.correct += other.correct;
        self.predicted += other.predicted;
    }

    /// Mean cross-entropy per predicted residue (nats).
    pub fn loss(&self) -> f64 {
        self.loss_sum / self.predicted.max(1) as f64
    }

    /// Fraction of predicted residues recovered.
    pub fn accuracy(&self) -> f64 {
        self.correct as f64 / self.predicted.max(1) as f64
    }

    /// `exp(loss)`.
    pub fn perplexity(&self) -> f64 {
        self.loss().exp()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn batch(seed: u64, lengths: &[usize]) -> ResidueBatch {
        let mut rng = StdRng::seed_from_u64(seed);
        ResidueBatch {
            sequences: lengths
                .iter()
                .map(|&n| (0..n).map(|_| rng.random_range(5..25)).collect())
                .collect(),
            seed,
        }
    }

    /// Over thousands of draws: the masking rate, the 80/10/10 split, and specials and padding
    /// never touched.
    #[test]
    fn masking_statistics() {
        let batcher = MlmBatcher::new(Tokenizer::prot_bert(), MaskingConfig::default()).unwrap();
        let (mut residues, mut chosen, mut masked, mut random, mut kept) = (0, 0, 0, 0, 0);
        for seed in 0..3000 {
            let b = batch(seed, &[5, 40, 17, 33]);
            let m = batcher.mask(&b);
            residues += b.residues();
            chosen += m.positions.len();
            for (&p, &label) in m.positions.iter().zip(&m.labels) {
                let p = p as usize;
                let (row, column) = (p / m.seq, p % m.seq);
                let len = b.sequences[row].len();
                assert!((1..=len).contains(&column), "only residues are chosen");
                assert_eq!(label, i64::from(b.sequences[row][column - 1]));
                match m.input_ids[p] {
                    4 => masked += 1,
                    id if id == label => kept += 1,
                    id => {
                        assert!(
                            (5..25).contains(&id),
                            "random replacements are standard residues"
                        );
                        random += 1;
                    }
                }
            }
            // Specials and padding are left as they are.
            for (row, seq) in b.sequences.iter().enumerate() {
                let offset = row * m.seq;
                assert_eq!(m.input_ids[offset], 2, "[CLS]");
                assert_eq!(m.input_ids[offset + seq.len() + 1], 3, "[SEP]");
                for column in seq.len() + 2..m.seq {
                    assert_eq!(m.input_ids[offset + column], 0, "padding");
                    assert_eq!(m.attention_mask[offset + column], 0);
                }
            }
        }
        let rate = chosen as f64 / residues as f64;
        assert!((rate - 0.15).abs() < 0.005, "masking rate {rate}");
        let n = chosen as f64;
        // A random replacement equals the original 1 time in 20, counted as kept.
        let random_fraction = random as f64 / n;
        assert!(
            (masked as f64 / n - 0.8).abs() < 0.01,
            "mask {}",
            masked as f64 / n
        );
        assert!(
            (random_fraction - 0.1 * 0.95).abs() < 0.01,
            "random {random_fraction}"
        );
        assert!(
            (kept as f64 / n - (0.1 + 0.1 * 0.05)).abs() < 0.01,
            "kept {}",
            kept as f64 / n
        );
    }

    #[test]
    fn every_batch_has_a_target() {
        let batcher = MlmBatcher::new(Tokenizer::prot_bert(), MaskingConfig::default()).unwrap();
        for seed in 0..200 {
            assert!(!batcher.mask(&batch(seed, &[1])).positions.is_empty());
        }
    }

    #[test]
    fn rejects_bad_rates() {
        let config = MaskingConfig {
            mask_fraction: 0.95,
            random_fraction: 0.1,
            ..MaskingConfig::default()
        };
        assert!(MlmBatcher::new(Tokenizer::prot_bert(), config).is_err());
    }
}
