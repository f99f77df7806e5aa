//! The `prottrans` command.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::{Parser, Subcommand};
use prottrans::prelude::*;

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
        /// Device to train on; several, comma-separated (`cuda:0,cuda:1`), train data-parallel:
        /// each takes its own batch every step and the gradients are averaged on the first.
        #[arg(
            long,
            default_value = "cpu",
            env = "PROTTRANS_DEVICE",
            value_delimiter = ','
        )]
        device: Vec<DeviceSpec>,
        /// Precision of the forward and backward passes (f32, f16 or bf16); overrides the
        /// recipe's `optimizer.precision`. Master weights and optimiser state stay f32.
        #[arg(long)]
        precision: Option<Precision>,
        /// Continue from the latest checkpoint in OUT.
        #[arg(long)]
        resume: bool,
    },
    /// Per-residue or per-protein embeddings of every protein in a FASTA file.
    ///
    /// Proteins are embedded longest first in batches bounded by --max-residues and
    /// --max-batch (longer than --alone-above: alone). Finished batches are kept in
    /// OUTPUT.partial/ and the output is written at the end through a rename, so an interrupted
    /// run loses nothing finished and never leaves a broken file: rerun with --resume.
    Embed(EmbedArgs),
    /// Generate proteins: sample new ones from an XLNet or Transformer-XL, or fill in hidden
    /// residues with a ProtT5.
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
    Generate {
        /// Checkpoint directory (config.json + weights).
        #[arg(long)]
        model: PathBuf,
        /// XLNet/Transformer-XL: a prompt (residues to continue); T5: a sequence with `_` at the
        /// residues to predict, e.g. MKT_AYIAK_QR. Repeatable.
        #[arg(long = "sequence")]
        sequences: Vec<String>,
        /// Most tokens to generate (T5 default: the input length plus one; sampling: 100).
        #[arg(long)]
        max_new_tokens: Option<usize>,
        /// Sampling: proteins per prompt.
        #[arg(long, default_value_t = 1)]
        num_samples: usize,
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
    },
    /// Train a supervised head (secondary structure or localisation) on frozen features.
    ///
    /// Features come from a checkpoint (--model), from `prottrans embed` files (--embeddings),
    /// or from a baseline (--features one-hot|composition). Trains with burn-train: AdamW,
    /// early stopping on validation loss, a checkpoint per epoch (--resume continues); keeps
    /// the epoch with the lowest validation loss.
    TrainHead(transfer::TrainHeadArgs),
    /// Score a head on a labelled test set: Q3/Q8 or Q10/Q2 with standard errors, MCC,
    /// per-class recall, the majority-class baseline, confusion matrices and a t-SNE map.
    Evaluate(transfer::EvaluateArgs),
    /// Predict secondary structure or localisation for a FASTA file (TSV, and JSON with all
    /// class probabilities).
    Predict(transfer::PredictArgs),
    /// Write the proteins of a labelled CSV as FASTA (ids as `train-head` looks them up), to
    /// precompute their embeddings with `prottrans embed`.
    CsvToFasta {
        /// secondary-structure or localization (which CSV layout).
        #[arg(long)]
        task: prottrans::transfer::Task,
        /// The labelled CSV.
        #[arg(long)]
        input: PathBuf,
        /// The FASTA file to write.
        #[arg(long)]
        output: PathBuf,
    },
    /// Write a randomly initialised model of a recipe's shape (Hugging Face layout): the
    /// "untrained" baseline for transfer, or a starting point to inspect.
    InitModel {
        /// Training recipe (TOML) whose [model] section gives the shape.
        #[arg(long)]
        config: PathBuf,
        /// Output directory (config.json + model.safetensors).
        #[arg(long)]
        out: PathBuf,
        /// Seed of the initialisation (default: the recipe's data seed, as `pretrain` uses).
        #[arg(long)]
        seed: Option<u64>,
    },
    /// List the backends compiled into this build.
    Devices,
}

#[derive(clap::Args, Debug)]
struct EmbedArgs {
    /// Checkpoint directory in the Hugging Face layout (config.json + model.safetensors or
    /// pytorch_model.bin), e.g. a download of Rostlab/prot_bert or `prottrans pretrain`'s model/.
    #[arg(long)]
    model: PathBuf,
    /// Proteins, FASTA (plain or .gz).
    #[arg(long)]
    input: PathBuf,
    /// Output file: .h5 (needs the `hdf5` feature) or .npz. Keys are the first word of each
    /// header with `/` and `.` replaced by `_`.
    #[arg(long)]
    output: PathBuf,
    /// One mean vector [d] per protein (over residues only) instead of [L, d].
    #[arg(long)]
    per_protein: bool,
    /// Device to run on.
    #[arg(long, default_value = "cpu", env = "PROTTRANS_DEVICE")]
    device: DeviceSpec,
    /// Precision of weights and computation: f32, f16 or bf16 (output is always f32).
    #[arg(long, default_value = "f32")]
    precision: Precision,
    /// Most residues per batch.
    #[arg(long, default_value_t = 4000)]
    max_residues: usize,
    /// Most proteins per batch.
    #[arg(long, default_value_t = 100)]
    max_batch: usize,
    /// Proteins longer than this run alone.
    #[arg(long, default_value_t = 1000)]
    alone_above: usize,
    /// Longest protein accepted (default: what the model's positions allow). Longer ones stop
    /// the run with an error naming them, unless --skip-long.
    #[arg(long)]
    max_length: Option<usize>,
    /// Leave proteins above the length limit out (they are listed) instead of failing.
    #[arg(long)]
    skip_long: bool,
    /// XLNet and Transformer-XL: a protein longer than this many tokens runs alone, in
    /// segments, each after the memory of the previous ones (0: one pass). Default: one pass
    /// for XLNet, as the ProtTrans authors embed; the model's `mem_len` for Transformer-XL.
    #[arg(long)]
    segment_length: Option<usize>,
    /// Continue an interrupted run, or add the proteins an existing output lacks.
    #[arg(long)]
    resume: bool,
    /// Also write the run summary (throughput, peak memory) as JSON here.
    #[arg(long)]
    summary_json: Option<PathBuf>,
    /// Sleep this long after each batch (for testing interruption).
    #[arg(long, hide = true)]
    batch_delay_ms: Option<u64>,
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
            precision,
            resume,
        } => {
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
        Command::Embed(args) => embed(args),
        Command::CsvToFasta {
            task,
            input,
            output,
        } => {
            let set = prottrans::transfer::LabelledSet::read(&input, task)?;
            set.write_fasta(&output)?;
            println!(
                "{} proteins written to {}",
                set.records.len(),
                output.display()
            );
            Ok(())
        }
        Command::InitModel { config, out, seed } => {
            let recipe = PretrainConfig::from_toml_file(&config)?;
            let device = DeviceSpec::Cpu.device()?;
            device.seed(seed.unwrap_or(recipe.data.seed));
            let written = match &recipe.model {
                ModelConfig::Bert(bert) => save_bert_for_masked_lm(&bert.init(&device), bert, &out)
                    .map(|()| {
                        format!(
                            "{}-layer, width-{} BERT",
                            bert.num_hidden_layers, bert.hidden_size
                        )
                    }),
                ModelConfig::Albert(albert) => {
                    save_albert_for_masked_lm(&albert.init(&device), albert, &out).map(|()| {
                        format!(
                            "{}-pass, width-{} ALBERT",
                            albert.num_hidden_layers, albert.hidden_size
                        )
                    })
                }
                ModelConfig::Electra(electra) => {
                    save_electra(&electra.init(&device), electra, &out).map(|()| {
                        format!(
                            "{}-layer, width-{} ELECTRA discriminator (generator in {}/)",
                            electra.num_hidden_layers,
                            electra.hidden_size,
                            prottrans::import::ELECTRA_GENERATOR_DIR
                        )
                    })
                }
                ModelConfig::T5(t5) => save_t5(&t5.init(&device), t5, &out).map(|()| {
                    format!(
                        "{}+{}-layer, width-{} T5",
                        t5.num_layers,
                        t5.decoder_layers(),
                        t5.d_model
                    )
                }),
                ModelConfig::Xlnet(xlnet) => save_xlnet_lm_head(&xlnet.init(&device), xlnet, &out)
                    .and_then(|()| {
                        // The vocabulary `prottrans pretrain` trains XLNet with, for `embed`.
                        let path = out.join("vocab.txt");
                        std::fs::write(
                            &path,
                            prottrans::data::Vocabulary::prottrans_xlnet().to_vocab_txt(),
                        )
                        .map_err(|source| prottrans::import::ImportError::Io { path, source })
                    })
                    .map(|()| format!("{}-layer, width-{} XLNet", xlnet.n_layer, xlnet.d_model)),
                ModelConfig::TransfoXl(txl) => {
                    save_transfo_xl_lm_head(&txl.init(&device), txl, &out).map(|()| {
                        format!(
                            "{}-layer, width-{} Transformer-XL",
                            txl.n_layer, txl.d_model
                        )
                    })
                }
            }
            .with_context(|| format!("writing {}", out.display()))?;
            println!("random {written} written to {}", out.display());
            Ok(())
        }
        Command::Generate {
            model,
            sequences,
            max_new_tokens,
            num_samples,
            temperature,
            top_k,
            seed,
            device,
        } => {
            let device = device.device()?;
            let checkpoint =
                Checkpoint::open(&model).with_context(|| format!("loading {}", model.display()))?;
            if prottrans::embed::Sampler::supports(checkpoint.config()) {
                return sample(
                    &model,
                    &device,
                    sequences,
                    max_new_tokens,
                    (num_samples, temperature, top_k, seed),
                );
            }
            anyhow::ensure!(
                !sequences.is_empty(),
                "ProtT5 fills in residues: give at least one --sequence with `_` at the residues to predict"
            );
            let generator = prottrans::embed::Generator::load(&model, &device)
                .with_context(|| format!("loading {}", model.display()))?;
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
        Command::TrainHead(args) => transfer::train_head(args),
        Command::Evaluate(args) => transfer::evaluate(args),
        Command::Predict(args) => transfer::predict(args),
        Command::Devices => {
            for backend in prottrans::backend::BACKENDS.iter().filter(|b| !b.compiled) {
                println!(
                    "{:<11} not compiled in (cargo feature `{}`): {}",
                    backend.name, backend.feature, backend.description
                );
            }
            for found in prottrans::backend::survey() {
                let backend = found.backend;
                let state = match &found.usable {
                    Ok(()) => "works".to_string(),
                    Err(reason) => format!("cannot run here: {reason}"),
                };
                println!(
                    "{:<11} compiled in (cargo feature `{}`): {}; {state}",
                    backend.name, backend.feature, backend.description
                );
                if found.devices.is_empty() {
                    println!("{:<11}   no devices found", "");
                }
                for device in &found.devices {
                    println!("{:<11}   {device}", "");
                }
            }
            Ok(())
        }
    }
}

/// Samples proteins from an XLNet or Transformer-XL and prints them as FASTA.
fn sample(
    model: &std::path::Path,
    device: &prottrans::burn::tensor::Device,
    prompts: Vec<String>,
    max_new_tokens: Option<usize>,
    (num_samples, temperature, top_k, seed): (usize, f32, usize, u64),
) -> anyhow::Result<()> {
    anyhow::ensure!(
        temperature > 0.0 && temperature.is_finite(),
        "--temperature must be a positive number"
    );
    let sampler = prottrans::embed::Sampler::load(model, device)
        .with_context(|| format!("loading {}", model.display()))?;
    let options = prottrans::embed::SamplingOptions {
        max_new_tokens: max_new_tokens.unwrap_or(100),
        temperature,
        top_k,
    };
    let prompts = if prompts.is_empty() {
        vec![String::new()]
    } else {
        prompts
    };
    let mut rng = prottrans::embed::seeded(seed);
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

fn embed(args: EmbedArgs) -> anyhow::Result<()> {
    use indicatif::{ProgressBar, ProgressStyle};
    use prottrans::embed::{EmbedJob, EmbedOptions, Embedder, LongPolicy, Progress};

    let device = args.device.device()?;
    let embedder = Embedder::load_with_precision(&args.model, &device, args.precision)
        .with_context(|| format!("loading {}", args.model.display()))?;
    let embedder = match args.segment_length {
        Some(length) => embedder.with_segment_length(Some(length)),
        None => embedder,
    };
    let job = EmbedJob {
        embedder: &embedder,
        input: args.input.clone(),
        output: args.output.clone(),
        options: EmbedOptions {
            per_protein: args.per_protein,
            max_residues: args.max_residues,
            max_batch: args.max_batch,
            alone_above: args.alone_above,
            max_length: args.max_length,
            long_policy: if args.skip_long {
                LongPolicy::Skip
            } else {
                LongPolicy::Error
            },
            resume: args.resume,
            batch_delay: args.batch_delay_ms.map(std::time::Duration::from_millis),
        },
    };
    let bar = ProgressBar::new(0);
    bar.set_style(
        ProgressStyle::with_template(
            "{elapsed_precise} [{bar:30}] {human_pos}/{human_len} residues, {msg} (eta {eta})",
        )
        .expect("valid template")
        .progress_chars("=> "),
    );
    // On a terminal the bar animates; in logs (CI, batch jobs) a plain line every ten seconds.
    let terminal = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let mut last_line = std::time::Instant::now();
    let started = std::time::Instant::now();
    let (mut proteins, mut total) = (0usize, 0usize);
    let summary = job
        .run(&mut |event| match event {
            Progress::Started {
                proteins: n,
                residues,
                already_done,
            } => {
                total = *n;
                bar.set_length(*residues as u64);
                if *already_done > 0 {
                    bar.println(format!("{already_done} proteins already done, skipped"));
                }
            }
            Progress::Batch {
                proteins: n,
                residues,
            } => {
                proteins += n;
                bar.inc(*residues as u64);
                let seconds = started.elapsed().as_secs_f64().max(1e-9);
                let message = format!(
                    "{proteins}/{total} proteins, {:.1} proteins/s, {:.0} residues/s",
                    proteins as f64 / seconds,
                    bar.position() as f64 / seconds
                );
                if !terminal && (last_line.elapsed().as_secs() >= 10 || proteins == total) {
                    eprintln!(
                        "[{:.0} s] {}/{} residues, {message}",
                        seconds,
                        bar.position(),
                        bar.length().unwrap_or(0)
                    );
                    last_line = std::time::Instant::now();
                }
                bar.set_message(message);
            }
            Progress::Writing { entries } => {
                bar.finish_and_clear();
                eprintln!("writing {entries} proteins to {}", args.output.display());
            }
        })
        .with_context(|| {
            format!(
                "embedding {} into {}",
                args.input.display(),
                args.output.display()
            )
        })?;
    bar.finish_and_clear();
    let peak = summary
        .peak_rss_bytes
        .map(|b| format!("{:.0} MiB", b as f64 / (1024.0 * 1024.0)))
        .unwrap_or_else(|| "unknown".into());
    println!(
        "embedded {} proteins ({} residues, {} batches) in {:.1} s: {:.2} proteins/s, {:.0} residues/s; peak memory {peak}",
        summary.proteins,
        summary.residues,
        summary.batches,
        summary.seconds,
        summary.proteins_per_s,
        summary.residues_per_s
    );
    if summary.already_done > 0 {
        println!("{} proteins were already done", summary.already_done);
    }
    if !summary.skipped_long.is_empty() {
        let shown = summary.skipped_long.len().min(10);
        let more = summary.skipped_long.len() - shown;
        println!(
            "skipped {} proteins above the length limit: {}{}",
            summary.skipped_long.len(),
            summary.skipped_long[..shown].join(", "),
            if more > 0 {
                format!(
                    " and {more} more ({})",
                    if args.summary_json.is_some() {
                        "all in the --summary-json file"
                    } else {
                        "--summary-json lists all"
                    }
                )
            } else {
                String::new()
            }
        );
    }
    println!(
        "{}: {} proteins, {}",
        args.output.display(),
        summary.entries,
        if args.per_protein {
            "per-protein [d]"
        } else {
            "per-residue [L, d]"
        }
    );
    if let Some(path) = &args.summary_json {
        std::fs::write(path, serde_json::to_string_pretty(&summary)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}
