//! `x @ weight + bias`, then an activation, on flex, `f32`: one threaded matrix product, then
//! one threaded vectorised pass that adds the bias and applies the activation while the rows
//! are in cache (burn-flex adds a broadcast bias and applies unary ops on one thread each).

use burn::tensor::Tensor;
use rayon::prelude::*;

use super::{MatrixView, amx, f32_primitive, tensor_from_vec};
use crate::{Epilogue, MatmulPrecision, math, matmul_precision};

/// Elements per task of the activation pass.
const CHUNK: usize = 1 << 14;

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
    let [rows, d_in] = x.dims();
    let [w_in, d_out] = weight.dims();
    if w_in != d_in || bias.is_some_and(|b| b.dims() != [d_out]) || rows == 0 || d_out == 0 {
        return None;
    }
    let (x, w) = (f32_primitive(x)?, f32_primitive(weight)?);
    let (x_view, _) = MatrixView::of(&x)?;
    let (w_view, _) = MatrixView::of(&w)?;

    let bias = match bias {
        Some(bias) => {
            let bias = f32_primitive(bias)?.to_contiguous();
            let start = bias.layout().start_offset();
            Some(bias.storage::<f32>()[start..start + d_out].to_vec())
        }
        None => None,
    };

    // Zeroed pages are mapped lazily: the product is their first writer.
    let mut output = Vec::new();
    if d_in > 0 && matmul_precision() == MatmulPrecision::Bf16 && amx::available() {
        // SAFETY: AMX is available; the views address `rows x d_in` and `d_in x d_out`.
        unsafe { amx::matmul(&x_view, &w_view, rows, d_in, d_out, &mut output) };
    } else {
        output = vec![0.0f32; rows * d_out];
        // SAFETY: the views address elements inside each tensor's shape; `output` is rows x d_out.
        unsafe {
            gemm::gemm(
                rows,
                d_out,
                d_in,
                output.as_mut_ptr(),
                1,
                d_out as isize,
                false,
                x_view.ptr(0, 0, 0),
                x_view.col_stride,
                x_view.row_stride,
                w_view.ptr(0, 0, 0),
                w_view.col_stride,
                w_view.row_stride,
                1.0,
                1.0,
                false,
                false,
                false,
                gemm::Parallelism::Rayon(0),
            );
        }
    }
    if bias.is_some() || epilogue != Epilogue::None {
        let rows_per_chunk = (CHUNK / d_out).max(1);
        output
            .par_chunks_mut(rows_per_chunk * d_out)
            .for_each(|chunk| {
                if let Some(bias) = &bias {
                    for row in chunk.chunks_exact_mut(d_out) {
                        math::add_in_place(row, bias);
                    }
                }
                match epilogue {
                    Epilogue::None => {}
                    Epilogue::Gelu => math::gelu_in_place(chunk),
                    Epilogue::Relu => math::relu_in_place(chunk),
                }
            });
    }
    Some(tensor_from_vec(output, [rows, d_out]))
}
