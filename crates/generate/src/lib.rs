//! Generating proteins with ProtTrans checkpoints.
//!
//! - [`Sampler`]: new proteins from an XLNet or Transformer-XL, residue by residue, at a
//!   temperature among the most likely residues ([`SamplingOptions`]).
//! - [`Generator`]: a ProtT5 that fills in hidden residues (`_`) by greedy decoding, as it was
//!   pretrained to.
//! - [`MaskedLm`]: a BERT, ALBERT, ESM-2 or ELECTRA generator that fills in hidden residues,
//!   scores proteins (pseudo-log-likelihood) and variants (masked marginals), and measures
//!   masked-residue recovery.
//!
//! ```no_run
//! use burn::tensor::Device;
//! use prottrans_generate::{Generator, Sampler, SamplingOptions, seeded};
//!
//! let t5 = Generator::load("prot_t5_xl_uniref50", &Device::flex())?;
//! let filled = t5.fill("query", "MKT_AYIAK_QR", 13)?;
//! println!("{}", filled.output);
//!
//! let txl = Sampler::load("runs/txl/model", &Device::flex())?;
//! let sampled = txl.sample("prompt", "MKT", &SamplingOptions::default(), &mut seeded(1))?;
//! println!("{}", sampled.sequence);
//! # Ok::<(), prottrans_generate::GenerateError>(())
//! ```

mod error;
mod fill;
mod masked_lm;
mod sample;

pub use error::GenerateError;
pub use fill::{Filled, Generator, HIDDEN, Translated};
pub use masked_lm::{
    MaskPrediction, MaskedLm, Mutation, PseudoLikelihood, RecoveredPosition, Recovery, Variant,
    VariantScore, masked_lm_support,
};
pub use sample::{Sampled, Sampler, SamplingOptions, seeded};
