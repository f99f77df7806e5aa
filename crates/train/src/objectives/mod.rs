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
pub mod replaced_token;
pub mod span_corruption;

use crate::precision::MixedPrecision;

/// burn-train's training and validation steps for an objective whose `forward_loss` gives a
/// `ClassificationOutput` (loss, logits and labels of the predicted tokens) and whose `steps`
/// field holds its [`StepSettings`].
macro_rules! classification_steps {
    ($objective:ty, $batch:ty) => {
        impl burn::train::TrainStep for $objective {
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

        impl burn::train::InferenceStep for $objective {
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
