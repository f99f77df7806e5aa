//! Replaced-token detection, as ELECTRA and ProtElectra.
//!
//! Residues are masked as for masked LM ([`MlmBatcher`](super::mlm::MlmBatcher)); the generator
//! predicts them, and a replacement for each is **sampled** from the generator's distribution
//! (not its argmax, so the discriminator sees plausible mistakes). The discriminator then reads
//! the sequence with those replacements and decides, for every token, whether it differs from
//! the original: a sample equal to the original counts as original, as in ELECTRA. The loss is
//! `generator cross-entropy + discriminator_weight x discriminator BCE` (ELECTRA's weight: 50),
//! the BCE averaged over real tokens, special tokens included, as `ElectraForPreTraining`.
//! No gradient flows through the sampling: the generator learns from its own loss only.
//!
//! As a control, `[electra] replacements = "unigram"` shuffles each batch's chosen residues
//! among the chosen positions instead ([`Replacements::Unigram`]): the discriminator can then
//! tell a replaced residue only from its context.

use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::tensor::{
    Distribution, ExecutionError, IndexingUpdateOp, Int, Tensor, TensorReadError, activation,
};
use burn::train::metric::{
    Adaptor, LossInput, Metric, MetricAttributes, MetricMetadata, MetricName, Numeric,
    NumericAttributes, NumericEntry, SerializedEntry,
};
use std::path::Path;

use burn::tensor::Device;
use burn::train::metric::{LearningRateMetric, LossMetric};
use burn::train::{InferenceStep, ItemLazy, SupervisedTraining, TrainOutput, TrainStep};
use prottrans_data::{BatchedSequences, Tokenizer};
use prottrans_import::{ELECTRA_GENERATOR_DIR, save_electra};
use prottrans_models::{Electra, ElectraConfig, EncoderInput, Objective};
use serde::{Deserialize, Serialize};

use crate::baseline::UnigramBaseline;
use crate::error::TrainError;
use crate::objectives::StepSettings;
use crate::objectives::mlm::{MlmBatch, MlmBatcher, MlmScores};
use crate::objectives::pretraining::{
    ObjectiveSettings, PretrainingObjective, ValidationScores, save_vocabulary, score_residues,
};

/// ELECTRA's weight of the discriminator loss.
pub const DEFAULT_DISCRIMINATOR_WEIGHT: f64 = 50.0;

/// Where ELECTRA's discriminator gets its replaced residues from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Replacements {
    /// Sampled from the generator's distribution (ELECTRA).
    #[default]
    Generator,
    /// The chosen residues of each batch, shuffled among the chosen positions: replacements
    /// follow the data's residue frequencies exactly, so a residue's letter says nothing about
    /// whether it was replaced and only its context can (a control for the discriminator).
    Unigram,
}

/// ELECTRA under training: the generator and discriminator, the loss weight and how the loss is
/// scaled.
#[derive(Module, Debug)]
pub struct ReplacedTokenDetection {
    /// Shared embeddings, generator and discriminator.
    pub model: Electra,
    discriminator_weight: f64,
    /// Where the replacements come from.
    #[module(skip)]
    pub replacements: Replacements,
    /// Loss scaling and precision.
    #[module(skip)]
    pub steps: StepSettings,
}

/// Everything burn-train's metrics need from one batch.
#[derive(Debug, Clone)]
pub struct ReplacedTokenOutput {
    /// `generator + weight x discriminator`, `[1]`.
    pub loss: Tensor<1>,
    /// Generator cross-entropy on masked residues, `[1]`.
    pub generator_loss: Tensor<1>,
    /// Discriminator BCE over real tokens, `[1]`.
    pub discriminator_loss: Tensor<1>,
    /// Generator logits at masked residues, `[n, vocab]`.
    pub generator_logits: Tensor<2>,
    /// Original residues at masked positions, `[n]`.
    pub labels: Tensor<1, Int>,
    /// Discriminator logits of every token, `[batch * seq]`.
    pub discriminator_logits: Tensor<1>,
    /// 1 where the discriminator's input differs from the original, `[batch * seq]`.
    pub replaced: Tensor<1>,
    /// 1 at real tokens, 0 at padding, `[batch * seq]`.
    pub weights: Tensor<1>,
    /// The discriminator's input at the masked positions (the replacement, or the original
    /// where it was drawn again), `[n]`.
    pub sampled: Tensor<1, Int>,
    /// The discriminator's logits at the masked positions, `[n]`.
    pub chosen_logits: Tensor<1>,
}

impl ReplacedTokenDetection {
    /// Wraps `model`, weighting the discriminator loss by `discriminator_weight`.
    pub fn new(model: Electra, discriminator_weight: f64) -> Self {
        Self {
            model,
            discriminator_weight,
            replacements: Replacements::Generator,
            steps: StepSettings::default(),
        }
    }

    /// Draws the discriminator's replacements from `replacements` instead of the generator.
    pub fn with_replacements(mut self, replacements: Replacements) -> Self {
        self.replacements = replacements;
        self
    }

    /// Runs steps with `steps`' loss scaling and precision.
    pub fn with_steps(mut self, steps: StepSettings) -> Self {
        self.steps = steps;
        self
    }

    /// Generator step, sampling, discriminator step and both losses for one masked batch.
    pub fn forward_output(&self, batch: MlmBatch) -> ReplacedTokenOutput {
        let [rows, seq] = batch.input_ids.dims();
        let device = batch.input_ids.device();
        let input = EncoderInput {
            attention_mask: batch.attention_mask.clone(),
            ..EncoderInput::unpadded(batch.input_ids.clone())
        };
        let model = self.steps.precision.autocast(&self.model);
        let generator_logits = self
            .steps
            .precision
            .to_f32(model.generator_logits_at(input, batch.positions.clone()));
        let generator_loss = CrossEntropyLossConfig::new()
            .init(&device)
            .forward(generator_logits.clone(), batch.labels.clone());

        let [n, vocab] = generator_logits.dims();
        let sampled = match self.replacements {
            // Gumbel-max: argmax(logits + Gumbel noise) is a sample of softmax(logits).
            Replacements::Generator => {
                let uniform =
                    Tensor::<2>::random([n, vocab], Distribution::Uniform(1e-10, 1.0), &device);
                let gumbel = -(-uniform.log()).log();
                (generator_logits.clone().detach() + gumbel)
                    .argmax(1)
                    .reshape([n])
            }
            // A random permutation of the chosen residues (the order of uniform draws).
            Replacements::Unigram => {
                let order =
                    Tensor::<1>::random([n], Distribution::Uniform(0.0, 1.0), &device).argsort(0);
                batch.labels.clone().select(0, order)
            }
        };
        // The discriminator reads the original sequence with the samples at masked positions
        // (the generator's input has `[MASK]` or a random residue there). Positions are
        // distinct, so adding a difference writes a value in place.
        let masked_input = batch.input_ids.reshape([rows * seq]);
        let at_positions = masked_input.clone().select(0, batch.positions.clone());
        let original = masked_input.clone().select_assign(
            0,
            batch.positions.clone(),
            batch.labels.clone() - at_positions.clone(),
            IndexingUpdateOp::Add,
        );
        let corrupted = masked_input.select_assign(
            0,
            batch.positions.clone(),
            sampled.clone() - at_positions,
            IndexingUpdateOp::Add,
        );
        let replaced = corrupted.clone().not_equal(original).float();

        let weights = match &batch.attention_mask {
            Some(mask) => mask.clone().reshape([rows * seq]).float(),
            None => Tensor::ones([rows * seq], &device),
        };
        let discriminator_input = EncoderInput {
            attention_mask: batch.attention_mask,
            ..EncoderInput::unpadded(corrupted.reshape([rows, seq]))
        };
        let discriminator_logits = self
            .steps
            .precision
            .to_f32(model.discriminator_logits(discriminator_input))
            .reshape([rows * seq]);
        // BCE with logits, written stably: softplus(x) - x * y.
        let bce = activation::softplus(discriminator_logits.clone(), 1.0)
            - discriminator_logits.clone() * replaced.clone();
        let discriminator_loss = (bce * weights.clone()).sum() / weights.clone().sum();
        let chosen_logits = discriminator_logits.clone().select(0, batch.positions);
        let loss = generator_loss.clone() + discriminator_loss.clone() * self.discriminator_weight;
        ReplacedTokenOutput {
            loss,
            generator_loss,
            discriminator_loss,
            generator_logits,
            labels: batch.labels,
            discriminator_logits,
            replaced,
            weights,
            sampled,
            chosen_logits,
        }
    }

    /// Exact sums over one batch, for evaluation (the sampling uses the device's generator, so
    /// seed the device for reproducible numbers).
    pub fn score(&self, batch: MlmBatch) -> Result<ReplacedTokenScores, TensorReadError> {
        let output = self.forward_output(batch);
        let generator = MlmScores::of(output.generator_logits.clone(), output.labels.clone());
        let mut scores = ReplacedTokenScores {
            generator,
            ..ReplacedTokenScores::default()
        };
        scores.add_tokens(&output)?;
        Ok(scores)
    }
}

impl TrainStep for ReplacedTokenDetection {
    type Input = MlmBatch;
    type Output = ReplacedTokenOutput;

    fn step(&self, batch: MlmBatch) -> TrainOutput<ReplacedTokenOutput> {
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

impl InferenceStep for ReplacedTokenDetection {
    type Input = MlmBatch;
    type Output = ReplacedTokenOutput;

    fn step(&self, batch: MlmBatch) -> ReplacedTokenOutput {
        self.forward_output(batch)
    }
}

impl PretrainingObjective for ReplacedTokenDetection {
    type Config = ElectraConfig;
    type Batcher = MlmBatcher;
    const OBJECTIVE: Objective = Objective::ReplacedTokenDetection;

    fn batcher(
        _: &ElectraConfig,
        settings: &ObjectiveSettings,
        tokenizer: &Tokenizer,
    ) -> Result<MlmBatcher, TrainError> {
        MlmBatcher::new(tokenizer.clone(), settings.masking)
    }

    fn init(
        config: &ElectraConfig,
        settings: &ObjectiveSettings,
        steps: StepSettings,
        device: &Device,
    ) -> Self {
        Self::new(config.init(device), settings.discriminator_weight)
            .with_replacements(settings.replacements)
            .with_steps(steps)
    }

    fn describe(settings: &ObjectiveSettings) -> String {
        let replacements = match settings.replacements {
            Replacements::Generator => "",
            Replacements::Unigram => ", replacements shuffled among the chosen residues (control)",
        };
        format!(
            ", discriminator weight {}{replacements}",
            settings.discriminator_weight
        )
    }

    fn metrics(training: SupervisedTraining<Self>) -> SupervisedTraining<Self> {
        let metric = ElectraMetric::new;
        training
            .metric_train_numeric(LossMetric::new())
            .metric_train_numeric(metric(ElectraQuantity::GeneratorLoss))
            .metric_train_numeric(metric(ElectraQuantity::GeneratorAccuracy))
            .metric_train_numeric(metric(ElectraQuantity::DiscriminatorLoss))
            .metric_train_numeric(metric(ElectraQuantity::DiscriminatorAccuracy))
            .metric_train_numeric(metric(ElectraQuantity::DiscriminatorAuc))
            .metric_train_numeric(LearningRateMetric::new())
            .metric_valid_numeric(LossMetric::new())
            .metric_valid_numeric(metric(ElectraQuantity::GeneratorLoss))
            .metric_valid_numeric(metric(ElectraQuantity::GeneratorAccuracy))
            .metric_valid_numeric(metric(ElectraQuantity::DiscriminatorLoss))
            .metric_valid_numeric(metric(ElectraQuantity::DiscriminatorAccuracy))
            .metric_valid_numeric(metric(ElectraQuantity::ReplacedRecall))
            .metric_valid_numeric(metric(ElectraQuantity::DiscriminatorAuc))
    }

    /// The two `transformers` checkpoints, each with the vocabulary.
    fn save(
        &self,
        config: &ElectraConfig,
        dir: &Path,
        tokenizer: &Tokenizer,
    ) -> Result<(), TrainError> {
        save_electra(&self.model, config, dir)?;
        save_vocabulary(tokenizer, dir)?;
        save_vocabulary(tokenizer, &dir.join(ELECTRA_GENERATOR_DIR))
    }

    /// The generator on masked residues against the unigram baseline; the discriminator's
    /// accuracy, recall of replaced tokens and ROC AUC against calling everything original.
    fn evaluate(
        &self,
        batcher: &MlmBatcher,
        baseline: &UnigramBaseline,
        data: &BatchedSequences,
        device: &Device,
        settings: &ObjectiveSettings,
    ) -> Result<ValidationScores, TrainError> {
        // The generator's samples come from the device's random generator.
        device.seed(settings.seed ^ 0xe1ec);
        let mut totals = ReplacedTokenScores::default();
        let mut scores = score_residues(data, baseline, |batch| {
            let masked = batcher.mask(batch);
            let labels = masked.labels.clone();
            let batch_scores = self
                .score(masked.to_tensors(device))
                .map_err(|e| TrainError::Training(format!("reading scores: {e:?}")))?;
            let generator = batch_scores.generator;
            totals.merge(batch_scores);
            Ok((generator, labels))
        })?;
        scores.discriminator = Some(DiscriminatorReport::of(&totals));
        Ok(scores)
    }
}

/// The discriminator on the validation tokens.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct DiscriminatorReport {
    /// Real tokens judged (special tokens included, padding excluded).
    pub tokens: u64,
    /// Of those, tokens the generator's sample changed.
    pub replaced: u64,
    /// Mean binary cross-entropy (nats).
    pub loss: f64,
    /// Fraction judged correctly.
    pub accuracy: f64,
    /// Fraction of replaced tokens caught.
    pub replaced_recall: f64,
    /// ROC AUC of the logits for "replaced" (0.5 is chance).
    pub auc: Option<f64>,
    /// Accuracy of calling every token original.
    pub all_original_accuracy: f64,
    /// ROC AUC of the discriminator's logits at the masked positions only.
    pub chosen_auc: Option<f64>,
    /// ROC AUC, at the masked positions, of the generator's surprisal at the residue the
    /// discriminator reads there: how well the generator's reading of the context tells
    /// replaced residues from kept ones. An optimistic reference for `chosen_auc`: at the 15%
    /// of chosen positions ELECTRA leaves unchanged the generator sees the original residue
    /// itself, which the discriminator cannot tell from a replacement.
    pub generator_auc: Option<f64>,
}

impl DiscriminatorReport {
    /// The report of summed scores.
    pub fn of(scores: &ReplacedTokenScores) -> Self {
        Self {
            tokens: scores.tokens,
            replaced: scores.replaced,
            loss: scores.discriminator_loss(),
            accuracy: scores.discriminator_accuracy(),
            replaced_recall: scores.replaced_recall(),
            auc: scores.auc(),
            all_original_accuracy: scores.all_original_accuracy(),
            chosen_auc: roc_auc(&scores.chosen_decisions),
            generator_auc: roc_auc(&scores.generator_decisions),
        }
    }
}

impl std::fmt::Display for DiscriminatorReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "  discriminator: {} tokens, {} replaced: loss {:.4}  accuracy {:.2}%  replaced caught {:.2}%  AUC {}  (calling all original: {:.2}%)\n  at the masked positions: discriminator AUC {}, generator's surprisal AUC {}",
            self.tokens,
            self.replaced,
            self.loss,
            100.0 * self.accuracy,
            100.0 * self.replaced_recall,
            auc_text(self.auc),
            100.0 * self.all_original_accuracy,
            auc_text(self.chosen_auc),
            auc_text(self.generator_auc),
        )
    }
}

fn auc_text(auc: Option<f64>) -> String {
    auc.map_or("n/a".to_string(), |auc| format!("{auc:.4}"))
}

impl ItemLazy for ReplacedTokenOutput {
    fn sync(self) -> Result<Self, ExecutionError> {
        self.loss.device().flush()?;
        Ok(Self {
            loss: self.loss.without_autodiff(),
            generator_loss: self.generator_loss.without_autodiff(),
            discriminator_loss: self.discriminator_loss.without_autodiff(),
            generator_logits: self.generator_logits.without_autodiff(),
            labels: self.labels.without_autodiff(),
            discriminator_logits: self.discriminator_logits.without_autodiff(),
            replaced: self.replaced.without_autodiff(),
            weights: self.weights.without_autodiff(),
            sampled: self.sampled.without_autodiff(),
            chosen_logits: self.chosen_logits.without_autodiff(),
        })
    }
}

impl Adaptor<LossInput> for ReplacedTokenOutput {
    fn adapt(&self) -> LossInput {
        LossInput::new(self.loss.clone())
    }
}

impl Adaptor<ReplacedTokenOutput> for ReplacedTokenOutput {
    fn adapt(&self) -> ReplacedTokenOutput {
        self.clone()
    }
}

/// Discriminator decisions over real tokens, for exact sums and the ROC AUC.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ReplacedTokenScores {
    /// The generator on masked residues.
    pub generator: MlmScores,
    /// Summed discriminator BCE over real tokens (nats).
    pub discriminator_loss_sum: f64,
    /// Real tokens judged.
    pub tokens: u64,
    /// Tokens judged correctly (logit > 0 exactly at replaced tokens).
    pub correct: u64,
    /// Replaced tokens.
    pub replaced: u64,
    /// Replaced tokens the discriminator caught.
    pub replaced_caught: u64,
    /// `(logit, replaced)` of every real token, for the AUC.
    #[serde(skip)]
    pub decisions: Vec<(f32, bool)>,
    /// `(logit, replaced)` at the masked positions.
    #[serde(skip)]
    pub chosen_decisions: Vec<(f32, bool)>,
    /// `(generator surprisal of the residue read, replaced)` at the masked positions.
    #[serde(skip)]
    pub generator_decisions: Vec<(f32, bool)>,
}

/// A rank-1 tensor's values as `f32`.
fn floats(tensor: &Tensor<1>) -> Result<Vec<f32>, TensorReadError> {
    Ok(tensor.clone().into_data().try_into_vec_as::<f32>()?)
}

impl ReplacedTokenScores {
    fn add_tokens(&mut self, output: &ReplacedTokenOutput) -> Result<(), TensorReadError> {
        let logits = floats(&output.discriminator_logits)?;
        let replaced = floats(&output.replaced)?;
        let weights = floats(&output.weights)?;
        for ((&logit, &replaced), &weight) in logits.iter().zip(&replaced).zip(&weights) {
            if weight == 0.0 {
                continue;
            }
            let replaced = replaced > 0.5;
            let target = if replaced { 1.0 } else { 0.0 };
            // softplus(x) - x y, in f64.
            let x = f64::from(logit);
            self.discriminator_loss_sum += x.max(0.0) + (-x.abs()).exp().ln_1p() - x * target;
            self.tokens += 1;
            self.correct += u64::from((logit > 0.0) == replaced);
            self.replaced += u64::from(replaced);
            self.replaced_caught += u64::from(replaced && logit > 0.0);
            self.decisions.push((logit, replaced));
        }
        let [n, _] = output.generator_logits.dims();
        let surprisal = -activation::log_softmax(output.generator_logits.clone(), 1)
            .gather(1, output.sampled.clone().reshape([n, 1]))
            .reshape([n]);
        let surprisal = floats(&surprisal)?;
        let chosen_logits = floats(&output.chosen_logits)?;
        let changed = floats(
            &output
                .sampled
                .clone()
                .not_equal(output.labels.clone())
                .float(),
        )?;
        for ((&surprisal, &logit), &changed) in surprisal.iter().zip(&chosen_logits).zip(&changed) {
            let changed = changed > 0.5;
            self.generator_decisions.push((surprisal, changed));
            self.chosen_decisions.push((logit, changed));
        }
        Ok(())
    }

    /// Adds another batch.
    pub fn merge(&mut self, other: ReplacedTokenScores) {
        self.generator.add(other.generator);
        self.discriminator_loss_sum += other.discriminator_loss_sum;
        self.tokens += other.tokens;
        self.correct += other.correct;
        self.replaced += other.replaced;
        self.replaced_caught += other.replaced_caught;
        self.decisions.extend(other.decisions);
        self.chosen_decisions.extend(other.chosen_decisions);
        self.generator_decisions.extend(other.generator_decisions);
    }

    /// Mean discriminator BCE per real token.
    pub fn discriminator_loss(&self) -> f64 {
        self.discriminator_loss_sum / self.tokens.max(1) as f64
    }

    /// Fraction of real tokens judged correctly.
    pub fn discriminator_accuracy(&self) -> f64 {
        self.correct as f64 / self.tokens.max(1) as f64
    }

    /// Fraction of replaced tokens caught.
    pub fn replaced_recall(&self) -> f64 {
        self.replaced_caught as f64 / self.replaced.max(1) as f64
    }

    /// Accuracy of calling every token original.
    pub fn all_original_accuracy(&self) -> f64 {
        1.0 - self.replaced as f64 / self.tokens.max(1) as f64
    }

    /// ROC AUC of the logits for "replaced", or `None` without both kinds of token.
    pub fn auc(&self) -> Option<f64> {
        roc_auc(&self.decisions)
    }
}

/// The area under the ROC curve: the probability that a random positive scores above a random
/// negative (ties count half), by the rank-sum formula.
pub fn roc_auc(decisions: &[(f32, bool)]) -> Option<f64> {
    let positives = decisions.iter().filter(|d| d.1).count();
    let negatives = decisions.len() - positives;
    if positives == 0 || negatives == 0 {
        return None;
    }
    let mut sorted: Vec<(f32, bool)> = decisions.to_vec();
    sorted.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut positive_rank_sum = 0.0f64;
    let mut start = 0;
    while start < sorted.len() {
        let mut end = start;
        while end < sorted.len() && sorted[end].0 == sorted[start].0 {
            end += 1;
        }
        // Tied scores share the mean of ranks start+1..=end.
        let rank = (start + 1 + end) as f64 / 2.0;
        positive_rank_sum += rank * sorted[start..end].iter().filter(|d| d.1).count() as f64;
        start = end;
    }
    let p = positives as f64;
    Some((positive_rank_sum - p * (p + 1.0) / 2.0) / (p * negatives as f64))
}

/// What an [`ElectraMetric`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ElectraQuantity {
    /// Generator cross-entropy on masked residues.
    GeneratorLoss,
    /// Generator accuracy on masked residues (percent).
    GeneratorAccuracy,
    /// Discriminator BCE over real tokens.
    DiscriminatorLoss,
    /// Discriminator accuracy over real tokens (percent).
    DiscriminatorAccuracy,
    /// Replaced tokens the discriminator caught (percent).
    ReplacedRecall,
    /// Discriminator ROC AUC, replaced against original (the epoch value is the token-weighted
    /// mean of batch AUCs).
    DiscriminatorAuc,
}

/// One ELECTRA quantity as a burn-train numeric metric: a weighted mean over the batch and
/// over the epoch.
#[derive(Debug, Clone)]
pub struct ElectraMetric {
    quantity: ElectraQuantity,
    batch: (f64, f64),
    epoch: (f64, f64),
}

impl ElectraMetric {
    /// A metric of `quantity`.
    pub fn new(quantity: ElectraQuantity) -> Self {
        Self {
            quantity,
            batch: (0.0, 0.0),
            epoch: (0.0, 0.0),
        }
    }

    fn percent(&self) -> bool {
        !matches!(
            self.quantity,
            ElectraQuantity::GeneratorLoss | ElectraQuantity::DiscriminatorLoss
        )
    }

    fn mean((sum, weight): (f64, f64)) -> f64 {
        sum / weight.max(f64::MIN_POSITIVE)
    }

    /// `(weighted sum, weight)` of the quantity on one batch.
    fn measure(&self, output: &ReplacedTokenOutput) -> Result<(f64, f64), TensorReadError> {
        let scalar = |t: &Tensor<1>| -> Result<f64, TensorReadError> {
            Ok(t.clone().into_data().try_into_vec_as::<f64>()?[0])
        };
        let masked = output.labels.dims()[0] as f64;
        Ok(match self.quantity {
            ElectraQuantity::GeneratorLoss => (scalar(&output.generator_loss)? * masked, masked),
            ElectraQuantity::GeneratorAccuracy => {
                let scores = MlmScores::of(output.generator_logits.clone(), output.labels.clone());
                (100.0 * scores.correct as f64, masked)
            }
            quantity => {
                let mut scores = ReplacedTokenScores::default();
                scores.add_tokens(output)?;
                let tokens = scores.tokens as f64;
                match quantity {
                    ElectraQuantity::DiscriminatorLoss => (scores.discriminator_loss_sum, tokens),
                    ElectraQuantity::DiscriminatorAccuracy => {
                        (100.0 * scores.correct as f64, tokens)
                    }
                    ElectraQuantity::ReplacedRecall => (
                        100.0 * scores.replaced_caught as f64,
                        scores.replaced as f64,
                    ),
                    _ => match scores.auc() {
                        Some(auc) => (100.0 * auc * tokens, tokens),
                        None => (0.0, 0.0),
                    },
                }
            }
        })
    }

    fn entry(&self, final_entry: bool) -> SerializedEntry {
        let (epoch, batch) = (Self::mean(self.epoch), Self::mean(self.batch));
        let serialized = if final_entry {
            NumericEntry::Final(epoch).serialize()
        } else {
            NumericEntry::Aggregated {
                aggregated_value: batch,
                count: self.batch.1.max(1.0) as usize,
            }
            .serialize()
        };
        SerializedEntry::new(format!("epoch {epoch:.3} - batch {batch:.3}"), serialized)
    }
}

impl Metric for ElectraMetric {
    type Input = ReplacedTokenOutput;

    fn name(&self) -> MetricName {
        MetricName::new(
            match self.quantity {
                ElectraQuantity::GeneratorLoss => "Generator Loss",
                ElectraQuantity::GeneratorAccuracy => "Generator Accuracy",
                ElectraQuantity::DiscriminatorLoss => "Discriminator Loss",
                ElectraQuantity::DiscriminatorAccuracy => "Discriminator Accuracy",
                ElectraQuantity::ReplacedRecall => "Replaced Recall",
                ElectraQuantity::DiscriminatorAuc => "Discriminator AUC",
            }
            .to_string(),
        )
    }

    fn attributes(&self) -> MetricAttributes {
        NumericAttributes {
            unit: self.percent().then(|| "%".to_string()),
            higher_is_better: self.percent(),
        }
        .into()
    }

    fn update(
        &mut self,
        input: &ReplacedTokenOutput,
        _: &MetricMetadata,
    ) -> Result<SerializedEntry, TensorReadError> {
        self.batch = self.measure(input)?;
        self.epoch = (self.epoch.0 + self.batch.0, self.epoch.1 + self.batch.1);
        Ok(self.entry(false))
    }

    fn compute(&mut self) -> Result<SerializedEntry, TensorReadError> {
        Ok(self.entry(true))
    }

    fn clear(&mut self) {
        self.batch = (0.0, 0.0);
        self.epoch = (0.0, 0.0);
    }
}

impl Numeric for ElectraMetric {
    fn value(&self) -> Option<NumericEntry> {
        (self.batch.1 > 0.0).then(|| NumericEntry::Aggregated {
            aggregated_value: Self::mean(self.batch),
            count: self.batch.1.max(1.0) as usize,
        })
    }

    fn running_value(&self) -> Option<NumericEntry> {
        Some(NumericEntry::Aggregated {
            aggregated_value: Self::mean(self.epoch),
            count: self.epoch.1.max(1.0) as usize,
        })
    }

    fn final_value(&self) -> NumericEntry {
        NumericEntry::Final(Self::mean(self.epoch))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};
    use prottrans_models::ElectraConfig;

    #[test]
    fn auc_by_ranks() {
        assert_eq!(roc_auc(&[(0.1, false), (0.9, true)]), Some(1.0));
        assert_eq!(roc_auc(&[(0.9, false), (0.1, true)]), Some(0.0));
        assert_eq!(roc_auc(&[(0.5, false), (0.5, true)]), Some(0.5));
        // 2 positives, 2 negatives, one misordered pair of four.
        let auc = roc_auc(&[(0.1, false), (0.4, true), (0.5, false), (0.8, true)]).unwrap();
        assert!((auc - 0.75).abs() < 1e-12, "{auc}");
        assert_eq!(roc_auc(&[(0.3, true)]), None);
    }

    fn tiny_batch(device: &Device) -> MlmBatch {
        let ids = [2i64, 5, 4, 7, 4, 3, 0, 2, 9, 4, 11, 12, 13, 3];
        MlmBatch {
            input_ids: Tensor::from_data(TensorData::new(ids.to_vec(), [2, 7]), device),
            attention_mask: Some(Tensor::from_data(
                TensorData::new(vec![1i64, 1, 1, 1, 1, 1, 0, 1, 1, 1, 1, 1, 1, 1], [2, 7]),
                device,
            )),
            positions: Tensor::from_data(TensorData::new(vec![2i64, 4, 9], [3]), device),
            labels: Tensor::from_data(TensorData::new(vec![6i64, 8, 10], [3]), device),
        }
    }

    fn tiny_objective(device: &Device) -> ReplacedTokenDetection {
        let config = ElectraConfig {
            embedding_size: 8,
            hidden_size: 16,
            num_hidden_layers: 1,
            num_attention_heads: 2,
            intermediate_size: 16,
            max_position_embeddings: 16,
            ..ElectraConfig::default()
        };
        ReplacedTokenDetection::new(config.init(device), DEFAULT_DISCRIMINATOR_WEIGHT)
    }

    fn replaced_flags(output: ReplacedTokenOutput) -> Vec<f32> {
        output
            .replaced
            .into_data()
            .try_into_vec_as::<f32>()
            .unwrap()
    }

    /// The unigram control permutes the chosen residues: with three distinct labels a
    /// permutation leaves 0, 1 or 3 of them in place, so 3, 2 or 0 tokens are replaced (never
    /// exactly one, which a draw of other letters would give), and only at chosen positions.
    #[test]
    fn unigram_replacements_permute_the_chosen_residues() {
        let device = Device::flex();
        device.seed(11);
        let objective = tiny_objective(&device).with_replacements(Replacements::Unigram);
        let mut counts = [0usize; 4];
        for _ in 0..40 {
            let replaced = replaced_flags(objective.forward_output(tiny_batch(&device)));
            for (position, &flag) in replaced.iter().enumerate() {
                if ![2, 4, 9].contains(&position) {
                    assert_eq!(flag, 0.0, "position {position} is not masked");
                }
            }
            counts[replaced.iter().sum::<f32>() as usize] += 1;
        }
        assert_eq!(counts[1], 0, "{counts:?}");
        assert!(counts[2] > 0 && counts[3] > 0, "{counts:?}");
    }

    /// Replacements happen only at masked positions, and a replaced flag means the token changed.
    #[test]
    fn only_masked_positions_are_replaced() {
        let device = Device::flex();
        device.seed(7);
        let objective = tiny_objective(&device);
        let mut replaced_anywhere = 0.0f32;
        for _ in 0..20 {
            let output = objective.forward_output(tiny_batch(&device));
            let replaced = replaced_flags(output.clone());
            for (position, &flag) in replaced.iter().enumerate() {
                if ![2, 4, 9].contains(&position) {
                    assert_eq!(flag, 0.0, "position {position} is not masked");
                }
            }
            replaced_anywhere += replaced.iter().sum::<f32>();
            let total = output.loss.into_scalar::<f32>();
            let parts = output.generator_loss.into_scalar::<f32>()
                + 50.0 * output.discriminator_loss.into_scalar::<f32>();
            assert!(
                (total - parts).abs() < 1e-4 * total.abs().max(1.0),
                "{total} vs {parts}"
            );
        }
        // An untrained generator samples near-uniformly: [MASK] positions are almost always
        // replaced by something else.
        assert!(
            replaced_anywhere > 40.0,
            "{replaced_anywhere} of 60 masked positions replaced"
        );
    }
}
