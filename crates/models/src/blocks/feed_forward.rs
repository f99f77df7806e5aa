//! Position-wise feed-forward: `output(act(intermediate(x)) [* gate(x)])`.

use burn::config::Config;
use burn::module::Module;
use burn::nn::{Dropout, DropoutConfig, LayerNorm, LayerNormConfig, Linear, LinearConfig};
use burn::tensor::{Device, Tensor};

use prottrans_kernels::Epilogue;

use super::{Activation, linear_rows, normal_init};

/// Configuration of [`FeedForward`].
#[derive(Config, Debug)]
pub struct FeedForwardConfig {
    /// Model width.
    pub d_model: usize,
    /// Inner width.
    pub d_ff: usize,
    /// Activation after the first projection.
    #[config(default = "Activation::Gelu")]
    pub activation: Activation,
    /// Whether the projections have biases.
    #[config(default = true)]
    pub bias: bool,
    /// Gated variant (T5 v1.1 `gated-gelu`): multiply by a second projection.
    #[config(default = false)]
    pub gated: bool,
    /// Dropout between the two projections (T5; BERT has none there).
    #[config(default = 0.0)]
    pub inner_dropout: f64,
    /// Standard deviation of the normal initialisation.
    #[config(default = 0.02)]
    pub initializer_range: f64,
    /// Standard deviation for the output projection when it differs (T5: `d_ff^-0.5`).
    #[config(default = "None")]
    pub output_initializer_range: Option<f64>,
}

/// The feed-forward block. Residual connection and norm belong to the architecture's layer.
#[derive(Module, Debug)]
pub struct FeedForward {
    /// `[d_model, d_ff]`.
    pub intermediate: Linear,
    /// Optional gate `[d_model, d_ff]`.
    pub gate: Option<Linear>,
    /// `[d_ff, d_model]`.
    pub output: Linear,
    dropout: Dropout,
    #[module(skip)]
    activation: Activation,
}

impl FeedForwardConfig {
    /// Initialises the module on `device`.
    pub fn init(&self, device: &burn::tensor::Device) -> FeedForward {
        let linear = |d_in, d_out, std: Option<f64>| {
            LinearConfig::new(d_in, d_out)
                .with_bias(self.bias)
                .with_initializer(normal_init(std.unwrap_or(self.initializer_range)))
                .init(device)
        };
        FeedForward {
            intermediate: linear(self.d_model, self.d_ff, None),
            gate: self.gated.then(|| linear(self.d_model, self.d_ff, None)),
            output: linear(self.d_ff, self.d_model, self.output_initializer_range),
            dropout: DropoutConfig::new(self.inner_dropout).init(),
            activation: self.activation,
        }
    }
}

impl FeedForward {
    /// # Shapes
    /// - x: `[batch, seq, d_model]` -> `[batch, seq, d_model]`
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        let h = match self.activation.epilogue() {
            Some(epilogue) => linear_rows(&self.intermediate, x.clone(), epilogue),
            None => {
                self.activation
                    .forward(linear_rows(&self.intermediate, x.clone(), Epilogue::None))
            }
        };
        let h = match &self.gate {
            Some(gate) => h * linear_rows(gate, x, Epilogue::None),
            None => h,
        };
        linear_rows(&self.output, self.dropout.forward(h), Epilogue::None)
    }
}

/// The feed-forward with its residual and LayerNorm, before (`pre_lnorm`) or after, as
/// Transformer-XL (checkpoint `pos_ff`, ReLU) and XLNet (checkpoint `ff`, its own activation)
/// have it.
#[derive(Module, Debug)]
pub struct ResidualFeedForward {
    /// The two projections.
    pub feed_forward: FeedForward,
    /// Post- (or pre-) LayerNorm.
    pub layer_norm: LayerNorm,
    dropout: Dropout,
    #[module(skip)]
    pre_lnorm: bool,
}

impl ResidualFeedForward {
    /// A block of `d_model` with an inner width of `d_inner`.
    pub(crate) fn new(
        d_model: usize,
        d_inner: usize,
        activation: Activation,
        dropout: f64,
        (init_std, layer_norm_eps): (f64, f64),
        pre_lnorm: bool,
        device: &Device,
    ) -> Self {
        Self {
            feed_forward: FeedForwardConfig::new(d_model, d_inner)
                .with_activation(activation)
                .with_inner_dropout(dropout)
                .with_initializer_range(init_std)
                .init(device),
            layer_norm: LayerNormConfig::new(d_model)
                .with_epsilon(layer_norm_eps)
                .init(device),
            dropout: DropoutConfig::new(dropout).init(),
            pre_lnorm,
        }
    }

    /// # Shapes
    /// - x: `[batch, seq, d]` -> `[batch, seq, d]`
    pub fn forward(&self, x: Tensor<3>) -> Tensor<3> {
        if self.pre_lnorm {
            let out = self
                .feed_forward
                .forward(self.layer_norm.forward(x.clone()));
            self.dropout.forward(out) + x
        } else {
            let out = self.feed_forward.forward(x.clone());
            self.layer_norm.forward(self.dropout.forward(out) + x)
        }
    }
}
