//! Readers for the authors' labelled CSV layouts.
//!
//! - **Per residue** (NetSurfP-2.0 / CB513 as published by the authors): columns
//!   `input, dssp3, dssp8, disorder, cb513_mask`. Each field is either a plain string
//!   (`MKV...`, `HHEC...`) or whitespace-separated tokens (`M K V`, `1.0 0.0`). Empty label
//!   fields mean "not labelled"; `cb513_mask` 0 leaves a residue out of loss and metrics.
//!   Row ids come from an `id` column, else from a sidecar `NAME.ids.txt` (one per row),
//!   else `row-N`.
//! - **Per protein** (DeepLoc-style): columns `id, sequence, location, membrane` (also
//!   accepted: `entry`/`acc`, `seq`/`input`, `loc`/`scl`, `mem`); extra columns are ignored.
//!   Locations take DeepLoc's spellings (`Cell.membrane`); membrane is `membrane`/`soluble`,
//!   `M`/`S`/`U` or `1`/`0`.
//!
//! Labels outside the classes are [`UNKNOWN`]: masked, counted and reported in
//! [`LabelledSet::notes`], never guessed. Malformed rows are errors naming file and line.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::error::TransferError;
use crate::labels::{
    DISORDER, DSSP3, DSSP8, LOCATION, LabelSet, Task, UNKNOWN, location_index, membrane_label,
};

/// One protein with its labels.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Protein id (unique within a set).
    pub id: String,
    /// Residues, upper case, one letter each.
    pub sequence: String,
    /// One vector per label set of the task: per residue (length L) or per protein (length 1).
    pub labels: Vec<Vec<i64>>,
    /// Line of the record in its file (1 is the header).
    pub line: u64,
}

/// The records of one labelled file.
#[derive(Debug, Clone)]
pub struct LabelledSet {
    /// Where it was read from.
    pub path: PathBuf,
    /// Which task its labels belong to.
    pub task: Task,
    /// The label sets, in the order of [`Record::labels`].
    pub label_sets: Vec<LabelSet>,
    /// The proteins.
    pub records: Vec<Record>,
    /// What was masked or dropped while reading, for the user.
    pub notes: Vec<String>,
}

impl LabelledSet {
    /// Reads a labelled CSV of `task`'s layout.
    pub fn read(path: impl AsRef<Path>, task: Task) -> Result<Self, TransferError> {
        let path = path.as_ref();
        match task {
            Task::SecondaryStructure => read_residue_csv(path),
            Task::Localization => read_protein_csv(path),
        }
    }

    /// Whether any record carries a known label of set `index`.
    pub fn has_labels(&self, index: usize) -> bool {
        self.records
            .iter()
            .any(|r| r.labels[index].iter().any(|&l| l != UNKNOWN))
    }

    /// Number of known labels of each class of set `index`.
    pub fn class_counts(&self, index: usize) -> Vec<u64> {
        let mut counts = vec![0u64; self.label_sets[index].len()];
        for record in &self.records {
            for &label in &record.labels[index] {
                if label >= 0 {
                    counts[label as usize] += 1;
                }
            }
        }
        counts
    }

    /// Drops proteins longer than `max_length` residues and returns their ids.
    pub fn drop_longer_than(&mut self, max_length: usize) -> Vec<String> {
        let (kept, dropped): (Vec<_>, Vec<_>) = std::mem::take(&mut self.records)
            .into_iter()
            .partition(|r| r.sequence.len() <= max_length);
        self.records = kept;
        dropped.into_iter().map(|r| r.id).collect()
    }

    /// Keeps a seeded random subset of `n` proteins (in file order); no-op when `n` covers all.
    pub fn subsample(&mut self, n: usize, seed: u64) {
        use rand::SeedableRng;
        use rand::seq::SliceRandom;
        if n >= self.records.len() {
            return;
        }
        let mut order: Vec<usize> = (0..self.records.len()).collect();
        order.shuffle(&mut rand::rngs::StdRng::seed_from_u64(seed));
        let mut keep = vec![false; self.records.len()];
        for &i in &order[..n] {
            keep[i] = true;
        }
        let mut index = 0;
        self.records.retain(|_| {
            index += 1;
            keep[index - 1]
        });
    }

    /// Writes the proteins as FASTA (`>id`, 60 residues a line) for `prottrans embed`, so
    /// that precomputed embeddings carry the ids the labels are looked up by.
    pub fn write_fasta(&self, path: &Path) -> Result<(), TransferError> {
        use std::io::Write;
        let file = std::fs::File::create(path).map_err(TransferError::io(path))?;
        let mut out = std::io::BufWriter::new(file);
        for record in &self.records {
            writeln!(out, ">{}", record.id).map_err(TransferError::io(path))?;
            for line in record.sequence.as_bytes().chunks(60) {
                out.write_all(line)
                    .and_then(|_| out.write_all(b"\n"))
                    .map_err(TransferError::io(path))?;
            }
        }
        out.flush().map_err(TransferError::io(path))
    }

    /// Total residues.
    pub fn residues(&self) -> usize {
        self.records.iter().map(|r| r.sequence.len()).sum()
    }
}

/// Splits a field into tokens: whitespace-separated when it contains whitespace, else one
/// token per character.
fn tokens(field: &str) -> Vec<&str> {
    let field = field.trim();
    if field.contains(char::is_whitespace) {
        field.split_whitespace().collect()
    } else {
        (0..field.len())
            .filter_map(|i| field.get(i..i + 1))
            .collect()
    }
}

fn open_csv(path: &Path) -> Result<(csv::Reader<std::fs::File>, Vec<String>), TransferError> {
    let file = std::fs::File::open(path).map_err(TransferError::io(path))?;
    let mut reader = csv::ReaderBuilder::new().flexible(false).from_reader(file);
    let header = reader
        .headers()
        .map_err(|e| csv_error(path, 1, e.to_string()))?
        .iter()
        .map(|h| h.trim().to_lowercase())
        .collect();
    Ok((reader, header))
}

fn csv_error(path: &Path, line: u64, message: String) -> TransferError {
    TransferError::Csv {
        path: path.to_path_buf(),
        line,
        message,
    }
}

fn column(header: &[String], names: &[&str]) -> Option<usize> {
    header.iter().position(|h| names.contains(&h.as_str()))
}

fn parse_sequence(path: &Path, line: u64, field: &str) -> Result<String, TransferError> {
    let sequence: String = tokens(field).concat().to_uppercase();
    if sequence.is_empty() {
        return Err(csv_error(path, line, "empty sequence".into()));
    }
    if let Some((i, c)) = sequence
        .char_indices()
        .find(|(_, c)| !c.is_ascii_uppercase())
    {
        return Err(csv_error(
            path,
            line,
            format!(
                "sequence has '{c}' at residue {}; only letters are residues",
                i + 1
            ),
        ));
    }
    Ok(sequence)
}

/// Parses one per-residue label field; `class` maps a token to a class index, `None` to
/// unknown, `Err` to a malformed token.
fn parse_residue_labels(
    path: &Path,
    line: u64,
    what: &str,
    field: &str,
    length: usize,
    class: impl Fn(&str) -> Result<Option<usize>, ()>,
) -> Result<Vec<i64>, TransferError> {
    let tokens = tokens(field);
    if tokens.is_empty() {
        return Ok(vec![UNKNOWN; length]);
    }
    if tokens.len() != length {
        return Err(csv_error(
            path,
            line,
            format!(
                "{what} has {} labels for a sequence of {length} residues",
                tokens.len()
            ),
        ));
    }
    tokens
        .iter()
        .enumerate()
        .map(|(i, token)| match class(token) {
            Ok(Some(c)) => Ok(c as i64),
            Ok(None) => Ok(UNKNOWN),
            Err(()) => Err(csv_error(
                path,
                line,
                format!(
                    "{what} label '{token}' at residue {} is not a known state",
                    i + 1
                ),
            )),
        })
        .collect()
}

/// Tokens that mean "no label here" in every per-residue column.
fn is_unknown_token(token: &str) -> bool {
    matches!(token, "X" | "x" | "?" | "-" | "nan" | "NaN")
}

fn state_class(set: LabelSet, token: &str) -> Result<Option<usize>, ()> {
    if is_unknown_token(token) {
        return Ok(None);
    }
    // DSSP 4's polyproline state is coil in the paper's eight classes.
    let token = if set == DSSP8 && token == "P" {
        "C"
    } else {
        token
    };
    set.classes
        .iter()
        .position(|c| *c == token)
        .map(Some)
        .ok_or(())
}

fn binary_class(token: &str) -> Result<Option<usize>, ()> {
    if is_unknown_token(token) {
        return Ok(None);
    }
    match token.parse::<f64>() {
        Ok(0.0) => Ok(Some(0)),
        Ok(1.0) => Ok(Some(1)),
        _ => Err(()),
    }
}

fn read_ids_sidecar(path: &Path) -> Result<Option<Vec<String>>, TransferError> {
    let sidecar = path.with_extension("ids.txt");
    if !sidecar.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&sidecar).map_err(TransferError::io(&sidecar))?;
    Ok(Some(text.lines().map(|l| l.trim().to_string()).collect()))
}

fn read_residue_csv(path: &Path) -> Result<LabelledSet, TransferError> {
    let (mut reader, header) = open_csv(path)?;
    let input = column(&header, &["input", "sequence", "seq"]).ok_or_else(|| {
        csv_error(path, 1, format!("no `input` column in the header {header:?}; expected input,dssp3,dssp8,disorder,cb513_mask"))
    })?;
    let dssp3 = column(&header, &["dssp3"]);
    let dssp8 = column(&header, &["dssp8"]);
    if dssp3.is_none() && dssp8.is_none() {
        return Err(csv_error(
            path,
            1,
            "neither a `dssp3` nor a `dssp8` column".into(),
        ));
    }
    let disorder = column(&header, &["disorder"]);
    let mask = column(&header, &["cb513_mask", "mask"]);
    let id_column = column(&header, &["id", "name"]);
    let sidecar = if id_column.is_none() {
        read_ids_sidecar(path)?
    } else {
        None
    };

    let mut records = Vec::new();
    let mut seen = HashMap::new();
    let mut derived_dssp3 = 0usize;
    for (row, result) in reader.records().enumerate() {
        let line = row as u64 + 2;
        let fields = result.map_err(|e| csv_error(path, line, e.to_string()))?;
        let field = |c: Option<usize>| c.and_then(|c| fields.get(c)).unwrap_or("");
        let sequence = parse_sequence(path, line, field(Some(input)))?;
        let length = sequence.len();
        let id = match (id_column, &sidecar) {
            (Some(c), _) => field(Some(c)).trim().to_string(),
            (None, Some(ids)) => ids.get(row).cloned().ok_or_else(|| {
                csv_error(
                    path,
                    line,
                    format!(
                        "{} lists fewer ids than the CSV has rows",
                        path.with_extension("ids.txt").display()
                    ),
                )
            })?,
            (None, None) => format!("row-{}", row + 1),
        };
        if let Some(first) = seen.insert(id.clone(), line) {
            return Err(csv_error(
                path,
                line,
                format!("id '{id}' already used at line {first}"),
            ));
        }
        let eight = parse_residue_labels(path, line, "dssp8", field(dssp8), length, |t| {
            state_class(DSSP8, t)
        })?;
        let mut three = parse_residue_labels(path, line, "dssp3", field(dssp3), length, |t| {
            state_class(DSSP3, t)
        })?;
        // A set with 8 states only gets the paper's 3-state mapping.
        if field(dssp3).trim().is_empty() && eight.iter().any(|&l| l != UNKNOWN) {
            three = eight
                .iter()
                .map(|&l| match l {
                    UNKNOWN => UNKNOWN,
                    l => {
                        let state =
                            crate::labels::dssp8_to_dssp3(DSSP8.classes[l as usize].as_bytes()[0]);
                        DSSP3
                            .classes
                            .iter()
                            .position(|c| c.as_bytes()[0] == state)
                            .map_or(UNKNOWN, |c| c as i64)
                    }
                })
                .collect();
            derived_dssp3 += 1;
        }
        let diso = parse_residue_labels(
            path,
            line,
            "disorder",
            field(disorder),
            length,
            binary_class,
        )?;
        let evaluated =
            parse_residue_labels(path, line, "cb513_mask", field(mask), length, binary_class)?;
        let mut labels = vec![three, eight, diso];
        for (i, &e) in evaluated.iter().enumerate() {
            if e == 0 {
                for task in &mut labels {
                    task[i] = UNKNOWN;
                }
            }
        }
        records.push(Record {
            id,
            sequence,
            labels,
            line,
        });
    }
    if let Some(ids) = &sidecar
        && ids.iter().filter(|l| !l.is_empty()).count() != records.len()
    {
        return Err(csv_error(
            path,
            1,
            format!(
                "{} lists {} ids for {} rows",
                path.with_extension("ids.txt").display(),
                ids.len(),
                records.len()
            ),
        ));
    }
    let mut set = LabelledSet {
        path: path.to_path_buf(),
        task: Task::SecondaryStructure,
        label_sets: vec![DSSP3, DSSP8, DISORDER],
        records,
        notes: Vec::new(),
    };
    if derived_dssp3 > 0 {
        set.notes.push(format!(
            "dssp3 derived from dssp8 (H,G,I->H; E,B->E; rest->C) for {derived_dssp3} rows"
        ));
    }
    for (index, labels) in set.label_sets.clone().iter().enumerate() {
        if !set.has_labels(index) {
            set.notes.push(format!(
                "no {} labels: that task is masked out",
                labels.name
            ));
        }
    }
    Ok(set)
}

fn read_protein_csv(path: &Path) -> Result<LabelledSet, TransferError> {
    let (mut reader, header) = open_csv(path)?;
    let expected = "expected id,sequence,location,membrane (DeepLoc-style)";
    let id_column = column(&header, &["id", "entry", "acc", "accession", "name"])
        .ok_or_else(|| csv_error(path, 1, format!("no id column in {header:?}; {expected}")))?;
    let sequence_column = column(&header, &["sequence", "seq", "input"]).ok_or_else(|| {
        csv_error(
            path,
            1,
            format!("no sequence column in {header:?}; {expected}"),
        )
    })?;
    let location_column = column(
        &header,
        &["location", "loc", "scl", "localization", "localisation"],
    );
    let membrane_column = column(&header, &["membrane", "mem"]);
    if location_column.is_none() && membrane_column.is_none() {
        return Err(csv_error(
            path,
            1,
            format!("neither a location nor a membrane column; {expected}"),
        ));
    }
    let mut records = Vec::new();
    let mut seen = HashMap::new();
    let mut several_classes: HashMap<String, usize> = HashMap::new();
    for (row, result) in reader.records().enumerate() {
        let line = row as u64 + 2;
        let fields = result.map_err(|e| csv_error(path, line, e.to_string()))?;
        let field = |c: Option<usize>| c.and_then(|c| fields.get(c)).unwrap_or("");
        let id = field(Some(id_column)).trim().to_string();
        if id.is_empty() {
            return Err(csv_error(path, line, "empty id".into()));
        }
        if let Some(first) = seen.insert(id.clone(), line) {
            return Err(csv_error(
                path,
                line,
                format!("id '{id}' already used at line {first}"),
            ));
        }
        let sequence = parse_sequence(path, line, field(Some(sequence_column)))?;
        let location_name = field(location_column).trim();
        // A misspelt class must not quietly take proteins out of training: only an empty
        // cell (or U, unknown, -, as for membranes) means "no label", and a protein of
        // several known classes (`Cytoplasm;Nucleus`) is left out of the one-class task.
        let several = location_name
            .split([';', '|'])
            .map(location_index)
            .collect::<Option<Vec<_>>>()
            .is_some_and(|classes| classes.len() > 1);
        let location = match location_index(location_name) {
            Some(i) => i as i64,
            None if matches!(
                location_name.to_lowercase().as_str(),
                "" | "u" | "unknown" | "-"
            ) =>
            {
                UNKNOWN
            }
            None if several => {
                *several_classes
                    .entry(location_name.to_string())
                    .or_default() += 1;
                UNKNOWN
            }
            None => {
                return Err(csv_error(
                    path,
                    line,
                    format!(
                        "location '{location_name}' is none of the 10 classes ({}); leave the cell empty for a protein without one",
                        LOCATION.classes.join(", ")
                    ),
                ));
            }
        };
        let membrane =
            membrane_label(field(membrane_column)).map_err(|m| csv_error(path, line, m))?;
        records.push(Record {
            id,
            sequence,
            labels: vec![vec![location], vec![membrane]],
            line,
        });
    }
    let mut several_classes: Vec<_> = several_classes.into_iter().collect();
    several_classes.sort();
    let notes = several_classes
        .into_iter()
        .map(|(name, count)| {
            format!("location '{name}' is several classes: masked for {count} proteins")
        })
        .collect();
    Ok(LabelledSet {
        path: path.to_path_buf(),
        task: Task::Localization,
        label_sets: Task::Localization.label_sets(false),
        records,
        notes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn csv_file(text: &str) -> tempfile::NamedTempFile {
        let mut file = tempfile::Builder::new().suffix(".csv").tempfile().unwrap();
        file.write_all(text.as_bytes()).unwrap();
        file
    }

    #[test]
    fn residue_csv_with_tokens_masks_and_empty_columns() {
        let file = csv_file(
            "input,dssp3,dssp8,disorder,cb513_mask\n\
             M K V,H E C,G E T,1.0 0.0 1.0,1.0 1.0 0.0\n\
             ACD,HHX,,,\n",
        );
        let set = LabelledSet::read(file.path(), Task::SecondaryStructure).unwrap();
        assert_eq!(set.records.len(), 2);
        let first = &set.records[0];
        assert_eq!(first.sequence, "MKV");
        assert_eq!(
            first.labels[0],
            vec![0, 1, UNKNOWN],
            "dssp3, last residue masked by cb513_mask"
        );
        assert_eq!(first.labels[1], vec![0, 4, UNKNOWN]);
        assert_eq!(first.labels[2], vec![1, 0, UNKNOWN]);
        let second = &set.records[1];
        assert_eq!(second.labels[0], vec![0, 0, UNKNOWN], "X is unknown");
        assert_eq!(
            second.labels[1],
            vec![UNKNOWN; 3],
            "empty dssp8 is unlabelled"
        );
        assert_eq!(set.class_counts(0), vec![3, 1, 0]);
    }

    #[test]
    fn residue_csv_errors_name_the_line() {
        let file = csv_file("input,dssp3,dssp8,disorder,cb513_mask\nMKV,HEC,,,\nMKV,HE,,,\n");
        let error = LabelledSet::read(file.path(), Task::SecondaryStructure)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains(":3:") && error.contains("2 labels for a sequence of 3"),
            "{error}"
        );
        let file = csv_file("input,dssp3\nMK1,HEC\n");
        let error = LabelledSet::read(file.path(), Task::SecondaryStructure)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains(":2:") && error.contains("'1' at residue 3"),
            "{error}"
        );
        let file = csv_file("input,dssp3\nMKV,HQC\n");
        let error = LabelledSet::read(file.path(), Task::SecondaryStructure)
            .unwrap_err()
            .to_string();
        assert!(error.contains("'Q' at residue 2"), "{error}");
    }

    #[test]
    fn dssp3_is_derived_from_dssp8_when_absent() {
        let file = csv_file("input,dssp8\nMKVL,GBSC\n");
        let set = LabelledSet::read(file.path(), Task::SecondaryStructure).unwrap();
        assert_eq!(set.records[0].labels[0], vec![0, 1, 2, 2]);
        assert!(set.notes.iter().any(|n| n.contains("derived")));
    }

    #[test]
    fn protein_csv_masks_proteins_of_several_locations() {
        let file = csv_file(
            "id,sequence,location,membrane,split\n\
             P1,MKV,Cell.membrane,M,train\n\
             P2,ACDE,Cytoplasm;Nucleus,S,train\n\
             P3,ACDE,Nucleus,,test\n",
        );
        let set = LabelledSet::read(file.path(), Task::Localization).unwrap();
        let labels: Vec<_> = set.records.iter().map(|r| r.labels.clone()).collect();
        assert_eq!(
            labels,
            vec![
                vec![vec![0], vec![1]],
                vec![vec![UNKNOWN], vec![0]],
                vec![vec![6], vec![UNKNOWN]]
            ]
        );
        assert!(
            set.notes[0].contains("Cytoplasm;Nucleus"),
            "{:?}",
            set.notes
        );
        let file = csv_file("id,sequence,location\nP1,MKV,Nucleus\nP1,MKV,Nucleus\n");
        let error = LabelledSet::read(file.path(), Task::Localization)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains(":3:") && error.contains("already used at line 2"),
            "{error}"
        );
        // A misspelt class is an error with its line, not a protein quietly left out.
        let file = csv_file("id,sequence,location\nP1,MKV,Nucleus\nP2,MKV,Nucleas\n");
        let error = LabelledSet::read(file.path(), Task::Localization)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains(":3:") && error.contains("'Nucleas' is none of the 10 classes"),
            "{error}"
        );
    }
}
