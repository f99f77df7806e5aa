//! XLNet, as `transformers`' `XLNetModel` / `XLNetLMHeadModel` (ProtXLNet).
//!
//! Transformer-XL's relative attention and segment memory ([`crate::blocks::relative_attention`]),
//! plus what permutation language modelling needs:
//! - a **segment term** in the scores: whether query and key carry different token types;
//! - **two streams**: the content stream `h` sees its own token, the query stream `g` (started
//!   from the learned `mask_emb`) only knows its position and must predict the token there;
//! - a **permutation mask** (`perm_mask[b, i, j]`: `i` may not see `j`), built from a sampled
//!   factorisation order, and a **target mapping** that picks the positions the query stream
//!   predicts (partial prediction).
//!
//! ProtXLNet pads on the left and ends each protein with `<sep> <cls>`. The feed-forward block is
//! Transformer-XL's, with XLNet's activation.

use burn::module::{Module, Param};
use burn::nn::{Dropout, DropoutConfig, Embedding, EmbeddingConfig, LayerNorm, LayerNormConfig};
use burn::tensor::{Bool, Device, Distribution, Int, Tensor};
use prottrans_tokenizer::Vocabulary;
use serde::{Deserialize, Serialize};

use crate::architecture::{ArchitectureConfig, LoraTargets, PretrainedModel, VocabularySource};
use crate::blocks::logits_at_every_position;
use crate::blocks::{
    Activation, RelativeBiases, ResidualFeedForward, SegmentMemory, SegmentTerm, causal_mask,
    normal_init, read_in_segments, relative_attention, relative_distances, sinusoid_encoding,
};
use crate::encoder::{EncoderInput, EncoderOutput, ProteinEncoder};
use crate::error::ModelConfigError;
use crate::key_map::{KeyMap, RuleTable};

/// Attention direction (`attn_type`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum AttentionType {
    /// Every position sees every other (permutation LM and embeddings).
    #[default]
    #[serde(rename = "bi")]
    Bidirectional,
    /// Causal.
    #[serde(rename = "uni")]
    Unidirectional,
}

/// XLNet hyper-parameters with the field names of a `transformers` `config.json`. Defaults are
/// the released ProtXLNet shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct XlnetConfig {
    /// Vocabulary size (ProtXLNet: 37).
    pub vocab_size: usize,
    /// Model width.
    pub d_model: usize,
    /// Number of layers.
    pub n_layer: usize,
    /// Number of attention heads.
    pub n_head: usize,
    /// Width of each head (`d_model / n_head`).
    pub d_head: usize,
    /// Feed-forward inner width.
    pub d_inner: usize,
    /// Feed-forward activation.
    pub ff_activation: Activation,
    /// Attention direction.
    pub attn_type: AttentionType,
    /// Standard deviation of the weight initialisation.
    pub initializer_range: f64,
    /// LayerNorm epsilon.
    pub layer_norm_eps: f64,
    /// Dropout on embeddings, probabilities and block outputs.
    pub dropout: f64,
    /// Hidden states kept per layer between segments; `None` (or 0) keeps all of them, as in
    /// `transformers`. XLNet's pretraining here does not use memory: this sets what embedding
    /// in segments and sampling keep.
    pub mem_len: Option<usize>,
    /// Only the first `reuse_len` positions of a segment go to memory (pretraining trick).
    pub reuse_len: Option<usize>,
    /// Both directions in one batch (pretraining trick); not implemented.
    pub bi_data: bool,
    /// Relative distances beyond this are treated as this far (`<= 0`: no clamping).
    pub clamp_len: i64,
    /// Every query sees the same number of keys (causal mode only); not implemented.
    pub same_length: bool,
    /// Id of the padding token.
    pub pad_token_id: usize,
}

impl Default for XlnetConfig {
    fn default() -> Self {
        Self {
            vocab_size: 37,
            d_model: 1024,
            n_layer: 30,
            n_head: 16,
            d_head: 64,
            d_inner: 4096,
            ff_activation: Activation::Gelu,
            attn_type: AttentionType::Bidirectional,
            initializer_range: 0.02,
            layer_norm_eps: 1e-12,
            dropout: 0.1,
            mem_len: Some(512),
            reuse_len: None,
            bi_data: false,
            clamp_len: -1,
            same_length: false,
            pad_token_id: 5,
        }
    }
}

impl XlnetConfig {
    /// Checks values that would fail later in obscure ways, and refuses reference features that
    /// are not implemented.
    pub fn validate(&self) -> Result<(), ModelConfigError> {
        crate::error::check_epsilon("xlnet", "layer_norm_eps", self.layer_norm_eps)?;
        let invalid = |message: String| {
            Err(ModelConfigError::Invalid {
                architecture: "xlnet",
                message,
            })
        };
        for (name, value) in [
            ("vocab_size", self.vocab_size),
            ("d_model", self.d_model),
            ("n_layer", self.n_layer),
            ("n_head", self.n_head),
            ("d_inner", self.d_inner),
        ] {
            if value == 0 {
                return invalid(format!("`{name}` must be at least 1"));
            }
        }
        if !self.d_model.is_multiple_of(self.n_head) || self.d_head * self.n_head != self.d_model {
            return invalid(format!(
                "`d_model` ({}) must be `n_head` ({}) times `d_head` ({})",
                self.d_model, self.n_head, self.d_head
            ));
        }
        if !self.d_model.is_multiple_of(2) {
            return invalid(format!(
                "`d_model` ({}) must be even for sinusoidal positions",
                self.d_model
            ));
        }
        if self.bi_data {
            return invalid("`bi_data = true` is not implemented".into());
        }
        if self.same_length && self.attn_type == AttentionType::Unidirectional {
            return invalid("`same_length = true` is not implemented".into());
        }
        if self.pad_token_id >= self.vocab_size {
            return invalid(format!(
                "`pad_token_id` ({}) is outside the vocabulary ({})",
                self.pad_token_id, self.vocab_size
            ));
        }
        Ok(())
    }

    /// Number of parameters of [`XlnetLmHeadModel`].
    pub fn num_parameters(&self) -> usize {
        let (d, inner, heads) = (self.d_model, self.d_inner, self.n_head * self.d_head);
        let attention = 5 * d * heads + 3 * heads + 2 * heads + 2 * d;
        let feed_forward = d * inner + inner + inner * d + d + 2 * d;
        self.vocab_size * d + d + self.n_layer * (attention + feed_forward) + self.vocab_size
    }

    /// Initialises the language model.
    pub fn init(&self, device: &Device) -> XlnetLmHeadModel {
        XlnetLmHeadModel {
            transformer: self.init_model(device),
            lm_loss: OutputBias {
                bias: Param::from_tensor(Tensor::zeros([self.vocab_size], device)),
            },
        }
    }

    /// Initialises the bare model.
    pub fn init_model(&self, device: &Device) -> XlnetModel {
        let distribution = Distribution::Normal(0.0, self.initializer_range);
        let normal =
            |shape: [usize; 3]| Param::from_tensor(Tensor::random(shape, distribution, device));
        let bias =
            |shape: [usize; 2]| Param::from_tensor(Tensor::random(shape, distribution, device));
        XlnetModel {
            word_embedding: EmbeddingConfig::new(self.vocab_size, self.d_model)
                .with_initializer(normal_init(self.initializer_range))
                .init(device),
            mask_emb: normal([1, 1, self.d_model]),
            layer: (0..self.n_layer)
                .map(|_| XlnetLayer {
                    rel_attn: XlnetRelativeAttention {
                        q: normal([self.d_model, self.n_head, self.d_head]),
                        k: normal([self.d_model, self.n_head, self.d_head]),
                        v: normal([self.d_model, self.n_head, self.d_head]),
                        o: normal([self.d_model, self.n_head, self.d_head]),
                        r: normal([self.d_model, self.n_head, self.d_head]),
                        r_r_bias: bias([self.n_head, self.d_head]),
                        r_s_bias: bias([self.n_head, self.d_head]),
                        r_w_bias: bias([self.n_head, self.d_head]),
                        seg_embed: normal([2, self.n_head, self.d_head]),
                        layer_norm: LayerNormConfig::new(self.d_model)
                            .with_epsilon(self.layer_norm_eps)
                            .init(device),
                        dropout: DropoutConfig::new(self.dropout).init(),
                    },
                    ff: ResidualFeedForward::new(
                        self.d_model,
                        self.d_inner,
                        self.ff_activation,
                        self.dropout,
                        (self.initializer_range, self.layer_norm_eps),
                        false,
                        device,
                    ),
                })
                .collect(),
            dropout: DropoutConfig::new(self.dropout).init(),
            d_model: self.d_model,
            mem_len: self.mem_len.filter(|&m| m > 0),
            reuse_len: self.reuse_len.filter(|&r| r > 0),
            clamp_len: (self.clamp_len > 0).then_some(self.clamp_len as usize),
            causal: self.attn_type == AttentionType::Unidirectional,
        }
    }
}

/// Relative attention with the segment term, for both streams (checkpoint `rel_attn`).
#[derive(Module, Debug)]
pub struct XlnetRelativeAttention {
    /// Query projection, `[d_model, heads, d_head]`.
    pub q: Param<Tensor<3>>,
    /// Key projection.
    pub k: Param<Tensor<3>>,
    /// Value projection.
    pub v: Param<Tensor<3>>,
    /// Output projection, `[d_model, heads, d_head]` (used transposed).
    pub o: Param<Tensor<3>>,
    /// Projection of the position encodings.
    pub r: Param<Tensor<3>>,
    /// Position bias `v`, `[heads, d_head]`.
    pub r_r_bias: Param<Tensor<2>>,
    /// Segment bias.
    pub r_s_bias: Param<Tensor<2>>,
    /// Content bias `u`.
    pub r_w_bias: Param<Tensor<2>>,
    /// Segment embeddings: same / different, `[2, heads, d_head]`.
    pub seg_embed: Param<Tensor<3>>,
    /// Post-LayerNorm.
    pub layer_norm: LayerNorm,
    dropout: Dropout,
}

/// Projects `[batch, seq, d]` with a `[d, heads, d_head]` parameter to `[batch, heads, seq, d_head]`.
fn project(x: Tensor<3>, weight: &Param<Tensor<3>>) -> Tensor<4> {
    let [batch, seq, d] = x.dims();
    let [_, heads, head_dim] = weight.dims();
    x.reshape([batch * seq, d])
        .matmul(weight.val().reshape([d, heads * head_dim]))
        .reshape([batch, seq, heads, head_dim])
        .swap_dims(1, 2)
}

/// Masks and segment information shared by every layer of one forward pass.
struct Context<'a> {
    positions: Tensor<2>,
    content_mask: Option<Tensor<4, Bool>>,
    query_mask: Option<Tensor<4, Bool>>,
    segment_differs: Option<Tensor<4>>,
    target_mapping: Option<&'a Tensor<3>>,
}

impl XlnetRelativeAttention {
    fn attend(
        &self,
        q: Tensor<4>,
        k: Tensor<4>,
        v: Tensor<4>,
        position_keys: Tensor<3>,
        context: &Context<'_>,
        mask: Option<Tensor<4, Bool>>,
    ) -> Tensor<4> {
        let segment = context.segment_differs.clone().map(|differs| SegmentTerm {
            bias: &self.r_s_bias,
            embeddings: &self.seg_embed,
            differs,
        });
        let biases = RelativeBiases {
            content: &self.r_w_bias,
            position: &self.r_r_bias,
        };
        relative_attention(q, k, v, position_keys, biases, segment, mask, &self.dropout)
    }

    /// Output projection, residual and LayerNorm.
    fn post_attention(&self, residual: Tensor<3>, context: Tensor<4>) -> Tensor<3> {
        let [batch, heads, seq, head_dim] = context.dims();
        let d = residual.dims()[2];
        let out = context
            .swap_dims(1, 2)
            .reshape([batch * seq, heads * head_dim])
            .matmul(self.o.val().reshape([d, heads * head_dim]).transpose())
            .reshape([batch, seq, d]);
        self.layer_norm
            .forward(self.dropout.forward(out) + residual)
    }

    /// Both streams; the query stream only when `g` is given.
    ///
    /// # Shapes
    /// - h: `[batch, qlen, d]`, g: `[batch, targets, d]`, memory: `[batch, mlen, d]`
    fn forward(
        &self,
        h: Tensor<3>,
        g: Option<Tensor<3>>,
        memory: Option<Tensor<3>>,
        context: &Context<'_>,
    ) -> (Tensor<3>, Option<Tensor<3>>) {
        let keys_in = match memory {
            Some(memory) => Tensor::cat(vec![memory, h.clone()], 1),
            None => h.clone(),
        };
        let k = project(keys_in.clone(), &self.k);
        let v = project(keys_in, &self.v);
        let position_keys =
            project(context.positions.clone().unsqueeze_dim(0), &self.r).squeeze_dim::<3>(0);

        let q = project(h.clone(), &self.q);
        let content = self.attend(
            q,
            k.clone(),
            v.clone(),
            position_keys.clone(),
            context,
            context.content_mask.clone(),
        );
        let h_out = self.post_attention(h, content);

        let g_out = g.map(|g| {
            let q = project(g.clone(), &self.q);
            let attended = match context.target_mapping {
                Some(mapping) => {
                    // Each target's query moves to its position, attends there, and comes back.
                    let mapping = mapping.clone().unsqueeze_dim::<4>(1);
                    let at_positions = mapping.clone().swap_dims(2, 3).matmul(q);
                    let attended = self.attend(
                        at_positions,
                        k,
                        v,
                        position_keys,
                        context,
                        context.query_mask.clone(),
                    );
                    mapping.matmul(attended)
                }
                None => self.attend(q, k, v, position_keys, context, context.query_mask.clone()),
            };
            self.post_attention(g, attended)
        });
        (h_out, g_out)
    }
}

/// One layer (checkpoint `layer.<i>`): relative attention, then Transformer-XL's feed-forward
/// block on each stream.
#[derive(Module, Debug)]
pub struct XlnetLayer {
    /// Attention.
    pub rel_attn: XlnetRelativeAttention,
    /// Feed-forward (checkpoint `ff.layer_1`, `ff.layer_2`, `ff.layer_norm`).
    pub ff: ResidualFeedForward,
}

/// The inputs of one XLNet pass.
#[derive(Debug, Clone)]
pub struct XlnetInput {
    /// Token ids, `[batch, seq]`.
    pub input_ids: Tensor<2, Int>,
    /// 1 at real tokens, 0 at padding, `[batch, seq]`.
    pub attention_mask: Option<Tensor<2, Int>>,
    /// Segment ids, `[batch, seq]`; without them there is no segment term.
    pub token_type_ids: Option<Tensor<2, Int>>,
    /// `true` where position `i` may not see position `j`, `[batch, seq, seq]`.
    pub perm_mask: Option<Tensor<3, Bool>>,
    /// One-hot rows picking the positions the query stream predicts, `[batch, targets, seq]`.
    pub target_mapping: Option<Tensor<3>>,
    /// Also return the embedding output and every layer's content stream.
    pub output_hidden_states: bool,
}

impl XlnetInput {
    /// Ids and, when the batch is padded, the mask.
    pub fn new(input_ids: Tensor<2, Int>, attention_mask: Option<Tensor<2, Int>>) -> Self {
        Self {
            input_ids,
            attention_mask,
            token_type_ids: None,
            perm_mask: None,
            target_mapping: None,
            output_hidden_states: false,
        }
    }
}

/// What one XLNet pass gives back.
#[derive(Debug, Clone)]
pub struct XlnetOutput {
    /// Final content stream, `[batch, seq, d]`.
    pub last_hidden_state: Tensor<3>,
    /// Final query stream at the targets, `[batch, targets, d]`, when a target mapping was given.
    pub query_hidden_state: Option<Tensor<3>>,
    /// Embedding output and each layer's content stream, when asked for.
    pub hidden_states: Vec<Tensor<3>>,
    /// The memory for the next segment (detached).
    pub memory: SegmentMemory,
}

/// `XLNetModel` (checkpoint prefix `transformer.`).
#[derive(Module, Debug)]
pub struct XlnetModel {
    /// Word embeddings.
    pub word_embedding: Embedding,
    /// Start of the query stream, `[1, 1, d]`.
    pub mask_emb: Param<Tensor<3>>,
    /// The layers.
    pub layer: Vec<XlnetLayer>,
    dropout: Dropout,
    #[module(skip)]
    d_model: usize,
    #[module(skip)]
    mem_len: Option<usize>,
    #[module(skip)]
    reuse_len: Option<usize>,
    #[module(skip)]
    clamp_len: Option<usize>,
    #[module(skip)]
    causal: bool,
}

impl XlnetModel {
    /// Width of the hidden states.
    pub fn hidden_size(&self) -> usize {
        self.d_model
    }

    /// Hidden states kept per layer between segments (`None`: all).
    pub fn mem_len(&self) -> Option<usize> {
        self.mem_len
    }

    /// Sets how many hidden states are kept between segments (the released ProtXLNet embeds
    /// with 512; its `config.json` may say otherwise).
    pub fn set_mem_len(&mut self, mem_len: Option<usize>) {
        self.mem_len = mem_len.filter(|&m| m > 0);
    }

    /// Sets `reuse_len` (`None`: every position of a segment goes to memory). Reading a
    /// sequence in consecutive segments needs `None`: with fewer positions remembered, the next
    /// segment would take them for its immediate predecessors.
    pub fn set_reuse_len(&mut self, reuse_len: Option<usize>) {
        self.reuse_len = reuse_len.filter(|&r| r > 0);
    }

    /// Reads one segment after the `memory` of the previous ones.
    ///
    /// # Shapes
    /// - input ids `[batch, seq]` (mask, token types alike), perm_mask `[batch, seq, seq]`,
    ///   target_mapping `[batch, targets, seq]`, memory `[batch, mlen, d]` per layer
    /// - last_hidden_state `[batch, seq, d]`, query_hidden_state `[batch, targets, d]`
    pub fn forward(&self, input: XlnetInput, memory: Option<&SegmentMemory>) -> XlnetOutput {
        let [batch, qlen] = input.input_ids.dims();
        let device = input.input_ids.device();
        let memory = memory.filter(|m| !m.is_empty());
        let mlen = memory.map_or(0, SegmentMemory::len);
        let klen = mlen + qlen;

        // Masks: `true` where a query may not look. Memory is always visible (except causally).
        let padding = input.attention_mask.map(|mask| {
            mask.equal_elem(0)
                .reshape([batch, 1, qlen])
                .expand([batch, qlen, qlen])
        });
        let data = match (padding, input.perm_mask) {
            (Some(padding), Some(perm)) => {
                Some(padding.float().add(perm.float()).greater_elem(0.0))
            }
            (Some(mask), None) | (None, Some(mask)) => Some(mask),
            (None, None) => None,
        };
        let data = data.map(|mask| {
            let mask = if mlen > 0 {
                Tensor::cat(
                    vec![
                        Tensor::<3>::zeros([batch, qlen, mlen], &device).greater_elem(0.0),
                        mask,
                    ],
                    2,
                )
            } else {
                mask
            };
            mask.unsqueeze_dim::<4>(1)
        });
        let query_mask = match (self.causal, data) {
            (true, Some(data)) => Some(
                data.float()
                    .add(causal_mask(qlen, mlen, &device).float())
                    .greater_elem(0.0),
            ),
            (true, None) => Some(causal_mask(qlen, mlen, &device).expand([batch, 1, qlen, klen])),
            (false, data) => data,
        };
        // The content stream always sees its own token.
        let content_mask = query_mask.clone().map(|mask| {
            let own = Tensor::<2>::eye(qlen, &device);
            let own = if mlen > 0 {
                Tensor::cat(vec![Tensor::zeros([qlen, mlen], &device), own], 1)
            } else {
                own
            };
            mask.float()
                .sub(own.reshape([1, 1, qlen, klen]))
                .greater_elem(0.0)
        });
        let segment_differs = input.token_type_ids.map(|types| {
            let keys = if mlen > 0 {
                Tensor::cat(
                    vec![
                        Tensor::<2, Int>::zeros([batch, mlen], &device),
                        types.clone(),
                    ],
                    1,
                )
            } else {
                types.clone()
            };
            types
                .reshape([batch, qlen, 1])
                .expand([batch, qlen, klen])
                .not_equal(keys.reshape([batch, 1, klen]).expand([batch, qlen, klen]))
                .float()
                .unsqueeze_dim::<4>(1)
        });
        let rows_end = if self.causal { 1 } else { qlen };
        let positions = self.dropout.forward(sinusoid_encoding(
            relative_distances(rows_end, klen, self.clamp_len, &device),
            self.d_model,
        ));
        let context = Context {
            positions,
            content_mask,
            query_mask,
            segment_differs,
            target_mapping: input.target_mapping.as_ref(),
        };

        let mut h = self
            .dropout
            .forward(self.word_embedding.forward(input.input_ids));
        let mut g = input.target_mapping.as_ref().map(|mapping| {
            let targets = mapping.dims()[1];
            self.dropout
                .forward(self.mask_emb.val().expand([batch, targets, self.d_model]))
        });
        let mut inputs = Vec::with_capacity(self.layer.len());
        for (i, layer) in self.layer.iter().enumerate() {
            inputs.push(h.clone());
            let layer_memory = memory.map(|m| m.layers[i].clone());
            let (h_attended, g_attended) = layer.rel_attn.forward(h, g, layer_memory, &context);
            h = layer.ff.forward(h_attended);
            g = g_attended.map(|g| layer.ff.forward(g));
        }
        let h = self.dropout.forward(h);
        let g = g.map(|g| self.dropout.forward(g));
        let remembered: Vec<Tensor<3>> = match self.reuse_len {
            Some(reuse) if reuse < qlen => inputs
                .iter()
                .map(|t| t.clone().slice([0..batch, 0..reuse, 0..self.d_model]))
                .collect(),
            _ => inputs.clone(),
        };
        let memory = SegmentMemory::update(memory, &remembered, self.mem_len);
        let hidden_states = if input.output_hidden_states {
            inputs
                .into_iter()
                .chain(std::iter::once(h.clone()))
                .collect()
        } else {
            Vec::new()
        };
        XlnetOutput {
            last_hidden_state: h,
            query_hidden_state: g,
            hidden_states,
            memory,
        }
    }
}

impl XlnetModel {
    /// Reads a sequence (no padding, no token types) in consecutive segments of
    /// `segment_length` tokens, each after the memory of the previous ones.
    ///
    /// # Shapes
    /// - input_ids: `[batch, seq]` -> `[batch, seq, d]`
    pub fn forward_in_segments(
        &self,
        input_ids: Tensor<2, Int>,
        segment_length: usize,
    ) -> Tensor<3> {
        read_in_segments(input_ids, segment_length, |segment, memory| {
            let output = self.forward(XlnetInput::new(segment, None), memory);
            (output.last_hidden_state, output.memory)
        })
    }
}

impl ProteinEncoder for XlnetModel {
    fn hidden_size(&self) -> usize {
        self.d_model
    }

    /// Ids and mask, and token types when given (the ProtTrans authors embed ProtXLNet without
    /// them, and so does `Embedder`).
    fn encode(&self, input: EncoderInput) -> EncoderOutput {
        let output = self.forward(
            XlnetInput {
                input_ids: input.input_ids,
                attention_mask: input.attention_mask,
                token_type_ids: input.token_type_ids,
                perm_mask: None,
                target_mapping: None,
                output_hidden_states: input.output_hidden_states,
            },
            None,
        );
        EncoderOutput {
            last_hidden_state: output.last_hidden_state,
            hidden_states: output.hidden_states,
        }
    }

    fn has_segment_memory(&self) -> bool {
        true
    }

    /// The authors load ProtXLNet with `mem_len=512` and embed each protein in one pass
    /// (memory only matters to segments read after it), so 512 is the default memory and there
    /// is no segment length; a caller that sets one reads a longer protein in segments.
    fn prepare_for_embedding(&mut self) -> Option<usize> {
        self.set_mem_len(Some(self.mem_len.unwrap_or(512)));
        self.set_reuse_len(None);
        None
    }

    fn encode_in_segments(
        &self,
        input_ids: Tensor<2, Int>,
        segment_len: usize,
    ) -> Option<Tensor<3>> {
        Some(self.forward_in_segments(input_ids, segment_len))
    }
}

/// A free-standing output bias (checkpoint `lm_loss.bias`; the weight is the tied embedding).
#[derive(Module, Debug)]
pub struct OutputBias {
    /// `[vocab]`.
    pub bias: Param<Tensor<1>>,
}

/// `XLNetLMHeadModel`: the model and its output layer, tied to the word embeddings.
#[derive(Module, Debug)]
pub struct XlnetLmHeadModel {
    /// The model.
    pub transformer: XlnetModel,
    /// Output bias.
    pub lm_loss: OutputBias,
}

impl XlnetLmHeadModel {
    /// Logits of the query stream at the targets when a target mapping is given, else of the
    /// content stream at every position; and the memory for the next segment.
    ///
    /// # Shapes
    /// - input ids `[batch, seq]` -> logits `[batch, targets or seq, vocab]`
    pub fn forward(
        &self,
        input: XlnetInput,
        memory: Option<&SegmentMemory>,
    ) -> (Tensor<3>, SegmentMemory) {
        let output = self.transformer.forward(input, memory);
        let hidden = output
            .query_hidden_state
            .unwrap_or(output.last_hidden_state);
        (
            logits_at_every_position(hidden, |h| self.logits(h)),
            output.memory,
        )
    }

    /// Logits of hidden states.
    ///
    /// # Shapes
    /// - hidden: `[n, d]` -> `[n, vocab]`
    pub fn logits(&self, hidden: Tensor<2>) -> Tensor<2> {
        hidden.matmul(self.transformer.word_embedding.weight.val().transpose())
            + self.lm_loss.bias.val().unsqueeze_dim(0)
    }
}

/// XLNet's layers, relative to the model: the feed-forward block is Transformer-XL's.
const XLNET_LAYERS: RuleTable = &[
    (
        "layer.{i}.ff.layer_1",
        "layer.{i}.ff.feed_forward.intermediate",
    ),
    ("layer.{i}.ff.layer_2", "layer.{i}.ff.feed_forward.output"),
];

/// `XLNetLMHeadModel` checkpoints (ProtXLNet) into
/// [`XlnetLmHeadModel`](crate::XlnetLmHeadModel).
pub const XLNET_LM_HEAD: KeyMap = KeyMap {
    aliases: &[],
    rules: &[("transformer.", "transformer.", XLNET_LAYERS)],
    ignored: &[],
    tied: &[r"^lm_loss\.weight$"], // copies of the word embeddings
};

/// Any XLNet checkpoint into the bare [`XlnetModel`](crate::XlnetModel).
pub const XLNET_ENCODER: KeyMap = KeyMap {
    aliases: &[(r"^transformer\.", "")],
    rules: &[("", "", XLNET_LAYERS)],
    ignored: &[r"^lm_loss\.", r"^sequence_summary\.", r"^logits_proj\."],
    tied: &[],
};

impl ArchitectureConfig for XlnetConfig {
    type Encoder = XlnetModel;
    const MODEL_TYPE: &'static str = "xlnet";
    const NAME: &'static str = "xlnet";
    const SAVED_CLASS: &'static str = "XLNetLMHeadModel";
    const SIGNATURE: &'static str = r"(^|\.)layer\.\d+\.rel_attn\.|^transformer\.mask_emb$";
    // Divergence: q, k, v, o are 3-D parameters `[d_model, heads, d_head]` in transformers
    // too (not linear layers), so LoRA, here as in peft, adapts only the feed-forward pair.
    const LORA_TARGETS: LoraTargets = &[("ffn", r"ff\.layer_(1|2)$")];
    const VOCABULARY: VocabularySource = VocabularySource::Checkpoint;

    /// prottrans' XLNet layout (`residues <sep> <cls>`, left padding), not the released ProtXLNet
    /// ids (whose table is read from the checkpoint).
    fn default_vocabulary() -> Vocabulary {
        Vocabulary::prottrans_xlnet()
    }
    fn describe(&self) -> String {
        format!("XLNet, {} layers, width {}", self.n_layer, self.d_model)
    }
    fn validate(&self) -> Result<(), ModelConfigError> {
        XlnetConfig::validate(self)
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
    fn init_model(&self, device: &Device) -> XlnetModel {
        XlnetConfig::init_model(self, device)
    }
    fn encoder_key_map(&self, _: &[String]) -> Result<KeyMap, ModelConfigError> {
        Ok(XLNET_ENCODER)
    }
}

impl PretrainedModel for XlnetLmHeadModel {
    type Config = XlnetConfig;
    const CLASS: &'static str = "XLNetLMHeadModel";
    fn init(config: &XlnetConfig, device: &Device) -> Self {
        config.init(device)
    }
    fn key_map(_: &XlnetConfig) -> Result<KeyMap, ModelConfigError> {
        Ok(XLNET_LM_HEAD)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{TensorData, Tolerance};

    fn tiny() -> XlnetConfig {
        XlnetConfig {
            vocab_size: 37,
            d_model: 16,
            n_layer: 2,
            n_head: 2,
            d_head: 8,
            d_inner: 32,
            dropout: 0.0,
            mem_len: None,
            ..Default::default()
        }
    }

    #[test]
    fn parameter_count_matches_the_modules() {
        let config = tiny();
        assert_eq!(
            config.init(&Device::flex()).num_params(),
            config.num_parameters()
        );
    }

    /// A target's prediction must not depend on its own token, nor on later targets.
    #[test]
    fn the_query_stream_cannot_see_what_it_predicts() {
        let device = Device::flex();
        let model = tiny().init(&device);
        let run = |ids: [i64; 5]| {
            // Targets: positions 1 then 3 in the factorisation order; everything else is context.
            let mut perm = vec![false; 25];
            for i in 0..5 {
                perm[i * 5 + 1] = i != 3; // only target 3, later in the order, sees target 1
                perm[i * 5 + 3] = true; // target 3 is last: nobody sees it
            }
            let input = XlnetInput {
                perm_mask: Some(Tensor::from_data(TensorData::new(perm, [1, 5, 5]), &device)),
                target_mapping: Some(Tensor::from_data(
                    TensorData::new(vec![0.0f32, 1., 0., 0., 0., 0., 0., 0., 1., 0.], [1, 2, 5]),
                    &device,
                )),
                ..XlnetInput::new(
                    Tensor::from_data(TensorData::new(ids.to_vec(), [1, 5]), &device),
                    None,
                )
            };
            model.forward(input, None).0
        };
        let base = run([10, 11, 12, 13, 14]);
        let other_target = run([10, 20, 12, 21, 14]);
        // Target at position 1 sees neither its token nor position 3's.
        base.clone()
            .slice([0..1, 0..1])
            .into_data()
            .assert_approx_eq::<f32>(
                &other_target.clone().slice([0..1, 0..1]).into_data(),
                Tolerance::absolute(1e-6),
            );
        // Target at position 3 sees position 1, so it changes.
        let diff = (base.slice([0..1, 1..2]) - other_target.slice([0..1, 1..2]))
            .abs()
            .max()
            .into_scalar::<f32>();
        assert!(diff > 1e-4, "{diff}");
    }

    /// In causal mode, reading in segments with memory equals one pass (bidirectional mode
    /// differs by design: the first segment cannot see the second).
    #[test]
    fn causal_segments_with_memory_match_one_pass() {
        let device = Device::flex();
        let config = XlnetConfig {
            attn_type: AttentionType::Unidirectional,
            ..tiny()
        };
        let model = config.init_model(&device);
        let ids = Tensor::<2, Int>::from_ints(
            [[9, 10, 11, 12, 13, 14], [15, 16, 17, 18, 19, 20]],
            &device,
        );
        let whole = model
            .forward(XlnetInput::new(ids.clone(), None), None)
            .last_hidden_state;
        let first = model.forward(XlnetInput::new(ids.clone().slice([0..2, 0..4]), None), None);
        let second = model.forward(
            XlnetInput::new(ids.slice([0..2, 4..6]), None),
            Some(&first.memory),
        );
        Tensor::cat(vec![first.last_hidden_state, second.last_hidden_state], 1)
            .into_data()
            .assert_approx_eq::<f32>(&whole.into_data(), Tolerance::absolute(1e-5));
    }
}
