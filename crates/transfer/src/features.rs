//! What the heads read: per-residue feature matrices `[L, d]`, one per protein.
//!
//! - [`FeatureSpec::Model`]: embeddings of a checkpoint, computed in this process (batched
//!   longest-first like `prottrans embed`).
//! - [`FeatureSpec::Embeddings`]: embeddings precomputed by `prottrans embed` (.h5 or .npz),
//!   looked up by protein id. Per-protein files (`--per-protein`) give `[1, d]`.
//! - [`FeatureSpec::OneHot`]: the one-hot baseline, 20 standard residues plus one column for
//!   everything else.
//! - [`FeatureSpec::Composition`]: the amino-acid composition baseline for per-protein tasks,
//!   `[1, 20]` frequencies.
//!
//! A `[1, d]` matrix is an already pooled protein: every pooling gives it back unchanged.

use std::path::{Path, PathBuf};
use std::time::Instant;

use burn::tensor::Device;
use indicatif::{ProgressBar, ProgressStyle};
use ndarray::{Array2, Ix1, Ix2};
use prottrans_embed::output::EmbeddingFile;
use prottrans_embed::{EmbedError, Embedder, Precision, plan_batches, protein_key};
use serde::{Deserialize, Serialize};

use crate::error::TransferError;

/// The 20 standard residues, in the column order of the one-hot and composition baselines.
pub const STANDARD_RESIDUES: &[u8; 20] = b"ACDEFGHIKLMNPQRSTVWY";

/// Where a head's input features come from.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum FeatureSpec {
    /// A checkpoint directory (Hugging Face layout), run at `precision`.
    Model {
        /// The checkpoint directory.
        dir: PathBuf,
        /// `f32`, `f16` or `bf16`.
        precision: String,
        /// A LoRA adapter (PEFT layout) merged into the checkpoint's weights.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        adapter: Option<PathBuf>,
    },
    /// Precomputed embeddings of width `width`; each run names its file.
    Embeddings {
        /// The embedding width.
        width: usize,
    },
    /// One-hot residues (21 columns).
    OneHot,
    /// Amino-acid composition (20 columns, one row per protein).
    Composition,
}

impl FeatureSpec {
    /// A short description for reports.
    pub fn describe(&self) -> String {
        match self {
            FeatureSpec::Model {
                dir,
                precision,
                adapter,
            } => format!(
                "model {} ({precision}){}",
                dir.display(),
                adapter
                    .as_ref()
                    .map_or(String::new(), |a| format!(" with adapter {}", a.display()))
            ),
            FeatureSpec::Embeddings { width } => format!("precomputed embeddings (width {width})"),
            FeatureSpec::OneHot => "one-hot residues".into(),
            FeatureSpec::Composition => "amino-acid composition".into(),
        }
    }

    /// [`describe`](Self::describe) with the last two components of the checkpoint's path
    /// (`run/model`) instead of all of it, for plot titles: a picture should not carry the
    /// paths of the machine that made it.
    pub fn short_description(&self) -> String {
        match self {
            FeatureSpec::Model {
                dir,
                precision,
                adapter,
            } => {
                let parts: Vec<_> = dir.components().map(|c| c.as_os_str()).collect();
                let tail = PathBuf::from_iter(&parts[parts.len().saturating_sub(2)..]);
                let lora = if adapter.is_some() { " + LoRA" } else { "" };
                format!("model {}{lora} ({precision})", tail.display())
            }
            other => other.describe(),
        }
    }
}

/// A protein to compute features for.
#[derive(Debug, Clone, Copy)]
pub struct ProteinRef<'a> {
    /// Its id (the key in embedding files).
    pub id: &'a str,
    /// Its residues.
    pub sequence: &'a str,
}

/// One-hot matrix `[L, 21]`: the 20 standard residues, then "other" (X, B, Z, U, O).
pub fn one_hot(sequence: &str) -> Array2<f32> {
    let mut out = Array2::zeros((sequence.len(), STANDARD_RESIDUES.len() + 1));
    for (i, residue) in sequence.bytes().enumerate() {
        let column = STANDARD_RESIDUES
            .iter()
            .position(|&r| r == residue)
            .unwrap_or(STANDARD_RESIDUES.len());
        out[[i, column]] = 1.0;
    }
    out
}

/// Amino-acid composition `[1, 20]`: the fraction of each standard residue.
pub fn composition(sequence: &str) -> Array2<f32> {
    let mut out = Array2::zeros((1, STANDARD_RESIDUES.len()));
    for residue in sequence.bytes() {
        if let Some(column) = STANDARD_RESIDUES.iter().position(|&r| r == residue) {
            out[[0, column]] += 1.0;
        }
    }
    out /= sequence.len().max(1) as f32;
    out
}

/// Computes the features of `proteins`. `embeddings` is the file for [`FeatureSpec::Embeddings`].
pub fn compute_features(
    spec: &FeatureSpec,
    proteins: &[ProteinRef<'_>],
    embeddings: Option<&Path>,
    device: &Device,
) -> Result<Vec<Array2<f32>>, TransferError> {
    match (spec, embeddings) {
        (_, Some(path)) => read_embeddings(path, proteins),
        (FeatureSpec::Embeddings { .. }, None) => Err(TransferError::Invalid(
            "these features are precomputed embeddings: pass the embeddings file of these proteins (--embeddings)".into(),
        )),
        (FeatureSpec::OneHot, None) => Ok(proteins.iter().map(|p| one_hot(p.sequence)).collect()),
        (FeatureSpec::Composition, None) => Ok(proteins.iter().map(|p| composition(p.sequence)).collect()),
        (FeatureSpec::Model { dir, precision, adapter }, None) => {
            let precision = precision.parse::<Precision>().map_err(|e| TransferError::Invalid(e.to_string()))?;
            let checkpoint = prottrans_import::Checkpoint::open(dir).map_err(EmbedError::from)?;
            let checkpoint = match adapter {
                Some(adapter) => checkpoint.with_adapter(std::sync::Arc::new(
                    prottrans_import::LoraAdapter::read(adapter).map_err(EmbedError::from)?,
                )),
                None => checkpoint,
            };
            let embedder = Embedder::load_checkpoint(&checkpoint, device, precision)?;
            embed_with(&embedder, proteins)
        }
    }
}

/// Per-residue embeddings of `proteins` with a loaded model, longest first in batches of at
/// most 4,000 residues and 100 proteins, with a progress bar.
pub fn embed_with(
    embedder: &Embedder,
    proteins: &[ProteinRef<'_>],
) -> Result<Vec<Array2<f32>>, TransferError> {
    if let Some(limit) = embedder.max_residues()
        && let Some(long) = proteins.iter().find(|p| p.sequence.len() > limit)
    {
        return Err(TransferError::Invalid(format!(
            "protein '{}' has {} residues but {} takes at most {limit}; nothing is truncated: leave such proteins out (train-head and evaluate: --max-length {limit})",
            long.id,
            long.sequence.len(),
            embedder.source().display()
        )));
    }
    let lengths: Vec<usize> = proteins.iter().map(|p| p.sequence.len()).collect();
    let total: usize = lengths.iter().sum();
    let bar = progress_bar(total as u64, "embedding");
    let started = Instant::now();
    let mut out: Vec<Option<Array2<f32>>> = vec![None; proteins.len()];
    for batch in plan_batches(&lengths, 4000, 100, 1000) {
        let sequences: Vec<&str> = batch.iter().map(|&i| proteins[i].sequence).collect();
        let embedded = embedder.embed_many(&sequences)?;
        for (&i, matrix) in batch.iter().zip(embedded) {
            bar.inc(lengths[i] as u64);
            out[i] = Some(matrix);
        }
    }
    bar.finish_and_clear();
    eprintln!(
        "embedded {} proteins ({total} residues) in {:.1}s",
        proteins.len(),
        started.elapsed().as_secs_f64()
    );
    out.into_iter()
        .enumerate()
        .map(|(i, m)| {
            m.ok_or_else(|| {
                TransferError::Invalid(format!("protein '{}' was not embedded", proteins[i].id))
            })
        })
        .collect()
}

fn read_embeddings(
    path: &Path,
    proteins: &[ProteinRef<'_>],
) -> Result<Vec<Array2<f32>>, TransferError> {
    let mut file = EmbeddingFile::open(path)?;
    let keys: std::collections::HashSet<String> = file.keys()?.into_iter().collect();
    let missing: Vec<&str> = proteins
        .iter()
        .filter(|p| !keys.contains(&protein_key(p.id)))
        .map(|p| p.id)
        .collect();
    if !missing.is_empty() {
        return Err(TransferError::Embeddings {
            path: path.to_path_buf(),
            message: format!(
                "{} of {} proteins have no embedding (first: {}); embed the same proteins with `prottrans embed`",
                missing.len(),
                proteins.len(),
                missing
                    .iter()
                    .take(5)
                    .copied()
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        });
    }
    let mut width = None;
    let mut out = Vec::with_capacity(proteins.len());
    for protein in proteins {
        let key = protein_key(protein.id);
        let array = file.read(&key)?;
        let shape = array.shape().to_vec();
        let matrix = match array.ndim() {
            1 => array
                .into_dimensionality::<Ix1>()
                .map(|a| a.insert_axis(ndarray::Axis(0)))
                .ok(),
            2 if shape[0] == protein.sequence.len() => array.into_dimensionality::<Ix2>().ok(),
            _ => None,
        };
        let Some(matrix) = matrix else {
            return Err(TransferError::Embeddings {
                path: path.to_path_buf(),
                message: format!(
                    "'{key}' has shape {shape:?}; expected [{}, d] (per residue) or [d] (per protein)",
                    protein.sequence.len()
                ),
            });
        };
        let d = matrix.ncols();
        if *width.get_or_insert(d) != d {
            return Err(TransferError::Embeddings {
                path: path.to_path_buf(),
                message: format!(
                    "'{key}' has width {d}, earlier entries {}",
                    width.unwrap_or(0)
                ),
            });
        }
        out.push(matrix);
    }
    Ok(out)
}

/// A residue-counting bar on a terminal, nothing in logs.
pub(crate) fn progress_bar(total: u64, what: &str) -> ProgressBar {
    if !std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template(
            "{prefix:>10} [{bar:30}] {pos}/{len} residues {per_sec} eta {eta}",
        )
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> "),
    );
    bar.set_prefix(what.to_string());
    bar
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_hot_and_composition() {
        let m = one_hot("ACX");
        assert_eq!(m.shape(), &[3, 21]);
        assert_eq!(m[[0, 0]], 1.0);
        assert_eq!(m[[1, 1]], 1.0);
        assert_eq!(m[[2, 20]], 1.0);
        assert_eq!(m.sum(), 3.0);
        let c = composition("AACX");
        assert_eq!(c.shape(), &[1, 20]);
        assert_eq!(c[[0, 0]], 0.5);
        assert_eq!(c[[0, 1]], 0.25);
    }

    #[test]
    fn plot_titles_name_the_checkpoint_without_its_full_path() {
        let spec = FeatureSpec::Model {
            dir: PathBuf::from("/work/runs/pretrain_small/model"),
            precision: "f32".into(),
            adapter: None,
        };
        assert_eq!(spec.short_description(), "model pretrain_small/model (f32)");
        assert!(spec.describe().contains("/work/runs/"));
        let relative = FeatureSpec::Model {
            dir: PathBuf::from("model"),
            precision: "bf16".into(),
            adapter: None,
        };
        assert_eq!(relative.short_description(), "model model (bf16)");
        assert_eq!(FeatureSpec::OneHot.short_description(), "one-hot residues");
    }
}
