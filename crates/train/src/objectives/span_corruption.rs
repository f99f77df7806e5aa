//! T5 denoising as the ProtT5 authors describe it (their code was never released): span
//! corruption with spans of one residue. 15% of residues are chosen; each becomes its own
//! sentinel (`<extra_id_0>`, `<extra_id_1>`, ... in order) with probability 0.9 or a random
//! standard residue otherwise, and the decoder reconstructs the *whole* original sequence
//! (`residues </s>`) with teacher forcing. Loss is the mean cross-entropy over every target
//! token; accuracy is reported over all of them and over the corrupted residues alone.
//!
//! The vocabulary has 100 sentinels, so at most 100 residues per sequence become sentinels;
//! further choices are dropped (at the default rate this needs sequences of over 700 residues).

use burn::data::dataloader::batcher::Batcher;
use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::tensor::{Device, ExecutionError, Int, Tensor, TensorData, TensorReadError, activation};
use burn::train::metric::{
    Adaptor, LossInput, Metric, MetricAttributes, MetricMetadata, MetricName, Numeric,
    NumericAttributes, NumericEntry, SerializedEntry,
};
use std::path::Path;

use burn::data::dataset::Dataset;
use burn::train::metric::{LearningRateMetric, LossMetric};
use burn::train::{InferenceStep, ItemLazy, SupervisedTraining, TrainOutput, TrainStep};
use prottrans_data::{BatchedSequences, ResidueBatch, Tokenizer};
use prottrans_import::save_pretrained;
use prottrans_models::{EncoderInput, Objective, T5Config, T5ForConditionalGeneration};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde::{Deserialize, Serialize};

use crate::baseline::UnigramBaseline;
use crate::error::TrainError;
use crate::objectives::StepSettings;
use crate::objectives::mlm::MlmScores;
use crate::objectives::pretraining::{ObjectiveSettings, PretrainingObjective, ValidationScores};

/// Sentinel tokens in the ProtT5 vocabulary.
pub const SENTINELS: usize = 100;

/// Corruption rates.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CorruptionConfig {
    /// Fraction of residues corrupted.
    pub probability: f64,
    /// Of the corrupted, the fraction replaced by a sentinel (the rest by a random residue).
    pub sentinel_fraction: f64,
}

impl Default for CorruptionConfig {
    fn default() -> Self {
        Self {
            probability: 0.15,
            sentinel_fraction: 0.9,
        }
    }
}

impl CorruptionConfig {
    /// Checks the rates.
    pub fn validate(&self) -> Result<(), TrainError> {
        let valid = self.probability > 0.0
            && self.probability <= 1.0
            && (0.0..=1.0).contains(&self.sentinel_fraction);
        if !valid {
            return Err(TrainError::Invalid(format!(
                "corruption rates must be probabilities with probability > 0, got {self:?}"
            )));
        }
        Ok(())
    }
}

/// A corrupted batch on the host, before it becomes tensors. Source and target have the same
/// length (`residues </s>`, padded), since every span is one residue replaced in place.
#[derive(Debug, Clone, PartialEq)]
pub struct CorruptedSequences {
    /// Sequences in the batch.
    pub batch: usize,
    /// Padded length of source and target.
    pub seq: usize,
    /// Encoder input, row-major `[batch, seq]`.
    pub input_ids: Vec<i64>,
    /// 1 at tokens, 0 at padding, `[batch, seq]`.
    pub attention_mask: Vec<i64>,
    /// The targets shifted right behind the start token, `[batch, seq]`.
    pub decoder_input_ids: Vec<i64>,
    /// Flat indices (`row * seq + column`) of the real target tokens.
    pub target_positions: Vec<i64>,
    /// The original tokens there (residues and `</s>`).
    pub targets: Vec<i64>,
    /// 1 where the target's residue was corrupted in the input, per target.
    pub corrupted: Vec<i64>,
}

/// Frames, pads and corrupts [`ResidueBatch`]es for T5.
#[derive(Debug, Clone)]
pub struct SpanCorruptionBatcher {
    config: CorruptionConfig,
    sentinels: Vec<u32>,
    random_ids: Vec<u32>,
    pad_id: u32,
    eos_id: u32,
    start_id: u32,
}

impl SpanCorruptionBatcher {
    /// A batcher for `tokenizer`'s vocabulary, which must have `</s>` and the sentinels
    /// `<extra_id_0>`...; `start_id` is the model's `decoder_start_token_id`.
    pub fn new(
        tokenizer: &Tokenizer,
        config: CorruptionConfig,
        start_id: u32,
    ) -> Result<Self, TrainError> {
        config.validate()?;
        let vocabulary = tokenizer.vocabulary();
        let Some(eos_id) = vocabulary.specials().eos else {
            return Err(TrainError::Invalid(format!(
                "vocabulary `{}` has no </s> token; T5 targets end with one",
                vocabulary.name()
            )));
        };
        let sentinels: Vec<u32> = (0..SENTINELS)
            .map_while(|k| vocabulary.id(&format!("<extra_id_{k}>")))
            .collect();
        if sentinels.is_empty() {
            return Err(TrainError::Invalid(format!(
                "vocabulary `{}` has no sentinel tokens (<extra_id_0>, ...)",
                vocabulary.name()
            )));
        }
        Ok(Self {
            config,
            sentinels,
            random_ids: vocabulary.standard_residue_ids(),
            pad_id: vocabulary.specials().pad,
            eos_id,
            start_id,
        })
    }

    /// Whether `id` is one of the sentinels.
    pub fn is_sentinel(&self, id: i64) -> bool {
        self.sentinels.iter().any(|&s| i64::from(s) == id)
    }

    /// Corrupts one batch, with randomness from `batch.seed`. At least one residue per batch is
    /// corrupted, so the corrupted-residue accuracy is always defined.
    pub fn corrupt(&self, batch: &ResidueBatch) -> CorruptedSequences {
        let mut rng = StdRng::seed_from_u64(batch.seed);
        let rows = batch.sequences.len();
        let seq = batch.max_len() + 1;
        let pad = i64::from(self.pad_id);
        let mut out = CorruptedSequences {
            batch: rows,
            seq,
            input_ids: vec![pad; rows * seq],
            attention_mask: vec![0; rows * seq],
            decoder_input_ids: vec![pad; rows * seq],
            target_positions: Vec::new(),
            targets: Vec::new(),
            corrupted: Vec::new(),
        };
        for (row, residues) in batch.sequences.iter().enumerate() {
            let offset = row * seq;
            let targets: Vec<i64> = residues
                .iter()
                .map(|&r| i64::from(r))
                .chain([i64::from(self.eos_id)])
                .collect();
            let mut sentinels_used = 0;
            for (column, &target) in targets.iter().enumerate() {
                let flat = offset + column;
                out.attention_mask[flat] = 1;
                out.decoder_input_ids[flat] = if column == 0 {
                    i64::from(self.start_id)
                } else {
                    targets[column - 1]
                };
                out.target_positions.push(flat as i64);
                out.targets.push(target);
                let is_residue = column < residues.len();
                let mut corrupted = false;
                let mut input = target;
                if is_residue && rng.random_bool(self.config.probability) {
                    if rng.random_bool(self.config.sentinel_fraction) {
                        if let Some(&sentinel) = self.sentinels.get(sentinels_used) {
                            input = i64::from(sentinel);
                            sentinels_used += 1;
                            corrupted = true;
                        }
                    } else {
                        input =
                            i64::from(self.random_ids[rng.random_range(0..self.random_ids.len())]);
                        corrupted = true;
                    }
                }
                out.input_ids[flat] = input;
                out.corrupted.push(i64::from(corrupted));
            }
        }
        if !out.corrupted.contains(&1) {
            // Corrupt one residue (never `</s>`) with the first sentinel.
            let residues: Vec<usize> = (0..out.targets.len())
                .filter(|&i| out.targets[i] != i64::from(self.eos_id))
                .collect();
            if !residues.is_empty() {
                let i = residues[rng.random_range(0..residues.len())];
                out.input_ids[out.target_positions[i] as usize] = i64::from(self.sentinels[0]);
                out.corrupted[i] = 1;
            }
        }
        out
    }
}

/// A corrupted batch as tensors.
#[derive(Debug, Clone)]
pub struct T5Batch {
    /// `[batch, seq]`.
    pub input_ids: Tensor<2, Int>,
    /// `[batch, seq]`, 1 at tokens; `None` when no sequence is padded.
    pub attention_mask: Option<Tensor<2, Int>>,
    /// `[batch, seq]`.
    pub decoder_input_ids: Tensor<2, Int>,
    /// `[n]` flat positions of real targets.
    pub target_positions: Tensor<1, Int>,
    /// `[n]` target ids.
    pub targets: Tensor<1, Int>,
    /// `[n]` 1 where the residue was corrupted.
    pub corrupted: Tensor<1, Int>,
}

impl CorruptedSequences {
    /// Moves the batch to `device`.
    pub fn to_tensors(self, device: &Device) -> T5Batch {
        let shape = [self.batch, self.seq];
        let n = self.targets.len();
        let ints2 = |v: Vec<i64>| Tensor::<2, Int>::from_data(TensorData::new(v, shape), device);
        let ints1 = |v: Vec<i64>| Tensor::<1, Int>::from_data(TensorData::new(v, [n]), device);
        T5Batch {
            attention_mask: self
                .attention_mask
                .contains(&0)
                .then(|| ints2(self.attention_mask)),
            input_ids: ints2(self.input_ids),
            decoder_input_ids: ints2(self.decoder_input_ids),
            target_positions: ints1(self.target_positions),
            targets: ints1(self.targets),
            corrupted: ints1(self.corrupted),
        }
    }
}

impl Batcher<ResidueBatch, T5Batch> for SpanCorruptionBatcher {
    fn batch(&self, items: Vec<ResidueBatch>, device: &Device) -> T5Batch {
        // Items are whole planned batches; the data loader is built with batch size 1.
        let merged = ResidueBatch::merge(items);
        self.corrupt(&merged).to_tensors(device)
    }
}

/// A T5 under denoising training: the model plus how its loss is scaled.
#[derive(Module, Debug)]
pub struct SpanCorruption {
    /// The model.
    pub model: T5ForConditionalGeneration,
    /// Loss scaling and precision.
    #[module(skip)]
    pub steps: StepSettings,
}

/// Loss, logits, targets and which targets were corrupted, for burn-train's metrics.
#[derive(Debug, Clone)]
pub struct ReconstructionOutput {
    /// Mean cross-entropy over every target, `[1]`.
    pub loss: Tensor<1>,
    /// `[n, vocab]`.
    pub logits: Tensor<2>,
    /// `[n]`.
    pub targets: Tensor<1, Int>,
    /// `[n]`, 1 at corrupted residues.
    pub corrupted: Tensor<1, Int>,
}

impl SpanCorruption {
    /// Wraps `model`; gradients of `accumulation` steps are averaged.
    pub fn new(model: T5ForConditionalGeneration, accumulation: usize) -> Self {
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

    /// Logits at every real target position.
    ///
    /// # Shapes
    /// - batch of `[b, seq]` -> `[n, vocab]`
    pub fn logits(&self, batch: &T5Batch) -> Tensor<2> {
        target_logits(&self.model, batch)
    }

    /// Loss and outputs of one batch, computed in the training precision.
    pub fn forward_output(&self, batch: T5Batch) -> ReconstructionOutput {
        let model = self.steps.precision.autocast(&self.model);
        let logits = self.steps.precision.to_f32(target_logits(&model, &batch));
        let loss = CrossEntropyLossConfig::new()
            .init(&logits.device())
            .forward(logits.clone(), batch.targets.clone());
        ReconstructionOutput {
            loss,
            logits,
            targets: batch.targets,
            corrupted: batch.corrupted,
        }
    }

    /// Exact sums over one batch, for evaluation.
    pub fn score(&self, batch: T5Batch) -> Result<ReconstructionScores, TensorReadError> {
        let logits = self.logits(&batch);
        let n = batch.targets.dims()[0];
        let targets = batch.targets.reshape([n, 1]);
        let nll = -activation::log_softmax(logits.clone(), 1)
            .gather(1, targets.clone())
            .reshape([n]);
        let nll = nll.into_data().try_into_vec_as::<f64>()?;
        let correct = logits
            .argmax(1)
            .equal(targets)
            .int()
            .reshape([n])
            .into_data()
            .try_into_vec_as::<i64>()?;
        let corrupted = batch.corrupted.into_data().try_into_vec_as::<i64>()?;
        let mut scores = ReconstructionScores::default();
        for ((loss_sum, right), hit) in nll.into_iter().zip(correct).zip(corrupted) {
            let token = MlmScores {
                loss_sum,
                correct: right as u64,
                predicted: 1,
            };
            scores.all.add(token);
            if hit == 1 {
                scores.corrupted.add(token);
            }
        }
        Ok(scores)
    }
}

impl TrainStep for SpanCorruption {
    type Input = T5Batch;
    type Output = ReconstructionOutput;

    fn step(&self, batch: T5Batch) -> TrainOutput<ReconstructionOutput> {
        let output = self.forward_output(batch);
        let grads =
            self.steps
                .precision
                .gradients(output.loss.clone(), self.steps.loss_scale, self);
        TrainOutput {
            grads,
            item: output,
        }
    }
}

/// `model`'s logits at every real target position of `batch`.
fn target_logits(model: &T5ForConditionalGeneration, batch: &T5Batch) -> Tensor<2> {
    let input = EncoderInput {
        attention_mask: batch.attention_mask.clone(),
        ..EncoderInput::unpadded(batch.input_ids.clone())
    };
    let logits = model.forward(input, batch.decoder_input_ids.clone());
    let [b, seq, vocab] = logits.dims();
    logits
        .reshape([b * seq, vocab])
        .select(0, batch.target_positions.clone())
}

impl InferenceStep for SpanCorruption {
    type Input = T5Batch;
    type Output = ReconstructionOutput;

    fn step(&self, batch: T5Batch) -> ReconstructionOutput {
        self.forward_output(batch)
    }
}

impl PretrainingObjective for SpanCorruption {
    type Config = T5Config;
    type Batcher = SpanCorruptionBatcher;
    const OBJECTIVE: Objective = Objective::SpanCorruption;

    fn batcher(
        config: &T5Config,
        settings: &ObjectiveSettings,
        tokenizer: &Tokenizer,
    ) -> Result<SpanCorruptionBatcher, TrainError> {
        let start = u32::try_from(config.decoder_start_token_id)
            .map_err(|_| TrainError::Invalid("decoder_start_token_id is out of range".into()))?;
        SpanCorruptionBatcher::new(tokenizer, settings.corruption, start)
    }

    fn init(
        config: &T5Config,
        _: &ObjectiveSettings,
        steps: StepSettings,
        device: &Device,
    ) -> Self {
        Self::new(config.init(device), 1).with_steps(steps)
    }

    fn metrics(training: SupervisedTraining<Self>) -> SupervisedTraining<Self> {
        training
            .metric_train_numeric(LossMetric::new())
            .metric_train_numeric(ReconstructionAccuracy::corrupted())
            .metric_train_numeric(ReconstructionAccuracy::all())
            .metric_train_numeric(LearningRateMetric::new())
            .metric_valid_numeric(LossMetric::new())
            .metric_valid_numeric(ReconstructionAccuracy::corrupted())
            .metric_valid_numeric(ReconstructionAccuracy::all())
    }

    /// The checkpoint alone: ProtT5's sentencepiece ids are fixed, so no vocabulary is written.
    fn save(&self, config: &T5Config, dir: &Path, _: &Tokenizer) -> Result<(), TrainError> {
        Ok(save_pretrained(&self.model, config, dir)?)
    }

    /// The corrupted residues against the unigram baseline, and whole sequences against
    /// copying the corrupted input (the majority residue at sentinels).
    fn evaluate(
        &self,
        batcher: &SpanCorruptionBatcher,
        baseline: &UnigramBaseline,
        data: &BatchedSequences,
        device: &Device,
        _: &ObjectiveSettings,
    ) -> Result<ValidationScores, TrainError> {
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
            let batch_scores = self
                .score(corrupted.to_tensors(device))
                .map_err(|e| TrainError::Training(format!("reading scores: {e:?}")))?;
            scores.merge(batch_scores);
        }
        let (unigram_loss, unigram_accuracy) = baseline.score(corrupted_labels);
        Ok(ValidationScores {
            model: scores.corrupted,
            unigram_loss,
            unigram_accuracy,
            reconstruction: Some(ReconstructionReport {
                tokens: scores.all.predicted,
                loss: scores.all.loss(),
                accuracy: scores.all.accuracy(),
                copy_baseline_accuracy: copied as f64 / targets.max(1) as f64,
            }),
            discriminator: None,
        })
    }
}

/// How well a T5 reconstructs whole validation sequences.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
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

impl ItemLazy for ReconstructionOutput {
    fn sync(self) -> Result<Self, ExecutionError> {
        self.loss.device().flush()?;
        Ok(Self {
            loss: self.loss.without_autodiff(),
            logits: self.logits.without_autodiff(),
            targets: self.targets.without_autodiff(),
            corrupted: self.corrupted.without_autodiff(),
        })
    }
}

impl Adaptor<LossInput> for ReconstructionOutput {
    fn adapt(&self) -> LossInput {
        LossInput::new(self.loss.clone())
    }
}

/// Reconstruction scores over every target token and over the corrupted residues.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ReconstructionScores {
    /// Every target token (residues and `</s>`).
    pub all: MlmScores,
    /// The residues that were corrupted in the input.
    pub corrupted: MlmScores,
}

impl ReconstructionScores {
    /// Adds another batch.
    pub fn merge(&mut self, other: ReconstructionScores) {
        self.all.add(other.all);
        self.corrupted.add(other.corrupted);
    }
}

/// Input of [`ReconstructionAccuracy`]: correct predictions per target and corruption flags.
#[derive(Debug, Clone)]
pub struct ReconstructionInput {
    logits: Tensor<2>,
    targets: Tensor<1, Int>,
    corrupted: Tensor<1, Int>,
}

impl Adaptor<ReconstructionInput> for ReconstructionOutput {
    fn adapt(&self) -> ReconstructionInput {
        ReconstructionInput {
            logits: self.logits.clone(),
            targets: self.targets.clone(),
            corrupted: self.corrupted.clone(),
        }
    }
}

/// Reconstruction accuracy (percent) over every target token, or over corrupted residues only.
#[derive(Debug, Clone)]
pub struct ReconstructionAccuracy {
    corrupted_only: bool,
    batch: (u64, u64),
    epoch: (u64, u64),
}

impl ReconstructionAccuracy {
    /// Accuracy over every target token ("Reconstruction Accuracy").
    pub fn all() -> Self {
        Self {
            corrupted_only: false,
            batch: (0, 0),
            epoch: (0, 0),
        }
    }

    /// Accuracy over corrupted residues ("Corrupted Accuracy").
    pub fn corrupted() -> Self {
        Self {
            corrupted_only: true,
            ..Self::all()
        }
    }

    fn percent((correct, total): (u64, u64)) -> f64 {
        100.0 * correct as f64 / total.max(1) as f64
    }

    fn entry(&self, final_entry: bool) -> SerializedEntry {
        let (epoch, batch) = (Self::percent(self.epoch), Self::percent(self.batch));
        let serialized = if final_entry {
            NumericEntry::Final(epoch).serialize()
        } else {
            NumericEntry::Aggregated {
                aggregated_value: batch,
                count: self.batch.1 as usize,
            }
            .serialize()
        };
        SerializedEntry::new(format!("epoch {epoch:.2} - batch {batch:.2}"), serialized)
    }
}

impl Metric for ReconstructionAccuracy {
    type Input = ReconstructionInput;

    fn name(&self) -> MetricName {
        MetricName::new(
            if self.corrupted_only {
                "Corrupted Accuracy"
            } else {
                "Reconstruction Accuracy"
            }
            .to_string(),
        )
    }

    fn attributes(&self) -> MetricAttributes {
        NumericAttributes {
            unit: Some("%".to_string()),
            higher_is_better: true,
        }
        .into()
    }

    fn update(
        &mut self,
        input: &ReconstructionInput,
        _: &MetricMetadata,
    ) -> Result<SerializedEntry, TensorReadError> {
        let predicted = input
            .logits
            .clone()
            .argmax(1)
            .reshape([input.targets.dims()[0]]);
        let hits = predicted.equal(input.targets.clone()).int();
        let (correct, total) = if self.corrupted_only {
            let correct = (hits * input.corrupted.clone()).sum();
            (correct, input.corrupted.clone().sum())
        } else {
            let n = input.targets.dims()[0] as i64;
            (
                hits.sum(),
                Tensor::<1, Int>::from_ints([n], &input.targets.device()),
            )
        };
        let correct = correct.into_data().try_into_vec_as::<i64>()?[0] as u64;
        let total = total.into_data().try_into_vec_as::<i64>()?[0] as u64;
        self.batch = (correct, total);
        self.epoch = (self.epoch.0 + correct, self.epoch.1 + total);
        Ok(self.entry(false))
    }

    fn compute(&mut self) -> Result<SerializedEntry, TensorReadError> {
        Ok(self.entry(true))
    }

    fn clear(&mut self) {
        self.batch = (0, 0);
        self.epoch = (0, 0);
    }
}

impl Numeric for ReconstructionAccuracy {
    fn value(&self) -> Option<NumericEntry> {
        (self.batch.1 > 0).then(|| NumericEntry::Aggregated {
            aggregated_value: Self::percent(self.batch),
            count: self.batch.1 as usize,
        })
    }

    fn running_value(&self) -> Option<NumericEntry> {
        Some(NumericEntry::Aggregated {
            aggregated_value: Self::percent(self.epoch),
            count: self.epoch.1 as usize,
        })
    }

    fn final_value(&self) -> NumericEntry {
        NumericEntry::Final(Self::percent(self.epoch))
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
                .map(|&n| (0..n).map(|_| rng.random_range(3..23)).collect())
                .collect(),
            seed,
        }
    }

    /// Over thousands of draws: the corruption rate, the 90/10 split, sentinels in order and
    /// unique per sequence, targets the original `residues </s>`, decoder inputs shifted.
    #[test]
    fn corruption_statistics_and_layout() {
        let tokenizer = Tokenizer::prot_t5();
        let batcher =
            SpanCorruptionBatcher::new(&tokenizer, CorruptionConfig::default(), 0).unwrap();
        let (mut residues, mut chosen, mut sentinel, mut random_differs) = (0, 0, 0, 0);
        for seed in 0..2000 {
            let b = batch(seed, &[5, 40, 17, 33]);
            let c = batcher.corrupt(&b);
            assert_eq!(c.seq, 41);
            let mut k = 0;
            for (row, seq) in b.sequences.iter().enumerate() {
                residues += seq.len();
                let offset = row * c.seq;
                let mut expected_sentinel = 127; // <extra_id_0>
                for column in 0..c.seq {
                    let flat = offset + column;
                    if column > seq.len() {
                        assert_eq!(
                            (c.input_ids[flat], c.attention_mask[flat]),
                            (0, 0),
                            "padding"
                        );
                        continue;
                    }
                    assert_eq!(c.target_positions[k], flat as i64);
                    let target = if column == seq.len() {
                        1
                    } else {
                        i64::from(seq[column])
                    };
                    assert_eq!(c.targets[k], target);
                    let previous = if column == 0 {
                        0
                    } else {
                        i64::from(seq[column - 1])
                    };
                    assert_eq!(c.decoder_input_ids[flat], previous, "shifted right");
                    let input = c.input_ids[flat];
                    if c.corrupted[k] == 1 {
                        chosen += 1;
                        if input >= 28 {
                            assert_eq!(input, expected_sentinel, "sentinels in order");
                            expected_sentinel -= 1;
                            sentinel += 1;
                        } else {
                            assert!((3..23).contains(&input), "random residues are standard");
                            random_differs += usize::from(input != target);
                        }
                    } else {
                        assert_eq!(input, target, "untouched");
                    }
                    k += 1;
                }
            }
            assert_eq!(k, c.targets.len());
        }
        let rate = chosen as f64 / residues as f64;
        assert!((rate - 0.15).abs() < 0.005, "corruption rate {rate}");
        let sentinel_share = sentinel as f64 / chosen as f64;
        assert!(
            (sentinel_share - 0.9).abs() < 0.01,
            "sentinel share {sentinel_share}"
        );
        assert!(random_differs > 0);
    }

    #[test]
    fn sentinels_run_out_after_one_hundred() {
        let tokenizer = Tokenizer::prot_t5();
        let config = CorruptionConfig {
            probability: 1.0,
            sentinel_fraction: 1.0,
        };
        let batcher = SpanCorruptionBatcher::new(&tokenizer, config, 0).unwrap();
        let c = batcher.corrupt(&batch(1, &[150]));
        assert_eq!(c.corrupted.iter().sum::<i64>(), 100);
        assert_eq!(c.input_ids[99], 28, "<extra_id_99>");
        assert_eq!(
            c.input_ids[100],
            i64::from(batch(1, &[150]).sequences[0][100])
        );
    }

    #[test]
    fn every_batch_has_a_corrupted_residue_and_bert_vocabularies_are_refused() {
        let tokenizer = Tokenizer::prot_t5();
        let batcher =
            SpanCorruptionBatcher::new(&tokenizer, CorruptionConfig::default(), 0).unwrap();
        for seed in 0..200 {
            assert!(batcher.corrupt(&batch(seed, &[1])).corrupted.contains(&1));
        }
        let err =
            SpanCorruptionBatcher::new(&Tokenizer::prot_bert(), CorruptionConfig::default(), 0)
                .unwrap_err()
                .to_string();
        assert!(err.contains("</s>"), "{err}");
    }
}
