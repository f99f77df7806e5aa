//! `prottrans embed`: per-residue or per-protein embeddings of a FASTA file.

use std::path::PathBuf;

use anyhow::Context;
use prottrans::embed::MatmulPrecision;
use prottrans::prelude::*;

#[derive(clap::Args, Debug)]
pub struct EmbedArgs {
    /// Checkpoint directory in the Hugging Face layout (config.json + model.safetensors or
    /// pytorch_model.bin), e.g. a download of Rostlab/prot_bert or `prottrans pretrain`'s model/.
    #[arg(long)]
    model: PathBuf,
    /// Proteins, FASTA (plain or .gz).
    #[arg(long)]
    input: PathBuf,
    /// Output file: .h5 (needs the `hdf5` feature) or .npz. Keys are the first word of each
    /// header with `/` and `.` replaced by `_`. With --shard, `{shard}` in it becomes the
    /// shard's `03-of-08`.
    #[arg(long)]
    output: PathBuf,
    /// Embed one shard of the input: I/N (shard I of N, from 1), or `auto` for the Slurm
    /// array task's (SLURM_ARRAY_TASK_ID of a contiguous --array). Every shard reads the whole
    /// input and takes a stable part of it (by a hash of the key, balanced by residues); each
    /// is an ordinary resumable job. `prottrans merge` joins the outputs.
    #[arg(long)]
    shard: Option<String>,
    /// A LoRA adapter in Hugging Face PEFT's layout (adapter_config.json +
    /// adapter_model.safetensors, written by `peft` or prottrans), merged into --model's
    /// weights before embedding.
    #[arg(long)]
    adapter: Option<PathBuf>,
    /// One mean vector [d] per protein (over residues only) instead of [L, d].
    #[arg(long)]
    per_protein: bool,
    /// Device to run on; several, comma-separated (`cuda:0,cuda:1`), run one worker each on
    /// batches of one shared plan, with one writer: a node's GPUs used whole.
    #[arg(
        long,
        default_value = "cpu",
        env = "PROTTRANS_DEVICE",
        value_delimiter = ','
    )]
    device: Vec<DeviceSpec>,
    /// Precision of weights and computation: f32, f16 or bf16 (output is always f32).
    #[arg(long, default_value = "f32")]
    precision: Precision,
    /// How an f32 model's linear layers multiply matrices on flex: f32, or bf16 (operands
    /// rounded to bf16, sums in f32, on the CPU's AMX units where it has them; see the book's
    /// performance page). Everything else stays f32.
    #[arg(long, default_value = "f32")]
    matmul_precision: MatmulPrecision,
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
    /// Where attention holds every pair of positions (XLNet, Transformer-XL in one pass, T5
    /// off flex f32), most GiB one layer's attention may take: longer proteins are refused
    /// before the run (or left out with --skip-long). Default: the machine's memory; on a GPU,
    /// give its memory.
    #[arg(long, value_parser = positive_gib)]
    max_attention_gib: Option<f64>,
    /// Leave proteins above the length limit out (they are listed) instead of failing.
    #[arg(long)]
    skip_long: bool,
    /// XLNet and Transformer-XL: a protein longer than this many tokens runs alone, in
    /// segments, each after the memory of the previous ones (0: one pass). Default: one pass
    /// for XLNet, as the ProtTrans authors embed; the model's `mem_len` for Transformer-XL.
    #[arg(long)]
    segment_length: Option<usize>,
    /// Refuse any tensor of the checkpoint the encoder does not use (poolers, heads,
    /// buffers) instead of skipping it.
    #[arg(long)]
    strict: bool,
    /// Refuse residues the checkpoint's vocabulary lacks (e.g. X for AntiBERTy) instead of
    /// reading them as its unknown token, as its own tokenizer does.
    #[arg(long)]
    refuse_unknown: bool,
    /// Accept an input without proteins (writes an empty output) instead of failing.
    #[arg(long)]
    allow_empty: bool,
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

pub fn run(args: EmbedArgs) -> anyhow::Result<()> {
    use indicatif::{ProgressBar, ProgressStyle};
    use prottrans::embed::{EmbedError, EmbedJob, EmbedOptions, Embedder, LongPolicy, Progress};
    use prottrans::import::Checkpoint;

    let shard = match args.shard.as_deref() {
        None => None,
        Some("auto") => Some(prottrans::embed::Shard::from_slurm(|name| {
            std::env::var(name).ok()
        })?),
        Some(text) => Some(text.parse::<prottrans::embed::Shard>()?),
    };
    let output = match shard {
        Some(shard) => PathBuf::from(shard.fill_in(&args.output.to_string_lossy())),
        None if args.output.to_string_lossy().contains("{shard}") => {
            anyhow::bail!("--output holds {{shard}}, which only --shard fills in")
        }
        None => args.output.clone(),
    };
    let devices = args
        .device
        .iter()
        .map(DeviceSpec::device)
        .collect::<Result<Vec<_>, _>>()?;
    let adapter = args
        .adapter
        .as_ref()
        .map(|dir| prottrans::import::LoraAdapter::read(dir).map(std::sync::Arc::new))
        .transpose()?;
    let load = |device: &prottrans::burn::tensor::Device| -> anyhow::Result<Embedder> {
        let embedder = Checkpoint::open(&args.model)
            .map_err(EmbedError::from)
            .and_then(|checkpoint| {
                let checkpoint = match &adapter {
                    Some(adapter) => checkpoint.with_adapter(adapter.clone()),
                    None => checkpoint,
                };
                Embedder::load_checkpoint(&checkpoint.strict(args.strict), device, args.precision)
            })
            .with_context(|| format!("loading {}", args.model.display()))?
            .with_unknown_residues(crate::unknown_policy(args.refuse_unknown))
            .with_matmul_precision(args.matmul_precision);
        Ok(match args.segment_length {
            Some(_) if embedder.segment_length().is_none() && !embedder.has_segment_memory() => {
                anyhow::bail!(
                    "--segment-length: {} reads every protein in one pass (only XLNet and Transformer-XL have a memory to read segments with)",
                    embedder.config().shape()
                )
            }
            Some(length) => embedder.with_segment_length(Some(length)),
            None => embedder,
        })
    };
    let (first, rest) = devices.split_first().context("--device names no device")?;
    let embedder = load(first)?;
    if let Some(adapter) = &adapter {
        let config = adapter.config();
        eprintln!(
            "{}: LoRA r={}, alpha {} (scaling {}), {} pair(s), {} parameters, merged into the weights",
            adapter.dir().display(),
            config.r,
            config.lora_alpha,
            adapter.scaling(),
            adapter.targets().len(),
            adapter.parameters()
        );
    }
    crate::report_skipped(&args.model, "the encoder", embedder.skipped_tensors());
    if let Ok(prottrans::import::VocabularyOrigin::BuiltIn(name)) =
        prottrans::import::vocabulary_origin(&args.model, embedder.config())
    {
        eprintln!(
            "{}: no vocabulary file; tokenising with the built-in {name} vocabulary (the released one)",
            args.model.display()
        );
    }
    if args.matmul_precision == MatmulPrecision::Bf16 {
        if embedder.bf16_products_run() {
            eprintln!("matrix products of the linear layers: bf16 operands, f32 sums (AMX)");
        } else {
            eprintln!(
                "warning: --matmul-precision bf16 needs an f32 model on flex and a CPU with \
                 AMX-BF16 (Intel Xeon 4th generation or later); the products stay {}",
                args.precision
            );
        }
    }
    let others = rest.iter().map(load).collect::<anyhow::Result<Vec<_>>>()?;
    if !others.is_empty() {
        eprintln!(
            "{} workers, one per device: {}",
            devices.len(),
            args.device
                .iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        );
    }
    let job = EmbedJob {
        embedder: &embedder,
        input: args.input.clone(),
        output: output.clone(),
        options: EmbedOptions {
            per_protein: args.per_protein,
            max_residues: args.max_residues,
            max_batch: args.max_batch,
            alone_above: args.alone_above,
            max_length: args.max_length,
            max_attention_bytes: args
                .max_attention_gib
                .map(|gib| (gib * f64::from(1u32 << 30)) as u64),
            long_policy: if args.skip_long {
                LongPolicy::Skip
            } else {
                LongPolicy::Error
            },
            resume: args.resume,
            batch_delay: args.batch_delay_ms.map(std::time::Duration::from_millis),
            allow_empty: args.allow_empty,
            shard,
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
    let others: Vec<&Embedder> = others.iter().collect();
    let summary = job
        .run_on(&others, &mut |event| match event {
            Progress::Started {
                in_input,
                proteins: n,
                residues,
                already_done,
            } => {
                total = *n;
                if let Some(shard) = shard {
                    bar.println(format!(
                        "shard {shard}: {} of the {in_input} proteins of {} to embed",
                        n + already_done,
                        args.input.display()
                    ));
                }
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
                eprintln!("writing {entries} proteins to {}", output.display());
            }
        })
        .with_context(|| {
            format!(
                "embedding {} into {}",
                args.input.display(),
                output.display()
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
    if summary.unknown_residues > 0 {
        let shown = summary.proteins_with_unknown.len().min(10);
        println!(
            "{} residue(s) in {} protein(s) are not in the model's vocabulary and were read as its unknown token ({}{}); --refuse-unknown stops instead",
            summary.unknown_residues,
            summary.proteins_with_unknown.len(),
            summary.proteins_with_unknown[..shown].join(", "),
            if summary.proteins_with_unknown.len() > shown {
                ", ..."
            } else {
                ""
            }
        );
    }
    if summary.renamed_keys > 0 {
        println!(
            "{} protein id(s) hold '/' or '.', written under keys with '_' instead (as the ProtTrans embedder names them): {}{}",
            summary.renamed_keys,
            summary.renamed_examples.join(", "),
            if summary.renamed_keys > summary.renamed_examples.len() {
                ", ..."
            } else {
                ""
            }
        );
    }
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
        output.display(),
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

/// A finite, positive number of GiB.
fn positive_gib(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(gib) if gib.is_finite() && gib > 0.0 => Ok(gib),
        _ => Err(format!("'{text}' is not a positive number of GiB")),
    }
}
