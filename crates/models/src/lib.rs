//! ProtTrans architectures as burn modules.
//!
//! - [`blocks`]: pieces shared by every architecture (multi-head attention with a padding mask
//!   and an optional additive position bias, feed-forward, activations).
//! - [`encoder`]: the [`ProteinEncoder`] seam that embedding extraction and supervised heads use,
//!   whatever the architecture; [`architecture`]: the [`ArchitectureConfig`] trait each
//!   architecture implements (names, checkpoint signature, vocabulary, encoder, key map);
//!   [`key_map`]: checkpoint key tables as data. These sit below the models.
//! - one file per architecture: [`bert`] (ProtBert), [`albert`] (ProtAlbert), [`electra`]
//!   (ProtElectra), [`t5`] (ProtT5), [`xlnet`] (ProtXLNet), [`transfo_xl`] (ProtTXL) and
//!   [`esm`] (ESM-2).
//! - [`registry`]: one line per architecture, above the models: [`ModelConfig`] (read from
//!   prottrans TOML or a Hugging Face `config.json`), [`Encoder`] and [`ConfigVisitor`], through
//!   which the other crates dispatch.
//!
//! Model code never names a backend: tensors live on whatever [`burn::tensor::Device`] the
//! caller picked.

pub mod albert;
pub mod architecture;
pub mod bert;
pub mod blocks;
mod cast;
pub mod electra;
pub mod encoder;
mod error;
pub mod esm;
pub mod key_map;
pub mod registry;
pub mod t5;
pub mod transfo_xl;
pub mod xlnet;

pub use albert::{AlbertConfig, AlbertForMaskedLm, AlbertModel};
pub use architecture::{
    ArchitectureConfig, LoraTargets, MaskedLanguageModel, PretrainedModel, VocabularySource,
};
pub use bert::{BertConfig, BertForMaskedLm, BertModel};
pub use blocks::SegmentMemory;
pub use cast::cast_floats;
pub use electra::{
    Electra, ElectraConfig, ElectraForMaskedLm, ElectraForPreTraining, ElectraGeneratorConfig,
    ElectraModel,
};
pub use encoder::{EncoderInput, EncoderOutput, ProteinEncoder};
pub use error::ModelConfigError;
pub use esm::{EsmConfig, EsmForMaskedLm, EsmModel};
pub use registry::{
    Architecture, ConfigVisitor, Encoder, ModelConfig, Objective, PretrainingVisitor,
    RegisteredConfig,
};
pub use t5::{T5Config, T5EncoderModel, T5ForConditionalGeneration};
pub use transfo_xl::{TransfoXlConfig, TransfoXlLmHeadModel, TransfoXlModel, TransfoXlOutput};
pub use xlnet::{XlnetConfig, XlnetInput, XlnetLmHeadModel, XlnetModel, XlnetOutput};
