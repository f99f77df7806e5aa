//! Model configurations: one variant per architecture, read from prottrans TOML
//! (`[model] architecture = "bert"` plus the Hugging Face field names) or from a Hugging Face
//! `config.json` (dispatching on `model_type`).

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::albert::AlbertConfig;
use crate::bert::BertConfig;
use crate::electra::ElectraConfig;
use crate::error::ModelConfigError;
use crate::t5::T5Config;
use crate::transfo_xl::TransfoXlConfig;
use crate::xlnet::XlnetConfig;

/// The six ProtTrans architectures.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Architecture {
    /// ProtBert.
    Bert,
    /// ProtAlbert.
    Albert,
    /// ProtElectra.
    Electra,
    /// ProtT5.
    T5,
    /// ProtXLNet.
    Xlnet,
    /// ProtTXL.
    TransfoXl,
}

impl Architecture {
    /// Every architecture.
    pub const ALL: [Architecture; 6] = [
        Self::Bert,
        Self::Albert,
        Self::Electra,
        Self::T5,
        Self::Xlnet,
        Self::TransfoXl,
    ];

    /// The Hugging Face `model_type`.
    pub fn model_type(self) -> &'static str {
        match self {
            Self::Bert => "bert",
            Self::Albert => "albert",
            Self::Electra => "electra",
            Self::T5 => "t5",
            Self::Xlnet => "xlnet",
            Self::TransfoXl => "transfo-xl",
        }
    }

    /// Parses a Hugging Face `model_type`.
    pub fn from_model_type(model_type: &str) -> Result<Self, ModelConfigError> {
        Self::ALL
            .into_iter()
            .find(|a| a.model_type() == model_type || model_type == a.name())
            .ok_or_else(|| ModelConfigError::Unknown(model_type.to_string()))
    }

    /// The name used in prottrans TOML.
    pub fn name(self) -> &'static str {
        match self {
            Self::TransfoXl => "transfo_xl",
            other => other.model_type(),
        }
    }
}

impl std::fmt::Display for Architecture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// A model configuration of any implemented architecture.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "architecture", rename_all = "snake_case")]
pub enum ModelConfig {
    /// BERT (ProtBert).
    Bert(BertConfig),
    /// ALBERT (ProtAlbert).
    Albert(AlbertConfig),
    /// ELECTRA (ProtElectra): the discriminator's shape, the generator's in `generator`.
    Electra(ElectraConfig),
    /// T5 (ProtT5).
    T5(T5Config),
    /// XLNet (ProtXLNet).
    Xlnet(XlnetConfig),
    /// Transformer-XL (ProtTXL).
    TransfoXl(TransfoXlConfig),
}

impl ModelConfig {
    /// The architecture.
    pub fn architecture(&self) -> Architecture {
        match self {
            Self::Bert(_) => Architecture::Bert,
            Self::Albert(_) => Architecture::Albert,
            Self::Electra(_) => Architecture::Electra,
            Self::T5(_) => Architecture::T5,
            Self::Xlnet(_) => Architecture::Xlnet,
            Self::TransfoXl(_) => Architecture::TransfoXl,
        }
    }

    /// Width of the hidden states the encoder returns.
    pub fn hidden_size(&self) -> usize {
        match self {
            Self::Bert(c) => c.hidden_size,
            Self::Albert(c) => c.hidden_size,
            Self::Electra(c) => c.hidden_size,
            Self::T5(c) => c.d_model,
            Self::Xlnet(c) => c.d_model,
            Self::TransfoXl(c) => c.d_model,
        }
    }

    /// The longest framed sequence (special tokens included) the model can take, or `None`
    /// when positions are relative and any length works.
    pub fn max_tokens(&self) -> Option<usize> {
        match self {
            Self::Bert(c) => Some(c.max_position_embeddings),
            Self::Albert(c) => Some(c.max_position_embeddings),
            Self::Electra(c) => Some(c.max_position_embeddings),
            Self::T5(_) | Self::Xlnet(_) | Self::TransfoXl(_) => None,
        }
    }

    /// Size of the token vocabulary the embedding matrix has rows for.
    pub fn vocab_size(&self) -> usize {
        match self {
            Self::Bert(c) => c.vocab_size,
            Self::Albert(c) => c.vocab_size,
            Self::Electra(c) => c.vocab_size,
            Self::T5(c) => c.vocab_size,
            Self::Xlnet(c) => c.vocab_size,
            Self::TransfoXl(c) => c.vocab_size,
        }
    }

    /// Checks the values.
    pub fn validate(&self) -> Result<(), ModelConfigError> {
        match self {
            Self::Bert(c) => c.validate(),
            Self::Albert(c) => c.validate(),
            Self::Electra(c) => c.validate(),
            Self::T5(c) => c.validate(),
            Self::Xlnet(c) => c.validate(),
            Self::TransfoXl(c) => c.validate(),
        }
    }

    /// Reads a Hugging Face `config.json`, choosing the architecture from `model_type`.
    pub fn from_hf_json(path: impl AsRef<Path>) -> Result<Self, ModelConfigError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| ModelConfigError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_hf_json_str(&text).map_err(|e| match e {
            ModelConfigError::Parse { message, .. } => ModelConfigError::Parse {
                path: path.to_path_buf(),
                message,
            },
            other => other,
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
        let config = match Architecture::from_model_type(model_type)? {
            Architecture::Bert => Self::Bert(serde_json::from_value(value).map_err(parse)?),
            Architecture::Albert => Self::Albert(serde_json::from_value(value).map_err(parse)?),
            Architecture::Electra => Self::Electra(serde_json::from_value(value).map_err(parse)?),
            Architecture::T5 => Self::T5(serde_json::from_value(value).map_err(parse)?),
            Architecture::Xlnet => Self::Xlnet(serde_json::from_value(value).map_err(parse)?),
            Architecture::TransfoXl => {
                Self::TransfoXl(serde_json::from_value(value).map_err(parse)?)
            }
        };
        config.validate()?;
        Ok(config)
    }

    /// The Hugging Face `config.json` text of this configuration.
    pub fn to_hf_json(&self) -> String {
        let class = match self {
            Self::Bert(_) => "BertForMaskedLM",
            Self::Albert(_) => "AlbertForMaskedLM",
            Self::Electra(_) => "ElectraForPreTraining",
            Self::T5(_) => "T5ForConditionalGeneration",
            Self::Xlnet(_) => "XLNetLMHeadModel",
            Self::TransfoXl(_) => "TransfoXLLMHeadModel",
        };
        self.to_hf_json_for(class)
    }

    /// The Hugging Face `config.json` text of this configuration for the model class
    /// `architectures` (an ELECTRA generator is `ElectraForMaskedLM`).
    pub fn to_hf_json_for(&self, architectures: &str) -> String {
        let mut value = match self {
            Self::Bert(c) => serde_json::to_value(c),
            Self::Albert(c) => serde_json::to_value(c),
            Self::Electra(c) => serde_json::to_value(c),
            Self::T5(c) => serde_json::to_value(c),
            Self::Xlnet(c) => serde_json::to_value(c),
            Self::TransfoXl(c) => serde_json::to_value(c),
        }
        .expect("configs serialise");
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
        let err = ModelConfig::from_hf_json_str(r#"{"model_type": "bert", "hidden_size": 30}"#)
            .unwrap_err();
        assert!(err.to_string().contains("multiple"), "{err}");
    }
}
