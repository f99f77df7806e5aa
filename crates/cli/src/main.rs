//! The `prottrans` command: its command line and the dispatch; each subcommand lives in its
//! own module.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod adapter;
mod devices;
mod embed;
mod finetune;
mod generate;
mod init_model;
mod inspect;
mod masked_lm;
mod pretrain;
mod shards;
mod transfer;

/// ProtTrans protein language models on burn: pretraining, embeddings from released or
/// pretrained checkpoints, and the paper's supervised heads (secondary structure, localisation).
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
    /// Pretrain a model from FASTA with its objective (ProtBert and ProtAlbert: masked LM;
    /// ProtElectra: replaced-token detection; ProtT5: span corruption with single-residue spans;
    /// ProtXLNet: permutation LM; ProtTXL: causal LM in segments with memory).
    ///
    /// Writes to OUT: config.toml (the recipe), checkpoint/ (every `checkpoint_every` steps),
    /// metrics.jsonl, model/ (config.json + model.safetensors, the Hugging Face layout; ELECTRA's
    /// generator in model/generator/) and report.json (validation loss and accuracy against the
    /// unigram baseline).
    Pretrain(pretrain::PretrainArgs),
    /// Per-residue or per-protein embeddings of every protein in a FASTA file.
    ///
    /// Proteins are embedded longest first in batches bounded by --max-residues and
    /// --max-batch (longer than --alone-above: alone). Finished batches are kept in
    /// OUTPUT.partial/ and the output is written at the end through a rename, so an interrupted
    /// run loses nothing finished and never leaves a broken file: rerun with --resume.
    Embed(embed::EmbedArgs),
    /// Merge the outputs of `embed --shard` into one file, checked against the input.
    ///
    /// Refuses shards of other settings (model, weights, precision, pooling) or of other
    /// splits, a shard given twice, proteins in two shards or not in --input, and arrays of
    /// the wrong shape or with NaN. Lists every missing protein (key, FASTA line, the shard
    /// that should hold it) and exits non-zero, unless --allow-partial. Streams: one protein's
    /// array in memory at a time.
    Merge(shards::MergeArgs),
    /// Check an embedding output (or one shard's) against its FASTA input: every protein once,
    /// with an array of the recorded width and its length, finite, or left out on purpose
    /// (--skip-long). Lists what is missing and exits non-zero if anything is.
    Verify(shards::VerifyArgs),
    /// Generate proteins: sample new ones from an XLNet or Transformer-XL, fill in hidden
    /// residues with a ProtT5, or translate them into 3Di with a ProstT5.
    ///
    /// XLNet / Transformer-XL (`XLNetLMHeadModel`, `TransfoXLLMHeadModel`): samples
    /// --num-samples proteins per --sequence prompt (residues it starts with; none: from
    /// scratch), residue by residue at --temperature among the --top-k most likely, and
    /// prints them as FASTA. Transformer-XL stops where it ends the protein (or at
    /// --max-new-tokens); XLNet, never trained to end one, writes --max-new-tokens residues.
    ///
    /// ProtT5 (`T5ForConditionalGeneration`): each `_` in a sequence becomes its own sentinel,
    /// as in pretraining, and greedy decoding rewrites the whole sequence. Prints id, input,
    /// the model's sequence and the residues it put at the hidden positions
    /// (`position:residue`), tab-separated.
    ///
    /// ProstT5 (a T5 whose vocabulary has `<AA2fold>` and the 3Di letters): translates each
    /// amino-acid sequence into Foldseek's 3Di alphabet, one letter per residue, greedily.
    Generate(generate::GenerateArgs),
    /// What a checkpoint directory is: architecture and class, shape, weights (types,
    /// parameters), vocabulary and where it comes from, the tensors the encoder skips, and
    /// what prottrans can do with it. The first command to run on a download.
    Inspect(inspect::InspectArgs),
    /// Fill in hidden residues (`_`) with a masked LM: the top-k residues and their
    /// probabilities at each, all hidden positions masked at once.
    FillMask(masked_lm::FillMaskArgs),
    /// Score proteins with a masked LM: the pseudo-log-likelihood of each protein in a FASTA
    /// file (each residue masked in turn, batched); with --mutations or --mutations-file, the
    /// masked-marginal log-likelihood ratio of each variant of the wild type (the zero-shot
    /// variant-effect score).
    Score(masked_lm::ScoreArgs),
    /// Masked-residue recovery of a masked LM over a FASTA file at a masking rate, against the
    /// unigram baseline; --positions writes every masked position to compare implementations.
    Recover(masked_lm::RecoverArgs),
    /// Train a supervised head (secondary structure or localisation) on frozen features.
    ///
    /// Features come from a checkpoint (--model), from `prottrans embed` files (--embeddings),
    /// or from a baseline (--features one-hot|composition). Trains with burn-train: AdamW,
    /// early stopping on validation loss, a checkpoint per epoch (--resume continues); keeps
    /// the epoch with the lowest validation loss.
    TrainHead(transfer::TrainHeadArgs),
    /// Fine-tune an encoder with a supervised head: LoRA adapters on chosen layers (default:
    /// the attention projections, rank 4) or every weight (--full).
    ///
    /// Proteins are grouped by length into batches under --max-tokens; the encoder and the
    /// head train together with burn-train (AdamW, early stopping on validation loss, a
    /// checkpoint per epoch, --resume). OUT gets the head (evaluate --head OUT, predict --head
    /// OUT run the fine-tuned encoder), the adapter in Hugging Face PEFT's layout (adapter/,
    /// which peft applies to the transformers model) and, with --full or --merge, the encoder
    /// as a checkpoint (model/).
    Finetune(finetune::FinetuneArgs),
    /// Score a head on a labelled test set: Q3/Q8 or Q10/Q2 with standard errors, MCC,
    /// per-class recall, the majority-class baseline, confusion matrices and a t-SNE map.
    Evaluate(transfer::EvaluateArgs),
    /// Predict secondary structure or localisation for a FASTA file (TSV, and JSON with all
    /// class probabilities).
    Predict(transfer::PredictArgs),
    /// Write the proteins of a labelled CSV as FASTA (ids as `train-head` looks them up), to
    /// precompute their embeddings with `prottrans embed`.
    CsvToFasta(transfer::CsvToFastaArgs),
    /// Write a randomly initialised model of a recipe's shape (Hugging Face layout): the
    /// "untrained" baseline for transfer, or a starting point to inspect.
    InitModel(init_model::InitModelArgs),
    /// Merge a LoRA adapter (Hugging Face PEFT layout, from `peft` or prottrans) into a
    /// checkpoint's weights and write the result as a checkpoint of its own, which
    /// `transformers` and prottrans load without the adapter.
    MergeAdapter(adapter::MergeAdapterArgs),
    /// List the backends compiled into this build.
    Devices,
}

/// See the `jemalloc` feature in Cargo.toml.
#[cfg(all(feature = "jemalloc", not(target_env = "msvc")))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    install_panic_report(&cli);
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", describe(&error));
            ExitCode::FAILURE
        }
    }
}

/// The last resort: a panic (a bug: every input should be checked before it gets that far)
/// prints one message that names the command and asks for a report, instead of a Rust
/// backtrace hint. Finished outputs stay as they are; unfinished ones were never renamed into
/// place.
fn install_panic_report(cli: &Cli) {
    let command = std::env::args().collect::<Vec<_>>().join(" ");
    let name = format!("{:?}", cli.command)
        .split(['(', ' ', '{'])
        .next()
        .unwrap_or("")
        .to_string();
    std::panic::set_hook(Box::new(move |info| {
        let message = info
            .payload()
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| info.payload().downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "unknown cause".into());
        let place = info
            .location()
            .map(|l| format!(" at {}:{}", l.file(), l.line()))
            .unwrap_or_default();
        eprintln!(
            "error: prottrans {name} stopped on an internal error: {message}{place}\n\
             This is a bug in prottrans, not in your input: please report it with this command line:\n  {command}"
        );
    }));
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

/// Names, in one line, the checkpoint tensors a model skipped (as `transformers` warns), with
/// repeats over layers folded.
fn report_skipped(dir: &std::path::Path, model: &str, skipped: &[String]) {
    if !skipped.is_empty() {
        eprintln!(
            "{}: skipped {} tensor(s) {model} does not use: {} (--strict refuses them)",
            dir.display(),
            skipped.len(),
            prottrans::import::compact_names(skipped).join(", ")
        );
    }
}

/// Refuses to replace a file the user already has, unless `--force` (a finished output is
/// never lost to a repeated command).
fn refuse_existing(path: &std::path::Path, force: bool) -> anyhow::Result<()> {
    anyhow::ensure!(
        force || !path.exists(),
        "{} already exists; --force replaces it",
        path.display()
    );
    Ok(())
}

/// Warns when the validation file is the training file: its scores are then no held-out
/// measure (allowed, for a quick look).
fn warn_if_same(train: &std::path::Path, valid: &std::path::Path) {
    let canonical = |p: &std::path::Path| std::fs::canonicalize(p).ok();
    if canonical(train).is_some() && canonical(train) == canonical(valid) {
        eprintln!(
            "warning: --valid is the same file as --train ({}): the validation scores are not held out",
            train.display()
        );
    }
}

/// A progress bar on standard error, hidden when it is not a terminal.
fn progress_bar(length: u64, unit: &str) -> indicatif::ProgressBar {
    let bar = if std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        indicatif::ProgressBar::new(length)
    } else {
        indicatif::ProgressBar::hidden()
    };
    bar.set_style(
        indicatif::ProgressStyle::with_template(&format!(
            "{{elapsed_precise}} [{{bar:30}}] {{human_pos}}/{{human_len}} {unit} (eta {{eta}})"
        ))
        .expect("valid template")
        .progress_chars("=> "),
    );
    bar
}

/// The tokenizer's policy for residues a vocabulary lacks, from `--refuse-unknown`.
fn unknown_policy(refuse: bool) -> prottrans::data::UnknownResidues {
    if refuse {
        prottrans::data::UnknownResidues::Reject
    } else {
        prottrans::data::UnknownResidues::MapToUnknown
    }
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Pretrain(args) => pretrain::run(args),
        Command::Embed(args) => embed::run(args),
        Command::Merge(args) => shards::merge(args),
        Command::Verify(args) => shards::verify(args),
        Command::Generate(args) => generate::run(args),
        Command::Inspect(args) => inspect::run(args),
        Command::FillMask(args) => masked_lm::fill_mask(args),
        Command::Score(args) => masked_lm::score(args),
        Command::Recover(args) => masked_lm::recover(args),
        Command::TrainHead(args) => transfer::train_head(args),
        Command::Finetune(args) => finetune::finetune(args),
        Command::Evaluate(args) => transfer::evaluate(args),
        Command::Predict(args) => transfer::predict(args),
        Command::CsvToFasta(args) => transfer::csv_to_fasta(args),
        Command::InitModel(args) => init_model::run(args),
        Command::Devices => devices::run(),
        Command::MergeAdapter(args) => adapter::run(args),
    }
}
