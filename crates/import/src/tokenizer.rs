//! The tokenizer a checkpoint was trained with.

use std::path::Path;

use prottrans_data::{RareResidues, Tokenizer, Vocabulary};
use prottrans_models::{ModelConfig, VocabularySource};

use crate::ImportError;

/// The tokenizer an architecture was trained with: the checkpoint's own `vocab.txt` when it
/// has one, the released vocabulary otherwise, with rare residues handled as its authors did.
pub fn checkpoint_tokenizer(dir: &Path, config: &ModelConfig) -> Result<Tokenizer, ImportError> {
    let vocab_txt = dir.join("vocab.txt");
    let read_vocab_txt = || -> Result<Vocabulary, ImportError> {
        let text = std::fs::read_to_string(&vocab_txt).map_err(|source| ImportError::Io {
            path: vocab_txt.clone(),
            source,
        })?;
        Ok(Vocabulary::from_bert_vocab_txt(
            &vocab_txt.display().to_string(),
            &text,
        )?)
    };
    let vocabulary = match config.vocabulary() {
        VocabularySource::VocabTxtOrDefault if vocab_txt.is_file() => read_vocab_txt()?,
        VocabularySource::VocabTxtOrDefault | VocabularySource::Default => {
            config.default_vocabulary()
        }
        // ProtAlbert's 34-piece and ProtXLNet's 37-piece sentencepiece tables are not published
        // in full, so they are read from the checkpoint (the released ones ship `spiece.model`),
        // never guessed.
        VocabularySource::Checkpoint => {
            let spiece = dir.join("spiece.model");
            let tokenizer_json = dir.join("tokenizer.json");
            if spiece.is_file() {
                Vocabulary::from_sentencepiece_file(&spiece)?
            } else if tokenizer_json.is_file() {
                Vocabulary::from_tokenizer_json_file(&tokenizer_json)?
            } else if vocab_txt.is_file() {
                read_vocab_txt()?
            } else {
                return Err(ImportError::Vocabulary(format!(
                    "{}: an {} checkpoint needs its vocabulary: spiece.model (as Rostlab/prot_{} ships it), tokenizer.json or vocab.txt",
                    dir.display(),
                    config.architecture().name().to_uppercase(),
                    config.architecture().name()
                )));
            }
        }
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
