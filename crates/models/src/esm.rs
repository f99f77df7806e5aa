//! ESM-2, as `transformers`' `EsmModel` / `EsmForMaskedLM` (Lin et al. 2023).
//!
//! BERT-like, with these divergences, each marked where it happens:
//! - rotary position embeddings on queries and keys, no learned positions, no token types;
//! - pre-LayerNorm layers and a final `emb_layer_norm_after`;
//! - token dropout at inference: `<mask>` rows of the embeddings zeroed and every row scaled by
//!   `(1 - 0.15 * 0.8) / (1 - observed mask ratio)`, padding rows zeroed;
//! - a contact head: logistic regression over the symmetrised, APC-corrected attention maps of
//!   every layer and head.
//!
//! Module names follow the checkpoint; [`ESM_FOR_MASKED_LM`] and [`ESM_ENCODER`] map the rest.
//! Its vocabulary (`<cls> <pad> <eos> <unk>`, residues, `<mask>`) is the checkpoint's
//! `vocab.txt`, framed `<cls> residues <eos>`; U, Z, O and B are tokens of their own, as ESM's
//! alphabet has them.

use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, Embedding, EmbeddingConfig, LayerNorm, LayerNormConfig};
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{Bool, Device, Int, Tensor, activation};
use prottrans_tokenizer::Vocabulary;
use serde::{Deserialize, Serialize};

use crate::architecture::{ArchitectureConfig, LoraTargets, MaskedLanguageModel, PretrainedModel};
use crate::blocks::{
    Activation, FeedForward, FeedForwardConfig, MaskedLmHead, MaskedLmHeadConfig,
    MultiHeadAttention, MultiHeadAttentionConfig, RotaryEmbedding, logits_at_every_position,
    normal_init, padding_mask, select_positions,
};
use crate::encoder::{EncoderInput, EncoderOutput, ProteinEncoder};
use crate::error::ModelConfigError;
use crate::key_map::{KeyMap, RuleTable};

/// The masking rate ESM-2 was trained with (15% of tokens, 80% of those as `<mask>`); token
/// dropout rescales embeddings by it.
const MASK_RATIO_TRAIN: f64 = 0.15 * 0.8;

/// The `<eos>` id the contact head drops, fixed as in `transformers`.
const CONTACT_EOS_ID: i64 = 2;

/// ESM hyper-parameters, with the field names of a Hugging Face `config.json`, so a released
/// `config.json` deserialises as is. Defaults are the 8M-parameter ESM-2
/// (`facebook/esm2_t6_8M_UR50D`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EsmConfig {
    /// Vocabulary size (ESM-2: 33).
    pub vocab_size: usize,
    /// Model width.
    pub hidden_size: usize,
    /// Number of transformer layers.
    pub num_hidden_layers: usize,
    /// Number of attention heads.
    pub num_attention_heads: usize,
    /// Feed-forward inner width.
    pub intermediate_size: usize,
    /// Dropout on block outputs.
    pub hidden_dropout_prob: f64,
    /// Dropout on attention probabilities.
    pub attention_probs_dropout_prob: f64,
    /// Positions of learned embeddings (unused with rotary embeddings: any length works).
    pub max_position_embeddings: usize,
    /// Base of the rotary frequencies.
    pub rope_theta: f64,
    /// Standard deviation of the weight initialisation.
    pub initializer_range: f64,
    /// LayerNorm epsilon.
    pub layer_norm_eps: f64,
    /// `"rotary"` (ESM-2); ESM-1b's `"absolute"` is not implemented.
    pub position_embedding_type: String,
    /// A LayerNorm right after the embeddings (ESM-1b); ESM-2 has none.
    pub emb_layer_norm_before: Option<bool>,
    /// Token dropout at inference (ESM-2: true).
    pub token_dropout: bool,
    /// Id of `<mask>` (ESM-2: 32).
    pub mask_token_id: Option<usize>,
    /// Id of `<pad>` (ESM-2: 1).
    pub pad_token_id: Option<usize>,
    /// ESMFold checkpoints carry a folding trunk prottrans does not implement.
    pub is_folding_model: bool,
    /// Whether the MLM decoder is the word embeddings (always so in ESM-2).
    pub tie_word_embeddings: bool,
}

impl Default for EsmConfig {
    fn default() -> Self {
        Self {
            vocab_size: 33,
            hidden_size: 320,
            num_hidden_layers: 6,
            num_attention_heads: 20,
            intermediate_size: 1280,
            hidden_dropout_prob: 0.0,
            attention_probs_dropout_prob: 0.0,
            max_position_embeddings: 1026,
            rope_theta: 10000.0,
            initializer_range: 0.02,
            layer_norm_eps: 1e-5,
            position_embedding_type: "rotary".into(),
            emb_layer_norm_before: Some(false),
            token_dropout: true,
            mask_token_id: Some(32),
            pad_token_id: Some(1),
            is_folding_model: false,
            tie_word_embeddings: true,
        }
    }
}

impl EsmConfig {
    /// Checks values that would fail later in obscure ways, and refuses the ESM variants that
    /// are not implemented by name.
    pub fn validate(&self) -> Result<(), ModelConfigError> {
        crate::error::check_epsilon("esm", "layer_norm_eps", self.layer_norm_eps)?;
        let invalid = |message: String| ModelConfigError::Invalid {
            architecture: "esm",
            message,
        };
        for (name, value) in [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("num_hidden_layers", self.num_hidden_layers),
            ("num_attention_heads", self.num_attention_heads),
            ("intermediate_size", self.intermediate_size),
        ] {
            if value == 0 {
                return Err(invalid(format!("{name} must be at least 1")));
            }
        }
        if !self.hidden_size.is_multiple_of(self.num_attention_heads)
            || !(self.hidden_size / self.num_attention_heads).is_multiple_of(2)
        {
            return Err(invalid(format!(
                "hidden_size ({}) must be num_attention_heads ({}) times an even head width (rotary embeddings rotate pairs)",
                self.hidden_size, self.num_attention_heads
            )));
        }
        if self.position_embedding_type != "rotary" {
            return Err(invalid(format!(
                "position_embedding_type `{}` is not implemented (ESM-2's `rotary` is; ESM-1b and ESM-1v use `absolute`)",
                self.position_embedding_type
            )));
        }
        if self.emb_layer_norm_before == Some(true) {
            return Err(invalid(
                "emb_layer_norm_before = true (ESM-1b) is not implemented".into(),
            ));
        }
        if self.is_folding_model {
            return Err(invalid(
                "ESMFold checkpoints (is_folding_model = true) are not implemented; their language model is an ESM-2 checkpoint of its own".into(),
            ));
        }
        if !self.tie_word_embeddings {
            return Err(invalid(
                "tie_word_embeddings = false is not implemented (ESM-2 decodes with its word embeddings)".into(),
            ));
        }
        for (name, id) in [
            ("mask_token_id", self.mask_token_id),
            ("pad_token_id", self.pad_token_id),
        ] {
            if let Some(id) = id
                && id >= self.vocab_size
            {
                return Err(invalid(format!(
                    "{name} ({id}) is outside the vocabulary ({})",
                    self.vocab_size
                )));
            }
        }
        if self.token_dropout && self.mask_token_id.is_none() {
            return Err(invalid("token_dropout needs mask_token_id".into()));
        }
        for (name, p) in [
            ("hidden_dropout_prob", self.hidden_dropout_prob),
            (
                "attention_probs_dropout_prob",
                self.attention_probs_dropout_prob,
            ),
        ] {
            if !(0.0..1.0).contains(&p) {
                return Err(invalid(format!("{name} must be in [0, 1), got {p}")));
            }
        }
        Ok(())
    }

    /// Width of each head.
    pub fn head_dim(&self) -> usize {
        self.hidden_size / self.num_attention_heads
    }

    /// Number of trainable parameters of [`EsmForMaskedLm`] (tied decoder counted once,
    /// contact head included).
    pub fn num_parameters(&self) -> usize {
        let (v, d, f, l, h) = (
            self.vocab_size,
            self.hidden_size,
            self.intermediate_size,
            self.num_hidden_layers,
            self.num_attention_heads,
        );
        let layer = 4 * (d * d + d) + 2 * d * f + f + d + 4 * d;
        let contact_head = l * h + 1;
        let lm_head = d * d + d + 2 * d + v;
        v * d + l * layer + 2 * d + contact_head + lm_head
    }

    /// Initialises the encoder (with its contact head) on `device`.
    pub fn init_model(&self, device: &Device) -> EsmModel {
        let d = self.hidden_size;
        let norm = || {
            LayerNormConfig::new(d)
                .with_epsilon(self.layer_norm_eps)
                .init(device)
        };
        let layer = || EsmLayer {
            attention: MultiHeadAttentionConfig::new(d, self.num_attention_heads)
                .with_dropout(self.attention_probs_dropout_prob)
                .with_initializer_range(self.initializer_range)
                .init(device),
            attention_norm: norm(),
            // ESM's own erf GELU whatever `hidden_act` says, as transformers.
            feed_forward: FeedForwardConfig::new(d, self.intermediate_size)
                .with_activation(Activation::Gelu)
                .with_initializer_range(self.initializer_range)
                .init(device),
            output_norm: norm(),
            dropout: DropoutConfig::new(self.hidden_dropout_prob).init(),
        };
        EsmModel {
            embeddings: EsmEmbeddings {
                word_embeddings: EmbeddingConfig::new(self.vocab_size, d)
                    .with_initializer(normal_init(self.initializer_range))
                    .init(device),
                token_dropout: self.token_dropout,
                mask_token_id: self.mask_token_id,
            },
            encoder: EsmEncoder {
                layer: (0..self.num_hidden_layers).map(|_| layer()).collect(),
                emb_layer_norm_after: norm(),
            },
            contact_head: EsmContactHead {
                regression: LinearConfig::new(self.num_hidden_layers * self.num_attention_heads, 1)
                    .with_initializer(normal_init(self.initializer_range))
                    .init(device),
            },
            hidden_size: d,
            head_dim: self.head_dim(),
            rope_theta: self.rope_theta,
        }
    }

    /// Initialises the encoder with its masked-LM head on `device`.
    pub fn init(&self, device: &Device) -> EsmForMaskedLm {
        EsmForMaskedLm {
            esm: self.init_model(device),
            lm_head: MaskedLmHeadConfig {
                hidden: self.hidden_size,
                width: self.hidden_size,
                vocab_size: self.vocab_size,
                activation: Activation::Gelu,
                layer_norm_eps: self.layer_norm_eps,
                initializer_range: self.initializer_range,
            }
            .init(device),
        }
    }
}

/// Word embeddings with ESM-2's token dropout.
#[derive(Module, Debug)]
pub struct EsmEmbeddings {
    /// `[vocab, d]`; also the MLM decoder.
    pub word_embeddings: Embedding,
    #[module(skip)]
    token_dropout: bool,
    #[module(skip)]
    mask_token_id: Option<usize>,
}

impl EsmEmbeddings {
    /// # Shapes
    /// - input_ids, attention_mask: `[batch, seq]` -> `[batch, seq, d]`
    pub fn forward(
        &self,
        input_ids: Tensor<2, Int>,
        attention_mask: Option<&Tensor<2, Int>>,
    ) -> Tensor<3> {
        let [batch, seq] = input_ids.dims();
        let mut x = self.word_embeddings.forward(input_ids.clone());
        // Divergence from BERT: token dropout. `<mask>` rows are zeroed, as in training, and
        // the rest scaled up by the ratio of training's mask rate to this batch's.
        if let (true, Some(mask_id)) = (self.token_dropout, self.mask_token_id) {
            let is_mask = input_ids.equal_elem(mask_id as i64);
            let observed = is_mask.clone().int().sum_dim(1).float();
            let lengths = match attention_mask {
                Some(m) => m.clone().sum_dim(1).float(),
                None => Tensor::<2>::full([batch, 1], seq as f32, &x.device()),
            };
            let kept = (observed / lengths).neg().add_scalar(1.0);
            let unmasked = is_mask.bool_not().float().unsqueeze_dim::<3>(2);
            x = ((x * unmasked) * (1.0 - MASK_RATIO_TRAIN)) / kept.unsqueeze_dim::<3>(2);
        }
        match attention_mask {
            Some(m) => x * m.clone().float().unsqueeze_dim::<3>(2),
            None => x,
        }
    }
}

/// One pre-LayerNorm layer.
#[derive(Module, Debug)]
pub struct EsmLayer {
    /// Self-attention (checkpoint `attention.self.*` and `attention.output.dense`).
    pub attention: MultiHeadAttention,
    /// Checkpoint `attention.LayerNorm`, applied before the attention.
    pub attention_norm: LayerNorm,
    /// Checkpoint `intermediate.dense` and `output.dense`.
    pub feed_forward: FeedForward,
    /// Checkpoint `LayerNorm`, applied before the feed-forward block.
    pub output_norm: LayerNorm,
    dropout: Dropout,
}

impl EsmLayer {
    /// # Shapes
    /// - x: `[batch, seq, d]`, padding: `[batch, seq]` -> `[batch, seq, d]` and, when asked,
    ///   the attention probabilities `[batch, heads, seq, seq]`
    pub fn forward(
        &self,
        x: Tensor<3>,
        padding: Option<Tensor<2, Bool>>,
        rotary: &RotaryEmbedding,
        with_probs: bool,
    ) -> (Tensor<3>, Option<Tensor<4>>) {
        // Divergence from BERT: the norms come before each block (pre-LN).
        let normed = self.attention_norm.forward(x.clone());
        let (attended, probs) = if with_probs {
            let (attended, probs) = self
                .attention
                .forward_rotary_with_probs(normed, padding, rotary);
            (attended, Some(probs))
        } else {
            (self.attention.forward_rotary(normed, padding, rotary), None)
        };
        let x = self.dropout.forward(attended) + x;
        let transformed = self
            .feed_forward
            .forward(self.output_norm.forward(x.clone()));
        (self.dropout.forward(transformed) + x, probs)
    }
}

/// The layers and the final norm (checkpoint `encoder.`).
#[derive(Module, Debug)]
pub struct EsmEncoder {
    /// The layers.
    pub layer: Vec<EsmLayer>,
    /// The norm after the last layer.
    pub emb_layer_norm_after: LayerNorm,
}

/// The logistic regression over attention maps that predicts residue contacts.
#[derive(Module, Debug)]
pub struct EsmContactHead {
    /// `[layers * heads, 1]`.
    pub regression: Linear,
}

impl EsmContactHead {
    /// Contact probabilities between residues (`<cls>` and `<eos>` dropped).
    ///
    /// # Shapes
    /// - input_ids: `[batch, seq]`, attentions: `[batch, layers * heads, seq, seq]` (padding
    ///   rows and columns zeroed) -> `[batch, seq - 2, seq - 2]`
    pub fn forward(&self, input_ids: Tensor<2, Int>, attentions: Tensor<4>) -> Tensor<3> {
        let [batch, channels, seq, _] = attentions.dims();
        let not_eos = input_ids.not_equal_elem(CONTACT_EOS_ID).float();
        let pair = not_eos.clone().unsqueeze_dim::<3>(2) * not_eos.unsqueeze_dim::<3>(1);
        let x = attentions * pair.unsqueeze_dim::<4>(1);
        // Drop the last column (padding or `<eos>`) and `<cls>`.
        let x = x.slice([0..batch, 0..channels, 1..seq - 1, 1..seq - 1]);
        let x = x.clone() + x.swap_dims(2, 3);
        // Average product correction.
        let rows = x.clone().sum_dim(3);
        let columns = x.clone().sum_dim(2);
        let total = rows.clone().sum_dim(2);
        let x = x - rows * columns / total;
        let [_, _, n, _] = x.dims();
        let features = x.permute([0, 2, 3, 1]).reshape([batch * n * n, channels]);
        let logits = self.regression.forward(features).reshape([batch, n, n]);
        activation::sigmoid(logits)
    }
}

/// `EsmModel` without the pooler, with its contact head (checkpoint prefix `esm.` in
/// `EsmForMaskedLM`).
#[derive(Module, Debug)]
pub struct EsmModel {
    /// Embeddings.
    pub embeddings: EsmEmbeddings,
    /// Layers and final norm.
    pub encoder: EsmEncoder,
    /// Contact prediction from attention maps.
    pub contact_head: EsmContactHead,
    hidden_size: usize,
    head_dim: usize,
    rope_theta: f64,
}

impl EsmModel {
    /// Runs the layers, keeping what is asked for.
    fn run(
        &self,
        input_ids: Tensor<2, Int>,
        attention_mask: Option<Tensor<2, Int>>,
        output_hidden_states: bool,
        output_attentions: bool,
    ) -> (EncoderOutput, Vec<Tensor<4>>) {
        let [_, seq] = input_ids.dims();
        let mut x = self
            .embeddings
            .forward(input_ids.clone(), attention_mask.as_ref());
        let rotary = RotaryEmbedding::new(seq, self.head_dim, self.rope_theta, &x.device());
        let padding = attention_mask.map(padding_mask);
        let mut hidden_states = Vec::new();
        let mut attentions = Vec::new();
        for layer in &self.encoder.layer {
            if output_hidden_states {
                hidden_states.push(x.clone());
            }
            let (out, probs) = layer.forward(x, padding.clone(), &rotary, output_attentions);
            x = out;
            attentions.extend(probs);
        }
        // As transformers: the last hidden state is the final norm's output.
        let x = self.encoder.emb_layer_norm_after.forward(x);
        if output_hidden_states {
            hidden_states.push(x.clone());
        }
        let output = EncoderOutput {
            last_hidden_state: x,
            hidden_states,
        };
        (output, attentions)
    }

    /// Contact probabilities between every pair of residues, from the attention maps of every
    /// layer and head.
    ///
    /// # Shapes
    /// - input_ids, attention_mask: `[batch, seq]` -> `[batch, seq - 2, seq - 2]`
    pub fn predict_contacts(
        &self,
        input_ids: Tensor<2, Int>,
        attention_mask: Option<Tensor<2, Int>>,
    ) -> Tensor<3> {
        let (_, attentions) = self.run(input_ids.clone(), attention_mask.clone(), false, true);
        let mut maps = Tensor::cat(attentions, 1);
        // Attention to and from padding is zeroed, as ESM's own code does.
        if let Some(mask) = attention_mask {
            let mask = mask.float();
            let pair = mask.clone().unsqueeze_dim::<3>(2) * mask.unsqueeze_dim::<3>(1);
            maps = maps * pair.unsqueeze_dim::<4>(1);
        }
        self.contact_head.forward(input_ids, maps)
    }
}

impl ProteinEncoder for EsmModel {
    fn hidden_size(&self) -> usize {
        self.hidden_size
    }

    /// # Shapes
    /// - input ids and mask `[batch, seq]` -> hidden states `[batch, seq, d]`
    fn encode(&self, input: EncoderInput) -> EncoderOutput {
        self.run(
            input.input_ids,
            input.attention_mask,
            input.output_hidden_states,
            false,
        )
        .0
    }
}

/// `EsmForMaskedLM`: the encoder and its masked-LM head (checkpoint prefixes `esm.` and
/// `lm_head.`).
#[derive(Module, Debug)]
pub struct EsmForMaskedLm {
    /// The encoder.
    pub esm: EsmModel,
    /// The masked-LM head; decodes with the word embeddings.
    pub lm_head: MaskedLmHead,
}

impl EsmForMaskedLm {
    /// Logits at every position.
    ///
    /// # Shapes
    /// - input ids and mask `[batch, seq]` -> logits `[batch, seq, vocab]`
    pub fn forward(&self, input: EncoderInput) -> Tensor<3> {
        let hidden = self.esm.encode(input).last_hidden_state;
        logits_at_every_position(hidden, |h| self.mlm_logits(h))
    }

    /// Logits at selected positions only (flat `row * seq + column`).
    ///
    /// # Shapes
    /// - input ids and mask `[batch, seq]`, positions `[n]` -> logits `[n, vocab]`
    pub fn forward_at(&self, input: EncoderInput, positions: Tensor<1, Int>) -> Tensor<2> {
        let hidden = self.esm.encode(input).last_hidden_state;
        self.mlm_logits(select_positions(hidden, positions))
    }

    /// MLM logits of hidden states.
    ///
    /// # Shapes
    /// - hidden: `[n, d]` -> `[n, vocab]`
    pub fn mlm_logits(&self, hidden: Tensor<2>) -> Tensor<2> {
        self.lm_head
            .forward(hidden, self.esm.embeddings.word_embeddings.weight.val())
    }
}

impl ProteinEncoder for EsmForMaskedLm {
    fn hidden_size(&self) -> usize {
        self.esm.hidden_size()
    }

    fn encode(&self, input: EncoderInput) -> EncoderOutput {
        self.esm.encode(input)
    }
}

/// ESM's layers, relative to the encoder.
const ESM_LAYERS: RuleTable = &[
    (
        "encoder.layer.{i}.attention.self.query",
        "encoder.layer.{i}.attention.query",
    ),
    (
        "encoder.layer.{i}.attention.self.key",
        "encoder.layer.{i}.attention.key",
    ),
    (
        "encoder.layer.{i}.attention.self.value",
        "encoder.layer.{i}.attention.value",
    ),
    (
        "encoder.layer.{i}.attention.output.dense",
        "encoder.layer.{i}.attention.output",
    ),
    (
        "encoder.layer.{i}.attention.LayerNorm",
        "encoder.layer.{i}.attention_norm",
    ),
    (
        "encoder.layer.{i}.intermediate.dense",
        "encoder.layer.{i}.feed_forward.intermediate",
    ),
    (
        "encoder.layer.{i}.output.dense",
        "encoder.layer.{i}.feed_forward.output",
    ),
    (
        "encoder.layer.{i}.LayerNorm",
        "encoder.layer.{i}.output_norm",
    ),
];

/// transformers 5 writes ESM's `LayerNorm` weights under their old TensorFlow names.
const LEGACY_LAYER_NORM_NAMES: &[(&str, &str)] = &[
    (r"^(.*LayerNorm)\.gamma$", "$1.weight"),
    (r"^(.*LayerNorm)\.beta$", "$1.bias"),
];

/// `EsmForMaskedLM` checkpoints (ESM-2) into [`EsmForMaskedLm`].
pub const ESM_FOR_MASKED_LM: KeyMap = KeyMap {
    aliases: LEGACY_LAYER_NORM_NAMES,
    rules: &[
        ("esm.", "esm.", ESM_LAYERS),
        ("", "", &[("lm_head.dense", "lm_head.transform")]),
    ],
    // Rotary frequencies (stored per layer before transformers 5, once per model since) and
    // position ids are recomputed.
    ignored: &[
        r"(^|\.)rotary_embeddings\.inv_freq$",
        r"(^|\.)embeddings\.position_ids$",
    ],
    tied: &[r"^lm_head\.decoder\."], // copies of the word embeddings
};

/// Any ESM checkpoint (`EsmModel`, `EsmForMaskedLM`) into the bare [`EsmModel`]; the heads
/// and pooler are skipped.
pub const ESM_ENCODER: KeyMap = KeyMap {
    aliases: &[
        (r"^esm\.", ""),
        (r"^(.*LayerNorm)\.gamma$", "$1.weight"),
        (r"^(.*LayerNorm)\.beta$", "$1.bias"),
    ],
    rules: &[("", "", ESM_LAYERS)],
    ignored: &[
        r"(^|\.)rotary_embeddings\.inv_freq$",
        r"(^|\.)embeddings\.position_ids$",
        r"^lm_head\.",
        r"^pooler\.",
        r"^classifier\.",
    ],
    tied: &[],
};

impl ArchitectureConfig for EsmConfig {
    type Encoder = EsmModel;
    const MODEL_TYPE: &'static str = "esm";
    const NAME: &'static str = "esm";
    const SAVED_CLASS: &'static str = "EsmForMaskedLM";
    const SIGNATURE: &'static str = r"(^|\.)encoder\.emb_layer_norm_after\.|^esm\.";
    const LORA_TARGETS: LoraTargets = crate::bert::BERT_LORA_TARGETS;
    const KEEPS_RARE_RESIDUES: bool = true;

    /// The ESM-2 alphabet, with U, Z, O and B as tokens of their own.
    fn default_vocabulary() -> Vocabulary {
        Vocabulary::esm2()
    }
    fn describe(&self) -> String {
        format!(
            "ESM-2, {} layers, width {}",
            self.num_hidden_layers, self.hidden_size
        )
    }
    fn validate(&self) -> Result<(), ModelConfigError> {
        EsmConfig::validate(self)
    }
    fn hidden_size(&self) -> usize {
        self.hidden_size
    }
    fn vocab_size(&self) -> usize {
        self.vocab_size
    }
    fn max_tokens(&self) -> Option<usize> {
        // Rotary positions: any length works (ESM-2 was trained on crops of 1024).
        None
    }
    fn init_model(&self, device: &Device) -> EsmModel {
        EsmConfig::init_model(self, device)
    }
    fn encoder_key_map(&self, _: &[String]) -> Result<KeyMap, ModelConfigError> {
        Ok(ESM_ENCODER)
    }
}

impl PretrainedModel for EsmForMaskedLm {
    type Config = EsmConfig;
    const CLASS: &'static str = "EsmForMaskedLM";
    fn init(config: &EsmConfig, device: &Device) -> Self {
        config.init(device)
    }
    fn key_map(_: &EsmConfig) -> Result<KeyMap, ModelConfigError> {
        Ok(ESM_FOR_MASKED_LM)
    }
}

impl MaskedLanguageModel for EsmForMaskedLm {
    fn logits_at(&self, input: EncoderInput, positions: Tensor<1, Int>) -> Tensor<2> {
        self.forward_at(input, positions)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> EsmConfig {
        EsmConfig {
            hidden_size: 16,
            num_hidden_layers: 2,
            num_attention_heads: 2,
            intermediate_size: 32,
            ..EsmConfig::default()
        }
    }

    #[test]
    fn reads_a_released_config() {
        // `facebook/esm2_t6_8M_UR50D`'s config.json.
        let json = r#"{"architectures":["EsmForMaskedLM"],"attention_probs_dropout_prob":0.0,
            "classifier_dropout":null,"emb_layer_norm_before":false,"esmfold_config":null,
            "hidden_act":"gelu","hidden_dropout_prob":0.0,"hidden_size":320,"initializer_range":0.02,
            "intermediate_size":1280,"is_folding_model":false,"layer_norm_eps":1e-05,
            "mask_token_id":32,"max_position_embeddings":1026,"model_type":"esm",
            "num_attention_heads":20,"num_hidden_layers":6,"pad_token_id":1,
            "position_embedding_type":"rotary","token_dropout":true,"torch_dtype":"float32",
            "transformers_version":"4.25.0.dev0","use_cache":true,"vocab_list":null,"vocab_size":33}"#;
        let config: EsmConfig = serde_json::from_str(json).unwrap();
        assert_eq!(config, EsmConfig::default());
        config.validate().unwrap();
        // About 7.8M parameters, as the name says.
        let n = config.num_parameters();
        assert!((7_000_000..8_500_000).contains(&n), "{n}");
    }

    #[test]
    fn refuses_what_is_not_implemented_by_name() {
        for (config, expected) in [
            (
                EsmConfig {
                    position_embedding_type: "absolute".into(),
                    ..tiny()
                },
                "ESM-1b",
            ),
            (
                EsmConfig {
                    is_folding_model: true,
                    ..tiny()
                },
                "ESMFold",
            ),
            (
                EsmConfig {
                    num_attention_heads: 3,
                    ..tiny()
                },
                "even head width",
            ),
        ] {
            let err = config.validate().unwrap_err().to_string();
            assert!(err.contains(expected), "{err}");
        }
    }

    #[test]
    fn parameter_count_matches_the_module() {
        let config = tiny();
        assert_eq!(
            config.init(&Device::flex()).num_params(),
            config.num_parameters()
        );
    }

    /// Token dropout: a `<mask>` contributes nothing, and the other rows are scaled by the
    /// training mask rate over the observed one.
    #[test]
    fn token_dropout_zeroes_masks_and_rescales() {
        let device = Device::flex();
        let model = tiny().init_model(&device);
        let ids = Tensor::<2, Int>::from_ints([[0, 5, 32, 6, 2]], &device);
        let x = model.embeddings.forward(ids.clone(), None);
        let raw = model.embeddings.word_embeddings.forward(ids);
        let scale = (1.0 - MASK_RATIO_TRAIN) / (1.0 - 1.0 / 5.0);
        let expected = raw.clone().slice([0..1, 0..2]) * scale;
        x.clone()
            .slice([0..1, 0..2])
            .into_data()
            .assert_approx_eq::<f32>(&expected.into_data(), burn::tensor::Tolerance::default());
        let masked: f32 = x.slice([0..1, 2..3]).abs().sum().into_scalar();
        assert_eq!(masked, 0.0);
    }
}
