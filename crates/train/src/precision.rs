//! Mixed-precision training: f32 master weights and optimiser state, forward and backward passes
//! in f16 or bf16.
//!
//! burn 0.22 has no automatic mixed precision, so each step casts the f32 model to the compute
//! type inside the autodiff graph (gradients return through the casts to the f32 weights, in f32)
//! and the logits are cast back to f32 for the loss. f16's smallest normal number is 6.1e-5, so
//! for f16 the loss is multiplied by a fixed scale before the backward pass, keeping small
//! gradients from flushing to zero, and the gradients are divided by it again before the
//! optimiser sees them. bf16 has f32's range and needs no scaling.

use burn::module::{Module, ModuleVisitor, Param};
use burn::optim::GradientsParams;
use burn::tensor::{FloatDType, Tensor};
use prottrans_backend::Precision;
use prottrans_models::cast_floats;
use serde::{Deserialize, Serialize};

/// The loss scale f16 training uses unless the recipe gives one: large enough to lift gradients
/// of ~1e-8 into f16's range, small enough that gradients up to ~60 do not overflow it.
pub const DEFAULT_F16_LOSS_SCALE: f32 = 1024.0;

/// How a training step computes; see the module documentation.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MixedPrecision {
    compute: Precision,
    loss_scale: f32,
}

impl Default for MixedPrecision {
    fn default() -> Self {
        Self::new(Precision::F32, None)
    }
}

impl MixedPrecision {
    /// Computes in `compute`; `loss_scale` defaults to [`DEFAULT_F16_LOSS_SCALE`] for f16 and 1
    /// otherwise.
    pub fn new(compute: Precision, loss_scale: Option<f32>) -> Self {
        let default = if compute == Precision::F16 {
            DEFAULT_F16_LOSS_SCALE
        } else {
            1.0
        };
        Self {
            compute,
            loss_scale: loss_scale.unwrap_or(default),
        }
    }

    /// The precision of the forward and backward passes.
    pub fn compute(&self) -> Precision {
        self.compute
    }

    /// The factor on the loss before the backward pass.
    pub fn loss_scale(&self) -> f32 {
        self.loss_scale
    }

    /// `model` in the compute precision (the same model when that is f32).
    pub fn autocast<M: Module>(&self, model: &M) -> M {
        match self.compute {
            Precision::F32 => model.clone(),
            other => cast_floats(model.clone(), other.dtype()),
        }
    }

    /// `logits` in f32, for the loss and the metrics.
    pub fn to_f32<const D: usize>(&self, logits: Tensor<D>) -> Tensor<D> {
        match self.compute {
            Precision::F32 => logits,
            _ => logits.cast(FloatDType::F32),
        }
    }

    /// Gradients of `loss * factor` for the parameters of `model`, with the loss scale applied
    /// before the backward pass and removed after it.
    pub fn gradients<M: Module>(&self, loss: Tensor<1>, factor: f64, model: &M) -> GradientsParams {
        let scale = f64::from(self.loss_scale);
        let mut grads = GradientsParams::from_grads((loss * (factor * scale)).backward(), model);
        if scale != 1.0 {
            model.visit(&mut Unscale {
                grads: &mut grads,
                factor: 1.0 / scale,
            });
        }
        grads
    }
}

struct Unscale<'a> {
    grads: &'a mut GradientsParams,
    factor: f64,
}

impl ModuleVisitor for Unscale<'_> {
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        if let Some(grad) = self.grads.remove::<D>(param.id) {
            self.grads.register::<D>(param.id, grad * self.factor);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::nn::{Linear, LinearConfig};
    use burn::tensor::{DType, Device};

    fn device() -> Device {
        prottrans_backend::DeviceSpec::Cpu
            .device()
            .unwrap()
            .autodiff()
    }

    /// Gradients of a half-precision forward reach the f32 weights, in f32, and equal the f32
    /// gradients to the precision's accuracy; the loss scale is removed exactly.
    #[test]
    fn half_precision_gradients_reach_the_f32_weights() {
        let device = device();
        device.seed(3);
        let layer: Linear = LinearConfig::new(8, 4).init(&device);
        let x = Tensor::<2>::random(
            [5, 8],
            burn::tensor::Distribution::Normal(0.0, 1.0),
            &device,
        );
        let grad_of = |precision: MixedPrecision| {
            let model = precision.autocast(&layer);
            let y = precision.to_f32(model.forward(x.clone().cast(precision.compute().dtype())));
            assert_eq!(y.dtype(), DType::F32);
            let grads = precision.gradients((y.clone() * y).mean().reshape([1]), 0.5, &layer);
            let weight = grads
                .get::<2>(layer.weight.id)
                .expect("a gradient for the weight");
            assert_eq!(weight.dtype(), DType::F32, "{precision:?}");
            weight.into_data().try_to_vec::<f32>().unwrap()
        };
        let reference = grad_of(MixedPrecision::default());
        for (precision, tolerance) in [
            (MixedPrecision::new(Precision::F16, None), 5e-3),
            (MixedPrecision::new(Precision::Bf16, None), 5e-2),
            (MixedPrecision::new(Precision::F16, Some(1.0)), 5e-3),
        ] {
            let got = grad_of(precision);
            let worst = got
                .iter()
                .zip(&reference)
                .map(|(a, b)| (a - b).abs() / b.abs().max(0.05))
                .fold(0.0f32, f32::max);
            assert!(
                worst < tolerance,
                "{precision:?}: relative deviation {worst}"
            );
        }
    }
}
