//! Attention with relative positions and segment memory, shared by Transformer-XL and XLNet.
//!
//! Scores follow Dai et al. 2019 (Transformer-XL, §3.3), which XLNet reuses:
//! `(q + u)·k_j` (content, global bias `u` = `r_w_bias`) plus `(q + v)·W_r R(i - j)`
//! (position, global bias `v` = `r_r_bias`), where `R` is the sinusoidal encoding of the
//! distance between query `i` and key `j`. Keys are the memory followed by the current
//! segment, so a query at segment position `i` sits at absolute position `mlen + i`.

use burn::module::Param;
use burn::tensor::{Bool, Tensor, activation};

/// What masked scores are set to: finite, so a row with every key masked stays a uniform
/// distribution rather than NaN (as `transformers` does: it subtracts 1e30).
const MASKED_SCORE: f32 = -1e30;

/// Relative distances `klen, klen - 1, ..., -qlen + 1` (query minus key), optionally clamped
/// to `±clamp_len`: the rows of the position table [`relative_shift`] indexes into.
///
/// # Shapes
/// - output: `[klen + qlen]`
pub fn relative_distances(
    qlen: usize,
    klen: usize,
    clamp_len: Option<usize>,
    device: &burn::tensor::Device,
) -> Tensor<1> {
    let distances =
        Tensor::<1, burn::tensor::Int>::arange(-(qlen as i64) + 1..klen as i64 + 1, device)
            .flip([0])
            .float();
    match clamp_len {
        Some(clamp) => distances.clamp(-(clamp as f32), clamp as f32),
        None => distances,
    }
}

/// Sinusoidal encodings of `distances`: `[sin(d·f), cos(d·f)]` with `f_k = 10000^(-2k/width)`,
/// the two halves concatenated (not interleaved), as both reference implementations do.
///
/// # Shapes
/// - distances: `[n]`
/// - output: `[n, width]`
pub fn sinusoid_encoding(distances: Tensor<1>, width: usize) -> Tensor<2> {
    let device = distances.device();
    let half = width / 2;
    let exponents = Tensor::<1, burn::tensor::Int>::arange(0..half as i64, &device).float()
        * (2.0 / width as f32);
    let inverse_frequency = exponents.mul_scalar(10000f32.ln()).neg().exp();
    let [n] = distances.dims();
    let angles = distances.reshape([n, 1]) * inverse_frequency.reshape([1, half]);
    Tensor::cat(vec![angles.clone().sin(), angles.cos()], 1)
}

/// Lines position scores up with keys: `x[.., i, r]` holds the score of query `i` against the
/// `r`-th row of the distance table; the output's `[.., i, j]` is the row for distance
/// `i + mlen - j`, i.e. `r = j + qlen - i`.
///
/// This is XLNet's reshape trick (`rel_shift_bnij`), kept as is so that tables of any length give
/// its numbers, masked positions included. Transformer-XL's reference shifts a `klen`-row table
/// by zero-padding instead; the two agree at every position its causal mask leaves visible.
///
/// # Shapes
/// - x: `[batch, heads, qlen, rows]`
/// - output: `[batch, heads, qlen, klen]`
pub fn relative_shift(x: Tensor<4>, klen: usize) -> Tensor<4> {
    let [batch, heads, qlen, rows] = x.dims();
    x.reshape([batch, heads, rows, qlen])
        .slice([0..batch, 0..heads, 1..rows, 0..qlen])
        .reshape([batch, heads, qlen, rows - 1])
        .slice([0..batch, 0..heads, 0..qlen, 0..klen])
}

/// The learned global biases of relative attention, one `[heads, head_dim]` table each.
#[derive(Debug, Clone)]
pub struct RelativeBiases<'a> {
    /// Content bias `u` (`r_w_bias`).
    pub content: &'a Param<Tensor<2>>,
    /// Position bias `v` (`r_r_bias`).
    pub position: &'a Param<Tensor<2>>,
}

/// XLNet's segment term: `(q + r_s_bias)·seg_embed[s]`, where `s` says whether query and key
/// carry different token types.
#[derive(Debug, Clone)]
pub struct SegmentTerm<'a> {
    /// `r_s_bias`, `[heads, head_dim]`.
    pub bias: &'a Param<Tensor<2>>,
    /// `seg_embed`, `[2, heads, head_dim]`: row 0 for "same segment", row 1 for "different".
    pub embeddings: &'a Param<Tensor<3>>,
    /// 1.0 where query and key segments differ, `[batch, 1, qlen, klen]`.
    pub differs: Tensor<4>,
}

/// Relative attention over already projected heads.
///
/// `mask` is `true` where a query may not look. `dropout` acts on the probabilities, as in both
/// references.
///
/// # Shapes
/// - q: `[batch, heads, qlen, head_dim]`
/// - k, v: `[batch, heads, klen, head_dim]` (memory first, then the segment)
/// - position_keys: `[heads, rows, head_dim]`, the projected rows of [`relative_distances`]
/// - mask: `[batch or 1, 1, qlen, klen]`
/// - output: `[batch, heads, qlen, head_dim]`
#[allow(clippy::too_many_arguments)]
pub fn relative_attention(
    q: Tensor<4>,
    k: Tensor<4>,
    v: Tensor<4>,
    position_keys: Tensor<3>,
    biases: RelativeBiases<'_>,
    segment: Option<SegmentTerm<'_>>,
    mask: Option<Tensor<4, Bool>>,
    dropout: &burn::nn::Dropout,
) -> Tensor<4> {
    let [batch, heads, qlen, head_dim] = q.dims();
    let klen = k.dims()[2];
    let rows = position_keys.dims()[1];
    let bias = |b: &Param<Tensor<2>>| b.val().reshape([1, heads, 1, head_dim]);

    let content = (q.clone() + bias(biases.content)).matmul(k.swap_dims(2, 3));
    let position_keys = position_keys
        .unsqueeze_dim::<4>(0)
        .expand([batch, heads, rows, head_dim]);
    let position = relative_shift(
        (q.clone() + bias(biases.position)).matmul(position_keys.swap_dims(2, 3)),
        klen,
    );
    let mut scores = content + position;
    if let Some(segment) = segment {
        // [batch, heads, qlen, 2]: the score against "same segment" and "different segment".
        let table = segment.embeddings.val().swap_dims(0, 1).swap_dims(1, 2); // [heads, head_dim, 2]
        let by_segment = (q + bias(segment.bias)).matmul(
            table
                .unsqueeze_dim::<4>(0)
                .expand([batch, heads, head_dim, 2]),
        );
        let same = by_segment
            .clone()
            .slice([0..batch, 0..heads, 0..qlen, 0..1]);
        let different = by_segment.slice([0..batch, 0..heads, 0..qlen, 1..2]);
        scores = scores + same.clone() + (different - same) * segment.differs;
    }
    let scores = scores * (1.0 / (head_dim as f32).sqrt());
    let scores = match mask {
        Some(mask) => scores.mask_fill(mask.expand([batch, heads, qlen, klen]), MASKED_SCORE),
        None => scores,
    };
    let probabilities = activation::softmax(scores, 3);
    let probabilities = dropout.forward(probabilities);
    probabilities.matmul(v)
}

/// Hidden states kept from earlier segments: for each layer, the inputs it saw last, as
/// `[batch, mlen, d]`. Memory carries no gradient (Transformer-XL's "stop gradient").
#[derive(Debug, Clone)]
pub struct SegmentMemory {
    /// One tensor per layer, all of the same length.
    pub layers: Vec<Tensor<3>>,
}

impl SegmentMemory {
    /// Number of remembered positions.
    pub fn len(&self) -> usize {
        self.layers.first().map_or(0, |t| t.dims()[1])
    }

    /// No memory.
    pub fn empty() -> Self {
        Self { layers: Vec::new() }
    }

    /// `layers` memories of zeros (Transformer-XL's start of a sequence).
    pub fn zeros(layers: usize, shape: [usize; 3], device: &burn::tensor::Device) -> Self {
        Self {
            layers: (0..layers).map(|_| Tensor::zeros(shape, device)).collect(),
        }
    }

    /// Whether nothing is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The memory after a segment: the last `mem_len` positions of the previous memory followed
    /// by this segment's layer `inputs`, detached (`None`: keep everything; `Some(0)`: nothing).
    pub fn update(
        previous: Option<&SegmentMemory>,
        inputs: &[Tensor<3>],
        mem_len: Option<usize>,
    ) -> SegmentMemory {
        if mem_len == Some(0) {
            return SegmentMemory { layers: Vec::new() };
        }
        let layers = inputs
            .iter()
            .enumerate()
            .map(|(i, input)| {
                let all = match previous.filter(|m| !m.is_empty()) {
                    Some(previous) => {
                        Tensor::cat(vec![previous.layers[i].clone(), input.clone()], 1)
                    }
                    None => input.clone(),
                };
                let [batch, len, d] = all.dims();
                let keep = mem_len.map_or(len, |m| m.min(len));
                all.slice([0..batch, len - keep..len, 0..d]).detach()
            })
            .collect();
        SegmentMemory { layers }
    }
}

/// Reads `input_ids` in consecutive segments of `segment_length` tokens, each through `step`
/// after the memory the previous segment left, and joins the outputs.
///
/// # Shapes
/// - input_ids: `[batch, seq]` -> `[batch, seq, d]`
pub fn read_in_segments(
    input_ids: Tensor<2, burn::tensor::Int>,
    segment_length: usize,
    mut step: impl FnMut(
        Tensor<2, burn::tensor::Int>,
        Option<&SegmentMemory>,
    ) -> (Tensor<3>, SegmentMemory),
) -> Tensor<3> {
    let [batch, seq] = input_ids.dims();
    let segment_length = segment_length.max(1);
    let mut memory: Option<SegmentMemory> = None;
    let mut outputs = Vec::new();
    for start in (0..seq).step_by(segment_length) {
        let segment = input_ids
            .clone()
            .slice([0..batch, start..(start + segment_length).min(seq)]);
        let (hidden, next) = step(segment, memory.as_ref());
        outputs.push(hidden);
        memory = Some(next);
    }
    Tensor::cat(outputs, 1)
}

/// Causal mask over memory and segment: query `i` may see keys up to `mlen + i`.
///
/// # Shapes
/// - output: `[1, 1, qlen, mlen + qlen]`, `true` where masked
pub fn causal_mask(qlen: usize, mlen: usize, device: &burn::tensor::Device) -> Tensor<4, Bool> {
    let klen = mlen + qlen;
    let query = Tensor::<1, burn::tensor::Int>::arange(0..qlen as i64, device).reshape([qlen, 1]);
    let key = Tensor::<1, burn::tensor::Int>::arange(0..klen as i64, device).reshape([1, klen]);
    key.expand([qlen, klen])
        .greater(query.add_scalar(mlen as i64).expand([qlen, klen]))
        .reshape([1, 1, qlen, klen])
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Device, TensorData};

    #[test]
    fn shift_picks_the_row_of_each_distance() {
        let device = Device::flex();
        let (qlen, mlen) = (3, 2);
        let klen = qlen + mlen;
        let distances = relative_distances(qlen, klen, None, &device);
        let rows = distances.dims()[0];
        // Score of query i against row r = 100 i + distance of row r.
        let query = Tensor::<1, burn::tensor::Int>::arange(0..qlen as i64, &device)
            .float()
            .reshape([1, 1, qlen, 1])
            * 100.0;
        let x = query.expand([1, 1, qlen, rows])
            + distances
                .reshape([1, 1, 1, rows])
                .expand([1, 1, qlen, rows]);
        let shifted = relative_shift(x, klen);
        let mut expected = Vec::new();
        for i in 0..qlen {
            for j in 0..klen {
                expected.push(100.0 * i as f32 + (i + mlen) as f32 - j as f32);
            }
        }
        shifted
            .into_data()
            .assert_eq(&TensorData::new(expected, [1, 1, qlen, klen]), false);
    }

    #[test]
    fn causal_mask_lets_queries_see_memory_and_the_past() {
        let device = Device::flex();
        let mask = causal_mask(2, 1, &device);
        mask.into_data().assert_eq(
            &TensorData::new(vec![false, false, true, false, false, false], [1, 1, 2, 3]),
            false,
        );
    }

    #[test]
    fn sinusoids_start_at_zero_and_one() {
        let device = Device::flex();
        let table = sinusoid_encoding(Tensor::from_floats([0.0, 1.0], &device), 4);
        let values = table.into_data().try_to_vec::<f32>().unwrap();
        assert_eq!(&values[..4], &[0.0, 0.0, 1.0, 1.0]);
        assert!((values[4] - 1f32.sin()).abs() < 1e-6 && (values[5] - 0.01f32.sin()).abs() < 1e-6);
    }
}
