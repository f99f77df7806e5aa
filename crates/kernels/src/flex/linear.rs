//! `x @ weight + bias`, then an activation, on flex, `f32`: one threaded matrix product, then
//! one threaded vectorised pass that adds the bias and applies the activation while the rows
//! are in cache (burn-flex adds a broadcast bias and applies unary ops on one thread each).

use burn::tensor::Tensor;
use burn_flex::FlexTensor;
use rayon::prelude::*;

use super::{MatrixView, Operand, amx, f32_primitive, product, tensor_from_vec};
use crate::{Epilogue, MatmulPrecision, math, matmul_precision};

/// Elements per task of the activation pass.
const CHUNK: usize = 1 << 14;
/// Products over all threads.
const THREADED: gemm::Parallelism = gemm::Parallelism::Rayon(0);

/// `None` when an input is not a flex `f32` tensor (the caller then takes burn's ops).
///
/// # Shapes
/// - x: `[rows, d_in]`, weight: `[d_in, d_out]`, bias: `[d_out]` -> `[rows, d_out]`
pub(crate) fn linear(
    x: &Tensor<2>,
    weight: &Tensor<2>,
    bias: Option<&Tensor<1>>,
    epilogue: Epilogue,
) -> Option<Tensor<2>> {
    let (x, w) = (f32_primitive(x)?, f32_primitive(weight)?);
    let bias = match bias {
        Some(bias) => Some(f32_primitive(bias)?),
        None => None,
    };
    let [rows, d_out] = shape_of(&x, &w, bias.as_ref())?;
    let bias = bias.map(|b| vector(&b));
    let (output, _) = forward(&x, &w, bias.as_deref(), epilogue, true, false)?;
    Some(tensor_from_vec(output, [rows, d_out]))
}

/// `[rows, d_out]` when `x: [rows, d_in]`, `weight: [d_in, d_out]` and `bias: [d_out]` fit
/// together and are not empty.
pub(super) fn shape_of(
    x: &FlexTensor,
    weight: &FlexTensor,
    bias: Option<&FlexTensor>,
) -> Option<[usize; 2]> {
    let [rows, d_in]: [usize; 2] = x.layout().shape().as_slice().try_into().ok()?;
    let [w_in, d_out]: [usize; 2] = weight.layout().shape().as_slice().try_into().ok()?;
    let bias_fits = bias.is_none_or(|b| b.layout().shape().as_slice() == [d_out]);
    (w_in == d_in && bias_fits && rows > 0 && d_out > 0).then_some([rows, d_out])
}

/// The values of a 1-D flex `f32` tensor.
pub(super) fn vector(tensor: &FlexTensor) -> Vec<f32> {
    let contiguous = tensor.to_contiguous();
    let start = contiguous.layout().start_offset();
    let count = contiguous.layout().num_elements();
    contiguous.storage::<f32>()[start..start + count].to_vec()
}

/// `epilogue(x @ weight + bias)` as `[rows, d_out]` row-major values and, with
/// `derivative`, the activation's derivative at each output (`None` for [`Epilogue::None`]);
/// `None` when a view has a layout the kernel does not read. `allow_bf16`: whether
/// [`MatmulPrecision::Bf16`] may take the AMX path.
pub(super) fn forward(
    x: &FlexTensor,
    weight: &FlexTensor,
    bias: Option<&[f32]>,
    epilogue: Epilogue,
    allow_bf16: bool,
    derivative: bool,
) -> Option<(Vec<f32>, Option<Vec<f32>>)> {
    let [rows, d_out] = shape_of(x, weight, None)?;
    let d_in = x.layout().shape().as_slice()[1];
    let (x_view, _) = MatrixView::of(x)?;
    let (w_view, _) = MatrixView::of(weight)?;

    // Zeroed pages are mapped lazily: the product is their first writer.
    let mut output = Vec::new();
    if allow_bf16 && d_in > 0 && matmul_precision() == MatmulPrecision::Bf16 && amx::available() {
        // SAFETY: AMX is available; the views address `rows x d_in` and `d_in x d_out`.
        unsafe { amx::matmul(&x_view, &w_view, rows, d_in, d_out, &mut output) };
    } else {
        output = vec![0.0f32; rows * d_out];
        // SAFETY: the views address elements inside each tensor's shape; `output` is rows x d_out.
        unsafe {
            product(
                [rows, d_out, d_in],
                output.as_mut_ptr(),
                d_out,
                false,
                x_view.at(0, 0, 0),
                w_view.at(0, 0, 0),
                1.0,
                THREADED,
            );
        }
    }
    let mut slopes = (derivative && epilogue != Epilogue::None).then(|| vec![0.0f32; rows * d_out]);
    if bias.is_some() || epilogue != Epilogue::None {
        let rows_per_chunk = (CHUNK / d_out).max(1);
        let epilogue_pass = |chunk: &mut [f32], slope: Option<&mut [f32]>| {
            if let Some(bias) = bias {
                for row in chunk.chunks_exact_mut(d_out) {
                    math::add_in_place(row, bias);
                }
            }
            match (epilogue, slope) {
                (Epilogue::None, _) => {}
                (Epilogue::Gelu, None) => math::gelu_in_place(chunk),
                (Epilogue::Relu, None) => math::relu_in_place(chunk),
                (Epilogue::Gelu, Some(slope)) => math::gelu_with_slope_in_place(chunk, slope),
                (Epilogue::Relu, Some(slope)) => math::relu_with_slope_in_place(chunk, slope),
            }
        };
        let chunks = output.par_chunks_mut(rows_per_chunk * d_out);
        match slopes.as_mut() {
            Some(slopes) => chunks
                .zip(slopes.par_chunks_mut(rows_per_chunk * d_out))
                .for_each(|(chunk, slope)| epilogue_pass(chunk, Some(slope))),
            None => chunks.for_each(|chunk| epilogue_pass(chunk, None)),
        }
    }
    Some((output, slopes))
}

/// The gradients of [`forward`]'s inputs, each when asked for.
pub(super) struct LinearGradients {
    /// `[rows, d_in]`, row-major.
    pub x: Option<Vec<f32>>,
    /// `[d_in, d_out]`, row-major.
    pub weight: Option<Vec<f32>>,
    /// `[d_out]`.
    pub bias: Option<Vec<f32>>,
}

/// The gradients of `x`, `weight` and the bias (`want`, in that order) given `grad`, the
/// gradient of [`forward`]'s output, and the activation's `slopes` it recorded. Each product
/// is one threaded matrix multiply; `None` when a view has a layout the kernel does not read.
///
/// # Shapes
/// - x: `[rows, d_in]`, weight: `[d_in, d_out]`, grad and slopes: `[rows, d_out]`
pub(super) fn backward(
    x: &FlexTensor,
    weight: &FlexTensor,
    slopes: Option<&[f32]>,
    grad: &FlexTensor,
    want: [bool; 3],
) -> Option<LinearGradients> {
    let [rows, d_out] = shape_of(x, weight, None)?;
    let d_in = x.layout().shape().as_slice()[1];
    let (x_view, _) = MatrixView::of(x)?;
    let (w_view, _) = MatrixView::of(weight)?;
    let grad = grad.to_contiguous();
    let start = grad.layout().start_offset();
    let upstream = grad.storage::<f32>().get(start..start + rows * d_out)?;
    // The gradient before the activation.
    let owned;
    let pre: &[f32] = match slopes {
        Some(slopes) => {
            let mut values = upstream.to_vec();
            values
                .par_chunks_mut(CHUNK)
                .zip(slopes.par_chunks(CHUNK))
                .for_each(|(v, s)| math::multiply_in_place(v, s));
            owned = values;
            &owned
        }
        None => upstream,
    };
    let d_x = want[0].then(|| {
        let mut d_x = vec![0.0f32; rows * d_in];
        // SAFETY: `pre` is rows x d_out, the weight view d_in x d_out, `d_x` rows x d_in.
        unsafe {
            let pre = Operand::row_major(pre.as_ptr(), d_out);
            let at = d_x.as_mut_ptr();
            product(
                [rows, d_in, d_out],
                at,
                d_in,
                false,
                pre,
                w_view.at(0, 0, 0).t(),
                1.0,
                THREADED,
            );
        }
        d_x
    });
    let d_weight = want[1].then(|| {
        let mut d_weight = vec![0.0f32; d_in * d_out];
        // SAFETY: the x view is rows x d_in, `pre` rows x d_out, `d_weight` d_in x d_out.
        unsafe {
            let pre = Operand::row_major(pre.as_ptr(), d_out);
            let at = d_weight.as_mut_ptr();
            product(
                [d_in, d_out, rows],
                at,
                d_out,
                false,
                x_view.at(0, 0, 0).t(),
                pre,
                1.0,
                THREADED,
            );
        }
        d_weight
    });
    let d_bias = want[2].then(|| {
        // Partial sums per chunk, added in order: the same sums on every run, whatever the
        // threads did (training stays bit-reproducible).
        let rows_per_chunk = (CHUNK / d_out).max(1);
        let parts: Vec<Vec<f32>> = pre
            .par_chunks(rows_per_chunk * d_out)
            .map(|chunk| {
                let mut sums = vec![0.0f32; d_out];
                for row in chunk.chunks_exact(d_out) {
                    math::add_in_place(&mut sums, row);
                }
                sums
            })
            .collect();
        let mut total = vec![0.0f32; d_out];
        for part in &parts {
            math::add_in_place(&mut total, part);
        }
        total
    });
    Some(LinearGradients {
        x: d_x,
        weight: d_weight,
        bias: d_bias,
    })
}
