//! A burn [`Dataset`] whose items are planned batches of residue ids.
//!
//! Sequences stay in the [`SequenceStore`] as bytes; an item is one batch (use the data loader
//! with `batch_size(1)`), cropped on the fly. Objectives turn a [`ResidueBatch`] into tensors.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use burn::data::dataset::{Dataset, DatasetError};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use crate::batching::BatchPlanner;
use crate::error::DataError;
use crate::store::SequenceStore;

/// How sequences longer than the training length are cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CropMode {
    /// A random window, drawn anew each time the batch is read (training).
    Random,
    /// The first residues (validation: the same input every time).
    Start,
}

/// One batch of residue-id sequences, cropped, without special tokens.
#[derive(Debug, Clone, PartialEq)]
pub struct ResidueBatch {
    /// Residue ids of each sequence.
    pub sequences: Vec<Vec<u32>>,
    /// A seed for the objective's randomness (masking), fixed per read.
    pub seed: u64,
}

impl ResidueBatch {
    /// Length of the longest sequence.
    pub fn max_len(&self) -> usize {
        self.sequences.iter().map(Vec::len).max().unwrap_or(0)
    }

    /// Total residues in the batch.
    pub fn residues(&self) -> usize {
        self.sequences.iter().map(Vec::len).sum()
    }

    /// One batch of all of `items`' sequences (data loaders hand objectives a list of planned
    /// batches; with batch size 1 it holds one), seeded from all of theirs.
    pub fn merge(mut items: Vec<ResidueBatch>) -> ResidueBatch {
        if items.len() == 1
            && let Some(only) = items.pop()
        {
            return only;
        }
        ResidueBatch {
            seed: items.iter().fold(0, |s, b| s ^ b.seed.rotate_left(7)),
            sequences: items.into_iter().flat_map(|b| b.sequences).collect(),
        }
    }
}

/// Sequences from a store, grouped into length-sorted batches under a token budget.
#[derive(Debug)]
pub struct BatchedSequences {
    store: Arc<SequenceStore>,
    batches: Vec<Vec<usize>>,
    max_residues: usize,
    crop: CropMode,
    seed: u64,
    reads: AtomicU64,
}

impl BatchedSequences {
    /// Plans the batches of `store` with `planner`.
    pub fn new(
        store: Arc<SequenceStore>,
        planner: &BatchPlanner,
        crop: CropMode,
        seed: u64,
    ) -> Result<Self, DataError> {
        let batches = planner.plan(&store.lengths(), seed)?;
        Ok(Self {
            store,
            batches,
            max_residues: planner.max_residues,
            crop,
            seed,
            reads: AtomicU64::new(0),
        })
    }

    /// The planned batches (indices into the store).
    pub fn batches(&self) -> &[Vec<usize>] {
        &self.batches
    }

    /// The underlying store.
    pub fn store(&self) -> &SequenceStore {
        &self.store
    }

    /// Batch `index` with the randomness (random crops, the objective's seed) of draw `draw`:
    /// the same draw gives the same batch whatever order or thread it is read in, which makes
    /// a resumed training run read exactly what an uninterrupted one would.
    pub fn get_drawn(&self, index: usize, draw: u64) -> Result<ResidueBatch, DatasetError> {
        self.batch(index, self.rng_for(index, draw))
    }

    fn rng_for(&self, index: usize, read: u64) -> StdRng {
        let read = match self.crop {
            CropMode::Random => read,
            CropMode::Start => 0,
        };
        // SplitMix-style mixing so neighbouring indices get unrelated streams.
        let mut z =
            self.seed ^ (index as u64).wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ read.rotate_left(32);
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        StdRng::seed_from_u64(z ^ (z >> 31))
    }

    fn batch(&self, index: usize, mut rng: StdRng) -> Result<ResidueBatch, DatasetError> {
        let batch = self.batches.get(index).ok_or_else(|| {
            DatasetError::new(DataError::Batching(format!(
                "batch {index} out of range ({} batches)",
                self.batches.len()
            )))
        })?;
        let sequences = batch
            .iter()
            .map(|&i| {
                let residues = self.store.residues(i);
                let start = match self.crop {
                    CropMode::Random if residues.len() > self.max_residues => {
                        rng.random_range(0..=residues.len() - self.max_residues)
                    }
                    _ => 0,
                };
                let end = (start + self.max_residues).min(residues.len());
                residues[start..end].iter().map(|&r| u32::from(r)).collect()
            })
            .collect();
        Ok(ResidueBatch {
            sequences,
            seed: rng.random(),
        })
    }
}

impl Dataset<ResidueBatch> for BatchedSequences {
    /// Each read of a randomly cropped batch is a new draw (see [`Self::get_drawn`]).
    fn get(&self, index: usize) -> Result<ResidueBatch, DatasetError> {
        let read = self.reads.fetch_add(1, Ordering::Relaxed);
        self.get_drawn(index, read)
    }

    fn len(&self) -> usize {
        self.batches.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store() -> Arc<SequenceStore> {
        let mut store = SequenceStore::new();
        for (i, len) in [3usize, 50, 7, 120, 9].into_iter().enumerate() {
            let ids: Vec<u32> = (0..len).map(|p| 5 + (p % 20) as u32).collect();
            store.push(format!("s{i}"), &ids);
        }
        Arc::new(store)
    }

    fn planner() -> BatchPlanner {
        BatchPlanner {
            max_tokens: 64,
            max_sequences: 8,
            max_residues: 30,
            special_tokens: 2,
        }
    }

    #[test]
    fn crops_long_sequences_to_a_window_of_the_original() {
        let store = store();
        let data = BatchedSequences::new(store.clone(), &planner(), CropMode::Random, 1).unwrap();
        let mut starts = std::collections::HashSet::new();
        for _ in 0..30 {
            for b in 0..data.len() {
                let batch = data.get(b).unwrap();
                for (seq, &i) in batch.sequences.iter().zip(&data.batches()[b]) {
                    let original: Vec<u32> = store.residues(i).iter().map(|&r| r.into()).collect();
                    assert_eq!(seq.len(), original.len().min(30));
                    let start = (0..=original.len() - seq.len())
                        .find(|&s| original[s..s + seq.len()] == seq[..])
                        .expect("a window of the original");
                    if i == 3 {
                        starts.insert(start % 20);
                    }
                }
            }
        }
        assert!(starts.len() > 3, "random crops move: {starts:?}");
    }

    #[test]
    fn start_crop_is_deterministic() {
        let data = BatchedSequences::new(store(), &planner(), CropMode::Start, 1).unwrap();
        for b in 0..data.len() {
            assert_eq!(data.get(b).unwrap(), data.get(b).unwrap());
        }
        let total: usize = (0..data.len())
            .map(|b| data.get(b).unwrap().sequences.len())
            .sum();
        assert_eq!(total, 5);
    }
}
