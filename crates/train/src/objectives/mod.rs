//! Pretraining objectives: each turns [`ResidueBatch`](prottrans_data::ResidueBatch)es into model
//! inputs and targets, and implements burn-train's steps for the models it trains.
//!
//! - [`mlm`]: masked language modelling (ProtBert; ProtAlbert and the ProtElectra generator use
//!   the same masking).
//! - [`replaced_token`]: ELECTRA's replaced-token detection (ProtElectra), on masked batches.
//! - [`span_corruption`]: T5's denoising with single-residue spans (ProtT5).

pub mod mlm;
pub mod replaced_token;
pub mod span_corruption;

use crate::precision::MixedPrecision;

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
