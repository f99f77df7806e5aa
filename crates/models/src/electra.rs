//! ELECTRA, as `transformers`' `ElectraModel`, `ElectraForPreTraining` (the discriminator,
//! ProtElectra's released encoder) and `ElectraForMaskedLM` (the generator).
//!
//! Each tower is BERT at its own width behind embeddings of width `embedding_size`, projected
//! up by `embeddings_project` when the widths differ. For pretraining, [`Electra`] holds one set
//! of embeddings and both towers: the generator (a small masked LM) proposes replacements, the
//! discriminator decides for every token whether it was replaced, and both read the same
//! embeddings, as in ELECTRA.
//!
//! The towers own no embeddings here (unlike the checkpoints, where each file carries a copy),
//! so sharing needs no tied parameters: the checkpoint structs pair a tower with embeddings.

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{Bool, Device, Int, Tensor};
use serde::{Deserialize, Serialize};

use crate::architecture::{
    ArchitectureConfig, LoraTargets, MaskedLanguageModel, PretrainedModel, keys_of,
};
use crate::bert::{BERT_LAYERS, BertConfig, BertEmbeddings, BertEncoder};
use crate::blocks::{
    Activation, MaskedLmHead, logits_at_every_position, normal_init, padding_mask, select_positions,
};
use crate::encoder::{EncoderInput, EncoderOutput, ProteinEncoder};
use crate::error::ModelConfigError;
use crate::key_map::{KeyMap, RuleTable};

/// The generator's shape when it differs from the discriminator's (prottrans' addition to
/// ELECTRA's `config.json`, for joint pretraining). Embedding fields are shared.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ElectraGeneratorConfig {
    /// Generator width.
    pub hidden_size: usize,
    /// Generator layers.
    pub num_hidden_layers: usize,
    /// Generator attention heads.
    pub num_attention_heads: usize,
    /// Generator feed-forward inner width.
    pub intermediate_size: usize,
}

impl From<&ElectraConfig> for ElectraGeneratorConfig {
    /// The shape of a tower, as the generator of another (used when joining checkpoints).
    fn from(tower: &ElectraConfig) -> Self {
        Self {
            hidden_size: tower.hidden_size,
            num_hidden_layers: tower.num_hidden_layers,
            num_attention_heads: tower.num_attention_heads,
            intermediate_size: tower.intermediate_size,
        }
    }
}

/// ELECTRA hyper-parameters of one tower, with the field names of a Hugging Face
/// `config.json`. Defaults are the released ProtElectra discriminator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ElectraConfig {
    /// Vocabulary size (ProtElectra: ProtBert's 30).
    pub vocab_size: usize,
    /// Width of the (shared) token embeddings.
    pub embedding_size: usize,
    /// Tower width.
    pub hidden_size: usize,
    /// Number of transformer layers.
    pub num_hidden_layers: usize,
    /// Number of attention heads.
    pub num_attention_heads: usize,
    /// Feed-forward inner width.
    pub intermediate_size: usize,
    /// Feed-forward activation (and the discriminator head's).
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
    /// The generator trained alongside (pretraining only); a quarter of the discriminator's
    /// width, heads and feed-forward, at the same depth, when not given.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generator: Option<ElectraGeneratorConfig>,
}

impl Default for ElectraConfig {
    fn default() -> Self {
        Self {
            vocab_size: 30,
            embedding_size: 1024,
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
            generator: None,
        }
    }
}

impl ElectraConfig {
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

    /// The generator as a tower config of its own (what its `config.json` says).
    pub fn generator_config(&self) -> ElectraConfig {
        let generator = self.generator.clone().unwrap_or(ElectraGeneratorConfig {
            hidden_size: (self.hidden_size / 4).max(1),
            num_hidden_layers: self.num_hidden_layers,
            num_attention_heads: (self.num_attention_heads / 4).max(1),
            intermediate_size: (self.intermediate_size / 4).max(1),
        });
        ElectraConfig {
            hidden_size: generator.hidden_size,
            num_hidden_layers: generator.num_hidden_layers,
            num_attention_heads: generator.num_attention_heads,
            intermediate_size: generator.intermediate_size,
            generator: None,
            ..self.clone()
        }
    }

    /// Checks values that would fail later in obscure ways, the generator's too.
    pub fn validate(&self) -> Result<(), ModelConfigError> {
        crate::error::check_epsilon("electra", "layer_norm_eps", self.layer_norm_eps)?;
        let invalid = |message: String| ModelConfigError::Invalid {
            architecture: "electra",
            message,
        };
        let towers = [("", self.clone()), ("generator: ", self.generator_config())];
        for (tower, config) in towers {
            config
                .as_bert(config.hidden_size)
                .validate()
                .map_err(|e| match e {
                    ModelConfigError::Invalid { message, .. } => {
                        invalid(format!("{tower}{message}"))
                    }
                    other => other,
                })?;
        }
        if self.embedding_size == 0 {
            return Err(invalid("embedding_size must be at least 1".into()));
        }
        Ok(())
    }

    fn init_embeddings(&self, device: &Device) -> BertEmbeddings {
        self.as_bert(self.embedding_size).init_embeddings(device)
    }

    /// Projection and layers of this tower.
    fn init_stack(&self, device: &Device) -> (Option<Linear>, BertEncoder) {
        let project = (self.embedding_size != self.hidden_size).then(|| {
            LinearConfig::new(self.embedding_size, self.hidden_size)
                .with_initializer(normal_init(self.initializer_range))
                .init(device)
        });
        let layers = self.as_bert(self.hidden_size);
        let encoder = BertEncoder {
            layer: (0..self.num_hidden_layers)
                .map(|_| layers.init_layer(device))
                .collect(),
        };
        (project, encoder)
    }

    /// Initialises the bare encoder of this tower on `device`.
    pub fn init_model(&self, device: &Device) -> ElectraModel {
        let (embeddings_project, encoder) = self.init_stack(device);
        ElectraModel {
            embeddings: self.init_embeddings(device),
            embeddings_project,
            encoder,
            hidden_size: self.hidden_size,
        }
    }

    /// This tower as a discriminator, without embeddings.
    pub fn init_discriminator(&self, device: &Device) -> ElectraDiscriminator {
        let (embeddings_project, encoder) = self.init_stack(device);
        let linear = |d_out| {
            LinearConfig::new(self.hidden_size, d_out)
                .with_initializer(normal_init(self.initializer_range))
                .init(device)
        };
        ElectraDiscriminator {
            embeddings_project,
            encoder,
            discriminator_predictions: ElectraDiscriminatorPredictions {
                dense: linear(self.hidden_size),
                dense_prediction: linear(1),
                activation: self.hidden_act,
            },
            hidden_size: self.hidden_size,
        }
    }

    /// This tower as a generator, without embeddings. The generator head always uses GELU, as
    /// `transformers`' `ElectraGeneratorPredictions` does.
    pub fn init_generator(&self, device: &Device) -> ElectraGenerator {
        let (embeddings_project, encoder) = self.init_stack(device);
        ElectraGenerator {
            embeddings_project,
            encoder,
            generator_predictions: self
                .as_bert(self.hidden_size)
                .mlm_head(self.embedding_size, Activation::Gelu)
                .init(device),
        }
    }

    /// `ElectraForPreTraining` (a discriminator checkpoint) on `device`.
    pub fn init_for_pretraining(&self, device: &Device) -> ElectraForPreTraining {
        ElectraForPreTraining {
            embeddings: self.init_embeddings(device),
            discriminator: self.init_discriminator(device),
        }
    }

    /// `ElectraForMaskedLM` (a generator checkpoint) of this tower on `device`.
    pub fn init_for_masked_lm(&self, device: &Device) -> ElectraForMaskedLm {
        ElectraForMaskedLm {
            embeddings: self.init_embeddings(device),
            generator: self.init_generator(device),
        }
    }

    /// Embeddings, discriminator (this config) and generator ([`Self::generator_config`]) for
    /// joint pretraining.
    pub fn init(&self, device: &Device) -> Electra {
        Electra {
            embeddings: self.init_embeddings(device),
            generator: self.generator_config().init_generator(device),
            discriminator: self.init_discriminator(device),
        }
    }
}

/// Projects the embeddings up to the tower width when needed, then runs the layers.
fn project_and_encode(
    embeddings_project: Option<&Linear>,
    encoder: &BertEncoder,
    embedded: Tensor<3>,
    padding: Option<Tensor<2, Bool>>,
    output_hidden_states: bool,
) -> EncoderOutput {
    let x = match embeddings_project {
        Some(project) => project.forward(embedded),
        None => embedded,
    };
    encoder.forward(x, padding, output_hidden_states)
}

/// `ElectraModel`: embeddings, projection and layers of one tower (either checkpoint's
/// encoder; heads skipped). The first hidden state is the projected embedding output.
#[derive(Module, Debug)]
pub struct ElectraModel {
    /// Embeddings at `embedding_size`.
    pub embeddings: BertEmbeddings,
    /// `[embedding_size, hidden_size]`, when the two differ.
    pub embeddings_project: Option<Linear>,
    /// The layers.
    pub encoder: BertEncoder,
    hidden_size: usize,
}

impl ProteinEncoder for ElectraModel {
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
        project_and_encode(
            self.embeddings_project.as_ref(),
            &self.encoder,
            embedded,
            padding,
            input.output_hidden_states,
        )
    }
}

/// The replaced-token head: dense, activation, dense to one logit per token.
#[derive(Module, Debug)]
pub struct ElectraDiscriminatorPredictions {
    /// `[hidden, hidden]`.
    pub dense: Linear,
    /// `[hidden, 1]`.
    pub dense_prediction: Linear,
    #[module(skip)]
    activation: Activation,
}

impl ElectraDiscriminatorPredictions {
    /// One logit per token: positive means "replaced".
    ///
    /// # Shapes
    /// - hidden: `[batch, seq, hidden]` -> `[batch, seq]`
    pub fn forward(&self, hidden: Tensor<3>) -> Tensor<2> {
        let h = self.activation.forward(self.dense.forward(hidden));
        self.dense_prediction.forward(h).squeeze_dim(2)
    }
}

/// A discriminator tower without embeddings.
#[derive(Module, Debug)]
pub struct ElectraDiscriminator {
    /// `[embedding_size, hidden_size]`, when the two differ.
    pub embeddings_project: Option<Linear>,
    /// The layers.
    pub encoder: BertEncoder,
    /// The replaced-token head.
    pub discriminator_predictions: ElectraDiscriminatorPredictions,
    hidden_size: usize,
}

impl ElectraDiscriminator {
    /// Hidden states and replaced-token logits of embedded tokens.
    ///
    /// # Shapes
    /// - embedded: `[batch, seq, embedding_size]` -> `[batch, seq, hidden]`, `[batch, seq]`
    pub fn forward(
        &self,
        embedded: Tensor<3>,
        padding: Option<Tensor<2, Bool>>,
        output_hidden_states: bool,
    ) -> (EncoderOutput, Tensor<2>) {
        let out = project_and_encode(
            self.embeddings_project.as_ref(),
            &self.encoder,
            embedded,
            padding,
            output_hidden_states,
        );
        let logits = self
            .discriminator_predictions
            .forward(out.last_hidden_state.clone());
        (out, logits)
    }
}

/// A generator tower without embeddings; its MLM head decodes with the shared word embeddings.
#[derive(Module, Debug)]
pub struct ElectraGenerator {
    /// `[embedding_size, hidden_size]`, when the two differ.
    pub embeddings_project: Option<Linear>,
    /// The layers.
    pub encoder: BertEncoder,
    /// Dense `hidden -> embedding_size`, GELU, LayerNorm, tied decoder plus bias
    /// (checkpoint `generator_predictions.*` and `generator_lm_head.bias`).
    pub generator_predictions: MaskedLmHead,
}

impl ElectraGenerator {
    /// Hidden states of embedded tokens.
    ///
    /// # Shapes
    /// - embedded: `[batch, seq, embedding_size]` -> `[batch, seq, hidden]`
    pub fn encode(
        &self,
        embedded: Tensor<3>,
        padding: Option<Tensor<2, Bool>>,
        output_hidden_states: bool,
    ) -> EncoderOutput {
        project_and_encode(
            self.embeddings_project.as_ref(),
            &self.encoder,
            embedded,
            padding,
            output_hidden_states,
        )
    }

    /// Vocabulary logits of hidden states.
    ///
    /// # Shapes
    /// - hidden: `[n, hidden]`, word_embeddings: `[vocab, embedding_size]` -> `[n, vocab]`
    pub fn mlm_logits(&self, hidden: Tensor<2>, word_embeddings: Tensor<2>) -> Tensor<2> {
        self.generator_predictions.forward(hidden, word_embeddings)
    }
}

/// `ElectraForPreTraining`: embeddings and a discriminator (ProtElectra's released encoder).
#[derive(Module, Debug)]
pub struct ElectraForPreTraining {
    /// Embeddings at `embedding_size`.
    pub embeddings: BertEmbeddings,
    /// The discriminator.
    pub discriminator: ElectraDiscriminator,
}

impl ElectraForPreTraining {
    /// Hidden states and replaced-token logits.
    ///
    /// # Shapes
    /// - input ids and mask `[batch, seq]` -> `[batch, seq, hidden]`, logits `[batch, seq]`
    pub fn forward(&self, input: EncoderInput) -> (EncoderOutput, Tensor<2>) {
        let padding = input.attention_mask.map(padding_mask);
        let embedded = self
            .embeddings
            .forward(input.input_ids, input.token_type_ids);
        self.discriminator
            .forward(embedded, padding, input.output_hidden_states)
    }
}

impl ProteinEncoder for ElectraForPreTraining {
    fn hidden_size(&self) -> usize {
        self.discriminator.hidden_size
    }

    fn encode(&self, input: EncoderInput) -> EncoderOutput {
        self.forward(input).0
    }
}

/// `ElectraForMaskedLM`: embeddings and a generator (a released ProtElectra generator).
#[derive(Module, Debug)]
pub struct ElectraForMaskedLm {
    /// Embeddings at `embedding_size`.
    pub embeddings: BertEmbeddings,
    /// The generator.
    pub generator: ElectraGenerator,
}

impl ElectraForMaskedLm {
    /// Hidden states and logits at every position.
    ///
    /// # Shapes
    /// - input ids and mask `[batch, seq]` -> `[batch, seq, hidden]`, `[batch, seq, vocab]`
    pub fn forward(&self, input: EncoderInput) -> (EncoderOutput, Tensor<3>) {
        let padding = input.attention_mask.map(padding_mask);
        let embedded = self
            .embeddings
            .forward(input.input_ids, input.token_type_ids);
        let out = self
            .generator
            .encode(embedded, padding, input.output_hidden_states);
        let words = self.embeddings.word_embeddings.weight.val();
        let logits = logits_at_every_position(out.last_hidden_state.clone(), |h| {
            self.generator.mlm_logits(h, words)
        });
        (out, logits)
    }
}

/// The generator's vocabulary logits at flat positions (`row * seq + column`), for the
/// pretraining pair and the saved generator alike.
fn generator_logits_at(
    embeddings: &BertEmbeddings,
    generator: &ElectraGenerator,
    input: EncoderInput,
    positions: Tensor<1, Int>,
) -> Tensor<2> {
    let padding = input.attention_mask.map(padding_mask);
    let embedded = embeddings.forward(input.input_ids, input.token_type_ids);
    let hidden = generator.encode(embedded, padding, false).last_hidden_state;
    generator.mlm_logits(
        select_positions(hidden, positions),
        embeddings.word_embeddings.weight.val(),
    )
}

/// ELECTRA for pretraining: shared embeddings, a generator and a discriminator.
#[derive(Module, Debug)]
pub struct Electra {
    /// Embeddings both towers read.
    pub embeddings: BertEmbeddings,
    /// The small masked LM that proposes replacements.
    pub generator: ElectraGenerator,
    /// The replaced-token detector (the model kept after pretraining).
    pub discriminator: ElectraDiscriminator,
}

impl Electra {
    /// Generator logits at selected flat positions (`row * seq + column`).
    ///
    /// # Shapes
    /// - input ids and mask `[batch, seq]`, positions `[n]` -> `[n, vocab]`
    pub fn generator_logits_at(&self, input: EncoderInput, positions: Tensor<1, Int>) -> Tensor<2> {
        generator_logits_at(&self.embeddings, &self.generator, input, positions)
    }

    /// Replaced-token logits at every position.
    ///
    /// # Shapes
    /// - input ids and mask `[batch, seq]` -> `[batch, seq]`
    pub fn discriminator_logits(&self, input: EncoderInput) -> Tensor<2> {
        let padding = input.attention_mask.map(padding_mask);
        let embedded = self
            .embeddings
            .forward(input.input_ids, input.token_type_ids);
        self.discriminator.forward(embedded, padding, false).1
    }

    /// The two checkpoints `transformers` knows, each with its copy of the embeddings.
    pub fn into_checkpoints(self) -> (ElectraForPreTraining, ElectraForMaskedLm) {
        let discriminator = ElectraForPreTraining {
            embeddings: self.embeddings.clone(),
            discriminator: self.discriminator,
        };
        let generator = ElectraForMaskedLm {
            embeddings: self.embeddings,
            generator: self.generator,
        };
        (discriminator, generator)
    }

    /// Joins a discriminator and a generator checkpoint, keeping the discriminator's
    /// embeddings (ELECTRA's released pairs were trained with shared embeddings).
    pub fn from_checkpoints(
        discriminator: ElectraForPreTraining,
        generator: ElectraForMaskedLm,
    ) -> Self {
        Self {
            embeddings: discriminator.embeddings,
            generator: generator.generator,
            discriminator: discriminator.discriminator,
        }
    }
}

/// One ELECTRA tower's projection (its layers are [`BERT_LAYERS`]), relative to the tower.
const ELECTRA_PROJECTION: RuleTable = &[("embeddings_project", "embeddings_project")];

/// ELECTRA's embeddings: shared by the towers, so stored outside them in the module.
const ELECTRA_EMBEDDINGS: RuleTable = &[
    ("embeddings.LayerNorm", "embeddings.layer_norm"),
    ("embeddings", "embeddings"),
];

/// Keys every ELECTRA checkpoint may carry that are never loaded.
const ELECTRA_IGNORED: &[&str] = &[r"^electra\.embeddings\.position_ids$"];

/// `ElectraForPreTraining` checkpoints (the ProtElectra discriminator) into
/// [`ElectraForPreTraining`](crate::ElectraForPreTraining).
pub const ELECTRA_DISCRIMINATOR: KeyMap = KeyMap {
    aliases: &[],
    rules: &[
        ("electra.", "", ELECTRA_EMBEDDINGS),
        ("electra.", "discriminator.", ELECTRA_PROJECTION),
        ("electra.", "discriminator.", BERT_LAYERS),
        (
            "discriminator_predictions",
            "discriminator.discriminator_predictions",
            &[("", "")],
        ),
    ],
    ignored: ELECTRA_IGNORED,
    tied: &[],
};

/// `ElectraForMaskedLM` checkpoints (the ProtElectra generator) into
/// [`ElectraForMaskedLm`](crate::ElectraForMaskedLm).
pub const ELECTRA_GENERATOR: KeyMap = KeyMap {
    aliases: &[],
    rules: &[
        ("electra.", "", ELECTRA_EMBEDDINGS),
        ("electra.", "generator.", ELECTRA_PROJECTION),
        ("electra.", "generator.", BERT_LAYERS),
        (
            "",
            "generator.generator_predictions.",
            &[
                ("generator_predictions.dense", "transform"),
                ("generator_predictions.LayerNorm", "layer_norm"),
                ("generator_lm_head.bias", "bias"),
            ],
        ),
    ],
    ignored: &[r"^electra\.embeddings\.position_ids$"],
    tied: &[r"^generator_lm_head\.weight$"], // copies of the word embeddings
};

/// Either ELECTRA checkpoint into the bare encoder [`ElectraModel`](crate::ElectraModel).
pub const ELECTRA_ENCODER: KeyMap = KeyMap {
    aliases: &[(r"^(embeddings|embeddings_project|encoder)\.", "electra.$1.")],
    rules: &[
        ("electra.", "", ELECTRA_EMBEDDINGS),
        ("electra.", "", ELECTRA_PROJECTION),
        ("electra.", "", BERT_LAYERS),
    ],
    ignored: &[
        r"^electra\.embeddings\.position_ids$",
        r"^discriminator_predictions\.",
        r"^generator_predictions\.",
        r"^generator_lm_head\.",
    ],
    tied: &[],
};

impl ArchitectureConfig for ElectraConfig {
    type Encoder = ElectraModel;
    const MODEL_TYPE: &'static str = "electra";
    const NAME: &'static str = "electra";
    const SAVED_CLASS: &'static str = "ElectraForPreTraining";
    const SIGNATURE: &'static str =
        r"^(electra\.|discriminator_predictions\.|generator_predictions\.|generator_lm_head\.)";
    const LORA_TARGETS: LoraTargets = crate::bert::BERT_LORA_TARGETS;
    // ProtElectra was trained with ProtBert's vocabulary.

    fn describe(&self) -> String {
        let generator = self.generator_config();
        format!(
            "ELECTRA, discriminator {} layers width {}, generator {} layers width {}, embeddings {} (shared)",
            self.num_hidden_layers,
            self.hidden_size,
            generator.num_hidden_layers,
            generator.hidden_size,
            self.embedding_size
        )
    }
    /// The generator's keys are listed too (`generator` is optional).
    fn config_keys() -> Vec<String> {
        keys_of(&ElectraConfig {
            generator: Some((&ElectraConfig::default()).into()),
            ..ElectraConfig::default()
        })
    }
    fn validate(&self) -> Result<(), ModelConfigError> {
        ElectraConfig::validate(self)
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
    /// A discriminator or a generator checkpoint: the tower its config describes.
    fn init_model(&self, device: &Device) -> ElectraModel {
        ElectraConfig::init_model(self, device)
    }
    fn encoder_key_map(&self, _: &[String]) -> Result<KeyMap, ModelConfigError> {
        Ok(ELECTRA_ENCODER)
    }
}

impl PretrainedModel for ElectraForPreTraining {
    type Config = ElectraConfig;
    const CLASS: &'static str = "ElectraForPreTraining";
    fn init(config: &ElectraConfig, device: &Device) -> Self {
        config.init_for_pretraining(device)
    }
    fn key_map(_: &ElectraConfig) -> Result<KeyMap, ModelConfigError> {
        Ok(ELECTRA_DISCRIMINATOR)
    }
}

impl PretrainedModel for ElectraForMaskedLm {
    type Config = ElectraConfig;
    const CLASS: &'static str = "ElectraForMaskedLM";
    fn init(config: &ElectraConfig, device: &Device) -> Self {
        config.init_for_masked_lm(device)
    }
    fn key_map(_: &ElectraConfig) -> Result<KeyMap, ModelConfigError> {
        Ok(ELECTRA_GENERATOR)
    }
}

impl MaskedLanguageModel for ElectraForMaskedLm {
    fn logits_at(&self, input: EncoderInput, positions: Tensor<1, Int>) -> Tensor<2> {
        generator_logits_at(&self.embeddings, &self.generator, input, positions)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tiny() -> ElectraConfig {
        ElectraConfig {
            embedding_size: 8,
            hidden_size: 16,
            num_hidden_layers: 2,
            num_attention_heads: 4,
            intermediate_size: 32,
            max_position_embeddings: 40,
            ..ElectraConfig::default()
        }
    }

    #[test]
    fn generator_defaults_to_a_quarter_of_the_discriminator() {
        let generator = tiny().generator_config();
        assert_eq!(
            (
                generator.hidden_size,
                generator.num_attention_heads,
                generator.intermediate_size
            ),
            (4, 1, 8)
        );
        assert_eq!(generator.embedding_size, 8, "embeddings are shared");
    }

    #[test]
    fn joint_model_has_one_set_of_embeddings() {
        let device = Device::flex();
        let config = tiny();
        let joint = config.init(&device);
        let (discriminator, generator) = joint.into_checkpoints();
        let shared = discriminator.embeddings.num_params();
        let separate = discriminator.num_params() + generator.num_params();
        let joint = Electra::from_checkpoints(discriminator, generator);
        assert_eq!(joint.num_params(), separate - shared);
    }

    #[test]
    fn shapes() {
        let device = Device::flex();
        let model = tiny().init(&device);
        let ids = Tensor::<2, Int>::from_ints([[2, 5, 6, 3], [2, 7, 3, 0]], &device);
        let mask = Tensor::<2, Int>::from_ints([[1, 1, 1, 1], [1, 1, 1, 0]], &device);
        let input = EncoderInput::new(ids, mask);
        let logits = model.generator_logits_at(input.clone(), Tensor::from_ints([1, 5], &device));
        assert_eq!(logits.dims(), [2, 30]);
        assert_eq!(model.discriminator_logits(input).dims(), [2, 4]);
    }

    #[test]
    fn rejects_a_bad_generator() {
        let config = ElectraConfig {
            generator: Some(ElectraGeneratorConfig {
                hidden_size: 6,
                num_hidden_layers: 1,
                num_attention_heads: 4,
                intermediate_size: 8,
            }),
            ..tiny()
        };
        let err = config.validate().unwrap_err().to_string();
        assert!(err.contains("generator: hidden_size (6)"), "{err}");
    }
}
