//! LoRA adapters in Hugging Face PEFT's layout: a directory with `adapter_config.json` and
//! `adapter_model.safetensors`, as `peft`'s `save_pretrained` writes it and
//! `PeftModel.from_pretrained` reads it.
//!
//! An adapter is applied by merging, as `peft`'s `merge_and_unload` does: each targeted linear
//! layer's weight `W` (`[out, in]` in the checkpoint) becomes `W + scaling * B A`, with `A`
//! (`lora_A`, `[r, in]`), `B` (`lora_B`, `[out, r]`) and `scaling = lora_alpha / r`
//! (`lora_alpha / sqrt(r)` with `use_rslora`). The merged model computes what the base model
//! with the adapter computes, without dropout, at the base model's speed.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use burn::module::{Module, ModuleVisitor, Param};
use burn::store::{ModuleSnapshot, bridge};
use burn::tensor::{DType, Tensor, TensorData};
use serde::{Deserialize, Serialize};

use crate::ImportError;
use crate::key_map::{ApplyKeyMap, KeyMap};

/// The adapter's settings file.
pub const ADAPTER_CONFIG_FILE: &str = "adapter_config.json";
/// The adapter's weights file.
pub const ADAPTER_WEIGHTS_FILE: &str = "adapter_model.safetensors";
/// The prefix `peft` puts before the wrapped model's own module names.
const PEFT_PREFIX: &str = "base_model.model.";

/// What prottrans reads of `adapter_config.json` (the file has more, which `peft` needs
/// and prottrans does not).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoraAdapterConfig {
    /// `"LORA"`.
    pub peft_type: String,
    /// Rank of every pair.
    pub r: usize,
    /// The scaling numerator.
    pub lora_alpha: f64,
    /// Module names (a list, matched as suffixes) or one regular expression.
    #[serde(default)]
    pub target_modules: Option<serde_json::Value>,
    /// `lora_alpha / sqrt(r)` instead of `lora_alpha / r`.
    #[serde(default)]
    pub use_rslora: bool,
    /// DoRA's magnitude vectors (not supported).
    #[serde(default)]
    pub use_dora: bool,
    /// GPT-2-style `Conv1D` weights stored `[in, out]` (not supported).
    #[serde(default)]
    pub fan_in_fan_out: bool,
    /// Biases trained too (`"none"` is supported).
    #[serde(default = "no_bias")]
    pub bias: String,
    /// A bias on `lora_B` (not supported).
    #[serde(default)]
    pub lora_bias: bool,
    /// Layers duplicated before the adapter applies (not supported).
    #[serde(default)]
    pub layer_replication: Option<serde_json::Value>,
    /// Ranks per module (not supported).
    #[serde(default)]
    pub rank_pattern: BTreeMap<String, serde_json::Value>,
    /// Alphas per module (not supported).
    #[serde(default)]
    pub alpha_pattern: BTreeMap<String, serde_json::Value>,
    /// The model the adapter was trained on, as `peft` recorded it.
    #[serde(default)]
    pub base_model_name_or_path: Option<String>,
}

fn no_bias() -> String {
    "none".into()
}

/// One low-rank update of a linear layer's weight.
#[derive(Debug, Clone)]
struct LoraPair {
    /// The weight's checkpoint key (`bert.encoder.layer.0.attention.self.query.weight`).
    weight_key: String,
    /// `lora_A`, `[r, in]`, row-major.
    a: Vec<f32>,
    /// `lora_B`, `[out, r]`, row-major.
    b: Vec<f32>,
    inputs: usize,
    outputs: usize,
}

/// A LoRA adapter read from a PEFT-layout directory, checked.
#[derive(Debug, Clone)]
pub struct LoraAdapter {
    dir: PathBuf,
    config: LoraAdapterConfig,
    pairs: Vec<LoraPair>,
    /// A stamp of the two files (sizes and modification times) for the outputs' records.
    fingerprint: u64,
}

/// What merging an adapter into a model did.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct AdapterMerge {
    /// Weights updated, by checkpoint key.
    pub merged: Vec<String>,
    /// Pairs for weights the model being loaded does not have (a T5 decoder's, when only the
    /// encoder is loaded), by checkpoint key.
    pub skipped: Vec<String>,
}

impl LoraAdapter {
    /// Reads and checks `dir/adapter_config.json` and `dir/adapter_model.safetensors`.
    pub fn read(dir: impl AsRef<Path>) -> Result<Self, ImportError> {
        let dir = dir.as_ref().to_path_buf();
        let config_path = dir.join(ADAPTER_CONFIG_FILE);
        let weights_path = dir.join(ADAPTER_WEIGHTS_FILE);
        for (path, what) in [
            (&config_path, ADAPTER_CONFIG_FILE),
            (&weights_path, ADAPTER_WEIGHTS_FILE),
        ] {
            if !path.is_file() {
                return Err(ImportError::MissingFile {
                    dir: dir.clone(),
                    expected: format!("{what} (a PEFT adapter directory)"),
                });
            }
        }
        let invalid = |path: &Path, message: String| ImportError::Store {
            path: path.to_path_buf(),
            message,
        };
        let text = std::fs::read_to_string(&config_path).map_err(|source| ImportError::Io {
            path: config_path.clone(),
            source,
        })?;
        let config: LoraAdapterConfig =
            serde_json::from_str(&text).map_err(|e| invalid(&config_path, e.to_string()))?;
        config
            .check()
            .map_err(|message| invalid(&config_path, message))?;
        let bytes = std::fs::read(&weights_path).map_err(|source| ImportError::Io {
            path: weights_path.clone(),
            source,
        })?;
        let pairs =
            read_pairs(&bytes, config.r).map_err(|message| invalid(&weights_path, message))?;
        if pairs.is_empty() {
            return Err(invalid(&weights_path, "no LoRA pairs in the file".into()));
        }
        let fingerprint = fingerprint(&[&config_path, &weights_path]);
        Ok(Self {
            dir,
            config,
            pairs,
            fingerprint,
        })
    }

    /// The adapter's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Its settings.
    pub fn config(&self) -> &LoraAdapterConfig {
        &self.config
    }

    /// The factor on `B A`.
    pub fn scaling(&self) -> f64 {
        let r = self.config.r as f64;
        if self.config.use_rslora {
            self.config.lora_alpha / r.sqrt()
        } else {
            self.config.lora_alpha / r
        }
    }

    /// The checkpoint keys of the weights the adapter updates.
    pub fn targets(&self) -> Vec<&str> {
        self.pairs.iter().map(|p| p.weight_key.as_str()).collect()
    }

    /// Parameters of the adapter (`r * (in + out)` per pair).
    pub fn parameters(&self) -> usize {
        self.pairs.iter().map(|p| p.a.len() + p.b.len()).sum()
    }

    /// A stamp of the adapter's files, to tell outputs made with another adapter apart.
    pub fn fingerprint(&self) -> u64 {
        self.fingerprint
    }

    /// Adds `scaling * B A` to each targeted weight of `module`, loaded through `key_map`
    /// (burn keeps linear weights `[in, out]`, so the update goes in transposed). A pair
    /// whose weight the module lacks is skipped and named; a weight of another shape than the
    /// pair's is an error naming both.
    pub(crate) fn merge_into<M: ModuleSnapshot>(
        &self,
        module: &mut M,
        key_map: &KeyMap,
    ) -> Result<AdapterMerge, ImportError> {
        let weights_path = self.dir.join(ADAPTER_WEIGHTS_FILE);
        let mut params: BTreeMap<String, _> = module
            .collect(None, None, false)
            .into_iter()
            .map(|t| (t.name.clone(), t))
            .collect();
        let scaling = self.scaling() as f32;
        let mut report = AdapterMerge::default();
        let mut updated = Vec::new();
        for pair in &self.pairs {
            let path = key_map.map_to_module(&pair.weight_key);
            let Some(param) = params.remove(&path) else {
                report.skipped.push(pair.weight_key.clone());
                continue;
            };
            let param_id = param.param_id;
            let data = bridge::into_data(param).map_err(|e| ImportError::Store {
                path: weights_path.clone(),
                message: format!("{}: {e}", pair.weight_key),
            })?;
            let dtype = data.dtype();
            let shape = data.shape().to_vec();
            if shape != [pair.inputs, pair.outputs] {
                return Err(ImportError::Store {
                    path: weights_path.clone(),
                    message: format!(
                        "{}: the adapter updates a [{}, {}] weight (out, in), the model's is {:?} (in, out): made for another model?",
                        pair.weight_key, pair.outputs, pair.inputs, shape
                    ),
                });
            }
            let mut weight =
                data.convert::<f32>()
                    .try_into_vec::<f32>()
                    .map_err(|e| ImportError::Store {
                        path: weights_path.clone(),
                        message: format!("{}: {e:?}", pair.weight_key),
                    })?;
            pair.add_to(&mut weight, scaling);
            let merged = TensorData::new(weight, shape).convert_dtype(dtype);
            updated.push(bridge::from_data(merged, path, param_id));
            report.merged.push(pair.weight_key.clone());
        }
        if report.merged.is_empty() {
            return Err(ImportError::Store {
                path: weights_path,
                message: format!(
                    "none of the adapter's {} LoRA pairs fits a weight of this model (they target {}): made for another model?",
                    self.pairs.len(),
                    crate::compact_names(&report.skipped).join(", ")
                ),
            });
        }
        let expected = updated.len();
        let result = module.apply(updated, None, None, false);
        if !result.errors.is_empty() || result.applied.len() != expected {
            return Err(ImportError::Store {
                path: weights_path,
                message: format!(
                    "merging failed: {} of {expected} weights applied; {:?}",
                    result.applied.len(),
                    result.errors
                ),
            });
        }
        Ok(report)
    }
}

impl LoraAdapter {
    /// The LoRA adapters burn's [`Module::apply_lora`](burn::module::Module::apply_lora) put on
    /// `module` (a model loaded from a checkpoint), as a PEFT adapter whose keys are the
    /// checkpoint's own names for the adapted weights. `names` maps module paths to those
    /// names ([`Checkpoint::encoder_key_names`](crate::Checkpoint::encoder_key_names)); `rank`
    /// and `alpha` are those the adapters were made with.
    pub fn from_module<M: Module>(
        module: &M,
        names: &BTreeMap<String, String>,
        rank: usize,
        alpha: f64,
        base_model: Option<String>,
    ) -> Result<Self, ImportError> {
        let mut collector = AdapterCollector::default();
        module.visit(&mut collector);
        let found = collector.pairs();
        let mut pairs = Vec::with_capacity(found.len());
        for (path, a, b) in found {
            let weight_key = names
                .get(&path)
                .cloned()
                .ok_or_else(|| ImportError::Store {
                    path: PathBuf::from(&path),
                    message: "an adapted weight the checkpoint has no name for".into(),
                })?;
            // burn: a `[in, r]`, b `[r, out]`; peft: lora_A `[r, in]`, lora_B `[out, r]`.
            let (inputs, r) = (a.shape()[0], a.shape()[1]);
            let outputs = b.shape()[1];
            if r != rank || b.shape()[0] != rank {
                return Err(ImportError::Store {
                    path: PathBuf::from(&path),
                    message: format!("adapter of rank {r}, expected {rank}"),
                });
            }
            let read = |data: TensorData| {
                data.convert::<f32>()
                    .try_into_vec::<f32>()
                    .map_err(|e| ImportError::Store {
                        path: PathBuf::from(&path),
                        message: format!("{e:?}"),
                    })
            };
            let (a, b) = (read(a)?, read(b)?);
            pairs.push(LoraPair {
                weight_key,
                a: transpose(&a, inputs, r),
                b: transpose(&b, r, outputs),
                inputs,
                outputs,
            });
        }
        if pairs.is_empty() {
            return Err(ImportError::Store {
                path: PathBuf::from("."),
                message: "the model carries no LoRA adapter".into(),
            });
        }
        pairs.sort_by(|x, y| x.weight_key.cmp(&y.weight_key));
        let target_modules: Vec<serde_json::Value> =
            pairs.iter().map(|p| p.module_name().into()).collect();
        Ok(Self {
            dir: PathBuf::new(),
            config: LoraAdapterConfig {
                peft_type: "LORA".into(),
                r: rank,
                lora_alpha: alpha,
                target_modules: Some(serde_json::Value::Array(target_modules)),
                use_rslora: false,
                use_dora: false,
                fan_in_fan_out: false,
                bias: no_bias(),
                lora_bias: false,
                layer_replication: None,
                rank_pattern: BTreeMap::new(),
                alpha_pattern: BTreeMap::new(),
                base_model_name_or_path: base_model,
            },
            pairs,
            fingerprint: 0,
        })
    }

    /// Writes the adapter to `dir` in PEFT's layout (`adapter_config.json` with `peft`'s
    /// defaults for what prottrans does not use, `adapter_model.safetensors` in f32), staged
    /// beside `dir` and renamed into place; returns it read back from there.
    pub fn save(&self, dir: &Path) -> Result<Self, ImportError> {
        let mut config = serde_json::to_value(&self.config).map_err(|e| ImportError::Store {
            path: dir.join(ADAPTER_CONFIG_FILE),
            message: e.to_string(),
        })?;
        if let Some(map) = config.as_object_mut() {
            // What `PeftModel.from_pretrained` expects of a plain LoRA adapter for inference.
            for (key, value) in [
                ("lora_dropout", serde_json::json!(0.0)),
                ("init_lora_weights", serde_json::json!(true)),
                ("inference_mode", serde_json::json!(true)),
                ("modules_to_save", serde_json::Value::Null),
                ("task_type", serde_json::Value::Null),
                ("layers_to_transform", serde_json::Value::Null),
                ("layers_pattern", serde_json::Value::Null),
                ("revision", serde_json::Value::Null),
            ] {
                map.insert(key.into(), value);
            }
        }
        let json = serde_json::to_string_pretty(&config).map_err(|e| ImportError::Store {
            path: dir.join(ADAPTER_CONFIG_FILE),
            message: e.to_string(),
        })?;
        let mut tensors: Vec<(String, Vec<u8>, Vec<usize>)> = Vec::new();
        for pair in &self.pairs {
            let module = pair.module_name();
            let bytes = |values: &[f32]| values.iter().flat_map(|v| v.to_le_bytes()).collect();
            tensors.push((
                format!("{PEFT_PREFIX}{module}.lora_A.weight"),
                bytes(&pair.a),
                vec![self.config.r, pair.inputs],
            ));
            tensors.push((
                format!("{PEFT_PREFIX}{module}.lora_B.weight"),
                bytes(&pair.b),
                vec![pair.outputs, self.config.r],
            ));
        }
        crate::staged::write_staged(dir, None, |staging| {
            std::fs::write(staging.join(ADAPTER_CONFIG_FILE), &json).map_err(|source| {
                ImportError::Io {
                    path: dir.join(ADAPTER_CONFIG_FILE),
                    source,
                }
            })?;
            let target = staging.join(ADAPTER_WEIGHTS_FILE);
            let views = tensors
                .iter()
                .map(|(name, data, shape)| {
                    safetensors::tensor::TensorView::new(
                        safetensors::Dtype::F32,
                        shape.clone(),
                        data,
                    )
                    .map(|view| (name.clone(), view))
                })
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| ImportError::Store {
                    path: target.clone(),
                    message: e.to_string(),
                })?;
            let metadata =
                std::collections::HashMap::from([("format".to_string(), "pt".to_string())]);
            safetensors::serialize_to_file(views, Some(metadata), &target).map_err(|e| {
                ImportError::Store {
                    path: target.clone(),
                    message: e.to_string(),
                }
            })
        })?;
        Self::read(dir)
    }

    /// Writes `out` as a copy of the checkpoint directory `base` with the adapter merged into
    /// its `model.safetensors`: every tensor kept in its type, the targeted weights updated,
    /// the other files (config.json, vocabulary) copied. The result is a plain checkpoint that
    /// `transformers` and prottrans load without `peft`. `out` is written beside itself and
    /// renamed into place, so a failure leaves nothing behind.
    pub fn write_merged(&self, base: &Path, out: &Path) -> Result<AdapterMerge, ImportError> {
        let weights_path = base.join(crate::SAFETENSORS_FILE);
        if !weights_path.is_file() {
            return Err(ImportError::MissingFile {
                dir: base.to_path_buf(),
                expected: format!(
                    "{} (merging into {} is not supported yet)",
                    crate::SAFETENSORS_FILE,
                    crate::PYTORCH_FILE
                ),
            });
        }
        let store = |message: String| ImportError::Store {
            path: weights_path.clone(),
            message,
        };
        let bytes = std::fs::read(&weights_path).map_err(|source| ImportError::Io {
            path: weights_path.clone(),
            source,
        })?;
        let file =
            safetensors::SafeTensors::deserialize(&bytes).map_err(|e| store(e.to_string()))?;
        let names: Vec<String> = file.names().into_iter().map(String::from).collect();
        let mut replaced: BTreeMap<String, Vec<u8>> = BTreeMap::new();
        let mut report = AdapterMerge::default();
        let scaling = self.scaling() as f32;
        for pair in &self.pairs {
            // The adapter's keys follow the class peft wrapped (`bert.encoder...` for
            // BertForMaskedLM, `encoder...` for BertModel): the weight of the same module.
            let fits = |name: &&String| {
                *name == &pair.weight_key
                    || name.ends_with(&format!(".{}", pair.weight_key))
                    || pair.weight_key.ends_with(&format!(".{name}"))
            };
            let found: Vec<&String> = names.iter().filter(fits).collect();
            let [name] = found[..] else {
                report.skipped.push(pair.weight_key.clone());
                continue;
            };
            let view = file.tensor(name).map_err(|e| store(e.to_string()))?;
            if view.shape() != [pair.outputs, pair.inputs] {
                return Err(store(format!(
                    "{name}: shape {:?}, but the adapter's pair is for [{}, {}]: made for another model?",
                    view.shape(),
                    pair.outputs,
                    pair.inputs
                )));
            }
            let (mut weight, dtype) = f32_values(name, &view).map_err(store)?;
            pair.add_to_out_in(&mut weight, scaling);
            let merged = TensorData::new(weight, view.shape().to_vec()).convert_dtype(dtype);
            replaced.insert(name.clone(), merged.as_bytes().to_vec());
            report.merged.push(name.clone());
        }
        if report.merged.is_empty() {
            return Err(store(format!(
                "none of the adapter's {} LoRA pairs fits a weight of this checkpoint: made for another model?",
                self.pairs.len()
            )));
        }
        let mut views = Vec::with_capacity(names.len());
        for name in &names {
            let view = file.tensor(name).map_err(|e| store(e.to_string()))?;
            let data = replaced.get(name).map_or(view.data(), Vec::as_slice);
            let view =
                safetensors::tensor::TensorView::new(view.dtype(), view.shape().to_vec(), data)
                    .map_err(|e| store(e.to_string()))?;
            views.push((name.clone(), view));
        }
        crate::staged::write_staged(out, Some(base), |staging| {
            let metadata =
                std::collections::HashMap::from([("format".to_string(), "pt".to_string())]);
            let target = staging.join(crate::SAFETENSORS_FILE);
            safetensors::serialize_to_file(views, Some(metadata), &target).map_err(|e| {
                ImportError::Store {
                    path: target.clone(),
                    message: e.to_string(),
                }
            })
        })?;
        Ok(report)
    }
}

impl LoraAdapterConfig {
    /// What prottrans can merge: plain LoRA of one rank over `[out, in]` linear weights.
    fn check(&self) -> Result<(), String> {
        if self.peft_type != "LORA" {
            return Err(format!(
                "peft_type `{}`: prottrans reads LoRA adapters only",
                self.peft_type
            ));
        }
        if self.r == 0 {
            return Err("r must be at least 1".into());
        }
        if !self.lora_alpha.is_finite() {
            return Err(format!(
                "lora_alpha must be a finite number, got {}",
                self.lora_alpha
            ));
        }
        let unsupported = [
            (self.use_dora, "use_dora (DoRA)"),
            (self.fan_in_fan_out, "fan_in_fan_out (Conv1D weights)"),
            (self.bias != "none", "bias other than \"none\""),
            (self.lora_bias, "lora_bias"),
            (
                self.layer_replication
                    .as_ref()
                    .is_some_and(|v| !v.is_null()),
                "layer_replication",
            ),
            (!self.rank_pattern.is_empty(), "rank_pattern"),
            (!self.alpha_pattern.is_empty(), "alpha_pattern"),
        ];
        if let Some((_, what)) = unsupported.iter().find(|(on, _)| *on) {
            return Err(format!("{what} is not supported by prottrans yet"));
        }
        Ok(())
    }
}

impl LoraPair {
    /// The adapted module's name (its weight's key without `.weight`).
    fn module_name(&self) -> &str {
        self.weight_key
            .strip_suffix(".weight")
            .unwrap_or(&self.weight_key)
    }

    /// `weight[o, i] += scaling * (B A)[o, i]` for a row-major `[out, in]` weight (the
    /// checkpoint's layout).
    fn add_to_out_in(&self, weight: &mut [f32], scaling: f32) {
        let r = self.a.len() / self.inputs;
        for o in 0..self.outputs {
            let row = &mut weight[o * self.inputs..(o + 1) * self.inputs];
            for k in 0..r {
                let b = self.b[o * r + k] * scaling;
                for (w, a) in row
                    .iter_mut()
                    .zip(&self.a[k * self.inputs..(k + 1) * self.inputs])
                {
                    *w += b * a;
                }
            }
        }
    }

    /// `weight[i, o] += scaling * (B A)[o, i]` for a row-major `[in, out]` weight.
    fn add_to(&self, weight: &mut [f32], scaling: f32) {
        let r = self.a.len() / self.inputs;
        // B transposed, so the innermost loop runs along a row of both.
        let mut b_t = vec![0.0f32; r * self.outputs];
        for o in 0..self.outputs {
            for k in 0..r {
                b_t[k * self.outputs + o] = self.b[o * r + k];
            }
        }
        for i in 0..self.inputs {
            let row = &mut weight[i * self.outputs..(i + 1) * self.outputs];
            for k in 0..r {
                let a = self.a[k * self.inputs + i] * scaling;
                for (w, b) in row
                    .iter_mut()
                    .zip(&b_t[k * self.outputs..(k + 1) * self.outputs])
                {
                    *w += a * b;
                }
            }
        }
    }
}

/// `[rows, cols]` row-major -> `[cols, rows]` row-major.
fn transpose(values: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0; values.len()];
    for i in 0..rows {
        for j in 0..cols {
            out[j * rows + i] = values[i * cols + j];
        }
    }
    out
}

/// Finds the LoRA adapters on a module's 2-D parameters, with their module paths.
#[derive(Default)]
struct AdapterCollector {
    path: Vec<String>,
    a: BTreeMap<String, TensorData>,
    b: BTreeMap<String, TensorData>,
}

impl ModuleVisitor for AdapterCollector {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }

    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }

    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        // burn visits an adapted weight's base, then its factors as `<weight>.lora.a` and
        // `<weight>.lora.b`.
        let path = self.path.join(".");
        if let Some(weight) = path.strip_suffix(".lora.a") {
            self.a.insert(weight.to_string(), param.val().into_data());
        } else if let Some(weight) = path.strip_suffix(".lora.b") {
            self.b.insert(weight.to_string(), param.val().into_data());
        }
    }
}

impl AdapterCollector {
    /// `(weight path, a, b)` of every adapted weight.
    fn pairs(mut self) -> Vec<(String, TensorData, TensorData)> {
        let a = std::mem::take(&mut self.a);
        a.into_iter()
            .filter_map(|(path, a)| self.b.remove(&path).map(|b| (path, a, b)))
            .collect()
    }
}

/// A float tensor of a safetensors file as f32 values, with its stored type.
fn f32_values(
    name: &str,
    view: &safetensors::tensor::TensorView<'_>,
) -> Result<(Vec<f32>, DType), String> {
    let dtype = match view.dtype() {
        safetensors::Dtype::F32 => DType::F32,
        safetensors::Dtype::F16 => DType::F16,
        safetensors::Dtype::BF16 => DType::BF16,
        other => return Err(format!("{name}: {other:?} values, expected a float type")),
    };
    let values = TensorData::from_bytes_vec(view.data().to_vec(), view.shape().to_vec(), dtype)
        .convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| format!("{name}: {e:?}"))?;
    Ok((values, dtype))
}

/// A matrix read from the file: its shape and row-major values.
type Matrix = (Vec<usize>, Vec<f32>);

/// The LoRA pairs of an `adapter_model.safetensors`, keyed by the weight they update.
fn read_pairs(bytes: &[u8], rank: usize) -> Result<Vec<LoraPair>, String> {
    let file = safetensors::SafeTensors::deserialize(bytes).map_err(|e| e.to_string())?;
    let mut halves: BTreeMap<String, [Option<Matrix>; 2]> = BTreeMap::new();
    let mut others = Vec::new();
    for (name, view) in file.tensors() {
        let module = name.strip_prefix(PEFT_PREFIX).unwrap_or(&name);
        let (module, half) = if let Some(m) = module.strip_suffix(".lora_A.weight") {
            (m, 0)
        } else if let Some(m) = module.strip_suffix(".lora_B.weight") {
            (m, 1)
        } else {
            others.push(name.clone());
            continue;
        };
        let shape = view.shape().to_vec();
        if shape.len() != 2 {
            return Err(format!("{name}: shape {shape:?}, expected a matrix"));
        }
        let (values, _) = f32_values(&name, &view)?;
        halves.entry(module.to_string()).or_default()[half] = Some((shape, values));
    }
    if !others.is_empty() {
        return Err(format!(
            "{} tensor(s) that are not LoRA matrices ({}): modules_to_save and trained biases are not supported by prottrans yet",
            others.len(),
            crate::compact_names(&others).join(", ")
        ));
    }
    let mut pairs = Vec::new();
    for (module, [a, b]) in halves {
        let (Some((a_shape, a)), Some((b_shape, b))) = (a, b) else {
            return Err(format!("{module}: lora_A and lora_B must come in pairs"));
        };
        if a_shape[0] != rank || b_shape[1] != rank {
            return Err(format!(
                "{module}: lora_A {a_shape:?} and lora_B {b_shape:?} do not have rank r = {rank} ([r, in] and [out, r])"
            ));
        }
        pairs.push(LoraPair {
            weight_key: format!("{module}.weight"),
            a,
            b,
            inputs: a_shape[1],
            outputs: b_shape[0],
        });
    }
    Ok(pairs)
}

/// Sizes and modification times of `paths`, hashed.
fn fingerprint(paths: &[&Path]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    for path in paths {
        if let Ok(meta) = std::fs::metadata(path) {
            meta.len().hash(&mut hasher);
            meta.modified().ok().hash(&mut hasher);
        }
    }
    hasher.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_pair_adds_its_scaled_product_transposed() {
        // A = [[1, 2, 3]] (r 1, in 3), B = [[1], [10]] (out 2): B A = [[1, 2, 3], [10, 20, 30]].
        let pair = LoraPair {
            weight_key: "w.weight".into(),
            a: vec![1.0, 2.0, 3.0],
            b: vec![1.0, 10.0],
            inputs: 3,
            outputs: 2,
        };
        let mut weight = vec![0.0; 6]; // [in 3, out 2]
        pair.add_to(&mut weight, 0.5);
        assert_eq!(weight, vec![0.5, 5.0, 1.0, 10.0, 1.5, 15.0]);
        let mut weight = vec![0.0; 6]; // [out 2, in 3]
        pair.add_to_out_in(&mut weight, 0.5);
        assert_eq!(weight, vec![0.5, 1.0, 1.5, 5.0, 10.0, 15.0]);
    }

    #[test]
    fn unsupported_settings_are_named() {
        let config = |extra: &str| -> LoraAdapterConfig {
            serde_json::from_str(&format!(
                r#"{{"peft_type": "LORA", "r": 4, "lora_alpha": 8{extra}}}"#
            ))
            .unwrap()
        };
        assert!(config("").check().is_ok());
        assert_eq!(config("").bias, "none");
        assert!(
            config(r#", "use_dora": true"#)
                .check()
                .unwrap_err()
                .contains("DoRA")
        );
        assert!(
            config(r#", "rank_pattern": {"query": 8}"#)
                .check()
                .unwrap_err()
                .contains("rank_pattern")
        );
        let mut prefix = config("");
        prefix.peft_type = "PREFIX_TUNING".into();
        assert!(prefix.check().unwrap_err().contains("LoRA adapters only"));
    }
}
