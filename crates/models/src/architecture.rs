//! What every architecture tells the rest of prottrans about itself, implemented once in its own
//! file by its configuration type: names, checkpoint signature, vocabulary, the bare encoder and
//! its key map. [`crate::registry`] lists the implementations; import, embedding, heads and the
//! CLI dispatch through it rather than matching on architectures.

use std::fmt::Debug;

use burn::module::{Module, ModuleDisplay};
use burn::tensor::{Device, Int, Tensor};
use prottrans_tokenizer::Vocabulary;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::encoder::{EncoderInput, ProteinEncoder};
use crate::error::ModelConfigError;
use crate::key_map::KeyMap;

/// Where a checkpoint's tokenizer comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VocabularySource {
    /// The checkpoint's `vocab.txt` (BERT's or ESM's token names) when it has one, the
    /// architecture's [`ArchitectureConfig::default_vocabulary`] otherwise.
    VocabTxtOrDefault,
    /// T5's files, read as `transformers`' T5 tokenizers do: `spiece.model` with T5's extra
    /// ids and `added_tokens.json` (ProtT5, ProstT5), or `tokenizer.json` (Ankh); the default
    /// vocabulary (ProtT5's ids) when the checkpoint has neither.
    T5FilesOrDefault,
    /// The checkpoint's own `spiece.model`, `tokenizer.json` or `vocab.txt`, which must exist
    /// (the released sentencepiece tables are not published in full).
    Checkpoint,
}

/// `(short name, regex on checkpoint module names)` pairs; see
/// [`ArchitectureConfig::LORA_TARGETS`].
pub type LoraTargets = &'static [(&'static str, &'static str)];

/// One architecture, as its configuration type describes it.
pub trait ArchitectureConfig:
    Clone + Debug + Default + PartialEq + Serialize + DeserializeOwned + Send + Sync + 'static
{
    /// The bare encoder (no heads) embedding and supervised heads use.
    type Encoder: ProteinEncoder + Module + burn::module::ModuleDisplay;

    /// The Hugging Face `model_type`.
    const MODEL_TYPE: &'static str;
    /// The name in prottrans TOML and on the command line.
    const NAME: &'static str;
    /// The Hugging Face class prottrans saves this architecture as (`architectures` in
    /// `config.json`).
    const SAVED_CLASS: &'static str;
    /// A regex on checkpoint keys that only this architecture's checkpoints match (checked in
    /// registry order, so a more specific signature comes first).
    const SIGNATURE: &'static str;
    /// Where a checkpoint's tokenizer comes from.
    const VOCABULARY: VocabularySource = VocabularySource::VocabTxtOrDefault;
    /// Whether its authors kept U, Z, O and B as tokens of their own (ESM) rather than mapping
    /// them to X before training (ProtTrans).
    const KEEPS_RARE_RESIDUES: bool = false;
    /// The linear layers LoRA can adapt, by the short names `prottrans finetune
    /// --lora-targets` takes (`q`, `k`, `v`, `o`, `ffn`), each as a regex on the checkpoint's
    /// module names (a weight's key without `.weight`), as `peft`'s `target_modules` names them.
    const LORA_TARGETS: LoraTargets = &[];

    /// The vocabulary prottrans pretrains it with, and loads a checkpoint with when
    /// [`Self::VOCABULARY`] says so: ProtBert's 30 tokens unless the architecture has its own.
    fn default_vocabulary() -> Vocabulary {
        Vocabulary::prot_bert()
    }

    /// The shape in one line, for logs (`BERT, 6 layers, width 1024`).
    fn describe(&self) -> String;

    /// Every key a recipe's `[model]` may give, optional ones included.
    fn config_keys() -> Vec<String> {
        keys_of(&Self::default())
    }

    /// Checks the values.
    fn validate(&self) -> Result<(), ModelConfigError>;

    /// Width of the hidden states the encoder returns.
    fn hidden_size(&self) -> usize;

    /// Size of the token vocabulary the embedding matrix has rows for.
    fn vocab_size(&self) -> usize;

    /// The longest framed sequence (special tokens included) the model can take, or `None`
    /// when positions are relative and any length works.
    fn max_tokens(&self) -> Option<usize>;

    /// Bytes that one layer's attention holds per (query, key) pair of positions when it
    /// materialises them: 0 when its memory grows linearly with the length, as the fused kernel
    /// (`fused`: flex in f32) and burn's attention op on flex keep it for the shared multi-head
    /// attention (30 MiB for 8,000 residues through a tiny ESM-2 in bf16). An estimate, checked against peak memory, used to refuse a protein whose
    /// attention cannot fit instead of aborting on a failed allocation.
    fn attention_bytes_per_pair(&self, fused: bool) -> u64 {
        let _ = fused;
        0
    }

    /// Initialises the bare encoder on `device`.
    fn init_model(&self, device: &Device) -> Self::Encoder;

    /// The key map that loads the bare encoder from any checkpoint of this architecture, given
    /// the checkpoint's tensor names (some variants store a tensor under another name).
    fn encoder_key_map(&self, checkpoint_keys: &[String]) -> Result<KeyMap, ModelConfigError>;
}

/// A model with heads that has a Hugging Face class of its own (`BertForMaskedLM`,
/// `EsmForMaskedLM`, ...), loaded and saved whole.
pub trait PretrainedModel: Module + Sized {
    /// Its architecture's configuration.
    type Config: ArchitectureConfig;

    /// The Hugging Face class.
    const CLASS: &'static str;

    /// Initialises the model on `device`.
    fn init(config: &Self::Config, device: &Device) -> Self;

    /// The checkpoint <-> module key map.
    fn key_map(config: &Self::Config) -> Result<KeyMap, ModelConfigError>;
}

/// A model trained by masked language modelling (BERT, ALBERT, ESM-2): logits at chosen
/// positions.
pub trait MaskedLanguageModel: PretrainedModel + ModuleDisplay + 'static {
    /// Logits at flat positions (`row * seq + column`).
    ///
    /// # Shapes
    /// - input ids and mask `[batch, seq]`, positions `[n]` -> logits `[n, vocab]`
    fn logits_at(&self, input: EncoderInput, positions: Tensor<1, Int>) -> Tensor<2>;
}

/// The top-level keys `config` serialises to.
pub fn keys_of(config: &impl Serialize) -> Vec<String> {
    match serde_json::to_value(config) {
        Ok(serde_json::Value::Object(map)) => map.keys().cloned().collect(),
        _ => Vec::new(),
    }
}
