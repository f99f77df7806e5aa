//! Training progress: an indicatif bar on a terminal, plain periodic lines in logs (CI),
//! and every step's and validation's metrics appended to `metrics.jsonl`.

use std::collections::{BTreeMap, HashMap};
use std::fs::File;
use std::io::{IsTerminal, Write};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use burn::train::Interrupter;
use burn::train::logger::{EvaluationProgressLogger, TrainingProgressLogger};
use burn::train::metric::{MetricDefinition, MetricId};
use burn::train::renderer::{
    EvaluationName, MetricState, MetricsRenderer, MetricsRendererEvaluation,
    MetricsRendererTraining,
};
use indicatif::{ProgressBar, ProgressStyle};

/// How often a log line is printed without a terminal.
const LOG_INTERVAL: Duration = Duration::from_secs(10);

/// The first training loss that was not a finite number, and where.
#[derive(Debug, Clone, PartialEq)]
pub struct NonFiniteLoss {
    /// The metric (`Loss`, `Generator Loss`, ...).
    pub metric: String,
    /// Its value: NaN or infinite.
    pub value: f64,
    /// The optimiser step (1-based, over the whole run) whose batch gave it.
    pub step: usize,
}

/// Set by a [`ProgressRenderer`] when it stopped training on a [`NonFiniteLoss`].
#[derive(Debug, Clone, Default)]
pub struct LossWatch(Arc<Mutex<Option<NonFiniteLoss>>>);

impl LossWatch {
    /// The loss that stopped training, if one did.
    pub fn tripped(&self) -> Option<NonFiniteLoss> {
        self.0.lock().map(|slot| slot.clone()).unwrap_or(None)
    }
}

/// A [`MetricsRenderer`] for terminals and logs.
pub struct ProgressRenderer {
    names: HashMap<MetricId, String>,
    latest: BTreeMap<String, f64>,
    valid_sums: BTreeMap<String, (f64, f64)>,
    bar: Option<ProgressBar>,
    jsonl: Option<File>,
    split: String,
    epoch: usize,
    total_epochs: usize,
    steps_per_epoch: usize,
    accumulation: usize,
    items: usize,
    /// The last optimiser step logged: with several devices, every device's batch of a step
    /// reports the same progress.
    last_logged_step: usize,
    split_total: usize,
    last_line: Instant,
    started: Instant,
    /// Stops training at the first non-finite loss, and says so in the watch.
    stop_on_non_finite: Option<(Interrupter, LossWatch)>,
}

impl ProgressRenderer {
    /// Renders to stderr (a bar if it is a terminal) and appends metrics to `jsonl`.
    ///
    /// An epoch is `steps_per_epoch` optimiser steps of `accumulation` batches each.
    pub fn new(jsonl: &Path, steps_per_epoch: usize, accumulation: usize) -> std::io::Result<Self> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(jsonl)?;
        Ok(Self {
            names: HashMap::new(),
            latest: BTreeMap::new(),
            valid_sums: BTreeMap::new(),
            bar: None,
            jsonl: Some(file),
            split: String::new(),
            epoch: 1,
            total_epochs: 1,
            steps_per_epoch,
            accumulation: accumulation.max(1),
            items: 0,
            last_logged_step: 0,
            split_total: 0,
            last_line: Instant::now(),
            started: Instant::now(),
            stop_on_non_finite: None,
        })
    }

    /// Stops training through `interrupter` at the first training loss that is NaN or
    /// infinite, before the epoch's checkpoint is written (so the last checkpoint is the last
    /// good one); the returned watch says which loss and step.
    pub fn stopping_on_non_finite_loss(mut self, interrupter: Interrupter) -> (Self, LossWatch) {
        let watch = LossWatch::default();
        self.stop_on_non_finite = Some((interrupter, watch.clone()));
        (self, watch)
    }

    fn check_loss(&mut self, name: &str, value: f64) {
        if value.is_finite() || !name.ends_with("Loss") {
            return;
        }
        let step = (self.epoch.saturating_sub(1)) * self.steps_per_epoch
            + (self.items + 1).div_ceil(self.accumulation);
        let Some((interrupter, watch)) = &self.stop_on_non_finite else {
            return;
        };
        let Ok(mut slot) = watch.0.lock() else {
            return;
        };
        if slot.is_none() {
            *slot = Some(NonFiniteLoss {
                metric: name.to_string(),
                value,
                step,
            });
            interrupter.stop(Some("a non-finite training loss"));
        }
    }

    fn record(&mut self, state: MetricState) -> Option<(String, f64)> {
        if let MetricState::Numeric(entry, Some(value)) = state {
            let name = self.names.get(&entry.metric_id)?.clone();
            return Some((name, value.current()));
        }
        None
    }

    fn summary(values: &BTreeMap<String, f64>) -> String {
        values
            .iter()
            .map(|(name, value)| match name.as_str() {
                "Learning Rate" => format!("lr {value:.2e}"),
                "Accuracy" => format!("acc {:.1}%", value),
                "Perplexity" => format!("ppl {value:.2}"),
                "Loss" => format!("loss {value:.4}"),
                "Generator Loss" => format!("gen loss {value:.4}"),
                "Generator Accuracy" => format!("gen acc {value:.1}%"),
                "Discriminator Loss" => format!("disc loss {value:.4}"),
                "Discriminator Accuracy" => format!("disc acc {value:.1}%"),
                "Discriminator AUC" => format!("disc AUC {value:.1}%"),
                "Replaced Recall" => format!("caught {value:.1}%"),
                other => format!("{other} {value:.4}"),
            })
            .collect::<Vec<_>>()
            .join("  ")
    }

    fn write_json(&mut self, split: &str, step: usize, values: &BTreeMap<String, f64>) {
        let Some(file) = self.jsonl.as_mut() else {
            return;
        };
        let mut object = serde_json::Map::new();
        object.insert("split".into(), split.into());
        object.insert("epoch".into(), self.epoch.into());
        object.insert("step".into(), step.into());
        for (name, value) in values {
            let key = name.to_lowercase().replace(' ', "_");
            object.insert(key, serde_json::json!(value));
        }
        let line = serde_json::Value::Object(object).to_string();
        if writeln!(file, "{line}").is_err() {
            self.jsonl = None; // a full disk must not stop training; the checkpoints matter more
        }
    }

    /// Optimiser steps so far, over all epochs.
    fn global_step(&self) -> usize {
        (self.epoch.saturating_sub(1)) * self.steps_per_epoch
            + self.items.div_ceil(self.accumulation)
    }
}

impl MetricsRendererTraining for ProgressRenderer {
    fn update_train(&mut self, state: MetricState) {
        if let Some((name, value)) = self.record(state) {
            self.check_loss(&name, value);
            self.latest.insert(name, value);
        }
    }

    fn update_valid(&mut self, state: MetricState) {
        if let Some((name, value)) = self.record(state) {
            let sum = self.valid_sums.entry(name).or_insert((0.0, 0.0));
            sum.0 += value;
            sum.1 += 1.0;
        }
    }
}

impl TrainingProgressLogger for ProgressRenderer {
    fn start(
        &mut self,
        total_epochs: usize,
        starting_epoch: usize,
        _total_items: Option<usize>,
        _label: Option<&str>,
    ) {
        // `starting_epoch` is 1-based: the checkpoint resumed from, plus one.
        self.total_epochs = total_epochs;
        self.epoch = starting_epoch.max(1);
        self.started = Instant::now();
    }

    fn update_epoch(&mut self, epoch: usize) {
        // Called when epoch `epoch` (1-based) has ended, after its validation.
        self.epoch = epoch + 1;
    }

    fn start_split(&mut self, split: &str, total_items: usize) {
        self.split = split.to_lowercase();
        self.items = 0;
        self.split_total = total_items;
        self.valid_sums.clear();
        if std::io::stderr().is_terminal() {
            let bar = ProgressBar::new(total_items as u64);
            bar.set_style(
                ProgressStyle::with_template(
                    "{prefix:>14} [{bar:30}] {pos}/{len} {per_sec} eta {eta}  {msg}",
                )
                .unwrap_or_else(|_| ProgressStyle::default_bar())
                .progress_chars("=> "),
            );
            bar.set_prefix(format!(
                "epoch {}/{} {}",
                self.epoch, self.total_epochs, self.split
            ));
            self.bar = Some(bar);
        }
    }

    fn update_split(&mut self, items_processed: usize) {
        self.items = items_processed;
        let step_done = items_processed.is_multiple_of(self.accumulation)
            || items_processed == self.split_total;
        if self.split.starts_with("train")
            && step_done
            && self.global_step() > self.last_logged_step
        {
            let step = self.global_step();
            self.last_logged_step = step;
            let latest = self.latest.clone();
            self.write_json("train", step, &latest);
        }
        let message = if self.split.starts_with("train") {
            Self::summary(&self.latest)
        } else {
            String::new()
        };
        match &self.bar {
            Some(bar) => {
                bar.set_position(items_processed as u64);
                bar.set_message(message);
            }
            None if self.last_line.elapsed() >= LOG_INTERVAL
                || items_processed == self.split_total =>
            {
                self.last_line = Instant::now();
                eprintln!(
                    "[{:>6.0}s] epoch {}/{} {} {}/{}  {}",
                    self.started.elapsed().as_secs_f64(),
                    self.epoch,
                    self.total_epochs,
                    self.split,
                    items_processed,
                    self.split_total,
                    message
                );
            }
            None => {}
        }
    }

    fn end_split(&mut self) {
        if let Some(bar) = self.bar.take() {
            bar.finish_and_clear();
        }
        if self.split.starts_with("valid") {
            let means: BTreeMap<String, f64> = self
                .valid_sums
                .iter()
                .filter(|(name, _)| name.as_str() != "Learning Rate")
                .map(|(name, (sum, n))| (name.clone(), sum / n.max(1.0)))
                .collect();
            let step = self.epoch * self.steps_per_epoch;
            self.write_json("valid", step, &means);
            eprintln!(
                "[{:>6.0}s] epoch {}/{} validation (mean over batches)  {}",
                self.started.elapsed().as_secs_f64(),
                self.epoch,
                self.total_epochs,
                Self::summary(&means)
            );
        }
    }

    fn end(&mut self) {}

    fn log_event_training(&mut self, _event: String) {}
}

impl EvaluationProgressLogger for ProgressRenderer {
    fn start_global_progress(&mut self, _total_tests: usize) {}
    fn start_test(&mut self, _name: &str, _total_items: usize) {}
    fn update_test_progress(&mut self, _items_processed: usize) {}
    fn end_test(&mut self) {}
    fn end_global_progress(&mut self) {}
    fn log_event_evaluation(&mut self, _event: String) {}
}

impl MetricsRendererEvaluation for ProgressRenderer {
    fn update_test(&mut self, _name: EvaluationName, _state: MetricState) {}
}

impl MetricsRenderer for ProgressRenderer {
    fn manual_close(&mut self) {}

    fn register_metric(&mut self, definition: MetricDefinition) {
        self.names
            .insert(definition.metric_id.clone(), definition.name.to_string());
    }
}

/// Drops the lines of `metrics.jsonl` after `step` (what an interrupted run logged past its
/// last checkpoint, which the resumed run logs again), so each step is there once.
pub fn forget_metrics_after(path: &Path, step: usize) -> std::io::Result<()> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(e) => return Err(e),
    };
    let kept: Vec<&str> = text
        .lines()
        .filter(|line| {
            serde_json::from_str::<serde_json::Value>(line)
                .ok()
                .and_then(|v| v.get("step")?.as_u64())
                .is_some_and(|s| s <= step as u64)
        })
        .collect();
    if kept.len() == text.lines().count() {
        return Ok(());
    }
    let temp = path.with_extension("jsonl.tmp");
    let mut body = kept.join("\n");
    body.push('\n');
    std::fs::write(&temp, body)?;
    std::fs::rename(&temp, path)
}
