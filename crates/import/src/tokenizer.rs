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
        VocabularySource::VocabTxtOrDefault | VocabularySource::Default => built_in(),
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
    let vocabulary = match vocabulary_origin(dir, config)? {
        VocabularyOrigin::VocabTxt(path) => {
            let text = std::fs::read_to_string(&path).map_err(|source| ImportError::Io {
                path: path.clone(),
                source,
            })?;
            Vocabulary::from_bert_vocab_txt(&path.display().to_string(), &text)?
        }
        VocabularyOrigin::SentencePiece(path) => Vocabulary::from_sentencepiece_file(&path)?,
        VocabularyOrigin::TokenizerJson(path) => Vocabulary::from_tokenizer_json_file(&path)?,
        VocabularyOrigin::BuiltIn(_) => config.default_vocabulary(),
    };
    if vocabulary.len() > config.vocab_size() {
        return Err(ImportError::Vocabulary(format!(
            "{}: the vocabulary has {} tokens but the model only {} embeddings",
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
    Ok(Tokenizer::new(vocabulary).with_rare_residues(rare))
}
