//! Left-to-right language modelling with segment-level recurrence, as Transformer-XL (ProtTXL).
//!
//! Each protein is framed `[CLS] residues [SEP]` and every token after `[CLS]` is predicted from
//! the ones before it. A batch is read in consecutive segments of `segment_length` tokens; each
//! segment attends to the memory the previous one left (gradient stopped), so the first token
//! of a segment is predicted from the last of the previous one and a protein longer than a
//! segment is still modelled whole. Right padding needs no mask: attention is causal.

use burn::data::dataloader::batcher::Batcher;
use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::tensor::{Device, Int, Tensor, TensorData};
use std::path::Path;

use burn::train::{ClassificationOutput, SupervisedTraining};
use prottrans_data::{BatchedSequences, ResidueBatch, Tokenizer};
use prottrans_models::{Objective, TransfoXlConfig, TransfoXlLmHeadModel};

use crate::baseline::UnigramBaseline;
use crate::error::TrainError;
use crate::objectives::mlm::MlmScores;
use crate::objectives::pretraining::{
    ObjectiveSettings, PretrainingObjective, ValidationScores, save_with_vocabulary, score_residues,
};
use crate::objectives::{StepSettings, next_token_metrics};

/// A framed batch on the host: which positions predict which token.
#[derive(Debug, Clone, PartialEq)]
pub struct NextTokenTargets {
    /// Sequences in the batch.
    pub batch: usize,
    /// Padded length (special tokens included).
    pub seq: usize,
    /// Model input, row-major `[batch, seq]`.
    pub input_ids: Vec<i64>,
    /// Flat indices (`row * seq + column`) of the positions that predict a token.
    pub positions: Vec<i64>,
    /// The token each of `positions` predicts (the next one).
    pub labels: Vec<i64>,
    /// Whether each label is a residue (the rest are the closing `[SEP]`).
    pub is_residue: Vec<bool>,
}

impl NextTokenTargets {
    /// Keeps only the residue targets (for per-residue perplexity).
    pub fn residues_only(mut self) -> Self {
        let keep: Vec<bool> = self.is_residue.clone();
        let filter = |values: Vec<i64>| {
            values
                .into_iter()
                .zip(&keep)
                .filter(|(_, k)| **k)
                .map(|(v, _)| v)
                .collect()
        };
        self.positions = filter(self.positions);
        self.labels = filter(self.labels);
        self.is_residue = vec![true; self.labels.len()];
        self
    }

    /// Moves the batch to `device`.
    pub fn to_tensors(self, device: &Device) -> NextTokenBatch {
        let n = self.positions.len();
        NextTokenBatch {
            input_ids: Tensor::from_data(
                TensorData::new(self.input_ids, [self.batch, self.seq]),
                device,
            ),
            positions: Tensor::from_data(TensorData::new(self.positions, [n]), device),
            labels: Tensor::from_data(TensorData::new(self.labels, [n]), device),
        }
    }
}

/// A batch as tensors.
#[derive(Debug, Clone)]
pub struct NextTokenBatch {
    /// `[batch, seq]`, right-padded.
    pub input_ids: Tensor<2, Int>,
    /// `[n]` flat positions that predict.
    pub positions: Tensor<1, Int>,
    /// `[n]` the tokens they predict.
    pub labels: Tensor<1, Int>,
}

/// Frames and pads [`ResidueBatch`]es for next-token prediction.
#[derive(Debug, Clone)]
pub struct CausalLmBatcher {
    tokenizer: Tokenizer,
}

impl CausalLmBatcher {
    /// A batcher for `tokenizer` (`[CLS] residues [SEP]`, right padding).
    pub fn new(tokenizer: Tokenizer) -> Self {
        Self { tokenizer }
    }

    /// Frames and pads one batch.
    pub fn frame(&self, batch: &ResidueBatch) -> NextTokenTargets {
        let rows = batch.sequences.len();
        let seq = batch.max_len() + self.tokenizer.num_special_tokens();
        let pad = i64::from(self.tokenizer.vocabulary().specials().pad);
        let mut input_ids = vec![pad; rows * seq];
        let (mut positions, mut labels, mut is_residue) = (Vec::new(), Vec::new(), Vec::new());
        for (row, residues) in batch.sequences.iter().enumerate() {
            let framed = self.tokenizer.frame(residues.iter().copied());
            let span = self.tokenizer.residue_span(residues.len());
            for (column, &id) in framed.iter().enumerate() {
                input_ids[row * seq + column] = i64::from(id);
                if column > 0 {
                    positions.push((row * seq + column - 1) as i64);
                    labels.push(i64::from(id));
                    is_residue.push(span.contains(&column));
                }
            }
        }
        NextTokenTargets {
            batch: rows,
            seq,
            input_ids,
            positions,
            labels,
            is_residue,
        }
    }
}

impl Batcher<ResidueBatch, NextTokenBatch> for CausalLmBatcher {
    fn batch(&self, items: Vec<ResidueBatch>, device: &Device) -> NextTokenBatch {
        self.frame(&ResidueBatch::merge(items)).to_tensors(device)
    }
}

/// A Transformer-XL under causal LM training.
#[derive(Module, Debug)]
pub struct CausalLm {
    /// The model.
    pub model: TransfoXlLmHeadModel,
    /// Loss scaling and precision.
    #[module(skip)]
    pub steps: StepSettings,
    /// Tokens per segment.
    #[module(skip)]
    pub segment_length: usize,
}

impl CausalLm {
    /// Wraps `model`, reading batches in segments of `segment_length` tokens.
    pub fn new(model: TransfoXlLmHeadModel, segment_length: usize) -> Self {
        Self {
            model,
            steps: StepSettings::default(),
            segment_length: segment_length.max(1),
        }
    }

    /// Runs steps with `steps`' loss scaling and precision.
    pub fn with_steps(mut self, steps: StepSettings) -> Self {
        self.steps = steps;
        self
    }

    /// Logits at the predicting positions, the batch read segment by segment with memory.
    ///
    /// # Shapes
    /// - input_ids: `[batch, seq]`, positions: `[n]` -> `[n, vocab]`
    pub fn logits_at(
        model: &TransfoXlLmHeadModel,
        segment_length: usize,
        input_ids: Tensor<2, Int>,
        positions: Tensor<1, Int>,
    ) -> Tensor<2> {
        let [batch, seq] = input_ids.dims();
        let hidden = model
            .transformer
            .forward_in_segments(input_ids, segment_length);
        let d = hidden.dims()[2];
        model.logits(hidden.reshape([batch * seq, d]).select(0, positions))
    }

    /// Loss, logits and targets of one batch.
    pub fn forward_loss(&self, batch: NextTokenBatch) -> ClassificationOutput {
        let model = self.steps.precision.autocast(&self.model);
        let logits = self.steps.precision.to_f32(Self::logits_at(
            &model,
            self.segment_length,
            batch.input_ids,
            batch.positions,
        ));
        let loss = CrossEntropyLossConfig::new()
            .init(&logits.device())
            .forward(logits.clone(), batch.labels.clone());
        ClassificationOutput::new(loss, logits, batch.labels)
    }

    /// Summed loss, correct predictions and predictions of one batch.
    pub fn score(&self, batch: NextTokenBatch) -> MlmScores {
        let logits = Self::logits_at(
            &self.model,
            self.segment_length,
            batch.input_ids,
            batch.positions,
        );
        MlmScores::of(logits, batch.labels)
    }
}

crate::objectives::classification_steps!([] CausalLm, NextTokenBatch);

impl PretrainingObjective for CausalLm {
    type Config = TransfoXlConfig;
    type Batcher = CausalLmBatcher;
    const OBJECTIVE: Objective = Objective::CausalLm;

    fn batcher(
        _: &TransfoXlConfig,
        _: &ObjectiveSettings,
        tokenizer: &Tokenizer,
    ) -> Result<CausalLmBatcher, TrainError> {
        Ok(CausalLmBatcher::new(tokenizer.clone()))
    }

    fn init(
        config: &TransfoXlConfig,
        settings: &ObjectiveSettings,
        steps: StepSettings,
        device: &Device,
    ) -> Self {
        Self::new(config.init(device), settings.segment_length).with_steps(steps)
    }

    fn describe(settings: &ObjectiveSettings) -> String {
        format!(", read in segments of {} tokens", settings.segment_length)
    }

    fn metrics(training: SupervisedTraining<Self>) -> SupervisedTraining<Self> {
        next_token_metrics(training)
    }

    fn save(
        &self,
        config: &TransfoXlConfig,
        dir: &Path,
        tokenizer: &Tokenizer,
    ) -> Result<(), TrainError> {
        save_with_vocabulary(&self.model, config, dir, tokenizer)
    }

    /// The next residue at every residue position (not `[SEP]`), so the perplexity is per
    /// residue as every other objective's.
    fn evaluate(
        &self,
        batcher: &CausalLmBatcher,
        baseline: &UnigramBaseline,
        data: &BatchedSequences,
        device: &Device,
        _: &ObjectiveSettings,
    ) -> Result<ValidationScores, TrainError> {
        score_residues(data, baseline, |batch| {
            let targets = batcher.frame(batch).residues_only();
            let labels = targets.labels.clone();
            Ok((self.score(targets.to_tensors(device)), labels))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_token_after_cls_is_predicted_from_the_one_before() {
        let batcher = CausalLmBatcher::new(Tokenizer::prot_bert());
        let batch = ResidueBatch {
            sequences: vec![vec![5, 6, 7], vec![8]],
            seed: 1,
        };
        let targets = batcher.frame(&batch);
        assert_eq!(targets.seq, 5);
        // Row 0: [CLS] L A G [SEP]; row 1: [CLS] V [SEP] [PAD] [PAD].
        assert_eq!(targets.input_ids, vec![2, 5, 6, 7, 3, 2, 8, 3, 0, 0]);
        assert_eq!(targets.positions, vec![0, 1, 2, 3, 5, 6]);
        assert_eq!(targets.labels, vec![5, 6, 7, 3, 8, 3]);
        assert_eq!(
            targets.is_residue,
            vec![true, true, true, false, true, false]
        );
        let residues = targets.residues_only();
        assert_eq!(residues.labels, vec![5, 6, 7, 8]);
        assert_eq!(residues.positions, vec![0, 1, 2, 5]);
    }
}
