//! `prottrans merge` and `prottrans verify`: shard outputs into one file, and any output checked
//! against its FASTA input.

use std::path::PathBuf;

use anyhow::Context;
use prottrans::embed::{Coverage, EmbedError, MergeOptions, MissingProtein};

#[derive(clap::Args, Debug)]
pub struct MergeArgs {
    /// The FASTA file the shards were embedded from: every protein of it must be in exactly
    /// one shard.
    #[arg(long)]
    input: PathBuf,
    /// The merged file (.npz or .h5, new), sorted by key.
    #[arg(long)]
    output: PathBuf,
    /// Write the output even if proteins are missing (they are listed; `prottrans embed
    /// --resume --output OUTPUT` adds them later).
    #[arg(long)]
    allow_partial: bool,
    /// The shard outputs of `prottrans embed --shard`, all of one split.
    #[arg(required = true)]
    shards: Vec<PathBuf>,
}

#[derive(clap::Args, Debug)]
pub struct VerifyArgs {
    /// An output of `prottrans embed` or `prottrans merge` (or one shard's).
    output: PathBuf,
    /// The FASTA file it was embedded from.
    #[arg(long)]
    input: PathBuf,
}

pub fn merge(args: MergeArgs) -> anyhow::Result<()> {
    let bar = crate::progress_bar(0, "proteins");
    let result = prottrans::embed::merge(
        &args.shards,
        &args.input,
        &args.output,
        MergeOptions {
            allow_partial: args.allow_partial,
        },
        &mut |done, total| {
            bar.set_length(total as u64);
            bar.set_position(done as u64);
        },
    );
    bar.finish_and_clear();
    let coverage = match result {
        Ok(coverage) => coverage,
        Err(EmbedError::Incomplete {
            missing,
            absent_shards,
            input,
        }) => {
            list_missing(&missing);
            anyhow::bail!(
                "{} protein(s) of {} are in none of the {} shard file(s){}; nothing was written (embed them with --resume on their shards, or pass --allow-partial)",
                missing.len(),
                input.display(),
                args.shards.len(),
                absent_note(&absent_shards)
            );
        }
        Err(error) => {
            return Err(error).with_context(|| format!("merging into {}", args.output.display()));
        }
    };
    report(&coverage);
    println!(
        "{}: {} proteins from {} shard file(s){}",
        args.output.display(),
        coverage.present,
        args.shards.len(),
        if coverage.is_complete() {
            String::new()
        } else {
            format!(
                ", {} missing (listed above; `prottrans embed --resume --output {}` adds them)",
                coverage.missing.len(),
                args.output.display()
            )
        }
    );
    Ok(())
}

pub fn verify(args: VerifyArgs) -> anyhow::Result<()> {
    let bar = crate::progress_bar(0, "proteins");
    let coverage = prottrans::embed::verify(&args.output, &args.input, &mut |done, total| {
        bar.set_length(total as u64);
        bar.set_position(done as u64);
    })
    .with_context(|| format!("verifying {}", args.output.display()))?;
    bar.finish_and_clear();
    report(&coverage);
    if !coverage.is_complete() {
        anyhow::bail!(
            "{}: {} of the {} protein(s) of {} are missing{}",
            args.output.display(),
            coverage.missing.len(),
            coverage.in_input,
            args.input.display(),
            absent_note(&coverage.absent_shards)
        );
    }
    println!(
        "{}: complete: {} of {} proteins, each once with a sound array{}",
        args.output.display(),
        coverage.present,
        coverage.in_input,
        if coverage.left_out.is_empty() {
            String::new()
        } else {
            format!(", {} left out on purpose", coverage.left_out.len())
        }
    );
    Ok(())
}

/// Every missing protein, one per line on standard output (to pipe into a list).
fn list_missing(missing: &[MissingProtein]) {
    if !missing.is_empty() {
        eprintln!("missing proteins (key, FASTA line, shard):");
    }
    for protein in missing {
        println!(
            "missing\t{}\t{}\t{}",
            protein.key,
            protein.line,
            protein.shard.as_deref().unwrap_or("-")
        );
    }
}

fn report(coverage: &Coverage) {
    list_missing(&coverage.missing);
    if !coverage.left_out.is_empty() {
        let shown = coverage.left_out.len().min(10);
        eprintln!(
            "{} protein(s) above the length limit of --skip-long were left out on purpose: {}{}",
            coverage.left_out.len(),
            coverage.left_out[..shown].join(", "),
            if coverage.left_out.len() > shown {
                ", ..."
            } else {
                ""
            }
        );
    }
}

fn absent_note(absent_shards: &[String]) -> String {
    if absent_shards.is_empty() {
        String::new()
    } else {
        format!(" (shard(s) {} not given)", absent_shards.join(", "))
    }
}
