use std::path::PathBuf;

use crate::tokenizer::TokenizeError;

/// Errors from reading, tokenising and batching protein data.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// The file could not be opened or read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not valid FASTA.
    #[error("{path}:{line}: not valid FASTA: {message}")]
    Fasta {
        /// The file.
        path: PathBuf,
        /// 1-based line of the problem (0 when unknown).
        line: u64,
        /// What is wrong.
        message: String,
    },
    /// A record's sequence could not be tokenised.
    #[error("{path}:{line}: {source}")]
    Sequence {
        /// The file.
        path: PathBuf,
        /// 1-based line of the offending character (of the header for empty records).
        line: u64,
        /// The tokenizer's error, with record and position.
        source: TokenizeError,
    },
    /// A data set has no sequences.
    #[error("{path}: no sequences")]
    NoSequences {
        /// The file.
        path: PathBuf,
    },
    /// Batching options that cannot work.
    #[error("invalid batching options: {0}")]
    Batching(String),
}
