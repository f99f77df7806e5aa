use std::path::PathBuf;

use prottrans_data::DataError;
use prottrans_import::ImportError;

/// Errors from loading a model for embedding, reading the input or writing the output.
#[derive(Debug, thiserror::Error)]
pub enum EmbedError {
    /// The checkpoint could not be loaded.
    #[error(transparent)]
    Import(#[from] ImportError),
    /// The FASTA input is unreadable or holds an invalid sequence.
    #[error(transparent)]
    Data(#[from] DataError),
    /// A sequence handed to [`Embedder`](crate::Embedder) directly could not be tokenised.
    #[error(transparent)]
    Tokenize(#[from] prottrans_data::TokenizeError),
    /// Two records map to the same output key.
    #[error(
        "{path}:{line}: protein id '{id}' gives the key '{key}', already used by the record at line {first_line}; ids must be unique"
    )]
    DuplicateId {
        /// The FASTA file.
        path: PathBuf,
        /// Line of the second record's header.
        line: u64,
        /// Line of the first record's header.
        first_line: u64,
        /// The record id.
        id: String,
        /// The output key both map to.
        key: String,
    },
    /// A protein longer than the model (or `--max-length`) allows.
    #[error(
        "{path}:{line}: record '{id}' has {residues} residues, more than the {limit} allowed ({reason}); nothing is truncated: pass --skip-long to leave such proteins out (they are then listed)"
    )]
    TooLong {
        /// The FASTA file.
        path: PathBuf,
        /// Line of the record's header.
        line: u64,
        /// The record id.
        id: String,
        /// Its length.
        residues: usize,
        /// The limit.
        limit: usize,
        /// Where the limit comes from.
        reason: String,
    },
    /// A protein's embedding came out NaN or infinite (broken weights, a broken
    /// configuration, or a precision too narrow for the model's values).
    #[error(
        "protein '{key}': its embedding has {count} non-finite value(s) (NaN or inf), so it was not written; the weights or config.json of {model} (`prottrans inspect` counts non-finite weights) or --precision {precision} may be at fault. The proteins embedded before it are kept: rerun with --resume once fixed"
    )]
    NonFinite {
        /// The protein's output key.
        key: String,
        /// How many values are not finite.
        count: usize,
        /// The checkpoint.
        model: PathBuf,
        /// The precision it ran at.
        precision: String,
    },
    /// The device cannot run at the requested precision.
    #[error("precision {precision}: {message}")]
    Precision {
        /// The precision asked for.
        precision: String,
        /// Why not.
        message: String,
    },
    /// The output path has an extension that names no known format.
    #[error("{path}: unknown output format; use a .h5 (or .hdf5) or .npz file name")]
    UnknownFormat {
        /// The output path.
        path: PathBuf,
    },
    /// HDF5 output asked of a build without it.
    #[error(
        "{path}: this prottrans was built without HDF5 support; rebuild with `--features hdf5` (needs the HDF5 library: apt install libhdf5-dev, brew install hdf5) or write .npz"
    )]
    Hdf5NotCompiled {
        /// The output path.
        path: PathBuf,
    },
    /// The output (or an unfinished run of it) is already there.
    #[error("{path} already exists; pass --resume to continue or extend it, or remove it")]
    OutputExists {
        /// The existing file or work directory.
        path: PathBuf,
    },
    /// Another job is writing the same output.
    #[error(
        "{output}: another prottrans embed is writing this output (it holds {lock}); wait for it to finish, then --resume adds what it lacks"
    )]
    Busy {
        /// The output.
        output: PathBuf,
        /// The lock file the other job holds.
        lock: PathBuf,
    },
    /// `--resume` with settings that differ from the run being resumed.
    #[error("{path}: cannot resume: {message}")]
    ResumeMismatch {
        /// The run description of the unfinished run.
        path: PathBuf,
        /// What differs.
        message: String,
    },
    /// An output file could not be written or read back.
    #[error("{path}: {message}")]
    Output {
        /// The file.
        path: PathBuf,
        /// What failed.
        message: String,
    },
    /// Another I/O failure.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Proteins of the input that none of the merged files holds.
    #[error("{}", incomplete_message(input, absent_shards, missing))]
    Incomplete {
        /// The FASTA input.
        input: PathBuf,
        /// Shards of the split that were not given (`I/N`).
        absent_shards: Vec<String>,
        /// Every missing protein.
        missing: Vec<crate::MissingProtein>,
    },
    /// Options that cannot work.
    #[error("invalid options: {0}")]
    Options(String),
}

fn incomplete_message(
    input: &std::path::Path,
    absent_shards: &[String],
    missing: &[crate::MissingProtein],
) -> String {
    let shown: Vec<String> = missing.iter().take(5).map(ToString::to_string).collect();
    let mut message = format!(
        "{} protein(s) of {} are in none of the files: {}{}",
        missing.len(),
        input.display(),
        shown.join(", "),
        if missing.len() > shown.len() {
            ", ..."
        } else {
            ""
        }
    );
    if !absent_shards.is_empty() {
        message.push_str(&format!(
            "; shard(s) {} are not among them",
            absent_shards.join(", ")
        ));
    }
    message.push_str(
        "; embed what is missing (rerun those shards with --resume), or pass --allow-partial",
    );
    message
}

impl EmbedError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { path, source }
    }

    pub(crate) fn output(path: impl Into<PathBuf>) -> impl FnOnce(String) -> Self {
        let path = path.into();
        move |message| Self::Output { path, message }
    }
}
