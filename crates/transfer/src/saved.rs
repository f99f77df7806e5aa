//! A trained head on disk: `head.json` (what it is, what it reads, how it was trained) and
//! `head.safetensors` (its weights), and running it on features.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use burn::store::{ModuleSnapshot, SafetensorsStore};
use burn::tensor::Device;
use burn::tensor::activation::softmax;
use ndarray::Array2;
use serde::{Deserialize, Serialize};

use crate::batches::{Example, HeadBatcher};
use crate::error::{TransferError, write_atomically};
use crate::features::FeatureSpec;
use crate::heads::{Pooling, ProteinHead, ProteinHeadConfig, ResidueHead, ResidueHeadConfig};
use crate::labels::{LabelSet, Task};

/// File names inside a head directory.
pub const HEAD_JSON: &str = "head.json";
/// Weights file inside a head directory.
pub const HEAD_WEIGHTS: &str = "head.safetensors";

/// Everything needed to rebuild and trust a head; `head.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SavedHead {
    /// Format version of this file.
    pub format: u32,
    /// The task.
    pub task: Task,
    /// The features it was trained on (and must be given again).
    pub features: FeatureSpec,
    /// Input width.
    pub input_size: usize,
    /// Pooling (per-protein heads).
    pub pooling: Pooling,
    /// Whether the per-residue head has a disorder classifier.
    pub disorder: bool,
    /// Hidden width.
    pub hidden_size: usize,
    /// Convolution kernel (per-residue heads).
    pub kernel_size: usize,
    /// Dropout used in training.
    pub dropout: f64,
    /// Names of the label sets, in output order.
    pub label_sets: Vec<String>,
    /// Known training labels per class, per label set (the majority baseline uses them).
    pub training_class_counts: Vec<Vec<u64>>,
    /// Longest protein used in training (proteins above it were left out), if limited.
    pub max_length: Option<usize>,
    /// Epoch whose weights were kept (lowest validation loss).
    pub best_epoch: usize,
    /// Epochs run.
    pub epochs_run: usize,
    /// Training file.
    pub train_file: PathBuf,
    /// Validation file.
    pub valid_file: PathBuf,
}

/// A head with its weights, ready to predict.
#[derive(Debug)]
pub enum Head {
    /// Secondary structure.
    Residue(Box<ResidueHead>),
    /// Localisation and membrane.
    Protein(Box<ProteinHead>),
}

impl SavedHead {
    /// The label sets, in output order.
    pub fn label_sets(&self) -> Vec<LabelSet> {
        self.task.label_sets(self.disorder)
    }

    /// Checks features against what the head was trained on before they reach it: their
    /// width, and for per-residue heads one row per residue (per-protein embeddings would give
    /// one prediction for a whole protein). `embeddings` is the file they came from, if any,
    /// for the message.
    pub fn check_features(
        &self,
        set: &crate::datasets::LabelledSet,
        features: &[Arc<Array2<f32>>],
        embeddings: Option<&std::path::Path>,
    ) -> Result<(), TransferError> {
        let source = embeddings.map_or(String::new(), |p| format!("{}: ", p.display()));
        for (record, f) in set.records.iter().zip(features) {
            if f.ncols() != self.input_size {
                return Err(TransferError::Invalid(format!(
                    "{source}protein '{}': features of width {}, but the head was trained on width {}",
                    record.id,
                    f.ncols(),
                    self.input_size
                )));
            }
            // As the tokenizer counts: whitespace and one final `*` are not residues.
            let residues = record
                .sequence
                .trim_end()
                .trim_end_matches('*')
                .chars()
                .filter(|c| !c.is_whitespace())
                .count();
            if self.task == Task::SecondaryStructure && f.nrows() != residues {
                return Err(TransferError::Invalid(format!(
                    "{source}protein '{}': {} feature rows for {residues} residues; a per-residue head needs per-residue embeddings (not --per-protein ones)",
                    record.id,
                    f.nrows()
                )));
            }
        }
        Ok(())
    }

    /// A freshly initialised head of this shape.
    pub fn init(&self, device: &Device) -> Head {
        match self.task {
            Task::SecondaryStructure => Head::Residue(Box::new(
                ResidueHeadConfig::new(self.input_size)
                    .with_hidden_size(self.hidden_size)
                    .with_kernel_size(self.kernel_size)
                    .with_dropout(self.dropout)
                    .with_disorder(self.disorder)
                    .init(device),
            )),
            Task::Localization => Head::Protein(Box::new(
                ProteinHeadConfig::new(self.input_size)
                    .with_pooling(self.pooling)
                    .with_hidden_size(self.hidden_size)
                    .with_dropout(self.dropout)
                    .init(device),
            )),
        }
    }

    /// Points a head that reads a model's embeddings at another checkpoint directory (the same
    /// model moved); an error for heads on other features.
    pub fn with_model(mut self, dir: &Path) -> Result<Self, TransferError> {
        let FeatureSpec::Model {
            precision, adapter, ..
        } = &self.features
        else {
            return Err(TransferError::Invalid(format!(
                "--model: this head reads {}, not a model's embeddings",
                self.features.describe()
            )));
        };
        let dir = dir.canonicalize().map_err(TransferError::io(dir))?;
        self.features = FeatureSpec::Model {
            dir,
            precision: precision.clone(),
            adapter: adapter.clone(),
        };
        Ok(self)
    }

    /// The head with its model's LoRA adapter replaced (moved files, or another adapter of
    /// the same base).
    pub fn with_adapter(mut self, adapter: &Path) -> Result<Self, TransferError> {
        let FeatureSpec::Model { adapter: slot, .. } = &mut self.features else {
            return Err(TransferError::Invalid(format!(
                "--adapter: this head reads {}, not a model's embeddings",
                self.features.describe()
            )));
        };
        *slot = Some(adapter.canonicalize().map_err(TransferError::io(adapter))?);
        Ok(self)
    }

    /// Reads `dir/head.json`.
    pub fn read(dir: &Path) -> Result<Self, TransferError> {
        let path = dir.join(HEAD_JSON);
        let text = std::fs::read_to_string(&path).map_err(TransferError::io(&path))?;
        let saved: SavedHead = serde_json::from_str(&text).map_err(|e| TransferError::Head {
            path: path.clone(),
            message: format!("not a prottrans head description: {e}"),
        })?;
        if saved.format != 1 {
            return Err(TransferError::Head {
                path,
                message: format!("format {} is not supported (expected 1)", saved.format),
            });
        }
        // Shapes burn would panic on (an edited file): refused here, naming the file.
        crate::heads::check_dropout(saved.dropout).map_err(head_error(&path))?;
        if saved.input_size == 0 || saved.hidden_size == 0 || saved.kernel_size == 0 {
            return Err(head_error(&path)(
                "input_size, hidden_size and kernel_size must be at least 1".into(),
            ));
        }
        Ok(saved)
    }
}

fn head_error(path: &Path) -> impl FnOnce(String) -> TransferError + '_ {
    move |message| TransferError::Head {
        path: path.to_path_buf(),
        message,
    }
}

impl Head {
    /// Loads `dir` (head.json + head.safetensors) onto `device`.
    pub fn load(dir: &Path, device: &Device) -> Result<(SavedHead, Head), TransferError> {
        let saved = SavedHead::read(dir)?;
        let weights = dir.join(HEAD_WEIGHTS);
        if !weights.exists() {
            return Err(TransferError::Head {
                path: weights,
                message: "missing".into(),
            });
        }
        let mut store = SafetensorsStore::from_file(&weights);
        let head = match saved.init(device) {
            Head::Residue(mut h) => {
                h.load_from(&mut store).map_err(|e| {
                    head_error(&weights)(format!("weights do not fit head.json: {e}"))
                })?;
                Head::Residue(h)
            }
            Head::Protein(mut h) => {
                h.load_from(&mut store).map_err(|e| {
                    head_error(&weights)(format!("weights do not fit head.json: {e}"))
                })?;
                Head::Protein(h)
            }
        };
        Ok((saved, head))
    }

    /// Writes `dir/head.json` and `dir/head.safetensors`, each atomically.
    pub fn save(&self, saved: &SavedHead, dir: &Path) -> Result<(), TransferError> {
        std::fs::create_dir_all(dir).map_err(TransferError::io(dir))?;
        let weights = dir.join(HEAD_WEIGHTS);
        let temporary = dir.join(".head-partial.safetensors");
        let mut store = SafetensorsStore::from_file(&temporary).overwrite(true);
        let result = match self {
            Head::Residue(h) => h.save_into(&mut store),
            Head::Protein(h) => h.save_into(&mut store),
        };
        result.map_err(|e| head_error(&weights)(e.to_string()))?;
        std::fs::rename(&temporary, &weights).map_err(TransferError::io(&weights))?;
        let json_path = dir.join(HEAD_JSON);
        let json = serde_json::to_string_pretty(saved)
            .map_err(|e| head_error(&json_path)(e.to_string()))?;
        write_atomically(&json_path, |out| out.write_all(json.as_bytes()))?;
        // burn's store writes the weights owner-only; give them head.json's (umask) mode.
        let mode = std::fs::metadata(&json_path)
            .map_err(TransferError::io(&json_path))?
            .permissions();
        std::fs::set_permissions(&weights, mode).map_err(TransferError::io(&weights))?;
        Ok(())
    }

    /// Class probabilities for each protein and label set: `[L, k]` per residue or `[1, k]`
    /// per protein. Proteins run in padded batches of up to `batch_size`.
    pub fn predict(
        &self,
        features: &[Arc<Array2<f32>>],
        batch_size: usize,
        device: &Device,
    ) -> Result<Vec<Vec<Array2<f32>>>, TransferError> {
        let per_residue = matches!(self, Head::Residue(_));
        let batcher = HeadBatcher { per_residue };
        let mut out = Vec::with_capacity(features.len());
        for chunk in features.chunks(batch_size.max(1)) {
            let examples: Vec<Example> = chunk
                .iter()
                .map(|f| Example {
                    features: f.clone(),
                    labels: Vec::new(),
                })
                .collect();
            let batch = batcher.build(&examples, device);
            let logits: Vec<burn::tensor::Tensor<3>> = match self {
                Head::Residue(h) => h.forward(batch.features, batch.mask),
                Head::Protein(h) => h
                    .forward(batch.features, batch.mask)
                    .into_iter()
                    .map(|t| t.unsqueeze_dim::<3>(1))
                    .collect(),
            };
            let mut per_task = Vec::new();
            for task_logits in logits {
                let [_, rows, k] = task_logits.dims();
                let probabilities = softmax(task_logits, 2)
                    .into_data()
                    .try_into_vec_as::<f32>()
                    .map_err(|e| TransferError::Invalid(format!("reading predictions: {e:?}")))?;
                per_task.push((rows, k, probabilities));
            }
            for (row, example) in examples.iter().enumerate() {
                let n = if per_residue {
                    example.features.nrows()
                } else {
                    1
                };
                let mut tasks = Vec::new();
                for (rows, k, probabilities) in &per_task {
                    let start = row * rows * k;
                    let values = probabilities[start..start + n * k].to_vec();
                    tasks.push(
                        Array2::from_shape_vec((n, *k), values)
                            .map_err(|e| TransferError::Invalid(e.to_string()))?,
                    );
                }
                out.push(tasks);
            }
        }
        Ok(out)
    }
}
