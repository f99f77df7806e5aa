//! What a checkpoint directory holds, read without loading the model: the first thing to look
//! at on a download.

use std::collections::BTreeMap;
use std::path::PathBuf;

use burn::store::{ModuleStore, PytorchStore, SafetensorsStore};
use serde::Serialize;

use crate::error::ImportError;
use crate::hf::{Checkpoint, WeightsFormat, pytorch_store};
use crate::tokenizer::{checkpoint_tokenizer, vocabulary_origin};

/// One tensor of the weights file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TensorInfo {
    /// Name as stored.
    pub name: String,
    /// Shape.
    pub shape: Vec<usize>,
    /// Element type, e.g. `f32`.
    pub dtype: String,
}

/// A checkpoint's vocabulary, as prottrans reads it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct VocabularySummary {
    /// Where it comes from: a file of the checkpoint, or built in.
    pub origin: String,
    /// Number of tokens.
    pub tokens: usize,
    /// The residue letters it has, in id order.
    pub residues: String,
    /// Standard amino acids and X that it lacks (read as its unknown token).
    pub missing: String,
    /// Its unknown and mask tokens, by name.
    pub unknown_token: Option<String>,
    /// The mask token.
    pub mask_token: Option<String>,
}

/// What [`Checkpoint::summary`] finds.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct CheckpointSummary {
    /// The directory.
    pub dir: PathBuf,
    /// The weights file.
    pub weights: PathBuf,
    /// Its size in bytes.
    pub weights_bytes: u64,
    /// prottrans's name for the architecture.
    pub architecture: String,
    /// The Hugging Face `model_type`.
    pub model_type: String,
    /// The classes `config.json` names (`architectures`), if any.
    pub classes: Vec<String>,
    /// The shape in one line.
    pub description: String,
    /// Number of tensors in the file.
    pub tensors: usize,
    /// Sum of the element counts of the floating-point tensors.
    pub parameters: u64,
    /// Element counts by element type.
    pub dtypes: BTreeMap<String, u64>,
    /// The vocabulary.
    pub vocabulary: VocabularySummary,
    /// Tensors the bare encoder (embedding, transfer) skips.
    pub skipped_by_encoder: Vec<String>,
    /// Every tensor, in file order by name.
    pub tensor_list: Vec<TensorInfo>,
}

impl Checkpoint {
    /// Names, shapes and element types of the tensors in the weights file (no data is read).
    pub fn tensors(&self) -> Result<Vec<TensorInfo>, ImportError> {
        fn list<S: ModuleStore>(store: &mut S) -> Result<Vec<TensorInfo>, String>
        where
            S::Error: std::fmt::Display,
        {
            Ok(store
                .get_all_tensors()
                .map_err(|e| e.to_string())?
                .iter()
                .map(|(name, tensor)| TensorInfo {
                    name: name.clone(),
                    shape: tensor.shape.to_vec(),
                    dtype: format!("{:?}", tensor.dtype).to_lowercase(),
                })
                .collect())
        }
        let listed = match self.format() {
            WeightsFormat::Safetensors => {
                list::<SafetensorsStore>(&mut SafetensorsStore::from_file(self.weights_path()))
            }
            WeightsFormat::PyTorch => list::<PytorchStore>(&mut pytorch_store(self.weights_path())),
        };
        listed.map_err(|message| ImportError::Store {
            path: self.weights_path().to_path_buf(),
            message,
        })
    }

    /// What the checkpoint is: architecture and classes, shapes and types, parameters,
    /// vocabulary and where it came from, tensors the encoder would skip.
    pub fn summary(&self) -> Result<CheckpointSummary, ImportError> {
        let config = self.config();
        let tensor_list = self.tensors()?;
        let mut dtypes = BTreeMap::new();
        let mut parameters = 0u64;
        for tensor in &tensor_list {
            let n = tensor.shape.iter().product::<usize>() as u64;
            // Integer tensors are buffers (position ids), not parameters.
            if tensor.dtype.starts_with('f') || tensor.dtype.starts_with("bf") {
                parameters += n;
            }
            *dtypes.entry(tensor.dtype.clone()).or_default() += n;
        }
        let classes = std::fs::read_to_string(self.dir().join(crate::CONFIG_FILE))
            .ok()
            .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
            .and_then(|json| {
                json["architectures"].as_array().map(|a| {
                    a.iter()
                        .filter_map(|c| c.as_str().map(String::from))
                        .collect()
                })
            })
            .unwrap_or_default();
        let tokenizer = checkpoint_tokenizer(self.dir(), config)?;
        let vocabulary = tokenizer.vocabulary();
        let letters = |wanted: &[u8]| -> String {
            wanted
                .iter()
                .filter(|&&r| vocabulary.residue_id(r).is_none())
                .map(|&r| r as char)
                .collect()
        };
        let mut residues: Vec<(u32, char)> = (b'A'..=b'Z')
            .filter_map(|r| vocabulary.residue_id(r).map(|id| (id, r as char)))
            .collect();
        residues.sort_unstable();
        let specials = vocabulary.specials();
        let name = |id: Option<u32>| id.and_then(|id| vocabulary.token(id)).map(String::from);
        Ok(CheckpointSummary {
            dir: self.dir().to_path_buf(),
            weights: self.weights_path().to_path_buf(),
            weights_bytes: std::fs::metadata(self.weights_path()).map_or(0, |m| m.len()),
            architecture: config.architecture().name().to_string(),
            model_type: config.architecture().model_type().to_string(),
            classes,
            description: config.shape(),
            tensors: tensor_list.len(),
            parameters,
            dtypes,
            vocabulary: VocabularySummary {
                origin: vocabulary_origin(self.dir(), config)?.to_string(),
                tokens: vocabulary.len(),
                residues: residues.iter().map(|&(_, c)| c).collect(),
                missing: letters(b"ACDEFGHIKLMNPQRSTVWYX"),
                unknown_token: name(specials.unk),
                mask_token: name(specials.mask),
            },
            skipped_by_encoder: self.skipped_by_encoder()?,
            tensor_list,
        })
    }
}
