//! Transformer-XL, as `transformers` 4.57's `TransfoXLModel` / `TransfoXLLMHeadModel` (ProtTXL).
//!
//! A left-to-right language model read in segments. Each layer attends, causally, to a memory of
//! the hidden states it saw in earlier segments (gradient stopped) followed by the current
//! segment, with relative positions ([`crate::blocks::relative_attention`]) so a position means
//! the same thing in every segment. Post-LayerNorm (or pre- with `pre_lnorm`), ReLU feed-forward.
//!
//! Divergences from the reference, all refused with a named error rather than run differently:
//! the adaptive embedding and softmax (`cutoffs`, `div_val`, `d_embed != d_model`) and
//! `same_length` are not implemented; ProtTrans' vocabulary has 30 tokens, where they buy nothing.
//! The head returns logits; `transformers` returns their log-softmax.

use burn::module::{Module, Param};
use burn::nn::{Dropout, DropoutConfig, Embedding, EmbeddingConfig, LayerNorm, LayerNormConfig};
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{Bool, Device, Int, Tensor};
use serde::{Deserialize, Serialize};

use crate::architecture::{ArchitectureConfig, LoraTargets, PretrainedModel};
use crate::blocks::logits_at_every_position;
use crate::blocks::{
    Activation, RelativeBiases, ResidualFeedForward, SegmentMemory, causal_mask, normal_init,
    read_in_segments, relative_attention, relative_distances, sinusoid_encoding,
};
use crate::encoder::{EncoderInput, EncoderOutput, ProteinEncoder};
use crate::error::ModelConfigError;
use crate::key_map::{KeyMap, RuleTable};

/// Transformer-XL hyper-parameters with the field names of a `transformers` `config.json`.
/// Defaults are a ProtTXL-like shape over the ProtBert vocabulary (ProtTXL was not released).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TransfoXlConfig {
    /// Vocabulary size (`n_token` in older configs).
    #[serde(alias = "n_token")]
    pub vocab_size: usize,
    /// Adaptive-softmax cluster boundaries; must be empty here.
    pub cutoffs: Vec<usize>,
    /// Model width.
    pub d_model: usize,
    /// Embedding width; must equal `d_model` here.
    pub d_embed: usize,
    /// Number of attention heads.
    pub n_head: usize,
    /// Width of each head.
    pub d_head: usize,
    /// Feed-forward inner width.
    pub d_inner: usize,
    /// Adaptive-embedding divisor; 1 here.
    pub div_val: usize,
    /// LayerNorm before each block instead of after.
    pub pre_lnorm: bool,
    /// Number of layers.
    pub n_layer: usize,
    /// Hidden states kept in memory per layer between segments.
    pub mem_len: usize,
    /// Relative distances beyond this are treated as this far (`<= 0`: no clamping).
    pub clamp_len: i64,
    /// Every query sees the same number of keys (evaluation trick); not implemented.
    pub same_length: bool,
    /// Attention variant; only 0 (relative, learnable biases) is implemented.
    pub attn_type: usize,
    /// Whether the adaptive softmax is used (with no cutoffs it is a plain softmax).
    pub adaptive: bool,
    /// Dropout on embeddings, block outputs and the feed-forward inner layer.
    pub dropout: f64,
    /// Dropout on attention probabilities.
    pub dropatt: f64,
    /// Per-layer position and content biases (`true`) or one pair for the whole model.
    pub untie_r: bool,
    /// Standard deviation of the normal initialisation.
    pub init_std: f64,
    /// LayerNorm epsilon.
    pub layer_norm_epsilon: f64,
    /// Whether the output layer is the word embedding (required here).
    pub tie_word_embeddings: bool,
    /// End-of-sequence id.
    pub eos_token_id: usize,
}

impl Default for TransfoXlConfig {
    fn default() -> Self {
        Self {
            vocab_size: 30,
            cutoffs: Vec::new(),
            d_model: 1024,
            d_embed: 1024,
            n_head: 16,
            d_head: 64,
            d_inner: 4096,
            div_val: 1,
            pre_lnorm: false,
            n_layer: 32,
            mem_len: 512,
            clamp_len: 1000,
            same_length: false,
            attn_type: 0,
            adaptive: true,
            dropout: 0.1,
            dropatt: 0.0,
            untie_r: true,
            init_std: 0.02,
            layer_norm_epsilon: 1e-5,
            tie_word_embeddings: true,
            eos_token_id: 3,
        }
    }
}

impl TransfoXlConfig {
    /// Checks values that would fail later in obscure ways, and refuses reference features that
    /// are not implemented.
    pub fn validate(&self) -> Result<(), ModelConfigError> {
        crate::error::check_epsilon("transfo_xl", "layer_norm_epsilon", self.layer_norm_epsilon)?;
        let invalid = |message: String| {
            Err(ModelConfigError::Invalid {
                architecture: "transfo_xl",
                message,
            })
        };
        for (name, value) in [
            ("vocab_size", self.vocab_size),
            ("d_model", self.d_model),
            ("n_head", self.n_head),
            ("d_head", self.d_head),
            ("d_inner", self.d_inner),
            ("n_layer", self.n_layer),
        ] {
            if value == 0 {
                return invalid(format!("`{name}` must be at least 1"));
            }
        }
        if !self.d_model.is_multiple_of(2) {
            return invalid(format!(
                "`d_model` ({}) must be even for sinusoidal positions",
                self.d_model
            ));
        }
        if !self.cutoffs.is_empty() {
            return invalid(format!(
                "adaptive softmax (`cutoffs` = {:?}) is not implemented; use `cutoffs = []`",
                self.cutoffs
            ));
        }
        if self.div_val != 1 || self.d_embed != self.d_model {
            return invalid(format!(
                "adaptive or projected embeddings (`div_val` = {}, `d_embed` = {}, `d_model` = {}) are not \
                 implemented; use `div_val = 1` and `d_embed = d_model`",
                self.div_val, self.d_embed, self.d_model
            ));
        }
        if self.same_length {
            return invalid("`same_length = true` is not implemented".into());
        }
        if self.attn_type != 0 {
            return invalid(format!(
                "`attn_type` {} is not implemented (only 0)",
                self.attn_type
            ));
        }
        if !self.tie_word_embeddings {
            return invalid("an output layer untied from the embeddings is not implemented".into());
        }
        Ok(())
    }

    /// `clamp_len` as an option.
    fn clamp(&self) -> Option<usize> {
        (self.clamp_len > 0).then_some(self.clamp_len as usize)
    }

    /// Number of parameters of [`TransfoXlLmHeadModel`].
    pub fn num_parameters(&self) -> usize {
        let (d, inner, heads) = (self.d_model, self.d_inner, self.n_head * self.d_head);
        let biases = 2 * heads;
        let layer = d * 3 * heads
            + d * heads
            + heads * d
            + 2 * d
            + (d * inner + inner + inner * d + d)
            + 2 * d;
        let layers = self.n_layer * (layer + if self.untie_r { biases } else { 0 });
        self.vocab_size * d + layers + if self.untie_r { 0 } else { biases } + self.vocab_size
    }

    /// Initialises the language model.
    pub fn init(&self, device: &Device) -> TransfoXlLmHeadModel {
        TransfoXlLmHeadModel {
            transformer: self.init_model(device),
            crit_bias: Param::from_tensor(Tensor::zeros([self.vocab_size], device)),
        }
    }

    /// Initialises the bare model.
    pub fn init_model(&self, device: &Device) -> TransfoXlModel {
        let bias = || self.init_relative_bias(device);
        let shared = !self.untie_r;
        TransfoXlModel {
            word_emb: EmbeddingConfig::new(self.vocab_size, self.d_model)
                .with_initializer(normal_init(self.init_std))
                .init(device),
            layers: (0..self.n_layer).map(|_| self.init_layer(device)).collect(),
            r_w_bias: shared.then(bias),
            r_r_bias: shared.then(bias),
            dropout: DropoutConfig::new(self.dropout).init(),
            d_model: self.d_model,
            mem_len: self.mem_len,
            clamp_len: self.clamp(),
        }
    }

    /// A content or position bias, `[heads, d_head]`.
    fn init_relative_bias(&self, device: &Device) -> Param<Tensor<2>> {
        Param::from_tensor(Tensor::random(
            [self.n_head, self.d_head],
            burn::tensor::Distribution::Normal(0.0, self.init_std),
            device,
        ))
    }

    fn init_layer(&self, device: &Device) -> TransfoXlLayer {
        let heads = self.n_head * self.d_head;
        let linear = |d_in, d_out| {
            LinearConfig::new(d_in, d_out)
                .with_bias(false)
                .with_initializer(normal_init(self.init_std))
                .init(device)
        };
        let norm = || {
            LayerNormConfig::new(self.d_model)
                .with_epsilon(self.layer_norm_epsilon)
                .init(device)
        };
        let bias = || self.init_relative_bias(device);
        TransfoXlLayer {
            dec_attn: TransfoXlAttention {
                qkv_net: linear(self.d_model, 3 * heads),
                r_net: linear(self.d_model, heads),
                o_net: linear(heads, self.d_model),
                layer_norm: norm(),
                r_w_bias: self.untie_r.then(bias),
                r_r_bias: self.untie_r.then(bias),
                dropout: DropoutConfig::new(self.dropout).init(),
                dropatt: DropoutConfig::new(self.dropatt).init(),
                n_head: self.n_head,
                d_head: self.d_head,
                pre_lnorm: self.pre_lnorm,
            },
            pos_ff: ResidualFeedForward::new(
                self.d_model,
                self.d_inner,
                Activation::Relu,
                self.dropout,
                (self.init_std, self.layer_norm_epsilon),
                self.pre_lnorm,
                device,
            ),
        }
    }
}

/// Relative multi-head attention over memory and segment (checkpoint `dec_attn`).
#[derive(Module, Debug)]
pub struct TransfoXlAttention {
    /// Query, key and value projections in one matrix, no bias, `[d_model, 3 * heads * d_head]`.
    pub qkv_net: Linear,
    /// Projection of the position encodings, no bias.
    pub r_net: Linear,
    /// Output projection, no bias.
    pub o_net: Linear,
    /// Post- (or pre-) LayerNorm.
    pub layer_norm: LayerNorm,
    /// Content bias `u` when untied (`untie_r`), `[heads, d_head]`.
    pub r_w_bias: Option<Param<Tensor<2>>>,
    /// Position bias `v` when untied.
    pub r_r_bias: Option<Param<Tensor<2>>>,
    dropout: Dropout,
    dropatt: Dropout,
    #[module(skip)]
    n_head: usize,
    #[module(skip)]
    d_head: usize,
    #[module(skip)]
    pre_lnorm: bool,
}

impl TransfoXlAttention {
    /// # Shapes
    /// - x: `[batch, qlen, d]`, memory: `[batch, mlen, d]`, positions: `[rows, d]`
    /// - mask: `[1, 1, qlen, mlen + qlen]` -> `[batch, qlen, d]`
    pub fn forward(
        &self,
        x: Tensor<3>,
        memory: Option<Tensor<3>>,
        positions: Tensor<2>,
        mask: Tensor<4, Bool>,
        shared_biases: Option<RelativeBiases<'_>>,
    ) -> Tensor<3> {
        let [batch, qlen, _] = x.dims();
        let keys_in = match memory {
            Some(memory) => Tensor::cat(vec![memory, x.clone()], 1),
            None => x.clone(),
        };
        let klen = keys_in.dims()[1];
        let keys_in = if self.pre_lnorm {
            self.layer_norm.forward(keys_in)
        } else {
            keys_in
        };
        let width = self.n_head * self.d_head;
        let heads = self.qkv_net.forward(keys_in);
        let split = |t: Tensor<3>, len: usize| {
            t.reshape([batch, len, self.n_head, self.d_head])
                .swap_dims(1, 2)
        };
        let q = split(
            heads.clone().slice([0..batch, klen - qlen..klen, 0..width]),
            qlen,
        );
        let k = split(
            heads.clone().slice([0..batch, 0..klen, width..2 * width]),
            klen,
        );
        let v = split(heads.slice([0..batch, 0..klen, 2 * width..3 * width]), klen);
        let rows = positions.dims()[0];
        let position_keys = self
            .r_net
            .forward(positions)
            .reshape([rows, self.n_head, self.d_head])
            .swap_dims(0, 1);
        let biases = match (&self.r_w_bias, &self.r_r_bias) {
            (Some(content), Some(position)) => RelativeBiases { content, position },
            _ => shared_biases.expect("tied biases are passed when the layer has none"),
        };
        let context = relative_attention(
            q,
            k,
            v,
            position_keys,
            biases,
            None,
            Some(mask),
            &self.dropatt,
        );
        let attended = self
            .o_net
            .forward(context.swap_dims(1, 2).reshape([batch, qlen, width]));
        let attended = self.dropout.forward(attended);
        if self.pre_lnorm {
            x + attended
        } else {
            self.layer_norm.forward(x + attended)
        }
    }
}

/// One decoder layer (checkpoint `layers.<i>`).
#[derive(Module, Debug)]
pub struct TransfoXlLayer {
    /// Attention.
    pub dec_attn: TransfoXlAttention,
    /// Feed-forward.
    pub pos_ff: ResidualFeedForward,
}

/// What one segment gives back.
#[derive(Debug, Clone)]
pub struct TransfoXlOutput {
    /// Final hidden states of the segment, `[batch, seq, d]`.
    pub last_hidden_state: Tensor<3>,
    /// Embedding output and every layer's output, when asked for.
    pub hidden_states: Vec<Tensor<3>>,
    /// The memory for the next segment (detached).
    pub memory: SegmentMemory,
}

/// `TransfoXLModel` (checkpoint prefix `transformer.`).
#[derive(Module, Debug)]
pub struct TransfoXlModel {
    /// Word embeddings, scaled by `sqrt(d_model)` (checkpoint `word_emb.emb_layers.0`).
    pub word_emb: Embedding,
    /// The layers.
    pub layers: Vec<TransfoXlLayer>,
    /// Model-wide content bias when tied (`untie_r = false`).
    pub r_w_bias: Option<Param<Tensor<2>>>,
    /// Model-wide position bias when tied.
    pub r_r_bias: Option<Param<Tensor<2>>>,
    dropout: Dropout,
    #[module(skip)]
    d_model: usize,
    #[module(skip)]
    mem_len: usize,
    #[module(skip)]
    clamp_len: Option<usize>,
}

impl TransfoXlModel {
    /// Width of the hidden states.
    pub fn hidden_size(&self) -> usize {
        self.d_model
    }

    /// Hidden states kept per layer between segments.
    pub fn mem_len(&self) -> usize {
        self.mem_len
    }

    /// Reads one segment after the `memory` of the previous ones.
    ///
    /// Without a memory (`None`, the start of a sequence) the model attends to `mem_len` zero
    /// vectors, as the reference and the original Transformer-XL do; their keys are zero but
    /// their position scores are not, so they take some attention. Pass
    /// [`SegmentMemory::empty`] for no memory at all.
    ///
    /// Sequences of a batch may be right-padded freely: attention is causal, so padding after a
    /// token never reaches it.
    ///
    /// # Shapes
    /// - input_ids: `[batch, seq]` -> hidden states `[batch, seq, d]`
    pub fn forward(
        &self,
        input_ids: Tensor<2, Int>,
        memory: Option<&SegmentMemory>,
        output_hidden_states: bool,
    ) -> TransfoXlOutput {
        let [_, qlen] = input_ids.dims();
        let device = input_ids.device();
        let zeros;
        let memory = match memory {
            Some(memory) => Some(memory).filter(|m| !m.is_empty()),
            None if self.mem_len > 0 => {
                let [batch, _] = input_ids.dims();
                zeros = SegmentMemory::zeros(
                    self.layers.len(),
                    [batch, self.mem_len, self.d_model],
                    &device,
                );
                Some(&zeros)
            }
            None => None,
        };
        let mlen = memory.map_or(0, SegmentMemory::len);
        let klen = mlen + qlen;
        let mask = causal_mask(qlen, mlen, &device);
        let positions = self.dropout.forward(sinusoid_encoding(
            relative_distances(qlen, klen, self.clamp_len, &device),
            self.d_model,
        ));
        let shared = match (&self.r_w_bias, &self.r_r_bias) {
            (Some(content), Some(position)) => Some(RelativeBiases { content, position }),
            _ => None,
        };

        let mut x = self
            .dropout
            .forward(self.word_emb.forward(input_ids) * (self.d_model as f32).sqrt());
        let mut inputs = Vec::with_capacity(self.layers.len());
        for (i, layer) in self.layers.iter().enumerate() {
            inputs.push(x.clone());
            let layer_memory = memory.map(|m| m.layers[i].clone());
            let attended = layer.dec_attn.forward(
                x,
                layer_memory,
                positions.clone(),
                mask.clone(),
                shared.clone(),
            );
            x = layer.pos_ff.forward(attended);
        }
        let x = self.dropout.forward(x);
        let memory = SegmentMemory::update(memory, &inputs, Some(self.mem_len));
        let hidden_states = if output_hidden_states {
            inputs
                .into_iter()
                .chain(std::iter::once(x.clone()))
                .collect()
        } else {
            Vec::new()
        };
        TransfoXlOutput {
            last_hidden_state: x,
            hidden_states,
            memory,
        }
    }
}

impl ProteinEncoder for TransfoXlModel {
    fn hidden_size(&self) -> usize {
        self.d_model
    }

    /// One segment from the start of the sequence; the mask is not needed (causal attention,
    /// right padding).
    fn encode(&self, input: EncoderInput) -> EncoderOutput {
        let output = self.forward(input.input_ids, None, input.output_hidden_states);
        EncoderOutput {
            last_hidden_state: output.last_hidden_state,
            hidden_states: output.hidden_states,
        }
    }

    fn has_segment_memory(&self) -> bool {
        true
    }

    /// Read in segments of its memory length, the way it was trained.
    fn prepare_for_embedding(&mut self) -> Option<usize> {
        Some(self.mem_len).filter(|&m| m > 0)
    }

    fn encode_in_segments(
        &self,
        input_ids: Tensor<2, Int>,
        segment_len: usize,
    ) -> Option<Tensor<3>> {
        Some(self.forward_in_segments(input_ids, segment_len))
    }
}

impl TransfoXlModel {
    /// Reads a sequence in consecutive segments of `segment_length` tokens, each after the
    /// memory of the previous ones (the first from the zero memory, as [`Self::forward`]).
    ///
    /// # Shapes
    /// - input_ids: `[batch, seq]` -> `[batch, seq, d]`
    pub fn forward_in_segments(
        &self,
        input_ids: Tensor<2, Int>,
        segment_length: usize,
    ) -> Tensor<3> {
        read_in_segments(input_ids, segment_length, |segment, memory| {
            let output = self.forward(segment, memory, false);
            (output.last_hidden_state, output.memory)
        })
    }
}

/// `TransfoXLLMHeadModel`: the model and its output layer, tied to the word embeddings
/// (checkpoint `crit.out_layers.0`).
#[derive(Module, Debug)]
pub struct TransfoXlLmHeadModel {
    /// The model.
    pub transformer: TransfoXlModel,
    /// Output bias, `[vocab]` (checkpoint `crit.out_layers.0.bias`).
    pub crit_bias: Param<Tensor<1>>,
}

impl TransfoXlLmHeadModel {
    /// Next-token logits at every position of one segment, and the memory for the next.
    ///
    /// # Shapes
    /// - input_ids: `[batch, seq]` -> logits `[batch, seq, vocab]`
    pub fn forward(
        &self,
        input_ids: Tensor<2, Int>,
        memory: Option<&SegmentMemory>,
    ) -> (Tensor<3>, SegmentMemory) {
        let output = self.transformer.forward(input_ids, memory, false);
        let logits = logits_at_every_position(output.last_hidden_state, |h| self.logits(h));
        (logits, output.memory)
    }

    /// Logits of hidden states.
    ///
    /// # Shapes
    /// - hidden: `[n, d]` -> `[n, vocab]`
    pub fn logits(&self, hidden: Tensor<2>) -> Tensor<2> {
        hidden.matmul(self.transformer.word_emb.weight.val().transpose())
            + self.crit_bias.val().unsqueeze_dim(0)
    }
}

/// Transformer-XL's embedding and feed-forward names, relative to the model.
const TRANSFO_XL_LAYERS: RuleTable = &[
    ("word_emb.emb_layers.0", "word_emb"),
    (
        "layers.{i}.pos_ff.CoreNet.0",
        "layers.{i}.pos_ff.feed_forward.intermediate",
    ),
    (
        "layers.{i}.pos_ff.CoreNet.3",
        "layers.{i}.pos_ff.feed_forward.output",
    ),
];

/// `TransfoXLLMHeadModel` checkpoints into
/// [`TransfoXlLmHeadModel`](crate::TransfoXlLmHeadModel).
pub const TRANSFO_XL_LM_HEAD: KeyMap = KeyMap {
    aliases: &[],
    rules: &[
        ("transformer.", "transformer.", TRANSFO_XL_LAYERS),
        ("", "", &[("crit.out_layers.0.bias", "crit_bias")]),
    ],
    ignored: &[
        r"^transformer\.pos_emb\.inv_freq$", // recomputed
    ],
    tied: &[
        r"^crit\.out_layers\.0\.weight$", // the word embeddings
        // With `untie_r = false` every layer also stores the model's shared biases.
        r"^transformer\.layers\.\d+\.dec_attn\.r_[rw]_bias$",
    ],
};

/// Any Transformer-XL checkpoint into the bare [`TransfoXlModel`](crate::TransfoXlModel).
pub const TRANSFO_XL_ENCODER: KeyMap = KeyMap {
    aliases: &[(r"^transformer\.", "")],
    rules: &[("", "", TRANSFO_XL_LAYERS)],
    ignored: &[r"^pos_emb\.inv_freq$", r"^crit\."],
    tied: &[r"^layers\.\d+\.dec_attn\.r_[rw]_bias$"], // the shared biases
};

impl ArchitectureConfig for TransfoXlConfig {
    type Encoder = TransfoXlModel;
    const MODEL_TYPE: &'static str = "transfo-xl";
    const NAME: &'static str = "transfo_xl";
    const SAVED_CLASS: &'static str = "TransfoXLLMHeadModel";
    const SIGNATURE: &'static str = r"(^|\.)layers\.\d+\.dec_attn\.|^transformer\.word_emb\.";
    // Divergence: queries, keys and values come from one fused `qkv_net`, so `q`, `k` and `v`
    // each adapt all three.
    const LORA_TARGETS: LoraTargets = &[
        ("q", r"dec_attn\.qkv_net$"),
        ("k", r"dec_attn\.qkv_net$"),
        ("v", r"dec_attn\.qkv_net$"),
        ("o", r"dec_attn\.o_net$"),
        ("ffn", r"pos_ff\.CoreNet\.(0|3)$"),
    ];
    // ProtTXL's vocabulary was not released; prottrans trains Transformer-XL with ProtBert's.

    fn describe(&self) -> String {
        format!(
            "Transformer-XL, {} layers, width {}, memory of {} tokens",
            self.n_layer, self.d_model, self.mem_len
        )
    }
    fn validate(&self) -> Result<(), ModelConfigError> {
        TransfoXlConfig::validate(self)
    }
    fn hidden_size(&self) -> usize {
        self.d_model
    }
    fn vocab_size(&self) -> usize {
        self.vocab_size
    }
    fn max_tokens(&self) -> Option<usize> {
        None
    }
    /// Relative attention scores each query against every key and every relative position, on
    /// every backend; 1.24 GB measured where this estimates 1.54 (XLNet, 4,000 residues, 4 heads).
    fn attention_bytes_per_pair(&self, _fused: bool) -> u64 {
        24 * self.n_head as u64
    }
    fn init_model(&self, device: &Device) -> TransfoXlModel {
        TransfoXlConfig::init_model(self, device)
    }
    fn encoder_key_map(&self, _: &[String]) -> Result<KeyMap, ModelConfigError> {
        Ok(TRANSFO_XL_ENCODER)
    }
}

impl PretrainedModel for TransfoXlLmHeadModel {
    type Config = TransfoXlConfig;
    const CLASS: &'static str = "TransfoXLLMHeadModel";
    fn init(config: &TransfoXlConfig, device: &Device) -> Self {
        config.init(device)
    }
    fn key_map(_: &TransfoXlConfig) -> Result<KeyMap, ModelConfigError> {
        Ok(TRANSFO_XL_LM_HEAD)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::Tolerance;

    fn tiny() -> TransfoXlConfig {
        TransfoXlConfig {
            d_model: 16,
            d_embed: 16,
            n_head: 2,
            d_head: 8,
            d_inner: 32,
            n_layer: 2,
            mem_len: 4,
            dropout: 0.0,
            ..Default::default()
        }
    }

    #[test]
    fn parameter_count_matches_the_modules() {
        let device = Device::flex();
        for untie_r in [true, false] {
            let config = TransfoXlConfig { untie_r, ..tiny() };
            assert_eq!(
                config.init(&device).num_params(),
                config.num_parameters(),
                "untie_r {untie_r}"
            );
        }
    }

    /// Reading a sequence in two segments with memory gives what reading it at once gives, as
    /// long as the memory holds the whole first segment.
    #[test]
    fn segments_with_memory_match_one_pass() {
        let device = Device::flex();
        let config = TransfoXlConfig {
            mem_len: 8,
            ..tiny()
        };
        let model = config.init_model(&device);
        let ids = Tensor::<2, Int>::from_ints(
            [[5, 6, 7, 8, 9, 10, 11], [12, 13, 14, 15, 16, 17, 18]],
            &device,
        );
        let none = SegmentMemory::empty();
        let whole = model
            .forward(ids.clone(), Some(&none), false)
            .last_hidden_state;
        let first = model.forward(ids.clone().slice([0..2, 0..4]), Some(&none), false);
        assert_eq!(first.memory.len(), 4);
        let second = model.forward(ids.slice([0..2, 4..7]), Some(&first.memory), false);
        let joined = Tensor::cat(vec![first.last_hidden_state, second.last_hidden_state], 1);
        joined
            .into_data()
            .assert_approx_eq::<f32>(&whole.into_data(), Tolerance::absolute(1e-5));
    }

    #[test]
    fn unimplemented_reference_features_are_named() {
        let config = TransfoXlConfig {
            cutoffs: vec![10, 20],
            ..tiny()
        };
        assert!(
            config
                .validate()
                .unwrap_err()
                .to_string()
                .contains("cutoffs")
        );
        let config = TransfoXlConfig {
            same_length: true,
            ..tiny()
        };
        assert!(
            config
                .validate()
                .unwrap_err()
                .to_string()
                .contains("same_length")
        );
    }
}
