use std::path::PathBuf;

use prottrans_models::ModelConfigError;

/// Everything wrong with a checkpoint's tensors, gathered in one report.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct WeightProblems {
    /// Tensors the model needs and the checkpoint lacks (as checkpoint keys).
    pub missing: Vec<String>,
    /// Checkpoint tensors the model does not use (checkpoint keys): all of them under strict
    /// loading, otherwise those that are not known heads when something else is wrong.
    pub unexpected: Vec<String>,
    /// Tensors whose shape or dtype differs from the module's, with both.
    pub mismatched: Vec<String>,
    /// Whether loading was strict (unused tensors are then the problem).
    pub strict: bool,
    /// Keys of `config.json` the architecture does not read: a misspelt key leaves its
    /// setting at the default, which shows up as shape errors.
    pub unread_config_keys: Vec<String>,
}

impl WeightProblems {
    /// Whether nothing is wrong.
    pub fn is_empty(&self) -> bool {
        self.missing.is_empty() && self.unexpected.is_empty() && self.mismatched.is_empty()
    }
}

impl std::fmt::Display for WeightProblems {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let unused = if self.strict {
            "unused (refused by strict loading)"
        } else {
            "unused"
        };
        for (title, items) in [
            ("missing", &self.missing),
            (unused, &self.unexpected),
            ("mismatched", &self.mismatched),
        ] {
            if !items.is_empty() {
                write!(f, "\n  {} {title}: {}", items.len(), items.join(", "))?;
            }
        }
        if !self.unread_config_keys.is_empty() {
            write!(
                f,
                "\n  config.json has keys this architecture does not read (misspelt?): {}",
                self.unread_config_keys.join(", ")
            )?;
        }
        Ok(())
    }
}

/// Errors from loading or saving a checkpoint directory.
#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    /// `config.json` is missing, unreadable or invalid.
    #[error(transparent)]
    Config(#[from] ModelConfigError),
    /// A file the layout needs is not there.
    #[error(
        "{dir}: no {expected} (a Hugging Face checkpoint directory holds config.json and model.safetensors or pytorch_model.bin)"
    )]
    MissingFile {
        /// The directory.
        dir: PathBuf,
        /// What was looked for.
        expected: String,
    },
    /// The config names another architecture than the function was asked for.
    #[error("{path}: architecture `{found}` where `{expected}` was expected")]
    WrongArchitecture {
        /// The config file.
        path: PathBuf,
        /// Expected architecture.
        expected: String,
        /// Found architecture.
        found: String,
    },
    /// The config names one architecture and the weights are of another.
    #[error("{config} says `{configured}` but the tensors in {weights} are those of `{found}`")]
    ArchitectureMismatch {
        /// The config file.
        config: PathBuf,
        /// The weights file.
        weights: PathBuf,
        /// Architecture in the config.
        configured: String,
        /// Architecture the tensor names show.
        found: String,
    },
    /// Weights split over several files, which prottrans does not read yet.
    #[error(
        "{path}: sharded checkpoints are not supported yet; merge the shards into one model.safetensors"
    )]
    Sharded {
        /// The index file.
        path: PathBuf,
    },
    /// The weights file could not be read or written.
    #[error("{path}: {message}")]
    Store {
        /// The file.
        path: PathBuf,
        /// What failed.
        message: String,
    },
    /// The tensors do not fit the model.
    #[error("{path}: the weights do not match the configured model:{problems}")]
    Weights {
        /// The weights file.
        path: PathBuf,
        /// What is wrong.
        problems: Box<WeightProblems>,
    },
    /// The checkpoint's vocabulary file is unreadable or invalid.
    #[error(transparent)]
    Tokenize(#[from] prottrans_data::TokenizeError),
    /// The checkpoint lacks its vocabulary, or it does not fit the model.
    #[error("{0}")]
    Vocabulary(String),
    /// Another I/O failure.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
}
