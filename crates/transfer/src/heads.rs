//! The paper's supervised heads, as burn modules that run on every backend.
//!
//! Field names follow the authors' released secondary-structure checkpoint
//! (`feature_extractor`, `dssp3_classifier`, ...), so the weights map one to one.

use burn::config::Config;
use burn::module::Module;
use burn::nn::conv::{Conv1d, Conv1dConfig};
use burn::nn::{Dropout, DropoutConfig, Linear, LinearConfig, PaddingConfig1d};
use burn::tensor::activation::relu;
use burn::tensor::{Device, Tensor};

/// The per-residue CNN: `Conv(d -> 32, k 7) -> ReLU -> Dropout(0.25)`, then parallel
/// `Conv(32 -> k, k 7)` classifiers for 3 and 8 states (and optionally 2-class disorder).
#[derive(Config, Debug)]
pub struct ResidueHeadConfig {
    /// Width of the input features (the embedding width, 21 for one-hot).
    pub input_size: usize,
    /// Channels of the shared convolution.
    #[config(default = 32)]
    pub hidden_size: usize,
    /// Kernel of every convolution (odd; padded to keep the length).
    #[config(default = 7)]
    pub kernel_size: usize,
    /// Dropout after the shared convolution.
    #[config(default = 0.25)]
    pub dropout: f64,
    /// Adds the 2-class disorder classifier of the released heads.
    #[config(default = false)]
    pub disorder: bool,
}

/// See [`ResidueHeadConfig`].
#[derive(Module, Debug)]
pub struct ResidueHead {
    feature_extractor: Conv1d,
    dropout: Dropout,
    dssp3_classifier: Conv1d,
    dssp8_classifier: Conv1d,
    disorder_classifier: Option<Conv1d>,
}

impl ResidueHeadConfig {
    /// Builds the head on `device`.
    pub fn init(&self, device: &Device) -> ResidueHead {
        let half = self.kernel_size / 2;
        let conv = |from: usize, to: usize| {
            Conv1dConfig::new(from, to, self.kernel_size)
                .with_padding(PaddingConfig1d::Explicit(half, half))
                .init(device)
        };
        ResidueHead {
            feature_extractor: conv(self.input_size, self.hidden_size),
            dropout: DropoutConfig::new(self.dropout).init(),
            dssp3_classifier: conv(self.hidden_size, 3),
            dssp8_classifier: conv(self.hidden_size, 8),
            disorder_classifier: self.disorder.then(|| conv(self.hidden_size, 2)),
        }
    }
}

impl ResidueHead {
    /// Logits of each classifier (3-state, 8-state, then disorder if present).
    ///
    /// Hidden activations at padding are zeroed, so a protein gets the same logits in any
    /// padded batch as alone.
    ///
    /// # Shapes
    /// - `features`: `[B, L, d]`, zero at padding
    /// - `mask`: `[B, L]`, 1 for residues, 0 for padding
    /// - output: `[B, L, k]` per classifier
    pub fn forward(&self, features: Tensor<3>, mask: Tensor<2>) -> Vec<Tensor<3>> {
        let x = features.swap_dims(1, 2);
        let hidden = relu(self.feature_extractor.forward(x)) * mask.unsqueeze_dim::<3>(1);
        let hidden = self.dropout.forward(hidden);
        let mut classifiers = vec![&self.dssp3_classifier, &self.dssp8_classifier];
        classifiers.extend(self.disorder_classifier.as_ref());
        classifiers
            .into_iter()
            .map(|c| c.forward(hidden.clone()).swap_dims(1, 2))
            .collect()
    }
}

/// How residue features become one protein vector.
#[derive(Config, Debug, Copy, PartialEq, Eq)]
pub enum Pooling {
    /// Mean over residues (the paper's choice, best by ~14 points Q10 over min/max).
    Mean,
    /// Element-wise maximum over residues.
    Max,
    /// Element-wise minimum over residues.
    Min,
    /// The first row: the first residue (prottrans' per-residue files hold no [CLS]).
    First,
    /// Mean, max and min concatenated (3 d inputs).
    Concat,
}

impl Pooling {
    /// Width of the pooled vector for features of width `d`.
    pub fn output_size(self, d: usize) -> usize {
        if self == Pooling::Concat { 3 * d } else { d }
    }

    /// Pools residue features over the residues of each protein.
    ///
    /// # Shapes
    /// - `features`: `[B, L, d]`; `mask`: `[B, L]` -> `[B, d]` (`[B, 3d]` for concat)
    pub fn pool(self, features: Tensor<3>, mask: Tensor<2>) -> Tensor<2> {
        let [b, l, d] = features.dims();
        let mask3 = mask.clone().unsqueeze_dim::<3>(2);
        let padding = mask3.clone().equal_elem(0.0).expand([b, l, d]);
        let mean = || {
            let count = mask.clone().sum_dim(1).clamp_min(1.0);
            (features.clone() * mask3.clone())
                .sum_dim(1)
                .squeeze_dim::<2>(1)
                / count
        };
        let max = || {
            features
                .clone()
                .mask_fill(padding.clone(), f32::NEG_INFINITY)
                .max_dim(1)
                .squeeze_dim::<2>(1)
        };
        let min = || {
            features
                .clone()
                .mask_fill(padding.clone(), f32::INFINITY)
                .min_dim(1)
                .squeeze_dim::<2>(1)
        };
        match self {
            Pooling::Mean => mean(),
            Pooling::Max => max(),
            Pooling::Min => min(),
            Pooling::First => features.narrow(1, 0, 1).squeeze_dim::<2>(1),
            Pooling::Concat => Tensor::cat(vec![mean(), max(), min()], 1),
        }
    }
}

impl std::str::FromStr for Pooling {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "mean" => Ok(Pooling::Mean),
            "max" => Ok(Pooling::Max),
            "min" => Ok(Pooling::Min),
            "first" => Ok(Pooling::First),
            "concat" => Ok(Pooling::Concat),
            other => Err(format!(
                "unknown pooling '{other}': mean, max, min, first or concat"
            )),
        }
    }
}

/// The per-protein network: pooling -> `Linear(d -> 32)` -> Dropout(0.25) -> ReLU, then
/// `Linear(32 -> 10)` localisation and `Linear(32 -> 2)` membrane.
#[derive(Config, Debug)]
pub struct ProteinHeadConfig {
    /// Width of the input features.
    pub input_size: usize,
    /// Residue pooling.
    #[config(default = "Pooling::Mean")]
    pub pooling: Pooling,
    /// Width of the hidden layer.
    #[config(default = 32)]
    pub hidden_size: usize,
    /// Dropout after the hidden layer.
    #[config(default = 0.25)]
    pub dropout: f64,
}

/// See [`ProteinHeadConfig`].
#[derive(Module, Debug)]
pub struct ProteinHead {
    #[module(skip)]
    pooling: Pooling,
    feature_extractor: Linear,
    dropout: Dropout,
    location_classifier: Linear,
    membrane_classifier: Linear,
}

impl ProteinHeadConfig {
    /// Builds the head on `device`.
    pub fn init(&self, device: &Device) -> ProteinHead {
        ProteinHead {
            pooling: self.pooling,
            feature_extractor: LinearConfig::new(
                self.pooling.output_size(self.input_size),
                self.hidden_size,
            )
            .init(device),
            dropout: DropoutConfig::new(self.dropout).init(),
            location_classifier: LinearConfig::new(self.hidden_size, 10).init(device),
            membrane_classifier: LinearConfig::new(self.hidden_size, 2).init(device),
        }
    }
}

impl ProteinHead {
    /// Logits of localisation and membrane.
    ///
    /// # Shapes
    /// - `features`: `[B, L, d]`, zero at padding; `mask`: `[B, L]`
    /// - output: `[B, 10]` and `[B, 2]`
    pub fn forward(&self, features: Tensor<3>, mask: Tensor<2>) -> Vec<Tensor<2>> {
        let pooled = self.pooling.pool(features, mask);
        // The paper's order: dropout before the ReLU.
        let hidden = relu(self.dropout.forward(self.feature_extractor.forward(pooled)));
        vec![
            self.location_classifier.forward(hidden.clone()),
            self.membrane_classifier.forward(hidden),
        ]
    }
}

/// A dropout probability must be in [0, 1) (burn panics otherwise).
pub(crate) fn check_dropout(dropout: f64) -> Result<(), String> {
    if (0.0..1.0).contains(&dropout) {
        Ok(())
    } else {
        Err(format!("the dropout must be in [0, 1), got {dropout}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use burn::tensor::{Distribution, TensorData};

    fn device() -> Device {
        Device::default()
    }

    fn padded(lengths: &[usize], d: usize) -> (Tensor<3>, Tensor<2>) {
        let device = device();
        let l = *lengths.iter().max().unwrap();
        let features = Tensor::<3>::random(
            [lengths.len(), l, d],
            Distribution::Normal(0.0, 1.0),
            &device,
        );
        let mask: Vec<f32> = lengths
            .iter()
            .flat_map(|&n| (0..l).map(move |i| if i < n { 1.0 } else { 0.0 }))
            .collect();
        let mask = Tensor::<2>::from_data(TensorData::new(mask, [lengths.len(), l]), &device);
        (features * mask.clone().unsqueeze_dim::<3>(2), mask)
    }

    #[test]
    fn residue_head_padded_batch_equals_single() {
        let device = device();
        let head = ResidueHeadConfig::new(8).with_disorder(true).init(&device);
        let (features, mask) = padded(&[5, 12], 8);
        let batch = head.forward(features.clone(), mask);
        assert_eq!(batch.len(), 3);
        assert_eq!(batch[1].dims(), [2, 12, 8]);
        let single = features.narrow(0, 0, 1).narrow(1, 0, 5);
        let alone = head.forward(single, Tensor::ones([1, 5], &device));
        let diff = (batch[0].clone().narrow(0, 0, 1).narrow(1, 0, 5) - alone[0].clone())
            .abs()
            .max()
            .into_scalar::<f32>();
        assert!(diff < 1e-5, "padding leaks into residues: {diff}");
    }

    #[test]
    fn pooling_ignores_padding() {
        let device = device();
        let features = Tensor::<3>::from_data([[[1.0, -2.0], [3.0, 4.0], [0.0, 0.0]]], &device);
        let mask = Tensor::<2>::from_data([[1.0, 1.0, 0.0]], &device);
        let pooled = |p: Pooling| {
            p.pool(features.clone(), mask.clone())
                .into_data()
                .try_into_vec_as::<f32>()
                .unwrap()
        };
        assert_eq!(pooled(Pooling::Mean), vec![2.0, 1.0]);
        assert_eq!(pooled(Pooling::Max), vec![3.0, 4.0]);
        assert_eq!(pooled(Pooling::Min), vec![1.0, -2.0]);
        assert_eq!(pooled(Pooling::First), vec![1.0, -2.0]);
        assert_eq!(pooled(Pooling::Concat), vec![2.0, 1.0, 3.0, 4.0, 1.0, -2.0]);
        let head = ProteinHeadConfig::new(2)
            .with_pooling(Pooling::Concat)
            .init(&device);
        let logits = head.forward(features, mask);
        assert_eq!((logits[0].dims(), logits[1].dims()), ([1, 10], [1, 2]));
    }
}
