//! Shard outputs merged into one file, and any output checked against its input.
//!
//! Both read the FASTA input again (without a model: keys and residue counts) and account for
//! every protein: in exactly one file, in the shard the assignment gives it, with an array of
//! the recorded width (and, per residue, of its length) holding only finite values; or left out
//! on purpose (above the length limit of a `--skip-long` run); or lost. Nothing is held whole
//! in memory: entries stream from the shards to the output one at a time.

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use prottrans_data::FastaReader;
use prottrans_data::tokenizer::residue_count;
use serde::Serialize;

use crate::error::EmbedError;
use crate::job::protein_key;
use crate::output::{EmbeddingFile, OutputFormat, write_atomically};
use crate::parts::OutputRecord;
use crate::shard::{Shard, assign_shards};

/// A protein of the input that no file holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MissingProtein {
    /// Its output key.
    pub key: String,
    /// Its line in the FASTA input.
    pub line: u64,
    /// The shard that should hold it (`I/N`), for sharded outputs.
    pub shard: Option<String>,
}

impl std::fmt::Display for MissingProtein {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} (line {}", self.key, self.line)?;
        if let Some(shard) = &self.shard {
            write!(f, ", shard {shard}")?;
        }
        write!(f, ")")
    }
}

/// What [`verify`] found, or what [`merge`] wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Coverage {
    /// Proteins of the input.
    pub in_input: usize,
    /// Proteins found, each once, with a sound array.
    pub present: usize,
    /// Proteins above the length limit of a `--skip-long` run, absent on purpose.
    pub left_out: Vec<String>,
    /// Proteins absent for no recorded reason.
    pub missing: Vec<MissingProtein>,
    /// Shards of the set that are not among the files (`I/N`).
    pub absent_shards: Vec<String>,
}

impl Coverage {
    /// Every protein is there or was left out on purpose.
    pub fn is_complete(&self) -> bool {
        self.missing.is_empty()
    }
}

/// What [`merge`] may accept.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MergeOptions {
    /// Write the output even when proteins are missing (they are listed in the result, and
    /// `embed --resume` into the merged file adds them later).
    pub allow_partial: bool,
}

/// A protein of the input: key, residues and header line.
struct InputProtein {
    key: String,
    residues: usize,
    line: u64,
}

/// The input's proteins, and for each key its position.
struct InputIndex {
    proteins: Vec<InputProtein>,
    position: HashMap<String, usize>,
}

impl InputIndex {
    fn read(path: &Path) -> Result<Self, EmbedError> {
        let mut proteins = Vec::new();
        let mut position = HashMap::new();
        for record in FastaReader::open(path)? {
            let record = record?;
            let key = protein_key(&record.id);
            if let Some(&first) = position.get(&key) {
                let first: &InputProtein = &proteins[first];
                return Err(EmbedError::DuplicateId {
                    path: path.to_path_buf(),
                    line: record.line,
                    first_line: first.line,
                    id: record.id,
                    key,
                });
            }
            position.insert(key.clone(), proteins.len());
            proteins.push(InputProtein {
                key,
                residues: residue_count(&record.sequence),
                line: record.line,
            });
        }
        Ok(Self { proteins, position })
    }

    /// The shard (0-based) of each protein when the input is split `count` ways.
    fn shards(&self, count: usize) -> Vec<usize> {
        let pairs: Vec<(&str, usize)> = self
            .proteins
            .iter()
            .map(|p| (p.key.as_str(), p.residues))
            .collect();
        assign_shards(&pairs, count)
    }
}

/// An embedding file with the run record it carries.
struct Source {
    path: PathBuf,
    file: EmbeddingFile,
    record: OutputRecord,
    shard: Option<Shard>,
}

impl Source {
    fn open(path: &Path) -> Result<Self, EmbedError> {
        let file = EmbeddingFile::open(path)?;
        let text = file.run_record()?.ok_or_else(|| {
            EmbedError::output(path)(
                "records no run settings (it was not written by prottrans embed), so its model and pooling cannot be checked".into(),
            )
        })?;
        let record: OutputRecord = serde_json::from_str(&text).map_err(|e| {
            EmbedError::output(path)(format!("unreadable record of its settings: {e}"))
        })?;
        let shard = record
            .run
            .shard
            .as_deref()
            .map(str::parse::<Shard>)
            .transpose()
            .map_err(|e| EmbedError::output(path)(format!("its recorded shard: {e}")))?;
        Ok(Self {
            path: path.to_path_buf(),
            file,
            record,
            shard,
        })
    }
}

/// The files' run settings must agree but for the shard; the shards must be of one split,
/// each at most once. Returns the split's count (1 for a single unsharded file).
fn check_sources(sources: &[Source]) -> Result<usize, EmbedError> {
    let Some(first) = sources.first() else {
        return Err(EmbedError::Options("no shard files given".into()));
    };
    let unsharded = |r: &OutputRecord| {
        let mut run = r.run.clone();
        run.shard = None;
        run
    };
    for other in &sources[1..] {
        let (a, b) = (unsharded(&first.record), unsharded(&other.record));
        if a != b {
            return Err(EmbedError::Output {
                path: other.path.clone(),
                message: format!(
                    "made with other settings than {} ({}); shards must come from one model, precision and pooling",
                    first.path.display(),
                    b.differences(&a).join("; ")
                ),
            });
        }
    }
    let count = match first.shard {
        Some(shard) => shard.count,
        None if sources.len() == 1 => return Ok(1),
        None => {
            return Err(EmbedError::Output {
                path: first.path.clone(),
                message: "holds a whole input (no shard is recorded), so it cannot be merged with other files".into(),
            });
        }
    };
    let mut seen: BTreeMap<usize, &Path> = BTreeMap::new();
    for source in sources {
        let shard = source.shard.ok_or_else(|| EmbedError::Output {
            path: source.path.clone(),
            message:
                "holds a whole input (no shard is recorded), so it cannot be merged with shards"
                    .into(),
        })?;
        if shard.count != count {
            return Err(EmbedError::Output {
                path: source.path.clone(),
                message: format!(
                    "is shard {shard}, but {} is of a split into {count}",
                    first.path.display()
                ),
            });
        }
        if let Some(earlier) = seen.insert(shard.index, &source.path) {
            return Err(EmbedError::Output {
                path: source.path.clone(),
                message: format!("is shard {shard}, as is {} already", earlier.display()),
            });
        }
    }
    Ok(count)
}

/// Where each key of the files lies (index into `sources`), checked against the input.
fn locate(
    sources: &mut [Source],
    input: &InputIndex,
    input_path: &Path,
    assignment: Option<&[usize]>,
) -> Result<BTreeMap<String, usize>, EmbedError> {
    let mut located: BTreeMap<String, usize> = BTreeMap::new();
    for i in 0..sources.len() {
        let keys = sources[i].file.keys()?;
        let source = &sources[i];
        for key in keys {
            let Some(&position) = input.position.get(&key) else {
                return Err(EmbedError::Output {
                    path: source.path.clone(),
                    message: format!(
                        "holds '{key}', which is not in {}: it was made from another input",
                        input_path.display()
                    ),
                });
            };
            if let (Some(assignment), Some(shard)) = (assignment, source.shard)
                && assignment[position] + 1 != shard.index
            {
                return Err(EmbedError::Output {
                    path: source.path.clone(),
                    message: format!(
                        "holds '{key}', which {} assigns to shard {}/{} rather than {shard}: the shards were made from another version of the input",
                        input_path.display(),
                        assignment[position] + 1,
                        shard.count
                    ),
                });
            }
            if let Some(earlier) = located.insert(key.clone(), i) {
                let earlier = if earlier == i {
                    "twice".to_string()
                } else {
                    format!("as does {}", sources[earlier].path.display())
                };
                return Err(EmbedError::Output {
                    path: source.path.clone(),
                    message: format!("holds '{key}' {earlier}; a protein must be in one shard"),
                });
            }
        }
    }
    Ok(located)
}

/// What the files lack: proteins left out on purpose, and missing ones.
fn account(
    sources: &[Source],
    input: &InputIndex,
    located: &BTreeMap<String, usize>,
    assignment: Option<&[usize]>,
    count: usize,
) -> Coverage {
    let shard_limit: HashMap<usize, Option<usize>> = sources
        .iter()
        .map(|s| (s.shard.map_or(0, |s| s.index - 1), s.record.left_out_above))
        .collect();
    let mut left_out = Vec::new();
    let mut missing = Vec::new();
    for (position, protein) in input.proteins.iter().enumerate() {
        if located.contains_key(&protein.key) {
            continue;
        }
        let shard = assignment.map_or(0, |a| a[position]);
        match shard_limit.get(&shard) {
            Some(Some(limit)) if protein.residues > *limit => left_out.push(protein.key.clone()),
            _ => missing.push(MissingProtein {
                key: protein.key.clone(),
                line: protein.line,
                shard: assignment.map(|_| format!("{}/{count}", shard + 1)),
            }),
        }
    }
    let absent_shards = match assignment {
        Some(_) => (0..count)
            .filter(|s| !shard_limit.contains_key(s))
            .map(|s| format!("{}/{count}", s + 1))
            .collect(),
        None => Vec::new(),
    };
    Coverage {
        in_input: input.proteins.len(),
        present: located.len(),
        left_out,
        missing,
        absent_shards,
    }
}

/// Checks one entry's array: the recorded width, the protein's length per residue, finite.
fn check_entry(
    source: &Source,
    key: &str,
    values: &ndarray::ArrayD<f32>,
    residues: usize,
) -> Result<(), EmbedError> {
    let run = &source.record.run;
    let d = run.hidden_size;
    let expected: Vec<usize> = if run.per_protein {
        vec![d]
    } else {
        vec![residues, d]
    };
    if values.shape() != expected.as_slice() {
        return Err(EmbedError::Output {
            path: source.path.clone(),
            message: format!(
                "'{key}' has shape {:?}, but the protein has {residues} residues and the run recorded {} of width {d}: expected {expected:?}",
                values.shape(),
                if run.per_protein {
                    "per-protein vectors"
                } else {
                    "per-residue arrays"
                }
            ),
        });
    }
    let bad = values.iter().filter(|v| !v.is_finite()).count();
    if bad > 0 {
        return Err(EmbedError::Output {
            path: source.path.clone(),
            message: format!("'{key}' holds {bad} non-finite value(s) (NaN or inf)"),
        });
    }
    Ok(())
}

/// The files checked against each other and the input.
struct Survey {
    sources: Vec<Source>,
    input: InputIndex,
    /// Each key of the files, with the index of its file in `sources`.
    located: BTreeMap<String, usize>,
    coverage: Coverage,
}

/// Opens the files, checks them against each other and against the input, and finds what
/// they lack.
fn survey(paths: &[PathBuf], input_path: &Path) -> Result<Survey, EmbedError> {
    let mut sources = paths
        .iter()
        .map(|p| Source::open(p))
        .collect::<Result<Vec<_>, _>>()?;
    let count = check_sources(&sources)?;
    let input = InputIndex::read(input_path)?;
    // A lone file of shard I/N is checked as that shard alone.
    let assignment = sources
        .first()
        .and_then(|s| s.shard)
        .map(|_| input.shards(count));
    let located = locate(&mut sources, &input, input_path, assignment.as_deref())?;
    let coverage = account(&sources, &input, &located, assignment.as_deref(), count);
    Ok(Survey {
        sources,
        input,
        located,
        coverage,
    })
}

/// Checks `output` (or one shard of a split) against `input`: every protein in it once, with
/// a sound array, or left out on purpose. Reads every array, one at a time; `progress` is
/// called with (done, total) entries.
pub fn verify(
    output: &Path,
    input: &Path,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Coverage, EmbedError> {
    let Survey {
        mut sources,
        input: index,
        located,
        mut coverage,
    } = survey(&[output.to_path_buf()], input)?;
    let source = &mut sources[0];
    if let Some(shard) = source.shard {
        // One shard checked alone: the other shards' proteins are not its to hold.
        let own = Some(shard.to_string());
        coverage.missing.retain(|m| m.shard == own);
        coverage.in_input = index
            .shards(shard.count)
            .iter()
            .filter(|&&s| s + 1 == shard.index)
            .count();
        coverage.absent_shards.clear();
    }
    for (done, key) in located.keys().enumerate() {
        let values = source.file.read(key)?;
        let residues = index.proteins[index.position[key]].residues;
        check_entry(source, key, &values, residues)?;
        progress(done + 1, located.len());
    }
    Ok(coverage)
}

/// Merges shard outputs into one file at `output` (`.npz` or `.h5`, new), sorted by key,
/// written atomically. Refuses shards of other settings or splits, proteins in two shards or
/// not in `input`, and unsound arrays; refuses missing proteins unless
/// [`MergeOptions::allow_partial`] (then they are listed in the result).
pub fn merge(
    shards: &[PathBuf],
    input: &Path,
    output: &Path,
    options: MergeOptions,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<Coverage, EmbedError> {
    let format = OutputFormat::from_path(output)?;
    if output.exists() {
        return Err(EmbedError::Output {
            path: output.to_path_buf(),
            message: "already exists; merge writes a new file (remove it or choose another name)"
                .into(),
        });
    }
    if let Some(shard) = shards.iter().find(|s| s.as_path() == output) {
        return Err(EmbedError::Options(format!(
            "{} is both a shard and the output",
            shard.display()
        )));
    }
    let Survey {
        mut sources,
        input: index,
        located,
        coverage,
    } = survey(shards, input)?;
    if !coverage.is_complete() && !options.allow_partial {
        return Err(EmbedError::Incomplete {
            input: input.to_path_buf(),
            absent_shards: coverage.absent_shards.clone(),
            missing: coverage.missing.clone(),
        });
    }
    let mut record = sources[0].record.clone();
    record.run.shard = None;
    // Proteins above any shard's limit may be absent: the smallest limit explains them all.
    record.left_out_above = sources.iter().filter_map(|s| s.record.left_out_above).min();
    let record =
        serde_json::to_string(&record).map_err(|e| EmbedError::output(output)(e.to_string()))?;
    let dir = match output.parent() {
        Some(p) if !p.as_os_str().is_empty() => {
            std::fs::create_dir_all(p).map_err(EmbedError::io(p))?;
            p.to_path_buf()
        }
        _ => PathBuf::from("."),
    };
    write_atomically(output, &dir, format, &record, |writer| {
        for (done, (key, &i)) in located.iter().enumerate() {
            let source = &mut sources[i];
            let mut entry = source.file.read_entry(key)?;
            let residues = index.proteins[index.position[key]].residues;
            check_entry(source, key, &entry.values, residues)?;
            // npz shards store no length: the input's.
            entry.length = residues;
            writer.add(&entry)?;
            progress(done + 1, located.len());
        }
        Ok(())
    })?;
    Ok(coverage)
}
