//! ALBERT, as `transformers`' `AlbertModel` / `AlbertForMaskedLM` (ProtAlbert).
//!
//! BERT with two parameter cuts:
//! - a **factorised embedding**: tokens are embedded at a small width (`embedding_size`, 128
//!   in ProtAlbert) and mapped up to the hidden width by one linear layer;
//! - **shared layers**: the `num_hidden_layers` passes run through `num_hidden_groups` groups of
//!   `inner_group_num` layers each (ProtAlbert: 12 passes through one group of one layer).
//!
//! Everything else is BERT's: the embeddings, layers and MLM head are [`crate::bert`]'s modules
//! built at ALBERT's widths, so the divergences are only the two above.

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{Bool, Device, Int, Tensor};
use serde::{Deserialize, Serialize};

use crate::architecture::{
    ArchitectureConfig, LoraTargets, MaskedLanguageModel, PretrainedModel, VocabularySource,
};
use crate::bert::{BertConfig, BertEmbeddings, BertLayer};
use crate::blocks::{
    Activation, MaskedLmHead, logits_at_every_position, normal_init, padding_mask, select_positions,
};
use crate::encoder::{EncoderInput, EncoderOutput, ProteinEncoder};
use crate::error::ModelConfigError;
use crate::key_map::{KeyMap, RuleTable};

/// ALBERT hyper-parameters, with the field names of a Hugging Face `config.json`. Defaults are
/// the released ProtAlbert shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AlbertConfig {
    /// Vocabulary size (ProtAlbert: 34).
    pub vocab_size: usize,
    /// Width of the token embeddings (factorised: smaller than `hidden_size`).
    pub embedding_size: usize,
    /// Model width.
    pub hidden_size: usize,
    /// Number of layer passes.
    pub num_hidden_layers: usize,
    /// Number of distinct layer groups; passes are spread evenly over them.
    pub num_hidden_groups: usize,
    /// Layers inside each group, run one after the other at every pass.
    pub inner_group_num: usize,
    /// Number of attention heads.
    pub num_attention_heads: usize,
    /// Feed-forward inner width.
    pub intermediate_size: usize,
    /// Activation of the feed-forward block and of the MLM head.
    pub hidden_act: Activation,
    /// Dropout on embeddings and block outputs.
    pub hidden_dropout_prob: f64,
    /// Dropout on attention probabilities.
    pub attention_probs_dropout_prob: f64,
    /// Number of learned positions.
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

impl Default for AlbertConfig {
    fn default() -> Self {
        Self {
            vocab_size: 34,
            embedding_size: 128,
            hidden_size: 4096,
            num_hidden_layers: 12,
            num_hidden_groups: 1,
            inner_group_num: 1,
            num_attention_heads: 64,
            intermediate_size: 16384,
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

impl AlbertConfig {
    /// The BERT shape of ALBERT's layers (and, with `hidden_size` = `embedding_size`, of its
    /// embeddings).
    fn as_bert(&self, hidden_size: usize) -> BertConfig {
        BertConfig {
            vocab_size: self.vocab_size,
            hidden_size,
            num_hidden_layers: self.num_hidden_layers,
            num_attention_heads: self.num_attention_heads,
            intermediate_size: self.intermediate_size,
            hidden_act: self.hidden_act,
            hidden_dropout_prob: self.hidden_dropout_prob,
            attention_probs_dropout_prob: self.attention_probs_dropout_prob,
            max_position_embeddings: self.max_position_embeddings,
            type_vocab_size: self.type_vocab_size,
            initializer_range: self.initializer_range,
            layer_norm_eps: self.layer_norm_eps,
            pad_token_id: self.pad_token_id,
        }
    }

    /// Checks values that would fail later in obscure ways.
    pub fn validate(&self) -> Result<(), ModelConfigError> {
        crate::error::check_epsilon("albert", "layer_norm_eps", self.layer_norm_eps)?;
        let invalid = |message: String| ModelConfigError::Invalid {
            architecture: "albert",
            message,
        };
        self.as_bert(self.hidden_size)
            .validate()
            .map_err(|e| match e {
                ModelConfigError::Invalid { message, .. } => invalid(message),
                other => other,
            })?;
        for (name, value) in [
            ("embedding_size", self.embedding_size),
            ("num_hidden_groups", self.num_hidden_groups),
            ("inner_group_num", self.inner_group_num),
        ] {
            if value == 0 {
                return Err(invalid(format!("{name} must be at least 1")));
            }
        }
        // transformers picks group `i / (layers / groups)`: uneven splits index past the groups.
        if !self
            .num_hidden_layers
            .is_multiple_of(self.num_hidden_groups)
        {
            return Err(invalid(format!(
                "num_hidden_layers ({}) is not a multiple of num_hidden_groups ({})",
                self.num_hidden_layers, self.num_hidden_groups
            )));
        }
        Ok(())
    }

    /// Initialises the encoder on `device`.
    pub fn init_model(&self, device: &Device) -> AlbertModel {
        let layers = self.as_bert(self.hidden_size);
        AlbertModel {
            embeddings: self.as_bert(self.embedding_size).init_embeddings(device),
            encoder: AlbertTransformer {
                embedding_hidden_mapping_in: LinearConfig::new(
                    self.embedding_size,
                    self.hidden_size,
                )
                .with_initializer(normal_init(self.initializer_range))
                .init(device),
                albert_layer_groups: (0..self.num_hidden_groups)
                    .map(|_| AlbertLayerGroup {
                        albert_layers: (0..self.inner_group_num)
                            .map(|_| layers.init_layer(device))
                            .collect(),
                    })
                    .collect(),
                num_hidden_layers: self.num_hidden_layers,
            },
            hidden_size: self.hidden_size,
        }
    }

    /// Initialises the encoder with its MLM head on `device`.
    pub fn init(&self, device: &Device) -> AlbertForMaskedLm {
        AlbertForMaskedLm {
            albert: self.init_model(device),
            predictions: self
                .as_bert(self.hidden_size)
                .mlm_head(self.embedding_size, self.hidden_act)
                .init(device),
        }
    }
}

/// A group of layers whose weights every pass assigned to the group reuses.
#[derive(Module, Debug)]
pub struct AlbertLayerGroup {
    /// The group's layers, run in order.
    pub albert_layers: Vec<BertLayer>,
}

/// The projection up from the embedding width and the shared layer groups.
#[derive(Module, Debug)]
pub struct AlbertTransformer {
    /// `[embedding_size, hidden_size]`.
    pub embedding_hidden_mapping_in: Linear,
    /// The distinct groups.
    pub albert_layer_groups: Vec<AlbertLayerGroup>,
    num_hidden_layers: usize,
}

impl AlbertTransformer {
    /// Hidden states are returned as `transformers` 5 does: the projected embeddings, then the
    /// output of every layer call (`num_hidden_layers x inner_group_num` of them).
    ///
    /// # Shapes
    /// - embedded: `[batch, seq, embedding_size]` -> `[batch, seq, hidden_size]`
    pub fn forward(
        &self,
        embedded: Tensor<3>,
        padding: Option<Tensor<2, Bool>>,
        output_hidden_states: bool,
    ) -> EncoderOutput {
        let mut x = self.embedding_hidden_mapping_in.forward(embedded);
        let mut hidden_states = Vec::new();
        if output_hidden_states {
            hidden_states.push(x.clone());
        }
        let passes_per_group = self.num_hidden_layers / self.albert_layer_groups.len();
        for pass in 0..self.num_hidden_layers {
            // Divergence from BERT: passes reuse the weights of their group.
            for layer in &self.albert_layer_groups[pass / passes_per_group].albert_layers {
                x = layer.forward(x, padding.clone());
                if output_hidden_states {
                    hidden_states.push(x.clone());
                }
            }
        }
        EncoderOutput {
            last_hidden_state: x,
            hidden_states,
        }
    }
}

/// `AlbertModel` without the pooler.
#[derive(Module, Debug)]
pub struct AlbertModel {
    /// Embeddings at `embedding_size` (checkpoint `albert.embeddings`).
    pub embeddings: BertEmbeddings,
    /// Checkpoint `albert.encoder`.
    pub encoder: AlbertTransformer,
    hidden_size: usize,
}

impl ProteinEncoder for AlbertModel {
    fn hidden_size(&self) -> usize {
        self.hidden_size
    }

    /// # Shapes
    /// - input ids and mask `[batch, seq]` -> hidden states `[batch, seq, hidden_size]`
    fn encode(&self, input: EncoderInput) -> EncoderOutput {
        let padding = input.attention_mask.map(padding_mask);
        let embedded = self
            .embeddings
            .forward(input.input_ids, input.token_type_ids);
        self.encoder
            .forward(embedded, padding, input.output_hidden_states)
    }
}

/// `AlbertForMaskedLM`: the encoder and its MLM head (checkpoint prefixes `albert.` and
/// `predictions.`), decoding with the tied word embeddings.
#[derive(Module, Debug)]
pub struct AlbertForMaskedLm {
    /// The encoder.
    pub albert: AlbertModel,
    /// Dense `hidden -> embedding_size`, activation, LayerNorm, tied decoder plus bias.
    pub predictions: MaskedLmHead,
}

impl AlbertForMaskedLm {
    /// Logits at every position.
    ///
    /// # Shapes
    /// - input ids and mask `[batch, seq]` -> logits `[batch, seq, vocab]`
    pub fn forward(&self, input: EncoderInput) -> Tensor<3> {
        let hidden = self.albert.encode(input).last_hidden_state;
        logits_at_every_position(hidden, |h| self.mlm_logits(h))
    }

    /// Logits at selected flat positions (`row * seq + column`) only.
    ///
    /// # Shapes
    /// - input ids and mask `[batch, seq]`, positions `[n]` -> logits `[n, vocab]`
    pub fn forward_at(&self, input: EncoderInput, positions: Tensor<1, Int>) -> Tensor<2> {
        let hidden = self.albert.encode(input).last_hidden_state;
        self.mlm_logits(select_positions(hidden, positions))
    }

    /// MLM logits of hidden states.
    ///
    /// # Shapes
    /// - hidden: `[n, hidden_size]` -> `[n, vocab]`
    pub fn mlm_logits(&self, hidden: Tensor<2>) -> Tensor<2> {
        self.predictions
            .forward(hidden, self.albert.embeddings.word_embeddings.weight.val())
    }
}

impl ProteinEncoder for AlbertForMaskedLm {
    fn hidden_size(&self) -> usize {
        self.albert.hidden_size()
    }

    fn encode(&self, input: EncoderInput) -> EncoderOutput {
        self.albert.encode(input)
    }
}

/// ALBERT's projection and layer groups, relative to the model; BERT layer names inside.
const ALBERT_LAYERS: RuleTable = &[
    ("embeddings.LayerNorm", "embeddings.layer_norm"),
    (
        "encoder.albert_layer_groups.{i}.albert_layers.{j}.attention.dense",
        "encoder.albert_layer_groups.{i}.albert_layers.{j}.attention.output",
    ),
    (
        "encoder.albert_layer_groups.{i}.albert_layers.{j}.attention.LayerNorm",
        "encoder.albert_layer_groups.{i}.albert_layers.{j}.attention_norm",
    ),
    (
        "encoder.albert_layer_groups.{i}.albert_layers.{j}.ffn_output",
        "encoder.albert_layer_groups.{i}.albert_layers.{j}.feed_forward.output",
    ),
    (
        "encoder.albert_layer_groups.{i}.albert_layers.{j}.ffn",
        "encoder.albert_layer_groups.{i}.albert_layers.{j}.feed_forward.intermediate",
    ),
    (
        "encoder.albert_layer_groups.{i}.albert_layers.{j}.full_layer_layer_norm",
        "encoder.albert_layer_groups.{i}.albert_layers.{j}.output_norm",
    ),
];

/// ALBERT's masked-LM head; its decoder is tied to the word embeddings.
const ALBERT_MLM_HEAD: RuleTable = &[
    ("predictions.dense", "predictions.transform"),
    ("predictions.LayerNorm", "predictions.layer_norm"),
];

/// `AlbertForMaskedLM` and `AlbertForPreTraining` checkpoints (ProtAlbert) into
/// [`AlbertForMaskedLm`](crate::AlbertForMaskedLm).
pub const ALBERT_FOR_MASKED_LM: KeyMap = KeyMap {
    aliases: &[],
    rules: &[
        ("albert.", "albert.", ALBERT_LAYERS),
        ("", "", ALBERT_MLM_HEAD),
    ],
    ignored: &[
        r"^albert\.pooler\.",
        r"^albert\.embeddings\.position_ids$",
        r"^sop_classifier\.",
    ],
    tied: &[r"^predictions\.decoder\."], // copies of the word embeddings
};

/// Any ALBERT checkpoint into the bare encoder [`AlbertModel`](crate::AlbertModel).
pub const ALBERT_ENCODER: KeyMap = KeyMap {
    aliases: &[(r"^albert\.", "")],
    rules: &[("", "", ALBERT_LAYERS)],
    ignored: &[
        r"^pooler\.",
        r"^embeddings\.position_ids$",
        r"^predictions\.",
        r"^sop_classifier\.",
    ],
    tied: &[],
};

impl ArchitectureConfig for AlbertConfig {
    type Encoder = AlbertModel;
    const MODEL_TYPE: &'static str = "albert";
    const NAME: &'static str = "albert";
    const SAVED_CLASS: &'static str = "AlbertForMaskedLM";
    const SIGNATURE: &'static str = r"(^|\.)albert_layer_groups\.|^albert\.";
    const LORA_TARGETS: LoraTargets = &[
        ("q", r"attention\.query$"),
        ("k", r"attention\.key$"),
        ("v", r"attention\.value$"),
        ("o", r"attention\.dense$"),
        ("ffn", r"albert_layers\.\d+\.ffn(_output)?$"),
    ];
    const VOCABULARY: VocabularySource = VocabularySource::Checkpoint;

    fn describe(&self) -> String {
        format!(
            "ALBERT, {} passes through {} group(s) of {} layer(s), width {} (embeddings {})",
            self.num_hidden_layers,
            self.num_hidden_groups,
            self.inner_group_num,
            self.hidden_size,
            self.embedding_size
        )
    }
    fn validate(&self) -> Result<(), ModelConfigError> {
        AlbertConfig::validate(self)
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
    fn init_model(&self, device: &Device) -> AlbertModel {
        AlbertConfig::init_model(self, device)
    }
    fn encoder_key_map(&self, _: &[String]) -> Result<KeyMap, ModelConfigError> {
        Ok(ALBERT_ENCODER)
    }
}

impl PretrainedModel for AlbertForMaskedLm {
    type Config = AlbertConfig;
    const CLASS: &'static str = "AlbertForMaskedLM";
    fn init(config: &AlbertConfig, device: &Device) -> Self {
        config.init(device)
    }
    fn key_map(_: &AlbertConfig) -> Result<KeyMap, ModelConfigError> {
        Ok(ALBERT_FOR_MASKED_LM)
    }
}

impl MaskedLanguageModel for AlbertForMaskedLm {
    fn logits_at(&self, input: EncoderInput, positions: Tensor<1, Int>) -> Tensor<2> {
        self.forward_at(input, positions)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> AlbertConfig {
        AlbertConfig {
            embedding_size: 8,
            hidden_size: 16,
            num_hidden_layers: 4,
            num_hidden_groups: 2,
            inner_group_num: 2,
            num_attention_heads: 2,
            intermediate_size: 32,
            max_position_embeddings: 40,
            ..AlbertConfig::default()
        }
    }

    #[test]
    fn layers_are_shared_across_passes() {
        let config = tiny();
        let model = config.init(&Device::flex());
        assert_eq!(model.albert.encoder.albert_layer_groups.len(), 2);
        assert_eq!(
            model.albert.encoder.albert_layer_groups[0]
                .albert_layers
                .len(),
            2
        );
        // Four passes, but parameters for two groups of two layers only.
        let one_layer = config.as_bert(16).init_layer(&Device::flex()).num_params();
        let embeddings = (34 + 40 + 2) * 8 + 2 * 8;
        let mapping = 8 * 16 + 16;
        let head = 16 * 8 + 8 + 2 * 8 + 34;
        assert_eq!(
            model.num_params(),
            embeddings + mapping + 4 * one_layer + head
        );
    }

    #[test]
    fn hidden_states_have_one_entry_per_layer_call() {
        let device = Device::flex();
        let model = tiny().init_model(&device);
        let ids = Tensor::<2, Int>::from_ints([[2, 5, 6, 3]], &device);
        let out = model.encode(EncoderInput::unpadded(ids).with_hidden_states());
        assert_eq!(out.hidden_states.len(), 4 * 2 + 1);
        assert_eq!(out.last_hidden_state.dims(), [1, 4, 16]);
    }

    #[test]
    fn rejects_uneven_groups() {
        let config = AlbertConfig {
            num_hidden_layers: 3,
            ..tiny()
        };
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("num_hidden_groups"), "{err}");
        assert!(err.contains("albert"), "{err}");
    }
}
