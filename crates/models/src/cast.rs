//! Changing the float type of a whole module.

use burn::module::{Module, ModuleMapper, Param};
use burn::tensor::{DType, FloatDType, Tensor};

/// Casts every float parameter of `module` to `dtype`; parameters already of that type are kept
/// as they are.
///
/// On an autodiff device the cast is part of the graph: gradients of a model cast to f16 flow
/// back, in f32, to the parameters it was cast from. Mixed-precision training relies on this.
pub fn cast_floats<M: Module>(module: M, dtype: FloatDType) -> M {
    struct Cast(FloatDType);
    impl ModuleMapper for Cast {
        fn map_float<const D: usize>(&mut self, param: Param<Tensor<D>>) -> Param<Tensor<D>> {
            let dtype = self.0;
            param.map(|tensor| {
                if tensor.dtype() == DType::from(dtype) {
                    tensor
                } else {
                    tensor.cast(dtype)
                }
            })
        }
    }
    module.map(&mut Cast(dtype))
}
