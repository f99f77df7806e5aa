//! Kernels of our own for the hot paths of protein language models, on burn's flex backend.
//!
//! burn's flex backend copies split attention heads into contiguous memory, materialises
//! masks and biases per score, runs its softmax and unary ops one scalar `exp` at a time, and
//! adds broadcast biases on one thread. The functions here take burn tensors and, when those
//! live on flex in `f32` outside an autodiff graph (inference: embedding, evaluation), run a
//! fused kernel on the same memory through burn's `extension` API
//! (`Tensor::try_into_primitive::<Flex>()`). Anywhere else (autodiff, other dtypes, other
//! backends, or a build without the `flex` feature) they are burn's own ops, so model code
//! calls them unconditionally and never names a backend.
//!
//! - [`linear`]: `x @ weight + bias`, optionally followed by GELU or ReLU.
//! - [`fused_self_attention`]: multi-head attention over the projections' layout with
//!   per-sequence key padding and an optional relative-position bias given per distance.
//! - [`math`]: the vectorised `exp`/`erf`/softmax they use, dispatched at run time to
//!   AVX-512, AVX2 + FMA or the baseline.

#[cfg(feature = "flex")]
mod flex;
pub mod math;

use burn::tensor::{Bool, Tensor, activation};

/// What [`linear`] applies to its output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Epilogue {
    /// Nothing.
    None,
    /// Exact (erf) GELU.
    Gelu,
    /// ReLU.
    Relu,
}

/// `epilogue(x @ weight + bias)`.
///
/// # Shapes
/// - x: `[rows, d_in]`, weight: `[d_in, d_out]` (burn's `Linear` layout), bias: `[d_out]`
/// - output: `[rows, d_out]`
pub fn linear(
    x: Tensor<2>,
    weight: Tensor<2>,
    bias: Option<Tensor<1>>,
    epilogue: Epilogue,
) -> Tensor<2> {
    #[cfg(feature = "flex")]
    if let Some(output) = flex::linear(&x, &weight, bias.as_ref(), epilogue) {
        return output;
    }
    let output = burn::tensor::module::linear(x, weight, bias);
    match epilogue {
        Epilogue::None => output,
        Epilogue::Gelu => activation::gelu(output),
        Epilogue::Relu => activation::relu(output),
    }
}

/// Multi-head attention of `query` over `key`/`value` as one fused kernel, or `None` when the
/// tensors are not flex `f32` outside autodiff (the caller then uses burn's `attention`).
///
/// Heads are the `heads` consecutive slices of the last dimension, as a projection writes
/// them; the output is laid out the same way. Scores are `scale * q.k + bias`, with padding
/// keys excluded; a sequence whose keys are all padding gets a zero context, as from burn's
/// `attention`.
///
/// # Shapes
/// - query: `[batch, q_len, heads * head_dim]`, key and value: `[batch, k_len, heads * head_dim]`
/// - key_padding: `[batch, k_len]`, `true` at padding
/// - relative_bias: `[heads, q_len + k_len - 1]`: the bias of key `j` for query `i` is at
///   column `j - i + q_len - 1` (T5's bucketed bias, looked up once per distance)
/// - output: `[batch, q_len, heads * head_dim]`
pub fn fused_self_attention(
    query: &Tensor<3>,
    key: &Tensor<3>,
    value: &Tensor<3>,
    heads: usize,
    scale: f32,
    key_padding: Option<&Tensor<2, Bool>>,
    relative_bias: Option<&Tensor<2>>,
) -> Option<Tensor<3>> {
    #[cfg(feature = "flex")]
    return flex::self_attention(query, key, value, heads, scale, key_padding, relative_bias);
    #[cfg(not(feature = "flex"))]
    {
        let _ = (query, key, value, heads, scale, key_padding, relative_bias);
        None
    }
}

/// Whether [`fused_self_attention`] and [`linear`] have their fused path in this build.
pub const FUSED: bool = cfg!(feature = "flex");

#[cfg(all(test, feature = "flex"))]
mod tests {
    use super::*;
    use burn::tensor::module::attention;
    use burn::tensor::ops::AttentionModuleOptions;
    use burn::tensor::{Device, Distribution, Int, TensorData, Tolerance};

    fn random<const D: usize>(shape: [usize; D], device: &Device) -> Tensor<D> {
        Tensor::random(shape, Distribution::Normal(0.0, 1.0), device)
    }

    /// burn's op on the same problem: split heads, `[B,H,Q,K]` mask and bias.
    fn reference(
        q: Tensor<3>,
        k: Tensor<3>,
        v: Tensor<3>,
        heads: usize,
        scale: f32,
        padding: Option<Tensor<2, Bool>>,
        bias: Option<Tensor<2>>,
    ) -> Tensor<3> {
        let [batch, q_len, width] = q.dims();
        let k_len = k.dims()[1];
        let d = width / heads;
        let split = |x: Tensor<3>, len| x.reshape([batch, len, heads, d]).swap_dims(1, 2);
        let shape = [batch, heads, q_len, k_len];
        let mask = padding.map(|p| p.reshape([batch, 1, 1, k_len]).expand(shape));
        let bias = bias.map(|b| {
            let device = b.device();
            let index: Vec<i64> = (0..q_len)
                .flat_map(|i| (0..k_len).map(move |j| (j + q_len - 1 - i) as i64))
                .collect();
            let index =
                Tensor::<1, Int>::from_data(TensorData::new(index, [q_len * k_len]), &device);
            b.select(1, index)
                .reshape([1, heads, q_len, k_len])
                .expand(shape)
        });
        let options = AttentionModuleOptions {
            scale: Some(scale as f64),
            softcap: None,
            is_causal: false,
        };
        let out = attention(
            split(q, q_len),
            split(k, k_len),
            split(v, k_len),
            mask,
            bias,
            options,
        );
        out.swap_dims(1, 2).reshape([batch, q_len, width])
    }

    #[test]
    fn attention_matches_burns_op_with_padding_holes_and_relative_bias() {
        let device = Device::flex();
        // Lengths that straddle the query tile, a hole in the middle, a fully padded sequence.
        let (batch, seq, heads, width) = (4, 70, 3, 24);
        let q = random([batch, seq, width], &device);
        let k = random([batch, seq, width], &device);
        let v = random([batch, seq, width], &device);
        let mut padded = vec![false; batch * seq];
        padded[seq - 5..seq].fill(true); // 65 real keys
        padded[seq + 10] = true; // a hole
        padded[seq + 60..2 * seq].fill(true);
        padded[2 * seq..3 * seq].fill(true); // nothing to attend to
        let padding = Tensor::<2, Bool>::from_data(TensorData::new(padded, [batch, seq]), &device);
        let bias = random([heads, 2 * seq - 1], &device);
        for (padding, bias) in [
            (None, None),
            (Some(padding.clone()), None),
            (Some(padding), Some(bias.clone())),
        ] {
            let fused =
                fused_self_attention(&q, &k, &v, heads, 0.35, padding.as_ref(), bias.as_ref())
                    .expect("flex f32 takes the fused path");
            let expected = reference(q.clone(), k.clone(), v.clone(), heads, 0.35, padding, bias);
            fused
                .into_data()
                .assert_approx_eq::<f32>(&expected.into_data(), Tolerance::absolute(1e-5));
        }
    }

    #[test]
    fn attention_reads_strided_projections() {
        let device = Device::flex();
        // Slices of a wider tensor: row stride larger than the width.
        let qkv = random([2, 9, 3 * 16], &device);
        let q = qkv.clone().slice([0..2, 0..9, 0..16]);
        let k = qkv.clone().slice([0..2, 0..9, 16..32]);
        let v = qkv.slice([0..2, 0..9, 32..48]);
        let fused = fused_self_attention(&q, &k, &v, 4, 0.5, None, None).unwrap();
        let expected = reference(q, k, v, 4, 0.5, None, None);
        fused
            .into_data()
            .assert_approx_eq::<f32>(&expected.into_data(), Tolerance::absolute(1e-5));
    }

    #[test]
    fn autodiff_and_other_dtypes_take_burns_path() {
        let device = Device::flex().autodiff();
        let q = random([1, 4, 8], &device);
        assert!(fused_self_attention(&q, &q, &q, 2, 1.0, None, None).is_none());
        let half = random([1, 4, 8], &Device::flex()).cast(burn::tensor::DType::F16);
        assert!(fused_self_attention(&half, &half, &half, 2, 1.0, None, None).is_none());
    }

    #[test]
    fn linear_matches_burns_op_for_every_epilogue_and_a_transposed_weight() {
        let device = Device::flex();
        let x = random([37, 20], &device);
        let weight = random([30, 20], &device).transpose(); // [20, 30], strided
        let bias = random([30], &device);
        for epilogue in [Epilogue::None, Epilogue::Gelu, Epilogue::Relu] {
            for bias in [None, Some(bias.clone())] {
                let fused = flex::linear(&x, &weight, bias.as_ref(), epilogue).unwrap();
                let plain = burn::tensor::module::linear(x.clone(), weight.clone(), bias);
                let expected = match epilogue {
                    Epilogue::None => plain,
                    Epilogue::Gelu => activation::gelu(plain),
                    Epilogue::Relu => activation::relu(plain),
                };
                fused
                    .into_data()
                    .assert_approx_eq::<f32>(&expected.into_data(), Tolerance::absolute(1e-5));
            }
        }
    }
}
