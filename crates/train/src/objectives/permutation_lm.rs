//! Permutation language modelling with partial prediction, as XLNet (ProtXLNet).
//!
//! For each protein (`residues <sep> <cls>`, left-padded) a factorisation order is sampled: a
//! random `1/K` of its residues (`partial_prediction` K, XLNet's 6) become targets, placed last
//! in the order and shuffled; everything else is context, placed first. The permutation mask
//! lets context see context only, and a target see context and the targets before it in the
//! order. The query stream predicts each target from its position alone; the content stream,
//! which sees its own token, feeds the keys. Inputs are never corrupted.
//!
//! Two simplifications against XLNet's own `_local_perm`: targets are single residues, not
//! spans, and `<sep> <cls>` are context every position sees (XLNet keeps such functional
//! tokens inside the permutation, hidden from positions earlier in the order).

use burn::data::dataloader::batcher::Batcher;
use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::tensor::{Bool, Device, Int, Tensor, TensorData};
use std::path::Path;

use burn::train::{ClassificationOutput, SupervisedTraining};
use prottrans_data::{BatchedSequences, ResidueBatch, Tokenizer};
use prottrans_models::{Objective, XlnetConfig, XlnetInput, XlnetLmHeadModel};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;

use crate::baseline::UnigramBaseline;
use crate::error::TrainError;
use crate::objectives::mlm::MlmScores;
use crate::objectives::pretraining::{
    ObjectiveSettings, PretrainingObjective, ValidationScores, save_with_vocabulary, score_residues,
};
use crate::objectives::{StepSettings, next_token_metrics};

/// XLNet's partial-prediction constant: a sixth of the residues is predicted.
pub const DEFAULT_PARTIAL_PREDICTION: usize = 6;

/// A permuted batch on the host.
#[derive(Debug, Clone, PartialEq)]
pub struct PermutedSequences {
    /// Sequences in the batch.
    pub batch: usize,
    /// Padded length.
    pub seq: usize,
    /// Most targets in one sequence.
    pub targets: usize,
    /// `[batch, seq]`, left-padded.
    pub input_ids: Vec<i64>,
    /// `[batch, seq]`, 1 at tokens.
    pub attention_mask: Vec<i64>,
    /// `[batch, seq, seq]`: `true` where position `i` may not see position `j`.
    pub perm_mask: Vec<bool>,
    /// `[batch, targets, seq]` one-hot rows (all zero for a sequence with fewer targets).
    pub target_mapping: Vec<f32>,
    /// Flat indices (`row * targets + k`) of the real target rows.
    pub rows: Vec<i64>,
    /// The residue at each of `rows`.
    pub labels: Vec<i64>,
}

impl PermutedSequences {
    /// Moves the batch to `device`.
    pub fn to_tensors(self, device: &Device) -> PermutedBatch {
        let (b, t, p, n) = (self.batch, self.seq, self.targets, self.rows.len());
        PermutedBatch {
            input_ids: Tensor::from_data(TensorData::new(self.input_ids, [b, t]), device),
            attention_mask: self
                .attention_mask
                .contains(&0)
                .then(|| Tensor::from_data(TensorData::new(self.attention_mask, [b, t]), device)),
            perm_mask: Tensor::from_data(TensorData::new(self.perm_mask, [b, t, t]), device),
            target_mapping: Tensor::from_data(
                TensorData::new(self.target_mapping, [b, p, t]),
                device,
            ),
            rows: Tensor::from_data(TensorData::new(self.rows, [n]), device),
            labels: Tensor::from_data(TensorData::new(self.labels, [n]), device),
        }
    }
}

/// A permuted batch as tensors.
#[derive(Debug, Clone)]
pub struct PermutedBatch {
    /// `[batch, seq]`.
    pub input_ids: Tensor<2, Int>,
    /// `[batch, seq]`; `None` when nothing is padded.
    pub attention_mask: Option<Tensor<2, Int>>,
    /// `[batch, seq, seq]`.
    pub perm_mask: Tensor<3, Bool>,
    /// `[batch, targets, seq]`.
    pub target_mapping: Tensor<3>,
    /// `[n]` real target rows of the flattened `[batch * targets]`.
    pub rows: Tensor<1, Int>,
    /// `[n]` residues to predict.
    pub labels: Tensor<1, Int>,
}

/// Frames [`ResidueBatch`]es and samples their factorisation orders.
#[derive(Debug, Clone)]
pub struct PermutationBatcher {
    tokenizer: Tokenizer,
    partial_prediction: usize,
}

impl PermutationBatcher {
    /// A batcher for an XLNet-layout `tokenizer`, predicting `1/partial_prediction` of the
    /// residues.
    pub fn new(tokenizer: Tokenizer, partial_prediction: usize) -> Result<Self, TrainError> {
        if partial_prediction == 0 {
            return Err(TrainError::Invalid(
                "autoregressive.partial_prediction must be at least 1".into(),
            ));
        }
        Ok(Self {
            tokenizer,
            partial_prediction,
        })
    }

    /// Frames one batch and samples its orders from `batch.seed`. Every sequence with a residue
    /// gets at least one target.
    pub fn permute(&self, batch: &ResidueBatch) -> PermutedSequences {
        let mut rng = StdRng::seed_from_u64(batch.seed);
        let rows = batch.sequences.len();
        let seq = batch.max_len() + self.tokenizer.num_special_tokens();
        let pad = i64::from(self.tokenizer.vocabulary().specials().pad);
        let mut input_ids = vec![pad; rows * seq];
        let mut attention_mask = vec![0i64; rows * seq];
        // Per row: target columns in factorisation order.
        let mut orders: Vec<Vec<usize>> = Vec::with_capacity(rows);
        for (row, residues) in batch.sequences.iter().enumerate() {
            let framed = self.tokenizer.frame(residues.iter().copied());
            let offset = seq - framed.len();
            for (k, &id) in framed.iter().enumerate() {
                input_ids[row * seq + offset + k] = i64::from(id);
                attention_mask[row * seq + offset + k] = 1;
            }
            let mut columns: Vec<usize> = self
                .tokenizer
                .residue_span(residues.len())
                .map(|c| offset + c)
                .collect();
            columns.shuffle(&mut rng);
            let count = if columns.is_empty() {
                0
            } else {
                residues.len().div_ceil(self.partial_prediction).max(1)
            };
            columns.truncate(count);
            orders.push(columns);
        }
        let targets = orders.iter().map(Vec::len).max().unwrap_or(0).max(1);
        let mut perm_mask = vec![false; rows * seq * seq];
        let mut target_mapping = vec![0.0f32; rows * targets * seq];
        let (mut flat_rows, mut labels) = (Vec::new(), Vec::new());
        for (row, order) in orders.iter().enumerate() {
            // Rank in the factorisation order; context shares rank 0, before every target.
            let mut rank = vec![0usize; seq];
            for (k, &column) in order.iter().enumerate() {
                rank[column] = k + 1;
                target_mapping[(row * targets + k) * seq + column] = 1.0;
                flat_rows.push((row * targets + k) as i64);
                labels.push(input_ids[row * seq + column]);
            }
            for i in 0..seq {
                for &j in order {
                    // Target j is hidden from context and from targets not after it.
                    if rank[i] == 0 || rank[j] >= rank[i] {
                        perm_mask[(row * seq + i) * seq + j] = true;
                    }
                }
            }
        }
        PermutedSequences {
            batch: rows,
            seq,
            targets,
            input_ids,
            attention_mask,
            perm_mask,
            target_mapping,
            rows: flat_rows,
            labels,
        }
    }
}

impl Batcher<ResidueBatch, PermutedBatch> for PermutationBatcher {
    fn batch(&self, items: Vec<ResidueBatch>, device: &Device) -> PermutedBatch {
        self.permute(&ResidueBatch::merge(items)).to_tensors(device)
    }
}

/// An XLNet under permutation LM training.
#[derive(Module, Debug)]
pub struct PermutationLm {
    /// The model.
    pub model: XlnetLmHeadModel,
    /// Loss scaling and precision.
    #[module(skip)]
    pub steps: StepSettings,
}

impl PermutationLm {
    /// Wraps `model`.
    pub fn new(model: XlnetLmHeadModel) -> Self {
        Self {
            model,
            steps: StepSettings::default(),
        }
    }

    /// Runs steps with `steps`' loss scaling and precision.
    pub fn with_steps(mut self, steps: StepSettings) -> Self {
        self.steps = steps;
        self
    }

    fn logits(model: &XlnetLmHeadModel, batch: PermutedBatch) -> Tensor<2> {
        let input = XlnetInput {
            perm_mask: Some(batch.perm_mask),
            target_mapping: Some(batch.target_mapping),
            ..XlnetInput::new(batch.input_ids, batch.attention_mask)
        };
        let (logits, _) = model.forward(input, None);
        let [b, p, vocab] = logits.dims();
        logits.reshape([b * p, vocab]).select(0, batch.rows)
    }

    /// Loss, logits and targets of one batch.
    pub fn forward_loss(&self, batch: PermutedBatch) -> ClassificationOutput {
        let labels = batch.labels.clone();
        let model = self.steps.precision.autocast(&self.model);
        let logits = self.steps.precision.to_f32(Self::logits(&model, batch));
        let loss = CrossEntropyLossConfig::new()
            .init(&logits.device())
            .forward(logits.clone(), labels.clone());
        ClassificationOutput::new(loss, logits, labels)
    }

    /// Summed loss, correct predictions and predictions of one batch.
    pub fn score(&self, batch: PermutedBatch) -> MlmScores {
        let labels = batch.labels.clone();
        MlmScores::of(Self::logits(&self.model, batch), labels)
    }
}

crate::objectives::classification_steps!([] PermutationLm, PermutedBatch);

impl PretrainingObjective for PermutationLm {
    type Config = XlnetConfig;
    type Batcher = PermutationBatcher;
    const OBJECTIVE: Objective = Objective::PermutationLm;

    fn batcher(
        _: &XlnetConfig,
        settings: &ObjectiveSettings,
        tokenizer: &Tokenizer,
    ) -> Result<PermutationBatcher, TrainError> {
        PermutationBatcher::new(tokenizer.clone(), settings.partial_prediction)
    }

    fn init(
        config: &XlnetConfig,
        _: &ObjectiveSettings,
        steps: StepSettings,
        device: &Device,
    ) -> Self {
        Self::new(config.init(device)).with_steps(steps)
    }

    fn describe(settings: &ObjectiveSettings) -> String {
        format!(
            ", predicting 1/{} of the residues",
            settings.partial_prediction
        )
    }

    fn metrics(training: SupervisedTraining<Self>) -> SupervisedTraining<Self> {
        next_token_metrics(training)
    }

    fn save(
        &self,
        config: &XlnetConfig,
        dir: &Path,
        tokenizer: &Tokenizer,
    ) -> Result<(), TrainError> {
        save_with_vocabulary(&self.model, config, dir, tokenizer)
    }

    /// The target residues of each permutation.
    fn evaluate(
        &self,
        batcher: &PermutationBatcher,
        baseline: &UnigramBaseline,
        data: &BatchedSequences,
        device: &Device,
        _: &ObjectiveSettings,
    ) -> Result<ValidationScores, TrainError> {
        score_residues(data, baseline, |batch| {
            let permuted = batcher.permute(batch);
            let labels = permuted.labels.clone();
            Ok((self.score(permuted.to_tensors(device)), labels))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prottrans_data::Vocabulary;

    #[test]
    fn targets_are_hidden_from_context_and_earlier_targets() {
        let batcher =
            PermutationBatcher::new(Tokenizer::new(Vocabulary::prottrans_xlnet()), 2).unwrap();
        let batch = ResidueBatch {
            sequences: vec![vec![9, 10, 11, 12], vec![13]],
            seed: 7,
        };
        let permuted = batcher.permute(&batch);
        let seq = permuted.seq;
        assert_eq!(seq, 6);
        // Row 1 is left-padded: pads, then V <sep> <cls>.
        assert_eq!(&permuted.input_ids[seq..], &[5, 5, 5, 13, 4, 3]);
        assert_eq!(permuted.targets, 2, "half of 4 residues");
        assert_eq!(permuted.labels.len(), 3, "2 targets in row 0, 1 in row 1");
        // Row 0's targets in order.
        let target = |k: usize| {
            (0..seq)
                .find(|&c| permuted.target_mapping[k * seq + c] == 1.0)
                .unwrap()
        };
        let (first, second) = (target(0), target(1));
        let hidden = |i: usize, j: usize| permuted.perm_mask[i * seq + j];
        for i in 0..seq {
            assert!(hidden(i, second), "the last target is seen by nobody");
            assert_eq!(
                hidden(i, first),
                i != second,
                "only the later target sees the first ({i})"
            );
            for j in 0..seq {
                if j != first && j != second {
                    assert!(!hidden(i, j), "context is visible to all");
                }
            }
        }
        assert!(permuted.labels.iter().all(|&l| l >= 9));
    }
}
