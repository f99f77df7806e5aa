//! Building blocks shared by the architectures, written once.

mod activation;
mod attention;
mod feed_forward;
mod rms_norm;

pub use activation::Activation;
pub use attention::{MultiHeadAttention, MultiHeadAttentionConfig, padding_mask};
pub use feed_forward::{FeedForward, FeedForwardConfig};
pub use rms_norm::RmsNorm;

use burn::nn::Initializer;

/// The initialiser used by BERT-family models: `N(0, std)`.
pub fn normal_init(std: f64) -> Initializer {
    Initializer::Normal { mean: 0.0, std }
}
