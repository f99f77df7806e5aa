//! `prottrans pretrain`: a model from FASTA with its own objective.

use std::path::PathBuf;

use anyhow::Context;
use prottrans::prelude::*;

#[derive(clap::Args, Debug)]
pub struct PretrainArgs {
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
    /// Device to train on; several, comma-separated (`cuda:0,cuda:1`), train data-parallel:
    /// each takes its own batch every step and the gradients are averaged (see --strategy).
    #[arg(
        long,
        default_value = "cpu",
        env = "PROTTRANS_DEVICE",
        value_delimiter = ','
    )]
    device: Vec<DeviceSpec>,
    /// How several devices combine their gradients: `gather` (on the first device; any
    /// backend) or `ddp` (all-reduced during the backward pass through NCCL, one optimiser
    /// per device; CUDA devices of one machine only). Both make the same update.
    #[arg(long, default_value = "gather")]
    strategy: DataParallel,
    /// Precision of the forward and backward passes (f32, f16 or bf16); overrides the
    /// recipe's `optimizer.precision`. Master weights and optimiser state stay f32.
    #[arg(long)]
    precision: Option<Precision>,
    /// Continue from the latest checkpoint in OUT.
    #[arg(long)]
    resume: bool,
}

pub fn run(args: PretrainArgs) -> anyhow::Result<()> {
    let PretrainArgs {
        config,
        train,
        valid,
        out,
        device,
        strategy,
        precision,
        resume,
    } = args;
    crate::warn_if_same(&train, &valid);
    let mut recipe = PretrainConfig::from_toml_file(&config)?;
    if let Some(precision) = precision {
        recipe.optimizer.precision = precision;
    }
    let mut devices = device
        .iter()
        .map(DeviceSpec::probe)
        .collect::<Result<Vec<_>, _>>()?
        .into_iter();
    let device = devices.next().context("--device names no device")?;
    let report = pretrain(PretrainRun {
        config: recipe,
        train,
        valid,
        out: out.clone(),
        device,
        extra_devices: devices.collect(),
        strategy,
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
        "loss on the hidden residues is {verdict} the unigram baseline ({:.4} vs {:.4} nats)",
        report.valid_loss, report.unigram_loss
    );
    Ok(())
}
