//! Multi-head self-attention with a key-padding mask and an optional additive bias.
//!
//! BERT, ALBERT and ELECTRA use it as is; T5 passes its relative position bias per distance
//! and turns off biases and score scaling; XLNet and Transformer-XL compute their relative
//! scores themselves but reuse the head split/merge and [`linear_rows`]; ESM-2 rotates queries
//! and keys by position ([`MultiHeadAttention::forward_rotary`]).

use burn::config::Config;
use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, Linear, LinearConfig};
use burn::tensor::module::attention;
use burn::tensor::ops::AttentionModuleOptions;
use burn::tensor::{Bool, Device, Int, Tensor, TensorData, activation};
use prottrans_kernels::{Epilogue, fused_self_attention};
use std::cell::OnceCell;

use super::{RotaryEmbedding, normal_init};

/// Configuration of [`MultiHeadAttention`].
#[derive(Config, Debug)]
pub struct MultiHeadAttentionConfig {
    /// Model width.
    pub d_model: usize,
    /// Number of heads.
    pub num_heads: usize,
    /// Width of each head; `d_model / num_heads` when not set.
    #[config(default = "None")]
    pub head_dim: Option<usize>,
    /// Whether the projections have biases (BERT: yes, T5: no).
    #[config(default = true)]
    pub bias: bool,
    /// Dropout on the attention probabilities.
    #[config(default = 0.0)]
    pub dropout: f64,
    /// Factor on `QK^T`; `1/sqrt(head_dim)` when not set (T5 uses 1).
    #[config(default = "None")]
    pub scale: Option<f64>,
    /// Standard deviation of the normal initialisation of the projections.
    #[config(default = 0.02)]
    pub initializer_range: f64,
    /// Standard deviation for the query projection when it differs (T5 scales by fan-in).
    #[config(default = "None")]
    pub query_initializer_range: Option<f64>,
    /// Standard deviation for the output projection when it differs.
    #[config(default = "None")]
    pub output_initializer_range: Option<f64>,
}

/// Multi-head self-attention: `query`, `key`, `value` and `output` projections.
#[derive(Module, Debug)]
pub struct MultiHeadAttention {
    /// Query projection `[d_model, heads * head_dim]`.
    pub query: Linear,
    /// Key projection.
    pub key: Linear,
    /// Value projection.
    pub value: Linear,
    /// Output projection `[heads * head_dim, d_model]`.
    pub output: Linear,
    dropout: Dropout,
    num_heads: usize,
    head_dim: usize,
    scale: f64,
}

impl MultiHeadAttentionConfig {
    /// Initialises the module on `device`.
    pub fn init(&self, device: &burn::tensor::Device) -> MultiHeadAttention {
        let head_dim = self.head_dim.unwrap_or(self.d_model / self.num_heads);
        let inner = self.num_heads * head_dim;
        let linear = |d_in, d_out, std: Option<f64>| {
            LinearConfig::new(d_in, d_out)
                .with_bias(self.bias)
                .with_initializer(normal_init(std.unwrap_or(self.initializer_range)))
                .init(device)
        };
        MultiHeadAttention {
            query: linear(self.d_model, inner, self.query_initializer_range),
            key: linear(self.d_model, inner, None),
            value: linear(self.d_model, inner, None),
            output: linear(inner, self.d_model, self.output_initializer_range),
            dropout: DropoutConfig::new(self.dropout).init(),
            num_heads: self.num_heads,
            head_dim,
            scale: self.scale.unwrap_or(1.0 / (head_dim as f64).sqrt()),
        }
    }
}

/// An additive attention bias that depends only on `key - query` (T5's bucketed relative
/// position bias), kept per distance; the full `[1, heads, q, k]` tensor that burn's attention
/// needs is made at most once, on the first layer that falls back to it.
#[derive(Debug)]
pub struct RelativePositionBias {
    /// `[heads, q_len + k_len - 1]`: the bias of key `j` for query `i` at `j - i + q_len - 1`.
    pub per_distance: Tensor<2>,
    q_len: usize,
    k_len: usize,
    full: OnceCell<Tensor<4>>,
}

impl RelativePositionBias {
    /// # Shapes
    /// - per_distance: `[heads, q_len + k_len - 1]`
    pub fn new(per_distance: Tensor<2>, q_len: usize, k_len: usize) -> Self {
        debug_assert_eq!(per_distance.dims()[1], q_len + k_len - 1);
        Self {
            per_distance,
            q_len,
            k_len,
            full: OnceCell::new(),
        }
    }

    /// The bias of every `(query, key)` pair.
    ///
    /// # Shapes
    /// - output: `[1, heads, q_len, k_len]`
    pub fn full(&self) -> Tensor<4> {
        self.full
            .get_or_init(|| {
                let (q_len, k_len) = (self.q_len, self.k_len);
                let heads = self.per_distance.dims()[0];
                let index: Vec<i64> = (0..q_len)
                    .flat_map(|i| (0..k_len).map(move |j| (j + q_len - 1 - i) as i64))
                    .collect();
                let device = self.per_distance.device();
                let index =
                    Tensor::<1, Int>::from_data(TensorData::new(index, [q_len * k_len]), &device);
                self.per_distance
                    .clone()
                    .select(1, index)
                    .reshape([1, heads, q_len, k_len])
            })
            .clone()
    }
}

/// `linear` applied to every position at once: the positions are flattened into rows so the
/// product is one (threaded) matrix multiply, with the bias and activation fused on flex.
///
/// # Shapes
/// - x: `[batch, seq, d_in]` -> `[batch, seq, d_out]`
pub fn linear_rows(linear: &Linear, x: Tensor<3>, epilogue: Epilogue) -> Tensor<3> {
    let [batch, seq, d_in] = x.dims();
    let weight = linear.weight.val();
    let d_out = weight.dims()[1];
    let rows = prottrans_kernels::linear(
        x.reshape([batch * seq, d_in]),
        weight,
        linear.bias.as_ref().map(|b| b.val()),
        epilogue,
    );
    rows.reshape([batch, seq, d_out])
}

fn is_libtorch(device: &Device) -> bool {
    format!("{device:?}").contains("LibTorch")
}

/// `true` where `attention_mask` (1 = token, 0 = padding) marks padding.
///
/// # Shapes
/// - attention_mask: `[batch, seq]` -> `[batch, seq]`
pub fn padding_mask(attention_mask: Tensor<2, Int>) -> Tensor<2, Bool> {
    attention_mask.equal_elem(0)
}

impl MultiHeadAttention {
    /// Attends every position to every non-padding position.
    ///
    /// `bias` is added to the scaled scores before the softmax (T5's relative position bias).
    /// On flex in `f32` outside autodiff this is one fused kernel (`prottrans-kernels`) that
    /// reads the padding per sequence and the bias per distance; elsewhere burn's `attention`
    /// with the mask and bias expanded to every score.
    ///
    /// # Shapes
    /// - x: `[batch, seq, d_model]`
    /// - padding: `[batch, seq]`, `true` at padding keys
    /// - bias: per distance, `[heads, 2 * seq - 1]`
    /// - output: `[batch, seq, d_model]`
    pub fn forward(
        &self,
        x: Tensor<3>,
        padding: Option<Tensor<2, Bool>>,
        bias: Option<&RelativePositionBias>,
    ) -> Tensor<3> {
        let [batch, seq, _] = x.dims();
        let [q, k, v] = self.project_qkv(x);
        let fused = self.fusable(&q).then(|| {
            fused_self_attention(
                &q,
                &k,
                &v,
                self.num_heads,
                self.scale as f32,
                padding.as_ref(),
                bias.map(|b| &b.per_distance),
            )
        });
        let context = match fused.flatten() {
            Some(context) => context,
            None => {
                let mask = padding.map(|p| p.reshape([batch, 1, 1, seq]));
                self.attend_heads(q, k, v, mask, bias.map(RelativePositionBias::full))
            }
        };
        linear_rows(&self.output, context, Epilogue::None)
    }

    /// As [`forward`](Self::forward), with queries and keys rotated by position first
    /// (ESM-2's rotary embeddings).
    ///
    /// # Shapes
    /// - x: `[batch, seq, d_model]`, padding: `[batch, seq]` -> `[batch, seq, d_model]`
    pub fn forward_rotary(
        &self,
        x: Tensor<3>,
        padding: Option<Tensor<2, Bool>>,
        rotary: &RotaryEmbedding,
    ) -> Tensor<3> {
        let [batch, seq, _] = x.dims();
        let [q, k, v] = self.project_qkv(x);
        let (q, k) = (self.rotate(q, rotary), self.rotate(k, rotary));
        let fused = self.fusable(&q).then(|| {
            fused_self_attention(
                &q,
                &k,
                &v,
                self.num_heads,
                self.scale as f32,
                padding.as_ref(),
                None,
            )
        });
        let context = match fused.flatten() {
            Some(context) => context,
            None => {
                let mask = padding.map(|p| p.reshape([batch, 1, 1, seq]));
                self.attend_heads(q, k, v, mask, None)
            }
        };
        linear_rows(&self.output, context, Epilogue::None)
    }

    /// [`forward_rotary`](Self::forward_rotary) that also returns the attention
    /// probabilities (for ESM-2's contact head), computed explicitly.
    ///
    /// # Shapes
    /// - x: `[batch, seq, d_model]`, padding: `[batch, seq]`
    /// - output: `[batch, seq, d_model]` and probabilities `[batch, heads, seq, seq]`
    pub fn forward_rotary_with_probs(
        &self,
        x: Tensor<3>,
        padding: Option<Tensor<2, Bool>>,
        rotary: &RotaryEmbedding,
    ) -> (Tensor<3>, Tensor<4>) {
        let [batch, seq, _] = x.dims();
        let [q, k, v] = self.project_qkv(x);
        let (q, k) = (self.rotate(q, rotary), self.rotate(k, rotary));
        let (q, k, v) = (
            self.split_heads(q),
            self.split_heads(k),
            self.split_heads(v),
        );
        let scores = q.matmul(k.swap_dims(2, 3)) * self.scale;
        let scores = match padding {
            Some(p) => scores.mask_fill(
                p.reshape([batch, 1, 1, seq])
                    .expand([batch, self.num_heads, seq, seq]),
                f32::NEG_INFINITY,
            ),
            None => scores,
        };
        let probs = activation::softmax(scores, 3);
        let context = self.merge_heads(self.dropout.forward(probs.clone()).matmul(v));
        (linear_rows(&self.output, context, Epilogue::None), probs)
    }

    /// Whether the fused kernel may run: it has no dropout, so training with dropout on the
    /// probabilities takes the explicit path.
    fn fusable(&self, q: &Tensor<3>) -> bool {
        self.dropout.prob == 0.0 || !q.device().is_autodiff()
    }

    /// Rotates projected queries or keys by position.
    ///
    /// # Shapes
    /// - x: `[batch, seq, heads * head_dim]` -> same
    fn rotate(&self, x: Tensor<3>, rotary: &RotaryEmbedding) -> Tensor<3> {
        let [batch, seq, inner] = x.dims();
        rotary
            .apply(x.reshape([batch, seq, self.num_heads, self.head_dim]))
            .reshape([batch, seq, inner])
    }

    /// The query, key and value projections of `x`. (One product against the three weights
    /// side by side was tried: no faster on flex, so three products it is.)
    fn project_qkv(&self, x: Tensor<3>) -> [Tensor<3>; 3] {
        [&self.query, &self.key, &self.value].map(|p| linear_rows(p, x.clone(), Epilogue::None))
    }

    /// Attends `query_input` positions to `key_value_input` positions with any mask: causal
    /// self-attention, cross-attention (T5's decoder).
    ///
    /// `mask` is `true` where a query may not look; it and `bias` broadcast over batch and heads.
    ///
    /// # Shapes
    /// - query_input: `[batch, q, d_model]`, key_value_input: `[batch, k, d_model]`
    /// - mask: `[batch or 1, heads or 1, q or 1, k]`
    /// - bias: `[batch or 1, heads, q, k]`
    /// - output: `[batch, q, d_model]`
    pub fn attend(
        &self,
        query_input: Tensor<3>,
        key_value_input: Tensor<3>,
        mask: Option<Tensor<4, Bool>>,
        bias: Option<Tensor<4>>,
    ) -> Tensor<3> {
        let q = linear_rows(&self.query, query_input, Epilogue::None);
        let k = linear_rows(&self.key, key_value_input.clone(), Epilogue::None);
        let v = linear_rows(&self.value, key_value_input, Epilogue::None);
        let context = self.attend_heads(q, k, v, mask, bias);
        linear_rows(&self.output, context, Epilogue::None)
    }

    /// burn's attention over projected queries, keys and values.
    ///
    /// # Shapes
    /// - q: `[batch, q_len, inner]`, k and v: `[batch, k_len, inner]` -> `[batch, q_len, inner]`
    fn attend_heads(
        &self,
        q: Tensor<3>,
        k: Tensor<3>,
        v: Tensor<3>,
        mask: Option<Tensor<4, Bool>>,
        bias: Option<Tensor<4>>,
    ) -> Tensor<3> {
        let [batch, q_len, _] = q.dims();
        let k_len = k.dims()[1];
        let shape = [batch, self.num_heads, q_len, k_len];
        let (q, k, v) = (
            self.split_heads(q),
            self.split_heads(k),
            self.split_heads(v),
        );
        let mask = mask.map(|m| m.expand(shape));
        let bias = bias.map(|b| b.expand(shape));

        let context = if self.dropout.prob > 0.0 && q.device().is_autodiff() {
            // Dropout on the probabilities needs them materialised; burn's fused kernel has none.
            let scores = q.matmul(k.swap_dims(2, 3)) * self.scale;
            let scores = match bias {
                Some(b) => scores + b,
                None => scores,
            };
            let scores = match mask {
                Some(m) => scores.mask_fill(m, f32::NEG_INFINITY),
                None => scores,
            };
            let probs = self.dropout.forward(activation::softmax(scores, 3));
            probs.matmul(v)
        } else {
            let options = AttentionModuleOptions {
                scale: Some(self.scale),
                softcap: None,
                is_causal: false,
            };
            // burn-tch 0.22.1 hands a boolean mask alone to torch's fused attention, where `true`
            // means "attend" rather than burn's "masked" (tests/conformance.rs found it); with a
            // bias, or under autodiff, burn's reference path reads burn's meaning. So torch's
            // fused kernel gets the mask inverted.
            let device = q.device();
            let mask = match mask {
                Some(m) if bias.is_none() && is_libtorch(&device) && !device.is_autodiff() => {
                    Some(m.bool_not())
                }
                mask => mask,
            };
            attention(q, k, v, mask, bias, options)
        };
        self.merge_heads(context)
    }

    /// `[batch, seq, heads * head_dim]` -> `[batch, heads, seq, head_dim]`.
    pub fn split_heads(&self, x: Tensor<3>) -> Tensor<4> {
        let [batch, seq, _] = x.dims();
        x.reshape([batch, seq, self.num_heads, self.head_dim])
            .swap_dims(1, 2)
    }

    /// `[batch, heads, seq, head_dim]` -> `[batch, seq, heads * head_dim]`.
    pub fn merge_heads(&self, x: Tensor<4>) -> Tensor<3> {
        let [batch, _, seq, _] = x.dims();
        x.swap_dims(1, 2)
            .reshape([batch, seq, self.num_heads * self.head_dim])
    }

    /// Number of heads.
    pub fn num_heads(&self) -> usize {
        self.num_heads
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, Distribution, Tolerance};

    /// The fused path and the explicit (dropout) path agree when dropout is zero.
    #[test]
    fn padding_keys_get_no_attention() {
        let device = Device::flex();
        let attn = MultiHeadAttentionConfig::new(16, 4).init(&device);
        let x = Tensor::<3>::random([2, 5, 16], Distribution::Normal(0.0, 1.0), &device);
        let mask = Tensor::<2, Int>::from_ints([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], &device);
        let out = attn.forward(x.clone(), Some(padding_mask(mask)), None);

        // Changing padded positions of sequence 0 must not change its real positions.
        let noise = Tensor::<3>::random([1, 2, 16], Distribution::Normal(0.0, 5.0), &device);
        let x2 = x.slice_assign([0..1, 3..5, 0..16], noise);
        let mask = Tensor::<2, Int>::from_ints([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], &device);
        let out2 = attn.forward(x2, Some(padding_mask(mask)), None);
        out.slice([0..1, 0..3])
            .into_data()
            .assert_approx_eq::<f32>(&out2.slice([0..1, 0..3]).into_data(), Tolerance::default());
    }
}
