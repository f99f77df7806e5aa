use std::path::PathBuf;

use prottrans_data::DataError;
use prottrans_import::ImportError;
use prottrans_models::ModelConfigError;

/// Errors from configuring or running a training job.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// The recipe file could not be read.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The recipe is not valid TOML or has unknown or ill-typed keys.
    #[error("{path}: {message}")]
    Recipe {
        /// The recipe file.
        path: PathBuf,
        /// What is wrong, with the key.
        message: String,
    },
    /// A recipe value that cannot work.
    #[error("invalid recipe: {0}")]
    Invalid(String),
    /// The model configuration is invalid.
    #[error(transparent)]
    Model(#[from] ModelConfigError),
    /// Reading sequences failed.
    #[error(transparent)]
    Data(#[from] DataError),
    /// Saving the final model failed.
    #[error(transparent)]
    Import(#[from] ImportError),
    /// The output directory and `--resume` disagree.
    #[error("{path}: {message}")]
    Resume {
        /// The output directory.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A training device cannot run here or not at the recipe's precision.
    #[error(transparent)]
    Device(#[from] prottrans_backend::BackendError),
    /// Distributed data-parallel training was asked of devices without collective operations.
    #[error(
        "--strategy ddp needs devices with collective operations, which burn 0.22 has on CUDA only (NCCL); {devices} lack them. Leave --strategy at gather (the default), which trains the same on any backend"
    )]
    NoCollectives {
        /// The devices without them.
        devices: String,
    },
    /// burn-train reported a failure.
    #[error("training failed: {0}")]
    Training(String),
    /// Training stopped on a loss that was NaN or infinite; the model was not saved.
    #[error(
        "{path}: the training {metric} was {value} at step {step}, so training stopped and no model was saved; {kept}. A lower learning rate, more warm-up steps or gradient clipping (optimizer.grad_clip_norm) usually avoid it; start a new run with the changed recipe"
    )]
    NonFiniteLoss {
        /// The run directory.
        path: PathBuf,
        /// The loss metric.
        metric: String,
        /// Its value.
        value: f64,
        /// The optimiser step.
        step: usize,
        /// Which checkpoint is kept.
        kept: String,
    },
}
