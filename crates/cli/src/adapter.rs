//! `prottrans merge-adapter`: a LoRA adapter (PEFT layout) merged into a checkpoint, written as
//! a checkpoint of its own.

use std::path::PathBuf;

use anyhow::Context;
use prottrans::import::LoraAdapter;

#[derive(clap::Args, Debug)]
pub struct MergeAdapterArgs {
    /// The base checkpoint (Hugging Face layout, model.safetensors).
    #[arg(long)]
    model: PathBuf,
    /// The LoRA adapter (adapter_config.json + adapter_model.safetensors, from `peft` or
    /// prottrans).
    #[arg(long)]
    adapter: PathBuf,
    /// The merged checkpoint's directory (config.json, vocabulary and model.safetensors).
    #[arg(long)]
    out: PathBuf,
    /// Replace a directory already at OUT.
    #[arg(long)]
    force: bool,
}

pub fn run(args: MergeAdapterArgs) -> anyhow::Result<()> {
    if args.out.exists() {
        anyhow::ensure!(
            args.force,
            "{} already exists; --force replaces it",
            args.out.display()
        );
    }
    let adapter = LoraAdapter::read(&args.adapter)?;
    // Checked like any load: the base must be a checkpoint prottrans reads.
    prottrans::import::Checkpoint::open(&args.model)?;
    let staged = args.out.with_file_name(format!(
        ".{}.replaced",
        args.out
            .file_name()
            .map_or("out".into(), |n| n.to_string_lossy())
    ));
    if args.out.exists() {
        std::fs::rename(&args.out, &staged)
            .with_context(|| format!("moving {} aside", args.out.display()))?;
    }
    match adapter.write_merged(&args.model, &args.out) {
        Ok(report) => {
            if staged.exists() {
                std::fs::remove_dir_all(&staged)
                    .with_context(|| format!("removing {}", staged.display()))?;
            }
            println!(
                "merged {} weight(s) of {} with {} (LoRA r={}, scaling {}) into {}",
                report.merged.len(),
                args.model.display(),
                args.adapter.display(),
                adapter.config().r,
                adapter.scaling(),
                args.out.display()
            );
            if !report.skipped.is_empty() {
                println!(
                    "skipped {} pair(s) for weights the checkpoint does not have: {}",
                    report.skipped.len(),
                    prottrans::import::compact_names(&report.skipped).join(", ")
                );
            }
            Ok(())
        }
        Err(error) => {
            if staged.exists() {
                std::fs::rename(&staged, &args.out).ok();
            }
            Err(error.into())
        }
    }
}
