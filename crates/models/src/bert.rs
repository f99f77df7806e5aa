//! BERT, as `transformers`' `BertModel` / `BertForMaskedLM` (ProtBert, ProtBert-BFD).
//!
//! Learned absolute positions and token types, post-LayerNorm residual blocks, exact GELU,
//! and an MLM head whose decoder is tied to the word embeddings. Module names follow the
//! Hugging Face checkpoint where they can; `prottrans-import` maps the rest by a table.

use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, Embedding, EmbeddingConfig, LayerNorm, LayerNormConfig};
use burn::tensor::{Bool, Device, Int, Tensor};
use serde::{Deserialize, Serialize};

use crate::architecture::{ArchitectureConfig, LoraTargets, MaskedLanguageModel, PretrainedModel};
use crate::blocks::{
    Activation, FeedForward, FeedForwardConfig, MaskedLmHead, MaskedLmHeadConfig,
    MultiHeadAttention, MultiHeadAttentionConfig, logits_at_every_position, normal_init,
    padding_mask, select_positions,
};
use crate::encoder::{EncoderInput, EncoderOutput, ProteinEncoder};
use crate::error::ModelConfigError;
use crate::key_map::{KeyMap, RuleTable};

/// BERT hyper-parameters, with the field names of a Hugging Face `config.json`, so a released
/// `config.json` deserialises as is. Defaults are the released ProtBert shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct BertConfig {
    /// Vocabulary size (ProtBert: 30).
    pub vocab_size: usize,
    /// Model width.
    pub hidden_size: usize,
    /// Number of transformer layers.
    pub num_hidden_layers: usize,
    /// Number of attention heads.
    pub num_attention_heads: usize,
    /// Feed-forward inner width.
    pub intermediate_size: usize,
    /// Feed-forward activation.
    pub hidden_act: Activation,
    /// Dropout on embeddings and block outputs.
    pub hidden_dropout_prob: f64,
    /// Dropout on attention probabilities.
    pub attention_probs_dropout_prob: f64,
    /// Number of learned positions (longest framed sequence).
    pub max_position_embeddings: usize,
    /// Number of token types.
    pub type_vocab_size: usize,
    /// Standard deviation of the weight initialisation.
    pub initializer_range: f64,
    /// LayerNorm epsilon.
    pub layer_norm_eps: f64,
    /// Id of the padding token.
    pub pad_token_id: usize,
}

impl Default for BertConfig {
    fn default() -> Self {
        Self {
            vocab_size: 30,
            hidden_size: 1024,
            num_hidden_layers: 30,
            num_attention_heads: 16,
            intermediate_size: 4096,
            hidden_act: Activation::Gelu,
            hidden_dropout_prob: 0.0,
            attention_probs_dropout_prob: 0.0,
            max_position_embeddings: 40000,
            type_vocab_size: 2,
            initializer_range: 0.02,
            layer_norm_eps: 1e-12,
            pad_token_id: 0,
        }
    }
}

impl BertConfig {
    /// Checks values that would fail later in obscure ways.
    pub fn validate(&self) -> Result<(), ModelConfigError> {
        crate::error::check_epsilon("bert", "layer_norm_eps", self.layer_norm_eps)?;
        let invalid = |message: String| ModelConfigError::Invalid {
            architecture: "bert",
            message,
        };
        for (name, value) in [
            ("vocab_size", self.vocab_size),
            ("hidden_size", self.hidden_size),
            ("num_hidden_layers", self.num_hidden_layers),
            ("num_attention_heads", self.num_attention_heads),
            ("intermediate_size", self.intermediate_size),
            ("max_position_embeddings", self.max_position_embeddings),
            ("type_vocab_size", self.type_vocab_size),
        ] {
            if value == 0 {
                return Err(invalid(format!("{name} must be at least 1")));
            }
        }
        if !self.hidden_size.is_multiple_of(self.num_attention_heads) {
            return Err(invalid(format!(
                "hidden_size ({}) is not a multiple of num_attention_heads ({})",
                self.hidden_size, self.num_attention_heads
            )));
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
        if self.pad_token_id >= self.vocab_size {
            return Err(invalid(format!(
                "pad_token_id ({}) is outside the vocabulary ({})",
                self.pad_token_id, self.vocab_size
            )));
        }
        Ok(())
    }

    /// Number of trainable parameters of [`BertForMaskedLm`] (tied decoder counted once).
    pub fn num_parameters(&self) -> usize {
        let (v, d, f, l) = (
            self.vocab_size,
            self.hidden_size,
            self.intermediate_size,
            self.num_hidden_layers,
        );
        let embeddings = (v + self.max_position_embeddings + self.type_vocab_size) * d + 2 * d;
        let layer = 4 * (d * d + d) + 2 * d * f + f + d + 4 * d;
        let head = d * d + d + 2 * d + v;
        embeddings + l * layer + head
    }

    /// Initialises the encoder on `device`.
    pub fn init_model(&self, device: &Device) -> BertModel {
        BertModel {
            embeddings: self.init_embeddings(device),
            encoder: BertEncoder {
                layer: (0..self.num_hidden_layers)
                    .map(|_| self.init_layer(device))
                    .collect(),
            },
            hidden_size: self.hidden_size,
        }
    }

    /// Initialises the encoder with its MLM head on `device`.
    pub fn init(&self, device: &Device) -> BertForMaskedLm {
        BertForMaskedLm {
            bert: self.init_model(device),
            cls: self
                .mlm_head(self.hidden_size, self.hidden_act)
                .init(device),
        }
    }

    /// A masked-LM head from width `hidden_size` to the embedding width `width` (BERT: equal;
    /// ALBERT and ELECTRA's generator: their smaller embedding size).
    pub(crate) fn mlm_head(&self, width: usize, activation: Activation) -> MaskedLmHeadConfig {
        MaskedLmHeadConfig {
            hidden: self.hidden_size,
            width,
            vocab_size: self.vocab_size,
            activation,
            layer_norm_eps: self.layer_norm_eps,
            initializer_range: self.initializer_range,
        }
    }

    /// Embeddings of width `hidden_size`. ALBERT and ELECTRA call this on a view of their
    /// config whose `hidden_size` is their `embedding_size`.
    pub(crate) fn init_embeddings(&self, device: &Device) -> BertEmbeddings {
        let embedding = |n| {
            EmbeddingConfig::new(n, self.hidden_size)
                .with_initializer(normal_init(self.initializer_range))
                .init(device)
        };
        BertEmbeddings {
            word_embeddings: embedding(self.vocab_size),
            position_embeddings: embedding(self.max_position_embeddings),
            token_type_embeddings: embedding(self.type_vocab_size),
            layer_norm: LayerNormConfig::new(self.hidden_size)
                .with_epsilon(self.layer_norm_eps)
                .init(device),
            dropout: DropoutConfig::new(self.hidden_dropout_prob).init(),
        }
    }

    /// One layer of this shape (ALBERT and ELECTRA layers are BERT layers).
    pub(crate) fn init_layer(&self, device: &Device) -> BertLayer {
        let d = self.hidden_size;
        let norm = || {
            LayerNormConfig::new(d)
                .with_epsilon(self.layer_norm_eps)
                .init(device)
        };
        BertLayer {
            attention: MultiHeadAttentionConfig::new(d, self.num_attention_heads)
                .with_dropout(self.attention_probs_dropout_prob)
                .with_initializer_range(self.initializer_range)
                .init(device),
            attention_norm: norm(),
            feed_forward: FeedForwardConfig::new(d, self.intermediate_size)
                .with_activation(self.hidden_act)
                .with_initializer_range(self.initializer_range)
                .init(device),
            output_norm: norm(),
            dropout: DropoutConfig::new(self.hidden_dropout_prob).init(),
        }
    }
}

/// Word, position and token-type embeddings, summed, normalised.
#[derive(Module, Debug)]
pub struct BertEmbeddings {
    /// `[vocab, d]`; also the MLM decoder.
    pub word_embeddings: Embedding,
    /// `[max_positions, d]`.
    pub position_embeddings: Embedding,
    /// `[type_vocab, d]`.
    pub token_type_embeddings: Embedding,
    /// Checkpoint key `LayerNorm`.
    pub layer_norm: LayerNorm,
    dropout: Dropout,
}

impl BertEmbeddings {
    /// # Shapes
    /// - input_ids, token_type_ids: `[batch, seq]` -> `[batch, seq, d]`
    pub fn forward(
        &self,
        input_ids: Tensor<2, Int>,
        token_type_ids: Option<Tensor<2, Int>>,
    ) -> Tensor<3> {
        let [batch, seq] = input_ids.dims();
        let device = input_ids.device();
        let positions = Tensor::<1, Int>::arange(0..seq as i64, &device)
            .reshape([1, seq])
            .expand([batch, seq]);
        let token_types =
            token_type_ids.unwrap_or_else(|| Tensor::<2, Int>::zeros([batch, seq], &device));
        let x = self.word_embeddings.forward(input_ids)
            + self.position_embeddings.forward(positions)
            + self.token_type_embeddings.forward(token_types);
        self.dropout.forward(self.layer_norm.forward(x))
    }
}

/// One post-LayerNorm transformer layer.
#[derive(Module, Debug)]
pub struct BertLayer {
    /// Self-attention (checkpoint `attention.self.*` and `attention.output.dense`).
    pub attention: MultiHeadAttention,
    /// Checkpoint `attention.output.LayerNorm`.
    pub attention_norm: LayerNorm,
    /// Checkpoint `intermediate.dense` and `output.dense`.
    pub feed_forward: FeedForward,
    /// Checkpoint `output.LayerNorm`.
    pub output_norm: LayerNorm,
    dropout: Dropout,
}

impl BertLayer {
    /// # Shapes
    /// - x: `[batch, seq, d]`, padding: `[batch, seq]` -> `[batch, seq, d]`
    pub fn forward(&self, x: Tensor<3>, padding: Option<Tensor<2, Bool>>) -> Tensor<3> {
        let attended = self.attention.forward(x.clone(), padding, None);
        let x = self
            .attention_norm
            .forward(self.dropout.forward(attended) + x);
        let transformed = self.feed_forward.forward(x.clone());
        self.output_norm
            .forward(self.dropout.forward(transformed) + x)
    }
}

/// The stack of layers (checkpoint `encoder.layer.<i>`).
#[derive(Module, Debug)]
pub struct BertEncoder {
    /// The layers.
    pub layer: Vec<BertLayer>,
}

impl BertEncoder {
    /// Runs every layer; with `output_hidden_states`, also returns the input and each layer's
    /// output.
    ///
    /// # Shapes
    /// - x: `[batch, seq, d]`, padding: `[batch, seq]` -> `[batch, seq, d]`
    pub fn forward(
        &self,
        mut x: Tensor<3>,
        padding: Option<Tensor<2, Bool>>,
        output_hidden_states: bool,
    ) -> EncoderOutput {
        let mut hidden_states = Vec::new();
        for layer in &self.layer {
            if output_hidden_states {
                hidden_states.push(x.clone());
            }
            x = layer.forward(x, padding.clone());
        }
        if output_hidden_states {
            hidden_states.push(x.clone());
        }
        EncoderOutput {
            last_hidden_state: x,
            hidden_states,
        }
    }
}

/// `BertModel` without the pooler (ProtTrans uses per-token states).
#[derive(Module, Debug)]
pub struct BertModel {
    /// Embeddings.
    pub embeddings: BertEmbeddings,
    /// Layers.
    pub encoder: BertEncoder,
    hidden_size: usize,
}

impl ProteinEncoder for BertModel {
    fn hidden_size(&self) -> usize {
        self.hidden_size
    }

    /// # Shapes
    /// - input ids and mask `[batch, seq]` -> hidden states `[batch, seq, d]`
    fn encode(&self, input: EncoderInput) -> EncoderOutput {
        let padding = input.attention_mask.map(padding_mask);
        let x = self
            .embeddings
            .forward(input.input_ids, input.token_type_ids);
        self.encoder.forward(x, padding, input.output_hidden_states)
    }
}

/// `BertForMaskedLM`: the encoder and its MLM head (checkpoint prefixes `bert.` and `cls.`).
#[derive(Module, Debug)]
pub struct BertForMaskedLm {
    /// The encoder.
    pub bert: BertModel,
    /// The MLM head.
    pub cls: MaskedLmHead,
}

impl BertForMaskedLm {
    /// Logits at every position.
    ///
    /// # Shapes
    /// - input ids and mask `[batch, seq]` -> logits `[batch, seq, vocab]`
    pub fn forward(&self, input: EncoderInput) -> Tensor<3> {
        let hidden = self.bert.encode(input).last_hidden_state;
        logits_at_every_position(hidden, |h| self.mlm_logits(h))
    }

    /// Logits at selected positions only (cheaper in training: 15% of tokens are masked).
    ///
    /// `positions` index the flattened `batch * seq` tokens.
    ///
    /// # Shapes
    /// - input ids and mask `[batch, seq]`, positions `[n]` -> logits `[n, vocab]`
    pub fn forward_at(&self, input: EncoderInput, positions: Tensor<1, Int>) -> Tensor<2> {
        let hidden = self.bert.encode(input).last_hidden_state;
        self.mlm_logits(select_positions(hidden, positions))
    }

    /// MLM logits of hidden states.
    ///
    /// # Shapes
    /// - hidden: `[n, d]` -> `[n, vocab]`
    pub fn mlm_logits(&self, hidden: Tensor<2>) -> Tensor<2> {
        self.cls
            .forward(hidden, self.bert.embeddings.word_embeddings.weight.val())
    }
}

impl ProteinEncoder for BertForMaskedLm {
    fn hidden_size(&self) -> usize {
        self.bert.hidden_size()
    }

    fn encode(&self, input: EncoderInput) -> EncoderOutput {
        self.bert.encode(input)
    }
}

/// BERT's embedding LayerNorm (BERT, ALBERT, ELECTRA), relative to the encoder.
const BERT_EMBEDDINGS: RuleTable = &[("embeddings.LayerNorm", "embeddings.layer_norm")];

/// BERT's layers (BERT, and each ELECTRA tower), relative to the encoder.
pub(crate) const BERT_LAYERS: RuleTable = &[
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
        "encoder.layer.{i}.attention.output.LayerNorm",
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
        "encoder.layer.{i}.output.LayerNorm",
        "encoder.layer.{i}.output_norm",
    ),
];

/// BERT's masked-LM head; its decoder is tied to the word embeddings.
const BERT_MLM_HEAD: RuleTable = &[
    ("cls.predictions.transform.dense", "cls.transform"),
    ("cls.predictions.transform.LayerNorm", "cls.layer_norm"),
    ("cls.predictions.bias", "cls.bias"),
];

/// `BertForMaskedLM` checkpoints (ProtBert) into [`BertForMaskedLm`](crate::BertForMaskedLm).
pub const BERT_FOR_MASKED_LM: KeyMap = KeyMap {
    aliases: &[(r"^(embeddings|encoder)\.", "bert.$1.")],
    rules: &[
        ("bert.", "bert.", BERT_EMBEDDINGS),
        ("bert.", "bert.", BERT_LAYERS),
        ("", "", BERT_MLM_HEAD),
    ],
    ignored: &[
        r"^bert\.pooler\.",
        r"^bert\.embeddings\.position_ids$",
        r"^cls\.seq_relationship\.",
    ],
    tied: &[r"^cls\.predictions\.decoder\."], // copies of the word embeddings
};

/// The linear layers LoRA adapts in BERT-style layers (BERT, ELECTRA, ESM-2): the attention
/// projections, and the feed-forward pair (the layer's `output.dense`, not the attention's).
pub const BERT_LORA_TARGETS: LoraTargets = &[
    ("q", r"attention\.self\.query$"),
    ("k", r"attention\.self\.key$"),
    ("v", r"attention\.self\.value$"),
    ("o", r"attention\.output\.dense$"),
    ("ffn", r"(intermediate\.dense|layer\.\d+\.output\.dense)$"),
];

/// Any BERT checkpoint (`BertModel`, `BertForMaskedLM`, `BertForPreTraining`) into the bare
/// encoder [`BertModel`](crate::BertModel): heads and pooler are skipped.
pub const BERT_ENCODER: KeyMap = KeyMap {
    aliases: &[(r"^bert\.", "")],
    rules: &[("", "", BERT_EMBEDDINGS), ("", "", BERT_LAYERS)],
    ignored: &[r"^pooler\.", r"^embeddings\.position_ids$", r"^cls\."],
    tied: &[],
};

impl ArchitectureConfig for BertConfig {
    type Encoder = BertModel;
    const MODEL_TYPE: &'static str = "bert";
    const NAME: &'static str = "bert";
    const SAVED_CLASS: &'static str = "BertForMaskedLM";
    const SIGNATURE: &'static str = r"(^|\.)encoder\.layer\.\d+\.attention\.self\.query\.";
    const LORA_TARGETS: LoraTargets = BERT_LORA_TARGETS;

    fn describe(&self) -> String {
        format!(
            "BERT, {} layers, width {}",
            self.num_hidden_layers, self.hidden_size
        )
    }
    fn validate(&self) -> Result<(), ModelConfigError> {
        BertConfig::validate(self)
    }
    fn hidden_size(&self) -> usize {
        self.hidden_size
    }
    fn vocab_size(&self) -> usize {
        self.vocab_size
    }
    fn max_tokens(&self) -> Option<usize> {
        Some(self.max_position_embeddings)
    }
    fn init_model(&self, device: &Device) -> BertModel {
        BertConfig::init_model(self, device)
    }
    fn encoder_key_map(&self, _: &[String]) -> Result<KeyMap, ModelConfigError> {
        Ok(BERT_ENCODER)
    }
}

impl PretrainedModel for BertForMaskedLm {
    type Config = BertConfig;
    const CLASS: &'static str = "BertForMaskedLM";
    fn init(config: &BertConfig, device: &Device) -> Self {
        config.init(device)
    }
    fn key_map(_: &BertConfig) -> Result<KeyMap, ModelConfigError> {
        Ok(BERT_FOR_MASKED_LM)
    }
}

impl MaskedLanguageModel for BertForMaskedLm {
    fn logits_at(&self, input: EncoderInput, positions: Tensor<1, Int>) -> Tensor<2> {
        self.forward_at(input, positions)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> BertConfig {
        BertConfig {
            hidden_size: 16,
            num_hidden_layers: 2,
            num_attention_heads: 2,
            intermediate_size: 32,
            max_position_embeddings: 40,
            ..BertConfig::default()
        }
    }

    #[test]
    fn reads_a_hugging_face_config() {
        let json = r#"{"architectures":["BertForMaskedLM"],"model_type":"bert","hidden_act":"gelu",
            "hidden_size":1024,"num_hidden_layers":30,"num_attention_heads":16,"intermediate_size":4096,
            "max_position_embeddings":40000,"vocab_size":30,"type_vocab_size":2,"layer_norm_eps":1e-12,
            "hidden_dropout_prob":0.0,"attention_probs_dropout_prob":0.0,"pad_token_id":0}"#;
        let config: BertConfig = serde_json::from_str(json).unwrap();
        assert_eq!(config, BertConfig::default());
        config.validate().unwrap();
    }

    #[test]
    fn rejects_bad_shapes() {
        let config = BertConfig {
            num_attention_heads: 3,
            ..tiny()
        };
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("not a multiple"), "{err}");
    }

    #[test]
    fn parameter_count_matches_the_module() {
        let config = tiny();
        let model = config.init(&Device::flex());
        assert_eq!(model.num_params(), config.num_parameters());
        // The released ProtBert has about 420M parameters.
        let released = BertConfig::default().num_parameters();
        assert!((415_000_000..425_000_000).contains(&released), "{released}");
    }

    #[test]
    fn masked_positions_match_full_logits() {
        let device = Device::flex();
        let model = tiny().init(&device);
        let ids = Tensor::<2, Int>::from_ints([[2, 5, 6, 7, 3, 0], [2, 8, 9, 10, 11, 3]], &device);
        let mask = Tensor::<2, Int>::from_ints([[1, 1, 1, 1, 1, 0], [1, 1, 1, 1, 1, 1]], &device);
        let full = model.forward(EncoderInput::new(ids.clone(), mask.clone()));
        let at = model.forward_at(
            EncoderInput::new(ids, mask),
            Tensor::<1, Int>::from_ints([2, 9], &device),
        );
        let expected = Tensor::cat(
            vec![
                full.clone().slice([0..1, 2..3]).reshape([1, 30]),
                full.slice([1..2, 3..4]).reshape([1, 30]),
            ],
            0,
        );
        at.into_data()
            .assert_approx_eq::<f32>(&expected.into_data(), burn::tensor::Tolerance::default());
    }
}
