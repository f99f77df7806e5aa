use std::io::Write;
use std::path::{Path, PathBuf};

use prottrans_embed::EmbedError;

/// Errors from reading labelled data, computing features, training, evaluating or predicting.
#[derive(Debug, thiserror::Error)]
pub enum TransferError {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A labelled CSV row (or its header) is malformed.
    #[error("{path}:{line}: {message}")]
    Csv {
        /// The CSV file.
        path: PathBuf,
        /// 1-based line of the row (1 is the header).
        line: u64,
        /// What is wrong.
        message: String,
    },
    /// Embeddings could not be computed or read.
    #[error(transparent)]
    Embed(#[from] EmbedError),
    /// An embeddings file lacks a protein or holds an array of the wrong shape.
    #[error("{path}: {message}")]
    Embeddings {
        /// The embeddings file (.h5 or .npz).
        path: PathBuf,
        /// What is wrong, naming the protein.
        message: String,
    },
    /// A saved head could not be read or written.
    #[error("{path}: {message}")]
    Head {
        /// The head directory or file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// Options that do not fit together, or do not fit the data.
    #[error("{0}")]
    Invalid(String),
    /// burn-train stopped with an error.
    #[error("training failed: {0}")]
    Training(String),
    /// A picture could not be drawn.
    #[error("{path}: could not draw: {message}")]
    Plot {
        /// The picture being written.
        path: PathBuf,
        /// The drawing backend's message.
        message: String,
    },
}

impl TransferError {
    pub(crate) fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> Self {
        let path = path.into();
        move |source| Self::Io { path, source }
    }
}

/// Writes `path` through a temporary file in the same directory and a rename, so that readers
/// never see a partial file.
pub(crate) fn write_atomically(
    path: &Path,
    write: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<(), TransferError> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let mut builder = tempfile::Builder::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // Like any new file (0666 less the umask), not tempfile's owner-only 0600.
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    // As `embed` does: an output in a new directory is no error.
    std::fs::create_dir_all(dir).map_err(TransferError::io(dir))?;
    let mut file = builder.tempfile_in(dir).map_err(TransferError::io(dir))?;
    {
        let mut buffered = std::io::BufWriter::new(file.as_file_mut());
        write(&mut buffered).map_err(TransferError::io(path))?;
        buffered.flush().map_err(TransferError::io(path))?;
    }
    file.persist(path)
        .map_err(|e| TransferError::io(path)(e.error))?;
    Ok(())
}
