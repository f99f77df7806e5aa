//! The unigram baseline: predict every masked residue from the training set's residue
//! frequencies alone. A masked language model has learned something about proteins only when its
//! validation loss is below this cross-entropy and its accuracy above the majority residue's.

use prottrans_data::{SequenceStore, Vocabulary};
use serde::{Deserialize, Serialize};

/// Residue frequencies of a training set, scored on the masked residues of a validation set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UnigramBaseline {
    /// Probability of each token id (add-one smoothed over the residue tokens).
    pub probabilities: Vec<f64>,
    /// Entropy of the training distribution (nats).
    pub entropy: f64,
    /// The most frequent residue id.
    pub majority: u32,
}

impl UnigramBaseline {
    /// Counts residues in `train`.
    pub fn from_store(train: &SequenceStore, vocabulary: &Vocabulary) -> Self {
        let counts = train.residue_counts(vocabulary.len());
        let residue_ids: Vec<usize> = (0..vocabulary.len() as u32)
            .filter(|&id| !vocabulary.is_special(id))
            .map(|id| id as usize)
            .collect();
        let total: f64 = residue_ids.iter().map(|&id| counts[id] as f64 + 1.0).sum();
        let mut probabilities = vec![0.0; vocabulary.len()];
        for &id in &residue_ids {
            probabilities[id] = (counts[id] as f64 + 1.0) / total;
        }
        let entropy = -probabilities
            .iter()
            .filter(|&&p| p > 0.0)
            .map(|&p| p * p.ln())
            .sum::<f64>();
        let majority = residue_ids
            .iter()
            .copied()
            .max_by_key(|&id| counts[id])
            .unwrap_or(0) as u32;
        Self {
            probabilities,
            entropy,
            majority,
        }
    }

    /// Mean cross-entropy (nats) and accuracy of the baseline on `labels`.
    pub fn score(&self, labels: impl IntoIterator<Item = u32>) -> (f64, f64) {
        let (mut nll, mut correct, mut n) = (0.0, 0u64, 0u64);
        for label in labels {
            let p = self
                .probabilities
                .get(label as usize)
                .copied()
                .unwrap_or(0.0);
            nll -= p.max(f64::MIN_POSITIVE).ln();
            correct += u64::from(label == self.majority);
            n += 1;
        }
        let n = n.max(1) as f64;
        (nll / n, correct as f64 / n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frequencies_entropy_and_scores() {
        let vocabulary = Vocabulary::prot_bert();
        let mut store = SequenceStore::new();
        store.push("a", &[5, 5, 5, 6]);
        let baseline = UnigramBaseline::from_store(&store, &vocabulary);
        let total: f64 = baseline.probabilities.iter().sum();
        assert!((total - 1.0).abs() < 1e-12);
        assert_eq!(baseline.majority, 5);
        assert_eq!(baseline.probabilities[0], 0.0, "specials get no mass");
        // 25 residue tokens, 4 counts: L has (3+1)/29.
        assert!((baseline.probabilities[5] - 4.0 / 29.0).abs() < 1e-12);
        let (loss, accuracy) = baseline.score([5, 6]);
        let expected = -((4.0f64 / 29.0).ln() + (2.0f64 / 29.0).ln()) / 2.0;
        assert!((loss - expected).abs() < 1e-12);
        assert_eq!(accuracy, 0.5);
        assert!(baseline.entropy > 0.0 && baseline.entropy < (25f64).ln());
    }
}
