//! The backward pass of the fused attention ([`super::attention`]), `f32`.
//!
//! Nothing of the forward pass is kept but its inputs: each task (one sequence and head)
//! recomputes a tile of probabilities `P` exactly as the forward did (same products, same
//! softmax), then, with `dO` the gradient of the context,
//!
//! - `dV += Pᵀ dO` and `dP = dO Vᵀ`,
//! - `dS = P ∘ (dP − rowsum(P ∘ dP))` (the softmax's backward pass),
//! - `dQ = scale · dS K`, `dK += scale · dSᵀ Q`, and the bias's gradient `Σ dS` per distance.
//!
//! Memory beyond the gradients is two tiles of scores per thread, as in the forward pass: no
//! `[batch, heads, seq, seq]` tensor of probabilities is stored between the passes.

use burn_flex::FlexTensor;
use rayon::prelude::*;

use super::attention::{Problem, batch_offset};
use super::{MatrixView, Operand, SendPtr, product};

/// Each task's products run on its own thread: the tasks fill the threads.
const SERIAL: gemm::Parallelism = gemm::Parallelism::None;
use crate::math;

/// The gradients of one attention call.
pub(super) struct AttentionGradients {
    /// `[batch, q_len, width]`, row-major.
    pub query: Vec<f32>,
    /// `[batch, k_len, width]`, row-major; zero for keys no query reads.
    pub key: Vec<f32>,
    /// `[batch, k_len, width]`, row-major.
    pub value: Vec<f32>,
    /// `[heads, q_len + k_len - 1]`, when asked for and the problem has a bias.
    pub bias: Option<Vec<f32>>,
}

/// The gradients of [`super::attention::forward`]'s inputs given `grad`, the gradient of its
/// output; `None` when a view has a layout the kernel does not read.
///
/// # Shapes
/// - q: `[batch, q_len, width]`, k and v: `[batch, k_len, width]`
/// - grad: `[batch, q_len, width]`
pub(super) fn backward(
    problem: &Problem,
    q: &FlexTensor,
    k: &FlexTensor,
    v: &FlexTensor,
    grad: &FlexTensor,
    want_bias: bool,
) -> Option<AttentionGradients> {
    let Problem {
        batch,
        q_len,
        k_len,
        width,
        heads,
        head_dim,
        scale,
        ..
    } = *problem;
    let (q_view, q_lead) = MatrixView::of(q)?;
    let (k_view, k_lead) = MatrixView::of(k)?;
    let (v_view, v_lead) = MatrixView::of(v)?;
    let (g_view, g_lead) = MatrixView::of(grad)?;
    let want_bias = want_bias && problem.bias.is_some();
    let bias_width = problem.bias_width();

    let mut d_query = vec![0.0f32; batch * q_len * width];
    let mut d_key = vec![0.0f32; batch * k_len * width];
    let mut d_value = vec![0.0f32; batch * k_len * width];
    let (dq, dk, dv) = (
        SendPtr(d_query.as_mut_ptr()),
        SendPtr(d_key.as_mut_ptr()),
        SendPtr(d_value.as_mut_ptr()),
    );
    let query_tile = problem.query_tile();
    // One task per sequence and head, so the key and value gradients of a head, summed over its
    // query tiles, have one writer.
    let bias_parts: Vec<Option<Vec<f32>>> = (0..batch * heads)
        .into_par_iter()
        .map_init(
            || (Vec::new(), Vec::new()),
            |(probabilities, gradient): &mut (Vec<f32>, Vec<f32>), task| {
                let (b, h) = (task / heads, task % heads);
                let keys = problem.key_counts[b];
                let mut d_bias = want_bias.then(|| vec![0.0f32; bias_width]);
                if keys == 0 {
                    return d_bias; // a zero context: nothing flows back
                }
                let rows_of = problem.rows(b, h);
                let column = h * head_dim;
                let (q_at, k_at, v_at, g_at) = (
                    batch_offset(&q_lead, b),
                    batch_offset(&k_lead, b),
                    batch_offset(&v_lead, b),
                    batch_offset(&g_lead, b),
                );
                for first in (0..q_len).step_by(query_tile) {
                    let rows = query_tile.min(q_len - first);
                    probabilities.clear();
                    probabilities.resize(rows * keys, 0.0);
                    gradient.clear();
                    gradient.resize(rows * keys, 0.0);
                    let (q_tile, g_tile) = (
                        q_view.at(q_at, first, column),
                        g_view.at(g_at, first, column),
                    );
                    let (k_head, v_head) = (k_view.at(k_at, 0, column), v_view.at(v_at, 0, column));
                    let (p, ds) = (
                        Operand::row_major(probabilities.as_ptr(), keys),
                        Operand::row_major(gradient.as_ptr(), keys),
                    );
                    // SAFETY (every product below): the views address elements inside their
                    // tensors' shapes (checked by `MatrixView::of`), the tiles hold rows x keys,
                    // and this task alone writes this sequence's and head's columns of the
                    // gradients.
                    unsafe {
                        // P: the forward pass's scores and softmax, recomputed.
                        let at = probabilities.as_mut_ptr();
                        product(
                            [rows, keys, head_dim],
                            at,
                            keys,
                            false,
                            q_tile,
                            k_head.t(),
                            scale,
                            SERIAL,
                        );
                    }
                    for (r, row) in probabilities.chunks_exact_mut(keys).enumerate() {
                        rows_of.softmax(row, first + r);
                    }
                    unsafe {
                        // dP = dO Vᵀ, then dV += Pᵀ dO.
                        let at = gradient.as_mut_ptr();
                        product(
                            [rows, keys, head_dim],
                            at,
                            keys,
                            false,
                            g_tile,
                            v_head.t(),
                            1.0,
                            SERIAL,
                        );
                        let at = dv.get().add(b * k_len * width + column);
                        product(
                            [keys, head_dim, rows],
                            at,
                            width,
                            true,
                            p.t(),
                            g_tile,
                            1.0,
                            SERIAL,
                        );
                    }
                    // dS, in place of dP.
                    for (r, (p, g)) in probabilities
                        .chunks_exact(keys)
                        .zip(gradient.chunks_exact_mut(keys))
                        .enumerate()
                    {
                        math::softmax_backward_in_place(p, g);
                        if let Some(d_bias) = d_bias.as_mut() {
                            // Key j of query i reads the bias at column j - i + q_len - 1.
                            let start = q_len - 1 - (first + r);
                            math::add_in_place(&mut d_bias[start..start + keys], g);
                        }
                    }
                    unsafe {
                        // dQ = scale · dS K, then dK += scale · dSᵀ Q.
                        let at = dq.get().add((b * q_len + first) * width + column);
                        product(
                            [rows, head_dim, keys],
                            at,
                            width,
                            false,
                            ds,
                            k_head,
                            scale,
                            SERIAL,
                        );
                        let at = dk.get().add(b * k_len * width + column);
                        product(
                            [keys, head_dim, rows],
                            at,
                            width,
                            true,
                            ds.t(),
                            q_tile,
                            scale,
                            SERIAL,
                        );
                    }
                }
                d_bias
            },
        )
        .collect();
    let bias = want_bias.then(|| {
        let mut total = vec![0.0f32; heads * bias_width];
        for (task, part) in bias_parts.iter().enumerate() {
            if let Some(part) = part {
                let h = task % heads;
                math::add_in_place(&mut total[h * bias_width..(h + 1) * bias_width], part);
            }
        }
        total
    });
    Some(AttentionGradients {
        query: d_query,
        key: d_key,
        value: d_value,
        bias,
    })
}
