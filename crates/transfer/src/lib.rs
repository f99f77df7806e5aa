//! Supervised transfer on frozen embeddings, as in the ProtTrans paper: small heads predict
//! secondary structure per residue (Q3, Q8) and localisation and membrane association per
//! protein (Q10, Q2).
//!
//! - [`labels`]: the label sets and their order.
//! - [`datasets`]: readers for the authors' per-residue and DeepLoc-style CSVs.
//! - [`features`]: what the heads read (a model, precomputed embeddings, one-hot, composition).
//! - [`heads`]: the per-residue CNN and per-protein network, as burn modules.
//! - [`batches`]: padded batches with masks.
//! - [`metrics`]: confusion counts, Q-accuracies, MCC, recall, as burn-train metrics too.
//! - [`train`]: training with burn-train (early stopping, checkpoints, resume).
//! - [`finetune`]: an encoder (LoRA adapters or every weight) trained with a head.
//! - [`saved`]: a trained head on disk, and running it.
//! - [`evaluate`]: test-set scores with standard errors and the majority baseline.
//! - [`predict`]: labels and probabilities for new proteins, as TSV and JSON.
//! - [`plots`]: training curves, confusion matrices and t-SNE maps (PNG and SVG).

pub mod batches;
pub mod datasets;
mod error;
pub mod evaluate;
pub mod features;
pub mod finetune;
pub mod heads;
pub mod labels;
pub mod metrics;
pub mod plots;
pub mod predict;
pub mod saved;
pub mod train;

pub use datasets::{LabelledSet, Record};
pub use error::TransferError;
pub use evaluate::{Evaluation, EvaluationReport, evaluate};
pub use features::FeatureSpec;
pub use finetune::{FinetuneOptions, FinetuneSummary, Finetuning, Method, finetune};
pub use heads::{Pooling, ProteinHead, ProteinHeadConfig, ResidueHead, ResidueHeadConfig};
pub use labels::Task;
pub use predict::{Prediction, predict};
pub use saved::{Head, SavedHead};
pub use train::{HeadOptions, HeadTraining, TrainingSummary, train_head};
