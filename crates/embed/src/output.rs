//! The embedding files: `.npz` (always available) and `.h5` (with the `hdf5` feature).
//!
//! Both hold one float32 array per protein, named by its key: `[L, d]` per-residue or `[d]`
//! per-protein. h5 datasets also carry the FASTA header (`header`, a UTF-8 string) and the
//! sequence length (`length`) as attributes; h5py reads them as `f[key].attrs["header"]`.
//!
//! Both record the settings of the run that wrote them (model, weights, precision, pooling) as
//! JSON, so that `--resume` refuses to add other embeddings: in the npz's zip comment
//! (`prottrans_run=` then the JSON; `zipfile.ZipFile(path).comment` in Python, ignored by
//! `numpy.load`) and in the h5 file's root attribute `prottrans_run`.

use std::fs::File;
use std::io::BufWriter;
use std::path::{Path, PathBuf};

use ndarray::{ArrayD, IxDyn, OwnedRepr};
use ndarray_npy::{NpzReader, WriteNpyExt};
use zip::write::SimpleFileOptions;
use zip::{CompressionMethod, ZipWriter};

use crate::error::EmbedError;

/// An output file format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutputFormat {
    /// HDF5 (`.h5`, `.hdf5`), as the authors' embedder writes.
    H5,
    /// NumPy's zip of `.npy` arrays (`.npz`), readable with `numpy.load`.
    Npz,
}

impl OutputFormat {
    /// The format a file name asks for.
    pub fn from_path(path: &Path) -> Result<Self, EmbedError> {
        let extension = path
            .extension()
            .and_then(|e| e.to_str())
            .map(str::to_ascii_lowercase);
        match extension.as_deref() {
            Some("h5" | "hdf5") => {
                if cfg!(feature = "hdf5") {
                    Ok(Self::H5)
                } else {
                    Err(EmbedError::Hdf5NotCompiled {
                        path: path.to_path_buf(),
                    })
                }
            }
            Some("npz") => Ok(Self::Npz),
            _ => Err(EmbedError::UnknownFormat {
                path: path.to_path_buf(),
            }),
        }
    }
}

/// One protein's embedding.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// The output key (see [`protein_key`](crate::protein_key)).
    pub key: String,
    /// The whole FASTA header (without `>`).
    pub header: String,
    /// Number of residues.
    pub length: usize,
    /// `[length, d]` or `[d]`.
    pub values: ArrayD<f32>,
}

/// The npz comment's prefix and the h5 root attribute that record the run's settings.
const RUN_RECORD: &str = "prottrans_run";

/// Writes a new embedding file entry by entry.
pub(crate) enum Writer {
    /// The arrays as `KEY.npy` entries, stored uncompressed as `numpy.savez` does (what
    /// ndarray-npy's `NpzWriter` writes, which has no archive comment), and the run record.
    Npz(Box<ZipWriter<BufWriter<File>>>, PathBuf, String),
    #[cfg(feature = "hdf5")]
    H5(hdf5::File, PathBuf),
}

impl Writer {
    /// Creates (truncates) `path` in `format`, recording `run` (the run's settings as JSON).
    pub(crate) fn create(path: &Path, format: OutputFormat, run: &str) -> Result<Self, EmbedError> {
        match format {
            OutputFormat::Npz => {
                let file = File::create(path).map_err(EmbedError::io(path))?;
                Ok(Self::Npz(
                    Box::new(ZipWriter::new(BufWriter::new(file))),
                    path.to_path_buf(),
                    format!("{RUN_RECORD}={run}"),
                ))
            }
            #[cfg(feature = "hdf5")]
            OutputFormat::H5 => {
                let file = hdf5::File::create(path)
                    .map_err(|e| EmbedError::output(path)(e.to_string()))?;
                h5::record_run(&file, run)
                    .map_err(|e| EmbedError::output(path)(format!("{RUN_RECORD}: {e}")))?;
                Ok(Self::H5(file, path.to_path_buf()))
            }
            #[cfg(not(feature = "hdf5"))]
            OutputFormat::H5 => Err(EmbedError::Hdf5NotCompiled {
                path: path.to_path_buf(),
            }),
        }
    }

    /// Adds one array (keys must be unique).
    pub(crate) fn add(&mut self, entry: &Entry) -> Result<(), EmbedError> {
        match self {
            Self::Npz(zip, path, _) => {
                let options = SimpleFileOptions::default()
                    .compression_method(CompressionMethod::Stored)
                    .large_file(entry.values.len() * 4 + 4096 >= u32::MAX as usize);
                zip.start_file(format!("{}.npy", entry.key), options)
                    .map_err(|e| e.to_string())
                    .and_then(|()| {
                        entry
                            .values
                            .write_npy(BufWriter::new(zip.as_mut()))
                            .map_err(|e| e.to_string())
                    })
                    .map_err(|e| EmbedError::output(path.as_path())(format!("{}: {e}", entry.key)))
            }
            #[cfg(feature = "hdf5")]
            Self::H5(file, path) => h5::add(file, entry)
                .map_err(|e| EmbedError::output(path.as_path())(format!("{}: {e}", entry.key))),
        }
    }

    /// Completes the file.
    pub(crate) fn finish(self) -> Result<(), EmbedError> {
        match self {
            Self::Npz(mut zip, path, comment) => {
                zip.set_comment(comment);
                let inner = zip
                    .finish()
                    .map_err(|e| EmbedError::output(path.as_path())(e.to_string()))?;
                let file = inner
                    .into_inner()
                    .map_err(|e| EmbedError::output(path.as_path())(e.to_string()))?;
                file.sync_all().map_err(EmbedError::io(path))
            }
            #[cfg(feature = "hdf5")]
            Self::H5(file, path) => file
                .close()
                .map_err(|e| EmbedError::output(path.as_path())(e.to_string())),
        }
    }
}

/// Writes a new embedding file at `output` through a temporary file in `dir` (on the same
/// filesystem) renamed into place, both synced, so that `output` is never seen half-written:
/// `fill` adds the entries. A run killed meanwhile leaves only the temporary file behind.
pub(crate) fn write_atomically(
    output: &Path,
    dir: &Path,
    format: OutputFormat,
    record: &str,
    fill: impl FnOnce(&mut Writer) -> Result<(), EmbedError>,
) -> Result<(), EmbedError> {
    let mut builder = tempfile::Builder::new();
    builder.prefix(".prottrans-embed-").suffix(".tmp");
    #[cfg(unix)]
    {
        // Like any new file (0666 less the umask), not tempfile's owner-only 0600.
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    let temp = builder.tempfile_in(dir).map_err(EmbedError::io(dir))?;
    let mut writer = Writer::create(temp.path(), format, record)?;
    fill(&mut writer)?;
    writer.finish()?;
    // On disk before the rename makes it the output (and the caller lets go of its sources).
    File::open(temp.path())
        .and_then(|f| f.sync_all())
        .map_err(EmbedError::io(output))?;
    temp.persist(output)
        .map_err(|e| EmbedError::io(output)(e.error))?;
    #[cfg(unix)]
    if let Some(parent) = output.parent().filter(|p| !p.as_os_str().is_empty()) {
        // The rename itself.
        File::open(parent)
            .and_then(|d| d.sync_all())
            .map_err(EmbedError::io(parent))?;
    }
    Ok(())
}

/// An embedding file opened for reading.
pub struct EmbeddingFile {
    path: PathBuf,
    inner: Reader,
}

enum Reader {
    Npz(NpzReader<File>),
    #[cfg(feature = "hdf5")]
    H5(hdf5::File),
}

impl std::fmt::Debug for EmbeddingFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbeddingFile")
            .field("path", &self.path)
            .finish()
    }
}

impl EmbeddingFile {
    /// Opens an `.npz` or `.h5` file written by prottrans (or anything with the same layout).
    pub fn open(path: impl AsRef<Path>) -> Result<Self, EmbedError> {
        let path = path.as_ref().to_path_buf();
        let inner = match OutputFormat::from_path(&path)? {
            OutputFormat::Npz => {
                let file = File::open(&path).map_err(EmbedError::io(&path))?;
                Reader::Npz(NpzReader::new(file).map_err(|e| {
                    EmbedError::output(&path)(format!("not a readable npz file: {e}"))
                })?)
            }
            #[cfg(feature = "hdf5")]
            OutputFormat::H5 => Reader::H5(hdf5::File::open(&path).map_err(|e| {
                EmbedError::output(&path)(format!("not a readable HDF5 file: {e}"))
            })?),
            #[cfg(not(feature = "hdf5"))]
            OutputFormat::H5 => unreachable!("from_path refuses h5 without the hdf5 feature"),
        };
        Ok(Self { path, inner })
    }

    /// The keys, in file order.
    pub fn keys(&mut self) -> Result<Vec<String>, EmbedError> {
        let path = self.path.clone();
        match &mut self.inner {
            Reader::Npz(reader) => Ok(reader
                .names()
                .map_err(|e| EmbedError::output(&path)(e.to_string()))?
                .into_iter()
                .map(|name| {
                    name.strip_suffix(".npy")
                        .map(str::to_string)
                        .unwrap_or(name)
                })
                .collect()),
            #[cfg(feature = "hdf5")]
            Reader::H5(file) => file
                .member_names()
                .map_err(|e| EmbedError::output(&path)(e.to_string())),
        }
    }

    /// Reads one protein's array.
    pub fn read(&mut self, key: &str) -> Result<ArrayD<f32>, EmbedError> {
        let path = self.path.clone();
        let fail = |e: String| EmbedError::output(&path)(format!("{key}: {e}"));
        match &mut self.inner {
            Reader::Npz(reader) => reader
                .by_name::<OwnedRepr<f32>, IxDyn>(&format!("{key}.npy"))
                .map_err(|e| fail(e.to_string())),
            #[cfg(feature = "hdf5")]
            Reader::H5(file) => file
                .dataset(key)
                .and_then(|d| d.read_dyn::<f32>())
                .map_err(|e| fail(e.to_string())),
        }
    }

    /// The settings of the run that wrote the file (JSON), if it recorded them (files of
    /// other tools and of earlier prottrans versions do not).
    pub fn run_record(&self) -> Result<Option<String>, EmbedError> {
        let fail = |e: String| EmbedError::output(&self.path)(format!("{RUN_RECORD}: {e}"));
        match &self.inner {
            Reader::Npz(_) => {
                let file = File::open(&self.path).map_err(EmbedError::io(&self.path))?;
                let archive = zip::ZipArchive::new(file).map_err(|e| fail(e.to_string()))?;
                let comment = String::from_utf8_lossy(archive.comment());
                Ok(comment
                    .strip_prefix(&format!("{RUN_RECORD}="))
                    .map(str::to_string))
            }
            #[cfg(feature = "hdf5")]
            Reader::H5(file) => h5::run_record(file).map_err(|e| fail(e.to_string())),
        }
    }

    /// Reads one protein's entry; the header is empty and the length is taken from the array
    /// where the format has no attributes (npz).
    pub fn read_entry(&mut self, key: &str) -> Result<Entry, EmbedError> {
        let values = self.read(key)?;
        let (header, length) = match &self.inner {
            Reader::Npz(_) => (String::new(), values.shape().first().copied().unwrap_or(0)),
            #[cfg(feature = "hdf5")]
            Reader::H5(file) => h5::attributes(file, key)
                .map_err(|e| EmbedError::output(&self.path)(format!("{key}: {e}")))?,
        };
        Ok(Entry {
            key: key.to_string(),
            header,
            length,
            values,
        })
    }
}

#[cfg(feature = "hdf5")]
mod h5 {
    use hdf5::types::VarLenUnicode;

    use super::Entry;

    pub(super) fn add(file: &hdf5::File, entry: &Entry) -> hdf5::Result<()> {
        let dataset = file
            .new_dataset_builder()
            .with_data(&entry.values)
            .create(entry.key.as_str())?;
        // A NUL cannot be stored in an HDF5 string; FASTA headers have none in practice.
        let header: VarLenUnicode = entry
            .header
            .replace('\0', " ")
            .parse()
            .map_err(|e| hdf5::Error::from(format!("header: {e}")))?;
        dataset
            .new_attr::<VarLenUnicode>()
            .create("header")?
            .write_scalar(&header)?;
        dataset
            .new_attr::<u64>()
            .create("length")?
            .write_scalar(&(entry.length as u64))?;
        Ok(())
    }

    /// The run's settings as the file's root attribute.
    pub(super) fn record_run(file: &hdf5::File, run: &str) -> hdf5::Result<()> {
        let value: VarLenUnicode = run.parse().map_err(|e| hdf5::Error::from(format!("{e}")))?;
        file.new_attr::<VarLenUnicode>()
            .create(super::RUN_RECORD)?
            .write_scalar(&value)
    }

    pub(super) fn run_record(file: &hdf5::File) -> hdf5::Result<Option<String>> {
        match file.attr(super::RUN_RECORD) {
            Ok(attr) => Ok(Some(
                attr.read_scalar::<VarLenUnicode>()?.as_str().to_string(),
            )),
            Err(_) => Ok(None),
        }
    }

    /// Header and length; files from other tools may lack them (empty header, rows as length).
    pub(super) fn attributes(file: &hdf5::File, key: &str) -> hdf5::Result<(String, usize)> {
        let dataset = file.dataset(key)?;
        let header = match dataset.attr("header") {
            Ok(attr) => attr.read_scalar::<VarLenUnicode>()?.as_str().to_string(),
            Err(_) => String::new(),
        };
        let length = match dataset.attr("length") {
            Ok(attr) => attr.read_scalar::<u64>()? as usize,
            Err(_) => dataset.shape().first().copied().unwrap_or(0),
        };
        Ok((header, length))
    }
}
