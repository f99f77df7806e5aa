//! The work directory of an unfinished embedding run: `OUTPUT.partial/`.
//!
//! Every finished batch is written there as one `part-NNNNNN.npz` (the arrays plus a `.meta`
//! JSON array of key, header and length), first under a temporary name and then renamed, so
//! a part is either complete or absent whenever the process stops. `run.json` records the
//! settings, so that `--resume` refuses to mix embeddings of different models or kinds.

use std::fs::File;
use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};

use ndarray::{Array1, ArrayD, IxDyn, OwnedRepr};
use ndarray_npy::{NpzReader, NpzWriter};
use serde::{Deserialize, Serialize};

use crate::embedder::Precision;
use crate::error::EmbedError;
use crate::output::Entry;

const RUN_FILE: &str = "run.json";
const META: &str = ".meta";

/// What must not change between a run and its resumption.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct RunDescription {
    /// The checkpoint directory, canonicalised (lossy UTF-8).
    pub model: String,
    /// Size and modification time (seconds) of its weights file, so that a checkpoint
    /// overwritten in place (by further training) is not mixed with its earlier self.
    pub weights: (u64, u64),
    /// Per-protein means instead of per-residue arrays.
    pub per_protein: bool,
    /// Precision of the forward pass.
    pub precision: Precision,
    /// Width of the embeddings.
    pub hidden_size: usize,
    /// How matrix products ran (`f32`, or `bf16` on AMX); work directories of earlier
    /// versions lack it, and ran in f32.
    #[serde(default = "f32_products")]
    pub products: String,
    /// The LoRA adapter merged into the weights (`directory#stamp`), if any; records of
    /// earlier versions lack it, and had none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub adapter: Option<String>,
    /// The shard of the input (`I/N`), if the run embedded one; records without it embedded
    /// the whole input.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<String>,
}

/// What an output file records of the run that wrote it: the settings, and what it left out
/// on purpose (so that `verify` and `merge` can tell those proteins from lost ones).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct OutputRecord {
    #[serde(flatten)]
    pub run: RunDescription,
    /// With `--skip-long`, the length limit: proteins above it were left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub left_out_above: Option<usize>,
}

fn f32_products() -> String {
    "f32".to_string()
}

impl RunDescription {
    /// The settings that differ from `other`'s, as `name: this vs other` lines.
    pub(crate) fn differences(&self, other: &RunDescription) -> Vec<String> {
        let (Ok(serde_json::Value::Object(this)), Ok(serde_json::Value::Object(that))) =
            (serde_json::to_value(self), serde_json::to_value(other))
        else {
            return vec![format!("{self:?} vs {other:?}")];
        };
        this.iter()
            .filter(|(name, value)| that.get(*name) != Some(value))
            .map(|(name, value)| {
                let theirs = that
                    .get(name)
                    .map_or("none".to_string(), ToString::to_string);
                format!("{name} {value} there, {theirs} in this run")
            })
            .collect()
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct PartMeta {
    key: String,
    header: String,
    length: usize,
}

/// Where a finished protein's embedding lies.
#[derive(Debug, Clone)]
pub(crate) struct Stored {
    pub part: PathBuf,
    pub header: String,
    pub length: usize,
}

pub(crate) struct Parts {
    dir: PathBuf,
    next: usize,
    reader: Option<(PathBuf, NpzReader<File>)>,
}

impl Parts {
    /// The work directory of `output`.
    pub(crate) fn dir_for(output: &Path) -> PathBuf {
        let mut name = output.file_name().unwrap_or_default().to_os_string();
        name.push(".partial");
        output.with_file_name(name)
    }

    /// Opens the work directory of a resumed run, checking its settings, or creates it.
    pub(crate) fn open(output: &Path, run: &RunDescription) -> Result<Self, EmbedError> {
        let dir = Self::dir_for(output);
        let run_path = dir.join(RUN_FILE);
        if run_path.is_file() {
            let text = std::fs::read_to_string(&run_path).map_err(EmbedError::io(&run_path))?;
            let previous: RunDescription = serde_json::from_str(&text).map_err(|e| {
                EmbedError::output(&run_path)(format!("unreadable run description: {e}"))
            })?;
            if &previous != run {
                return Err(EmbedError::ResumeMismatch {
                    path: run_path,
                    message: format!(
                        "it was started with other settings ({}); finish it with the same model and options, or remove {}",
                        previous.differences(run).join("; "),
                        dir.display()
                    ),
                });
            }
        } else {
            std::fs::create_dir_all(&dir).map_err(EmbedError::io(&dir))?;
            let text = serde_json::to_string_pretty(run)
                .map_err(|e| EmbedError::output(&run_path)(e.to_string()))?;
            write_atomically(&dir, &run_path, |file| {
                file.write_all(text.as_bytes()).map_err(|e| e.to_string())
            })?;
        }
        let mut parts = Self {
            dir,
            next: 0,
            reader: None,
        };
        // After the highest existing part, never over one: a gap (a part removed by hand) must
        // not make a new batch replace finished work.
        parts.next = parts
            .part_files()?
            .iter()
            .filter_map(|p| {
                p.file_stem()?
                    .to_str()?
                    .strip_prefix("part-")?
                    .parse::<usize>()
                    .ok()
            })
            .max()
            .map_or(0, |last| last + 1);
        Ok(parts)
    }

    /// The finished parts, in the order they were written.
    fn part_files(&self) -> Result<Vec<PathBuf>, EmbedError> {
        let mut files = Vec::new();
        for entry in std::fs::read_dir(&self.dir).map_err(EmbedError::io(&self.dir))? {
            let path = entry.map_err(EmbedError::io(&self.dir))?.path();
            let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
            if name.starts_with("part-") && name.ends_with(".npz") {
                files.push(path);
            }
        }
        files.sort();
        Ok(files)
    }

    /// Writes one finished batch as a new part.
    pub(crate) fn write(&mut self, entries: &[Entry]) -> Result<(), EmbedError> {
        let path = self.dir.join(format!("part-{:06}.npz", self.next));
        let meta: Vec<PartMeta> = entries
            .iter()
            .map(|e| PartMeta {
                key: e.key.clone(),
                header: e.header.clone(),
                length: e.length,
            })
            .collect();
        let meta = Array1::from(serde_json::to_vec(&meta).expect("metadata serialises"));
        // Built in memory (one batch), so a failing disk is one clean error from `write_all`
        // rather than from inside the zip writer.
        let mut npz = NpzWriter::new(Cursor::new(Vec::new()));
        for entry in entries {
            npz.add_array(entry.key.as_str(), &entry.values)
                .map_err(|e| EmbedError::output(&path)(e.to_string()))?;
        }
        npz.add_array(META, &meta)
            .map_err(|e| EmbedError::output(&path)(e.to_string()))?;
        let bytes = npz
            .finish()
            .map_err(|e| EmbedError::output(&path)(e.to_string()))?
            .into_inner();
        write_atomically(&self.dir, &path, |file| {
            file.write_all(&bytes).map_err(|e| e.to_string())
        })?;
        self.next += 1;
        Ok(())
    }

    /// Every protein stored in the parts, by key.
    pub(crate) fn index(&self) -> Result<Vec<(String, Stored)>, EmbedError> {
        let mut index = Vec::new();
        for part in self.part_files()? {
            let file = File::open(&part).map_err(EmbedError::io(&part))?;
            let mut reader = NpzReader::new(file)
                .map_err(|e| EmbedError::output(&part)(format!("unreadable part: {e}")))?;
            let meta: Array1<u8> = reader
                .by_name(&format!("{META}.npy"))
                .map_err(|e| EmbedError::output(&part)(format!("unreadable part: {e}")))?;
            let meta: Vec<PartMeta> = serde_json::from_slice(meta.as_slice().unwrap_or(&[]))
                .map_err(|e| EmbedError::output(&part)(format!("unreadable part metadata: {e}")))?;
            index.extend(meta.into_iter().map(|m| {
                (
                    m.key,
                    Stored {
                        part: part.clone(),
                        header: m.header,
                        length: m.length,
                    },
                )
            }));
        }
        Ok(index)
    }

    /// Reads one stored array.
    pub(crate) fn read(&mut self, key: &str, stored: &Stored) -> Result<ArrayD<f32>, EmbedError> {
        if self.reader.as_ref().map(|(p, _)| p) != Some(&stored.part) {
            let file = File::open(&stored.part).map_err(EmbedError::io(&stored.part))?;
            let reader = NpzReader::new(file)
                .map_err(|e| EmbedError::output(&stored.part)(format!("unreadable part: {e}")))?;
            self.reader = Some((stored.part.clone(), reader));
        }
        let (_, reader) = self.reader.as_mut().expect("opened above");
        reader
            .by_name::<OwnedRepr<f32>, IxDyn>(&format!("{key}.npy"))
            .map_err(|e| EmbedError::output(&stored.part)(format!("{key}: {e}")))
    }

    /// Removes the work directory once the output holds everything.
    pub(crate) fn remove(self) -> Result<(), EmbedError> {
        std::fs::remove_dir_all(&self.dir).map_err(EmbedError::io(&self.dir))
    }
}

/// Writes `path` through a temporary file in `dir` renamed into place, so that `path` is never
/// seen half-written.
pub(crate) fn write_atomically(
    dir: &Path,
    path: &Path,
    write: impl FnOnce(&mut File) -> Result<(), String>,
) -> Result<(), EmbedError> {
    let mut temp = tempfile::Builder::new()
        .prefix(".tmp-")
        .tempfile_in(dir)
        .map_err(EmbedError::io(dir))?;
    write(temp.as_file_mut()).map_err(EmbedError::output(path))?;
    temp.as_file().sync_all().map_err(EmbedError::io(path))?;
    temp.persist_noclobber(path)
        .map_err(|e| EmbedError::io(path)(e.error))?;
    Ok(())
}
