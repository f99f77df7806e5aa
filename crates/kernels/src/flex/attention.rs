//! Fused multi-head attention on flex, `f32`.
//!
//! Reads queries, keys and values in the layout their projections wrote them
//! (`[batch, seq, heads * head_dim]`, no head-split copies) and writes the context in the layout
//! the output projection reads (no merge copy). Work is split over batch x heads x tiles of
//! 32 to 128 queries; each tile computes its scores with one matrix product, adds the
//! relative-position bias of its rows from the per-distance table, masks, takes a vectorised
//! softmax and multiplies by the values. Memory beyond inputs and output is one score buffer
//! of at most `max(SCORES_PER_TILE, 32 x keys)` floats per thread, so a 35,000-residue protein needs megabytes
//! for attention, not the `heads x L x L` gigabytes of a materialised bias or score tensor.
//!
//! Padding keys after the last real key of a sequence are skipped, not computed and masked.

use burn::tensor::{Bool, Tensor};
use burn_flex::FlexTensor;
use std::cell::RefCell;

use rayon::prelude::*;

use super::amx::{self, BLOCK, Target};
use super::{MatrixView, Operand, SendPtr, bool_values, f32_primitive, product, tensor_from_vec};
use crate::{MatmulPrecision, math, matmul_precision};
use gemm::Parallelism;

/// Scores per task, up to [`MAX_QUERY_TILE`] queries: the keys are packed for the matrix
/// product once per tile and the scores stay in the core's cache. 128 queries measured best on
/// ProtBert-shaped batches (16 to 512 tried: 32 was 20% slower, 256 and 512 no faster).
const SCORES_PER_TILE: usize = 1 << 18;
/// Most queries per tile.
const MAX_QUERY_TILE: usize = 128;
/// Fewest queries per tile (long sequences), so each product still fills the kernel's rows.
const MIN_QUERY_TILE: usize = 32;

/// See the module documentation. `None` when an input is not a flex `f32` tensor of the
/// expected shapes (the caller then takes burn's op).
///
/// # Shapes
/// - query: `[batch, q_len, heads * head_dim]`, key and value: `[batch, k_len, heads * head_dim]`
/// - key_padding: `[batch, k_len]`, `true` at padding
/// - relative_bias: `[heads, q_len + k_len - 1]`, the bias of key `j` for query `i` at
///   column `j - i + q_len - 1`
/// - output: `[batch, q_len, heads * head_dim]`
#[allow(clippy::too_many_arguments)]
pub(crate) fn self_attention(
    query: &Tensor<3>,
    key: &Tensor<3>,
    value: &Tensor<3>,
    heads: usize,
    scale: f32,
    key_padding: Option<&Tensor<2, Bool>>,
    relative_bias: Option<&Tensor<2>>,
) -> Option<Tensor<3>> {
    let (q, k, v) = (
        f32_primitive(query)?,
        f32_primitive(key)?,
        f32_primitive(value)?,
    );
    let bias = match relative_bias {
        Some(bias) => Some(f32_primitive(bias)?),
        None => None,
    };
    let problem = Problem::new(&q, &k, &v, heads, scale, key_padding, bias.as_ref())?;
    let output = forward(&problem, &q, &k, &v, true)?;
    Some(tensor_from_vec(
        output,
        [problem.batch, problem.q_len, problem.width],
    ))
}

/// One attention call, read from its inputs: sizes, the keys each sequence reads and its
/// padding holes, and the relative bias's values.
#[derive(Debug)]
pub(super) struct Problem {
    pub batch: usize,
    pub q_len: usize,
    pub k_len: usize,
    pub width: usize,
    pub heads: usize,
    pub head_dim: usize,
    pub scale: f32,
    /// Per sequence: keys up to and including its last real one (0: nothing to attend to).
    pub key_counts: Vec<usize>,
    /// Per sequence: padding keys before its last real one.
    pub holes: Vec<Vec<usize>>,
    /// `[heads, q_len + k_len - 1]`, row-major.
    pub bias: Option<Vec<f32>>,
}

impl Problem {
    /// `None` when the shapes do not fit together or a tensor is not on flex.
    pub fn new(
        q: &FlexTensor,
        k: &FlexTensor,
        v: &FlexTensor,
        heads: usize,
        scale: f32,
        key_padding: Option<&Tensor<2, Bool>>,
        relative_bias: Option<&FlexTensor>,
    ) -> Option<Self> {
        let dims = |t: &FlexTensor| -> Option<[usize; 3]> {
            t.layout().shape().as_slice().try_into().ok()
        };
        let [batch, q_len, width] = dims(q)?;
        let [k_batch, k_len, k_width] = dims(k)?;
        if heads == 0
            || !width.is_multiple_of(heads)
            || k_batch != batch
            || k_width != width
            || dims(v)? != [k_batch, k_len, k_width]
            || k_len == 0
            || q_len == 0
        {
            return None;
        }
        let (key_counts, holes) = match key_padding {
            Some(padding) => {
                if padding.dims() != [batch, k_len] {
                    return None;
                }
                let padded = bool_values(padding)?;
                let mut counts = Vec::with_capacity(batch);
                let mut holes = Vec::with_capacity(batch);
                for row in padded.chunks(k_len) {
                    match row.iter().rposition(|&p| !p) {
                        Some(last) => {
                            counts.push(last + 1);
                            holes.push((0..last).filter(|&j| row[j]).collect::<Vec<_>>());
                        }
                        // Nothing to attend to: a zero context, as burn's attention gives.
                        None => {
                            counts.push(0);
                            holes.push(Vec::new());
                        }
                    }
                }
                (counts, holes)
            }
            None => (vec![k_len; batch], vec![Vec::new(); batch]),
        };
        let bias_width = q_len + k_len - 1;
        let bias = match relative_bias {
            Some(bias) => {
                if bias.layout().shape().as_slice() != [heads, bias_width] {
                    return None;
                }
                let contiguous = bias.to_contiguous();
                let start = contiguous.layout().start_offset();
                Some(contiguous.storage::<f32>()[start..start + heads * bias_width].to_vec())
            }
            None => None,
        };
        Some(Self {
            batch,
            q_len,
            k_len,
            width,
            heads,
            head_dim: width / heads,
            scale,
            key_counts,
            holes,
            bias,
        })
    }

    /// Columns of the relative bias: one per distance.
    pub fn bias_width(&self) -> usize {
        self.q_len + self.k_len - 1
    }

    /// What turns the scores of sequence `b`, head `h` into probabilities.
    pub fn rows(&self, b: usize, h: usize) -> Rows<'_> {
        let bias_width = self.bias_width();
        Rows {
            bias: self
                .bias
                .as_deref()
                .map(|bias| (&bias[h * bias_width..(h + 1) * bias_width], self.q_len)),
            holes: &self.holes[b],
        }
    }

    /// Queries per tile: enough tiles for every thread, each tile's scores in the core's cache.
    pub fn query_tile(&self) -> usize {
        let threads = rayon::current_num_threads();
        let by_cache = (SCORES_PER_TILE / self.k_len).clamp(MIN_QUERY_TILE, MAX_QUERY_TILE);
        let by_threads = (self.batch * self.heads * self.q_len)
            .div_ceil(4 * threads)
            .max(MIN_QUERY_TILE);
        by_cache.min(by_threads).min(self.q_len)
    }
}

/// Offset of sequence `b` in a view whose leading strides are `lead`.
pub(super) fn batch_offset(lead: &[isize], b: usize) -> usize {
    (lead[0] * b as isize) as usize
}

/// The context `[batch, q_len, width]`, row-major; `None` when a view has a layout the kernel
/// does not read. `allow_bf16`: whether [`MatmulPrecision::Bf16`] may take the AMX path
/// (not under autodiff, whose backward recomputes the probabilities in f32).
pub(super) fn forward(
    problem: &Problem,
    q: &FlexTensor,
    k: &FlexTensor,
    v: &FlexTensor,
    allow_bf16: bool,
) -> Option<Vec<f32>> {
    let Problem {
        batch,
        q_len,
        width,
        heads,
        head_dim,
        scale,
        ..
    } = *problem;
    let key_counts = &problem.key_counts;
    let (q_view, q_lead) = MatrixView::of(q)?;
    let (k_view, k_lead) = MatrixView::of(k)?;
    let (v_view, v_lead) = MatrixView::of(v)?;

    let mut output = vec![0.0f32; batch * q_len * width];
    let out = SendPtr(output.as_mut_ptr());
    if allow_bf16 && head_dim > 0 && matmul_precision() == MatmulPrecision::Bf16 && amx::available()
    {
        // Offset of head `h` of sequence `b` in a view.
        let head = |view: &MatrixView, lead: &[isize], b: usize, h: usize| {
            batch_offset(lead, b) + h * head_dim * view.col_stride as usize
        };
        (0..batch * heads).into_par_iter().for_each(|task| {
            let (b, h) = (task / heads, task % heads);
            let rows = problem.rows(b, h);
            let context = Target {
                // SAFETY: the first element of this sequence's and head's context.
                data: unsafe { out.get().add(b * q_len * width + h * head_dim) },
                rows: q_len,
                columns: head_dim,
                stride: width,
            };
            let (q, k, v) = (
                q_view.starting_at(head(&q_view, &q_lead, b, h)),
                k_view.starting_at(head(&k_view, &k_lead, b, h)),
                v_view.starting_at(head(&v_view, &v_lead, b, h)),
            );
            // SAFETY: AMX is available; the views address this head's q_len and key_counts[b]
            // rows; the context block of this sequence and head is written by no other task.
            unsafe {
                head_with_bf16_products(
                    &q,
                    &k,
                    &v,
                    q_len,
                    key_counts[b],
                    head_dim,
                    scale,
                    &rows,
                    &context,
                )
            };
        });
        return Some(output);
    }
    let query_tile = problem.query_tile();
    let tiles = q_len.div_ceil(query_tile);
    (0..batch * heads * tiles).into_par_iter().for_each_init(
        Vec::new,
        |scores: &mut Vec<f32>, task| {
            let (b, rest) = (task / (heads * tiles), task % (heads * tiles));
            let (h, tile) = (rest / tiles, rest % tiles);
            let first = tile * query_tile;
            let rows = query_tile.min(q_len - first);
            let keys = key_counts[b];
            if keys == 0 {
                return;
            }
            scores.clear();
            scores.resize(rows * keys, 0.0);
            let column = h * head_dim;
            // SAFETY: the pointers address elements inside each tensor's shape (views checked by
            // `MatrixView::of`); `scores` holds rows x keys; the output rows of this task's queries
            // and head are written by no other task.
            unsafe {
                product(
                    [rows, keys, head_dim],
                    scores.as_mut_ptr(),
                    keys,
                    false,
                    q_view.at(batch_offset(&q_lead, b), first, column),
                    k_view.at(batch_offset(&k_lead, b), 0, column).t(),
                    scale,
                    Parallelism::None,
                );
            }
            let head_rows = problem.rows(b, h);
            for (r, row) in scores.chunks_exact_mut(keys).enumerate() {
                head_rows.softmax(row, first + r);
            }
            unsafe {
                product(
                    [rows, head_dim, keys],
                    out.get().add((b * q_len + first) * width + column),
                    width,
                    false,
                    Operand::row_major(scores.as_ptr(), keys),
                    v_view.at(batch_offset(&v_lead, b), 0, column),
                    1.0,
                    Parallelism::None,
                );
            }
        },
    );
    Some(output)
}

/// What turns a row of raw scores `q . k` into probabilities.
pub(super) struct Rows<'a> {
    /// This head's relative-position bias per distance, and the query count it was made for.
    bias: Option<(&'a [f32], usize)>,
    /// Padding keys before the last real one.
    holes: &'a [usize],
}

impl Rows<'_> {
    /// `softmax(scores + bias)` over the real keys (scores already scaled), for query `query`.
    pub fn softmax(&self, scores: &mut [f32], query: usize) {
        if let Some((bias, q_len)) = self.bias {
            let start = q_len - 1 - query;
            math::add_in_place(scores, &bias[start..start + scores.len()]);
        }
        for &j in self.holes {
            scores[j] = f32::NEG_INFINITY;
        }
        math::softmax_in_place(scores);
    }
}

/// One sequence and head with bf16 products on AMX: its queries are rounded, its keys packed
/// (as the right operand of `q . k^T`) and its values packed once, then 32 queries at a time
/// get their scores, probabilities (rounded to bf16) and context.
///
/// # Safety
/// AMX is available; `q` addresses `q_len x head_dim` values, `k` and `v` `keys x head_dim`;
/// `context` is this head's output, written by no other thread.
#[allow(clippy::too_many_arguments)]
unsafe fn head_with_bf16_products(
    q: &MatrixView,
    k: &MatrixView,
    v: &MatrixView,
    q_len: usize,
    keys: usize,
    head_dim: usize,
    scale: f32,
    rows: &Rows,
    context: &Target,
) {
    if keys == 0 {
        return; // nothing to attend to: a zero context
    }
    amx::with_scratch(&HEAD_BUFFERS, |buffers| {
        let HeadBuffers {
            queries,
            keys_t,
            values,
            probabilities,
            scores,
        } = buffers;
        let (d_pad, keys_pad) = (amx::padded(head_dim), amx::padded(keys));
        // SAFETY: forwarded from the caller.
        let (q_end, k_end, v_end) = unsafe {
            (
                amx::round_rows(q, q_len, head_dim, false, queries),
                amx::pack_columns(&k.transposed(), head_dim, keys, false, keys_t),
                amx::pack_columns(v, keys, head_dim, false, values),
            )
        };
        let (queries, keys_t, values) = (&queries[..q_end], &keys_t[..k_end], &values[..v_end]);
        // Rows past a block's last query, and columns past the last key, stay zero.
        probabilities.clear();
        probabilities.resize(BLOCK * keys_pad, 0);
        scores.resize(BLOCK * keys_pad, 0.0);
        let score_block = Target {
            data: scores.as_mut_ptr(),
            rows: BLOCK,
            columns: keys_pad,
            stride: keys_pad,
        };
        // SAFETY: AMX is available (caller); blocks stay inside the buffers made above and the
        // caller's context.
        unsafe {
            let _tiles = amx::Tiles::configure();
            for row_block in 0..q_len.div_ceil(BLOCK) {
                let first = row_block * BLOCK;
                for column_block in 0..keys_pad / BLOCK {
                    let at = (0, column_block * BLOCK);
                    amx::product_block(
                        queries,
                        row_block,
                        d_pad,
                        keys_t,
                        column_block,
                        &score_block,
                        at,
                    );
                }
                for r in 0..BLOCK.min(q_len - first) {
                    let row = &mut scores[r * keys_pad..r * keys_pad + keys];
                    for score in row.iter_mut() {
                        *score *= scale;
                    }
                    rows.softmax(row, first + r);
                    amx::round_into(row, &mut probabilities[r * keys_pad..r * keys_pad + keys]);
                }
                for column_block in 0..head_dim.div_ceil(BLOCK) {
                    let at = (first, column_block * BLOCK);
                    amx::product_block(
                        probabilities,
                        0,
                        keys_pad,
                        values,
                        column_block,
                        context,
                        at,
                    );
                }
            }
        }
    })
}

/// One thread's buffers for [`head_with_bf16_products`], kept between calls.
#[derive(Default)]
struct HeadBuffers {
    queries: Vec<u16>,
    keys_t: Vec<u16>,
    values: Vec<u16>,
    probabilities: Vec<u16>,
    scores: Vec<f32>,
}

thread_local! {
    static HEAD_BUFFERS: RefCell<HeadBuffers> = RefCell::new(HeadBuffers::default());
}
