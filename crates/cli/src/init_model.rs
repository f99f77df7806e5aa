//! `prottrans init-model`: a randomly initialised model of a recipe's shape, saved as
//! `pretrain` saves its models (vocabulary included; ELECTRA's generator in `generator/`).

use std::path::PathBuf;

use anyhow::Context;
use prottrans::prelude::*;

#[derive(clap::Args, Debug)]
pub struct InitModelArgs {
    /// Training recipe (TOML) whose [model] section gives the shape.
    #[arg(long)]
    config: PathBuf,
    /// Output directory (config.json + model.safetensors).
    #[arg(long)]
    out: PathBuf,
    /// Seed of the initialisation (default: the recipe's data seed, as `pretrain` uses).
    #[arg(long)]
    seed: Option<u64>,
    /// Replace a model already in OUT.
    #[arg(long)]
    force: bool,
}

pub fn run(
    InitModelArgs {
        config,
        out,
        seed,
        force,
    }: InitModelArgs,
) -> anyhow::Result<()> {
    let recipe = PretrainConfig::from_toml_file(&config)?;
    let existing = ["config.json", "model.safetensors", "pytorch_model.bin"]
        .iter()
        .find(|file| out.join(file).exists());
    if let Some(file) = existing
        && !force
    {
        anyhow::bail!(
            "{} already holds a model ({file}); --force replaces it",
            out.display()
        );
    }
    let device = DeviceSpec::Cpu.device()?;
    device.seed(seed.unwrap_or(recipe.data.seed));
    let shape = prottrans::train::init_model(&recipe, &device, &out)
        .with_context(|| format!("writing {}", out.display()))?;
    println!("random {shape} written to {}", out.display());
    Ok(())
}
