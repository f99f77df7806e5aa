//! Length-grouped batches under a padded-token budget.
//!
//! Sequences are sorted by (cropped) length, with ties broken at random, and cut greedily into
//! batches whose padded size `sequences x longest` stays within `max_tokens`, with at most
//! `max_sequences` sequences each. Grouping by length keeps padding, and so wasted compute, low.

use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use crate::error::DataError;

/// Plans batches of sequence indices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct BatchPlanner {
    /// Upper bound on `sequences in batch x longest framed sequence` (padded tokens).
    pub max_tokens: usize,
    /// Upper bound on sequences per batch.
    pub max_sequences: usize,
    /// Residues kept per sequence; longer sequences are cropped to this.
    pub max_residues: usize,
    /// Special tokens added around each sequence (e.g. 2 for `[CLS] .. [SEP]`).
    pub special_tokens: usize,
}

impl BatchPlanner {
    /// Checks that every sequence can be placed in some batch.
    pub fn validate(&self) -> Result<(), DataError> {
        if self.max_sequences == 0 || self.max_residues == 0 {
            return Err(DataError::Batching(
                "max_sequences and max_residues must be at least 1".into(),
            ));
        }
        let longest = self.max_residues + self.special_tokens;
        if self.max_tokens < longest {
            return Err(DataError::Batching(format!(
                "max_tokens ({}) is smaller than one cropped sequence ({} residues + {} special tokens)",
                self.max_tokens, self.max_residues, self.special_tokens
            )));
        }
        Ok(())
    }

    /// Padded length of a sequence of `residues` residues once cropped and framed.
    pub fn framed_length(&self, residues: usize) -> usize {
        residues.min(self.max_residues) + self.special_tokens
    }

    /// Groups `lengths.len()` sequences into batches of indices; every index appears exactly once.
    ///
    /// `seed` breaks ties among equal lengths, so different seeds give different batches.
    pub fn plan(&self, lengths: &[usize], seed: u64) -> Result<Vec<Vec<usize>>, DataError> {
        self.validate()?;
        let mut order: Vec<usize> = (0..lengths.len()).collect();
        order.shuffle(&mut StdRng::seed_from_u64(seed));
        // Stable sort keeps the shuffled order among equal lengths.
        order.sort_by_key(|&i| self.framed_length(lengths[i]));

        let mut batches = Vec::new();
        let mut current: Vec<usize> = Vec::new();
        for index in order {
            // Sorted ascending, so the newcomer is the longest of the batch.
            let longest = self.framed_length(lengths[index]);
            let fits = current.len() < self.max_sequences
                && (current.len() + 1) * longest <= self.max_tokens;
            if !fits && !current.is_empty() {
                batches.push(std::mem::take(&mut current));
            }
            current.push(index);
        }
        if !current.is_empty() {
            batches.push(current);
        }
        Ok(batches)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::RngExt;

    fn planner() -> BatchPlanner {
        BatchPlanner {
            max_tokens: 600,
            max_sequences: 16,
            max_residues: 254,
            special_tokens: 2,
        }
    }

    #[test]
    fn never_exceeds_budget_and_keeps_every_sequence_once() {
        let mut rng = StdRng::seed_from_u64(7);
        for trial in 0..50 {
            let lengths: Vec<usize> = (0..rng.random_range(1..400))
                .map(|_| rng.random_range(1..2000))
                .collect();
            let planner = planner();
            let batches = planner.plan(&lengths, trial).unwrap();
            let mut seen = vec![0u32; lengths.len()];
            for batch in &batches {
                assert!(!batch.is_empty());
                assert!(batch.len() <= planner.max_sequences);
                let longest = batch
                    .iter()
                    .map(|&i| planner.framed_length(lengths[i]))
                    .max()
                    .unwrap();
                assert!(batch.len() * longest <= planner.max_tokens, "{batch:?}");
                for &i in batch {
                    seen[i] += 1;
                }
            }
            assert!(seen.iter().all(|&n| n == 1), "every sequence exactly once");
        }
    }

    #[test]
    fn groups_similar_lengths() {
        let lengths = vec![10, 200, 11, 201, 12, 202];
        let batches = BatchPlanner {
            max_tokens: 700,
            ..planner()
        }
        .plan(&lengths, 0)
        .unwrap();
        assert_eq!(batches.len(), 2);
        let mut first = batches[0].clone();
        first.sort();
        assert_eq!(first, vec![0, 2, 4]);
    }

    #[test]
    fn rejects_impossible_budgets() {
        let err = BatchPlanner {
            max_tokens: 100,
            ..planner()
        }
        .plan(&[5], 0)
        .unwrap_err();
        assert!(err.to_string().contains("max_tokens (100)"), "{err}");
    }
}
