//! The tokenizer a checkpoint was trained with.

use std::path::Path;

use prottrans_data::{Tokenizer, Vocabulary};
use prottrans_models::ModelConfig;

use crate::ImportError;

/// The tokenizer an architecture was trained with: the checkpoint's own `vocab.txt` when it
/// has one, the released vocabulary otherwise.
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
    let vocabulary = match config {
        ModelConfig::Bert(_) | ModelConfig::Electra(_) | ModelConfig::TransfoXl(_)
            if vocab_txt.is_file() =>
        {
            read_vocab_txt()?
        }
        // ProtElectra was trained with ProtBert's vocabulary; prottrans trains Transformer-XL
        // with it too (ProtTXL's was not released).
        ModelConfig::Bert(_) | ModelConfig::Electra(_) | ModelConfig::TransfoXl(_) => {
            Vocabulary::prot_bert()
        }
        // ProtAlbert's 34-piece and ProtXLNet's 37-piece sentencepiece tables are not published
        // in full, so they are read from the checkpoint (the released ones ship `spiece.model`),
        // never guessed.
        ModelConfig::Albert(_) | ModelConfig::Xlnet(_) => {
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
        // One sentencepiece piece per residue with fixed ids: `spiece.model` adds nothing.
        ModelConfig::T5(_) => Vocabulary::prot_t5(),
    };
    if vocabulary.len() > config.vocab_size() {
        return Err(ImportError::Vocabulary(format!(
            "{}: the vocabulary has {} tokens but the model only {} embeddings",
            dir.display(),
            vocabulary.len(),
            config.vocab_size()
        )));
    }
    Ok(Tokenizer::new(vocabulary))
}
