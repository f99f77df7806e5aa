//! Embeddings from ProtTrans checkpoints.
//!
//! - [`Embedder`]: a loaded checkpoint of any architecture that turns sequences into
//!   per-residue (`[L, d]`) and per-protein (`[d]`, the mean over residues) embeddings.
//! - [`EmbedJob`]: a whole FASTA file into one `.h5` or `.npz` file, the way the authors'
//!   embedder does it (longest first, batches bounded by residues and sequences, long proteins
//!   alone), written atomically and resumable after an interruption; or one [`Shard`] of it,
//!   for a scheduler's array tasks.
//! - [`merge`] and [`verify`]: shard outputs into one file, and any output checked against
//!   its input (every protein once, or left out on purpose).
//! - [`output`]: the two file formats, for writing and for reading back.
//!
//! ```no_run
//! use prottrans_embed::Embedder;
//! use burn::tensor::Device;
//!
//! let embedder = Embedder::load("prot_bert", &Device::flex())?;
//! let residues = embedder.embed("MKTAYIAKQRQISFVKSHFSRQ")?; // [22, 1024]
//! let protein = prottrans_embed::mean_over_residues(&residues); // [1024]
//! # Ok::<(), prottrans_embed::EmbedError>(())
//! ```

mod embedder;
mod error;
mod job;
mod merge;
pub mod output;
mod parts;
mod plan;
mod shard;

pub use embedder::{Embedder, MatmulPrecision, Precision, mean_over_residues};
pub use error::EmbedError;
pub use job::{EmbedJob, EmbedOptions, EmbedSummary, LongPolicy, Progress, protein_key};
pub use merge::{Coverage, MergeOptions, MissingProtein, merge, verify};
pub use output::OutputFormat;
pub use plan::plan_batches;
pub use shard::{Shard, assign_shards};

/// The re-exported ndarray, whose arrays the embeddings are.
pub use ndarray;
