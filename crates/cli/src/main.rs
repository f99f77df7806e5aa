//! The `prottrans` command.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use prottrans::prelude::*;

/// ProtTrans protein language models on burn: pretraining today; embeddings, checkpoint import
/// and supervised heads follow.
///
/// Every command takes `--device` (cpu, wgpu, vulkan, metal, cuda:N, rocm:N, tch, ...); which
/// backends exist is decided when prottrans is built (`cargo build --features wgpu,...`);
/// `prottrans devices` lists them.
#[derive(Parser, Debug)]
#[command(name = "prottrans", version, about, long_about, max_term_width = 100)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Pretrain a model from FASTA with its objective (ProtBert: masked LM).
    ///
    /// Writes to OUT: config.toml (the recipe), checkpoint/ (every `checkpoint_every` steps),
    /// metrics.jsonl, model/ (config.json + model.safetensors, the Hugging Face layout) and
    /// report.json (validation loss and accuracy against the unigram baseline).
    Pretrain {
        /// Training recipe (TOML), e.g. configs/quickstart.toml.
        #[arg(long)]
        config: PathBuf,
        /// Training sequences, FASTA (plain or .gz).
        #[arg(long)]
        train: PathBuf,
        /// Validation sequences, FASTA (plain or .gz).
        #[arg(long)]
        valid: PathBuf,
        /// Output directory.
        #[arg(long)]
        out: PathBuf,
        /// Device to train on.
        #[arg(long, default_value = "cpu", env = "PROTTRANS_DEVICE")]
        device: DeviceSpec,
        /// Continue from the latest checkpoint in OUT.
        #[arg(long)]
        resume: bool,
    },
    /// List the backends compiled into this build.
    Devices,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", describe(&error));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes, skipping causes whose text the message already contains (the
/// library's errors quote their source so that they read well on their own).
fn describe(error: &anyhow::Error) -> String {
    let mut message = String::new();
    for cause in error.chain() {
        let text = cause.to_string();
        if !message.contains(&text) {
            if !message.is_empty() {
                message.push_str(": ");
            }
            message.push_str(&text);
        }
    }
    message
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Pretrain {
            config,
            train,
            valid,
            out,
            device,
            resume,
        } => {
            let recipe = PretrainConfig::from_toml_file(&config)?;
            let device = device.device()?;
            let report = pretrain(PretrainRun {
                config: recipe,
                train,
                valid,
                out: out.clone(),
                device,
                resume,
            })
            .with_context(|| format!("pretraining into {}", out.display()))?;
            println!("{report}");
            let verdict = if report.valid_loss < report.unigram_loss {
                "below"
            } else {
                "NOT below"
            };
            println!(
                "masked-residue loss is {verdict} the unigram baseline ({:.4} vs {:.4} nats)",
                report.valid_loss, report.unigram_loss
            );
            Ok(())
        }
        Command::Devices => {
            for backend in prottrans::backend::BACKENDS {
                println!(
                    "{:<11} {:<9} feature `{}`  {}",
                    backend.name,
                    if backend.compiled { "compiled" } else { "-" },
                    backend.feature,
                    backend.description
                );
            }
            Ok(())
        }
    }
}
