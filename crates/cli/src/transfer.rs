//! `prottrans train-head`, `evaluate` and `predict`: the paper's supervised heads.

use std::path::PathBuf;

use anyhow::{Context, bail};
use prottrans::prelude::*;
use prottrans::transfer::features::FeatureSpec;
use prottrans::transfer::predict::{read_fasta, write_json, write_tsv};
use prottrans::transfer::{Evaluation, HeadOptions, HeadTraining, LabelledSet, Pooling, Task};

/// Which features the head reads.
#[derive(clap::Args, Debug)]
pub struct FeatureArgs {
    /// Compute embeddings with this checkpoint (Hugging Face layout) in this process.
    #[arg(long, conflicts_with_all = ["embeddings", "features"])]
    model: Option<PathBuf>,
    /// Precision of --model: f32, f16 or bf16.
    #[arg(long, default_value = "f32")]
    precision: Precision,
    /// A LoRA adapter (PEFT layout) merged into --model's weights; recorded in head.json, so
    /// evaluate and predict apply it too.
    #[arg(long)]
    adapter: Option<PathBuf>,
    /// Precomputed embeddings of the training proteins (`prottrans embed`, .h5 or .npz; keys
    /// are the protein ids).
    #[arg(long, conflicts_with = "features", requires = "valid_embeddings")]
    embeddings: Option<PathBuf>,
    /// Precomputed embeddings of the validation proteins.
    #[arg(long)]
    valid_embeddings: Option<PathBuf>,
    /// A baseline instead of embeddings: one-hot residues, or amino-acid composition
    /// (per-protein tasks).
    #[arg(long, value_parser = ["one-hot", "composition"])]
    features: Option<String>,
}

/// Train a supervised head on frozen features.
#[derive(clap::Args, Debug)]
pub struct TrainHeadArgs {
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
    /// Output directory: head.json, head.safetensors, checkpoint/, metrics.jsonl, curves.png/.svg.
    #[arg(long)]
    out: PathBuf,
    #[command(flatten)]
    features: FeatureArgs,
    /// Leave proteins longer than this out of training and validation (and, later, of
    /// evaluation with this head); needed when the model's positions are fewer.
    #[arg(long)]
    max_length: Option<usize>,
    /// Train on a seeded random subset of N training proteins (quick runs, small machines).
    #[arg(long)]
    limit_train: Option<usize>,
    /// Upper bound on epochs.
    #[arg(long, default_value_t = 40)]
    epochs: usize,
    /// Stop after this many epochs without a lower validation loss.
    #[arg(long, default_value_t = 5)]
    patience: usize,
    /// Proteins per batch.
    #[arg(long, default_value_t = 16)]
    batch_size: usize,
    /// Learning rate (AdamW).
    #[arg(long, default_value_t = 1e-3)]
    learning_rate: f64,
    /// Weight decay (AdamW).
    #[arg(long, default_value_t = 0.0)]
    weight_decay: f64,
    /// Loss weight per output, comma-separated in output order (dssp3,dssp8[,disorder] or
    /// location,membrane); 0 switches an output off. Default: all 1.
    #[arg(long, value_delimiter = ',')]
    loss_weights: Vec<f64>,
    /// Pooling for per-protein heads: mean, max, min, first or concat.
    #[arg(long, default_value = "mean")]
    pooling: Pooling,
    /// Also train the 2-class disorder classifier (needs disorder labels).
    #[arg(long)]
    disorder: bool,
    /// Dropout.
    #[arg(long, default_value_t = 0.25)]
    dropout: f64,
    /// Seed of initialisation and shuffling.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Device to train on.
    #[arg(long, default_value = "cpu", env = "PROTTRANS_DEVICE")]
    device: DeviceSpec,
    /// Continue an interrupted run in OUT.
    #[arg(long)]
    resume: bool,
}

/// Score a trained head on a labelled test set.
#[derive(clap::Args, Debug)]
pub struct EvaluateArgs {
    /// Head directory from `prottrans train-head` or `prottrans finetune`.
    #[arg(long)]
    head: PathBuf,
    /// Labelled test proteins (same CSV layout as training).
    #[arg(long)]
    test: PathBuf,
    /// Precomputed embeddings of the test proteins (heads trained on embedding files).
    #[arg(long)]
    embeddings: Option<PathBuf>,
    /// Use this checkpoint instead of the one recorded in head.json (moved files).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Use this LoRA adapter (PEFT layout) instead of the one recorded in head.json (a moved
    /// or retrained adapter).
    #[arg(long)]
    adapter: Option<PathBuf>,
    /// Write report.json, confusion matrices and (localisation) the t-SNE map here.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Skip the t-SNE map.
    #[arg(long)]
    no_tsne: bool,
    /// Replace an earlier report in OUT.
    #[arg(long)]
    force: bool,
    /// Device to run on.
    #[arg(long, default_value = "cpu", env = "PROTTRANS_DEVICE")]
    device: DeviceSpec,
}

/// Predict secondary structure or localisation for the proteins of a FASTA file.
#[derive(clap::Args, Debug)]
pub struct PredictArgs {
    /// Head directory from `prottrans train-head` or `prottrans finetune`.
    #[arg(long)]
    head: PathBuf,
    /// Proteins, FASTA (plain or .gz).
    #[arg(long)]
    input: PathBuf,
    /// TSV output: id, length, then each prediction and its confidence.
    #[arg(long)]
    output: PathBuf,
    /// Also write every class probability as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Precomputed embeddings of these proteins (heads trained on embedding files).
    #[arg(long)]
    embeddings: Option<PathBuf>,
    /// Use this checkpoint instead of the one recorded in head.json (moved files).
    #[arg(long)]
    model: Option<PathBuf>,
    /// Use this LoRA adapter (PEFT layout) instead of the one recorded in head.json (a moved
    /// or retrained adapter).
    #[arg(long)]
    adapter: Option<PathBuf>,
    /// Device to run on.
    #[arg(long, default_value = "cpu", env = "PROTTRANS_DEVICE")]
    device: DeviceSpec,
    /// Replace files already at the output paths.
    #[arg(long)]
    force: bool,
}

pub(crate) fn read_set(path: &PathBuf, task: Task) -> anyhow::Result<LabelledSet> {
    let set = LabelledSet::read(path, task)?;
    anyhow::ensure!(!set.records.is_empty(), "{}: no proteins", path.display());
    eprintln!(
        "{}: {} proteins, {} residues",
        path.display(),
        set.records.len(),
        set.residues()
    );
    for note in &set.notes {
        eprintln!("  note: {note}");
    }
    Ok(set)
}

/// Leaves proteins longer than `max` out of `sets`, saying how many.
pub(crate) fn drop_longer(sets: &mut [&mut LabelledSet], max: usize) {
    for set in sets.iter_mut() {
        let dropped = set.drop_longer_than(max);
        if !dropped.is_empty() {
            eprintln!(
                "  {}: left out {} proteins longer than {max}",
                set.path.display(),
                dropped.len()
            );
        }
    }
}

pub fn train_head(args: TrainHeadArgs) -> anyhow::Result<()> {
    crate::warn_if_same(&args.train, &args.valid);
    let mut train = read_set(&args.train, args.task)?;
    let mut valid = read_set(&args.valid, args.task)?;
    if let Some(limit) = args.limit_train {
        train.subsample(limit, args.seed);
    }
    if let Some(max) = args.max_length {
        drop_longer(&mut [&mut train, &mut valid], max);
    }
    let f = &args.features;
    anyhow::ensure!(
        f.adapter.is_none() || f.model.is_some(),
        "--adapter merges into --model's weights: give --model too"
    );
    let features = match (&f.model, &f.embeddings, f.features.as_deref()) {
        (Some(model), None, None) => FeatureSpec::Model {
            dir: model
                .canonicalize()
                .with_context(|| format!("model directory {}", model.display()))?,
            precision: f.precision.to_string(),
            adapter: f
                .adapter
                .as_ref()
                .map(|a| {
                    a.canonicalize()
                        .with_context(|| format!("adapter directory {}", a.display()))
                })
                .transpose()?,
        },
        (None, Some(_), None) => FeatureSpec::Embeddings { width: 0 },
        (None, None, Some("one-hot")) => FeatureSpec::OneHot,
        (None, None, Some("composition")) => FeatureSpec::Composition,
        _ => bail!(
            "say what the head reads: --model DIR, --embeddings FILE --valid-embeddings FILE, or --features one-hot|composition"
        ),
    };
    let device = args.device.device()?;
    let summary = prottrans::transfer::train_head(HeadTraining {
        train,
        valid,
        features,
        train_embeddings: f.embeddings.clone(),
        valid_embeddings: f.valid_embeddings.clone(),
        max_length: args.max_length,
        options: HeadOptions {
            epochs: args.epochs,
            patience: args.patience,
            batch_size: args.batch_size,
            learning_rate: args.learning_rate,
            weight_decay: args.weight_decay,
            loss_weights: args.loss_weights,
            pooling: args.pooling,
            disorder: args.disorder,
            dropout: args.dropout,
            seed: args.seed,
        },
        out: args.out.clone(),
        device,
        resume: args.resume,
    })
    .with_context(|| format!("training a head into {}", args.out.display()))?;
    println!(
        "trained {} epochs in {:.1} s; kept epoch {} (validation loss {:.4}); head saved to {}",
        summary.epochs_run,
        summary.seconds,
        summary.best_epoch,
        summary.best_valid_loss,
        summary.head_dir.display()
    );
    Ok(())
}

pub fn evaluate(args: EvaluateArgs) -> anyhow::Result<()> {
    if let Some(out) = &args.out {
        crate::refuse_existing(&out.join("report.json"), args.force)?;
    }
    let saved = prottrans::transfer::SavedHead::read(&args.head)?;
    let test = read_set(&args.test, saved.task)?;
    let report = prottrans::transfer::evaluate(Evaluation {
        head: args.head.clone(),
        test,
        embeddings: args.embeddings.clone(),
        model: args.model.clone(),
        adapter: args.adapter.clone(),
        out: args.out.clone(),
        tsne: !args.no_tsne,
        device: args.device.device()?,
    })
    .with_context(|| {
        format!(
            "evaluating {} on {}",
            args.head.display(),
            args.test.display()
        )
    })?;
    print!("{report}");
    if let Some(out) = &args.out {
        let tsne = !args.no_tsne && saved.task == Task::Localization;
        println!(
            "report, confusion matrices{} in {}",
            if tsne { " and t-SNE map" } else { "" },
            out.display()
        );
    }
    Ok(())
}

pub fn predict(args: PredictArgs) -> anyhow::Result<()> {
    crate::refuse_existing(&args.output, args.force)?;
    if let Some(json) = &args.json {
        crate::refuse_existing(json, args.force)?;
    }
    let proteins = read_fasta(&args.input)?;
    anyhow::ensure!(
        !proteins.is_empty(),
        "{}: no proteins",
        args.input.display()
    );
    let (_, predictions) = prottrans::transfer::predict(
        &args.head,
        &proteins,
        args.embeddings.as_deref(),
        args.model.as_deref(),
        args.adapter.as_deref(),
        &args.device.device()?,
    )
    .with_context(|| {
        format!(
            "predicting {} with {}",
            args.input.display(),
            args.head.display()
        )
    })?;
    write_tsv(&args.output, &predictions)?;
    if let Some(json) = &args.json {
        write_json(json, &predictions)?;
    }
    println!(
        "predicted {} proteins: {}{}",
        predictions.len(),
        args.output.display(),
        args.json
            .as_ref()
            .map_or(String::new(), |j| format!(" and {}", j.display()))
    );
    Ok(())
}

/// Write the proteins of a labelled CSV as FASTA.
#[derive(clap::Args, Debug)]
pub struct CsvToFastaArgs {
    /// secondary-structure or localization (which CSV layout).
    #[arg(long)]
    task: prottrans::transfer::Task,
    /// The labelled CSV.
    #[arg(long)]
    input: PathBuf,
    /// The FASTA file to write.
    #[arg(long)]
    output: PathBuf,
    /// Replace files already at the output paths.
    #[arg(long)]
    force: bool,
}

pub fn csv_to_fasta(
    CsvToFastaArgs {
        task,
        input,
        output,
        force,
    }: CsvToFastaArgs,
) -> anyhow::Result<()> {
    crate::refuse_existing(&output, force)?;
    let set = prottrans::transfer::LabelledSet::read(&input, task)?;
    set.write_fasta(&output)?;
    println!(
        "{} proteins written to {}",
        set.records.len(),
        output.display()
    );
    Ok(())
}
