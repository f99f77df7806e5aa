//! Element-wise math over `f32` slices, written so LLVM vectorises it, and compiled three
//! times: for AVX-512, for AVX2 + FMA and for the baseline target. The widest one the CPU
//! supports is picked at run time, so one binary runs everywhere and uses what it finds.
//!
//! The scalar building blocks (`exp`, `erf`) are branch-free polynomial approximations
//! (Cephes' `expf`, Abramowitz and Stegun 7.1.26 for `erf`): `exp` within 2.5e-7 relative,
//! `erf` within 4e-7 absolute of the exact values (tested at the bottom).

/// Which instruction set the dispatch found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Simd {
    /// AVX-512 F.
    Avx512,
    /// AVX2 with FMA.
    Avx2,
    /// Whatever the compile target guarantees (SSE2 on x86-64).
    Baseline,
}

/// The instruction set the kernels use on this CPU.
pub fn simd() -> Simd {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f") {
            return Simd::Avx512;
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            return Simd::Avx2;
        }
    }
    Simd::Baseline
}

/// Defines `pub fn $name(args)` that runs `$body` compiled for the widest available SIMD.
macro_rules! dispatched {
    ($(#[$doc:meta])* fn $name:ident($($arg:ident: $ty:ty),*) $body:block) => {
        $(#[$doc])*
        pub fn $name($($arg: $ty),*) {
            #[inline(always)]
            fn body($($arg: $ty),*) $body
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f,avx2,fma")]
                unsafe fn avx512($($arg: $ty),*) { body($($arg),*) }
                #[target_feature(enable = "avx2,fma")]
                unsafe fn avx2($($arg: $ty),*) { body($($arg),*) }
                match simd() {
                    // SAFETY: `simd()` checked that the CPU has these features.
                    Simd::Avx512 => return unsafe { avx512($($arg),*) },
                    Simd::Avx2 => return unsafe { avx2($($arg),*) },
                    Simd::Baseline => {}
                }
            }
            body($($arg),*)
        }
    };
}

const LANES: usize = 16;

/// `e^x`, 0 below -87.3 (where `f32` stops being normal), clamped at 88.37 above.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    let clamped = x.clamp(-87.336_54, 88.376_26);
    let n = (clamped * LOG2E + 0.5).floor();
    let r = clamped - n * LN2_HI - n * LN2_LO;
    let p = 1.987_569_1e-4_f32;
    let p = p.mul_add(r, 1.398_199_9e-3);
    let p = p.mul_add(r, 8.333_452e-3);
    let p = p.mul_add(r, 4.166_579_6e-2);
    let p = p.mul_add(r, 1.666_666_5e-1);
    let p = p.mul_add(r, 0.5);
    let p = p.mul_add(r * r, r) + 1.0;
    // 2^n without a float-to-int conversion (which does not vectorise): adding 1.5 * 2^23 puts
    // the integer n + 127 in the low mantissa bits; shifted into the exponent field they scale.
    let scale = f32::from_bits((n + 127.0 + 12_582_912.0).to_bits() << 23);
    if x < -87.336_54 { 0.0 } else { p * scale }
}

/// The error function, absolute error below 4e-7 (1.5e-7 from the approximation, the rest
/// from `f32` rounding).
#[inline(always)]
pub fn erf(x: f32) -> f32 {
    let a = x.abs();
    let t = 1.0 / 0.327_591_1_f32.mul_add(a, 1.0);
    let poly = 1.061_405_4_f32;
    let poly = poly.mul_add(t, -1.453_152_1);
    let poly = poly.mul_add(t, 1.421_413_7);
    let poly = poly.mul_add(t, -0.284_496_74);
    let poly = poly.mul_add(t, 0.254_829_6);
    let y = 1.0 - poly * t * exp(-a * a);
    if x < 0.0 { -y } else { y }
}

/// Exact (erf) GELU, as `torch.nn.functional.gelu` without approximation.
#[inline(always)]
pub fn gelu(x: f32) -> f32 {
    0.5 * x * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2))
}

dispatched! {
    /// Softmax of one row in place: `row[j] <- exp(row[j] - max) / sum`. Entries at `-inf`
    /// (masked) become 0. A row that is all `-inf` becomes uniform, as an additive mask of
    /// `f32::MIN` gives in `transformers`.
    fn softmax_in_place(row: &mut [f32]) {
        let mut lanes = [f32::NEG_INFINITY; LANES];
        let mut chunks = row.chunks_exact(LANES);
        for chunk in &mut chunks {
            for (m, &x) in lanes.iter_mut().zip(chunk) {
                *m = if x > *m { x } else { *m };
            }
        }
        let mut max = f32::NEG_INFINITY;
        for &x in lanes.iter().chain(chunks.remainder()) {
            max = if x > max { x } else { max };
        }
        if max == f32::NEG_INFINITY {
            let uniform = 1.0 / row.len() as f32;
            row.fill(uniform);
            return;
        }
        let mut sums = [0.0f32; LANES];
        let mut chunks = row.chunks_exact_mut(LANES);
        for chunk in &mut chunks {
            for (s, x) in sums.iter_mut().zip(chunk.iter_mut()) {
                *x = exp(*x - max);
                *s += *x;
            }
        }
        let mut sum: f32 = sums.iter().sum();
        for x in chunks.into_remainder() {
            *x = exp(*x - max);
            sum += *x;
        }
        let inverse = 1.0 / sum;
        for x in row.iter_mut() {
            *x *= inverse;
        }
    }
}

dispatched! {
    /// The softmax's backward pass for one row in place: given its probabilities `p` and the
    /// gradient `g` of the loss with respect to them, `g[j] <- p[j] * (g[j] - sum_k p[k] g[k])`,
    /// the gradient with respect to the scores.
    fn softmax_backward_in_place(probabilities: &[f32], gradient: &mut [f32]) {
        let mut sums = [0.0f32; LANES];
        let mut chunks = probabilities.chunks_exact(LANES).zip(gradient.chunks_exact(LANES));
        for (p, g) in &mut chunks {
            for ((s, p), g) in sums.iter_mut().zip(p).zip(g) {
                *s += p * g;
            }
        }
        let whole = probabilities.len() - probabilities.len() % LANES;
        let mut dot: f32 = sums.iter().sum();
        for (p, g) in probabilities[whole..].iter().zip(&gradient[whole..]) {
            dot += p * g;
        }
        for (g, p) in gradient.iter_mut().zip(probabilities) {
            *g = p * (*g - dot);
        }
    }
}

dispatched! {
    /// `row[j] += bias[j]`.
    fn add_in_place(row: &mut [f32], bias: &[f32]) {
        for (x, b) in row.iter_mut().zip(bias) {
            *x += *b;
        }
    }
}

/// Exact GELU and its derivative, `Φ(x) + x φ(x)`.
#[inline(always)]
pub fn gelu_with_slope(x: f32) -> (f32, f32) {
    const FRAC_1_SQRT_2PI: f32 = 0.398_942_3;
    let cdf = 0.5 * (1.0 + erf(x * std::f32::consts::FRAC_1_SQRT_2));
    let pdf = FRAC_1_SQRT_2PI * exp(-0.5 * x * x);
    (x * cdf, x.mul_add(pdf, cdf))
}

dispatched! {
    /// Exact GELU in place, with its derivative at each input written to `slopes`.
    fn gelu_with_slope_in_place(values: &mut [f32], slopes: &mut [f32]) {
        for (x, slope) in values.iter_mut().zip(slopes.iter_mut()) {
            (*x, *slope) = gelu_with_slope(*x);
        }
    }
}

dispatched! {
    /// ReLU in place, with its derivative (1 above zero, else 0) written to `slopes`.
    fn relu_with_slope_in_place(values: &mut [f32], slopes: &mut [f32]) {
        for (x, slope) in values.iter_mut().zip(slopes.iter_mut()) {
            let positive = *x > 0.0;
            *slope = if positive { 1.0 } else { 0.0 };
            *x = if positive { *x } else { 0.0 };
        }
    }
}

dispatched! {
    /// `values[j] *= factors[j]`.
    fn multiply_in_place(values: &mut [f32], factors: &[f32]) {
        for (x, f) in values.iter_mut().zip(factors) {
            *x *= *f;
        }
    }
}

dispatched! {
    /// Exact GELU in place.
    fn gelu_in_place(values: &mut [f32]) {
        for x in values.iter_mut() {
            *x = gelu(*x);
        }
    }
}

dispatched! {
    /// ReLU in place.
    fn relu_in_place(values: &mut [f32]) {
        for x in values.iter_mut() {
            *x = if *x > 0.0 { *x } else { 0.0 };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn libm_erf(x: f64) -> f64 {
        // erf by its Taylor series (|x| <= 3) or continued fraction tail; f64 is plenty.
        if x.abs() > 3.0 {
            let mut tail = 0.0;
            for k in (1..60).rev() {
                tail = (k as f64 / 2.0) / (x.abs() + tail);
            }
            let erfc = (-x * x).exp() / std::f64::consts::PI.sqrt() / (x.abs() + tail);
            return x.signum() * (1.0 - erfc);
        }
        let mut term = x;
        let mut sum = x;
        for n in 1..100 {
            term *= -x * x / n as f64;
            sum += term / (2 * n + 1) as f64;
        }
        sum * 2.0 / std::f64::consts::PI.sqrt()
    }

    #[test]
    fn exp_is_within_two_ulps_of_f64_and_zero_below_range() {
        let mut worst = 0.0f64;
        for i in -8700..=8800 {
            let x = i as f32 / 100.0;
            let reference = (x as f64).exp();
            let relative = ((exp(x) as f64 - reference) / reference).abs();
            worst = worst.max(relative);
        }
        assert!(worst < 2.5e-7, "worst relative error {worst:e}");
        assert_eq!(exp(f32::NEG_INFINITY), 0.0);
        assert_eq!(exp(-100.0), 0.0);
        assert!(exp(200.0).is_finite());
    }

    #[test]
    fn erf_and_gelu_follow_the_definitions() {
        let mut worst = 0.0f64;
        for i in -1000..=1000 {
            let x = i as f32 / 100.0;
            worst = worst.max((erf(x) as f64 - libm_erf(x as f64)).abs());
        }
        assert!(worst < 4e-7, "worst erf error {worst:e}");
        for x in [-6.0f32, -1.0, -0.1, 0.0, 0.3, 2.0, 9.0] {
            let reference = 0.5 * x as f64 * (1.0 + libm_erf(x as f64 / 2f64.sqrt()));
            assert!((gelu(x) as f64 - reference).abs() < 1e-6 * (1.0 + x.abs() as f64));
        }
    }

    #[test]
    fn gelu_slope_is_the_derivative() {
        for x in [-6.0f32, -1.3, -0.1, 0.0, 0.4, 1.7, 5.0] {
            let h = 1e-3f64;
            let g = |x: f64| 0.5 * x * (1.0 + libm_erf(x / 2f64.sqrt()));
            let numeric = (g(x as f64 + h) - g(x as f64 - h)) / (2.0 * h);
            let (value, slope) = gelu_with_slope(x);
            assert!((value - gelu(x)).abs() < 1e-7, "{x}");
            assert!(
                (slope as f64 - numeric).abs() < 1e-5,
                "{x}: {slope} vs {numeric}"
            );
        }
    }

    #[test]
    fn softmax_backward_is_the_jacobian_product() {
        let scores: Vec<f32> = (0..37).map(|i| (i as f32 * 0.61).cos() * 3.0).collect();
        let upstream: Vec<f32> = (0..37).map(|i| (i as f32 * 0.23).sin()).collect();
        let mut p = scores.clone();
        softmax_in_place(&mut p);
        let mut g = upstream.clone();
        softmax_backward_in_place(&p, &mut g);
        for (j, &got) in g.iter().enumerate() {
            // d softmax_k / d s_j = p_k (δ_kj − p_j)
            let want: f64 = (0..37)
                .map(|k| {
                    let delta = if k == j { 1.0 } else { 0.0 };
                    upstream[k] as f64 * p[k] as f64 * (delta - p[j] as f64)
                })
                .sum();
            assert!((got as f64 - want).abs() < 1e-6, "{j}: {got} vs {want}");
        }
    }

    #[test]
    fn softmax_handles_masks_and_lengths_of_every_remainder() {
        for len in [1usize, 3, 15, 16, 17, 40, 100] {
            let mut row: Vec<f32> = (0..len).map(|i| (i as f32 * 0.37).sin() * 5.0).collect();
            if len > 2 {
                row[1] = f32::NEG_INFINITY;
            }
            let reference: Vec<f64> = {
                let max = row.iter().fold(f64::NEG_INFINITY, |m, &x| m.max(x as f64));
                let e: Vec<f64> = row.iter().map(|&x| (x as f64 - max).exp()).collect();
                let s: f64 = e.iter().sum();
                e.iter().map(|x| x / s).collect()
            };
            softmax_in_place(&mut row);
            for (a, b) in row.iter().zip(&reference) {
                assert!((*a as f64 - b).abs() < 1e-6, "len {len}: {a} vs {b}");
            }
            if len > 2 {
                assert_eq!(row[1], 0.0);
            }
        }
        let mut masked = vec![f32::NEG_INFINITY; 5];
        softmax_in_place(&mut masked);
        assert!(masked.iter().all(|&p| (p - 0.2).abs() < 1e-7));
    }
}
