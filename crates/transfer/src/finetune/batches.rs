//! Proteins as token ids, and batches of them framed and padded as the checkpoint's tokenizer
//! does, with where each residue sits.

use std::sync::Arc;

use burn::data::dataloader::batcher::Batcher;
use burn::tensor::{Device, Int, Tensor, TensorData};
use prottrans_data::Tokenizer;
use prottrans_data::tokenizer::PaddingSide;
use prottrans_models::EncoderInput;

use crate::batches::pad_targets;

/// One protein: residue token ids and labels per task.
#[derive(Debug, Clone)]
pub struct TokenExample {
    /// Residue ids, without special tokens.
    pub residues: Arc<Vec<u32>>,
    /// Per task: per-residue labels or one per-protein label.
    pub labels: Vec<Vec<i64>>,
}

/// A padded batch of framed proteins, with where their residues sit.
#[derive(Debug, Clone)]
pub struct TokenBatch {
    /// Ids, mask and token types for the encoder.
    pub input: EncoderInput,
    /// Flat index (`row * width + column`) of each residue slot, `[B * L]` (0 at padding).
    pub residue_index: Tensor<1, Int>,
    /// `[B, L]`, 1 at residues.
    pub residue_mask: Tensor<2>,
    /// Per task: `[B * L]` (per residue, padding unknown) or `[B]` (per protein).
    pub targets: Vec<Tensor<1, Int>>,
}

/// Frames and pads [`TokenExample`]s as the checkpoint's tokenizer does.
#[derive(Debug, Clone)]
pub struct TokenBatcher {
    /// The checkpoint's tokenizer.
    pub tokenizer: Tokenizer,
    /// Labels are per residue (secondary structure) rather than per protein.
    pub per_residue: bool,
}

impl TokenBatcher {
    /// Builds the batch on `device`.
    pub fn build(&self, items: &[TokenExample], device: &Device) -> TokenBatch {
        let framed: Vec<Vec<u32>> = items
            .iter()
            .map(|e| self.tokenizer.frame(e.residues.iter().copied()))
            .collect();
        let b = items.len();
        let width = framed.iter().map(Vec::len).max().unwrap_or(1).max(1);
        let l = items
            .iter()
            .map(|e| e.residues.len())
            .max()
            .unwrap_or(1)
            .max(1);
        let vocabulary = self.tokenizer.vocabulary();
        let pad = i64::from(vocabulary.specials().pad);
        let left = vocabulary.padding_side() == PaddingSide::Left;
        let mut ids = vec![pad; b * width];
        let mut mask = vec![0i64; b * width];
        let mut residue_index = vec![0i64; b * l];
        let mut residue_mask = vec![0f32; b * l];
        for (row, (tokens, example)) in framed.iter().zip(items).enumerate() {
            let offset = if left { width - tokens.len() } else { 0 };
            let start = row * width + offset;
            for (k, &id) in tokens.iter().enumerate() {
                ids[start + k] = i64::from(id);
                mask[start + k] = 1;
            }
            let span = self.tokenizer.residue_span(example.residues.len());
            for i in 0..example.residues.len() {
                residue_index[row * l + i] = (start + span.start + i) as i64;
                residue_mask[row * l + i] = 1.0;
            }
        }
        let shape = [b, width];
        let input_ids = Tensor::<2, Int>::from_data(TensorData::new(ids, shape), device);
        let input = if framed.iter().all(|t| t.len() == width) {
            EncoderInput::unpadded(input_ids)
        } else {
            EncoderInput::new(
                input_ids,
                Tensor::<2, Int>::from_data(TensorData::new(mask, shape), device),
            )
        };
        let labels: Vec<&[Vec<i64>]> = items.iter().map(|e| e.labels.as_slice()).collect();
        let targets = pad_targets(&labels, self.per_residue, l, device);
        TokenBatch {
            input,
            residue_index: Tensor::from_data(TensorData::new(residue_index, [b * l]), device),
            residue_mask: Tensor::from_data(TensorData::new(residue_mask, [b, l]), device),
            targets,
        }
    }
}

/// A planned batch: its proteins.
pub type PlannedBatch = Vec<TokenExample>;

impl Batcher<PlannedBatch, TokenBatch> for TokenBatcher {
    fn batch(&self, items: Vec<PlannedBatch>, device: &Device) -> TokenBatch {
        let proteins: Vec<TokenExample> = items.into_iter().flatten().collect();
        self.build(&proteins, device)
    }
}
