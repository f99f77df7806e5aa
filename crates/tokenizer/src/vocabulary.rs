//! Vocabularies as data: the token list of a released model, which ids are special, and how a
//! protein is framed by special tokens.
//!
//! A new model's vocabulary is one more constructor here; the [`Tokenizer`](super::Tokenizer)
//! does not change.

use std::collections::HashMap;

use super::TokenizeError;

/// How special tokens frame the residues of one protein.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum SequenceLayout {
    /// `[CLS] residues [SEP]` (BERT, ALBERT, ELECTRA). Residues at positions `1..=L`.
    ClsResiduesSep,
    /// `residues </s>` (T5). Residues at positions `0..L`.
    ResiduesEos,
    /// `residues <sep> <cls>` (XLNet, padded on the left). Residues at positions `0..L` of the
    /// unpadded sequence.
    ResiduesSepCls,
}

/// Which side padding goes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum PaddingSide {
    /// Pad after the sequence (BERT, T5).
    Right,
    /// Pad before the sequence (XLNet).
    Left,
}

/// The ids of the special tokens a vocabulary has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SpecialTokens {
    /// Padding.
    pub pad: u32,
    /// Unknown token.
    pub unk: Option<u32>,
    /// Classification / start token (`[CLS]`, `<cls>`).
    pub cls: Option<u32>,
    /// Separator (`[SEP]`, `<sep>`).
    pub sep: Option<u32>,
    /// Mask token for masked language modelling (`[MASK]`, `<mask>`).
    pub mask: Option<u32>,
    /// End of sequence (`</s>`).
    pub eos: Option<u32>,
}

/// A model's vocabulary: tokens by id, special ids and sequence layout.
#[derive(Debug, Clone)]
pub struct Vocabulary {
    name: String,
    tokens: Vec<String>,
    specials: SpecialTokens,
    layout: SequenceLayout,
    padding: PaddingSide,
    residue_ids: HashMap<u8, u32>,
}

/// The twenty standard amino acids, in one-letter code.
pub const STANDARD_RESIDUES: &[u8; 20] = b"ACDEFGHIKLMNPQRSTVWY";

impl Vocabulary {
    /// Builds a vocabulary. Every single-letter upper-case token is a residue (`▁L` before `L`).
    ///
    /// Fails if a special id is out of range, the layout needs a special token the vocabulary
    /// lacks, or there are more than 256 tokens (residues are stored as bytes).
    pub fn new(
        name: impl Into<String>,
        tokens: Vec<String>,
        specials: SpecialTokens,
        layout: SequenceLayout,
        padding: PaddingSide,
    ) -> Result<Self, TokenizeError> {
        let name = name.into();
        let bad = |what: String| TokenizeError::InvalidVocabulary {
            vocabulary: name.clone(),
            message: what,
        };
        if tokens.len() > 256 {
            return Err(bad(format!(
                "{} tokens; at most 256 are supported",
                tokens.len()
            )));
        }
        let ids = [
            Some(specials.pad),
            specials.unk,
            specials.cls,
            specials.sep,
            specials.mask,
            specials.eos,
        ];
        if let Some(id) = ids
            .into_iter()
            .flatten()
            .find(|&id| id as usize >= tokens.len())
        {
            return Err(bad(format!(
                "special id {id} is outside the {} tokens",
                tokens.len()
            )));
        }
        let needed = match layout {
            SequenceLayout::ClsResiduesSep | SequenceLayout::ResiduesSepCls => {
                specials.cls.is_some() && specials.sep.is_some()
            }
            SequenceLayout::ResiduesEos => specials.eos.is_some(),
        };
        if !needed {
            return Err(bad(format!(
                "layout {layout:?} needs special tokens it lacks"
            )));
        }
        // Word-start pieces (`▁L`) win over bare letters: they are what sentencepiece gives a
        // residue written as a word of its own.
        let mut residue_ids = HashMap::new();
        for marked in [false, true] {
            for (id, token) in tokens.iter().enumerate() {
                if let Some((letter, is_marked)) = residue_letter(token)
                    && is_marked == marked
                {
                    residue_ids.insert(letter, id as u32);
                }
            }
        }
        Ok(Self {
            name,
            tokens,
            specials,
            layout,
            padding,
            residue_ids,
        })
    }

    /// ProtBert, ProtBert-BFD and ProtElectra (`Rostlab/prot_bert` `vocab.txt`).
    pub fn prot_bert() -> Self {
        let tokens = [
            "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "L", "A", "G", "V", "E", "S", "I", "K",
            "R", "D", "T", "P", "N", "Q", "F", "Y", "M", "H", "C", "W", "X", "U", "B", "Z", "O",
        ];
        Self::new(
            "prot_bert",
            tokens.iter().map(|t| t.to_string()).collect(),
            SpecialTokens {
                pad: 0,
                unk: Some(1),
                cls: Some(2),
                sep: Some(3),
                mask: Some(4),
                eos: None,
            },
            SequenceLayout::ClsResiduesSep,
            PaddingSide::Right,
        )
        .expect("the ProtBert vocabulary is well formed")
    }

    /// ESM-2's alphabet (`facebook/esm2_*` `vocab.txt`): `<cls>` 0, `<pad>` 1, `<eos>` 2,
    /// `<unk>` 3, the residues (U, Z, O and B among them), `.`, `-`, `<null_1>`, `<mask>` 32.
    /// Input is `<cls> residues <eos>`: `<eos>` closes the sequence where BERT's `[SEP]` does.
    pub fn esm2() -> Self {
        let tokens = [
            "<cls>", "<pad>", "<eos>", "<unk>", "L", "A", "G", "V", "S", "E", "R", "T", "I", "D",
            "P", "K", "Q", "N", "F", "Y", "M", "H", "W", "C", "X", "B", "U", "Z", "O", ".", "-",
            "<null_1>", "<mask>",
        ];
        Self::esm("esm2", tokens.iter().map(|t| t.to_string()).collect())
            .expect("the ESM-2 vocabulary is well formed")
    }

    /// An ESM alphabet: `<cls> residues <eos>`, right padding.
    fn esm(name: &str, tokens: Vec<String>) -> Result<Self, TokenizeError> {
        let find = |t: &str| tokens.iter().position(|x| x == t).map(|i| i as u32);
        let missing = |t: &str| TokenizeError::InvalidVocabulary {
            vocabulary: name.to_string(),
            message: format!("no {t} token"),
        };
        let pad = find("<pad>").ok_or_else(|| missing("<pad>"))?;
        let eos = find("<eos>").ok_or_else(|| missing("<eos>"))?;
        let specials = SpecialTokens {
            pad,
            unk: find("<unk>"),
            cls: find("<cls>"),
            sep: Some(eos),
            mask: find("<mask>"),
            eos: Some(eos),
        };
        Self::new(
            name,
            tokens,
            specials,
            SequenceLayout::ClsResiduesSep,
            PaddingSide::Right,
        )
    }

    /// ProtT5 (`Rostlab/prot_t5_*`, sentencepiece with one piece per residue): `<pad>` 0,
    /// `</s>` 1, `<unk>` 2, residues 3..=27, then the span-corruption sentinels `<extra_id_99>`
    /// ..`<extra_id_0>` at 28..=127. Input is `residues </s>`, no start token.
    pub fn prot_t5() -> Self {
        let mut tokens: Vec<String> = ["<pad>", "</s>", "<unk>"].map(String::from).to_vec();
        tokens.extend(
            b"ALGVSREDTIPKFQNYMHWCXBOUZ"
                .iter()
                .map(|&r| char::from(r).to_string()),
        );
        tokens.extend((0..100).rev().map(|i| format!("<extra_id_{i}>")));
        Self::new(
            "prot_t5",
            tokens,
            SpecialTokens {
                pad: 0,
                unk: Some(2),
                cls: None,
                sep: None,
                mask: None,
                eos: Some(1),
            },
            SequenceLayout::ResiduesEos,
            PaddingSide::Right,
        )
        .expect("the ProtT5 vocabulary is well formed")
    }

    /// The vocabulary prottrans pretrains XLNet with: XLNet's special tokens at their
    /// conventional ids (`<unk>` 0, `<s>` 1, `</s>` 2, `<cls>` 3, `<sep>` 4, `<pad>` 5,
    /// `<mask>` 6, `<eod>` 7, `<eop>` 8), then the 25 residues in ProtBert's order. Input is
    /// `residues <sep> <cls>`, padded on the left.
    ///
    /// This is **not** the released ProtXLNet table (37 pieces, not published in full): a
    /// released checkpoint is read with its own `spiece.model`.
    pub fn prottrans_xlnet() -> Self {
        let mut tokens: Vec<String> = [
            "<unk>", "<s>", "</s>", "<cls>", "<sep>", "<pad>", "<mask>", "<eod>", "<eop>",
        ]
        .map(String::from)
        .to_vec();
        tokens.extend(
            b"LAGVESIKRDTPNQFYMHCWXUBZO"
                .iter()
                .map(|&r| char::from(r).to_string()),
        );
        Self::new(
            "prottrans_xlnet",
            tokens,
            SpecialTokens {
                pad: 5,
                unk: Some(0),
                cls: Some(3),
                sep: Some(4),
                mask: Some(6),
                eos: None,
            },
            SequenceLayout::ResiduesSepCls,
            PaddingSide::Left,
        )
        .expect("the prottrans XLNet vocabulary is well formed")
    }

    /// Reads a `vocab.txt` (one token per line, id = line number) with BERT's special-token
    /// names, as shipped with ProtBert-style checkpoints, ESM's (`<cls> <pad> <eos>`, as ESM-2
    /// ships it: `<cls> residues <eos>`), or XLNet's (`<pad> <cls> <sep>`, as
    /// prottrans writes beside an XLNet it trained: `residues <sep> <cls>`, left padding).
    pub fn from_bert_vocab_txt(name: &str, text: &str) -> Result<Self, TokenizeError> {
        let tokens: Vec<String> = text.lines().map(|l| l.trim().to_string()).collect();
        // A repeated token leaves one of its ids unreachable (transformers keeps the last):
        // with a residue repeated in place of another, that other would silently read as
        // unknown.
        let mut seen = std::collections::HashMap::new();
        for (line, token) in tokens.iter().enumerate() {
            if let Some(first) = seen.insert(token.as_str(), line) {
                return Err(TokenizeError::InvalidVocabulary {
                    vocabulary: name.to_string(),
                    message: format!(
                        "line {}: token '{token}' repeats line {}",
                        line + 1,
                        first + 1
                    ),
                });
            }
        }
        let find = |t: &str| tokens.iter().position(|x| x == t).map(|i| i as u32);
        if find("<eos>").is_some() && find("<cls>").is_some() && find("<sep>").is_none() {
            return Self::esm(name, tokens);
        }
        if find("[PAD]").is_none()
            && let (Some(pad), Some(cls), Some(sep)) = (find("<pad>"), find("<cls>"), find("<sep>"))
        {
            return Self::new(
                name,
                tokens.clone(),
                SpecialTokens {
                    pad,
                    unk: find("<unk>"),
                    cls: Some(cls),
                    sep: Some(sep),
                    mask: find("<mask>"),
                    eos: None,
                },
                SequenceLayout::ResiduesSepCls,
                PaddingSide::Left,
            );
        }
        let pad = find("[PAD]").ok_or_else(|| TokenizeError::InvalidVocabulary {
            vocabulary: name.to_string(),
            message: "no [PAD] token".to_string(),
        })?;
        Self::new(
            name,
            tokens.clone(),
            SpecialTokens {
                pad,
                unk: find("[UNK]"),
                cls: find("[CLS]"),
                sep: find("[SEP]"),
                mask: find("[MASK]"),
                eos: None,
            },
            SequenceLayout::ClsResiduesSep,
            PaddingSide::Right,
        )
    }

    /// The vocabulary's name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Number of tokens (the model's `vocab_size` may be larger).
    pub fn len(&self) -> usize {
        self.tokens.len()
    }

    /// Whether the vocabulary has no tokens (never true for a valid one).
    pub fn is_empty(&self) -> bool {
        self.tokens.is_empty()
    }

    /// The token with this id.
    pub fn token(&self, id: u32) -> Option<&str> {
        self.tokens.get(id as usize).map(String::as_str)
    }

    /// The id of this token.
    pub fn id(&self, token: &str) -> Option<u32> {
        self.tokens
            .iter()
            .position(|t| t == token)
            .map(|i| i as u32)
    }

    /// The id of a residue letter (upper case).
    pub fn residue_id(&self, residue: u8) -> Option<u32> {
        self.residue_ids.get(&residue).copied()
    }

    /// The residue letter an id encodes (`None` for special tokens and unused pieces).
    pub fn residue_letter(&self, id: u32) -> Option<char> {
        let (letter, _) = self.token(id).and_then(residue_letter)?;
        (self.residue_id(letter) == Some(id)).then_some(char::from(letter))
    }

    /// Ids of the twenty standard amino acids, in [`STANDARD_RESIDUES`] order.
    pub fn standard_residue_ids(&self) -> Vec<u32> {
        STANDARD_RESIDUES
            .iter()
            .filter_map(|&r| self.residue_id(r))
            .collect()
    }

    /// The special tokens.
    pub fn specials(&self) -> SpecialTokens {
        self.specials
    }

    /// How a protein is framed.
    pub fn layout(&self) -> SequenceLayout {
        self.layout
    }

    /// Which side padding goes on.
    pub fn padding_side(&self) -> PaddingSide {
        self.padding
    }

    /// Whether an id is not the id a residue is encoded to (specials, unused pieces).
    pub fn is_special(&self, id: u32) -> bool {
        self.token(id)
            .and_then(residue_letter)
            .is_none_or(|(letter, _)| self.residue_id(letter) != Some(id))
    }

    /// `vocab.txt`: one token per line, the id is the line number.
    pub fn to_vocab_txt(&self) -> String {
        self.tokens.iter().map(|t| format!("{t}\n")).collect()
    }
}

/// The residue letter of a one-letter token, and whether it carries sentencepiece's word-start
/// mark `▁`.
fn residue_letter(token: &str) -> Option<(u8, bool)> {
    let (rest, marked) = match token.strip_prefix('\u{2581}') {
        Some(rest) => (rest, true),
        None => (token, false),
    };
    (rest.len() == 1 && rest.as_bytes()[0].is_ascii_uppercase())
        .then(|| (rest.as_bytes()[0], marked))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prot_t5_ids_are_the_rostlab_ones() {
        let v = Vocabulary::prot_t5();
        assert_eq!(v.len(), 128);
        for (residue, id) in [
            (b'A', 3),
            (b'L', 4),
            (b'K', 14),
            (b'C', 22),
            (b'X', 23),
            (b'B', 24),
            (b'O', 25),
            (b'U', 26),
            (b'Z', 27),
        ] {
            assert_eq!(v.residue_id(residue), Some(id), "{}", residue as char);
        }
        assert_eq!(v.token(28), Some("<extra_id_99>"));
        assert_eq!(v.token(127), Some("<extra_id_0>"));
        assert!(v.is_special(1) && v.is_special(28));
        assert_eq!(v.standard_residue_ids().len(), 20);
    }
}
