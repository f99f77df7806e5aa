//! Building blocks shared by the architectures, written once.

mod activation;
mod attention;
mod feed_forward;
mod mlm_head;
mod relative_attention;
mod rms_norm;
mod rotary;

pub use activation::Activation;
pub use attention::{
    MultiHeadAttention, MultiHeadAttentionConfig, RelativePositionBias, linear_rows, padding_mask,
};
pub use feed_forward::{FeedForward, FeedForwardConfig, ResidualFeedForward};
pub use mlm_head::{MaskedLmHead, MaskedLmHeadConfig, logits_at_every_position, select_positions};
pub use relative_attention::{
    RelativeBiases, SegmentMemory, SegmentTerm, causal_mask, read_in_segments, relative_attention,
    relative_distances, relative_shift, sinusoid_encoding,
};
pub use rms_norm::RmsNorm;
pub use rotary::RotaryEmbedding;

use burn::nn::Initializer;

/// The initialiser used by BERT-family models: `N(0, std)`.
pub fn normal_init(std: f64) -> Initializer {
    Initializer::Normal { mean: 0.0, std }
}
