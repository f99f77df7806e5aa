//! What a run writes for other tools (the adapter in PEFT's layout, the fine-tuned or merged
//! checkpoint), and the check that it reproduces the trained encoder.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use burn::module::Module;
use burn::store::ModuleSnapshot;
use burn::tensor::Tensor;
use prottrans_embed::{Embedder, Precision};
use prottrans_import::{Checkpoint, LoraAdapter};

use super::{ADAPTER_DIR, Finetuning, MODEL_DIR, Method, TokenExample, import_error};
use crate::error::TransferError;
use crate::features::FeatureSpec;

/// Where the written model is.
pub(crate) struct Written {
    /// What a head on the fine-tuned encoder reads (`head.json`).
    pub features: FeatureSpec,
    pub adapter_dir: Option<PathBuf>,
    pub model_dir: Option<PathBuf>,
}

/// Writes the adapter (LoRA; with `merge`, the merged checkpoint too) or the fine-tuned
/// checkpoint (full) of `encoder`, loaded from `checkpoint`; `names` maps its module paths to
/// the checkpoint's names.
pub(crate) fn write<E: Module + ModuleSnapshot>(
    run: &Finetuning,
    checkpoint: &Checkpoint,
    encoder: &E,
    names: &BTreeMap<String, String>,
) -> Result<Written, TransferError> {
    let options = &run.options;
    let (features, adapter_dir, model_dir) = match &options.method {
        Method::Lora { rank, alpha, .. } => {
            let adapter_dir = run.out.join(ADAPTER_DIR);
            replace_dir(&adapter_dir)?;
            let base = run
                .model
                .canonicalize()
                .unwrap_or_else(|_| run.model.clone());
            let adapter = LoraAdapter::from_module(
                encoder,
                names,
                *rank,
                *alpha,
                Some(base.display().to_string()),
            )
            .and_then(|adapter| adapter.save(&adapter_dir))
            .map_err(import_error)?;
            let model_dir = if run.merge {
                let model_dir = run.out.join(MODEL_DIR);
                replace_dir(&model_dir)?;
                if checkpoint.format() == prottrans_import::WeightsFormat::Safetensors {
                    adapter
                        .write_merged(checkpoint.dir(), &model_dir)
                        .map_err(import_error)?;
                } else {
                    checkpoint
                        .save_encoder(&encoder.clone().materialize(), &model_dir)
                        .map_err(import_error)?;
                }
                Some(model_dir)
            } else {
                None
            };
            let adapter_dir = canonical(&adapter_dir);
            (
                FeatureSpec::Model {
                    dir: base,
                    precision: "f32".into(),
                    adapter: Some(adapter_dir.clone()),
                },
                Some(adapter_dir),
                model_dir.map(|d| canonical(&d)),
            )
        }
        Method::Full => {
            let model_dir = run.out.join(MODEL_DIR);
            replace_dir(&model_dir)?;
            checkpoint
                .save_encoder(encoder, &model_dir)
                .map_err(import_error)?;
            let model_dir = canonical(&model_dir);
            (
                FeatureSpec::Model {
                    dir: model_dir.clone(),
                    precision: "f32".into(),
                    adapter: None,
                },
                None,
                Some(model_dir),
            )
        }
    };
    Ok(Written {
        features,
        adapter_dir,
        model_dir,
    })
}

/// Largest difference between `trained` (`[B, L, d]` hidden states of `examples`, as the
/// trained encoder computed them) and the same proteins embedded by the model the run wrote.
pub(crate) fn reload_difference(
    features: &FeatureSpec,
    examples: &[TokenExample],
    trained: &Tensor<3>,
) -> Result<f64, TransferError> {
    let FeatureSpec::Model { dir, adapter, .. } = features else {
        return Ok(0.0);
    };
    let checkpoint = Checkpoint::open(dir).map_err(import_error)?;
    let checkpoint = match adapter {
        Some(adapter) => {
            checkpoint.with_adapter(Arc::new(LoraAdapter::read(adapter).map_err(import_error)?))
        }
        None => checkpoint,
    };
    let embedder = Embedder::load_checkpoint(&checkpoint, &trained.device(), Precision::F32)?;
    let [_, l, d] = trained.dims();
    let values = trained
        .clone()
        .into_data()
        .convert::<f32>()
        .try_into_vec::<f32>()
        .map_err(|e| TransferError::Invalid(format!("{e:?}")))?;
    let ids: Vec<&[u32]> = examples.iter().map(|e| e.residues.as_slice()).collect();
    let mut worst = 0f64;
    for (row, embedded) in embedder.embed_residue_ids(&ids)?.iter().enumerate() {
        for (i, residue) in embedded.rows().into_iter().enumerate() {
            let start = (row * l + i) * d;
            for (a, b) in residue.iter().zip(&values[start..start + d]) {
                worst = worst.max(f64::from((a - b).abs()));
            }
        }
    }
    Ok(worst)
}

pub(crate) fn canonical(path: &Path) -> PathBuf {
    path.canonicalize().unwrap_or_else(|_| path.to_path_buf())
}

/// Removes an earlier run's output directory (a resumed or repeated run writes it anew).
fn replace_dir(dir: &Path) -> Result<(), TransferError> {
    if dir.exists() {
        std::fs::remove_dir_all(dir).map_err(TransferError::io(dir))?;
    }
    Ok(())
}
