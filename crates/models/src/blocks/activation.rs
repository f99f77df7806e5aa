use burn::tensor::Tensor;
use burn::tensor::activation;
use serde::{Deserialize, Serialize};

/// Activation functions, named as in Hugging Face `hidden_act` / `feed_forward_proj`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
pub enum Activation {
    /// Exact GELU, `x * Phi(x)` with the error function (BERT's `gelu`).
    #[default]
    #[serde(rename = "gelu")]
    Gelu,
    /// The tanh approximation of GELU.
    #[serde(rename = "gelu_new", alias = "gelu_pytorch_tanh", alias = "gelu_fast")]
    GeluTanh,
    /// ReLU (T5 v1.0, ProtT5).
    #[serde(rename = "relu")]
    Relu,
    /// SiLU / swish.
    #[serde(rename = "silu", alias = "swish")]
    Silu,
}

impl Activation {
    /// The fused-kernel form of this activation, where the kernels have one.
    pub fn epilogue(&self) -> Option<prottrans_kernels::Epilogue> {
        match self {
            Activation::Gelu => Some(prottrans_kernels::Epilogue::Gelu),
            Activation::Relu => Some(prottrans_kernels::Epilogue::Relu),
            Activation::GeluTanh | Activation::Silu => None,
        }
    }

    /// Applies the activation element-wise.
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        match self {
            Activation::Gelu => activation::gelu(x),
            Activation::GeluTanh => activation::gelu_approximate(x),
            Activation::Relu => activation::relu(x),
            Activation::Silu => activation::silu(x),
        }
    }
}
