//! Loading and saving the Hugging Face directory layout.

use std::io::Write;
use std::path::{Path, PathBuf};

use burn::store::{
    ApplyError, ApplyResult, BurnToPyTorchAdapter, FloatCastAdapter, ModuleAdapter, ModuleSnapshot,
    ModuleStore, PyTorchToBurnAdapter, PytorchStore, SafetensorsStore,
};
use burn::tensor::{DType, Device, FloatDType};
use prottrans_models::cast_floats;
use prottrans_models::{
    AlbertConfig, AlbertForMaskedLm, ArchitectureConfig, BertConfig, BertForMaskedLm,
    ConfigVisitor, Electra, ElectraConfig, ElectraForMaskedLm, ElectraForPreTraining, Encoder,
    ModelConfig, PretrainedModel, RegisteredConfig, T5Config, T5ForConditionalGeneration,
    TransfoXlConfig, TransfoXlLmHeadModel, XlnetConfig, XlnetLmHeadModel,
};

use crate::adapter::LoraAdapter;
use crate::error::{ImportError, WeightProblems};
use crate::key_map::{self, ApplyKeyMap, KeyMap};

/// The configuration file of the layout.
pub const CONFIG_FILE: &str = "config.json";
/// The safetensors weights file of the layout (preferred when both are present).
pub const SAFETENSORS_FILE: &str = "model.safetensors";
/// The PyTorch (zip) weights file of the layout, as the Rostlab models were released.
pub const PYTORCH_FILE: &str = "pytorch_model.bin";

/// How the weights of a checkpoint are stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WeightsFormat {
    /// `model.safetensors`.
    Safetensors,
    /// `pytorch_model.bin` (PyTorch zip pickle).
    PyTorch,
}

/// A Hugging Face checkpoint directory whose config has been read and whose weights file has
/// been found and checked against the config's architecture.
///
/// ```no_run
/// # use prottrans_import::Checkpoint;
/// # use burn::tensor::{Device, FloatDType};
/// let checkpoint = Checkpoint::open("prot_bert")?;
/// let encoder = checkpoint.load_encoder(&Device::flex(), FloatDType::F32)?;
/// # Ok::<(), prottrans_import::ImportError>(())
/// ```
#[derive(Debug, Clone)]
pub struct Checkpoint {
    dir: PathBuf,
    config_path: PathBuf,
    config: ModelConfig,
    weights: PathBuf,
    format: WeightsFormat,
    strict: bool,
    unread_config_keys: Vec<String>,
    adapter: Option<std::sync::Arc<LoraAdapter>>,
}

impl Checkpoint {
    /// Reads `config.json`, finds the weights and checks that they hold the architecture the
    /// config names.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, ImportError> {
        let dir = dir.as_ref().to_path_buf();
        if !dir.is_dir() {
            return Err(ImportError::MissingFile {
                dir,
                expected: "checkpoint directory".into(),
            });
        }
        let config_path = dir.join(CONFIG_FILE);
        if !config_path.is_file() {
            return Err(ImportError::MissingFile {
                dir,
                expected: CONFIG_FILE.into(),
            });
        }
        for index in [
            "model.safetensors.index.json",
            "pytorch_model.bin.index.json",
        ] {
            if dir.join(index).is_file() && !dir.join(SAFETENSORS_FILE).is_file() {
                return Err(ImportError::Sharded {
                    path: dir.join(index),
                });
            }
        }
        let (weights, format) = if dir.join(SAFETENSORS_FILE).is_file() {
            (dir.join(SAFETENSORS_FILE), WeightsFormat::Safetensors)
        } else if dir.join(PYTORCH_FILE).is_file() {
            (dir.join(PYTORCH_FILE), WeightsFormat::PyTorch)
        } else {
            return Err(ImportError::MissingFile {
                dir,
                expected: format!("{SAFETENSORS_FILE} or {PYTORCH_FILE}"),
            });
        };
        let keys = tensor_names(&weights, format)?;
        if keys.is_empty() {
            return Err(ImportError::Store {
                path: weights.clone(),
                message: "the file holds no tensors".into(),
            });
        }
        let config = read_config(&config_path, &keys)?;
        let unread_config_keys = unread_config_keys(&config_path, &config);
        let checkpoint = Self {
            dir,
            config_path,
            config,
            weights,
            format,
            strict: false,
            unread_config_keys,
            adapter: None,
        };
        if let Some(found) = key_map::detect_architecture(&keys)
            && found != checkpoint.config.architecture()
        {
            return Err(ImportError::ArchitectureMismatch {
                config: checkpoint.config_path.clone(),
                weights: checkpoint.weights.clone(),
                configured: checkpoint.config.architecture().to_string(),
                found: found.to_string(),
            });
        }
        Ok(checkpoint)
    }

    /// Strict loading: refuse any tensor the model being loaded does not use (poolers, other
    /// heads, buffers), instead of skipping it as `transformers` does. Copies of tensors the
    /// model loads (tied decoders) are never refused.
    pub fn strict(mut self, strict: bool) -> Self {
        self.strict = strict;
        self
    }

    /// Merges a LoRA adapter (PEFT layout) into every model loaded from this checkpoint:
    /// the model computes what the base model with the adapter computes. Pairs for weights the
    /// loaded model lacks (a T5 decoder's under an encoder) are skipped and named with the
    /// skipped tensors; under [`Self::strict`] they are an error.
    pub fn with_adapter(mut self, adapter: std::sync::Arc<LoraAdapter>) -> Self {
        self.adapter = Some(adapter);
        self
    }

    /// The adapter merged on loading, if any.
    pub fn adapter(&self) -> Option<&LoraAdapter> {
        self.adapter.as_deref()
    }

    /// Whether loading is strict (see [`Self::strict`]).
    pub fn is_strict(&self) -> bool {
        self.strict
    }

    /// Keys of `config.json` that neither the architecture nor `transformers`' general
    /// settings read (a misspelt key leaves its setting at the default).
    pub fn unread_config_keys(&self) -> &[String] {
        &self.unread_config_keys
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The model configuration from `config.json`.
    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// The weights file.
    pub fn weights_path(&self) -> &Path {
        &self.weights
    }

    /// How the weights are stored.
    pub fn format(&self) -> WeightsFormat {
        self.format
    }

    /// The names of the tensors in the weights file, as stored.
    pub fn tensor_names(&self) -> Result<Vec<String>, ImportError> {
        tensor_names(&self.weights, self.format)
    }

    /// Loads the bare encoder of whatever architecture the checkpoint holds, skipping heads
    /// and pooler, with its weights in `dtype`.
    ///
    /// `device` must already use `dtype` as its default float type
    /// (see [`Device::configure`]) when `dtype` is not f32, since the forward pass creates
    /// tensors in the default type.
    pub fn load_encoder(&self, device: &Device, dtype: FloatDType) -> Result<Encoder, ImportError> {
        Ok(self.load_encoder_with_skipped(device, dtype)?.0)
    }

    /// [`Self::load_encoder`], with the checkpoint's tensors the encoder did not use (by their
    /// checkpoint names; see [`Self::strict`]).
    pub fn load_encoder_with_skipped(
        &self,
        device: &Device,
        dtype: FloatDType,
    ) -> Result<(Encoder, Vec<String>), ImportError> {
        self.config.visit(LoadEncoder {
            checkpoint: self,
            device,
            dtype,
        })
    }

    /// Loads the bare encoder as its own type, for code that trains it: `config` is the
    /// checkpoint's configuration, as [`ModelConfig::visit`] hands it out.
    pub fn load_encoder_as<C: ArchitectureConfig>(
        &self,
        config: &C,
        device: &Device,
        dtype: FloatDType,
    ) -> Result<(C::Encoder, Vec<String>), ImportError> {
        let mut model = config.init_model(device);
        let key_map = config.encoder_key_map(&self.tensor_names()?)?;
        let skipped = self.load_into(&mut model, &key_map, dtype)?;
        Ok((cast_floats(model, dtype), skipped))
    }

    /// The checkpoint's name of each tensor the bare encoder loads, by the encoder's module
    /// path (`encoder.layer.0.attention.query.weight` ->
    /// `bert.encoder.layer.0.attention.self.query.weight` where the file has the prefix).
    pub fn encoder_key_names(
        &self,
    ) -> Result<std::collections::BTreeMap<String, String>, ImportError> {
        let names = self.tensor_names()?;
        let key_map = self.config.visit(EncoderKeyMap(&names))?;
        Ok(names
            .iter()
            .map(|name| (key_map.map_to_module(name), name.clone()))
            .collect())
    }

    /// Writes `out` as this checkpoint with `encoder`'s weights (a fine-tuned encoder of this
    /// architecture): `model.safetensors` holds the encoder's tensors under the bare encoder's
    /// checkpoint names, the other files (config.json, vocabulary) are copied. Heads and a T5
    /// decoder are not kept. Staged beside `out` and renamed into place.
    pub fn save_encoder<E: ModuleSnapshot>(
        &self,
        encoder: &E,
        out: &Path,
    ) -> Result<(), ImportError> {
        let key_map = self.config.visit(EncoderKeyMap(&self.tensor_names()?))?;
        crate::staged::write_staged(out, Some(&self.dir), |staging| {
            let weights = staging.join(SAFETENSORS_FILE);
            let mut store = SafetensorsStore::from_file(&weights)
                .with_to_adapter(BurnToPyTorchAdapter)
                .remap(key_map.to_checkpoint())
                .metadata("format", "pt")
                .overwrite(true);
            encoder
                .save_into(&mut store)
                .map_err(|e| ImportError::Store {
                    path: out.join(SAFETENSORS_FILE),
                    message: e.to_string(),
                })
        })
    }

    /// The checkpoint's tensors that [`Self::load_encoder`] skips because the bare encoder does
    /// not use them (poolers, heads, `position_ids` buffers), by their checkpoint names.
    pub fn skipped_by_encoder(&self) -> Result<Vec<String>, ImportError> {
        let names = self.tensor_names()?;
        let key_map = self.config.visit(EncoderKeyMap(&names))?;
        Ok(names
            .iter()
            .filter(|name| {
                // As `load_into` judges unused tensors: through the module path, so aliases
                // apply. (A tensor no module has a place for, and that the key map does not
                // know, shows only when loading.)
                let key = key_map.map_to_checkpoint(&key_map.map_to_module(name));
                key_map.is_ignored(&key) && !key_map.is_tied(&key)
            })
            .cloned()
            .collect())
    }

    /// Loads a model with heads of the class `M` (`BertForMaskedLM`, `EsmForMaskedLM`, ...)
    /// in f32, with its configuration; fails with a named error when the checkpoint holds
    /// another architecture.
    pub fn load<M: PretrainedModel>(&self, device: &Device) -> Result<(M::Config, M), ImportError>
    where
        M::Config: RegisteredConfig,
    {
        let (config, model, _) = self.load_with_skipped::<M>(device)?;
        Ok((config, model))
    }

    /// [`Self::load`], with the checkpoint's tensors the model did not use (by their checkpoint
    /// names; see [`Self::strict`]).
    pub fn load_with_skipped<M: PretrainedModel>(
        &self,
        device: &Device,
    ) -> Result<(M::Config, M, Vec<String>), ImportError>
    where
        M::Config: RegisteredConfig,
    {
        let config = M::Config::from_model_config(&self.config)
            .ok_or_else(|| self.wrong_architecture(M::Config::NAME))?;
        let mut model = M::init(config, device);
        let skipped = self.load_into(&mut model, &M::key_map(config)?, FloatDType::F32)?;
        Ok((config.clone(), cast_floats(model, FloatDType::F32), skipped))
    }

    /// Loads a `T5ForConditionalGeneration` (ProtT5, or a model prottrans saved) in f32.
    pub fn load_t5(
        &self,
        device: &Device,
    ) -> Result<(T5Config, T5ForConditionalGeneration), ImportError> {
        if T5Config::from_model_config(&self.config).is_none() {
            return Err(self.wrong_architecture("t5"));
        }
        if !self
            .tensor_names()?
            .iter()
            .any(|n| n.starts_with("decoder."))
        {
            return Err(ImportError::WrongArchitecture {
                path: self.weights.clone(),
                expected: "t5 encoder-decoder (T5ForConditionalGeneration)".into(),
                found: "t5 encoder only (T5EncoderModel, no decoder weights)".into(),
            });
        }
        self.load::<T5ForConditionalGeneration>(device)
    }

    fn wrong_architecture(&self, expected: &str) -> ImportError {
        ImportError::WrongArchitecture {
            path: self.config_path.clone(),
            expected: expected.into(),
            found: self.config.architecture().to_string(),
        }
    }

    /// Loads a `BertForMaskedLM` (ProtBert, or a model prottrans saved) in f32.
    pub fn load_bert_for_masked_lm(
        &self,
        device: &Device,
    ) -> Result<(BertConfig, BertForMaskedLm), ImportError> {
        self.load::<BertForMaskedLm>(device)
    }

    /// Loads an `AlbertForMaskedLM` or `AlbertForPreTraining` (ProtAlbert, or a model prottrans
    /// saved) in f32; the sentence-order head is skipped.
    pub fn load_albert_for_masked_lm(
        &self,
        device: &Device,
    ) -> Result<(AlbertConfig, AlbertForMaskedLm), ImportError> {
        self.load::<AlbertForMaskedLm>(device)
    }

    /// Loads an `XLNetLMHeadModel` (ProtXLNet, or a model prottrans saved) in f32.
    pub fn load_xlnet_lm_head(
        &self,
        device: &Device,
    ) -> Result<(XlnetConfig, XlnetLmHeadModel), ImportError> {
        self.load::<XlnetLmHeadModel>(device)
    }

    /// Loads a `TransfoXLLMHeadModel` (ProtTXL layout, or a model prottrans saved) in f32.
    pub fn load_transfo_xl_lm_head(
        &self,
        device: &Device,
    ) -> Result<(TransfoXlConfig, TransfoXlLmHeadModel), ImportError> {
        self.load::<TransfoXlLmHeadModel>(device)
    }

    /// Whether the weights hold an ELECTRA generator (`generator_predictions`) rather than a
    /// discriminator.
    fn holds_electra_generator(&self) -> Result<bool, ImportError> {
        Ok(self
            .tensor_names()?
            .iter()
            .any(|n| n.starts_with("generator_predictions.")))
    }

    /// Loads an `ElectraForPreTraining` (a ProtElectra discriminator) in f32.
    pub fn load_electra_discriminator(
        &self,
        device: &Device,
    ) -> Result<(ElectraConfig, ElectraForPreTraining), ImportError> {
        if ElectraConfig::from_model_config(&self.config).is_none() {
            return Err(self.wrong_architecture("electra"));
        }
        if self.holds_electra_generator()? {
            return Err(ImportError::WrongArchitecture {
                path: self.weights.clone(),
                expected: "electra discriminator (ElectraForPreTraining)".into(),
                found: "electra generator (ElectraForMaskedLM)".into(),
            });
        }
        self.load::<ElectraForPreTraining>(device)
    }

    /// Loads an `ElectraForMaskedLM` (a ProtElectra generator) in f32.
    pub fn load_electra_generator(
        &self,
        device: &Device,
    ) -> Result<(ElectraConfig, ElectraForMaskedLm), ImportError> {
        if ElectraConfig::from_model_config(&self.config).is_none() {
            return Err(self.wrong_architecture("electra"));
        }
        if !self.holds_electra_generator()? {
            return Err(ImportError::WrongArchitecture {
                path: self.weights.clone(),
                expected: "electra generator (ElectraForMaskedLM)".into(),
                found: "electra discriminator (ElectraForPreTraining)".into(),
            });
        }
        self.load::<ElectraForMaskedLm>(device)
    }

    fn pytorch_store(&self) -> PytorchStore {
        pytorch_store(&self.weights)
    }

    fn store_error(&self, error: &dyn std::fmt::Display) -> ImportError {
        ImportError::Store {
            path: self.weights.clone(),
            message: error.to_string(),
        }
    }

    /// Loads the weights into `module`, reporting every problem at once; returns the tensors
    /// it did not use, tied copies left out (under [`Self::strict`], those are an error).
    fn load_into<M: ModuleSnapshot>(
        &self,
        module: &mut M,
        key_map: &KeyMap,
        dtype: FloatDType,
    ) -> Result<Vec<String>, ImportError> {
        let result: ApplyResult = match self.format {
            WeightsFormat::Safetensors => {
                let adapter = PyTorchToBurnAdapter.chain(FloatCastAdapter::to(DType::from(dtype)));
                let mut store = SafetensorsStore::from_file(&self.weights)
                    .with_from_adapter(adapter)
                    .remap(key_map.to_module())
                    .allow_partial(true)
                    .validate(false);
                module
                    .load_from(&mut store)
                    .map_err(|e| self.store_error(&e))?
            }
            WeightsFormat::PyTorch => {
                let mut store = self
                    .pytorch_store()
                    .remap(key_map.to_module())
                    .allow_partial(true)
                    .validate(false);
                module
                    .load_from(&mut store)
                    .map_err(|e| self.store_error(&e))?
            }
        };
        // As `transformers` loads: tensors the model has no place for are skipped (and named
        // by the caller), unless loading is strict.
        // Named as the file names them (aliases may have renamed them on the way in).
        let stored: std::collections::HashMap<String, String> = self
            .tensor_names()?
            .into_iter()
            .map(|name| (key_map.map_to_module(&name), name))
            .collect();
        let mut skipped: Vec<String> = result
            .unused
            .iter()
            .filter(|key| !key_map.is_tied(&key_map.map_to_checkpoint(key)))
            .map(|key| {
                stored
                    .get(key)
                    .cloned()
                    .unwrap_or_else(|| key_map.map_to_checkpoint(key))
            })
            .collect();
        skipped.sort();
        let missing: Vec<String> = result
            .missing
            .iter()
            .map(|(path, _)| key_map.map_to_checkpoint(path))
            .collect();
        let problems = WeightProblems {
            // Strict loading refuses them all; otherwise they are named beside missing or
            // misshaped tensors (a renamed key shows up on both lists), heads left out.
            unexpected: if self.strict {
                skipped.clone()
            } else if !missing.is_empty() || !result.errors.is_empty() {
                result
                    .unused
                    .iter()
                    .map(|key| key_map.map_to_checkpoint(key))
                    .filter(|key| !key_map.is_ignored(key))
                    .collect()
            } else {
                Vec::new()
            },
            missing,
            strict: self.strict,
            unread_config_keys: self.unread_config_keys.clone(),
            mismatched: result
                .errors
                .iter()
                .map(|e| match e {
                    ApplyError::ShapeMismatch {
                        path,
                        expected,
                        found,
                    } => format!(
                        "{} (model expects {expected:?}, file has {found:?})",
                        key_map.map_to_checkpoint(path)
                    ),
                    other => other.to_string(),
                })
                .collect(),
        };
        if !problems.is_empty() {
            return Err(ImportError::Weights {
                path: self.weights.clone(),
                problems: Box::new(problems),
            });
        }
        if let Some(adapter) = &self.adapter {
            let merge = adapter.merge_into(module, key_map)?;
            if self.strict && !merge.skipped.is_empty() {
                return Err(ImportError::Store {
                    path: adapter.dir().join(crate::ADAPTER_WEIGHTS_FILE),
                    message: format!(
                        "strict loading: the adapter updates weights this model does not have: {}",
                        crate::compact_names(&merge.skipped).join(", ")
                    ),
                });
            }
            skipped.extend(merge.skipped.into_iter().map(|key| format!("{key} (LoRA)")));
        }
        Ok(skipped)
    }
}

/// The key map that loads the bare encoder of whatever architecture a checkpoint holds.
struct EncoderKeyMap<'a>(&'a [String]);

impl ConfigVisitor for EncoderKeyMap<'_> {
    type Output = Result<KeyMap, ImportError>;

    fn visit<C: ArchitectureConfig>(self, config: &C) -> Self::Output {
        Ok(config.encoder_key_map(self.0)?)
    }
}

/// Loads the bare encoder of whatever architecture a checkpoint holds.
struct LoadEncoder<'a> {
    checkpoint: &'a Checkpoint,
    device: &'a Device,
    dtype: FloatDType,
}

impl ConfigVisitor for LoadEncoder<'_> {
    type Output = Result<(Encoder, Vec<String>), ImportError>;

    fn visit<C: ArchitectureConfig>(self, config: &C) -> Self::Output
    where
        Encoder: From<C::Encoder>,
    {
        let (model, skipped) = self
            .checkpoint
            .load_encoder_as(config, self.device, self.dtype)?;
        Ok((Encoder::from(model), skipped))
    }
}

/// Loads a model with heads of class `M` from a checkpoint directory, in f32.
pub fn load_pretrained<M: PretrainedModel>(
    dir: impl AsRef<Path>,
    device: &Device,
) -> Result<(M::Config, M), ImportError>
where
    M::Config: RegisteredConfig,
{
    Checkpoint::open(dir)?.load::<M>(device)
}

/// Writes `dir/config.json` and `dir/model.safetensors` of a model with heads in the
/// `transformers` layout of its class (tied weights are not stored, as in `transformers`).
pub fn save_pretrained<M: PretrainedModel>(
    model: &M,
    config: &M::Config,
    dir: impl AsRef<Path>,
) -> Result<(), ImportError>
where
    M::Config: RegisteredConfig,
{
    let json = config.clone().into().to_hf_json_for(M::CLASS);
    save_hf(model, &json, &M::key_map(config)?, dir.as_ref())
}

pub(crate) fn pytorch_store(weights: &Path) -> PytorchStore {
    // Layer indices of these checkpoints are contiguous; renumbering would only hide gaps.
    PytorchStore::from_file(weights).map_indices_contiguous(false)
}

/// The names of the tensors in a weights file, as stored.
fn tensor_names(weights: &Path, format: WeightsFormat) -> Result<Vec<String>, ImportError> {
    let keys = match format {
        WeightsFormat::Safetensors => SafetensorsStore::from_file(weights)
            .keys()
            .map_err(|e| e.to_string()),
        WeightsFormat::PyTorch => pytorch_store(weights).keys().map_err(|e| e.to_string()),
    };
    keys.map_err(|message| ImportError::Store {
        path: weights.to_path_buf(),
        message,
    })
}

/// Keys of `config.json` that neither the architecture's configuration nor `transformers`'
/// general settings use.
fn unread_config_keys(path: &Path, config: &ModelConfig) -> Vec<String> {
    /// `PretrainedConfig` settings that say nothing about the shape.
    const GENERAL: &[&str] = &[
        "_name_or_path",
        "architectures",
        "model_type",
        "torch_dtype",
        "dtype",
        "transformers_version",
        "id2label",
        "label2id",
        "bos_token_id",
        "eos_token_id",
        "pad_token_id",
        "sep_token_id",
        "decoder_start_token_id",
        "tie_word_embeddings",
        "gradient_checkpointing",
        "use_cache",
        "is_decoder",
        "is_encoder_decoder",
        "problem_type",
        "finetuning_task",
        "task_specific_params",
        "classifier_dropout",
        "position_embedding_type",
        "output_past",
        "return_dict",
        "torchscript",
        "prefix",
        "tokenizer_class",
        "output_hidden_states",
        "output_attentions",
        "chunk_size_feed_forward",
        "num_labels",
        "add_cross_attention",
        "cross_attention_hidden_size",
        "pruned_heads",
        "max_length",
        "min_length",
        "bad_words_ids",
        "num_beams",
        "early_stopping",
        // Derived from other keys or about heads and training only: T5's activation flags,
        // ELECTRA's sequence-summary head, ESM's folding trunk and token list,
        // Transformer-XL's initialisation and adaptive-softmax settings.
        "dense_act_fn",
        "is_gated_act",
        "scale_decoder_outputs",
        "summary_activation",
        "summary_last_dropout",
        "summary_type",
        "summary_use_proj",
        "summary_proj_to_labels",
        "esmfold_config",
        "vocab_list",
        "hidden_act",
        "init",
        "init_range",
        "init_std",
        "proj_init_std",
        "sample_softmax",
        "tie_projs",
    ];
    let Some(json) = std::fs::read_to_string(path)
        .ok()
        .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
    else {
        return Vec::new();
    };
    let known = config.architecture().config_keys();
    let mut unread: Vec<String> = json
        .as_object()
        .into_iter()
        .flat_map(|map| map.keys())
        .filter(|key| !known.contains(key) && !GENERAL.contains(&key.as_str()))
        .cloned()
        .collect();
    unread.sort();
    unread
}

/// Reads `config.json`. Some released configs predate `model_type` (Rostlab/prot_albert's has
/// none); the architecture is then the one the weights' key names show.
fn read_config(path: &Path, keys: &[String]) -> Result<ModelConfig, ImportError> {
    let text = std::fs::read_to_string(path).map_err(|source| ImportError::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let parse_error = |message: String| {
        ImportError::from(prottrans_models::ModelConfigError::Parse {
            path: path.to_path_buf(),
            message,
        })
    };
    let mut value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| parse_error(e.to_string()))?;
    if let Some(map) = value.as_object_mut()
        && !map.contains_key("model_type")
    {
        let Some(found) = key_map::detect_architecture(keys) else {
            return Err(parse_error(
                "no `model_type` field, and the weights' key names match no known architecture"
                    .into(),
            ));
        };
        map.insert("model_type".into(), found.model_type().into());
    }
    // Every error names config.json: a bad value as much as a parse error.
    ModelConfig::from_hf_json_str(&value.to_string()).map_err(|e| match e {
        prottrans_models::ModelConfigError::Parse { message, .. } => parse_error(message),
        prottrans_models::ModelConfigError::Io { .. } => e.into(),
        other => parse_error(other.to_string()),
    })
}

/// Loads a `BertForMaskedLM` checkpoint directory (ProtBert, or a model prottrans saved).
///
/// Keys may come with or without the `bert.` prefix; the pooler and a stored (tied) decoder are
/// skipped; f16 and bf16 weights are converted to f32.
pub fn load_bert_for_masked_lm(
    dir: impl AsRef<Path>,
    device: &Device,
) -> Result<(BertConfig, BertForMaskedLm), ImportError> {
    Checkpoint::open(dir)?.load_bert_for_masked_lm(device)
}

/// Writes `dir/config.json` and `dir/model.safetensors` of a `BertForMaskedLM` in the
/// `transformers` layout.
pub fn save_bert_for_masked_lm(
    model: &BertForMaskedLm,
    config: &BertConfig,
    dir: impl AsRef<Path>,
) -> Result<(), ImportError> {
    save_pretrained(model, config, dir)
}

/// Loads an `AlbertForMaskedLM` checkpoint directory (ProtAlbert, or a model prottrans saved).
pub fn load_albert_for_masked_lm(
    dir: impl AsRef<Path>,
    device: &Device,
) -> Result<(AlbertConfig, AlbertForMaskedLm), ImportError> {
    Checkpoint::open(dir)?.load_albert_for_masked_lm(device)
}

/// Writes `dir/config.json` and `dir/model.safetensors` of an `AlbertForMaskedLM` in the
/// `transformers` layout (the tied decoder is not stored).
pub fn save_albert_for_masked_lm(
    model: &AlbertForMaskedLm,
    config: &AlbertConfig,
    dir: impl AsRef<Path>,
) -> Result<(), ImportError> {
    save_pretrained(model, config, dir)
}

/// Writes `dir/config.json` and `dir/model.safetensors` of an `XLNetLMHeadModel` in the
/// `transformers` layout (the tied output weight is not stored).
pub fn save_xlnet_lm_head(
    model: &XlnetLmHeadModel,
    config: &XlnetConfig,
    dir: impl AsRef<Path>,
) -> Result<(), ImportError> {
    save_pretrained(model, config, dir)
}

/// Writes `dir/config.json` and `dir/model.safetensors` of a `TransfoXLLMHeadModel` in the
/// `transformers` layout (the tied output weight is not stored).
pub fn save_transfo_xl_lm_head(
    model: &TransfoXlLmHeadModel,
    config: &TransfoXlConfig,
    dir: impl AsRef<Path>,
) -> Result<(), ImportError> {
    save_pretrained(model, config, dir)
}

/// The subdirectory [`save_electra`] writes the generator to.
pub const ELECTRA_GENERATOR_DIR: &str = "generator";

/// Writes a pretrained ELECTRA as the two checkpoints `transformers` knows: the discriminator
/// (`ElectraForPreTraining`, the model to embed with) in `dir`, the generator
/// (`ElectraForMaskedLM`) in `dir/generator`, each with its own copy of the shared embeddings,
/// as the released ProtElectra pair.
pub fn save_electra(
    model: &Electra,
    config: &ElectraConfig,
    dir: impl AsRef<Path>,
) -> Result<(), ImportError> {
    let dir = dir.as_ref();
    let (discriminator, generator) = model.clone().into_checkpoints();
    save_pretrained(&discriminator, config, dir)?;
    save_pretrained(
        &generator,
        &config.generator_config(),
        dir.join(ELECTRA_GENERATOR_DIR),
    )
}

/// Loads a pretrained ELECTRA pair: the discriminator in `dir` and the generator in
/// `dir/generator` (as [`save_electra`] writes them), or the generator in `generator_dir`.
/// The discriminator's embeddings are kept.
pub fn load_electra(
    dir: impl AsRef<Path>,
    generator_dir: Option<&Path>,
    device: &Device,
) -> Result<(ElectraConfig, Electra), ImportError> {
    let dir = dir.as_ref();
    let (mut config, discriminator) = Checkpoint::open(dir)?.load_electra_discriminator(device)?;
    let generator_dir =
        generator_dir.map_or_else(|| dir.join(ELECTRA_GENERATOR_DIR), Path::to_path_buf);
    let (generator_config, generator) =
        Checkpoint::open(&generator_dir)?.load_electra_generator(device)?;
    config.generator = Some((&generator_config).into());
    Ok((config, Electra::from_checkpoints(discriminator, generator)))
}

/// Loads a `T5ForConditionalGeneration` checkpoint directory (ProtT5, or a model prottrans
/// saved); f16 and bf16 weights are converted to f32.
pub fn load_t5(
    dir: impl AsRef<Path>,
    device: &Device,
) -> Result<(T5Config, T5ForConditionalGeneration), ImportError> {
    Checkpoint::open(dir)?.load_t5(device)
}

/// Writes `dir/config.json` and `dir/model.safetensors` of a `T5ForConditionalGeneration` in
/// the `transformers` layout (the tied head is not stored, as transformers does).
pub fn save_t5(
    model: &T5ForConditionalGeneration,
    config: &T5Config,
    dir: impl AsRef<Path>,
) -> Result<(), ImportError> {
    save_pretrained(model, config, dir)
}

/// Writes a model's weights and config in the `transformers` layout.
///
/// Each file is written beside its destination and renamed into place, so an interrupted save
/// never leaves a truncated file.
fn save_hf<M: ModuleSnapshot>(
    model: &M,
    config_json: &str,
    key_map: &KeyMap,
    dir: &Path,
) -> Result<(), ImportError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ImportError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;

    let weights = dir.join(SAFETENSORS_FILE);
    let mut store = SafetensorsStore::from_file(&weights)
        .with_to_adapter(BurnToPyTorchAdapter)
        .remap(key_map.to_checkpoint())
        .metadata("format", "pt")
        .overwrite(true);
    model
        .save_into(&mut store)
        .map_err(|e| ImportError::Store {
            path: weights.clone(),
            message: e.to_string(),
        })?;

    let config_path = dir.join(CONFIG_FILE);
    let mut builder = tempfile::Builder::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        // Like any new file (0666 less the umask), not tempfile's owner-only 0600.
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    let mut file = builder.tempfile_in(dir).map_err(io(dir))?;
    file.write_all(config_json.as_bytes())
        .map_err(io(&config_path))?;
    file.persist(&config_path).map_err(|e| ImportError::Io {
        path: config_path.clone(),
        source: e.error,
    })?;
    // burn's store writes the weights owner-only; give them the config's (umask) mode.
    let mode = std::fs::metadata(&config_path)
        .map_err(io(&config_path))?
        .permissions();
    std::fs::set_permissions(&weights, mode).map_err(io(&weights))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `transformers`-written config of the parity fixture.
    fn tiny() -> BertConfig {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../tests/fixtures/bert_tiny/config.json"
        );
        match ModelConfig::from_hf_json(path).unwrap() {
            ModelConfig::Bert(config) => config,
            other => panic!("the fixture is BERT, not {}", other.architecture()),
        }
    }

    #[test]
    fn saved_models_load_back_identically() {
        let device = Device::flex();
        let config = tiny();
        let model = config.init(&device);
        let dir = tempfile::tempdir().unwrap();
        save_bert_for_masked_lm(&model, &config, dir.path()).unwrap();
        let (loaded_config, loaded) = load_bert_for_masked_lm(dir.path(), &device).unwrap();
        assert_eq!(loaded_config, config);
        let a = model.bert.encoder.layer[1]
            .attention
            .query
            .weight
            .val()
            .into_data();
        let b = loaded.bert.encoder.layer[1]
            .attention
            .query
            .weight
            .val()
            .into_data();
        assert_eq!(a, b);
        let a = model.cls.bias.val().into_data();
        let b = loaded.cls.bias.val().into_data();
        assert_eq!(a, b);
    }

    #[test]
    fn mismatched_weights_are_all_named() {
        let device = Device::flex();
        let dir = tempfile::tempdir().unwrap();
        let small = tiny();
        save_bert_for_masked_lm(&small.init(&device), &small, dir.path()).unwrap();
        // Same directory, but a config with a different width and an extra layer.
        let other = ModelConfig::Bert(BertConfig {
            hidden_size: 48,
            num_hidden_layers: 3,
            ..small
        });
        std::fs::write(dir.path().join(CONFIG_FILE), other.to_hf_json()).unwrap();
        let err = load_bert_for_masked_lm(dir.path(), &device).unwrap_err();
        let ImportError::Weights { problems, .. } = &err else {
            panic!("expected a weights error, got {err}");
        };
        assert!(
            problems.missing.iter().any(|m| m.contains("layer.2.")),
            "{err}"
        );
        assert!(!problems.mismatched.is_empty(), "{err}");
        assert!(err.to_string().contains("model.safetensors"), "{err}");
    }

    #[test]
    fn missing_files_are_named() {
        let dir = tempfile::tempdir().unwrap();
        let err = load_bert_for_masked_lm(dir.path(), &Device::flex()).unwrap_err();
        assert!(err.to_string().contains("no config.json"), "{err}");
    }
}
