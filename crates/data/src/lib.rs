//! Protein sequence input for prottrans.
//!
//! - [`tokenizer`]: the vocabularies and a tokenizer that takes raw sequences (the
//!   `prottrans-tokenizer` crate, re-exported).
//! - [`fasta`]: streaming FASTA (plain or gzip) with errors that name the file and line.
//! - [`store`]: a compact in-memory store of tokenised sequences (one byte per residue).
//! - [`batching`]: batches bounded by a padded-token budget, grouped by length.
//! - [`dataset`]: a burn [`Dataset`](burn::data::dataset::Dataset) of planned batches with
//!   random cropping of long sequences.
//!
//! Objectives (masking, span corruption, ...) build their model inputs from the
//! [`ResidueBatch`](dataset::ResidueBatch)es this crate yields.

pub mod batching;
pub mod dataset;
mod error;
pub mod fasta;
pub mod store;
pub use prottrans_tokenizer as tokenizer;

pub use batching::BatchPlanner;
pub use dataset::{BatchedSequences, CropMode, ResidueBatch};
pub use error::DataError;
pub use fasta::{FastaReader, FastaRecord};
pub use store::SequenceStore;
pub use tokenizer::{
    RareResidues, SequenceLayout, TokenizeError, Tokenizer, UnknownResidues, Vocabulary,
};
