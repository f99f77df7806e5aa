//! Scoring a saved head on a labelled test set: every metric with its standard error, the
//! majority-class baseline on the same labels, confusion matrices and (per protein) a t-SNE
//! map of the pooled input features.
//!
//! Standard errors: per-residue accuracies (Q3, Q8) are over all residues of the set, with the
//! standard error of the mean of per-protein accuracies (residues of one chain are not
//! independent); per-protein accuracies (Q10, Q2) use the binomial `sqrt(p (1 - p) / n)`.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use burn::tensor::Device;
use ndarray::Array2;
use serde::{Deserialize, Serialize};

use crate::datasets::LabelledSet;
use crate::error::TransferError;
use crate::labels::{LOCATION, Task};
use crate::metrics::{Confusion, binomial_standard_error, standard_error_of_mean};
use crate::saved::Head;
use crate::train::set_features;

/// One label set's scores.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TaskEvaluation {
    /// Label set name (`dssp3`, `location`, ...).
    pub name: String,
    /// The paper's metric name (`Q3`, `Q10`, ...).
    pub metric: String,
    /// Class names.
    pub classes: Vec<String>,
    /// Labelled residues (per-residue tasks) or proteins scored.
    pub labelled: u64,
    /// Proteins with at least one label.
    pub proteins: usize,
    /// Accuracy (0..1).
    pub accuracy: f64,
    /// Its standard error.
    pub standard_error: f64,
    /// Gorodkin / Matthews correlation.
    pub mcc: f64,
    /// Recall per class (`null` where the class has no examples).
    pub recall: Vec<Option<f64>>,
    /// Examples per class.
    pub support: Vec<u64>,
    /// `[true][predicted]` counts.
    pub confusion: Confusion,
    /// The most frequent training class.
    pub majority_class: String,
    /// Accuracy of always predicting it on these labels.
    pub majority_accuracy: f64,
    /// Its standard error.
    pub majority_standard_error: f64,
}

/// A whole evaluation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct EvaluationReport {
    /// The head directory.
    pub head: PathBuf,
    /// The test file.
    pub test: PathBuf,
    /// The features the head read.
    pub features: String,
    /// Proteins scored.
    pub proteins: usize,
    /// Proteins left out for being longer than the head's `max_length`.
    pub left_out_long: usize,
    /// One entry per label set with labels in the test set.
    pub tasks: Vec<TaskEvaluation>,
}

impl std::fmt::Display for EvaluationReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "{} on {} ({} proteins; {})",
            self.head.display(),
            self.test.display(),
            self.proteins,
            self.features
        )?;
        if self.left_out_long > 0 {
            writeln!(
                f,
                "  {} proteins longer than the head's max_length were left out",
                self.left_out_long
            )?;
        }
        for t in &self.tasks {
            writeln!(
                f,
                "  {:<12} {:>6.2}% ± {:.2}  MCC {:.3}  ({} labelled, {} proteins; majority '{}' {:.2}% ± {:.2})",
                t.metric,
                100.0 * t.accuracy,
                100.0 * t.standard_error,
                t.mcc,
                t.labelled,
                t.proteins,
                t.majority_class,
                100.0 * t.majority_accuracy,
                100.0 * t.majority_standard_error
            )?;
            let recalls: Vec<String> = t
                .classes
                .iter()
                .zip(&t.recall)
                .map(|(c, r)| match r {
                    Some(r) => format!("{c} {:.1}", 100.0 * r),
                    None => format!("{c} -"),
                })
                .collect();
            writeln!(f, "  {:<12} recall: {}", "", recalls.join(", "))?;
        }
        Ok(())
    }
}

/// What to evaluate.
#[derive(Debug, Clone)]
pub struct Evaluation {
    /// The head directory (from `prottrans train-head`).
    pub head: PathBuf,
    /// Labelled test proteins.
    pub test: LabelledSet,
    /// Precomputed embeddings of the test proteins, for heads trained on such files.
    pub embeddings: Option<PathBuf>,
    /// Another directory for the checkpoint recorded in `head.json` (a moved model).
    pub model: Option<PathBuf>,
    /// A LoRA adapter (PEFT layout) in place of the one recorded in `head.json`, if any.
    pub adapter: Option<PathBuf>,
    /// Where to write `report.json`, confusion matrices and the t-SNE map (PNG + SVG).
    pub out: Option<PathBuf>,
    /// Draw the t-SNE map of pooled features (per-protein tasks).
    pub tsne: bool,
    /// Where to run.
    pub device: Device,
}

/// Scores a head; see [`Evaluation`].
pub fn evaluate(mut run: Evaluation) -> Result<EvaluationReport, TransferError> {
    let (mut saved, head) = Head::load(&run.head, &run.device)?;
    if let Some(model) = &run.model {
        saved = saved.with_model(model)?;
    }
    if let Some(adapter) = &run.adapter {
        saved = saved.with_adapter(adapter)?;
    }
    if run.test.task != saved.task {
        return Err(TransferError::Invalid(format!(
            "the head predicts {}, the test set is labelled for {}",
            saved.task, run.test.task
        )));
    }
    let left_out_long = saved
        .max_length
        .map_or(0, |m| run.test.drop_longer_than(m).len());
    let features = set_features(
        &run.test,
        &saved.features,
        run.embeddings.as_deref(),
        &run.device,
    )?;
    saved.check_features(&run.test, &features, run.embeddings.as_deref())?;
    let probabilities = head.predict(&features, 16, &run.device)?;
    let mut tasks = Vec::new();
    for (index, set) in saved.label_sets().iter().enumerate() {
        if !run.test.has_labels(index) {
            continue;
        }
        let mut confusion = Confusion::new(set.len());
        let mut per_protein = Vec::new();
        let counts = &saved.training_class_counts[index];
        let majority = (0..set.len())
            .max_by_key(|&c| counts.get(c).copied().unwrap_or(0))
            .unwrap_or(0);
        let mut majority_per_protein = Vec::new();
        let mut majority_correct = 0u64;
        for (record, predicted) in run.test.records.iter().zip(&probabilities) {
            let mut protein = Confusion::new(set.len());
            for (&truth, row) in record.labels[index].iter().zip(predicted[index].rows()) {
                let argmax = row
                    .iter()
                    .enumerate()
                    .max_by(|a, b| a.1.total_cmp(b.1))
                    .map_or(0, |(i, _)| i);
                protein.add(truth, argmax as i64);
            }
            if protein.total() > 0 {
                let majority_hits = protein.support()[majority];
                majority_correct += majority_hits;
                majority_per_protein.push(majority_hits as f64 / protein.total() as f64);
                per_protein.push(protein.accuracy());
                confusion.merge(&protein);
            }
        }
        let labelled = confusion.total();
        let majority_accuracy = majority_correct as f64 / labelled.max(1) as f64;
        let (standard_error, majority_standard_error) = match saved.task {
            Task::SecondaryStructure => (
                standard_error_of_mean(&per_protein),
                standard_error_of_mean(&majority_per_protein),
            ),
            Task::Localization => (
                binomial_standard_error(confusion.accuracy(), labelled),
                binomial_standard_error(majority_accuracy, labelled),
            ),
        };
        tasks.push(TaskEvaluation {
            name: set.name.to_string(),
            metric: set.metric.to_string(),
            classes: set.classes.iter().map(|c| c.to_string()).collect(),
            labelled,
            proteins: per_protein.len(),
            accuracy: confusion.accuracy(),
            standard_error,
            mcc: confusion.mcc(),
            recall: confusion.recall(),
            support: confusion.support(),
            confusion: confusion.clone(),
            majority_class: set.classes[majority].to_string(),
            majority_accuracy,
            majority_standard_error,
        });
    }
    let report = EvaluationReport {
        head: run.head.clone(),
        test: run.test.path.clone(),
        features: saved.features.describe(),
        proteins: run.test.records.len(),
        left_out_long,
        tasks,
    };
    if let Some(out) = &run.out {
        write_outputs(
            out,
            &report,
            &run,
            &features,
            (run.tsne && saved.task == Task::Localization)
                .then(|| saved.features.short_description()),
        )?;
    }
    Ok(report)
}

fn write_outputs(
    out: &Path,
    report: &EvaluationReport,
    run: &Evaluation,
    features: &[Arc<Array2<f32>>],
    tsne_features: Option<String>,
) -> Result<(), TransferError> {
    std::fs::create_dir_all(out).map_err(TransferError::io(out))?;
    let path = out.join("report.json");
    let json =
        serde_json::to_string_pretty(report).map_err(|e| TransferError::Invalid(e.to_string()))?;
    std::fs::write(&path, json).map_err(TransferError::io(&path))?;
    for task in &report.tasks {
        crate::plots::confusion_matrix(
            &task.confusion,
            &task.classes,
            &format!(
                "{} {} confusion ({:.1}%)",
                task.metric,
                task.name,
                100.0 * task.accuracy
            ),
            &out.join(format!("confusion-{}", task.name)),
        )?;
    }
    if let Some(described) = tsne_features {
        let pooled: Vec<Vec<f32>> = features
            .iter()
            .map(|f| {
                f.mean_axis(ndarray::Axis(0))
                    .map(|m| m.to_vec())
                    .unwrap_or_default()
            })
            .collect();
        let labels: Vec<i64> = run.test.records.iter().map(|r| r.labels[0][0]).collect();
        crate::plots::tsne_map(
            &pooled,
            &labels,
            LOCATION.classes,
            &format!("t-SNE of mean-pooled features: {described}"),
            &out.join("tsne"),
        )?;
    }
    Ok(())
}
