//! The encoder and the head as one burn module, with burn-train's steps.

use burn::module::{Module, ModuleDisplay, ModuleVisitor, Param};
use burn::tensor::Tensor;
use burn::train::{InferenceStep, TrainOutput, TrainStep};
use prottrans_models::ProteinEncoder;
use prottrans_train::precision::MixedPrecision;

use super::batches::TokenBatch;
use crate::batches::HeadBatch;
use crate::metrics::HeadOutput;
use crate::train::HeadModel;

/// An encoder and a head, trained together.
#[derive(Module, Debug)]
pub struct Finetuned<E, H> {
    /// The encoder (with its adapters, for LoRA).
    pub encoder: E,
    /// The head with its loss weights.
    pub head: H,
    #[module(skip)]
    pub(crate) precision: MixedPrecision,
    /// Factor on the loss: `1 / accumulation`, since burn sums accumulated gradients.
    #[module(skip)]
    pub(crate) loss_factor: f64,
    /// Segment length of architectures with memory: an unpadded batch wider than it is read
    /// in segments, as embedding reads it.
    #[module(skip)]
    pub(crate) segment: Option<usize>,
}

impl<E, H> Finetuned<E, H>
where
    E: Module + ModuleDisplay + ProteinEncoder,
    H: Module + ModuleDisplay + HeadModel,
{
    /// The residues' hidden states of a batch, `[B, L, d]` in f32.
    pub fn residue_states(&self, batch: &TokenBatch) -> Tensor<3> {
        let encoder = self.precision.autocast(&self.encoder);
        let width = batch.input.input_ids.dims()[1];
        let hidden = match self.segment {
            Some(segment) if batch.input.attention_mask.is_none() && width > segment => encoder
                .encode_in_segments(batch.input.input_ids.clone(), segment)
                .expect("only architectures with memory have a segment length"),
            _ => encoder.encode(batch.input.clone()).last_hidden_state,
        };
        let hidden = self.precision.to_f32(hidden);
        let [b, t, d] = hidden.dims();
        let l = batch.residue_mask.dims()[1];
        hidden
            .reshape([b * t, d])
            .select(0, batch.residue_index.clone())
            .reshape([b, l, d])
    }

    /// The same model computing in f32 (to compare with what is read back in f32).
    pub fn in_f32(mut self) -> Self {
        self.precision = MixedPrecision::default();
        self
    }

    /// Logits, targets and loss of a batch.
    pub fn forward_output(&self, batch: TokenBatch) -> HeadOutput {
        let features = self.residue_states(&batch);
        self.head.head_output(HeadBatch {
            features,
            mask: batch.residue_mask,
            targets: batch.targets,
        })
    }
}

impl<E, H> TrainStep for Finetuned<E, H>
where
    E: Module + ModuleDisplay + ProteinEncoder,
    H: Module + ModuleDisplay + HeadModel,
{
    type Input = TokenBatch;
    type Output = HeadOutput;

    fn step(&self, batch: TokenBatch) -> TrainOutput<HeadOutput> {
        let output = self.forward_output(batch);
        let grads = self
            .precision
            .gradients(output.loss.clone(), self.loss_factor, self);
        TrainOutput {
            grads,
            item: output,
        }
    }
}

impl<E, H> InferenceStep for Finetuned<E, H>
where
    E: Module + ModuleDisplay + ProteinEncoder,
    H: Module + ModuleDisplay + HeadModel,
{
    type Input = TokenBatch;
    type Output = HeadOutput;

    fn step(&self, batch: TokenBatch) -> HeadOutput {
        self.forward_output(batch)
    }
}

/// Counts parameters, and those that train.
#[derive(Default)]
struct ParameterCount {
    total: usize,
    trainable: usize,
}

impl ModuleVisitor for ParameterCount {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        let n = param.shape().num_elements();
        self.total += n;
        if param.is_require_grad() {
            self.trainable += n;
        }
    }
}

/// `(trainable, total)` parameters of a module.
pub fn count_parameters<M: Module>(module: &M) -> (usize, usize) {
    let mut count = ParameterCount::default();
    module.visit(&mut count);
    (count.trainable, count.total)
}
