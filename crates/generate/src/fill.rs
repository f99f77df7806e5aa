//! Generating with a T5 (greedy decoding): filling in corrupted residues, as ProtT5 was trained
//! to (the input marks hidden residues, each becomes its own sentinel, and the decoder rewrites
//! the whole sequence), and translating amino acids into Foldseek's 3Di structure alphabet, as
//! ProstT5 was trained to.

use std::path::Path;

use burn::tensor::{Device, Int, Tensor, TensorData};
use prottrans_data::{TokenizeError, Tokenizer};
use prottrans_import::{Checkpoint, checkpoint_tokenizer};
use prottrans_models::{EncoderInput, T5ForConditionalGeneration};
use serde::Serialize;

use crate::error::GenerateError;

/// The character that marks a residue to predict.
pub const HIDDEN: char = '_';

/// A T5 checkpoint loaded for greedy generation.
#[derive(Debug)]
pub struct Generator {
    model: T5ForConditionalGeneration,
    tokenizer: Tokenizer,
    device: Device,
}

/// The result of [`Generator::fill`].
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Filled {
    /// The input with hidden residues shown as `_`.
    pub input: String,
    /// The sequence the decoder wrote (residues; special tokens by name).
    pub output: String,
    /// `(1-based position, residue)` written at each hidden position; `None` where the output
    /// is too short to have one.
    pub filled: Vec<(usize, Option<char>)>,
}

/// The result of [`Generator::translate_to_3di`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Translated {
    /// The residues as read (rare residues as the tokenizer maps them).
    pub input: String,
    /// One 3Di letter per residue.
    pub output: String,
}

impl Generator {
    /// Loads a `T5ForConditionalGeneration` checkpoint directory (the encoder-only release
    /// cannot generate).
    pub fn load(dir: impl AsRef<Path>, device: &Device) -> Result<Self, GenerateError> {
        let checkpoint = Checkpoint::open(dir)?;
        let (_, model) = checkpoint.load_t5(device)?;
        Ok(Self {
            model,
            tokenizer: checkpoint_tokenizer(checkpoint.dir(), checkpoint.config())?,
            device: device.clone(),
        })
    }

    /// The ids of the 3Di letters (ProstT5's lower-case tokens), empty for other models.
    fn three_di_tokens(&self) -> Vec<(u32, char)> {
        let vocabulary = self.tokenizer.vocabulary();
        (b'a'..=b'z')
            .filter_map(|letter| {
                let letter = char::from(letter);
                vocabulary.id(&letter.to_string()).map(|id| (id, letter))
            })
            .collect()
    }

    /// Whether the model translates amino acids into 3Di (ProstT5: a vocabulary with
    /// `<AA2fold>` and the 3Di letters).
    pub fn translates_to_3di(&self) -> bool {
        self.tokenizer.prefix().is_some() && !self.three_di_tokens().is_empty()
    }

    /// Translates an amino-acid sequence into 3Di as ProstT5's authors do, greedily: the input
    /// is `<AA2fold> residues </s>`, and the decoder writes one 3Di letter per residue, among
    /// the 3Di letters only (their `bad_words_ids` block the amino acids; their min and max
    /// length make it exactly one per residue).
    pub fn translate_to_3di(
        &self,
        record: &str,
        sequence: &str,
    ) -> Result<Translated, GenerateError> {
        let alphabet = self.three_di_tokens();
        if !self.translates_to_3di() {
            return Err(GenerateError::Unsupported(
                "this T5 does not translate to 3Di (ProstT5's vocabulary has <AA2fold> and the 3Di letters)".into(),
            ));
        }
        let ids = self.tokenizer.encode(record, sequence.as_bytes())?;
        let residues = ids.len() - self.tokenizer.num_special_tokens();
        let n = ids.len();
        let input = Tensor::<2, Int>::from_data(
            TensorData::new(
                ids.iter().map(|&i| i64::from(i)).collect::<Vec<_>>(),
                [1, n],
            ),
            &self.device,
        );
        let allowed: Vec<u32> = alphabet.iter().map(|&(id, _)| id).collect();
        let generated = self
            .model
            .generate_greedy_among(EncoderInput::unpadded(input), residues, &allowed)
            .map_err(|e| GenerateError::Output(format!("{e:?}")))?
            .remove(0);
        let letter = |id: u32| alphabet.iter().find(|&&(i, _)| i == id).map(|&(_, c)| c);
        Ok(Translated {
            input: ids[self.tokenizer.residue_span(residues)]
                .iter()
                .filter_map(|&id| self.tokenizer.vocabulary().residue_letter(id))
                .collect(),
            output: generated.iter().filter_map(|&id| letter(id)).collect(),
        })
    }

    /// Encoder ids of a sequence with `_` at hidden residues: each becomes the next sentinel
    /// (`<extra_id_0>`, `<extra_id_1>`, ...), then `</s>`. Returns the ids and the 0-based
    /// residue indices that are hidden.
    pub fn encode(
        &self,
        record: &str,
        masked: &str,
    ) -> Result<(Vec<u32>, Vec<usize>), GenerateError> {
        let vocabulary = self.tokenizer.vocabulary();
        let mut ids = Vec::with_capacity(masked.len() + 1);
        let mut hidden = Vec::new();
        for (index, byte) in masked.bytes().enumerate() {
            if byte.is_ascii_whitespace() {
                continue;
            }
            if byte == HIDDEN as u8 {
                let sentinel = vocabulary.id(&format!("<extra_id_{}>", hidden.len())).ok_or_else(|| {
                    GenerateError::Unsupported(format!(
                        "record '{record}': more than {} hidden residues; the vocabulary has no more sentinels",
                        hidden.len()
                    ))
                })?;
                hidden.push(ids.len());
                ids.push(sentinel);
                continue;
            }
            ids.push(self.tokenizer.residue_id_at(record, index + 1, byte)?);
        }
        if ids.is_empty() {
            return Err(TokenizeError::Empty {
                record: record.to_string(),
            }
            .into());
        }
        ids.extend(vocabulary.specials().eos);
        Ok((ids, hidden))
    }

    /// Greedily rewrites `masked` (residues with `_` where hidden) and reads the residues the
    /// model puts at the hidden positions. At most `max_new_tokens` are generated (the input's
    /// length plus one is enough for a whole rewrite).
    pub fn fill(
        &self,
        record: &str,
        masked: &str,
        max_new_tokens: usize,
    ) -> Result<Filled, GenerateError> {
        let (ids, hidden) = self.encode(record, masked)?;
        let n = ids.len();
        let ids = Tensor::<2, Int>::from_data(
            TensorData::new(
                ids.iter().map(|&i| i64::from(i)).collect::<Vec<_>>(),
                [1, n],
            ),
            &self.device,
        );
        let generated = self
            .model
            .generate_greedy(EncoderInput::unpadded(ids), max_new_tokens)
            .map_err(|e| GenerateError::Output(format!("{e:?}")))?
            .remove(0);
        let letters: Vec<Option<char>> = generated
            .iter()
            .map(|&id| {
                let special = self.tokenizer.vocabulary().is_special(id);
                self.tokenizer
                    .vocabulary()
                    .token(id)
                    .filter(|_| !special)
                    .and_then(|t| t.chars().next())
            })
            .collect();
        let input: String = masked
            .chars()
            .filter(|c| !c.is_whitespace())
            .map(|c| c.to_ascii_uppercase())
            .collect();
        Ok(Filled {
            input,
            output: self.tokenizer.decode(&generated),
            filled: hidden
                .into_iter()
                .map(|i| (i + 1, letters.get(i).copied().flatten()))
                .collect(),
        })
    }
}
