//! Root-mean-square normalisation as T5 has it: scale only (no mean subtraction, no bias), with
//! the mean square taken in f32 whatever the activations' precision.

use burn::module::{Module, Param};
use burn::tensor::{DType, Device, FloatDType, Tensor};

/// `weight * x / sqrt(mean(x^2) + epsilon)` over the last dimension.
#[derive(Module, Debug)]
pub struct RmsNorm {
    /// Per-feature scale `[d]` (checkpoint `layer_norm.weight`).
    pub weight: Param<Tensor<1>>,
    epsilon: f64,
}

impl RmsNorm {
    /// A norm of width `d` with unit scale.
    pub fn new(d: usize, epsilon: f64, device: &Device) -> Self {
        Self {
            weight: Param::from_tensor(Tensor::ones([d], device)),
            epsilon,
        }
    }

    /// # Shapes
    /// - x: `[..., d]` -> `[..., d]`
    pub fn forward<const D: usize>(&self, x: Tensor<D>) -> Tensor<D> {
        let dtype = x.dtype();
        // The square of f16 activations overflows long before they do: accumulate in f32.
        let wide = if dtype == DType::F32 {
            x
        } else {
            x.cast(FloatDType::F32)
        };
        let mean_square = wide.clone().square().mean_dim(D - 1);
        let normalised = wide / (mean_square + self.epsilon).sqrt();
        let normalised = match dtype {
            DType::F16 => normalised.cast(FloatDType::F16),
            DType::BF16 => normalised.cast(FloatDType::BF16),
            _ => normalised,
        };
        let mut shape = [1; D];
        shape[D - 1] = self.weight.dims()[0];
        normalised * self.weight.val().reshape(shape)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{TensorData, Tolerance};

    #[test]
    fn divides_by_the_root_mean_square_without_centring() {
        let device = Device::flex();
        let mut norm = RmsNorm::new(2, 0.0, &device);
        norm.weight = Param::from_tensor(Tensor::from_floats([1.0, 2.0], &device));
        let x = Tensor::<2>::from_floats([[3.0, 4.0], [1.0, 1.0]], &device);
        // rms of (3, 4) is sqrt(12.5); of (1, 1) is 1.
        let r = 12.5f32.sqrt();
        let want = TensorData::from([[3.0 / r, 8.0 / r], [1.0, 2.0]]);
        norm.forward(x)
            .into_data()
            .assert_approx_eq::<f32>(&want, Tolerance::default());
    }
}
