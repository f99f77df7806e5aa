//! Models in the Hugging Face checkpoint layout: a directory with `config.json` and
//! `model.safetensors` or `pytorch_model.bin` (f32, f16 or bf16).
//!
//! Loading reads the architecture from `config.json`, builds the module and maps checkpoint
//! keys to module paths through a per-architecture table ([`key_map`]); every missing,
//! unexpected or wrongly shaped tensor is reported by name in one [`ImportError`]. Saving
//! writes the same layout, so a model trained by prottrans loads in prottrans and in
//! `transformers` alike.

mod adapter;
mod error;
mod hf;
mod inspect;
pub mod key_map;
mod names;
mod staged;
mod tokenizer;

pub use adapter::{
    ADAPTER_CONFIG_FILE, ADAPTER_WEIGHTS_FILE, AdapterMerge, LoraAdapter, LoraAdapterConfig,
};
pub use error::{ImportError, WeightProblems};
pub use hf::{
    CONFIG_FILE, Checkpoint, ELECTRA_GENERATOR_DIR, PYTORCH_FILE, SAFETENSORS_FILE, WeightsFormat,
    load_albert_for_masked_lm, load_bert_for_masked_lm, load_electra, load_pretrained, load_t5,
    save_albert_for_masked_lm, save_bert_for_masked_lm, save_electra, save_pretrained, save_t5,
    save_transfo_xl_lm_head, save_xlnet_lm_head,
};
pub use inspect::{CheckpointSummary, TensorInfo, VocabularySummary};
pub use names::compact_names;
pub use tokenizer::{
    PROSTT5_AMINO_ACID_PREFIX, VocabularyOrigin, checkpoint_tokenizer, vocabulary_origin,
};
