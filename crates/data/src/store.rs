//! A compact in-memory store of tokenised protein sequences.
//!
//! Hundreds of thousands of proteins fit in memory as one byte per residue; tensors are only
//! built per batch, by the objective's batcher.

use std::path::Path;

use crate::error::DataError;
use crate::fasta::FastaReader;
use crate::tokenizer::Tokenizer;

/// Tokenised sequences, concatenated: one byte per residue id, plus offsets and record ids.
#[derive(Debug, Clone, Default)]
pub struct SequenceStore {
    ids: Vec<String>,
    offsets: Vec<usize>,
    residues: Vec<u8>,
}

impl SequenceStore {
    /// An empty store.
    pub fn new() -> Self {
        Self {
            ids: Vec::new(),
            offsets: vec![0],
            residues: Vec::new(),
        }
    }

    /// Reads and tokenises every record of a FASTA file (plain or gzip).
    ///
    /// Fails on the first invalid record, naming the file, line and residue position, and on a
    /// file without sequences.
    pub fn from_fasta(path: impl AsRef<Path>, tokenizer: &Tokenizer) -> Result<Self, DataError> {
        let path = path.as_ref();
        if tokenizer.vocabulary().len() > usize::from(u8::MAX) + 1 {
            return Err(DataError::Batching(format!(
                "vocabulary `{}` has {} tokens; the sequence store holds one byte per residue",
                tokenizer.vocabulary().name(),
                tokenizer.vocabulary().len()
            )));
        }
        let mut store = Self::new();
        FastaReader::open(path)?.for_each_tokenized(tokenizer, |record, ids| {
            store.push(record.id, &ids);
            Ok(())
        })?;
        if store.is_empty() {
            return Err(DataError::NoSequences {
                path: path.to_path_buf(),
            });
        }
        Ok(store)
    }

    /// Appends one sequence of residue ids (each below 256).
    ///
    /// # Panics
    /// If an id does not fit in a byte; [`from_fasta`](Self::from_fasta) checks the vocabulary.
    pub fn push(&mut self, id: impl Into<String>, residue_ids: &[u32]) {
        if self.offsets.is_empty() {
            self.offsets.push(0);
        }
        self.ids.push(id.into());
        self.residues.extend(
            residue_ids
                .iter()
                .map(|&r| u8::try_from(r).expect("residue ids fit in a byte")),
        );
        self.offsets.push(self.residues.len());
    }

    /// Number of sequences.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether the store is empty.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    /// Residue ids of sequence `index`.
    pub fn residues(&self, index: usize) -> &[u8] {
        &self.residues[self.offsets[index]..self.offsets[index + 1]]
    }

    /// Length in residues of sequence `index`.
    pub fn length(&self, index: usize) -> usize {
        self.offsets[index + 1] - self.offsets[index]
    }

    /// Lengths of all sequences, in order.
    pub fn lengths(&self) -> Vec<usize> {
        self.offsets.windows(2).map(|w| w[1] - w[0]).collect()
    }

    /// Record id (first word of the FASTA header) of sequence `index`.
    pub fn id(&self, index: usize) -> &str {
        &self.ids[index]
    }

    /// Total residues over all sequences.
    pub fn total_residues(&self) -> usize {
        self.residues.len()
    }

    /// How often each token id occurs among the residues (index = id).
    pub fn residue_counts(&self, vocabulary_size: usize) -> Vec<u64> {
        let mut counts = vec![0u64; vocabulary_size.max(256)];
        for &r in &self.residues {
            counts[usize::from(r)] += 1;
        }
        counts.truncate(vocabulary_size);
        counts
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stores_sequences_back_to_back() {
        let mut store = SequenceStore::new();
        store.push("a", &[5, 6, 7]);
        store.push("b", &[8]);
        assert_eq!(store.len(), 2);
        assert_eq!(store.residues(0), &[5, 6, 7]);
        assert_eq!(store.residues(1), &[8]);
        assert_eq!(store.lengths(), vec![3, 1]);
        assert_eq!(store.id(1), "b");
        assert_eq!(store.total_residues(), 4);
        assert_eq!(store.residue_counts(10)[5..9], [1, 1, 1, 1]);
    }

    #[test]
    fn reads_fasta_and_names_bad_records() {
        let dir = tempfile::tempdir().unwrap();
        let good = dir.path().join("good.fasta");
        std::fs::write(&good, ">p1 first\nMKT\nay\n>p2\nLLL*\n").unwrap();
        let store = SequenceStore::from_fasta(&good, &Tokenizer::prot_bert()).unwrap();
        assert_eq!(store.len(), 2);
        assert_eq!(store.residues(0), &[21, 12, 15, 6, 20]);
        assert_eq!(store.residues(1), &[5, 5, 5]);

        let bad = dir.path().join("bad.fasta");
        std::fs::write(&bad, ">p1\nMKT\nA1Y\n").unwrap();
        let err = SequenceStore::from_fasta(&bad, &Tokenizer::prot_bert()).unwrap_err();
        let message = err.to_string();
        assert!(message.contains("bad.fasta:3"), "{message}");
        assert!(message.contains("p1"), "{message}");

        let empty = dir.path().join("empty.fasta");
        std::fs::write(&empty, "").unwrap();
        let err = SequenceStore::from_fasta(&empty, &Tokenizer::prot_bert()).unwrap_err();
        assert!(matches!(err, DataError::NoSequences { .. }), "{err}");
    }
}
