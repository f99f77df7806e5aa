//! Pretraining for prottrans with burn-train's learner.
//!
//! - [`recipe`]: the TOML training recipe ([`PretrainConfig`]): model shape, masking, data,
//!   optimiser, schedule.
//! - [`objectives`]: one module per objective, each implementing
//!   [`pretrain::PretrainingObjective`]: [`objectives::mlm`] (masked LM: BERT, ALBERT, ESM-2),
//!   [`objectives::replaced_token`] (ELECTRA), [`objectives::span_corruption`] (T5),
//!   [`objectives::permutation_lm`] (XLNet), [`objectives::causal_lm`] (Transformer-XL).
//! - [`baseline`]: the unigram residue-frequency baseline a language model must beat.
//! - [`renderer`]: progress for terminals (bars) and logs (plain lines), plus `metrics.jsonl`.
//! - [`pretrain`]: the one runner of every objective: data, learner, checkpoints, resume, final
//!   model and report; and [`pretrain::init_model`], the untrained model of a recipe.

pub mod baseline;
pub mod epochs;
mod error;
pub mod objectives;
pub mod precision;
pub mod pretrain;
pub mod recipe;
pub mod renderer;

pub use baseline::UnigramBaseline;
pub use error::TrainError;
pub use objectives::StepSettings;
pub use objectives::mlm::{MaskedLm, MaskingConfig, MlmBatch, MlmBatcher, MlmScores};
pub use objectives::replaced_token::{
    DEFAULT_DISCRIMINATOR_WEIGHT, DiscriminatorReport, ElectraMetric, ElectraQuantity,
    ReplacedTokenDetection, ReplacedTokenOutput, ReplacedTokenScores, Replacements,
};
pub use objectives::span_corruption::{
    CorruptionConfig, ReconstructionReport, ReconstructionScores, SpanCorruption,
    SpanCorruptionBatcher, T5Batch,
};
pub use precision::MixedPrecision;
pub use pretrain::{
    DataParallel, PretrainReport, PretrainRun, PretrainingObjective, init_model, pretrain,
    pretraining_tokenizer,
};
pub use recipe::{PretrainConfig, ReplacedTokenConfig};
