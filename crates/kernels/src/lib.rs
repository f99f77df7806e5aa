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
//! - [`MatmulPrecision`]: whether [`linear`] may round its operands to bf16 and multiply them
//!   on the CPU's AMX units (f32 accumulation), set per thread with [`with_matmul_precision`].

#[cfg(feature = "flex")]
mod flex;
pub mod math;

use std::cell::Cell;

use burn::tensor::{Bool, Tensor, activation};

/// How [`linear`] multiplies `f32` matrices on flex.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum MatmulPrecision {
    /// f32 operands and sums: the reference.
    #[default]
    F32,
    /// Operands rounded to bf16 (8 bits of mantissa), products summed in f32, on Intel AMX
    /// where the CPU has it (`torch.set_float32_matmul_precision("medium")`); f32 elsewhere
    /// (see [`bf16_matmul_available`]). Everything outside the products stays f32.
    Bf16,
}

impl std::fmt::Display for MatmulPrecision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::F32 => "f32",
            Self::Bf16 => "bf16",
        })
    }
}

impl std::str::FromStr for MatmulPrecision {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.to_ascii_lowercase().as_str() {
            "f32" | "fp32" | "float32" | "highest" => Ok(Self::F32),
            "bf16" | "bfloat16" | "medium" => Ok(Self::Bf16),
            _ => Err(format!(
                "unknown matrix-product precision '{s}' (expected f32 or bf16)"
            )),
        }
    }
}

thread_local! {
    static MATMUL_PRECISION: Cell<MatmulPrecision> = const { Cell::new(MatmulPrecision::F32) };
}

/// Runs `f` with [`linear`] on this thread multiplying at `precision`, then restores the
/// previous setting (also when `f` panics). Per thread, so concurrent jobs and tests do not
/// see each other's setting.
pub fn with_matmul_precision<R>(precision: MatmulPrecision, f: impl FnOnce() -> R) -> R {
    struct Restore(MatmulPrecision);
    impl Drop for Restore {
        fn drop(&mut self) {
            MATMUL_PRECISION.with(|p| p.set(self.0));
        }
    }
    let _restore = Restore(MATMUL_PRECISION.with(|p| p.replace(precision)));
    f()
}

/// This thread's [`MatmulPrecision`].
pub fn matmul_precision() -> MatmulPrecision {
    MATMUL_PRECISION.with(Cell::get)
}

/// Whether [`MatmulPrecision::Bf16`] has a hardware path in this process: a flex build on an
/// x86_64 Linux CPU with AMX-BF16 whose kernel grants the tile registers.
pub fn bf16_matmul_available() -> bool {
    #[cfg(feature = "flex")]
    return flex::amx::available();
    #[cfg(not(feature = "flex"))]
    false
}

/// Whether [`linear`]'s products on `device` run in bf16 under [`MatmulPrecision::Bf16`]:
/// [`bf16_matmul_available`], and `device` is flex computing in f32 (elsewhere they are the
/// backend's own products in its own precision).
pub fn bf16_products_on(device: &burn::tensor::Device) -> bool {
    bf16_matmul_available() && fused_on(device)
}

/// Whether `f32` tensors on `device` take the fused kernels ([`fused_self_attention`],
/// [`linear`]): flex, outside autodiff, in a build with them. Elsewhere attention
/// materialises every score.
pub fn fused_on(device: &burn::tensor::Device) -> bool {
    #[cfg(feature = "flex")]
    return flex::f32_primitive(&Tensor::<1>::zeros([1], device)).is_some();
    #[cfg(not(feature = "flex"))]
    {
        let _ = device;
        false
    }
}

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
/// On flex in `f32` it is one threaded product with the bias and activation fused; under
/// autodiff (without gradient checkpointing) that is recorded as one operation whose backward
/// pass is threaded products too.
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
    if let Some(output) = flex::linear(&x, &weight, bias.as_ref(), epilogue)
        .or_else(|| flex::tracked_linear(&x, &weight, bias.as_ref(), epilogue))
    {
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
/// tensors are not flex `f32` (the caller then uses burn's `attention`).
///
/// Under autodiff (training on flex, without gradient checkpointing) it is recorded as one
/// operation with a backward pass of our own, which recomputes the probabilities tile by tile
/// instead of storing them. It has no dropout: a caller that drops attention probabilities in
/// training takes burn's op.
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
    return flex::self_attention(query, key, value, heads, scale, key_padding, relative_bias)
        .or_else(|| {
            flex::tracked_self_attention(
                query,
                key,
                value,
                heads,
                scale,
                key_padding,
                relative_bias,
            )
        });
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
    fn checkpointing_and_other_dtypes_take_burns_path() {
        let device = Device::flex().autodiff().gradient_checkpointing();
        let q = random([1, 4, 8], &device);
        assert!(fused_self_attention(&q, &q, &q, 2, 1.0, None, None).is_none());
        let half = random([1, 4, 8], &Device::flex()).cast(burn::tensor::DType::F16);
        assert!(fused_self_attention(&half, &half, &half, 2, 1.0, None, None).is_none());
    }

    #[test]
    fn attention_gradients_match_burns_op_with_padding_holes_and_relative_bias() {
        let device = Device::flex().autodiff();
        // Several query tiles per head, a hole, padding at the end, a sequence of one real key.
        let (batch, seq, heads, width) = (3, 150, 3, 24);
        let leaf = |shape: [usize; 3]| random(shape, &device).require_grad();
        let (q, k, v) = (
            leaf([batch, seq, width]),
            leaf([batch, seq, width]),
            leaf([batch, seq, width]),
        );
        let bias = random([heads, 2 * seq - 1], &device).require_grad();
        let mut padded = vec![false; batch * seq];
        padded[seq - 7..seq].fill(true);
        padded[seq + 40] = true;
        padded[seq + 120..2 * seq].fill(true);
        padded[2 * seq + 1..].fill(true);
        let padding =
            Tensor::<2, Bool>::from_data(TensorData::new(padded.clone(), [batch, seq]), &device);
        // A loss whose gradient differs at every output element.
        let weights = random([batch, seq, width], &device);

        // A sequence with nothing to attend to gets a zero context and sends nothing back
        // (burn's decomposed attention gives NaN gradients there, so it is checked alone).
        padded[2 * seq] = true;
        let none_real =
            Tensor::<2, Bool>::from_data(TensorData::new(padded, [batch, seq]), &device);
        let fused = fused_self_attention(&q, &k, &v, heads, 0.3, Some(&none_real), None).unwrap();
        let grads = (fused * weights.clone()).sum().backward();
        for input in [&q, &k, &v] {
            let grad = input.grad(&grads).unwrap();
            let values = grad.clone().into_data().try_to_vec::<f32>().unwrap();
            assert!(values.iter().all(|x| x.is_finite()));
            let last = grad.slice([2..3, 0..seq, 0..width]).into_data();
            assert!(
                last.iter::<f32>().all(|x| x == 0.0),
                "no gradient from nothing"
            );
        }
        for (padding, bias) in [
            (None, None),
            (Some(padding.clone()), None),
            (Some(padding), Some(bias)),
        ] {
            let fused =
                fused_self_attention(&q, &k, &v, heads, 0.3, padding.as_ref(), bias.as_ref())
                    .expect("autodiff flex f32 takes the fused path");
            let expected = reference(
                q.clone(),
                k.clone(),
                v.clone(),
                heads,
                0.3,
                padding,
                bias.clone(),
            );
            fused
                .to_data()
                .assert_approx_eq::<f32>(&expected.to_data(), Tolerance::absolute(1e-5));
            let got = (fused * weights.clone()).sum().backward();
            let want = (expected * weights.clone()).sum().backward();
            for (name, input) in [("query", &q), ("key", &k), ("value", &v)] {
                assert_same_gradient(name, input, &got, &want);
            }
            if let Some(bias) = &bias {
                assert_same_gradient("bias", bias, &got, &want);
            }
        }
    }

    #[test]
    fn linear_gradients_match_burns_ops_for_every_epilogue() {
        let device = Device::flex().autodiff();
        // Rows over several chunks of the bias sum, a transposed (strided) weight.
        let x = random([700, 20], &device).require_grad();
        let weight = random([30, 20], &device).require_grad();
        let bias = random([30], &device).require_grad();
        let weights = random([700, 30], &device);
        for epilogue in [Epilogue::None, Epilogue::Gelu, Epilogue::Relu] {
            for bias in [None, Some(&bias)] {
                let fused = flex::tracked_linear(&x, &weight.clone().transpose(), bias, epilogue)
                    .expect("autodiff flex f32 takes the fused path");
                let plain = burn::tensor::module::linear(
                    x.clone(),
                    weight.clone().transpose(),
                    bias.cloned(),
                );
                let expected = match epilogue {
                    Epilogue::None => plain,
                    Epilogue::Gelu => activation::gelu(plain),
                    Epilogue::Relu => activation::relu(plain),
                };
                fused
                    .to_data()
                    .assert_approx_eq::<f32>(&expected.to_data(), Tolerance::absolute(1e-5));
                let got = (fused * weights.clone()).sum().backward();
                let want = (expected * weights.clone()).sum().backward();
                assert_same_gradient("x", &x, &got, &want);
                assert_same_gradient("weight", &weight, &got, &want);
                if let Some(bias) = bias {
                    assert_same_gradient("bias", bias, &got, &want);
                }
            }
        }
    }

    fn assert_same_gradient<const D: usize>(
        name: &str,
        input: &Tensor<D>,
        got: &burn::tensor::Gradients,
        want: &burn::tensor::Gradients,
    ) {
        let grad = |grads| input.grad(grads).expect("a gradient").into_data();
        let (got, want) = (grad(got), grad(want));
        let largest = want.iter::<f32>().map(f32::abs).fold(0.0, f32::max);
        assert!(largest > 1e-3, "{name}: the gradient should not vanish");
        got.assert_approx_eq::<f32>(&want, Tolerance::absolute(1e-4));
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

    /// `x` with every value rounded to bf16 and back (burn rounds to nearest even, as AMX's
    /// inputs are rounded).
    fn bf16_rounded(x: Tensor<2>) -> Tensor<2> {
        x.cast(burn::tensor::DType::BF16)
            .cast(burn::tensor::DType::F32)
    }

    #[test]
    fn bf16_products_are_the_products_of_rounded_operands_or_f32_without_amx() {
        let device = Device::flex();
        // Edges in every direction (rows, k and columns not multiples of 32) and, for the
        // larger one, several tasks of row and column blocks.
        for (rows, d_in, d_out) in [(70, 45, 50), (300, 1000, 700)] {
            let x = random([rows, d_in], &device);
            let weight = random([d_out, d_in], &device).transpose(); // strided, as a torch weight
            let bias = random([d_out], &device);
            let run = |x: Tensor<2>, w: Tensor<2>| {
                linear(x, w, Some(bias.clone()), Epilogue::Gelu).into_data()
            };
            let f32_result = run(x.clone(), weight.clone());
            let bf16_result = with_matmul_precision(MatmulPrecision::Bf16, || {
                assert_eq!(matmul_precision(), MatmulPrecision::Bf16);
                run(x.clone(), weight.clone())
            });
            assert_eq!(matmul_precision(), MatmulPrecision::F32, "setting restored");
            if bf16_matmul_available() {
                // Exactly the rounded operands' product, up to the order of f32 sums ...
                let rounded = run(bf16_rounded(x), bf16_rounded(weight));
                bf16_result.assert_approx_eq::<f32>(&rounded, Tolerance::absolute(2e-4));
                // ... which is not the f32 product.
                let (a, b) = (
                    bf16_result.try_to_vec::<f32>().unwrap(),
                    f32_result.try_to_vec::<f32>().unwrap(),
                );
                let largest = a
                    .iter()
                    .zip(&b)
                    .map(|(a, b)| (a - b).abs())
                    .fold(0.0, f32::max);
                assert!(
                    largest > 1e-3,
                    "bf16 products should differ from f32 ones: {largest}"
                );
            } else {
                eprintln!("no AMX-BF16 here: checking that bf16 products fall back to f32");
                assert_eq!(bf16_result, f32_result);
            }
        }
    }

    #[test]
    fn attention_with_bf16_products_stays_close_to_f32_or_is_f32_without_amx() {
        let device = Device::flex();
        // Two query blocks and a partial one, keys past a block edge, a hole, a fully padded
        // sequence, a relative bias; head width 24 (not a whole tile).
        let (batch, seq, heads, width) = (3, 70, 2, 48);
        let q = random([batch, seq, width], &device);
        let k = random([batch, seq, width], &device);
        let v = random([batch, seq, width], &device);
        let mut padded = vec![false; batch * seq];
        padded[seq - 3..seq].fill(true);
        padded[seq + 10] = true;
        padded[2 * seq..].fill(true);
        let padding = Tensor::<2, Bool>::from_data(TensorData::new(padded, [batch, seq]), &device);
        let bias = random([heads, 2 * seq - 1], &device);
        let run = || {
            fused_self_attention(&q, &k, &v, heads, 0.3, Some(&padding), Some(&bias))
                .expect("flex f32 takes the fused path")
                .into_data()
        };
        let exact = run();
        let rounded = with_matmul_precision(MatmulPrecision::Bf16, run);
        if bf16_matmul_available() {
            // Operands and probabilities in bf16: about 3 significant digits.
            rounded.assert_approx_eq::<f32>(&exact, Tolerance::absolute(3e-2));
            assert_ne!(rounded, exact, "the bf16 path should have run");
            let zeros = rounded.try_to_vec::<f32>().unwrap()[2 * seq * width..].to_vec();
            assert!(
                zeros.iter().all(|&x| x == 0.0),
                "a padded sequence gets a zero context"
            );
        } else {
            eprintln!("no AMX-BF16 here: checking that bf16 products fall back to f32");
            assert_eq!(rounded, exact);
        }
    }
}
