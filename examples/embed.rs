//! Embed proteins from Rust: a few sequences in memory, then a whole FASTA file into `.npz`.
//!
//! ```sh
//! cargo run --release --example embed -- [CHECKPOINT_DIR]
//! ```
//!
//! CHECKPOINT_DIR is a Hugging Face checkpoint directory (a download of `Rostlab/prot_bert`, or
//! the `model/` that `prottrans pretrain` writes); without it, the tiny random ProtBert test
//! fixture is used, which shows the API but embeds nothing meaningful.

use prottrans::embed::{EmbedJob, EmbedOptions, Embedder, mean_over_residues};
use prottrans::prelude::*;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let model = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "tests/fixtures/bert_tiny".into());
    let device = DeviceSpec::Cpu.device()?;
    let embedder = Embedder::load(&model, &device)?;

    // A few sequences: one [L, d] array each, and the per-protein mean.
    let melittin = "GIGAVLKVLTTGLPALISWIKRKRQQ";
    let residues = embedder.embed(melittin)?;
    let protein = mean_over_residues(&residues);
    println!(
        "melittin: per-residue {:?}, per-protein {:?}, first values {:.4?}",
        residues.shape(),
        protein.shape(),
        &protein.as_slice().unwrap_or(&[])[..4.min(protein.len())]
    );

    // A FASTA file, the way `prottrans embed` does it: sorted, batched, resumable.
    let output = std::env::temp_dir().join("prottrans-example-embed.npz");
    let _ = std::fs::remove_file(&output);
    let summary = EmbedJob {
        embedder: &embedder,
        input: "data/samples/uniprot_valid.fasta.gz".into(),
        output: output.clone(),
        options: EmbedOptions {
            per_protein: true,
            // The fixture has 64 positions; real checkpoints take far longer proteins.
            long_policy: prottrans::embed::LongPolicy::Skip,
            ..EmbedOptions::default()
        },
    }
    .run(&mut |_| {})?;
    println!(
        "{} proteins ({} residues) in {:.2} s, {} skipped as too long for this model -> {}",
        summary.proteins,
        summary.residues,
        summary.seconds,
        summary.skipped_long.len(),
        output.display()
    );
    Ok(())
}
