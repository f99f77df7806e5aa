//! `prottrans generate`: sampling from XLNet and Transformer-XL, fill-in with ProtT5.

use std::path::PathBuf;

use anyhow::Context;
use prottrans::prelude::*;

#[derive(clap::Args, Debug)]
pub struct GenerateArgs {
    /// Checkpoint directory (config.json + weights).
    #[arg(long)]
    model: PathBuf,
    /// XLNet/Transformer-XL: a prompt (residues to continue); ProtT5: a sequence with `_` at
    /// the residues to predict, e.g. MKT_AYIAK_QR; ProstT5: an amino-acid sequence to
    /// translate into 3Di. Repeatable.
    #[arg(long = "sequence")]
    sequences: Vec<String>,
    /// Most tokens to generate (T5 default: the input length plus one; sampling: 100).
    #[arg(long)]
    max_new_tokens: Option<usize>,
    /// Sampling: proteins per prompt.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    num_samples: u64,
    /// Sampling: softmax temperature (lower: closer to the most likely residue).
    #[arg(long, default_value_t = 1.0)]
    temperature: f32,
    /// Sampling: draw among the K most likely residues only (0: all).
    #[arg(long, default_value_t = 0)]
    top_k: usize,
    /// Sampling: random seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Device to run on.
    #[arg(long, default_value = "cpu", env = "PROTTRANS_DEVICE")]
    device: DeviceSpec,
}

pub fn run(args: GenerateArgs) -> anyhow::Result<()> {
    let GenerateArgs {
        model,
        sequences,
        max_new_tokens,
        num_samples,
        temperature,
        top_k,
        seed,
        device,
    } = args;
    let device = device.device()?;
    let checkpoint =
        Checkpoint::open(&model).with_context(|| format!("loading {}", model.display()))?;
    if prottrans::generate::Sampler::supports(checkpoint.config()) {
        return sample(
            &model,
            &device,
            sequences,
            max_new_tokens,
            (num_samples, temperature, top_k, seed),
        );
    }
    anyhow::ensure!(
        checkpoint.config().architecture() == prottrans::models::Architecture::T5,
        "{}: generate samples with an XLNet or Transformer-XL, fills in residues with a ProtT5 and translates to 3Di with a ProstT5; this is a {} (for a masked LM, see fill-mask)",
        model.display(),
        checkpoint.config().shape()
    );
    anyhow::ensure!(
        !sequences.is_empty(),
        "a T5 fills in residues (ProtT5) or translates them to 3Di (ProstT5): give at least one --sequence"
    );
    let generator = prottrans::generate::Generator::load(&model, &device)
        .with_context(|| format!("loading {}", model.display()))?;
    if generator.translates_to_3di() {
        println!("id\tinput\t3di");
        for (i, sequence) in sequences.iter().enumerate() {
            let id = format!("sequence{}", i + 1);
            let translated = generator.translate_to_3di(&id, sequence)?;
            println!("{id}\t{}\t{}", translated.input, translated.output);
        }
        return Ok(());
    }
    println!("id\tinput\toutput\tfilled");
    for (i, sequence) in sequences.iter().enumerate() {
        let id = format!("sequence{}", i + 1);
        let limit = max_new_tokens.unwrap_or(sequence.len() + 1);
        let filled = generator.fill(&id, sequence, limit)?;
        let positions: Vec<String> = filled
            .filled
            .iter()
            .map(|(p, r)| format!("{p}:{}", r.unwrap_or('-')))
            .collect();
        println!(
            "{id}\t{}\t{}\t{}",
            filled.input,
            filled.output,
            positions.join(",")
        );
    }
    Ok(())
}

/// Samples proteins from an XLNet or Transformer-XL and prints them as FASTA.
fn sample(
    model: &std::path::Path,
    device: &prottrans::burn::tensor::Device,
    prompts: Vec<String>,
    max_new_tokens: Option<usize>,
    (num_samples, temperature, top_k, seed): (u64, f32, usize, u64),
) -> anyhow::Result<()> {
    anyhow::ensure!(
        temperature > 0.0 && temperature.is_finite(),
        "--temperature must be a positive number"
    );
    let sampler = prottrans::generate::Sampler::load(model, device)
        .with_context(|| format!("loading {}", model.display()))?;
    let options = prottrans::generate::SamplingOptions {
        max_new_tokens: max_new_tokens.unwrap_or(100),
        temperature,
        top_k,
    };
    let prompts = if prompts.is_empty() {
        vec![String::new()]
    } else {
        prompts
    };
    let mut rng = prottrans::generate::seeded(seed);
    for (p, prompt) in prompts.iter().enumerate() {
        for s in 0..num_samples {
            let record = format!("prompt{}", p + 1);
            let sampled = sampler
                .sample(&record, prompt, &options, &mut rng)
                .with_context(|| format!("sampling from {}", model.display()))?;
            println!(
                ">{record}_sample{} prompt={prompt:?} new={} ended={} temperature={temperature} top_k={top_k} seed={seed}",
                s + 1,
                sampled.new_residues,
                sampled.ended
            );
            println!("{}", sampled.sequence);
        }
    }
    Ok(())
}
