//! Examples (features + labels) and the batcher that pads them for the heads.

use std::sync::Arc;

use burn::data::dataloader::batcher::Batcher;
use burn::tensor::{Device, Int, Tensor, TensorData};
use ndarray::Array2;

use crate::labels::UNKNOWN;

/// One protein: its feature matrix `[L, d]` (`[1, d]` when pooled) and labels per task.
#[derive(Debug, Clone)]
pub struct Example {
    /// Features, shared so that batching copies no more than once.
    pub features: Arc<Array2<f32>>,
    /// Per task: per-residue labels (length L) or one per-protein label.
    pub labels: Vec<Vec<i64>>,
}

/// A padded batch.
#[derive(Debug, Clone)]
pub struct HeadBatch {
    /// `[B, L, d]`, zero at padding.
    pub features: Tensor<3>,
    /// `[B, L]`, 1 at residues.
    pub mask: Tensor<2>,
    /// Per task: `[B * L]` (per residue, padding [`UNKNOWN`]) or `[B]` (per protein).
    pub targets: Vec<Tensor<1, Int>>,
}

/// Pads [`Example`]s into a [`HeadBatch`].
#[derive(Debug, Clone, Copy)]
pub struct HeadBatcher {
    /// Labels are per residue (secondary structure) rather than per protein.
    pub per_residue: bool,
}

impl HeadBatcher {
    /// Builds the batch on `device`.
    pub fn build(&self, items: &[Example], device: &Device) -> HeadBatch {
        let b = items.len();
        let l = items
            .iter()
            .map(|e| e.features.nrows())
            .max()
            .unwrap_or(1)
            .max(1);
        let d = items.first().map_or(1, |e| e.features.ncols());
        let mut features = vec![0f32; b * l * d];
        let mut mask = vec![0f32; b * l];
        for (row, example) in items.iter().enumerate() {
            let n = example.features.nrows();
            for (i, residue) in example.features.rows().into_iter().enumerate() {
                let start = (row * l + i) * d;
                for (slot, &value) in features[start..start + d].iter_mut().zip(residue.iter()) {
                    *slot = value;
                }
            }
            mask[row * l..row * l + n].fill(1.0);
        }
        let labels: Vec<&[Vec<i64>]> = items.iter().map(|e| e.labels.as_slice()).collect();
        let targets = pad_targets(&labels, self.per_residue, l, device);
        HeadBatch {
            features: Tensor::from_data(TensorData::new(features, [b, l, d]), device),
            mask: Tensor::from_data(TensorData::new(mask, [b, l]), device),
            targets,
        }
    }
}

/// Per task, the targets of a batch: `[B * width]` per residue (padding [`UNKNOWN`]) or `[B]`
/// per protein, from each protein's labels (one vector per task).
pub fn pad_targets(
    labels: &[&[Vec<i64>]],
    per_residue: bool,
    width: usize,
    device: &Device,
) -> Vec<Tensor<1, Int>> {
    let tasks = labels.first().map_or(0, |l| l.len());
    (0..tasks)
        .map(|task| {
            let values: Vec<i64> = if per_residue {
                let mut values = vec![UNKNOWN; labels.len() * width];
                for (row, protein) in labels.iter().enumerate() {
                    let labels = &protein[task];
                    values[row * width..row * width + labels.len()].copy_from_slice(labels);
                }
                values
            } else {
                labels
                    .iter()
                    .map(|protein| protein[task].first().copied().unwrap_or(UNKNOWN))
                    .collect()
            };
            let n = values.len();
            Tensor::from_data(TensorData::new(values, [n]), device)
        })
        .collect()
}

impl Batcher<Example, HeadBatch> for HeadBatcher {
    fn batch(&self, items: Vec<Example>, device: &Device) -> HeadBatch {
        self.build(&items, device)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pads_features_masks_and_labels() {
        let example = |rows: usize, labels: Vec<i64>| Example {
            features: Arc::new(Array2::from_elem((rows, 2), 1.0)),
            labels: vec![labels],
        };
        let batch = HeadBatcher { per_residue: true }.build(
            &[example(1, vec![2]), example(3, vec![0, 1, UNKNOWN])],
            &Device::default(),
        );
        assert_eq!(batch.features.dims(), [2, 3, 2]);
        assert_eq!(
            batch.mask.into_data().try_into_vec_as::<f32>().unwrap(),
            vec![1.0, 0.0, 0.0, 1.0, 1.0, 1.0]
        );
        assert_eq!(
            batch.targets[0]
                .clone()
                .into_data()
                .try_into_vec_as::<i64>()
                .unwrap(),
            vec![2, -1, -1, 0, 1, -1]
        );
        assert_eq!(batch.features.sum().into_scalar::<f32>(), 8.0);
    }
}
