//! [`T5Config`]: the fields of a Hugging Face T5 `config.json`, checks, parameter counts and
//! initialisation as transformers does it.

use burn::nn::{DropoutConfig, Embedding, EmbeddingConfig, LinearConfig};
use burn::tensor::Device;
use serde::{Deserialize, Serialize};

use super::{T5Block, T5EncoderModel, T5ForConditionalGeneration, T5Stack};
use crate::blocks::{
    Activation, FeedForwardConfig, MultiHeadAttention, MultiHeadAttentionConfig, RmsNorm,
    normal_init,
};
use crate::error::ModelConfigError;

/// T5 hyper-parameters with the field names of a Hugging Face `config.json`, which
/// deserialises as is. Defaults are the released ProtT5-XL shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct T5Config {
    /// Vocabulary size (ProtT5: 128, sentinels included).
    pub vocab_size: usize,
    /// Model width.
    pub d_model: usize,
    /// Width of each attention head (ProtT5-XL: 128, so `num_heads * d_kv` > `d_model`).
    pub d_kv: usize,
    /// Feed-forward inner width.
    pub d_ff: usize,
    /// Encoder layers.
    pub num_layers: usize,
    /// Decoder layers; `num_layers` when absent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub num_decoder_layers: Option<usize>,
    /// Attention heads.
    pub num_heads: usize,
    /// Relative-position buckets (half per direction in the encoder).
    pub relative_attention_num_buckets: usize,
    /// Distances from here on share the last bucket.
    pub relative_attention_max_distance: usize,
    /// Dropout on block outputs, attention probabilities and feed-forward activations.
    pub dropout_rate: f64,
    /// RMS norm epsilon.
    pub layer_norm_epsilon: f64,
    /// Factor on every initialisation standard deviation.
    pub initializer_factor: f64,
    /// `relu` (v1.0, ProtT5), `gated-gelu` (v1.1), or `[gated-]<activation>`.
    pub feed_forward_proj: String,
    /// LM head shared with the embedding and rescaled by `d_model^-0.5` (v1.0); false gives
    /// an own `lm_head` and no rescaling (v1.1).
    pub tie_word_embeddings: bool,
    /// Padding id.
    pub pad_token_id: usize,
    /// End-of-sequence id.
    pub eos_token_id: usize,
    /// First decoder input (T5: the padding id).
    pub decoder_start_token_id: usize,
}

impl Default for T5Config {
    fn default() -> Self {
        Self {
            vocab_size: 128,
            d_model: 1024,
            d_kv: 128,
            d_ff: 16384,
            num_layers: 24,
            num_decoder_layers: None,
            num_heads: 32,
            relative_attention_num_buckets: 32,
            relative_attention_max_distance: 128,
            dropout_rate: 0.1,
            layer_norm_epsilon: 1e-6,
            initializer_factor: 1.0,
            feed_forward_proj: "relu".into(),
            tie_word_embeddings: true,
            pad_token_id: 0,
            eos_token_id: 1,
            decoder_start_token_id: 0,
        }
    }
}

impl T5Config {
    fn invalid(message: String) -> ModelConfigError {
        ModelConfigError::Invalid {
            architecture: "t5",
            message,
        }
    }

    /// The feed-forward activation and whether it is gated, from `feed_forward_proj`.
    pub fn feed_forward(&self) -> Result<(Activation, bool), ModelConfigError> {
        let proj = self.feed_forward_proj.as_str();
        // transformers maps "gated-gelu" to the tanh approximation, for backward compatibility.
        if proj == "gated-gelu" {
            return Ok((Activation::GeluTanh, true));
        }
        let (name, gated) = match proj.strip_prefix("gated-") {
            Some(name) => (name, true),
            None => (proj, false),
        };
        let activation = serde_json::from_value(serde_json::Value::String(name.into()))
            .map_err(|_| {
                Self::invalid(format!(
                    "feed_forward_proj `{proj}` is not `relu`, `gated-gelu` or `[gated-]<activation>` with a known activation"
                ))
            })?;
        Ok((activation, gated))
    }

    /// Decoder layers.
    pub fn decoder_layers(&self) -> usize {
        self.num_decoder_layers.unwrap_or(self.num_layers)
    }

    /// Checks values that would fail later in obscure ways.
    pub fn validate(&self) -> Result<(), ModelConfigError> {
        crate::error::check_epsilon("t5", "layer_norm_epsilon", self.layer_norm_epsilon)?;
        for (name, value) in [
            ("vocab_size", self.vocab_size),
            ("d_model", self.d_model),
            ("d_kv", self.d_kv),
            ("d_ff", self.d_ff),
            ("num_layers", self.num_layers),
            ("num_heads", self.num_heads),
            (
                "relative_attention_num_buckets",
                self.relative_attention_num_buckets,
            ),
            (
                "relative_attention_max_distance",
                self.relative_attention_max_distance,
            ),
        ] {
            if value == 0 {
                return Err(Self::invalid(format!("{name} must be at least 1")));
            }
        }
        if self.relative_attention_num_buckets < 4 {
            return Err(Self::invalid(
                "relative_attention_num_buckets must be at least 4".into(),
            ));
        }
        if !(0.0..1.0).contains(&self.dropout_rate) {
            return Err(Self::invalid(format!(
                "dropout_rate must be in [0, 1), got {}",
                self.dropout_rate
            )));
        }
        for (name, id) in [
            ("pad_token_id", self.pad_token_id),
            ("eos_token_id", self.eos_token_id),
            ("decoder_start_token_id", self.decoder_start_token_id),
        ] {
            if id >= self.vocab_size {
                return Err(Self::invalid(format!(
                    "{name} ({id}) is outside the vocabulary ({})",
                    self.vocab_size
                )));
            }
        }
        self.feed_forward()?;
        Ok(())
    }

    /// Parameters of the encoder alone (shared embedding included).
    pub fn num_encoder_parameters(&self) -> usize {
        let d = self.d_model;
        let ff = if self.feed_forward().is_ok_and(|(_, gated)| gated) {
            3
        } else {
            2
        };
        let attention = 4 * d * self.num_heads * self.d_kv;
        let layer = attention + ff * d * self.d_ff + 2 * d;
        self.vocab_size * d
            + self.num_layers * layer
            + self.relative_attention_num_buckets * self.num_heads
            + d
    }

    /// Parameters of [`T5ForConditionalGeneration`] (tied head counted once).
    pub fn num_parameters(&self) -> usize {
        let d = self.d_model;
        let ff = if self.feed_forward().is_ok_and(|(_, gated)| gated) {
            3
        } else {
            2
        };
        let attention = 4 * d * self.num_heads * self.d_kv;
        let layer = 2 * attention + ff * d * self.d_ff + 3 * d;
        let decoder = self.decoder_layers() * layer
            + self.relative_attention_num_buckets * self.num_heads
            + d;
        let head = if self.tie_word_embeddings {
            0
        } else {
            self.vocab_size * d
        };
        self.num_encoder_parameters() + decoder + head
    }

    /// Initialises the encoder alone (`T5EncoderModel`) on `device`.
    pub fn init_model(&self, device: &Device) -> T5EncoderModel {
        T5EncoderModel {
            shared: self.init_shared(device),
            encoder: self.init_stack(false, device),
        }
    }

    /// Initialises the encoder-decoder with its LM head on `device`, as transformers does
    /// (every standard deviation scaled by `initializer_factor`).
    pub fn init(&self, device: &Device) -> T5ForConditionalGeneration {
        let factor = self.initializer_factor;
        T5ForConditionalGeneration {
            shared: self.init_shared(device),
            encoder: self.init_stack(false, device),
            decoder: self.init_stack(true, device),
            lm_head: (!self.tie_word_embeddings).then(|| {
                LinearConfig::new(self.d_model, self.vocab_size)
                    .with_bias(false)
                    .with_initializer(normal_init(factor))
                    .init(device)
            }),
            d_model: self.d_model,
            decoder_start_token_id: self.decoder_start_token_id,
            eos_token_id: self.eos_token_id,
            pad_token_id: self.pad_token_id,
        }
    }

    fn init_shared(&self, device: &Device) -> Embedding {
        EmbeddingConfig::new(self.vocab_size, self.d_model)
            .with_initializer(normal_init(self.initializer_factor))
            .init(device)
    }

    fn init_stack(&self, is_decoder: bool, device: &Device) -> T5Stack {
        let layers = if is_decoder {
            self.decoder_layers()
        } else {
            self.num_layers
        };
        T5Stack {
            block: (0..layers)
                .map(|_| self.init_block(is_decoder, device))
                .collect(),
            relative_attention_bias: EmbeddingConfig::new(
                self.relative_attention_num_buckets,
                self.num_heads,
            )
            .with_initializer(normal_init(
                self.initializer_factor * (self.d_model as f64).powf(-0.5),
            ))
            .init(device),
            final_layer_norm: RmsNorm::new(self.d_model, self.layer_norm_epsilon, device),
            dropout: DropoutConfig::new(self.dropout_rate).init(),
            is_decoder,
            num_buckets: self.relative_attention_num_buckets,
            max_distance: self.relative_attention_max_distance,
        }
    }

    fn init_attention(&self, device: &Device) -> MultiHeadAttention {
        let (d, factor) = (self.d_model as f64, self.initializer_factor);
        let inner = (self.num_heads * self.d_kv) as f64;
        MultiHeadAttentionConfig::new(self.d_model, self.num_heads)
            .with_head_dim(Some(self.d_kv))
            .with_bias(false)
            // T5 does not scale scores; the query initialisation absorbs 1/sqrt(d_kv).
            .with_scale(Some(1.0))
            .with_dropout(self.dropout_rate)
            .with_initializer_range(factor * d.powf(-0.5))
            .with_query_initializer_range(Some(factor * (d * self.d_kv as f64).powf(-0.5)))
            .with_output_initializer_range(Some(factor * inner.powf(-0.5)))
            .init(device)
    }

    fn init_block(&self, is_decoder: bool, device: &Device) -> T5Block {
        // `validate` has checked the projection name; fall back to ReLU rather than panic.
        let (activation, gated) = self.feed_forward().unwrap_or((Activation::Relu, false));
        let norm = || RmsNorm::new(self.d_model, self.layer_norm_epsilon, device);
        let factor = self.initializer_factor;
        T5Block {
            self_attention: self.init_attention(device),
            self_attention_norm: norm(),
            cross_attention: is_decoder.then(|| self.init_attention(device)),
            cross_attention_norm: is_decoder.then(norm),
            feed_forward: FeedForwardConfig::new(self.d_model, self.d_ff)
                .with_activation(activation)
                .with_gated(gated)
                .with_bias(false)
                .with_inner_dropout(self.dropout_rate)
                .with_initializer_range(factor * (self.d_model as f64).powf(-0.5))
                .with_output_initializer_range(Some(factor * (self.d_ff as f64).powf(-0.5)))
                .init(device),
            feed_forward_norm: norm(),
            dropout: DropoutConfig::new(self.dropout_rate).init(),
        }
    }
}
