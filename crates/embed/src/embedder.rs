//! A loaded checkpoint that turns protein sequences into embeddings.

use std::path::{Path, PathBuf};

use burn::tensor::{Device, Int, Tensor, TensorData};
use ndarray::{Array1, Array2, ArrayView2, Axis};
use prottrans_data::tokenizer::PaddingSide;
use prottrans_data::{Tokenizer, UnknownResidues};
use prottrans_import::{Checkpoint, checkpoint_tokenizer};
use prottrans_models::{Encoder, EncoderInput, ModelConfig, ProteinEncoder};

use crate::error::EmbedError;
pub use prottrans_backend::Precision;
pub use prottrans_kernels::MatmulPrecision;

/// A checkpoint loaded for inference, with the tokenizer of its architecture.
#[derive(Debug)]
pub struct Embedder {
    encoder: Encoder,
    config: ModelConfig,
    tokenizer: Tokenizer,
    device: Device,
    precision: Precision,
    matmul_precision: MatmulPrecision,
    source: PathBuf,
    segment_length: Option<usize>,
    skipped_tensors: Vec<String>,
    adapter: Option<(PathBuf, u64)>,
}

impl Embedder {
    /// Loads a Hugging Face checkpoint directory in f32.
    pub fn load(dir: impl AsRef<Path>, device: &Device) -> Result<Self, EmbedError> {
        Self::load_with_precision(dir, device, Precision::F32)
    }

    /// Loads a checkpoint directory at `precision`.
    ///
    /// f16 and bf16 make the device's default float type that precision, so they must be asked
    /// for before anything else has created tensors on `device`.
    pub fn load_with_precision(
        dir: impl AsRef<Path>,
        device: &Device,
        precision: Precision,
    ) -> Result<Self, EmbedError> {
        Self::load_checkpoint(&Checkpoint::open(dir)?, device, precision)
    }

    /// Loads an opened checkpoint at `precision` (open it [strict](Checkpoint::strict) to
    /// refuse tensors the encoder does not use).
    pub fn load_checkpoint(
        checkpoint: &Checkpoint,
        device: &Device,
        precision: Precision,
    ) -> Result<Self, EmbedError> {
        let dir = checkpoint.dir();
        let mut device = device.clone();
        precision
            .check(&device)
            .map_err(|e| EmbedError::Precision {
                precision: precision.to_string(),
                message: e.to_string(),
            })?;
        if device.settings().float_dtype != precision.dtype() {
            device
                .configure(precision.dtype())
                .map_err(|e| EmbedError::Precision {
                    precision: precision.to_string(),
                    message: e.to_string(),
                })?;
        }
        let config = checkpoint.config().clone();
        let tokenizer = checkpoint_tokenizer(dir, &config)?;
        let (mut encoder, skipped_tensors) =
            checkpoint.load_encoder_with_skipped(&device, precision.dtype())?;
        // XLNet and Transformer-XL set their memory up as their authors embed (see
        // `ProteinEncoder::prepare_for_embedding`).
        let segment_length = encoder.prepare_for_embedding();
        Ok(Self {
            segment_length,
            skipped_tensors,
            encoder,
            config,
            tokenizer,
            device,
            precision,
            matmul_precision: MatmulPrecision::F32,
            source: dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf()),
            adapter: checkpoint.adapter().map(|adapter| {
                let dir = adapter.dir();
                (
                    dir.canonicalize().unwrap_or_else(|_| dir.to_path_buf()),
                    adapter.fingerprint(),
                )
            }),
        })
    }

    /// The LoRA adapter merged into the weights on loading (its directory and a stamp of its
    /// files), if any.
    pub fn adapter(&self) -> Option<(&Path, u64)> {
        self.adapter
            .as_ref()
            .map(|(dir, stamp)| (dir.as_path(), *stamp))
    }

    /// The checkpoint's tensors the encoder does not use and were skipped (poolers, heads,
    /// buffers), by their checkpoint names.
    pub fn skipped_tensors(&self) -> &[String] {
        &self.skipped_tensors
    }

    /// Sets what happens to residue letters the checkpoint's vocabulary lacks (by default they
    /// become its unknown token, as its own tokenizer does).
    pub fn with_unknown_residues(mut self, unknown: UnknownResidues) -> Self {
        self.tokenizer = self.tokenizer.with_unknown_residues(unknown);
        self
    }

    /// Length of the segments a protein read alone is split into, for architectures with a
    /// memory (XLNet, Transformer-XL); `None` reads every protein in one pass.
    pub fn segment_length(&self) -> Option<usize> {
        self.segment_length
    }

    /// Whether the architecture has a memory to read a protein in segments with (XLNet,
    /// Transformer-XL).
    pub fn has_segment_memory(&self) -> bool {
        self.encoder.has_segment_memory()
    }

    /// Sets the segment length (see [`Self::segment_length`]); ignored by architectures
    /// without memory.
    pub fn with_segment_length(mut self, segment_length: Option<usize>) -> Self {
        if self.encoder.has_segment_memory() {
            self.segment_length = segment_length.filter(|&n| n > 0);
        }
        self
    }

    /// The checkpoint directory the model was loaded from.
    pub fn source(&self) -> &Path {
        &self.source
    }

    /// The model configuration.
    pub fn config(&self) -> &ModelConfig {
        &self.config
    }

    /// The tokenizer of the model.
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// The device the model runs on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// The precision of the weights and the forward pass.
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// How the linear layers multiply f32 matrices (see [`Self::with_matmul_precision`]).
    pub fn matmul_precision(&self) -> MatmulPrecision {
        self.matmul_precision
    }

    /// Sets how the linear layers multiply f32 matrices on flex: [`MatmulPrecision::Bf16`]
    /// rounds their operands to bf16 and sums in f32 on the CPU's AMX units, where it has them
    /// ([`Self::bf16_products_run`]); weights, activations, attention and outputs stay f32.
    pub fn with_matmul_precision(mut self, precision: MatmulPrecision) -> Self {
        self.matmul_precision = precision;
        self
    }

    /// Whether the products really run in bf16: asked for, an f32 model on flex, and a CPU with
    /// AMX-BF16. Otherwise they are the device's own, at the model's precision.
    pub fn bf16_products_run(&self) -> bool {
        self.matmul_precision == MatmulPrecision::Bf16
            && prottrans_kernels::bf16_products_on(&self.device)
    }

    /// Width of the embeddings.
    pub fn hidden_size(&self) -> usize {
        self.encoder.hidden_size()
    }

    /// The longest protein (in residues) the model can take, if positions are learned.
    pub fn max_residues(&self) -> Option<usize> {
        self.config
            .max_tokens()
            .map(|tokens| tokens.saturating_sub(self.tokenizer.num_special_tokens()))
    }

    /// Bytes one attention layer holds per (query, key) pair of positions on this device and
    /// precision (see [`ArchitectureConfig::attention_bytes_per_pair`](prottrans_models::ArchitectureConfig::attention_bytes_per_pair));
    /// 0 when memory grows linearly with the length.
    pub fn attention_bytes_per_pair(&self) -> u64 {
        let fused = self.precision == Precision::F32 && prottrans_kernels::fused_on(&self.device);
        self.config.attention_bytes_per_pair(fused)
    }

    /// The longest protein whose attention fits in `budget` bytes where attention memory grows
    /// with the square of the length; `None` where it does not (or the protein runs in
    /// segments of bounded length).
    pub fn attention_length_limit(&self, budget: u64) -> Option<usize> {
        let per_pair = self.attention_bytes_per_pair();
        if per_pair == 0 || self.segment_length.is_some() {
            return None;
        }
        let tokens = (budget / per_pair).isqrt() as usize;
        Some(tokens.saturating_sub(self.tokenizer.num_special_tokens()))
    }

    /// Per-residue embeddings `[L, d]` of one raw sequence (any case; U, Z, O, B as the
    /// tokenizer is set).
    pub fn embed(&self, sequence: &str) -> Result<Array2<f32>, EmbedError> {
        let ids = self
            .tokenizer
            .encode_residues("sequence", sequence.as_bytes())?;
        let mut out = self.embed_residue_ids(&[&ids])?;
        Ok(out.remove(0))
    }

    /// Per-residue embeddings of several raw sequences, run as one padded batch.
    pub fn embed_many(&self, sequences: &[&str]) -> Result<Vec<Array2<f32>>, EmbedError> {
        let ids = sequences
            .iter()
            .enumerate()
            .map(|(i, s)| {
                self.tokenizer
                    .encode_residues(&format!("sequence {}", i + 1), s.as_bytes())
            })
            .collect::<Result<Vec<_>, _>>()?;
        let refs: Vec<&[u32]> = ids.iter().map(Vec::as_slice).collect();
        self.embed_residue_ids(&refs)
    }

    /// Per-residue embeddings of a batch of tokenised proteins (residue ids, without special
    /// tokens), run as one padded forward pass. Special tokens and padding are dropped; each
    /// result is the same as the protein run alone, to rounding.
    ///
    /// With a [segment length](Self::segment_length), a protein longer than one segment runs
    /// alone through the memory, whatever it is batched with, so its embedding depends on the
    /// protein only.
    ///
    /// # Shapes
    /// - `residues[i]`: `[L_i]` -> result `i`: `[L_i, d]`
    pub fn embed_residue_ids(&self, residues: &[&[u32]]) -> Result<Vec<Array2<f32>>, EmbedError> {
        if residues.is_empty() {
            return Ok(Vec::new());
        }
        if let Some(limit) = self.max_residues()
            && let Some(long) = residues.iter().find(|r| r.len() > limit)
        {
            return Err(EmbedError::Options(format!(
                "a sequence of {} residues is longer than the model's {limit}",
                long.len()
            )));
        }
        if let Some(empty) = residues.iter().position(|r| r.is_empty()) {
            return Err(EmbedError::Options(format!(
                "sequence {} is empty",
                empty + 1
            )));
        }
        let specials = self.tokenizer.num_special_tokens();
        if let Some(segment) = self.segment_length
            && residues.len() > 1
            && residues.iter().any(|r| r.len() + specials > segment)
        {
            let (long, short): (Vec<usize>, Vec<usize>) =
                (0..residues.len()).partition(|&i| residues[i].len() + specials > segment);
            let mut out: Vec<Option<Array2<f32>>> = vec![None; residues.len()];
            for i in long {
                out[i] = self.embed_residue_ids(&[residues[i]])?.pop();
            }
            let batch: Vec<&[u32]> = short.iter().map(|&i| residues[i]).collect();
            for (i, embedding) in short.into_iter().zip(self.embed_residue_ids(&batch)?) {
                out[i] = Some(embedding);
            }
            return Ok(out
                .into_iter()
                .map(|e| e.expect("every protein was embedded once"))
                .collect());
        }
        let framed: Vec<Vec<u32>> = residues
            .iter()
            .map(|r| self.tokenizer.frame(r.iter().copied()))
            .collect();
        let batch = framed.len();
        let width = framed.iter().map(Vec::len).max().unwrap_or(0);
        let vocabulary = self.tokenizer.vocabulary();
        let pad = i64::from(vocabulary.specials().pad);
        let left = vocabulary.padding_side() == PaddingSide::Left;
        let mut ids = vec![pad; batch * width];
        let mut mask = vec![0i64; batch * width];
        let mut offsets = Vec::with_capacity(batch);
        for (row, tokens) in framed.iter().enumerate() {
            let offset = if left { width - tokens.len() } else { 0 };
            offsets.push(offset);
            let start = row * width + offset;
            for (k, &id) in tokens.iter().enumerate() {
                ids[start + k] = i64::from(id);
                mask[start + k] = 1;
            }
        }
        let shape = [batch, width];
        let ids = Tensor::<2, Int>::from_data(TensorData::new(ids, shape), &self.device);
        // Long proteins run alone, and equal lengths are common: no padding, no mask.
        let input = if framed.iter().all(|t| t.len() == width) {
            EncoderInput::unpadded(ids)
        } else {
            EncoderInput::new(
                ids,
                Tensor::<2, Int>::from_data(TensorData::new(mask, shape), &self.device),
            )
        };
        let data = prottrans_kernels::with_matmul_precision(self.matmul_precision, || {
            let hidden = match (self.segment_length, &input.attention_mask) {
                (Some(segment), None) if width > segment => self
                    .encoder
                    .encode_in_segments(input.input_ids, segment)
                    .expect("only architectures with memory have a segment length"),
                _ => self.encoder.encode(input).last_hidden_state,
            };
            hidden.into_data()
        });
        let d = self.hidden_size();
        let values = data
            .convert::<f32>()
            .try_into_vec::<f32>()
            .map_err(|e| EmbedError::Options(format!("reading the model output: {e:?}")))?;
        let all = ArrayView2::from_shape((batch * width, d), &values)
            .map_err(|e| EmbedError::Options(format!("model output shape: {e}")))?;
        Ok(residues
            .iter()
            .enumerate()
            .map(|(row, r)| {
                let span = self.tokenizer.residue_span(r.len());
                let start = row * width + offsets[row] + span.start;
                all.slice(ndarray::s![start..start + r.len(), ..])
                    .to_owned()
            })
            .collect())
    }
}

/// The per-protein embedding: the mean of the per-residue embeddings over residues only
/// (accumulated in f64).
pub fn mean_over_residues(residues: &Array2<f32>) -> Array1<f32> {
    residues
        .mapv(f64::from)
        .mean_axis(Axis(0))
        .map(|mean| mean.mapv(|x| x as f32))
        .unwrap_or_else(|| Array1::zeros(residues.ncols()))
}
