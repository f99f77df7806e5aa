//! ProtTrans architectures as burn modules.
//!
//! - [`blocks`]: pieces shared by every architecture (multi-head attention with a padding mask
//!   and an optional additive position bias, feed-forward, activations).
//! - one file per architecture: [`bert`] (ProtBert), [`albert`] (ProtAlbert), [`electra`]
//!   (ProtElectra), [`t5`] (ProtT5), [`xlnet`] (ProtXLNet) and [`transfo_xl`] (ProtTXL).
//! - [`encoder`]: the [`ProteinEncoder`] seam that embedding extraction and supervised heads use,
//!   whatever the architecture.
//! - [`config`]: [`ModelConfig`], read from prottrans TOML or a Hugging Face `config.json`.
//!
//! Model code never names a backend: tensors live on whatever [`burn::tensor::Device`] the
//! caller picked.

pub mod albert;
pub mod bert;
pub mod blocks;
mod cast;
pub mod config;
pub mod electra;
pub mod encoder;
mod error;
pub mod t5;
pub mod transfo_xl;
pub mod xlnet;

pub use albert::{AlbertConfig, AlbertForMaskedLm, AlbertModel};
pub use bert::{BertConfig, BertForMaskedLm, BertModel};
pub use blocks::SegmentMemory;
pub use cast::cast_floats;
pub use config::{Architecture, ModelConfig};
pub use electra::{
    Electra, ElectraConfig, ElectraForMaskedLm, ElectraForPreTraining, ElectraGeneratorConfig,
    ElectraModel,
};
pub use encoder::{Encoder, EncoderInput, EncoderOutput, ProteinEncoder};
pub use error::ModelConfigError;
pub use t5::{T5Config, T5EncoderModel, T5ForConditionalGeneration};
pub use transfo_xl::{TransfoXlConfig, TransfoXlLmHeadModel, TransfoXlModel, TransfoXlOutput};
pub use xlnet::{XlnetConfig, XlnetInput, XlnetLmHeadModel, XlnetModel, XlnetOutput};
