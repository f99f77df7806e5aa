//! # prottrans
//!
//! ProtTrans protein language models (Elnaggar et al., TPAMI 2021) on
//! [burn](https://burn.dev): one model code base for every backend burn supports, chosen by
//! cargo features at build time and by a device string at run time.
//!
//! This facade re-exports the parts:
//!
//! | module | crate | what |
//! |---|---|---|
//! | [`backend`] | `prottrans-backend` | compiled-in backends, `--device` parsing |
//! | [`data`] | `prottrans-data` | Rostlab tokenizers, FASTA, sequence store, length-grouped batches |
//! | [`models`] | `prottrans-models` | shared blocks and one file per architecture: ProtBert, ProtAlbert, ProtElectra, ProtT5, ProtXLNet, ProtTXL |
//! | [`import`] | `prottrans-import` | Hugging Face checkpoint directories in and out |
//! | [`train`] | `prottrans-train` | objectives, recipes and burn-train pretraining |
//! | [`embed`] | `prottrans-embed` | per-residue and per-protein embeddings, FASTA to h5/npz |
//! | [`generate`] | `prottrans-generate` | new proteins from XLNet and Transformer-XL, ProtT5 fill-in |
//! | [`transfer`] | `prottrans-transfer` | supervised heads on frozen embeddings: secondary structure, localisation |
//!
//! ```no_run
//! use prottrans::prelude::*;
//!
//! let device = DeviceSpec::Cpu.device()?;
//! let config = PretrainConfig::from_toml_file("configs/quickstart.toml")?;
//! let report = pretrain(PretrainRun {
//!     config,
//!     train: "data/samples/uniprot_train.fasta.gz".into(),
//!     valid: "data/samples/uniprot_valid.fasta.gz".into(),
//!     out: "runs/quickstart".into(),
//!     device,
//!     extra_devices: Vec::new(),
//!     strategy: DataParallel::Gather,
//!     resume: false,
//! })?;
//! println!("{report}");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub use prottrans_backend as backend;
pub use prottrans_data as data;
pub use prottrans_embed as embed;
pub use prottrans_generate as generate;
pub use prottrans_import as import;
pub use prottrans_models as models;
pub use prottrans_train as train;
pub use prottrans_transfer as transfer;

/// The re-exported burn, so users need not match its version.
pub use burn;

/// The names most programs need.
pub mod prelude {
    pub use prottrans_backend::{BackendError, DeviceSpec, compiled_backends};
    pub use prottrans_data::{FastaReader, RareResidues, SequenceStore, Tokenizer, Vocabulary};
    pub use prottrans_embed::{EmbedJob, EmbedOptions, Embedder, Precision, mean_over_residues};
    pub use prottrans_import::{
        Checkpoint, load_albert_for_masked_lm, load_bert_for_masked_lm, load_electra,
        load_pretrained, load_t5, save_albert_for_masked_lm, save_bert_for_masked_lm, save_electra,
        save_pretrained, save_t5, save_transfo_xl_lm_head, save_xlnet_lm_head,
    };
    pub use prottrans_models::{
        AlbertConfig, AlbertForMaskedLm, Architecture, BertConfig, BertForMaskedLm, Electra,
        ElectraConfig, ElectraForMaskedLm, ElectraForPreTraining, EncoderInput, EsmConfig,
        EsmForMaskedLm, EsmModel, ModelConfig, ProteinEncoder, SegmentMemory, T5Config,
        T5EncoderModel, T5ForConditionalGeneration, TransfoXlConfig, TransfoXlLmHeadModel,
        TransfoXlModel, XlnetConfig, XlnetInput, XlnetLmHeadModel, XlnetModel,
    };
    pub use prottrans_train::{
        DataParallel, PretrainConfig, PretrainReport, PretrainRun, init_model, pretrain,
    };
    pub use prottrans_transfer::{
        Evaluation, FeatureSpec, HeadOptions, HeadTraining, LabelledSet, Pooling, Task, evaluate,
        train_head,
    };
}
