//! Vocabularies read from the files checkpoints ship: a sentencepiece `spiece.model`
//! (ProtAlbert, ProtXLNet, ProtT5) or a Hugging Face `tokenizer.json`.
//!
//! Both give a list of pieces by id. Residues are the pieces of one upper-case letter,
//! preferably with sentencepiece's word-start mark `▁` (the authors feed residues separated by
//! spaces, so each residue is a word of its own); special tokens are found by name.

use std::path::Path;

use prost::Message;

use super::TokenizeError;
use super::vocabulary::{PaddingSide, SequenceLayout, SpecialTokens, Vocabulary};

/// The parts of sentencepiece's `ModelProto` (`sentencepiece_model.proto`) a vocabulary needs;
/// the trainer and normaliser specs are skipped.
#[derive(Clone, PartialEq, Message)]
struct ModelProto {
    #[prost(message, repeated, tag = "1")]
    pieces: Vec<SentencePiece>,
}

#[derive(Clone, PartialEq, Message)]
struct SentencePiece {
    #[prost(string, optional, tag = "1")]
    piece: Option<String>,
    #[prost(float, optional, tag = "2")]
    score: Option<f32>,
}

impl Vocabulary {
    /// Reads a sentencepiece model (`spiece.model`).
    pub fn from_sentencepiece_file(path: impl AsRef<Path>) -> Result<Self, TokenizeError> {
        let path = path.as_ref();
        let name = path.display().to_string();
        let bytes = std::fs::read(path).map_err(|e| invalid(&name, format!("cannot read: {e}")))?;
        Self::from_sentencepiece(&name, &bytes)
    }

    /// Parses the bytes of a sentencepiece model.
    pub fn from_sentencepiece(name: &str, bytes: &[u8]) -> Result<Self, TokenizeError> {
        Self::from_pieces(name, sentencepiece_pieces(name, bytes)?)
    }

    /// A T5 checkpoint's vocabulary as `transformers`' `T5Tokenizer` builds it from the files:
    /// the sentencepiece pieces, then `extra_ids` sentinels (`<extra_id_0>` last) unless the
    /// model has its own, then the tokens of `added_tokens.json` at their ids (ProstT5's 3Di
    /// letters and `<AA2fold>`/`<fold2AA>`).
    pub fn from_t5_files(
        spiece: &Path,
        extra_ids: usize,
        added_tokens: Option<&Path>,
    ) -> Result<Self, TokenizeError> {
        let name = spiece.display().to_string();
        let bytes =
            std::fs::read(spiece).map_err(|e| invalid(&name, format!("cannot read: {e}")))?;
        let mut pieces = sentencepiece_pieces(&name, &bytes)?;
        if !pieces.iter().any(|p| p.starts_with("<extra_id_")) {
            pieces.extend((0..extra_ids).rev().map(|i| format!("<extra_id_{i}>")));
        }
        if let Some(path) = added_tokens {
            let name = path.display().to_string();
            let text = std::fs::read_to_string(path)
                .map_err(|e| invalid(&name, format!("cannot read: {e}")))?;
            let json: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&text)
                .map_err(|e| invalid(&name, format!("not a JSON object of token ids: {e}")))?;
            let mut added = json
                .into_iter()
                .map(|(token, id)| match id.as_u64() {
                    Some(id) => Ok((id as usize, token)),
                    None => Err(invalid(&name, format!("{token:?} has no integer id"))),
                })
                .collect::<Result<Vec<_>, _>>()?;
            added.sort();
            for (id, token) in added {
                match pieces.get(id) {
                    Some(existing) if *existing == token => {}
                    Some(existing) => {
                        return Err(invalid(
                            &name,
                            format!("{token:?} at id {id}, which is already {existing:?}"),
                        ));
                    }
                    None if id == pieces.len() => pieces.push(token),
                    None => {
                        return Err(invalid(
                            &name,
                            format!(
                                "{token:?} at id {id}, but the vocabulary before it ends at {}",
                                pieces.len()
                            ),
                        ));
                    }
                }
            }
        }
        Self::from_pieces(&name, pieces)
    }

    /// Reads a Hugging Face `tokenizer.json` (Unigram, BPE, WordPiece or WordLevel model, plus
    /// its added tokens).
    pub fn from_tokenizer_json_file(path: impl AsRef<Path>) -> Result<Self, TokenizeError> {
        let path = path.as_ref();
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path)
            .map_err(|e| invalid(&name, format!("cannot read: {e}")))?;
        Self::from_tokenizer_json(&name, &text)
    }

    /// Parses the text of a Hugging Face `tokenizer.json`.
    pub fn from_tokenizer_json(name: &str, text: &str) -> Result<Self, TokenizeError> {
        let json: serde_json::Value =
            serde_json::from_str(text).map_err(|e| invalid(name, format!("not JSON: {e}")))?;
        let mut by_id: Vec<Option<String>> = Vec::new();
        let mut put = |id: u64, piece: &str| -> Result<(), TokenizeError> {
            let id =
                usize::try_from(id).map_err(|_| invalid(name, format!("id {id} is too large")))?;
            if id >= 4096 {
                return Err(invalid(
                    name,
                    format!("id {id} is too large for a protein vocabulary"),
                ));
            }
            if by_id.len() <= id {
                by_id.resize(id + 1, None);
            }
            match &by_id[id] {
                Some(existing) if existing != piece => Err(invalid(
                    name,
                    format!("id {id} is both {existing:?} and {piece:?}"),
                )),
                _ => {
                    by_id[id] = Some(piece.to_string());
                    Ok(())
                }
            }
        };
        let vocab = &json["model"]["vocab"];
        match vocab {
            // Unigram: `[[piece, score], ...]`, the id is the position.
            serde_json::Value::Array(entries) => {
                for (id, entry) in entries.iter().enumerate() {
                    let piece = entry[0].as_str().ok_or_else(|| {
                        invalid(name, format!("model.vocab[{id}] is not [piece, score]"))
                    })?;
                    put(id as u64, piece)?;
                }
            }
            // BPE, WordPiece, WordLevel: `{piece: id}`.
            serde_json::Value::Object(entries) => {
                for (piece, id) in entries {
                    let id = id.as_u64().ok_or_else(|| {
                        invalid(name, format!("model.vocab[{piece:?}] is not an id"))
                    })?;
                    put(id, piece)?;
                }
            }
            _ => return Err(invalid(name, "no model.vocab list or map".into())),
        }
        for token in json["added_tokens"].as_array().into_iter().flatten() {
            if let (Some(id), Some(content)) = (token["id"].as_u64(), token["content"].as_str()) {
                put(id, content)?;
            }
        }
        let pieces = by_id
            .into_iter()
            .enumerate()
            .map(|(id, p)| p.ok_or_else(|| invalid(name, format!("no token has id {id}"))))
            .collect::<Result<Vec<_>, _>>()?;
        Self::from_pieces(name, pieces)
    }

    /// A vocabulary of sentencepiece-style pieces; the layout follows the special tokens:
    /// `[CLS]`/`[SEP]` frame as BERT (ALBERT), `<cls>`/`<sep>` as XLNet (at the end, padded on
    /// the left), `</s>` alone as T5.
    fn from_pieces(name: &str, pieces: Vec<String>) -> Result<Self, TokenizeError> {
        let find = |names: &[&str]| {
            names
                .iter()
                .find_map(|n| pieces.iter().position(|p| p == n))
                .map(|i| i as u32)
        };
        let pad = find(&["<pad>", "[PAD]"])
            .ok_or_else(|| invalid(name, "no <pad> or [PAD] piece".into()))?;
        let bert_style = find(&["[CLS]"]).is_some();
        let xlnet_style = !bert_style && find(&["<cls>"]).is_some();
        let (layout, padding) = if bert_style {
            (SequenceLayout::ClsResiduesSep, PaddingSide::Right)
        } else if xlnet_style {
            (SequenceLayout::ResiduesSepCls, PaddingSide::Left)
        } else {
            (SequenceLayout::ResiduesEos, PaddingSide::Right)
        };
        let specials = SpecialTokens {
            pad,
            unk: find(&["<unk>", "[UNK]"]),
            cls: find(&["[CLS]", "<cls>"]),
            sep: find(&["[SEP]", "<sep>"]),
            mask: find(&["[MASK]", "<mask>"]),
            eos: (layout == SequenceLayout::ResiduesEos)
                .then(|| find(&["</s>"]))
                .flatten(),
        };
        Self::new(name, pieces, specials, layout, padding)
    }
}

/// The pieces of a sentencepiece model, by id.
fn sentencepiece_pieces(name: &str, bytes: &[u8]) -> Result<Vec<String>, TokenizeError> {
    let model = ModelProto::decode(bytes)
        .map_err(|e| invalid(name, format!("not a sentencepiece model: {e}")))?;
    model
        .pieces
        .into_iter()
        .enumerate()
        .map(|(id, p)| {
            p.piece
                .ok_or_else(|| invalid(name, format!("piece {id} has no text")))
        })
        .collect()
}

fn invalid(name: &str, message: String) -> TokenizeError {
    TokenizeError::InvalidVocabulary {
        vocabulary: name.to_string(),
        message,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode_piece(piece: &str) -> Vec<u8> {
        SentencePiece {
            piece: Some(piece.to_string()),
            score: Some(0.0),
        }
        .encode_to_vec()
    }

    #[test]
    fn word_start_pieces_are_the_residues() {
        let mut pieces: Vec<String> = ["<pad>", "<unk>", "[CLS]", "[SEP]", "[MASK]", "▁", "L"]
            .map(String::from)
            .to_vec();
        pieces.extend(
            b"LAGVESIKRDTPNQFYMHCWX"
                .iter()
                .map(|&r| format!("▁{}", r as char)),
        );
        let mut bytes = Vec::new();
        for piece in &pieces {
            let body = encode_piece(piece);
            bytes.push(0x0a); // field 1, length-delimited
            bytes.push(body.len() as u8);
            bytes.extend(body);
        }
        let v = Vocabulary::from_sentencepiece("test", &bytes).unwrap();
        assert_eq!(
            v.residue_id(b'L'),
            Some(7),
            "▁L wins over the plain L piece"
        );
        assert_eq!(v.residue_id(b'A'), Some(8));
        assert_eq!(v.specials().mask, Some(4));
        assert_eq!(v.layout(), SequenceLayout::ClsResiduesSep);
        assert!(v.is_special(5), "the bare word mark is not a residue");
    }

    #[test]
    fn garbage_is_a_clear_error() {
        let err = Vocabulary::from_sentencepiece("spiece.model", b"\xff\xff\xff").unwrap_err();
        assert!(err.to_string().contains("spiece.model"), "{err}");
        let err = Vocabulary::from_tokenizer_json("tokenizer.json", "{}").unwrap_err();
        assert!(err.to_string().contains("model.vocab"), "{err}");
    }

    #[test]
    fn tokenizer_json_with_gaps_is_refused() {
        let text = r#"{"model": {"type": "WordLevel", "vocab": {"<pad>": 0, "A": 2}}}"#;
        let err = Vocabulary::from_tokenizer_json("t.json", text).unwrap_err();
        assert!(err.to_string().contains("no token has id 1"), "{err}");
    }
}
