//! Confusion matrices and the paper's metrics, for burn-train (live, per task) and for
//! evaluation reports (with standard errors).
//!
//! Q3, Q8, Q10 and Q2 are accuracies over every labelled residue or protein of a set. MCC is
//! Gorodkin's multi-class correlation coefficient, which is Matthews' for two classes.

use burn::tensor::{ExecutionError, Int, Tensor, TensorReadError};
use burn::train::ItemLazy;
use burn::train::metric::{
    Adaptor, LossInput, Metric, MetricAttributes, MetricMetadata, MetricName, Numeric,
    NumericAttributes, NumericEntry, SerializedEntry,
};
use serde::{Deserialize, Serialize};

/// Counts of (true class, predicted class) pairs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Confusion {
    /// Number of classes.
    pub classes: usize,
    /// Row-major `[true][predicted]` counts.
    pub counts: Vec<u64>,
}

impl Confusion {
    /// An empty matrix.
    pub fn new(classes: usize) -> Self {
        Self {
            classes,
            counts: vec![0; classes * classes],
        }
    }

    /// Adds one labelled prediction; unknown truths (negative) are skipped.
    pub fn add(&mut self, truth: i64, predicted: i64) {
        if truth >= 0
            && (truth as usize) < self.classes
            && predicted >= 0
            && (predicted as usize) < self.classes
        {
            self.counts[truth as usize * self.classes + predicted as usize] += 1;
        }
    }

    /// Adds another matrix of the same size.
    pub fn merge(&mut self, other: &Confusion) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
    }

    /// Count of true class `t` predicted as `p`.
    pub fn get(&self, t: usize, p: usize) -> u64 {
        self.counts[t * self.classes + p]
    }

    /// Labelled predictions.
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// Correct predictions.
    pub fn correct(&self) -> u64 {
        (0..self.classes).map(|c| self.get(c, c)).sum()
    }

    /// Fraction correct (0 when empty).
    pub fn accuracy(&self) -> f64 {
        self.correct() as f64 / self.total().max(1) as f64
    }

    /// Labelled examples of each true class.
    pub fn support(&self) -> Vec<u64> {
        (0..self.classes)
            .map(|t| (0..self.classes).map(|p| self.get(t, p)).sum())
            .collect()
    }

    /// Recall of each class (`None` for classes with no examples).
    pub fn recall(&self) -> Vec<Option<f64>> {
        self.support()
            .iter()
            .enumerate()
            .map(|(c, &n)| (n > 0).then(|| self.get(c, c) as f64 / n as f64))
            .collect()
    }

    /// Gorodkin's multi-class MCC (Matthews' coefficient for two classes); 0 when undefined.
    pub fn mcc(&self) -> f64 {
        let s = self.total() as f64;
        let c = self.correct() as f64;
        let truth: Vec<f64> = self.support().into_iter().map(|n| n as f64).collect();
        let predicted: Vec<f64> = (0..self.classes)
            .map(|p| (0..self.classes).map(|t| self.get(t, p)).sum::<u64>() as f64)
            .collect();
        let tp: f64 = truth.iter().zip(&predicted).map(|(t, p)| t * p).sum();
        let denominator = ((s * s - predicted.iter().map(|p| p * p).sum::<f64>())
            * (s * s - truth.iter().map(|t| t * t).sum::<f64>()))
        .sqrt();
        if denominator > 0.0 {
            (c * s - tp) / denominator
        } else {
            0.0
        }
    }
}

/// One task's logits and labels in a batch, flattened.
#[derive(Debug, Clone)]
pub struct TaskOutput {
    /// `[N, classes]`.
    pub logits: Tensor<2>,
    /// `[N]`; negative for unknown labels and padding.
    pub targets: Tensor<1, Int>,
}

impl TaskOutput {
    /// Argmax predictions and labels, read back to the host.
    pub fn to_host(&self) -> Result<(Vec<i64>, Vec<i64>), TensorReadError> {
        let predicted = self
            .logits
            .clone()
            .argmax(1)
            .into_data()
            .try_into_vec_as::<i64>()?;
        let targets = self.targets.clone().into_data().try_into_vec_as::<i64>()?;
        Ok((predicted, targets))
    }

    /// The confusion matrix of this batch.
    pub fn confusion(&self) -> Result<Confusion, TensorReadError> {
        let [_, classes] = self.logits.dims();
        let (predicted, targets) = self.to_host()?;
        let mut confusion = Confusion::new(classes);
        for (t, p) in targets.into_iter().zip(predicted) {
            confusion.add(t, p);
        }
        Ok(confusion)
    }
}

/// What a head's training and validation steps give burn-train.
#[derive(Debug, Clone)]
pub struct HeadOutput {
    /// The weighted multi-task loss, `[1]`.
    pub loss: Tensor<1>,
    /// One entry per label set of the task.
    pub tasks: Vec<TaskOutput>,
}

impl ItemLazy for HeadOutput {
    fn sync(self) -> Result<Self, ExecutionError> {
        self.loss.device().flush()?;
        Ok(HeadOutput {
            loss: self.loss.without_autodiff(),
            tasks: self
                .tasks
                .into_iter()
                .map(|t| TaskOutput {
                    logits: t.logits.without_autodiff(),
                    targets: t.targets.without_autodiff(),
                })
                .collect(),
        })
    }
}

impl Adaptor<LossInput> for HeadOutput {
    fn adapt(&self) -> LossInput {
        LossInput::new(self.loss.clone())
    }
}

/// Input of [`TaskMetric`]: every task's outputs of a batch.
#[derive(Debug, Clone)]
pub struct TaskMetricInput {
    tasks: Vec<TaskOutput>,
}

impl Adaptor<TaskMetricInput> for HeadOutput {
    fn adapt(&self) -> TaskMetricInput {
        TaskMetricInput {
            tasks: self.tasks.clone(),
        }
    }
}

/// What a [`TaskMetric`] reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TaskMetricKind {
    /// Accuracy in percent (Q3, Q8, Q10, Q2).
    Accuracy,
    /// Gorodkin / Matthews correlation.
    Mcc,
    /// Recall of one class, in percent.
    Recall(usize),
}

/// A burn-train metric over one task of a multi-task head: accuracy, MCC or one class's
/// recall, computed from confusion counts so that unknown labels never count.
#[derive(Debug, Clone)]
pub struct TaskMetric {
    name: MetricName,
    task: usize,
    kind: TaskMetricKind,
    batch: Option<Confusion>,
    epoch: Option<Confusion>,
}

impl TaskMetric {
    /// The metric `kind` of task `task` (index into the head's outputs), shown as `name`.
    pub fn new(name: impl Into<String>, task: usize, kind: TaskMetricKind) -> Self {
        Self {
            name: MetricName::new(name.into()),
            task,
            kind,
            batch: None,
            epoch: None,
        }
    }

    fn value_of(&self, confusion: &Confusion) -> f64 {
        match self.kind {
            TaskMetricKind::Accuracy => 100.0 * confusion.accuracy(),
            TaskMetricKind::Mcc => confusion.mcc(),
            TaskMetricKind::Recall(c) => {
                100.0 * confusion.recall().get(c).copied().flatten().unwrap_or(0.0)
            }
        }
    }

    fn entry(&self, final_entry: bool) -> SerializedEntry {
        let epoch = self.epoch.as_ref().map_or(0.0, |c| self.value_of(c));
        let batch = self.batch.as_ref().map_or(0.0, |c| self.value_of(c));
        let serialized = if final_entry {
            NumericEntry::Final(epoch).serialize()
        } else {
            NumericEntry::Aggregated {
                aggregated_value: batch,
                count: self.batch.as_ref().map_or(0, |c| c.total() as usize),
            }
            .serialize()
        };
        SerializedEntry::new(format!("epoch {epoch:.3} - batch {batch:.3}"), serialized)
    }
}

impl Metric for TaskMetric {
    type Input = TaskMetricInput;

    fn name(&self) -> MetricName {
        self.name.clone()
    }

    fn attributes(&self) -> MetricAttributes {
        NumericAttributes {
            unit: (self.kind != TaskMetricKind::Mcc).then(|| "%".to_string()),
            higher_is_better: true,
        }
        .into()
    }

    fn update(
        &mut self,
        input: &TaskMetricInput,
        _: &MetricMetadata,
    ) -> Result<SerializedEntry, TensorReadError> {
        let Some(task) = input.tasks.get(self.task) else {
            return Ok(self.entry(false));
        };
        let batch = task.confusion()?;
        self.epoch
            .get_or_insert_with(|| Confusion::new(batch.classes))
            .merge(&batch);
        self.batch = Some(batch);
        Ok(self.entry(false))
    }

    fn compute(&mut self) -> Result<SerializedEntry, TensorReadError> {
        Ok(self.entry(true))
    }

    fn clear(&mut self) {
        self.batch = None;
        self.epoch = None;
    }
}

impl Numeric for TaskMetric {
    /// The batch's value; `None` when the batch has nothing to score (no known label, or no
    /// example of the class for recall), so that batch means are not dragged towards zero.
    fn value(&self) -> Option<NumericEntry> {
        let batch = self.batch.as_ref()?;
        let count = match self.kind {
            TaskMetricKind::Recall(c) => batch.support().get(c).copied().unwrap_or(0),
            _ => batch.total(),
        };
        (count > 0).then(|| NumericEntry::Aggregated {
            aggregated_value: self.value_of(batch),
            count: count as usize,
        })
    }

    fn running_value(&self) -> Option<NumericEntry> {
        let epoch = self.epoch.as_ref()?;
        Some(NumericEntry::Aggregated {
            aggregated_value: self.value_of(epoch),
            count: epoch.total() as usize,
        })
    }

    fn final_value(&self) -> NumericEntry {
        NumericEntry::Final(self.epoch.as_ref().map_or(0.0, |c| self.value_of(c)))
    }
}

/// Standard error of an accuracy over `n` independent examples: `sqrt(p (1 - p) / n)`.
pub fn binomial_standard_error(accuracy: f64, n: u64) -> f64 {
    if n == 0 {
        0.0
    } else {
        (accuracy * (1.0 - accuracy) / n as f64).sqrt()
    }
}

/// Standard error of a mean over proteins: sample standard deviation / sqrt(n).
pub fn standard_error_of_mean(values: &[f64]) -> f64 {
    let n = values.len();
    if n < 2 {
        return 0.0;
    }
    let mean = values.iter().sum::<f64>() / n as f64;
    let variance = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    (variance / n as f64).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accuracy_recall_and_mcc() {
        let mut c = Confusion::new(2);
        // 3 true positives, 1 false negative, 1 false positive, 5 true negatives.
        for (t, p) in [
            (1, 1),
            (1, 1),
            (1, 1),
            (1, 0),
            (0, 1),
            (0, 0),
            (0, 0),
            (0, 0),
            (0, 0),
            (0, 0),
            (-1, 0),
        ] {
            c.add(t, p);
        }
        assert_eq!(c.total(), 10, "unknown labels are not counted");
        assert!((c.accuracy() - 0.8).abs() < 1e-12);
        assert_eq!(c.recall(), vec![Some(5.0 / 6.0), Some(0.75)]);
        // Matthews: (TP TN - FP FN) / sqrt((TP+FP)(TP+FN)(TN+FP)(TN+FN)) = (15 - 1) / sqrt(4*4*6*6)
        assert!((c.mcc() - 14.0 / 24.0).abs() < 1e-12, "{}", c.mcc());
        let mut perfect = Confusion::new(3);
        for k in 0..3 {
            perfect.add(k, k);
        }
        assert!((perfect.mcc() - 1.0).abs() < 1e-12);
        let mut constant = Confusion::new(3);
        for k in 0..3 {
            constant.add(k, 0);
        }
        assert_eq!(
            constant.mcc(),
            0.0,
            "a constant predictor has no correlation"
        );
    }

    #[test]
    fn standard_errors() {
        assert!((binomial_standard_error(0.5, 100) - 0.05).abs() < 1e-12);
        assert!(
            (standard_error_of_mean(&[1.0, 2.0, 3.0, 4.0]) - (1.666_666_666_7f64 / 4.0).sqrt())
                .abs()
                < 1e-9
        );
    }
}
