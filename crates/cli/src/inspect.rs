//! `prottrans inspect`: what a checkpoint directory is, and what prottrans can do with it.

use std::path::PathBuf;

use anyhow::Context;
use prottrans::import::Checkpoint;
use serde::Serialize;

#[derive(clap::Args, Debug)]
pub struct InspectArgs {
    /// Checkpoint directory in the Hugging Face layout.
    dir: PathBuf,
    /// List every tensor with its shape and type.
    #[arg(long)]
    tensors: bool,
    /// Print JSON instead of text.
    #[arg(long)]
    json: bool,
}

/// What prottrans can do with a checkpoint, and why not where it cannot.
#[derive(Debug, Serialize)]
struct Capabilities {
    embed: Result<(), String>,
    train_head: Result<(), String>,
    fine_tune: Result<(), String>,
    masked_lm: Result<(), String>,
    generate: Result<(), String>,
}

fn capabilities(checkpoint: &Checkpoint, names: &[String]) -> Capabilities {
    let config = checkpoint.config();
    let architecture = config.architecture().name();
    let has = |prefix: &str| names.iter().any(|n| n.starts_with(prefix));
    let masked_lm = prottrans::generate::masked_lm_support(config, names);
    let generate = if prottrans::generate::Sampler::supports(config) {
        Ok(())
    } else if architecture == "t5" {
        if has("decoder.") {
            Ok(())
        } else {
            Err("an encoder-only T5 (no decoder weights)".into())
        }
    } else {
        Err(format!(
            "{architecture} does not generate (XLNet and Transformer-XL sample, T5 fills in)"
        ))
    };
    Capabilities {
        embed: Ok(()),
        train_head: Ok(()),
        fine_tune: Err(
            "fine-tuning the encoder is not implemented yet (train-head trains on frozen features)"
                .into(),
        ),
        masked_lm,
        generate,
    }
}

pub fn run(args: InspectArgs) -> anyhow::Result<()> {
    let checkpoint = Checkpoint::open(&args.dir)
        .with_context(|| format!("inspecting {}", args.dir.display()))?;
    let summary = checkpoint
        .summary()
        .with_context(|| format!("inspecting {}", args.dir.display()))?;
    let names: Vec<String> = summary.tensor_list.iter().map(|t| t.name.clone()).collect();
    let can = capabilities(&checkpoint, &names);
    if args.json {
        #[derive(Serialize)]
        struct Report<'a> {
            #[serde(flatten)]
            summary: &'a prottrans::import::CheckpointSummary,
            capabilities: &'a Capabilities,
        }
        println!(
            "{}",
            serde_json::to_string_pretty(&Report {
                summary: &summary,
                capabilities: &can,
            })?
        );
        return Ok(());
    }
    let mib = summary.weights_bytes as f64 / (1024.0 * 1024.0);
    println!("checkpoint    {}", summary.dir.display());
    println!(
        "architecture  {} (model_type {}; config names {})",
        summary.architecture,
        summary.model_type,
        if summary.classes.is_empty() {
            "no class".to_string()
        } else {
            summary.classes.join(", ")
        }
    );
    println!("shape         {}", summary.description);
    if !checkpoint.unread_config_keys().is_empty() {
        println!(
            "              config.json keys it does not read (misspelt?): {}",
            checkpoint.unread_config_keys().join(", ")
        );
    }
    println!(
        "weights       {} ({mib:.1} MiB), {} tensors, {:.2}M parameters ({})",
        summary.weights.display(),
        summary.tensors,
        summary.parameters as f64 / 1e6,
        summary
            .dtypes
            .iter()
            .map(|(dtype, n)| format!("{dtype}: {:.2}M", *n as f64 / 1e6))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let v = &summary.vocabulary;
    println!(
        "vocabulary    {} tokens from {}; residues {}; unknown token {}, mask token {}",
        v.tokens,
        v.origin,
        v.residues,
        v.unknown_token.as_deref().unwrap_or("none"),
        v.mask_token.as_deref().unwrap_or("none")
    );
    if !v.missing.is_empty() {
        println!(
            "              lacks {} (read as {}; --refuse-unknown refuses them)",
            v.missing,
            v.unknown_token
                .as_deref()
                .unwrap_or("an error: no unknown token")
        );
    }
    if summary.skipped_by_encoder.is_empty() {
        println!("encoder       uses every tensor");
    } else {
        println!(
            "encoder       skips {} tensor(s): {}",
            summary.skipped_by_encoder.len(),
            prottrans::import::compact_names(&summary.skipped_by_encoder).join(", ")
        );
    }
    println!("can");
    for (what, result) in [
        ("embed", &can.embed),
        ("train-head", &can.train_head),
        ("fine-tune", &can.fine_tune),
        ("fill-mask, score, recover", &can.masked_lm),
        ("generate", &can.generate),
    ] {
        match result {
            Ok(()) => println!("  {what:<26} yes"),
            Err(why) => println!("  {what:<26} no: {why}"),
        }
    }
    if args.tensors {
        println!("tensors");
        for t in &summary.tensor_list {
            println!("  {:<60} {:<6} {:?}", t.name, t.dtype, t.shape);
        }
    }
    Ok(())
}
