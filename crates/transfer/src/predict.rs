//! Predictions for new proteins with a saved head, written as TSV (one line per protein) and
//! JSON (with every class probability).

use std::path::{Path, PathBuf};

use burn::tensor::Device;
use prottrans_data::FastaReader;
use serde::Serialize;

use crate::error::{TransferError, write_atomically};
use crate::labels::Task;
use crate::saved::{Head, SavedHead};
use crate::train::set_features;

/// One label set's prediction for a protein.
#[derive(Debug, Clone, Serialize)]
pub struct TaskPrediction {
    /// Label set (`dssp3`, `location`, ...).
    pub name: String,
    /// Class names, in probability order.
    pub classes: Vec<String>,
    /// Per residue: one class letter per residue (`HHEC...`); per protein: the class name.
    pub prediction: String,
    /// Probability of the predicted class (per residue: the mean over residues).
    pub confidence: f32,
    /// Class probabilities: one row per residue, or one row.
    pub probabilities: Vec<Vec<f32>>,
}

/// Everything predicted for one protein.
#[derive(Debug, Clone, Serialize)]
pub struct Prediction {
    /// Its id.
    pub id: String,
    /// Residues.
    pub length: usize,
    /// One entry per label set of the head.
    pub outputs: Vec<TaskPrediction>,
}

/// Reads a FASTA file's proteins as `(id, sequence)`, upper-cased; errors name file and line.
pub fn read_fasta(path: &Path) -> Result<Vec<(String, String)>, TransferError> {
    let mut proteins = Vec::new();
    let mut seen = std::collections::HashMap::new();
    for record in FastaReader::open(path).map_err(|e| TransferError::Invalid(e.to_string()))? {
        let record = record.map_err(|e| TransferError::Invalid(e.to_string()))?;
        let sequence = String::from_utf8_lossy(&record.sequence).to_uppercase();
        if sequence.is_empty() {
            return Err(TransferError::Invalid(format!(
                "{}:{}: record '{}' has no residues",
                path.display(),
                record.line,
                record.id
            )));
        }
        if let Some(position) = sequence.bytes().position(|b| !b.is_ascii_uppercase()) {
            return Err(TransferError::Invalid(format!(
                "{}:{}: record '{}' has '{}' at residue {}; only letters are residues",
                path.display(),
                record.line_of(position + 1),
                record.id,
                sequence.as_bytes()[position] as char,
                position + 1
            )));
        }
        if let Some(first) = seen.insert(record.id.clone(), record.line) {
            return Err(TransferError::Invalid(format!(
                "{}:{}: id '{}' already used at line {first}",
                path.display(),
                record.line,
                record.id
            )));
        }
        proteins.push((record.id, sequence));
    }
    Ok(proteins)
}

/// Predicts `proteins` with the head in `head_dir`. `embeddings` are the proteins'
/// precomputed embeddings, for heads trained on such files; `model` replaces the checkpoint
/// directory recorded in `head.json` (a moved model).
pub fn predict(
    head_dir: &Path,
    proteins: &[(String, String)],
    embeddings: Option<&Path>,
    model: Option<&Path>,
    adapter: Option<&Path>,
    device: &Device,
) -> Result<(SavedHead, Vec<Prediction>), TransferError> {
    let (mut saved, head) = Head::load(head_dir, device)?;
    if let Some(model) = model {
        saved = saved.with_model(model)?;
    }
    if let Some(adapter) = adapter {
        saved = saved.with_adapter(adapter)?;
    }
    let set = crate::datasets::LabelledSet {
        path: PathBuf::from("input"),
        task: saved.task,
        label_sets: saved.label_sets(),
        records: proteins
            .iter()
            .map(|(id, sequence)| crate::datasets::Record {
                id: id.clone(),
                sequence: sequence.clone(),
                labels: Vec::new(),
                line: 0,
            })
            .collect(),
        notes: Vec::new(),
    };
    let features = set_features(&set, &saved.features, embeddings, device)?;
    saved.check_features(&set, &features, embeddings)?;
    let probabilities = head.predict(&features, 16, device)?;
    let label_sets = saved.label_sets();
    let predictions = proteins
        .iter()
        .zip(probabilities)
        .map(|((id, sequence), tasks)| Prediction {
            id: id.clone(),
            length: sequence.len(),
            outputs: label_sets
                .iter()
                .zip(tasks)
                .map(|(set, p)| {
                    let argmax: Vec<(usize, f32)> = p
                        .rows()
                        .into_iter()
                        .map(|row| {
                            row.iter()
                                .copied()
                                .enumerate()
                                .max_by(|a, b| a.1.total_cmp(&b.1))
                                .unwrap_or((0, 0.0))
                        })
                        .collect();
                    let prediction = match saved.task {
                        Task::SecondaryStructure => argmax
                            .iter()
                            .map(|(c, _)| set.classes[*c])
                            .collect::<String>(),
                        Task::Localization => set.classes[argmax[0].0].to_string(),
                    };
                    TaskPrediction {
                        name: set.name.to_string(),
                        classes: set.classes.iter().map(|c| c.to_string()).collect(),
                        prediction,
                        confidence: argmax.iter().map(|(_, p)| p).sum::<f32>()
                            / argmax.len().max(1) as f32,
                        probabilities: p.rows().into_iter().map(|r| r.to_vec()).collect(),
                    }
                })
                .collect(),
        })
        .collect();
    Ok((saved, predictions))
}

/// Writes one line per protein: id, length, then for each label set the prediction and its
/// confidence (per residue: the mean probability of the predicted states).
pub fn write_tsv(path: &Path, predictions: &[Prediction]) -> Result<(), TransferError> {
    write_atomically(path, |out| {
        let names: Vec<&str> = predictions.first().map_or(Vec::new(), |p| {
            p.outputs.iter().map(|o| o.name.as_str()).collect()
        });
        let mut header = vec!["id".to_string(), "length".to_string()];
        for name in &names {
            header.push(name.to_string());
            header.push(format!("{name}_confidence"));
        }
        writeln!(out, "{}", header.join("\t"))?;
        for p in predictions {
            let mut fields = vec![p.id.clone(), p.length.to_string()];
            for o in &p.outputs {
                fields.push(o.prediction.clone());
                fields.push(format!("{:.4}", o.confidence));
            }
            writeln!(out, "{}", fields.join("\t"))?;
        }
        Ok(())
    })
}

/// Writes every prediction with all class probabilities as a JSON array.
pub fn write_json(path: &Path, predictions: &[Prediction]) -> Result<(), TransferError> {
    write_atomically(path, |out| {
        serde_json::to_writer(out, predictions).map_err(std::io::Error::other)
    })
}
