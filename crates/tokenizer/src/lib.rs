//! Tokenizers with exactly the ids of the released checkpoints (Rostlab's, ESM-2's, or a
//! checkpoint's own `vocab.txt`, `spiece.model` or `tokenizer.json`). Its own crate, below the
//! models (an architecture names its default vocabulary) and the data pipeline.
//!
//! Unlike the Python tokenizers, sequences are given raw: any case, no spaces between residues.
//! ASCII whitespace inside a sequence is skipped, one trailing `*` (a stop codon) is tolerated,
//! and the rare residues U, Z, O and B become X by default ([`RareResidues`]). Any other
//! character is an error that names the record and the 1-based position.
//!
//! ```
//! use prottrans_tokenizer::Tokenizer;
//!
//! let tokenizer = Tokenizer::prot_bert();
//! let ids = tokenizer.encode("P12345", b"mkTu*").unwrap();
//! assert_eq!(ids, vec![2, 21, 12, 15, 25, 3]); // [CLS] M K T X [SEP]
//! ```

mod files;
mod vocabulary;

use std::ops::Range;
use std::sync::Arc;

pub use vocabulary::{PaddingSide, STANDARD_RESIDUES, SequenceLayout, SpecialTokens, Vocabulary};

/// What to do with the rare residues U (selenocysteine), Z (Glu/Gln), O (pyrrolysine) and
/// B (Asp/Asn).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RareResidues {
    /// Map them to X, as the authors did before training and embedding.
    #[default]
    MapToX,
    /// Keep their own ids (the vocabularies have them, but the models rarely saw them).
    Keep,
    /// Reject them with an error.
    Reject,
}

/// What to do with a residue letter the vocabulary lacks (AntiBERTy's has no X, so U, Z, O
/// and B, mapped to X, are absent too; no vocabulary has J).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum UnknownResidues {
    /// Map it to the vocabulary's unknown token, as the checkpoint's own tokenizer does
    /// ([`Tokenizer::count_unknown`] counts them). A vocabulary without one rejects them.
    #[default]
    MapToUnknown,
    /// Reject it with an error naming the record and the position.
    Reject,
}

/// Residues that [`RareResidues`] applies to.
pub const RARE_RESIDUES: &[u8; 4] = b"UZOB";

/// Errors from tokenising a sequence or building a vocabulary.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenizeError {
    /// A character that is not a residue of the vocabulary.
    #[error("record '{record}': invalid character {character:?} at position {position}")]
    InvalidCharacter {
        /// Record (protein) id.
        record: String,
        /// 1-based position in the sequence as given (whitespace included).
        position: usize,
        /// The character found.
        character: char,
    },
    /// A rare residue under [`RareResidues::Reject`].
    #[error(
        "record '{record}': rare residue '{residue}' at position {position} (the tokenizer is set to reject U, Z, O and B)"
    )]
    RareResidue {
        /// Record id.
        record: String,
        /// 1-based position.
        position: usize,
        /// The residue.
        residue: char,
    },
    /// A residue letter the vocabulary lacks, under [`UnknownResidues::Reject`] or with a
    /// vocabulary that has no unknown token.
    #[error(
        "record '{record}': residue '{residue}' at position {position} is not in the model's vocabulary ({reason})"
    )]
    UnknownResidue {
        /// Record id.
        record: String,
        /// 1-based position.
        position: usize,
        /// The residue as given.
        residue: char,
        /// Why it was not mapped to the unknown token.
        reason: &'static str,
    },
    /// No residues at all.
    #[error("record '{record}': the sequence is empty")]
    Empty {
        /// Record id.
        record: String,
    },
    /// A vocabulary that cannot work.
    #[error("vocabulary '{vocabulary}': {message}")]
    InvalidVocabulary {
        /// Vocabulary name.
        vocabulary: String,
        /// What is wrong.
        message: String,
    },
}

impl TokenizeError {
    /// The 1-based position in the sequence the error is about, if any.
    pub fn position(&self) -> Option<usize> {
        match self {
            Self::InvalidCharacter { position, .. }
            | Self::RareResidue { position, .. }
            | Self::UnknownResidue { position, .. } => Some(*position),
            _ => None,
        }
    }
}

/// Turns raw protein sequences into model ids and back.
#[derive(Debug, Clone)]
pub struct Tokenizer {
    vocabulary: Arc<Vocabulary>,
    rare: RareResidues,
    unknown: UnknownResidues,
    prefix: Option<u32>,
}

impl Tokenizer {
    /// A tokenizer over a vocabulary, mapping rare residues to X.
    pub fn new(vocabulary: Vocabulary) -> Self {
        Self {
            vocabulary: Arc::new(vocabulary),
            rare: RareResidues::default(),
            unknown: UnknownResidues::default(),
            prefix: None,
        }
    }

    /// The ProtBert / ProtElectra tokenizer.
    pub fn prot_bert() -> Self {
        Self::new(Vocabulary::prot_bert())
    }

    /// The ProtT5 tokenizer (`residues </s>`).
    pub fn prot_t5() -> Self {
        Self::new(Vocabulary::prot_t5())
    }

    /// Sets the rare-residue policy.
    pub fn with_rare_residues(mut self, rare: RareResidues) -> Self {
        self.rare = rare;
        self
    }

    /// Sets what happens to residue letters the vocabulary lacks.
    pub fn with_unknown_residues(mut self, unknown: UnknownResidues) -> Self {
        self.unknown = unknown;
        self
    }

    /// Puts a token before every framed sequence (ProstT5's `<AA2fold>`: the direction of
    /// translation, which its authors prepend when embedding amino acids too).
    pub fn with_prefix(mut self, prefix: Option<u32>) -> Self {
        self.prefix = prefix;
        self
    }

    /// The token put before every framed sequence, if any.
    pub fn prefix(&self) -> Option<u32> {
        self.prefix
    }

    /// The unknown-residue policy.
    pub fn unknown_residues(&self) -> UnknownResidues {
        self.unknown
    }

    /// How many of `ids` are the vocabulary's unknown token: the residues
    /// [`UnknownResidues::MapToUnknown`] mapped there (no residue has that id otherwise).
    pub fn count_unknown(&self, ids: &[u32]) -> usize {
        match self.vocabulary.specials().unk {
            Some(unk) => ids.iter().filter(|&&id| id == unk).count(),
            None => 0,
        }
    }

    /// The vocabulary.
    pub fn vocabulary(&self) -> &Vocabulary {
        &self.vocabulary
    }

    /// The rare-residue policy.
    pub fn rare_residues(&self) -> RareResidues {
        self.rare
    }

    /// The id of one residue character (any case, rare residues as the policy says); `position`
    /// (1-based) and `record` only name it in errors.
    pub fn residue_id_at(
        &self,
        record: &str,
        position: usize,
        byte: u8,
    ) -> Result<u32, TokenizeError> {
        let residue = byte.to_ascii_uppercase();
        let residue = if RARE_RESIDUES.contains(&residue) {
            match self.rare {
                RareResidues::MapToX => b'X',
                RareResidues::Keep => residue,
                RareResidues::Reject => {
                    return Err(TokenizeError::RareResidue {
                        record: record.to_string(),
                        position,
                        residue: residue as char,
                    });
                }
            }
        } else {
            residue
        };
        if let Some(id) = self.vocabulary.residue_id(residue) {
            return Ok(id);
        }
        if !residue.is_ascii_uppercase() {
            return Err(TokenizeError::InvalidCharacter {
                record: record.to_string(),
                position,
                character: char::from(byte),
            });
        }
        let unknown = |reason| TokenizeError::UnknownResidue {
            record: record.to_string(),
            position,
            residue: char::from(byte),
            reason,
        };
        match (self.unknown, self.vocabulary.specials().unk) {
            (UnknownResidues::MapToUnknown, Some(unk)) => Ok(unk),
            (UnknownResidues::MapToUnknown, None) => {
                Err(unknown("the vocabulary has no unknown token to map it to"))
            }
            (UnknownResidues::Reject, _) => {
                Err(unknown("the tokenizer is set to refuse unknown residues"))
            }
        }
    }

    /// Residue ids of a raw sequence, without special tokens.
    ///
    /// `record` only names the sequence in errors.
    pub fn encode_residues(
        &self,
        record: &str,
        sequence: &[u8],
    ) -> Result<Vec<u32>, TokenizeError> {
        let mut ids = Vec::with_capacity(sequence.len());
        for (index, byte) in residue_positions(sequence) {
            ids.push(self.residue_id_at(record, index + 1, byte)?);
        }
        if ids.is_empty() {
            return Err(TokenizeError::Empty {
                record: record.to_string(),
            });
        }
        Ok(ids)
    }

    /// Model ids of a raw sequence: residues framed by the vocabulary's special tokens.
    pub fn encode(&self, record: &str, sequence: &[u8]) -> Result<Vec<u32>, TokenizeError> {
        let residues = self.encode_residues(record, sequence)?;
        Ok(self.frame(residues.iter().copied()))
    }

    /// Adds the special tokens of the vocabulary's layout around residue ids.
    pub fn frame(&self, residues: impl ExactSizeIterator<Item = u32>) -> Vec<u32> {
        let specials = self.vocabulary.specials();
        let mut ids = Vec::with_capacity(residues.len() + self.num_special_tokens());
        ids.extend(self.prefix);
        // `Vocabulary::new` guarantees the ids each layout needs.
        match self.vocabulary.layout() {
            SequenceLayout::ClsResiduesSep => {
                ids.extend(specials.cls);
                ids.extend(residues);
                ids.extend(specials.sep);
            }
            SequenceLayout::ResiduesEos => {
                ids.extend(residues);
                ids.extend(specials.eos);
            }
            SequenceLayout::ResiduesSepCls => {
                ids.extend(residues);
                ids.extend(specials.sep);
                ids.extend(specials.cls);
            }
        }
        ids
    }

    /// How many special tokens [`frame`](Self::frame) adds.
    pub fn num_special_tokens(&self) -> usize {
        let frame = match self.vocabulary.layout() {
            SequenceLayout::ClsResiduesSep | SequenceLayout::ResiduesSepCls => 2,
            SequenceLayout::ResiduesEos => 1,
        };
        frame + usize::from(self.prefix.is_some())
    }

    /// Positions of the residues in a framed, unpadded sequence of `residues` residues.
    pub fn residue_span(&self, residues: usize) -> Range<usize> {
        let start = usize::from(self.prefix.is_some())
            + usize::from(self.vocabulary.layout() == SequenceLayout::ClsResiduesSep);
        start..start + residues
    }

    /// Turns ids back into text: residues as letters, special tokens by name.
    pub fn decode(&self, ids: &[u32]) -> String {
        ids.iter()
            .map(|&id| {
                match (
                    self.vocabulary.residue_letter(id),
                    self.vocabulary.token(id),
                ) {
                    (Some(letter), _) => letter.to_string(),
                    (None, Some(token)) => format!(" {token} "),
                    (None, None) => format!(" <{id}?> "),
                }
            })
            .collect::<String>()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// The residues of a raw FASTA sequence with their 0-based positions: every character but
/// whitespace and a final `*` (a stop codon some files keep).
fn residue_positions(sequence: &[u8]) -> impl Iterator<Item = (usize, u8)> + '_ {
    let last_residue = sequence
        .iter()
        .rposition(|c| !c.is_ascii_whitespace())
        .unwrap_or(0);
    sequence
        .iter()
        .copied()
        .enumerate()
        .filter(move |&(index, byte)| {
            !(byte.is_ascii_whitespace() || (byte == b'*' && index == last_residue))
        })
}

/// How many residues [`Tokenizer::encode_residues`] reads from a raw sequence (whatever the
/// vocabulary): the length of a per-residue embedding, known without a model.
pub fn residue_count(sequence: &[u8]) -> usize {
    residue_positions(sequence).count()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The released `Rostlab/prot_bert` vocab.txt, line by line.
    const PROT_BERT_VOCAB_TXT: &str = "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nL\nA\nG\nV\nE\nS\nI\nK\nR\nD\nT\nP\nN\nQ\nF\nY\nM\nH\nC\nW\nX\nU\nB\nZ\nO\n";

    #[test]
    fn prot_bert_ids_match_the_released_vocab_txt() {
        let built_in = Vocabulary::prot_bert();
        let from_file = Vocabulary::from_bert_vocab_txt("file", PROT_BERT_VOCAB_TXT).unwrap();
        assert_eq!(built_in.len(), 30);
        for (id, token) in PROT_BERT_VOCAB_TXT.lines().enumerate() {
            assert_eq!(built_in.token(id as u32), Some(token), "id {id}");
            assert_eq!(built_in.id(token), Some(id as u32));
            assert_eq!(from_file.id(token), Some(id as u32));
        }
        assert_eq!(built_in.specials(), from_file.specials());
        let s = built_in.specials();
        assert_eq!(
            (s.pad, s.unk, s.cls, s.sep, s.mask),
            (0, Some(1), Some(2), Some(3), Some(4))
        );
    }

    #[test]
    fn every_residue_gets_its_rostlab_id() {
        let t = Tokenizer::prot_bert().with_rare_residues(RareResidues::Keep);
        let ids = t
            .encode_residues("r", b"LAGVESIKRDTPNQFYMHCWXUBZO")
            .unwrap();
        assert_eq!(ids, (5..30).collect::<Vec<u32>>());
    }

    #[test]
    fn lower_case_and_whitespace_are_accepted() {
        let t = Tokenizer::prot_bert();
        assert_eq!(
            t.encode("r", b"mk tl\n").unwrap(),
            t.encode("r", b"MKTL").unwrap()
        );
        // Space-separated input as the Python tokenizers want it gives the same ids.
        assert_eq!(
            t.encode("r", b"M K T L").unwrap(),
            t.encode("r", b"MKTL").unwrap()
        );
    }

    #[test]
    fn rare_residues_follow_the_policy() {
        let x = Tokenizer::prot_bert();
        assert_eq!(x.encode_residues("r", b"UZOBuzob").unwrap(), vec![25; 8]);
        let keep = Tokenizer::prot_bert().with_rare_residues(RareResidues::Keep);
        assert_eq!(
            keep.encode_residues("r", b"UZOB").unwrap(),
            vec![26, 28, 29, 27]
        );
        let reject = Tokenizer::prot_bert().with_rare_residues(RareResidues::Reject);
        let err = reject.encode_residues("P1", b"MKZ").unwrap_err();
        assert_eq!(
            err,
            TokenizeError::RareResidue {
                record: "P1".into(),
                position: 3,
                residue: 'Z'
            }
        );
    }

    #[test]
    fn one_trailing_stop_is_tolerated_and_others_are_errors() {
        let t = Tokenizer::prot_bert();
        assert_eq!(t.encode_residues("r", b"MK*").unwrap().len(), 2);
        assert_eq!(t.encode_residues("r", b"MK*\n").unwrap().len(), 2);
        let err = t.encode_residues("r", b"M*K").unwrap_err();
        assert_eq!(err.position(), Some(2));
        let err = t.encode_residues("r", b"MK**").unwrap_err();
        assert_eq!(err.position(), Some(3));
    }

    #[test]
    fn invalid_characters_name_record_and_position() {
        let t = Tokenizer::prot_bert();
        for (seq, pos, ch) in [(&b"MK-L"[..], 3, '-'), (b"MK1", 3, '1'), (b".MK", 1, '.')] {
            let err = t.encode_residues("sp|Q9|X", seq).unwrap_err();
            assert_eq!(
                err,
                TokenizeError::InvalidCharacter {
                    record: "sp|Q9|X".into(),
                    position: pos,
                    character: ch
                }
            );
            assert!(err.to_string().contains("sp|Q9|X"));
        }
    }

    #[test]
    fn letters_outside_the_vocabulary_become_unknown_or_are_refused() {
        // AntiBERTy's vocabulary: no X, so U, Z, O and B (mapped to X) are unknown too.
        let antiberty = Vocabulary::from_bert_vocab_txt(
            "vocab.txt",
            "[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nA\nC\nD\nE\nF\nG\nH\nI\nK\nL\nM\nN\nP\nQ\nR\nS\nT\nV\nW\nY\n",
        )
        .unwrap();
        let t = Tokenizer::new(antiberty);
        let ids = t.encode_residues("ab", b"EVxLuJ").unwrap();
        assert_eq!(ids, vec![8, 22, 1, 14, 1, 1]);
        assert_eq!(t.count_unknown(&ids), 3);
        let refuse = t.clone().with_unknown_residues(UnknownResidues::Reject);
        let err = refuse.encode_residues("ab", b"EVX").unwrap_err();
        assert_eq!(err.position(), Some(3));
        assert!(err.to_string().contains("'X' at position 3"), "{err}");
        // Non-letters stay errors whatever the policy.
        assert!(matches!(
            t.encode_residues("ab", b"EV-L"),
            Err(TokenizeError::InvalidCharacter { position: 3, .. })
        ));
        // ProtBert has X but no J: J becomes [UNK] (id 1), as its own tokenizer does.
        assert_eq!(
            Tokenizer::prot_bert().encode_residues("r", b"MJ").unwrap(),
            vec![21, 1]
        );
    }

    #[test]
    fn empty_sequences_are_errors() {
        let t = Tokenizer::prot_bert();
        for seq in [&b""[..], b"  \n", b"*"] {
            assert!(matches!(
                t.encode_residues("e", seq),
                Err(TokenizeError::Empty { .. })
            ));
        }
    }

    #[test]
    fn framing_and_residue_span_agree() {
        let t = Tokenizer::prot_bert();
        let ids = t.encode("r", b"MKT").unwrap();
        assert_eq!(ids, vec![2, 21, 12, 15, 3]);
        assert_eq!(t.residue_span(3), 1..4);
        assert_eq!(&ids[t.residue_span(3)], &[21, 12, 15]);
        assert_eq!(t.decode(&ids), "[CLS] MKT [SEP]");
    }

    #[test]
    fn specials_are_not_residues() {
        let v = Vocabulary::prot_bert();
        assert!((0..5).all(|id| v.is_special(id)));
        assert!((5..30).all(|id| !v.is_special(id)));
        assert_eq!(v.standard_residue_ids().len(), 20);
    }

    #[test]
    fn a_prefix_comes_first_and_shifts_the_residues() {
        let t = Tokenizer::prot_t5().with_prefix(Some(127));
        assert_eq!(t.encode("p", b"mk").unwrap(), vec![127, 19, 14, 1]);
        assert_eq!(t.num_special_tokens(), 2);
        assert_eq!(t.residue_span(2), 1..3);
    }

    #[test]
    fn prot_t5_frames_with_a_final_eos() {
        let t = Tokenizer::prot_t5();
        assert_eq!(t.encode("p", b"mkU").unwrap(), vec![19, 14, 23, 1]);
        assert_eq!(t.residue_span(3), 0..3);
    }
}
