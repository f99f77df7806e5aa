use std::path::PathBuf;

/// Errors from reading or checking a model configuration.
#[derive(Debug, thiserror::Error)]
pub enum ModelConfigError {
    /// The file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The file is not a valid configuration.
    #[error("{path}: {message}")]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong, with line and column where known.
        message: String,
    },
    /// A value that cannot work (e.g. hidden size not divisible by the number of heads).
    #[error("invalid {architecture} configuration: {message}")]
    Invalid {
        /// The architecture.
        architecture: &'static str,
        /// What is wrong.
        message: String,
    },
    /// The architecture is known but not implemented in this version.
    #[error("architecture `{0}` is not implemented yet in this version of prottrans")]
    NotImplemented(String),
    /// The architecture is not one prottrans implements.
    #[error("unknown architecture `{name}` (expected one of: {known})")]
    Unknown {
        /// The name found.
        name: String,
        /// The names prottrans knows.
        known: String,
    },
}

/// A layer norm's epsilon must be finite and not negative: a negative one turns the small
/// variances of a layer into NaN, silently.
pub(crate) fn check_epsilon(
    architecture: &'static str,
    name: &str,
    value: f64,
) -> Result<(), ModelConfigError> {
    if value.is_finite() && value >= 0.0 {
        Ok(())
    } else {
        Err(ModelConfigError::Invalid {
            architecture,
            message: format!("{name} must be a finite number, 0 or more, got {value}"),
        })
    }
}
