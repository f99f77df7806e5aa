//! The masked-LM head of the BERT family (BERT, ALBERT, ELECTRA's generator, ESM-2), and the
//! two ways of applying a per-token head: to every position, or to selected ones.

use burn::module::{Module, Param};
use burn::nn::{LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::{Device, Int, Tensor};

use super::{Activation, normal_init};

/// Shape of a [`MaskedLmHead`].
#[derive(Debug, Clone, Copy)]
pub struct MaskedLmHeadConfig {
    /// Width of the hidden states read.
    pub hidden: usize,
    /// Width of the word embeddings that decode (ALBERT, ELECTRA's generator: smaller).
    pub width: usize,
    /// Vocabulary size.
    pub vocab_size: usize,
    /// Activation after the dense layer.
    pub activation: Activation,
    /// LayerNorm epsilon.
    pub layer_norm_eps: f64,
    /// Standard deviation of the dense layer's initialisation.
    pub initializer_range: f64,
}

impl MaskedLmHeadConfig {
    /// Initialises the head on `device` (zero output bias).
    pub fn init(&self, device: &Device) -> MaskedLmHead {
        MaskedLmHead {
            transform: LinearConfig::new(self.hidden, self.width)
                .with_initializer(normal_init(self.initializer_range))
                .init(device),
            layer_norm: LayerNormConfig::new(self.width)
                .with_epsilon(self.layer_norm_eps)
                .init(device),
            bias: Param::from_tensor(Tensor::zeros([self.vocab_size], device)),
            activation: self.activation,
        }
    }
}

/// Dense, activation, LayerNorm, then the tied word-embedding decoder plus a bias.
#[derive(Module, Debug)]
pub struct MaskedLmHead {
    /// The dense layer (BERT: `cls.predictions.transform.dense`, ESM: `lm_head.dense`).
    pub transform: Linear,
    /// The norm after the activation.
    pub layer_norm: LayerNorm,
    /// The output bias, `[vocab]`.
    pub bias: Param<Tensor<1>>,
    #[module(skip)]
    activation: Activation,
}

impl MaskedLmHead {
    /// Vocabulary logits, decoding with the (tied) word embeddings.
    ///
    /// # Shapes
    /// - hidden: `[n, d]`, word_embeddings: `[vocab, width]` -> `[n, vocab]`
    pub fn forward(&self, hidden: Tensor<2>, word_embeddings: Tensor<2>) -> Tensor<2> {
        let h = self
            .layer_norm
            .forward(self.activation.forward(self.transform.forward(hidden)));
        h.matmul(word_embeddings.transpose()) + self.bias.val().unsqueeze_dim(0)
    }
}

/// Applies a per-token head to every position.
///
/// # Shapes
/// - hidden: `[batch, seq, d]`, head: `[n, d] -> [n, vocab]` -> `[batch, seq, vocab]`
pub fn logits_at_every_position(
    hidden: Tensor<3>,
    head: impl FnOnce(Tensor<2>) -> Tensor<2>,
) -> Tensor<3> {
    let [batch, seq, d] = hidden.dims();
    let logits = head(hidden.reshape([batch * seq, d]));
    let vocab = logits.dims()[1];
    logits.reshape([batch, seq, vocab])
}

/// The hidden states at flat positions (`row * seq + column`), for heads that only score the
/// masked tokens.
///
/// # Shapes
/// - hidden: `[batch, seq, d]`, positions: `[n]` -> `[n, d]`
pub fn select_positions(hidden: Tensor<3>, positions: Tensor<1, Int>) -> Tensor<2> {
    let [batch, seq, d] = hidden.dims();
    hidden.reshape([batch * seq, d]).select(0, positions)
}
