//! Rotary position embeddings (RoFormer; ESM-2 uses them): each query and key is rotated
//! pairwise by angles proportional to its position, so their dot product depends only on the
//! distance between the two.

use burn::tensor::{Device, Tensor, TensorData};

/// The cosines and sines of positions `0..seq` for one head width, as `transformers` builds
/// them: frequencies `theta^(-2i / head_dim)`, the angle table repeated over both halves.
#[derive(Debug, Clone)]
pub struct RotaryEmbedding {
    cos: Tensor<4>,
    sin: Tensor<4>,
}

impl RotaryEmbedding {
    /// Angles for positions `0..seq`.
    pub fn new(seq: usize, head_dim: usize, theta: f64, device: &Device) -> Self {
        let half = head_dim / 2;
        // f32 throughout, as transformers computes `inv_freq` and the angles.
        let inv_freq: Vec<f32> = (0..half)
            .map(|i| 1.0 / (theta as f32).powf((2 * i) as f32 / head_dim as f32))
            .collect();
        let mut cos = Vec::with_capacity(seq * head_dim);
        let mut sin = Vec::with_capacity(seq * head_dim);
        for position in 0..seq {
            for _half in 0..2 {
                for &f in &inv_freq {
                    let angle = position as f32 * f;
                    cos.push(angle.cos());
                    sin.push(angle.sin());
                }
            }
        }
        let table = |values: Vec<f32>| {
            Tensor::<4>::from_data(TensorData::new(values, [1, seq, 1, head_dim]), device)
        };
        Self {
            cos: table(cos),
            sin: table(sin),
        }
    }

    /// Rotates queries or keys: `x * cos + rotate_half(x) * sin`, where `rotate_half` swaps the
    /// two halves of each head and negates the new first half.
    ///
    /// # Shapes
    /// - x: `[batch, seq, heads, head_dim]` -> same
    pub fn apply(&self, x: Tensor<4>) -> Tensor<4> {
        let [batch, seq, heads, head_dim] = x.dims();
        let half = head_dim / 2;
        let first = x.clone().slice([0..batch, 0..seq, 0..heads, 0..half]);
        let second = x
            .clone()
            .slice([0..batch, 0..seq, 0..heads, half..head_dim]);
        let rotated = Tensor::cat(vec![second.neg(), first], 3);
        let cos = self.cos.clone().slice([0..1, 0..seq]).cast(x.dtype());
        let sin = self.sin.clone().slice([0..1, 0..seq]).cast(x.dtype());
        x * cos + rotated * sin
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Distribution, Tolerance};

    /// The score of a rotated query and key depends on their distance, not their positions.
    #[test]
    fn scores_depend_on_distance_only() {
        let device = Device::flex();
        let rotary = RotaryEmbedding::new(8, 4, 10000.0, &device);
        let q = Tensor::<4>::random([1, 1, 1, 4], Distribution::Normal(0.0, 1.0), &device);
        let k = Tensor::<4>::random([1, 1, 1, 4], Distribution::Normal(0.0, 1.0), &device);
        let at = |x: &Tensor<4>, position: usize| {
            let x = x.clone().expand([1, 8, 1, 4]);
            rotary.apply(x).slice([0..1, position..position + 1])
        };
        let score = |i, j| (at(&q, i) * at(&k, j)).sum();
        score(1, 3)
            .into_data()
            .assert_approx_eq::<f32>(&score(4, 6).into_data(), Tolerance::default());
        // Position 0 is not rotated.
        at(&q, 0)
            .into_data()
            .assert_approx_eq::<f32>(&q.into_data(), Tolerance::default());
    }
}
