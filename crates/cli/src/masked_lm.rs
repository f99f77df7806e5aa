//! `prottrans fill-mask`, `score` and `recover`: the masked-LM tools, for every checkpoint
//! with a masked-LM head (BERT, ALBERT, ESM-2, an ELECTRA generator).

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::Context;
use prottrans::generate::{MaskedLm, Variant};
use prottrans::prelude::*;

/// What every masked-LM command takes.
#[derive(clap::Args, Debug)]
pub struct MaskedLmArgs {
    /// Checkpoint directory with a masked-LM head (BertForMaskedLM, AlbertForMaskedLM,
    /// EsmForMaskedLM, an ELECTRA generator).
    #[arg(long)]
    model: PathBuf,
    /// Refuse any tensor of the checkpoint the masked LM does not use.
    #[arg(long)]
    strict: bool,
    /// Refuse residues the vocabulary lacks instead of reading them as its unknown token.
    #[arg(long)]
    refuse_unknown: bool,
    /// Most tokens (rows times length) per forward pass.
    #[arg(long, default_value_t = 16_384)]
    tokens_per_batch: usize,
    /// Device to run on.
    #[arg(long, default_value = "cpu", env = "PROTTRANS_DEVICE")]
    device: DeviceSpec,
}

impl MaskedLmArgs {
    fn load(&self) -> anyhow::Result<MaskedLm> {
        let device = self.device.device()?;
        let checkpoint = Checkpoint::open(&self.model)
            .with_context(|| format!("loading {}", self.model.display()))?
            .strict(self.strict);
        let model = MaskedLm::load(&checkpoint, &device)
            .with_context(|| format!("loading {}", self.model.display()))?;
        crate::report_skipped(&self.model, "the masked LM", model.skipped_tensors());
        Ok(model
            .with_unknown_residues(crate::unknown_policy(self.refuse_unknown))
            .with_tokens_per_batch(self.tokens_per_batch))
    }
}

#[derive(clap::Args, Debug)]
pub struct FillMaskArgs {
    #[command(flatten)]
    model: MaskedLmArgs,
    /// A sequence with `_` at the residues to predict, e.g. EVQLV_SGGGLVQ. Repeatable.
    #[arg(long = "sequence", required = true)]
    sequences: Vec<String>,
    /// How many residues to show per position.
    #[arg(long, default_value_t = 5, value_parser = clap::value_parser!(u64).range(1..))]
    top_k: u64,
}

pub fn fill_mask(args: FillMaskArgs) -> anyhow::Result<()> {
    let model = args.model.load()?;
    println!("id\tposition\tresidue\tprobability");
    for (i, sequence) in args.sequences.iter().enumerate() {
        let id = format!("sequence{}", i + 1);
        for prediction in model.fill_mask(&id, sequence, args.top_k as usize)? {
            for (residue, probability) in prediction.candidates {
                println!("{id}\t{}\t{residue}\t{probability:.4}", prediction.position);
            }
        }
    }
    Ok(())
}

#[derive(clap::Args, Debug)]
pub struct ScoreArgs {
    #[command(flatten)]
    model: MaskedLmArgs,
    /// Proteins, FASTA (plain or .gz). With --mutations, the wild type: one record, or pick
    /// one with --protein.
    #[arg(long)]
    input: PathBuf,
    /// Variants of the wild type to score by masked marginals: `A23G`, multiple mutants as
    /// `A23G:K45R`, several separated by commas.
    #[arg(long, value_delimiter = ',')]
    mutations: Vec<String>,
    /// A file of variants, one per line (the first tab- or comma-separated field; lines
    /// starting with `#` and a header line `mutant`/`variant` are skipped).
    #[arg(long)]
    mutations_file: Option<PathBuf>,
    /// The wild type's record id, when the FASTA holds several.
    #[arg(long)]
    protein: Option<String>,
    /// Write the table here instead of standard output.
    #[arg(long)]
    output: Option<PathBuf>,
    /// Replace files already at the output paths.
    #[arg(long)]
    force: bool,
}

pub fn score(args: ScoreArgs) -> anyhow::Result<()> {
    if let Some(output) = &args.output {
        crate::refuse_existing(output, args.force)?;
    }
    let model = args.model.load()?;
    let proteins = read_proteins(&args.input, &model)?;
    let mut out: Box<dyn Write> = match &args.output {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("writing {}", path.display()))?,
        )),
        None => Box::new(std::io::stdout().lock()),
    };
    let mut variants = Vec::new();
    for text in &args.mutations {
        variants.push(Variant::parse(text)?);
    }
    if let Some(path) = &args.mutations_file {
        let text =
            std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
        for (n, line) in text.lines().enumerate() {
            let field = line.split(['\t', ',']).next().unwrap_or("").trim();
            let header = n == 0 && matches!(field, "mutant" | "variant" | "mutation");
            if field.is_empty() || field.starts_with('#') || header {
                continue;
            }
            variants.push(
                Variant::parse(field).with_context(|| format!("{}:{}", path.display(), n + 1))?,
            );
        }
    }
    if variants.is_empty() {
        writeln!(
            out,
            "id\tresidues\tscored\tpseudo_log_likelihood\tper_residue\tpseudo_perplexity"
        )?;
        let bar = crate::progress_bar(proteins.len() as u64, "proteins");
        for (id, residues) in &proteins {
            let pll = model
                .pseudo_log_likelihood(residues)
                .with_context(|| format!("scoring '{id}'"))?;
            writeln!(
                out,
                "{id}\t{}\t{}\t{:.4}\t{:.4}\t{:.3}",
                residues.len(),
                pll.scored,
                pll.log_likelihood,
                pll.log_likelihood / pll.scored.max(1) as f64,
                pll.pseudo_perplexity
            )?;
            bar.inc(1);
        }
        bar.finish_and_clear();
        return Ok(());
    }
    let (id, residues) = match &args.protein {
        Some(wanted) => proteins
            .iter()
            .find(|(id, _)| id == wanted)
            .with_context(|| format!("{}: no record '{wanted}'", args.input.display()))?,
        None => {
            anyhow::ensure!(
                proteins.len() == 1,
                "{}: {} records; name the wild type with --protein",
                args.input.display(),
                proteins.len()
            );
            &proteins[0]
        }
    };
    writeln!(out, "variant\tmasked_marginal")?;
    for scored in model.score_variants(id, residues, &variants)? {
        writeln!(out, "{}\t{:.4}", scored.variant, scored.score)?;
    }
    Ok(())
}

#[derive(clap::Args, Debug)]
pub struct RecoverArgs {
    #[command(flatten)]
    model: MaskedLmArgs,
    /// Proteins, FASTA (plain or .gz).
    #[arg(long)]
    input: PathBuf,
    /// Fraction of residues to mask in each protein (all at once; at least one).
    #[arg(long, default_value_t = 0.15)]
    rate: f64,
    /// Seed for the choice of positions.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Mask these positions instead of drawing them: a TSV with a header and the columns `id`
    /// and `position` (1-based), e.g. another implementation's --positions file.
    #[arg(long)]
    at: Option<PathBuf>,
    /// Write every masked position (id, position, residue, predicted, log_prob) here as TSV,
    /// to compare with another implementation on the same positions.
    #[arg(long)]
    positions: Option<PathBuf>,
    /// Also write the summary as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Replace files already at the output paths.
    #[arg(long)]
    force: bool,
}

pub fn recover(args: RecoverArgs) -> anyhow::Result<()> {
    for output in [&args.positions, &args.json].into_iter().flatten() {
        crate::refuse_existing(output, args.force)?;
    }
    let model = args.model.load()?;
    let proteins = read_proteins(&args.input, &model)?;
    let recovery = match &args.at {
        Some(path) => model.recover_at(&proteins, &read_positions(path, &proteins)?)?,
        None => model.recover(&proteins, args.rate, args.seed)?,
    };
    println!(
        "{}: {} masked residues in {} proteins ({})",
        args.input.display(),
        recovery.masked,
        recovery.proteins,
        match &args.at {
            Some(path) => format!("positions from {}", path.display()),
            None => format!("rate {}, seed {}", args.rate, args.seed),
        }
    );
    println!("                      recovery   cross-entropy (nats)");
    println!(
        "model                 {:>7.2}%   {:.4}",
        100.0 * recovery.accuracy,
        recovery.cross_entropy
    );
    println!(
        "unigram (always {})    {:>7.2}%   {:.4}",
        recovery.unigram_prediction,
        100.0 * recovery.unigram_accuracy,
        recovery.unigram_cross_entropy
    );
    if let Some(path) = &args.positions {
        let mut file = std::io::BufWriter::new(
            std::fs::File::create(path).with_context(|| format!("writing {}", path.display()))?,
        );
        writeln!(file, "id\tposition\tresidue\tpredicted\tlog_prob")?;
        for p in &recovery.positions {
            writeln!(
                file,
                "{}\t{}\t{}\t{}\t{:.6}",
                p.id, p.position, p.residue, p.predicted, p.log_prob
            )?;
        }
        file.flush()?;
    }
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&recovery)?)
            .with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// The 0-based residue indices to mask in each protein, from a TSV of `id` and 1-based
/// `position` columns.
fn read_positions(path: &Path, proteins: &[(String, Vec<u32>)]) -> anyhow::Result<Vec<Vec<usize>>> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let mut lines = text.lines().enumerate();
    let header: Vec<&str> = lines
        .next()
        .map(|(_, l)| l.split('\t').collect())
        .unwrap_or_default();
    let column = |name: &str| {
        header
            .iter()
            .position(|&c| c == name)
            .with_context(|| format!("{}:1: no `{name}` column", path.display()))
    };
    let (id_column, position_column) = (column("id")?, column("position")?);
    let index: std::collections::HashMap<&str, usize> = proteins
        .iter()
        .enumerate()
        .map(|(i, (id, _))| (id.as_str(), i))
        .collect();
    let mut masked = vec![Vec::new(); proteins.len()];
    for (n, line) in lines.filter(|(_, l)| !l.trim().is_empty()) {
        let fields: Vec<&str> = line.split('\t').collect();
        let place = || format!("{}:{}", path.display(), n + 1);
        let id = fields
            .get(id_column)
            .with_context(|| format!("{}: no id", place()))?;
        let protein = *index
            .get(id)
            .with_context(|| format!("{}: '{id}' is not in the FASTA file", place()))?;
        let position: usize = fields
            .get(position_column)
            .and_then(|p| p.parse().ok())
            .filter(|&p| p > 0)
            .with_context(|| format!("{}: no 1-based position", place()))?;
        let length = proteins[protein].1.len();
        anyhow::ensure!(
            position <= length,
            "{}: position {position} is past the end of '{id}' ({length} residues)",
            place()
        );
        masked[protein].push(position - 1);
    }
    Ok(masked)
}

/// Every record of a FASTA file as `(id, residue ids)`, checked against the model.
fn read_proteins(path: &Path, model: &MaskedLm) -> anyhow::Result<Vec<(String, Vec<u32>)>> {
    let mut proteins = Vec::new();
    FastaReader::open(path)?.for_each_tokenized(model.tokenizer(), |record, ids| {
        proteins.push((record.id, ids));
        Ok::<(), prottrans::data::DataError>(())
    })?;
    anyhow::ensure!(!proteins.is_empty(), "{}: no records", path.display());
    let mut unknown = (0, 0);
    for (id, ids) in &proteins {
        model
            .check_length(id, ids.len())
            .with_context(|| path.display().to_string())?;
        let n = model.tokenizer().count_unknown(ids);
        unknown = (unknown.0 + n, unknown.1 + usize::from(n > 0));
    }
    if unknown.0 > 0 {
        eprintln!(
            "{}: {} residue(s) in {} protein(s) are not in the model's vocabulary and are read as its unknown token (never masked or scored); --refuse-unknown stops instead",
            path.display(),
            unknown.0,
            unknown.1
        );
    }
    Ok(proteins)
}
