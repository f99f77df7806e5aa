//! The tokenizer a checkpoint was trained with.

use std::fmt;
use std::path::{Path, PathBuf};

use prottrans_data::{RareResidues, Tokenizer, Vocabulary};
use prottrans_models::{ModelConfig, VocabularySource};

use crate::ImportError;

/// Where a checkpoint's vocabulary comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VocabularyOrigin {
    /// The checkpoint's `vocab.txt` (BERT-style, one token per line).
    VocabTxt(PathBuf),
    /// The checkpoint's sentencepiece `spiece.model`.
    SentencePiece(PathBuf),
    /// A T5 checkpoint's `spiece.model`, with T5's extra ids and `added_tokens.json` when
    /// there is one.
    T5SentencePiece {
        /// `spiece.model`.
        spiece: PathBuf,
        /// `added_tokens.json`.
        added_tokens: Option<PathBuf>,
    },
    /// The checkpoint's Hugging Face `tokenizer.json`.
    TokenizerJson(PathBuf),
    /// The vocabulary built into prottrans for the architecture (the released one).
    BuiltIn(String),
}

impl fmt::Display for VocabularyOrigin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::VocabTxt(path) | Self::SentencePiece(path) | Self::TokenizerJson(path) => {
                write!(f, "{}", path.display())
            }
            Self::T5SentencePiece {
                spiece,
                added_tokens: None,
            } => write!(f, "{}", spiece.display()),
            Self::T5SentencePiece {
                spiece,
                added_tokens: Some(added),
            } => write!(f, "{} + {}", spiece.display(), added.display()),
            Self::BuiltIn(name) => write!(f, "built in ({name})"),
        }
    }
}

/// Which vocabulary a checkpoint is read with: the checkpoint's own `vocab.txt` when it has
/// one, the released vocabulary otherwise; ALBERT and XLNet only from the checkpoint's files.
pub fn vocabulary_origin(
    dir: &Path,
    config: &ModelConfig,
) -> Result<VocabularyOrigin, ImportError> {
    let vocab_txt = dir.join("vocab.txt");
    let built_in = || VocabularyOrigin::BuiltIn(config.default_vocabulary().name().to_string());
    Ok(match config.vocabulary() {
        VocabularySource::VocabTxtOrDefault if vocab_txt.is_file() => {
            VocabularyOrigin::VocabTxt(vocab_txt)
        }
        VocabularySource::VocabTxtOrDefault => built_in(),
        VocabularySource::T5FilesOrDefault => {
            let (spiece, tokenizer_json) = (dir.join("spiece.model"), dir.join("tokenizer.json"));
            let added_tokens = dir.join("added_tokens.json");
            if spiece.is_file() {
                VocabularyOrigin::T5SentencePiece {
                    spiece,
                    added_tokens: added_tokens.is_file().then_some(added_tokens),
                }
            } else if tokenizer_json.is_file() {
                VocabularyOrigin::TokenizerJson(tokenizer_json)
            } else {
                built_in()
            }
        }
        // ProtAlbert's 34-piece and ProtXLNet's 37-piece sentencepiece tables are not published
        // in full, so they are read from the checkpoint (the released ones ship `spiece.model`),
        // never guessed.
        VocabularySource::Checkpoint => {
            let spiece = dir.join("spiece.model");
            let tokenizer_json = dir.join("tokenizer.json");
            if spiece.is_file() {
                VocabularyOrigin::SentencePiece(spiece)
            } else if tokenizer_json.is_file() {
                VocabularyOrigin::TokenizerJson(tokenizer_json)
            } else if vocab_txt.is_file() {
                VocabularyOrigin::VocabTxt(vocab_txt)
            } else {
                return Err(ImportError::Vocabulary(format!(
                    "{}: an {} checkpoint needs its vocabulary: spiece.model (as Rostlab/prot_{} ships it), tokenizer.json or vocab.txt",
                    dir.display(),
                    config.architecture().name().to_uppercase(),
                    config.architecture().name()
                )));
            }
        }
    })
}

/// The tokenizer an architecture was trained with (see [`vocabulary_origin`]), with rare
/// residues handled as its authors did and letters the vocabulary lacks mapped to its unknown
/// token.
pub fn checkpoint_tokenizer(dir: &Path, config: &ModelConfig) -> Result<Tokenizer, ImportError> {
    let origin = vocabulary_origin(dir, config)?;
    let vocabulary = match origin.clone() {
        VocabularyOrigin::VocabTxt(path) => {
            let text = std::fs::read_to_string(&path).map_err(|source| ImportError::Io {
                path: path.clone(),
                source,
            })?;
            Vocabulary::from_bert_vocab_txt(&path.display().to_string(), &text)?
        }
        VocabularyOrigin::SentencePiece(path) => Vocabulary::from_sentencepiece_file(&path)?,
        VocabularyOrigin::TokenizerJson(path) => Vocabulary::from_tokenizer_json_file(&path)?,
        VocabularyOrigin::T5SentencePiece {
            spiece,
            added_tokens,
        } => Vocabulary::from_t5_files(&spiece, t5_extra_ids(dir)?, added_tokens.as_deref())?,
        VocabularyOrigin::BuiltIn(_) => config.default_vocabulary(),
    };
    if vocabulary.len() > config.vocab_size() {
        return Err(ImportError::Vocabulary(format!(
            "{}: the vocabulary ({origin}) has {} tokens but the model only {} embeddings (config.json's vocab_size)",
            dir.display(),
            vocabulary.len(),
            config.vocab_size()
        )));
    }
    // Rare residues as each model's authors handled them: ProtTrans mapped U, Z, O and B to X
    // before training; ESM kept them as tokens of their own.
    let rare = if config.keeps_rare_residues() {
        RareResidues::Keep
    } else {
        RareResidues::MapToX
    };
    // ProstT5 reads amino acids after `<AA2fold>`, the direction of translation.
    let prefix = vocabulary.id(PROSTT5_AMINO_ACID_PREFIX);
    Ok(Tokenizer::new(vocabulary)
        .with_rare_residues(rare)
        .with_prefix(prefix))
}

/// The token ProstT5 puts before amino-acid sequences (`<fold2AA>` before 3Di ones).
pub const PROSTT5_AMINO_ACID_PREFIX: &str = "<AA2fold>";

/// `extra_ids` of a T5 checkpoint's `tokenizer_config.json` (100, `T5Tokenizer`'s default,
/// when it does not say).
fn t5_extra_ids(dir: &Path) -> Result<usize, ImportError> {
    let path = dir.join("tokenizer_config.json");
    if !path.is_file() {
        return Ok(100);
    }
    let text = std::fs::read_to_string(&path).map_err(|source| ImportError::Io {
        path: path.clone(),
        source,
    })?;
    let json: serde_json::Value = serde_json::from_str(&text)
        .map_err(|e| ImportError::Vocabulary(format!("{}: not JSON: {e}", path.display())))?;
    match &json["extra_ids"] {
        serde_json::Value::Null => Ok(100),
        value => value.as_u64().map(|n| n as usize).ok_or_else(|| {
            ImportError::Vocabulary(format!(
                "{}: extra_ids is not a count: {value}",
                path.display()
            ))
        }),
    }
}
