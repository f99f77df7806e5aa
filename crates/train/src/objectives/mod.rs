//! Pretraining objectives: each turns [`ResidueBatch`](prottrans_data::ResidueBatch)es into model
//! inputs and targets, and implements burn-train's steps for the models it trains.
//!
//! - [`mlm`]: masked language modelling (ProtBert; ProtAlbert and the ProtElectra generator use
//!   the same masking).
//! - [`span_corruption`]: T5's denoising with single-residue spans (ProtT5).

pub mod mlm;
pub mod span_corruption;
