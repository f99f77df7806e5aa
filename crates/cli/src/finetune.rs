//! `prottrans finetune`: an encoder trained with the paper's heads, by LoRA or in full.

use std::path::PathBuf;

use anyhow::Context;
use prottrans::prelude::*;
use prottrans::transfer::{FinetuneOptions, Finetuning, Method, Pooling, Task};

/// Fine-tune an encoder together with a supervised head.
#[derive(clap::Args, Debug)]
pub struct FinetuneArgs {
    /// The checkpoint to start from (Hugging Face layout).
    #[arg(long)]
    model: PathBuf,
    /// secondary-structure (per residue: 3 and 8 states) or localization (per protein:
    /// 10 locations and membrane/soluble).
    #[arg(long)]
    task: Task,
    /// Labelled training proteins: the authors' CSV layout (see the book).
    #[arg(long)]
    train: PathBuf,
    /// Labelled validation proteins (early stopping and the kept epoch).
    #[arg(long)]
    valid: PathBuf,
    /// Output directory: head.json and head.safetensors (for evaluate and predict), adapter/
    /// (PEFT layout), model/ (--full or --merge), checkpoint/, metrics.jsonl, curves,
    /// finetune.json.
    #[arg(long)]
    out: PathBuf,
    /// Train every encoder weight instead of LoRA adapters.
    #[arg(long, conflicts_with_all = ["lora_rank", "lora_alpha", "lora_targets"])]
    full: bool,
    /// Rank of the LoRA adapters.
    #[arg(long)]
    lora_rank: Option<usize>,
    /// LoRA scaling numerator (the update is alpha / rank * B A). Default: twice the rank.
    #[arg(long)]
    lora_alpha: Option<f64>,
    /// Layers that get adapters, comma-separated: q, k, v, o (attention) and ffn
    /// (feed-forward).
    #[arg(long, value_delimiter = ',', default_value = "q,k,v,o")]
    lora_targets: Vec<String>,
    /// Also write the encoder with the adapter merged into its weights (model/), which
    /// `transformers` loads without peft.
    #[arg(long, conflicts_with = "full")]
    merge: bool,
    /// Leave proteins longer than this out of training and validation (and, later, of
    /// evaluation with this head).
    #[arg(long)]
    max_length: Option<usize>,
    /// Train on a seeded random subset of N training proteins (quick runs, small machines).
    #[arg(long)]
    limit_train: Option<usize>,
    /// Validate on a seeded random subset of N validation proteins.
    #[arg(long)]
    limit_valid: Option<usize>,
    /// Upper bound on epochs.
    #[arg(long, default_value_t = 10)]
    epochs: usize,
    /// Stop after this many epochs without a lower validation loss.
    #[arg(long, default_value_t = 3)]
    patience: usize,
    /// Padded tokens per batch (proteins x longest framed protein); proteins are grouped by
    /// length.
    #[arg(long, default_value_t = 4096)]
    max_tokens: usize,
    /// Proteins per batch at most.
    #[arg(long, default_value_t = 64)]
    max_proteins: usize,
    /// Batches whose gradients are summed before each optimiser step.
    #[arg(long, default_value_t = 1)]
    accumulation: usize,
    /// Learning rate (AdamW) of the encoder: of its adapters with LoRA (default 3e-4), of
    /// every weight with --full (default 3e-5).
    #[arg(long)]
    learning_rate: Option<f64>,
    /// Learning rate (AdamW) of the head, which starts from scratch.
    #[arg(long, default_value_t = 1e-3)]
    head_learning_rate: f64,
    /// Weight decay (AdamW).
    #[arg(long, default_value_t = 0.0)]
    weight_decay: f64,
    /// Precision of the forward and backward passes: f32, or f16/bf16 with f32 master
    /// weights.
    #[arg(long, default_value = "f32")]
    precision: Precision,
    /// Loss weight per output, comma-separated in output order (dssp3,dssp8 or
    /// location,membrane); 0 switches an output off. Default: all 1.
    #[arg(long, value_delimiter = ',')]
    loss_weights: Vec<f64>,
    /// Pooling for per-protein heads: mean, max, min, first or concat.
    #[arg(long, default_value = "mean")]
    pooling: Pooling,
    /// Dropout of the head.
    #[arg(long, default_value_t = 0.25)]
    dropout: f64,
    /// Seed of initialisation, batching and shuffling.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Device to train on.
    #[arg(long, default_value = "cpu", env = "PROTTRANS_DEVICE")]
    device: DeviceSpec,
    /// Continue an interrupted run in OUT.
    #[arg(long)]
    resume: bool,
}

pub fn finetune(args: FinetuneArgs) -> anyhow::Result<()> {
    crate::warn_if_same(&args.train, &args.valid);
    let mut train = crate::transfer::read_set(&args.train, args.task)?;
    let mut valid = crate::transfer::read_set(&args.valid, args.task)?;
    if let Some(limit) = args.limit_train {
        train.subsample(limit, args.seed);
    }
    if let Some(limit) = args.limit_valid {
        valid.subsample(limit, args.seed);
    }
    if let Some(max) = args.max_length {
        crate::transfer::drop_longer(&mut [&mut train, &mut valid], max);
    }
    let method = if args.full {
        Method::Full
    } else {
        let rank = args.lora_rank.unwrap_or(4);
        Method::Lora {
            rank,
            alpha: args.lora_alpha.unwrap_or(2.0 * rank as f64),
            targets: args.lora_targets.clone(),
        }
    };
    let learning_rate = args
        .learning_rate
        .unwrap_or(if args.full { 3e-5 } else { 3e-4 });
    let summary = prottrans::transfer::finetune(Finetuning {
        model: args.model.clone(),
        train,
        valid,
        max_length: args.max_length,
        options: FinetuneOptions {
            method,
            epochs: args.epochs,
            patience: args.patience,
            max_tokens: args.max_tokens,
            max_proteins: args.max_proteins,
            accumulation: args.accumulation,
            learning_rate,
            head_learning_rate: args.head_learning_rate,
            weight_decay: args.weight_decay,
            precision: args.precision,
            loss_weights: args.loss_weights,
            pooling: args.pooling,
            dropout: args.dropout,
            seed: args.seed,
        },
        merge: args.merge,
        out: args.out.clone(),
        device: args.device.device()?,
        resume: args.resume,
    })
    .with_context(|| {
        format!(
            "fine-tuning {} into {}",
            args.model.display(),
            args.out.display()
        )
    })?;
    println!(
        "fine-tuned ({}) {} epochs, {:.1} s each; kept epoch {} (validation loss {:.4}); {} of {} parameters trained; head in {}{}{}",
        summary.method,
        summary.epochs_run,
        summary.seconds_per_epoch,
        summary.best_epoch,
        summary.best_valid_loss,
        summary.trainable_parameters,
        summary.total_parameters,
        summary.head_dir.display(),
        summary
            .adapter_dir
            .as_ref()
            .map_or(String::new(), |d| format!(", adapter in {}", d.display())),
        summary
            .model_dir
            .as_ref()
            .map_or(String::new(), |d| format!(", model in {}", d.display())),
    );
    Ok(())
}
