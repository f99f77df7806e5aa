//! A whole FASTA file embedded into one output file, resumably.

use std::borrow::Cow;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use ndarray::ArrayD;
use prottrans_data::{DataError, FastaReader};
use serde::{Deserialize, Serialize};

use crate::embedder::{Embedder, mean_over_residues};
use crate::error::EmbedError;
use crate::output::{EmbeddingFile, Entry, OutputFormat, write_atomically};
use crate::parts::{OutputRecord, Parts, RunDescription, Stored};
use crate::plan::plan_batches;
use crate::shard::{self, Shard};

/// What to do with proteins longer than the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum LongPolicy {
    /// Stop with an error naming the protein (nothing is ever truncated).
    #[default]
    Error,
    /// Leave them out of the output and list them in the summary.
    Skip,
}

/// How to embed a file; the defaults are the authors'.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EmbedOptions {
    /// One mean vector `[d]` per protein instead of `[L, d]`.
    pub per_protein: bool,
    /// Most residues in one batch.
    pub max_residues: usize,
    /// Most proteins in one batch.
    pub max_batch: usize,
    /// Proteins longer than this run alone.
    pub alone_above: usize,
    /// Longest protein accepted; the model's own limit when `None` (and never above it).
    pub max_length: Option<usize>,
    /// Most bytes one layer's attention may hold where it materialises every score (see
    /// [`Embedder::materialises_attention`]); longer proteins are refused like those above
    /// `max_length`. `None`: the machine's physical memory (no limit where it is unknown).
    pub max_attention_bytes: Option<u64>,
    /// What to do with longer proteins.
    pub long_policy: LongPolicy,
    /// Continue an unfinished run, or add the proteins missing from an existing output.
    pub resume: bool,
    /// Pause after each batch (for testing interruption).
    pub batch_delay: Option<Duration>,
    /// Accept an input without proteins (an empty output is written); otherwise it is an
    /// error, since an empty FASTA file is usually a mistake upstream. A shard that gets no
    /// protein of a non-empty input is always a valid, empty output.
    pub allow_empty: bool,
    /// Embed only this shard of the input (see [`Shard`]); the output records it, so that
    /// `merge` can check that the shards fit together.
    pub shard: Option<Shard>,
}

impl Default for EmbedOptions {
    fn default() -> Self {
        Self {
            per_protein: false,
            max_residues: 4000,
            max_batch: 100,
            alone_above: 1000,
            max_length: None,
            max_attention_bytes: None,
            long_policy: LongPolicy::Error,
            resume: false,
            batch_delay: None,
            allow_empty: false,
            shard: None,
        }
    }
}

/// Progress events, for a progress bar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// The input was read: what is left to embed.
    Started {
        /// Proteins of the whole input file (all shards).
        in_input: usize,
        /// Proteins to embed in this run.
        proteins: usize,
        /// Their residues.
        residues: usize,
        /// Proteins found already done (resume).
        already_done: usize,
    },
    /// One batch finished and was saved.
    Batch {
        /// Proteins in the batch.
        proteins: usize,
        /// Residues in the batch.
        residues: usize,
    },
    /// Everything is embedded; the output file is being written.
    Writing {
        /// Proteins in the output.
        entries: usize,
    },
}

/// What a run did.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmbedSummary {
    /// The output file.
    pub output: PathBuf,
    /// Proteins embedded by this run.
    pub proteins: usize,
    /// Their residues.
    pub residues: usize,
    /// Batches run.
    pub batches: usize,
    /// Proteins of the input that were already in the output or the work directory.
    pub already_done: usize,
    /// Proteins left out under [`LongPolicy::Skip`] (their ids).
    pub skipped_long: Vec<String>,
    /// Proteins in the output file.
    pub entries: usize,
    /// Seconds spent embedding (reading the input and writing the final file excluded).
    pub seconds: f64,
    /// Seconds for the whole run after the model was loaded.
    pub total_seconds: f64,
    /// Throughput.
    pub proteins_per_s: f64,
    /// Throughput.
    pub residues_per_s: f64,
    /// Peak resident memory of the process, where the OS tells it (Linux).
    pub peak_rss_bytes: Option<u64>,
    /// Residues of the proteins embedded by this run that the model's vocabulary lacks, read
    /// as its unknown token (as the checkpoint's own tokenizer does).
    #[serde(default)]
    pub unknown_residues: usize,
    /// The output keys of the proteins that had them.
    #[serde(default)]
    pub proteins_with_unknown: Vec<String>,
    /// Proteins whose id holds `/` or `.`, written under a key with `_` (see [`protein_key`]).
    #[serde(default)]
    pub renamed_keys: usize,
    /// The first few of them, as `'id' as 'key'`.
    #[serde(default)]
    pub renamed_examples: Vec<String>,
    /// The shard this run embedded (`I/N`), if the input was sharded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shard: Option<String>,
    /// Proteins of the whole input file (all shards).
    #[serde(default)]
    pub in_input: usize,
}

/// An exclusive lock on `.OUTPUT.lock` beside the output, removed when dropped.
struct OutputLock {
    path: PathBuf,
    _file: std::fs::File,
}

impl OutputLock {
    fn take(output: &Path) -> Result<Self, EmbedError> {
        let mut name = std::ffi::OsString::from(".");
        name.push(output.file_name().unwrap_or_default());
        name.push(".lock");
        let path = output.with_file_name(name);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&path)
            .map_err(EmbedError::io(&path))?;
        match file.try_lock() {
            Ok(()) => Ok(Self { path, _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => Err(EmbedError::Busy {
                output: output.to_path_buf(),
                lock: path,
            }),
            Err(std::fs::TryLockError::Error(e)) => Err(EmbedError::io(&path)(e)),
        }
    }
}

impl Drop for OutputLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// The output key of a protein: the first word of its header with `/` and `.` replaced by `_`
/// (as the authors' embedder names its h5 datasets).
pub fn protein_key(id: &str) -> String {
    id.replace(['/', '.'], "_")
}

struct Protein {
    key: String,
    header: String,
    residues: ResidueIds,
}

/// A protein's residue ids, held from reading until its batch: one byte each where the ids
/// allow it (every released vocabulary has under 256 tokens), which makes a whole input cost
/// a quarter of the memory four-byte ids would.
enum ResidueIds {
    Narrow(Box<[u8]>),
    Wide(Box<[u32]>),
}

impl ResidueIds {
    fn new(ids: Vec<u32>) -> Self {
        match ids.iter().map(|&id| u8::try_from(id)).collect() {
            Ok(narrow) => Self::Narrow(narrow),
            Err(_) => Self::Wide(ids.into_boxed_slice()),
        }
    }

    fn len(&self) -> usize {
        match self {
            Self::Narrow(ids) => ids.len(),
            Self::Wide(ids) => ids.len(),
        }
    }

    /// The ids as the model takes them.
    fn widened(&self) -> Cow<'_, [u32]> {
        match self {
            Self::Narrow(ids) => Cow::Owned(ids.iter().map(|&id| u32::from(id)).collect()),
            Self::Wide(ids) => Cow::Borrowed(ids),
        }
    }
}

/// The proteins of the input this run embeds.
#[derive(Default)]
struct Input {
    /// This run's (this shard's), within the length limit.
    proteins: Vec<Protein>,
    /// This run's ids above the length limit, left out (`--skip-long`).
    skipped_long: Vec<String>,
    /// Records of the whole file.
    records: usize,
}

impl Input {
    fn take(&mut self, protein: Protein, too_long: bool) {
        if too_long {
            let id = protein.header.split_whitespace().next().unwrap_or_default();
            self.skipped_long.push(id.to_string());
        } else {
            self.proteins.push(protein);
        }
    }
}

/// How long a protein may be, and why.
struct LengthLimit {
    residues: Option<usize>,
    reason: String,
}

/// The parts to merge into the output, and where to report it.
type PartsAndProgress<'a> = (&'a mut Parts, &'a mut dyn FnMut(&Progress));

/// Embeds `input` into `output` with `embedder`.
#[derive(Debug)]
pub struct EmbedJob<'a> {
    /// The model.
    pub embedder: &'a Embedder,
    /// FASTA (plain or gzip).
    pub input: PathBuf,
    /// `.h5` or `.npz`.
    pub output: PathBuf,
    /// Options.
    pub options: EmbedOptions,
}

impl EmbedJob<'_> {
    /// Runs the job: reads and checks the whole input first (so a bad record fails before any
    /// work), embeds what is not done yet batch by batch into the work directory, then writes
    /// the output file atomically and removes the work directory.
    pub fn run(&self, progress: &mut dyn FnMut(&Progress)) -> Result<EmbedSummary, EmbedError> {
        self.run_on(&[], progress)
    }

    /// Runs the job as [`run`](Self::run) does, on `self.embedder` and `others` at once: the
    /// same checkpoint loaded on other devices (a node's GPUs, say), one worker thread each,
    /// taking batches from one shared plan; one writer. Their settings must be the same.
    pub fn run_on(
        &self,
        others: &[&Embedder],
        progress: &mut dyn FnMut(&Progress),
    ) -> Result<EmbedSummary, EmbedError> {
        let started = Instant::now();
        for other in others {
            let describe = |e: &Embedder| {
                (
                    e.source().to_path_buf(),
                    e.precision(),
                    e.hidden_size(),
                    e.adapter().map(|(dir, stamp)| (dir.to_path_buf(), stamp)),
                    e.segment_length(),
                    e.bf16_products_run(),
                )
            };
            if describe(other) != describe(self.embedder) {
                return Err(EmbedError::Options(format!(
                    "the embedders of one job must be one checkpoint with one precision, adapter and segment length: {} on {:?} differs from {} on {:?}",
                    other.source().display(),
                    other.device(),
                    self.embedder.source().display(),
                    self.embedder.device()
                )));
            }
        }
        let options = &self.options;
        if options.max_residues == 0 || options.max_batch == 0 {
            return Err(EmbedError::Options(
                "--max-residues and --max-batch must be at least 1".into(),
            ));
        }
        let format = OutputFormat::from_path(&self.output)?;
        if let Some(parent) = self.output.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(EmbedError::io(parent))?;
        }
        // One job per output: held until this function returns (the OS releases it if the
        // process dies, so an interrupted run never blocks its own resumption).
        let _lock = OutputLock::take(&self.output)?;
        let work_dir = Parts::dir_for(&self.output);
        if !options.resume {
            for path in [&self.output, &work_dir] {
                if path.exists() {
                    return Err(EmbedError::OutputExists { path: path.clone() });
                }
            }
        }

        let limit = self.length_limit()?;
        let Input {
            proteins,
            skipped_long,
            records,
        } = self.read_input(&limit)?;
        if records == 0 && !options.allow_empty {
            return Err(EmbedError::Options(format!(
                "{}: no proteins (an empty input is usually a mistake upstream; allow it with --allow-empty)",
                self.input.display()
            )));
        }

        // What is done already: in the output file, or in the parts of an unfinished run.
        let mut existing = if self.output.exists() {
            Some(EmbeddingFile::open(&self.output)?)
        } else {
            None
        };
        let run = RunDescription {
            model: self.embedder.source().to_string_lossy().into_owned(),
            weights: self.weights_fingerprint(),
            per_protein: options.per_protein,
            precision: self.embedder.precision(),
            hidden_size: self.embedder.hidden_size(),
            products: if self.embedder.bf16_products_run() {
                "bf16".to_string()
            } else {
                "f32".to_string()
            },
            adapter: self
                .embedder
                .adapter()
                .map(|(dir, stamp)| format!("{}#{stamp:016x}", dir.to_string_lossy())),
            shard: options.shard.map(|s| s.to_string()),
        };
        let record = OutputRecord {
            run: run.clone(),
            left_out_above: match options.long_policy {
                LongPolicy::Skip => limit.residues,
                LongPolicy::Error => None,
            },
        };
        let mut done: HashSet<String> = HashSet::new();
        if let Some(file) = existing.as_mut() {
            done.extend(file.keys()?);
            self.check_existing_output(file, done.iter().next(), &run)?;
        }
        let existing_entries = done.len();
        let work_dir_existed = work_dir.exists();
        let todo: Vec<&Protein> = {
            let parts_index = if work_dir_existed {
                Parts::open(&self.output, &run)?.index()?
            } else {
                Vec::new()
            };
            done.extend(parts_index.into_iter().map(|(k, _)| k));
            proteins.iter().filter(|p| !done.contains(&p.key)).collect()
        };
        let already_done = proteins.len() - todo.len();
        let tokenizer = self.embedder.tokenizer();
        let with_unknown: Vec<(&str, usize)> = todo
            .iter()
            .map(|p| {
                (
                    p.key.as_str(),
                    tokenizer.count_unknown(&p.residues.widened()),
                )
            })
            .filter(|&(_, n)| n > 0)
            .collect();
        let renamed: Vec<String> = proteins
            .iter()
            .filter_map(|p| {
                let id = p.header.split_whitespace().next().unwrap_or_default();
                (id != p.key).then(|| format!("'{id}' as '{}'", p.key))
            })
            .collect();
        let note_unknown = |mut summary: EmbedSummary, in_input: usize| {
            summary.shard = options.shard.map(|s| s.to_string());
            summary.in_input = in_input;
            summary.renamed_keys = renamed.len();
            summary.renamed_examples = renamed.iter().take(5).cloned().collect();
            summary.unknown_residues = with_unknown.iter().map(|&(_, n)| n).sum();
            summary.proteins_with_unknown =
                with_unknown.iter().map(|&(k, _)| k.to_string()).collect();
            summary
        };
        let residues: usize = todo.iter().map(|p| p.residues.len()).sum();
        progress(&Progress::Started {
            in_input: records,
            proteins: todo.len(),
            residues,
            already_done,
        });

        if todo.is_empty() && !work_dir_existed {
            // Nothing new and nothing unfinished: the output (if any) is complete as it is.
            if existing.is_none() {
                self.write_output(format, &record, None, None, &[])?;
            }
            let summary = self.summary(
                0,
                0,
                0,
                already_done,
                skipped_long,
                existing_entries,
                0.0,
                started,
            );
            return Ok(note_unknown(summary, records));
        }

        let mut parts = Parts::open(&self.output, &run)?;
        let embedding = Instant::now();
        let lengths: Vec<usize> = todo.iter().map(|p| p.residues.len()).collect();
        let batches = plan_batches(
            &lengths,
            options.max_residues,
            options.max_batch,
            options.alone_above,
        );
        {
            let mut save = |entries: Vec<Entry>| -> Result<(), EmbedError> {
                parts.write(&entries)?;
                progress(&Progress::Batch {
                    proteins: entries.len(),
                    residues: entries.iter().map(|e| e.length).sum(),
                });
                if let Some(delay) = options.batch_delay {
                    std::thread::sleep(delay);
                }
                Ok(())
            };
            if others.is_empty() {
                for batch in &batches {
                    save(self.embed_batch(self.embedder, &todo, batch)?)?;
                }
            } else {
                // One worker per device, each taking the next batch of the shared plan; this
                // thread alone writes. The channel holds a batch per worker at most, so memory
                // stays bounded however fast the devices are.
                let workers: Vec<&Embedder> = std::iter::once(self.embedder)
                    .chain(others.iter().copied())
                    .collect();
                let next = AtomicUsize::new(0);
                std::thread::scope(|scope| -> Result<(), EmbedError> {
                    let (sender, receiver) = std::sync::mpsc::sync_channel(workers.len());
                    for &embedder in &workers {
                        let (sender, next, batches, todo) =
                            (sender.clone(), &next, &batches, &todo);
                        scope.spawn(move || {
                            while let Some(batch) =
                                batches.get(next.fetch_add(1, Ordering::Relaxed))
                            {
                                let result = self.embed_batch(embedder, todo, batch);
                                let failed = result.is_err();
                                // A closed channel: the writer stopped on an error.
                                if sender.send(result).is_err() || failed {
                                    break;
                                }
                            }
                        });
                    }
                    drop(sender);
                    for result in receiver {
                        save(result?)?;
                    }
                    Ok(())
                })?;
            }
        }
        let seconds = embedding.elapsed().as_secs_f64();

        let expected: Vec<&str> = proteins.iter().map(|p| p.key.as_str()).collect();
        let entries = self.write_output(
            format,
            &record,
            existing,
            Some((&mut parts, progress)),
            &expected,
        )?;
        parts.remove()?;
        Ok(note_unknown(
            self.summary(
                todo.len(),
                residues,
                batches.len(),
                already_done,
                skipped_long,
                entries,
                seconds,
                started,
            ),
            records,
        ))
    }

    /// Embeds one planned batch of `todo` with `embedder` into entries (refusing non-finite
    /// values: a NaN embedding would pass for a result downstream).
    fn embed_batch(
        &self,
        embedder: &Embedder,
        todo: &[&Protein],
        batch: &[usize],
    ) -> Result<Vec<Entry>, EmbedError> {
        let members: Vec<&Protein> = batch.iter().map(|&i| todo[i]).collect();
        let ids: Vec<Cow<[u32]>> = members.iter().map(|p| p.residues.widened()).collect();
        let ids: Vec<&[u32]> = ids.iter().map(|ids| ids.as_ref()).collect();
        let embeddings = embedder.embed_residue_ids(&ids)?;
        for (protein, residues) in members.iter().zip(&embeddings) {
            let count = residues.iter().filter(|v| !v.is_finite()).count();
            if count > 0 {
                return Err(EmbedError::NonFinite {
                    key: protein.key.clone(),
                    count,
                    model: embedder.source().to_path_buf(),
                    precision: embedder.precision().to_string(),
                });
            }
        }
        Ok(members
            .iter()
            .zip(embeddings)
            .map(|(protein, residues)| Entry {
                key: protein.key.clone(),
                header: protein.header.clone(),
                length: protein.residues.len(),
                values: if self.options.per_protein {
                    mean_over_residues(&residues).into_dyn()
                } else {
                    residues.into_dyn()
                },
            })
            .collect())
    }

    /// The longest protein whose attention fits the memory budget, and why, where attention
    /// materialises every score.
    fn attention_limit(&self) -> Option<(usize, String)> {
        let (budget, source) = match self.options.max_attention_bytes {
            Some(bytes) => (bytes, "--max-attention-gib"),
            None => (
                physical_memory()?,
                "the machine's memory; --max-attention-gib sets it",
            ),
        };
        let limit = self.embedder.attention_length_limit(budget)?;
        let gib = budget as f64 / f64::from(1u32 << 30);
        Some((
            limit,
            format!(
                "attention here holds every pair of positions, about {} bytes per pair per layer, within {gib:.1} GiB ({source})",
                self.embedder.attention_bytes_per_pair(),
            ),
        ))
    }

    /// The longest protein this run takes, from `--max-length`, the model's positions and the
    /// memory attention needs.
    fn length_limit(&self) -> Result<LengthLimit, EmbedError> {
        let model_limit = self.embedder.max_residues();
        let (limit, reason) = match (self.options.max_length, model_limit) {
            (Some(asked), Some(model)) if asked > model => {
                return Err(EmbedError::Options(format!(
                    "--max-length {asked} is above what the model takes ({model} residues)"
                )));
            }
            (Some(asked), _) => (Some(asked), "--max-length".to_string()),
            (None, Some(model)) => (
                Some(model),
                "the model's positions, minus its special tokens".to_string(),
            ),
            (None, None) => (None, String::new()),
        };
        let (residues, reason) = match self.attention_limit() {
            Some((memory_limit, memory_reason)) if limit.is_none_or(|l| memory_limit < l) => {
                (Some(memory_limit), memory_reason)
            }
            _ => (limit, reason),
        };
        Ok(LengthLimit { residues, reason })
    }

    /// Reads the proteins this run embeds: the whole input, or this shard's part of it. A
    /// shard reads the file twice (the lengths of all proteins decide the assignment, then
    /// its own proteins are kept), so that it never holds the residues of the others.
    fn read_input(&self, limit: &LengthLimit) -> Result<Input, EmbedError> {
        let mut input = Input::default();
        let Some(shard) = self.options.shard else {
            input.records = self.scan_input(limit, |protein, too_long| {
                input.take(protein, too_long);
                Ok(())
            })?;
            return Ok(input);
        };
        let mut all: Vec<(String, usize)> = Vec::new();
        input.records = self.scan_input(limit, |protein, _| {
            all.push((protein.key, protein.residues.len()));
            Ok(())
        })?;
        let members = shard::members(&all, shard);
        let changed = || {
            EmbedError::Output {
            path: self.input.clone(),
            message: "the file changed while it was read (a shard reads it twice); embed a copy that stays put".into(),
        }
        };
        let mut position = 0;
        let records = self.scan_input(limit, |protein, too_long| {
            if all.get(position).map(|(key, _)| key) != Some(&protein.key) {
                return Err(changed());
            }
            if members[position] {
                input.take(protein, too_long);
            }
            position += 1;
            Ok(())
        })?;
        if records != input.records {
            return Err(changed());
        }
        Ok(input)
    }

    /// Reads every record of the input, checking ids (present, unique as keys) and lengths
    /// (above the limit: an error, or handed on as too long under `--skip-long`). Returns the
    /// number of records.
    fn scan_input(
        &self,
        limit: &LengthLimit,
        mut take: impl FnMut(Protein, bool) -> Result<(), EmbedError>,
    ) -> Result<usize, EmbedError> {
        let mut first_line: HashMap<String, u64> = HashMap::new();
        let path = &self.input;
        FastaReader::open(path)?.for_each_tokenized(
            self.embedder.tokenizer(),
            |record, residues| -> Result<(), EmbedError> {
                if record.id.is_empty() {
                    return Err(DataError::Fasta {
                        path: path.clone(),
                        line: record.line,
                        message: "a record without an id".into(),
                    }
                    .into());
                }
                let key = protein_key(&record.id);
                if let Some(&first_line) = first_line.get(&key) {
                    return Err(EmbedError::DuplicateId {
                        path: path.clone(),
                        line: record.line,
                        first_line,
                        id: record.id,
                        key,
                    });
                }
                first_line.insert(key.clone(), record.line);
                let too_long = limit.residues.is_some_and(|l| residues.len() > l);
                if too_long && self.options.long_policy == LongPolicy::Error {
                    return Err(EmbedError::TooLong {
                        path: path.clone(),
                        line: record.line,
                        id: record.id,
                        residues: residues.len(),
                        limit: limit.residues.unwrap_or_default(),
                        reason: limit.reason.clone(),
                    });
                }
                take(
                    Protein {
                        key,
                        header: record.header,
                        residues: ResidueIds::new(residues),
                    },
                    too_long,
                )
            },
        )?;
        Ok(first_line.len())
    }

    /// An existing output must have been written with this run's settings, or resuming would
    /// mix kinds of embeddings in one file; one that records none (another tool's, or an
    /// earlier version's) must at least hold arrays of the shape this run writes.
    fn check_existing_output(
        &self,
        file: &mut EmbeddingFile,
        key: Option<&String>,
        run: &RunDescription,
    ) -> Result<(), EmbedError> {
        if let Some(record) = file.run_record()? {
            let recorded: RunDescription = serde_json::from_str(&record).map_err(|e| {
                EmbedError::output(&self.output)(format!("unreadable record of its settings: {e}"))
            })?;
            if &recorded != run {
                return Err(EmbedError::ResumeMismatch {
                    path: self.output.clone(),
                    message: format!(
                        "it was written with other settings ({}); use another output file",
                        recorded.differences(run).join("; ")
                    ),
                });
            }
            return Ok(());
        }
        let Some(key) = key else { return Ok(()) };
        let shape = file.read(key)?.shape().to_vec();
        let d = self.embedder.hidden_size();
        let fits = if self.options.per_protein {
            shape == [d]
        } else {
            shape.len() == 2 && shape[1] == d
        };
        if fits {
            return Ok(());
        }
        Err(EmbedError::ResumeMismatch {
            path: self.output.clone(),
            message: format!(
                "'{key}' there has shape {shape:?}, but this run writes {} of width {d}; use another output file",
                if self.options.per_protein {
                    "per-protein vectors"
                } else {
                    "per-residue arrays"
                }
            ),
        })
    }

    fn weights_fingerprint(&self) -> (u64, u64) {
        let dir = self.embedder.source();
        [
            prottrans_import::SAFETENSORS_FILE,
            prottrans_import::PYTORCH_FILE,
        ]
        .iter()
        .find_map(|name| std::fs::metadata(dir.join(name)).ok())
        .map(|m| {
            let modified = m
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_secs());
            (m.len(), modified)
        })
        .unwrap_or((0, 0))
    }

    /// Writes the output file from the existing output and the parts, sorted by key, through
    /// a temporary file renamed into place. Returns the number of entries.
    fn write_output(
        &self,
        format: OutputFormat,
        record: &OutputRecord,
        mut existing: Option<EmbeddingFile>,
        parts: Option<PartsAndProgress<'_>>,
        expected: &[&str],
    ) -> Result<usize, EmbedError> {
        enum Source {
            Existing,
            Part(Stored),
        }
        let mut sources: BTreeMap<String, Source> = BTreeMap::new();
        if let Some(file) = existing.as_mut() {
            for key in file.keys()? {
                sources.insert(key, Source::Existing);
            }
        }
        let mut parts = parts;
        if let Some((parts, progress)) = parts.as_mut() {
            for (key, stored) in parts.index()? {
                sources.entry(key).or_insert(Source::Part(stored));
            }
            progress(&Progress::Writing {
                entries: sources.len(),
            });
        }
        // The temporary file lives in the work directory when there is one (a sibling of the
        // output, so the rename stays on one filesystem): a run killed while writing leaves it
        // there, and the resumed run's clean-up removes it.
        let work_dir = Parts::dir_for(&self.output);
        let dir = if work_dir.is_dir() {
            work_dir
        } else {
            match self.output.parent() {
                Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
                _ => PathBuf::from("."),
            }
        };
        // Every protein of the input must be there before finished work is let go of.
        if let Some(missing) = expected.iter().find(|key| !sources.contains_key(**key)) {
            return Err(EmbedError::Output {
                path: Parts::dir_for(&self.output),
                message: format!(
                    "protein '{missing}' is neither in the output nor in the finished parts; nothing was removed, rerun with --resume"
                ),
            });
        }
        let record = serde_json::to_string(record)
            .map_err(|e| EmbedError::output(&self.output)(e.to_string()))?;
        write_atomically(&self.output, &dir, format, &record, |writer| {
            for (key, source) in &sources {
                let entry = match source {
                    Source::Existing => existing
                        .as_mut()
                        .expect("existing keys come from the existing file")
                        .read_entry(key)?,
                    Source::Part(stored) => {
                        let (parts, _) = parts.as_mut().expect("part keys come from the parts");
                        let values: ArrayD<f32> = parts.read(key, stored)?;
                        Entry {
                            key: key.clone(),
                            header: stored.header.clone(),
                            length: stored.length,
                            values,
                        }
                    }
                };
                writer.add(&entry)?;
            }
            drop(existing); // closed before the rename replaces it
            Ok(())
        })?;
        Ok(sources.len())
    }

    #[allow(clippy::too_many_arguments)]
    fn summary(
        &self,
        proteins: usize,
        residues: usize,
        batches: usize,
        already_done: usize,
        skipped_long: Vec<String>,
        entries: usize,
        seconds: f64,
        started: Instant,
    ) -> EmbedSummary {
        let rate = |n: usize| {
            if seconds > 0.0 {
                n as f64 / seconds
            } else {
                0.0
            }
        };
        EmbedSummary {
            output: self.output.clone(),
            proteins,
            residues,
            batches,
            already_done,
            skipped_long,
            entries,
            seconds,
            total_seconds: started.elapsed().as_secs_f64(),
            proteins_per_s: rate(proteins),
            residues_per_s: rate(residues),
            peak_rss_bytes: peak_rss_bytes(),
            unknown_residues: 0,
            proteins_with_unknown: Vec::new(),
            renamed_keys: 0,
            renamed_examples: Vec::new(),
            shard: None,
            in_input: 0,
        }
    }
}

/// Total physical memory (Linux `MemTotal`), where it can be read.
fn physical_memory() -> Option<u64> {
    let info = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = info.lines().find(|l| l.starts_with("MemTotal:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

/// Peak resident set size of this process (Linux `VmHWM`).
pub(crate) fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::ResidueIds;

    #[test]
    fn residue_ids_are_held_narrow_when_they_fit_and_read_back_unchanged() {
        let small = vec![0, 5, 25, 255];
        let held = ResidueIds::new(small.clone());
        assert!(matches!(held, ResidueIds::Narrow(_)));
        assert_eq!((held.len(), held.widened().as_ref()), (4, small.as_slice()));
        // A vocabulary past 256 tokens (a user's) keeps four bytes per residue.
        let large = vec![3, 256, 70_000];
        let held = ResidueIds::new(large.clone());
        assert!(matches!(held, ResidueIds::Wide(_)));
        assert_eq!((held.len(), held.widened().as_ref()), (3, large.as_slice()));
    }
}
