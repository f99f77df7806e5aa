//! Pretraining for prottrans with burn-train's learner.
//!
//! - [`recipe`]: the TOML training recipe ([`PretrainConfig`]): model shape, masking, data,
//!   optimiser, schedule.
//! - [`objectives`]: one module per objective: [`objectives::mlm`] (BERT/ALBERT masked LM),
//!   [`objectives::span_corruption`] (T5).
//! - [`baseline`]: the unigram residue-frequency baseline a language model must beat.
//! - [`renderer`]: progress for terminals (bars) and logs (plain lines), plus `metrics.jsonl`.
//! - [`pretrain`]: the whole run: data, learner, checkpoints, resume, final model and report.

pub mod baseline;
mod error;
pub mod objectives;
pub mod precision;
pub mod pretrain;
pub mod recipe;
pub mod renderer;

pub use baseline::UnigramBaseline;
pub use error::TrainError;
pub use objectives::StepSettings;
pub use objectives::mlm::{MaskedLm, MaskingConfig, MlmBatch, MlmBatcher, MlmModel, MlmScores};
pub use objectives::replaced_token::{
    DEFAULT_DISCRIMINATOR_WEIGHT, ElectraMetric, ElectraQuantity, ReplacedTokenDetection,
    ReplacedTokenOutput, ReplacedTokenScores,
};
pub use objectives::span_corruption::{
    CorruptionConfig, ReconstructionScores, SpanCorruption, SpanCorruptionBatcher, T5Batch,
};
pub use precision::MixedPrecision;
pub use pretrain::{PretrainReport, PretrainRun, ReconstructionReport, pretrain};
pub use recipe::{PretrainConfig, ReplacedTokenConfig};
