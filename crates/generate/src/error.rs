//! Errors from loading a checkpoint for generation or from generating.

use prottrans_data::TokenizeError;
use prottrans_import::ImportError;

/// Errors from [`Generator`](crate::Generator) and [`Sampler`](crate::Sampler).
#[derive(Debug, thiserror::Error)]
pub enum GenerateError {
    /// The checkpoint could not be loaded.
    #[error(transparent)]
    Import(#[from] ImportError),
    /// A sequence or prompt could not be tokenised (names the record and the position).
    #[error(transparent)]
    Tokenize(#[from] TokenizeError),
    /// The checkpoint or the request cannot generate as asked.
    #[error("{0}")]
    Unsupported(String),
    /// The backend could not hand back the model's output.
    #[error("reading the model output: {0}")]
    Output(String),
}
