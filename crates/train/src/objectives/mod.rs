//! Pretraining objectives: each turns [`ResidueBatch`](prottrans_data::ResidueBatch)es into model
//! inputs and targets, and implements burn-train's steps for the models it trains.
//!
//! - [`mlm`]: masked language modelling (ProtBert; ProtAlbert and the ProtElectra generator use
//!   the same masking).

pub mod mlm;
