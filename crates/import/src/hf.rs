//! Loading and saving the Hugging Face directory layout.

use std::io::Write;
use std::path::{Path, PathBuf};

use burn::store::{
    ApplyError, ApplyResult, BurnToPyTorchAdapter, FloatCastAdapter, ModuleAdapter,
    ModuleSnapshot, PyTorchToBurnAdapter, SafetensorsStore,
};
use burn::tensor::{DType, Device};
use prottrans_models::{BertConfig, BertForMaskedLm, ModelConfig};

use crate::error::{ImportError, WeightProblems};
use crate::key_map::{self, KeyMap};

/// The configuration file of the layout.
pub const CONFIG_FILE: &str = "config.json";
/// The weights file of the layout.
pub const SAFETENSORS_FILE: &str = "model.safetensors";

fn read_config(dir: &Path) -> Result<(PathBuf, ModelConfig), ImportError> {
    let path = dir.join(CONFIG_FILE);
    if !path.is_file() {
        return Err(ImportError::MissingFile {
            dir: dir.to_path_buf(),
            expected: CONFIG_FILE.into(),
        });
    }
    let config = ModelConfig::from_hf_json(&path)?;
    Ok((path, config))
}

fn weights_file(dir: &Path) -> Result<PathBuf, ImportError> {
    let path = dir.join(SAFETENSORS_FILE);
    if path.is_file() {
        Ok(path)
    } else {
        Err(ImportError::MissingFile {
            dir: dir.to_path_buf(),
            expected: SAFETENSORS_FILE.into(),
        })
    }
}

/// Loads a `BertForMaskedLM` checkpoint directory (ProtBert, or a model prottrans saved).
///
/// Keys may come with or without the `bert.` prefix; the pooler and a stored (tied) decoder are
/// skipped; f16 and bf16 weights are converted to f32.
pub fn load_bert_for_masked_lm(
    dir: impl AsRef<Path>,
    device: &Device,
) -> Result<(BertConfig, BertForMaskedLm), ImportError> {
    let dir = dir.as_ref();
    let (config_path, config) = read_config(dir)?;
    let config = match config {
        ModelConfig::Bert(config) => config,
        #[allow(unreachable_patterns)]
        other => {
            return Err(ImportError::WrongArchitecture {
                path: config_path,
                expected: "bert".into(),
                found: other.architecture().to_string(),
            });
        }
    };
    let mut model = config.init(device);
    load_weights(&mut model, &weights_file(dir)?, &key_map::BERT)?;
    Ok((config, model))
}

/// Loads safetensors weights into `module`, reporting every problem at once.
fn load_weights<M: ModuleSnapshot>(
    module: &mut M,
    path: &Path,
    key_map: &KeyMap,
) -> Result<(), ImportError> {
    let store_error = |e: &dyn std::fmt::Display| ImportError::Store {
        path: path.to_path_buf(),
        message: e.to_string(),
    };
    let remapper = key_map.to_module();
    let adapter = PyTorchToBurnAdapter.chain(FloatCastAdapter::to(DType::F32));
    let mut store = SafetensorsStore::from_file(path)
        .with_from_adapter(adapter)
        .remap(remapper)
        .allow_partial(true)
        .validate(false);
    let result: ApplyResult = module.load_from(&mut store).map_err(|e| store_error(&e))?;

    let problems = WeightProblems {
        missing: result.missing.iter().map(|(path, _)| path.clone()).collect(),
        unexpected: result
            .unused
            .iter()
            .filter(|key| !key_map.is_ignored(&key_map.map_to_checkpoint(key)))
            .cloned()
            .collect(),
        mismatched: result
            .errors
            .iter()
            .map(|e| match e {
                ApplyError::ShapeMismatch {
                    path,
                    expected,
                    found,
                } => format!("{path} (expected shape {expected:?}, found {found:?})"),
                other => other.to_string(),
            })
            .collect(),
    };
    if problems.is_empty() {
        Ok(())
    } else {
        Err(ImportError::Weights {
            path: path.to_path_buf(),
            problems,
        })
    }
}

/// Writes `dir/config.json` and `dir/model.safetensors` in the `transformers` layout.
///
/// Each file is written beside its destination and renamed into place, so an interrupted save
/// never leaves a truncated file.
pub fn save_bert_for_masked_lm(
    model: &BertForMaskedLm,
    config: &BertConfig,
    dir: impl AsRef<Path>,
) -> Result<(), ImportError> {
    let dir = dir.as_ref();
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| ImportError::Io { path, source }
    };
    std::fs::create_dir_all(dir).map_err(io(dir))?;

    let weights = dir.join(SAFETENSORS_FILE);
    let mut store = SafetensorsStore::from_file(&weights)
        .with_to_adapter(BurnToPyTorchAdapter)
        .remap(key_map::BERT.to_checkpoint())
        .metadata("format", "pt")
        .overwrite(true);
    model
        .save_into(&mut store)
        .map_err(|e| ImportError::Store {
            path: weights.clone(),
            message: e.to_string(),
        })?;

    let config_path = dir.join(CONFIG_FILE);
    let mut file = tempfile::NamedTempFile::new_in(dir).map_err(io(dir))?;
    file.write_all(ModelConfig::Bert(config.clone()).to_hf_json().as_bytes())
        .map_err(io(&config_path))?;
    file.persist(&config_path)
        .map_err(|e| ImportError::Io {
            path: config_path.clone(),
            source: e.error,
        })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The `transformers`-written config of the parity fixture.
    fn tiny() -> BertConfig {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../tests/fixtures/bert_tiny/config.json");
        match ModelConfig::from_hf_json(path).unwrap() {
            ModelConfig::Bert(config) => config,
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
        let a = model.bert.encoder.layer[1].attention.query.weight.val().into_data();
        let b = loaded.bert.encoder.layer[1].attention.query.weight.val().into_data();
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
        assert!(problems.missing.iter().any(|m| m.contains("layer.2.")), "{err}");
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
