//! The registry: every implemented architecture, one line each. Adding an architecture is its
//! file (modules, config, key maps and its [`ArchitectureConfig`]) plus one line here.
//!
//! From the list, [`registry!`] makes [`Architecture`] (names), [`ModelConfig`] (a
//! configuration of any architecture, read from prottrans TOML or a Hugging Face
//! `config.json`) and [`Encoder`] (the bare encoder of any architecture); code that must act on
//! whatever checkpoint the user points at calls [`ModelConfig::visit`] with a
//! [`ConfigVisitor`], generic over [`ArchitectureConfig`], instead of matching on variants.

use std::path::Path;

use burn::tensor::{Int, Tensor};
use prottrans_tokenizer::Vocabulary;
use serde::{Deserialize, Serialize};

use crate::albert::{AlbertConfig, AlbertForMaskedLm, AlbertModel};
use crate::architecture::{ArchitectureConfig, MaskedLanguageModel, VocabularySource};
use crate::bert::{BertConfig, BertForMaskedLm, BertModel};
use crate::electra::{ElectraConfig, ElectraModel};
use crate::encoder::{EncoderInput, EncoderOutput, ProteinEncoder};
use crate::error::ModelConfigError;
use crate::esm::{EsmConfig, EsmForMaskedLm, EsmModel};
use crate::t5::{T5Config, T5EncoderModel};
use crate::transfo_xl::{TransfoXlConfig, TransfoXlModel};
use crate::xlnet::{XlnetConfig, XlnetModel};

/// Code run on a configuration of whatever architecture, generic over it.
pub trait ConfigVisitor {
    /// What the visit returns.
    type Output;

    /// Visits the configuration of architecture `C`.
    fn visit<C: ArchitectureConfig>(self, config: &C) -> Self::Output
    where
        Encoder: From<C::Encoder>,
        ModelConfig: From<C>;
}

/// How prottrans pretrains an architecture.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Objective {
    /// Masked language modelling (BERT, ALBERT, ESM-2).
    MaskedLm,
    /// ELECTRA's generator and discriminator.
    ReplacedTokenDetection,
    /// T5's single-residue span corruption.
    SpanCorruption,
    /// XLNet's permutation LM.
    PermutationLm,
    /// Left-to-right LM read in segments with memory (Transformer-XL).
    CausalLm,
}

impl Objective {
    /// Every objective.
    pub const ALL: &'static [Objective] = &[
        Self::MaskedLm,
        Self::ReplacedTokenDetection,
        Self::SpanCorruption,
        Self::PermutationLm,
        Self::CausalLm,
    ];

    /// The objective named `name` (as in `report.json`).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|o| o.name() == name)
    }

    /// The name in `report.json`.
    pub fn name(self) -> &'static str {
        match self {
            Self::MaskedLm => "masked-lm",
            Self::ReplacedTokenDetection => "replaced-token-detection",
            Self::SpanCorruption => "span-corruption",
            Self::PermutationLm => "permutation-lm",
            Self::CausalLm => "causal-lm",
        }
    }

    /// Whether it reads sequences left to right (so new proteins can be sampled).
    pub fn is_autoregressive(self) -> bool {
        matches!(self, Self::PermutationLm | Self::CausalLm)
    }
}

/// Code run on the model an architecture is pretrained as, one method per objective: masked LM
/// is generic over the model; the others train one architecture each.
pub trait PretrainingVisitor {
    /// What the visit returns.
    type Output;

    /// Masked LM, of the masked language model `M`.
    fn masked_lm<M>(self, config: &M::Config) -> Self::Output
    where
        M: MaskedLanguageModel,
        M::Config: RegisteredConfig;

    /// ELECTRA's replaced-token detection.
    fn replaced_token_detection(self, config: &ElectraConfig) -> Self::Output;

    /// T5's span corruption.
    fn span_corruption(self, config: &T5Config) -> Self::Output;

    /// XLNet's permutation LM.
    fn permutation_lm(self, config: &XlnetConfig) -> Self::Output;

    /// Transformer-XL's causal LM.
    fn causal_lm(self, config: &TransfoXlConfig) -> Self::Output;
}

/// A configuration type that is one of [`ModelConfig`]'s variants.
pub trait RegisteredConfig: ArchitectureConfig + Into<ModelConfig> {
    /// The configuration, when `config` is of this architecture.
    fn from_model_config(config: &ModelConfig) -> Option<&Self>;
}

macro_rules! registry {
    ($(
        $(#[$doc:meta])*
        $variant:ident($config:ty, $encoder:ty) => $objective:ident $(::<$trained:ty>)?,
    )+) => {
        /// The implemented architectures, in the order their checkpoint signatures are tried.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum Architecture {
            $($(#[$doc])* $variant,)+
        }

        impl Architecture {
            /// Every architecture.
            pub const ALL: &'static [Architecture] = &[$(Self::$variant,)+];

            /// The Hugging Face `model_type`.
            pub fn model_type(self) -> &'static str {
                match self {
                    $(Self::$variant => <$config>::MODEL_TYPE,)+
                }
            }

            /// The name used in prottrans TOML and on the command line.
            pub fn name(self) -> &'static str {
                match self {
                    $(Self::$variant => <$config>::NAME,)+
                }
            }

            /// The key pattern only this architecture's checkpoints have.
            pub fn signature(self) -> &'static str {
                match self {
                    $(Self::$variant => <$config>::SIGNATURE,)+
                }
            }

            /// Every key a recipe's `[model]` may give for this architecture.
            pub fn config_keys(self) -> Vec<String> {
                match self {
                    $(Self::$variant => <$config>::config_keys(),)+
                }
            }
        }

        /// A model configuration of any implemented architecture.
        #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
        #[serde(tag = "architecture", rename_all = "snake_case")]
        pub enum ModelConfig {
            $($(#[$doc])* $variant($config),)+
        }

        impl ModelConfig {
            /// The architecture.
            pub fn architecture(&self) -> Architecture {
                match self {
                    $(Self::$variant(_) => Architecture::$variant,)+
                }
            }

            /// Runs `visitor` on the configuration, whatever its architecture.
            pub fn visit<V: ConfigVisitor>(&self, visitor: V) -> V::Output {
                match self {
                    $(Self::$variant(config) => visitor.visit(config),)+
                }
            }

            /// Runs `visitor`'s method for the objective the architecture is pretrained with.
            pub fn pretraining<V: PretrainingVisitor>(&self, visitor: V) -> V::Output {
                match self {
                    $(Self::$variant(config) => visitor.$objective $(::<$trained>)? (config),)+
                }
            }

            /// Parses a Hugging Face `config.json` value of architecture `architecture`.
            fn from_json_value(
                architecture: Architecture,
                value: serde_json::Value,
            ) -> Result<Self, serde_json::Error> {
                // The key of a bad value, which serde_json's own error leaves out for a
                // `Value` (it has no line and column to give either).
                fn named<T: serde::de::DeserializeOwned>(
                    value: serde_json::Value,
                ) -> Result<T, serde_json::Error> {
                    serde_path_to_error::deserialize(value).map_err(|e| {
                        let path = e.path().to_string();
                        let inner = e.into_inner();
                        if path == "." {
                            inner
                        } else {
                            <serde_json::Error as serde::de::Error>::custom(format!(
                                "`{path}`: {inner}"
                            ))
                        }
                    })
                }
                Ok(match architecture {
                    $(Architecture::$variant => Self::$variant(named(value)?),)+
                })
            }
        }

        $(
            impl From<$config> for ModelConfig {
                fn from(config: $config) -> Self {
                    Self::$variant(config)
                }
            }

            impl RegisteredConfig for $config {
                fn from_model_config(config: &ModelConfig) -> Option<&Self> {
                    match config {
                        ModelConfig::$variant(c) => Some(c),
                        #[allow(unreachable_patterns)]
                        _ => None,
                    }
                }
            }

            impl From<$encoder> for Encoder {
                fn from(model: $encoder) -> Self {
                    Self::$variant(model)
                }
            }
        )+

        /// The bare encoder of any implemented architecture, for code that takes whatever
        /// checkpoint the user points at (embedding, heads on the fly).
        #[derive(Debug)]
        #[non_exhaustive]
        pub enum Encoder {
            $($(#[$doc])* $variant($encoder),)+
        }

        impl ProteinEncoder for Encoder {
            fn hidden_size(&self) -> usize {
                match self {
                    $(Self::$variant(model) => model.hidden_size(),)+
                }
            }

            fn encode(&self, input: EncoderInput) -> EncoderOutput {
                match self {
                    $(Self::$variant(model) => ProteinEncoder::encode(model, input),)+
                }
            }

            fn has_segment_memory(&self) -> bool {
                match self {
                    $(Self::$variant(model) => model.has_segment_memory(),)+
                }
            }

            fn prepare_for_embedding(&mut self) -> Option<usize> {
                match self {
                    $(Self::$variant(model) => model.prepare_for_embedding(),)+
                }
            }

            fn encode_in_segments(
                &self,
                input_ids: Tensor<2, Int>,
                segment_len: usize,
            ) -> Option<Tensor<3>> {
                match self {
                    $(Self::$variant(model) => model.encode_in_segments(input_ids, segment_len),)+
                }
            }
        }
    };
}

registry! {
    /// ELECTRA (ProtElectra): the discriminator's shape, the generator's in `generator`.
    Electra(ElectraConfig, ElectraModel) => replaced_token_detection,
    /// ALBERT (ProtAlbert).
    Albert(AlbertConfig, AlbertModel) => masked_lm::<AlbertForMaskedLm>,
    /// T5 (ProtT5).
    T5(T5Config, T5EncoderModel) => span_corruption,
    /// XLNet (ProtXLNet).
    Xlnet(XlnetConfig, XlnetModel) => permutation_lm,
    /// Transformer-XL (ProtTXL).
    TransfoXl(TransfoXlConfig, TransfoXlModel) => causal_lm,
    /// ESM-2 (before BERT: its keys also look like BERT's).
    Esm(EsmConfig, EsmModel) => masked_lm::<EsmForMaskedLm>,
    /// BERT (ProtBert).
    Bert(BertConfig, BertModel) => masked_lm::<BertForMaskedLm>,
}

impl Architecture {
    /// Parses a Hugging Face `model_type` or a prottrans name.
    pub fn from_model_type(model_type: &str) -> Result<Self, ModelConfigError> {
        Self::ALL
            .iter()
            .copied()
            .find(|a| a.model_type() == model_type || model_type == a.name())
            .ok_or_else(|| ModelConfigError::Unknown {
                name: model_type.to_string(),
                known: Self::ALL
                    .iter()
                    .map(|a| a.name())
                    .collect::<Vec<_>>()
                    .join(", "),
            })
    }
}

impl std::fmt::Display for Architecture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// The cheap facts [`ModelConfig`]'s accessors read from an [`ArchitectureConfig`].
struct Describe;

struct Description {
    shape: String,
    default_vocabulary: fn() -> Vocabulary,
    hidden_size: usize,
    vocab_size: usize,
    max_tokens: Option<usize>,
    attention_bytes_per_pair: [u64; 2],
    vocabulary: VocabularySource,
    keeps_rare_residues: bool,
    saved_class: &'static str,
}

impl ConfigVisitor for Describe {
    type Output = Description;

    fn visit<C: ArchitectureConfig>(self, config: &C) -> Description {
        Description {
            shape: config.describe(),
            default_vocabulary: C::default_vocabulary,
            hidden_size: config.hidden_size(),
            vocab_size: config.vocab_size(),
            max_tokens: config.max_tokens(),
            attention_bytes_per_pair: [
                config.attention_bytes_per_pair(false),
                config.attention_bytes_per_pair(true),
            ],
            vocabulary: C::VOCABULARY,
            keeps_rare_residues: C::KEEPS_RARE_RESIDUES,
            saved_class: C::SAVED_CLASS,
        }
    }
}

struct Validate;

impl ConfigVisitor for Validate {
    type Output = Result<(), ModelConfigError>;

    fn visit<C: ArchitectureConfig>(self, config: &C) -> Self::Output {
        config.validate()
    }
}

struct ToJson;

impl ConfigVisitor for ToJson {
    type Output = serde_json::Value;

    fn visit<C: ArchitectureConfig>(self, config: &C) -> Self::Output {
        serde_json::to_value(config).expect("configs serialise")
    }
}

/// The objective of each [`PretrainingVisitor`] method.
struct ObjectiveOf;

impl PretrainingVisitor for ObjectiveOf {
    type Output = Objective;

    fn masked_lm<M>(self, _: &M::Config) -> Objective
    where
        M: MaskedLanguageModel,
        M::Config: RegisteredConfig,
    {
        Objective::MaskedLm
    }
    fn replaced_token_detection(self, _: &ElectraConfig) -> Objective {
        Objective::ReplacedTokenDetection
    }
    fn span_corruption(self, _: &T5Config) -> Objective {
        Objective::SpanCorruption
    }
    fn permutation_lm(self, _: &XlnetConfig) -> Objective {
        Objective::PermutationLm
    }
    fn causal_lm(self, _: &TransfoXlConfig) -> Objective {
        Objective::CausalLm
    }
}

impl ModelConfig {
    fn describe(&self) -> Description {
        self.visit(Describe)
    }

    /// The shape in one line, for logs (`BERT, 6 layers, width 1024`).
    pub fn shape(&self) -> String {
        self.describe().shape
    }

    /// The objective prottrans pretrains the architecture with.
    pub fn objective(&self) -> Objective {
        self.pretraining(ObjectiveOf)
    }

    /// The vocabulary prottrans pretrains the architecture with (and loads its checkpoints
    /// with, where [`Self::vocabulary`] says so).
    pub fn default_vocabulary(&self) -> Vocabulary {
        (self.describe().default_vocabulary)()
    }

    /// Width of the hidden states the encoder returns.
    pub fn hidden_size(&self) -> usize {
        self.describe().hidden_size
    }

    /// The longest framed sequence (special tokens included) the model can take, or `None`
    /// when positions are relative and any length works.
    pub fn max_tokens(&self) -> Option<usize> {
        self.describe().max_tokens
    }

    /// Bytes one attention layer holds per (query, key) pair of positions, with and without
    /// the fused kernel (see [`ArchitectureConfig::attention_bytes_per_pair`]).
    pub fn attention_bytes_per_pair(&self, fused: bool) -> u64 {
        self.describe().attention_bytes_per_pair[usize::from(fused)]
    }

    /// Size of the token vocabulary the embedding matrix has rows for.
    pub fn vocab_size(&self) -> usize {
        self.describe().vocab_size
    }

    /// Where the architecture's tokenizer comes from.
    pub fn vocabulary(&self) -> VocabularySource {
        self.describe().vocabulary
    }

    /// Whether the architecture's authors kept U, Z, O and B as tokens of their own.
    pub fn keeps_rare_residues(&self) -> bool {
        self.describe().keeps_rare_residues
    }

    /// Checks the values.
    pub fn validate(&self) -> Result<(), ModelConfigError> {
        self.visit(Validate)
    }

    /// Reads a Hugging Face `config.json`, choosing the architecture from `model_type`.
    pub fn from_hf_json(path: impl AsRef<Path>) -> Result<Self, ModelConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ModelConfigError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        // Every error names the file: a bad value as much as a parse error.
        Self::from_hf_json_str(&text).map_err(|e| match e {
            ModelConfigError::Parse { message, .. } => ModelConfigError::Parse {
                path: path.to_path_buf(),
                message,
            },
            ModelConfigError::Io { .. } => e,
            other => ModelConfigError::Parse {
                path: path.to_path_buf(),
                message: other.to_string(),
            },
        })
    }

    /// Parses the text of a Hugging Face `config.json`.
    pub fn from_hf_json_str(text: &str) -> Result<Self, ModelConfigError> {
        let parse = |e: serde_json::Error| ModelConfigError::Parse {
            path: "config.json".into(),
            message: e.to_string(),
        };
        let value: serde_json::Value = serde_json::from_str(text).map_err(parse)?;
        let model_type = value
            .get("model_type")
            .and_then(|v| v.as_str())
            .ok_or_else(|| ModelConfigError::Parse {
                path: "config.json".into(),
                message: "no `model_type` field".into(),
            })?;
        let architecture = Architecture::from_model_type(model_type)?;
        let config = Self::from_json_value(architecture, value).map_err(parse)?;
        config.validate()?;
        Ok(config)
    }

    /// The Hugging Face `config.json` text of this configuration, for the class prottrans
    /// saves the architecture as.
    pub fn to_hf_json(&self) -> String {
        self.to_hf_json_for(self.describe().saved_class)
    }

    /// The Hugging Face `config.json` text of this configuration for the model class
    /// `architectures` (an ELECTRA generator is `ElectraForMaskedLM`).
    pub fn to_hf_json_for(&self, architectures: &str) -> String {
        let mut value = self.visit(ToJson);
        if let Some(map) = value.as_object_mut() {
            map.insert("model_type".into(), self.architecture().model_type().into());
            map.insert("architectures".into(), serde_json::json!([architectures]));
            map.entry("tie_word_embeddings").or_insert(true.into());
        }
        serde_json::to_string_pretty(&value).expect("json values serialise")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hf_json_round_trips() {
        let config = ModelConfig::Bert(BertConfig {
            hidden_size: 64,
            num_attention_heads: 4,
            ..BertConfig::default()
        });
        let again = ModelConfig::from_hf_json_str(&config.to_hf_json()).unwrap();
        assert_eq!(again, config);
        let esm = ModelConfig::Esm(EsmConfig::default());
        let json = esm.to_hf_json();
        assert!(json.contains("EsmForMaskedLM"), "{json}");
        assert_eq!(ModelConfig::from_hf_json_str(&json).unwrap(), esm);
    }

    #[test]
    fn t5_round_trips_and_keeps_its_head_tying() {
        let config = ModelConfig::T5(T5Config {
            d_model: 32,
            tie_word_embeddings: false,
            feed_forward_proj: "gated-gelu".into(),
            ..T5Config::default()
        });
        let json = config.to_hf_json();
        assert!(json.contains("\"tie_word_embeddings\": false"), "{json}");
        assert_eq!(ModelConfig::from_hf_json_str(&json).unwrap(), config);
    }

    #[test]
    fn unimplemented_and_unknown_architectures_are_named() {
        let albert = ModelConfig::from_hf_json_str(r#"{"model_type": "albert", "hidden_size": 64, "num_attention_heads": 4, "intermediate_size": 128}"#).unwrap();
        assert_eq!(albert.architecture(), Architecture::Albert);
        let xlnet = ModelConfig::from_hf_json_str(
            r#"{"model_type": "xlnet", "d_model": 64, "n_head": 4, "d_head": 16, "mem_len": null}"#,
        )
        .unwrap();
        assert_eq!(xlnet.architecture(), Architecture::Xlnet);
        let err =
            ModelConfig::from_hf_json_str(r#"{"model_type": "transfo-xl", "cutoffs": [10, 20]}"#)
                .unwrap_err();
        assert!(err.to_string().contains("adaptive softmax"), "{err}");
        let err = ModelConfig::from_hf_json_str(r#"{"model_type": "gpt2"}"#).unwrap_err();
        assert!(
            err.to_string().contains("unknown architecture `gpt2`"),
            "{err}"
        );
        assert!(err.to_string().contains("esm"), "{err}");
        let err = ModelConfig::from_hf_json_str(r#"{"model_type": "bert", "hidden_size": 30}"#)
            .unwrap_err();
        assert!(err.to_string().contains("multiple"), "{err}");
    }

    /// Every name and signature is distinct, and each architecture's own saved class is read
    /// back as that architecture.
    #[test]
    fn the_registry_is_consistent() {
        for (i, a) in Architecture::ALL.iter().enumerate() {
            for b in &Architecture::ALL[i + 1..] {
                assert_ne!(a.name(), b.name());
                assert_ne!(a.model_type(), b.model_type());
            }
            assert_eq!(Architecture::from_model_type(a.name()).unwrap(), *a);
            assert_eq!(Architecture::from_model_type(a.model_type()).unwrap(), *a);
        }
    }
}
