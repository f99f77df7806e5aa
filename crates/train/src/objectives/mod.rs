//! Pretraining objectives: each turns [`ResidueBatch`](prottrans_data::ResidueBatch)es into model
//! inputs and targets, and implements burn-train's steps for the models it trains.
//!
//! - [`mlm`]: masked language modelling (ProtBert; ProtAlbert and the ProtElectra generator use
//!   the same masking).
//! - [`replaced_token`]: ELECTRA's replaced-token detection (ProtElectra), on masked batches.
//! - [`span_corruption`]: T5's denoising with single-residue spans (ProtT5).
//! - [`causal_lm`]: left-to-right LM read in segments with memory (ProtTXL).
//! - [`permutation_lm`]: XLNet's permutation LM with partial prediction (ProtXLNet).

pub mod causal_lm;
pub mod mlm;
pub mod permutation_lm;
pub mod pretraining;
pub mod replaced_token;
pub mod span_corruption;

use burn::train::metric::{AccuracyMetric, LearningRateMetric, LossMetric, PerplexityMetric};
use burn::train::{
    ClassificationOutput, InferenceStep, LearnerModel, SupervisedTraining, TrainStep,
};
use prottrans_models::{
    ElectraConfig, MaskedLanguageModel, Objective, PretrainingVisitor, RegisteredConfig, T5Config,
    TransfoXlConfig, XlnetConfig,
};

use crate::precision::MixedPrecision;
use pretraining::ObjectiveVisitor;

/// The objective type of each [`Objective`], for code generic over objectives (the pretraining
/// runner, `init-model`): `config.pretraining(ByObjective(visitor))` runs `visitor` with the
/// architecture's objective.
pub struct ByObjective<V>(pub V);

impl<V: ObjectiveVisitor> PretrainingVisitor for ByObjective<V> {
    type Output = V::Output;

    fn masked_lm<M>(self, config: &M::Config) -> V::Output
    where
        M: MaskedLanguageModel,
        M::Config: RegisteredConfig,
    {
        self.0.visit::<mlm::MaskedLm<M>>(config)
    }
    fn replaced_token_detection(self, config: &ElectraConfig) -> V::Output {
        self.0
            .visit::<replaced_token::ReplacedTokenDetection>(config)
    }
    fn span_corruption(self, config: &T5Config) -> V::Output {
        self.0.visit::<span_corruption::SpanCorruption>(config)
    }
    fn permutation_lm(self, config: &XlnetConfig) -> V::Output {
        self.0.visit::<permutation_lm::PermutationLm>(config)
    }
    fn causal_lm(self, config: &TransfoXlConfig) -> V::Output {
        self.0.visit::<causal_lm::CausalLm>(config)
    }
}

/// What the residues an objective scores are called in reports.
pub(crate) fn scored_residues(objective: Objective) -> &'static str {
    match objective {
        Objective::MaskedLm | Objective::ReplacedTokenDetection => "masked",
        Objective::SpanCorruption => "corrupted",
        Objective::CausalLm => "next",
        Objective::PermutationLm => "target",
    }
}

/// The metrics of objectives that predict tokens (`ClassificationOutput`): loss and accuracy,
/// the learning rate in training, perplexity in validation.
pub(crate) fn next_token_metrics<M>(training: SupervisedTraining<M>) -> SupervisedTraining<M>
where
    M: LearnerModel
        + TrainStep<Output = ClassificationOutput>
        + InferenceStep<Output = ClassificationOutput>,
{
    training
        .metric_train_numeric(LossMetric::new())
        .metric_train_numeric(AccuracyMetric::new())
        .metric_train_numeric(LearningRateMetric::new())
        .metric_valid_numeric(LossMetric::new())
        .metric_valid_numeric(AccuracyMetric::new())
        .metric_valid_numeric(PerplexityMetric::new())
}

/// burn-train's training and validation steps for an objective whose `forward_loss` gives a
/// `ClassificationOutput` (loss, logits and labels of the predicted tokens) and whose `steps`
/// field holds its [`StepSettings`].
macro_rules! classification_steps {
    ([$($generics:tt)*] $objective:ty, $batch:ty) => {
        impl<$($generics)*> burn::train::TrainStep for $objective {
            type Input = $batch;
            type Output = burn::train::ClassificationOutput;

            fn step(
                &self,
                batch: $batch,
            ) -> burn::train::TrainOutput<burn::train::ClassificationOutput> {
                let output = self.forward_loss(batch);
                let grads = self.steps.precision.gradients(
                    output.loss.clone(),
                    self.steps.loss_scale,
                    self,
                );
                burn::train::TrainOutput {
                    grads,
                    item: output,
                }
            }
        }

        impl<$($generics)*> burn::train::InferenceStep for $objective {
            type Input = $batch;
            type Output = burn::train::ClassificationOutput;

            fn step(&self, batch: $batch) -> burn::train::ClassificationOutput {
                self.forward_loss(batch)
            }
        }
    };
}
pub(crate) use classification_steps;

/// How an objective's steps run; the same for every objective.
#[derive(Debug, Clone, Copy)]
pub struct StepSettings {
    /// Factor on the loss before backward: `1 / (gradient accumulation x devices)`, since burn
    /// sums accumulated gradients and those of data-parallel devices.
    pub loss_scale: f64,
    /// The precision of forward and backward passes.
    pub precision: MixedPrecision,
}

impl Default for StepSettings {
    fn default() -> Self {
        Self {
            loss_scale: 1.0,
            precision: MixedPrecision::default(),
        }
    }
}

impl StepSettings {
    /// Averages gradients over `accumulation` steps on each of `devices` data-parallel devices.
    pub fn averaging_over(mut self, accumulation: usize, devices: usize) -> Self {
        self.loss_scale = 1.0 / (accumulation.max(1) * devices.max(1)) as f64;
        self
    }

    /// Forward and backward passes in `precision`.
    pub fn with_precision(mut self, precision: MixedPrecision) -> Self {
        self.precision = precision;
        self
    }
}
