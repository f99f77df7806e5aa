//! What a masked language model can tell about proteins, for every checkpoint with a
//! masked-LM head (BERT, ALBERT, ESM-2, ELECTRA's generator):
//!
//! - [`MaskedLm::fill_mask`]: the most likely residues at hidden (`_`) positions;
//! - [`MaskedLm::pseudo_log_likelihood`]: each residue masked in turn, rows batched;
//! - [`MaskedLm::score_variants`]: the masked-marginal log-likelihood ratio of variants, the
//!   zero-shot variant-effect score (Meier et al. 2021): the mutated positions are masked in
//!   the wild type, and the score is `sum log p(mutant) - log p(wild type)` over them;
//! - [`MaskedLm::recover`]: masked-residue recovery at a rate, against the unigram baseline.
//!
//! Log-probabilities are the full softmax over the vocabulary; predictions are taken among
//! residue tokens only (no special token is ever a prediction).

use std::collections::HashMap;
use std::fmt;

use burn::tensor::{Device, Int, Tensor, TensorData};
use prottrans_data::tokenizer::PaddingSide;
use prottrans_data::{TokenizeError, Tokenizer, UnknownResidues};
use prottrans_import::{Checkpoint, checkpoint_tokenizer};
use prottrans_models::{
    ElectraConfig, ElectraForMaskedLm, EncoderInput, MaskedLanguageModel, ModelConfig,
    PretrainingVisitor, RegisteredConfig, T5Config, TransfoXlConfig, XlnetConfig,
};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use serde::Serialize;

use crate::error::GenerateError;
use crate::fill::HIDDEN;

/// The one thing the tools need from a model: logits at chosen positions.
trait MaskedLogits: fmt::Debug {
    fn logits_at(&self, input: EncoderInput, positions: Tensor<1, Int>) -> Tensor<2>;
}

impl<M: MaskedLanguageModel> MaskedLogits for M {
    fn logits_at(&self, input: EncoderInput, positions: Tensor<1, Int>) -> Tensor<2> {
        MaskedLanguageModel::logits_at(self, input, positions)
    }
}

type Loaded = Result<(Box<dyn MaskedLogits>, Vec<String>), GenerateError>;

/// Loads the masked LM of a checkpoint's architecture, or says why it has none.
struct LoadMaskedLm<'a> {
    checkpoint: &'a Checkpoint,
    device: &'a Device,
}

impl LoadMaskedLm<'_> {
    fn none(&self, what: &str) -> Loaded {
        Err(GenerateError::Unsupported(format!(
            "{}: {what} has no masked-LM head (fill-mask and score take BERT, ALBERT, ESM-2 or an ELECTRA generator)",
            self.checkpoint.dir().display()
        )))
    }
}

impl PretrainingVisitor for LoadMaskedLm<'_> {
    type Output = Loaded;

    fn masked_lm<M>(self, _: &M::Config) -> Loaded
    where
        M: MaskedLanguageModel,
        M::Config: RegisteredConfig,
    {
        let (_, model, skipped) = self.checkpoint.load_with_skipped::<M>(self.device)?;
        Ok((Box::new(model), skipped))
    }
    fn replaced_token_detection(self, _: &ElectraConfig) -> Loaded {
        if !holds_electra_generator(&self.checkpoint.tensor_names()?) {
            return self.none(
                "an ELECTRA discriminator (ElectraForPreTraining) predicts replaced tokens and",
            );
        }
        let (_, model, skipped) = self
            .checkpoint
            .load_with_skipped::<ElectraForMaskedLm>(self.device)?;
        Ok((Box::new(model), skipped))
    }
    fn span_corruption(self, _: &T5Config) -> Loaded {
        self.none("T5 (use `prottrans generate` to fill hidden residues)")
    }
    fn permutation_lm(self, _: &XlnetConfig) -> Loaded {
        self.none("XLNet")
    }
    fn causal_lm(self, _: &TransfoXlConfig) -> Loaded {
        self.none("Transformer-XL")
    }
}

/// Whether an ELECTRA checkpoint's tensors are the generator's (the one with a masked-LM head).
fn holds_electra_generator(tensor_names: &[String]) -> bool {
    tensor_names
        .iter()
        .any(|n| n.starts_with("generator_predictions."))
}

/// Whether [`MaskedLm::load`] can take a checkpoint (BERT, ALBERT, ESM-2, an ELECTRA
/// generator), or why not; judged from the config and the tensor names, nothing loaded.
pub fn masked_lm_support(config: &ModelConfig, tensor_names: &[String]) -> Result<(), String> {
    use prottrans_models::Objective;
    match config.objective() {
        Objective::MaskedLm => Ok(()),
        Objective::ReplacedTokenDetection if holds_electra_generator(tensor_names) => Ok(()),
        Objective::ReplacedTokenDetection => Err(
            "an ELECTRA discriminator; its generator (generator/) has the masked-LM head".into(),
        ),
        _ => Err(format!("{} is not a masked LM", config.architecture())),
    }
}

/// A checkpoint with a masked-LM head, loaded with its tokenizer.
#[derive(Debug)]
pub struct MaskedLm {
    model: Box<dyn MaskedLogits>,
    tokenizer: Tokenizer,
    device: Device,
    skipped: Vec<String>,
    max_residues: Option<usize>,
    tokens_per_batch: usize,
    /// `(id, letter)` of every residue token: what a prediction can be.
    residues: Vec<(u32, char)>,
    mask: u32,
}

/// The most likely residues at one hidden position.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MaskPrediction {
    /// 1-based position among the residues.
    pub position: usize,
    /// `(residue, probability)`, most likely first.
    pub candidates: Vec<(char, f32)>,
}

/// A pseudo-log-likelihood.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PseudoLikelihood {
    /// Residues scored (residues read as the unknown token are left out).
    pub scored: usize,
    /// `sum_i log p(x_i | x without i)`, natural log.
    pub log_likelihood: f64,
    /// `exp(-log_likelihood / scored)`.
    pub pseudo_perplexity: f64,
    /// `log p(x_i | x without i)` per residue (NaN where left out).
    pub per_residue: Vec<f32>,
}

/// One substitution: `A23G` is alanine at position 23 (1-based) to glycine.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Mutation {
    /// The residue the sequence has.
    pub wild_type: char,
    /// 1-based position.
    pub position: usize,
    /// The residue it becomes.
    pub mutant: char,
}

/// A variant: one or more substitutions, written `A23G` or `A23G:K45R`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Variant {
    /// As written.
    pub name: String,
    /// Its substitutions.
    pub mutations: Vec<Mutation>,
}

impl Variant {
    /// Parses `A23G` or `A23G:K45R` (substitutions joined by `:`).
    pub fn parse(text: &str) -> Result<Self, GenerateError> {
        let name = text.trim();
        let invalid = |why: &str| {
            GenerateError::Unsupported(format!(
                "variant '{name}': {why} (write substitutions as A23G, joined by ':' for a multiple mutant)"
            ))
        };
        if name.is_empty() {
            return Err(invalid("empty"));
        }
        let mut mutations = Vec::new();
        for part in name.split(':') {
            let chars: Vec<char> = part.chars().collect();
            if chars.len() < 3 {
                return Err(invalid(&format!("'{part}' is too short")));
            }
            let (wild_type, mutant) = (chars[0], chars[chars.len() - 1]);
            if !wild_type.is_ascii_alphabetic() || !mutant.is_ascii_alphabetic() {
                return Err(invalid(&format!(
                    "'{part}' does not start and end with a residue"
                )));
            }
            let digits: String = chars[1..chars.len() - 1].iter().collect();
            let position: usize = digits
                .parse()
                .ok()
                .filter(|&p| p > 0)
                .ok_or_else(|| invalid(&format!("'{digits}' is not a 1-based position")))?;
            if mutations.iter().any(|m: &Mutation| m.position == position) {
                return Err(invalid(&format!("position {position} is mutated twice")));
            }
            mutations.push(Mutation {
                wild_type: wild_type.to_ascii_uppercase(),
                position,
                mutant: mutant.to_ascii_uppercase(),
            });
        }
        Ok(Self {
            name: name.to_string(),
            mutations,
        })
    }
}

/// The masked-marginal score of a variant.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct VariantScore {
    /// The variant as written.
    pub variant: String,
    /// `sum log p(mutant) - log p(wild type)` at the mutated positions, all masked at once in
    /// the wild type (natural log; above 0: the model prefers the variant).
    pub score: f64,
}

/// One masked position of a recovery run.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RecoveredPosition {
    /// The protein.
    pub id: String,
    /// 1-based position among its residues.
    pub position: usize,
    /// The residue there.
    pub residue: char,
    /// The model's most likely residue.
    pub predicted: char,
    /// `log p(residue)` under the model.
    pub log_prob: f32,
}

/// Masked-residue recovery against the unigram baseline.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Recovery {
    /// Proteins.
    pub proteins: usize,
    /// Masked positions.
    pub masked: usize,
    /// Fraction the model predicts exactly.
    pub accuracy: f64,
    /// Mean `-log p(residue)` (nats).
    pub cross_entropy: f64,
    /// The unigram baseline's most frequent residue (over the input's residues).
    pub unigram_prediction: char,
    /// Fraction the unigram baseline (always its most frequent residue) gets right.
    pub unigram_accuracy: f64,
    /// Mean `-log q(residue)` under the input's residue frequencies.
    pub unigram_cross_entropy: f64,
    /// Every masked position.
    pub positions: Vec<RecoveredPosition>,
}

impl MaskedLm {
    /// Loads a checkpoint's masked LM in f32 with the checkpoint's tokenizer (residues its
    /// vocabulary lacks become its unknown token, as with embedding). Open the checkpoint
    /// [strict](Checkpoint::strict) to refuse tensors the model does not use.
    pub fn load(checkpoint: &Checkpoint, device: &Device) -> Result<Self, GenerateError> {
        let config = checkpoint.config();
        let (model, skipped) = config.pretraining(LoadMaskedLm { checkpoint, device })?;
        let tokenizer = checkpoint_tokenizer(checkpoint.dir(), config)?;
        let vocabulary = tokenizer.vocabulary();
        let mask = vocabulary.specials().mask.ok_or_else(|| {
            GenerateError::Unsupported(format!(
                "{}: the vocabulary has no mask token",
                checkpoint.dir().display()
            ))
        })?;
        let residues = (b'A'..=b'Z')
            .filter_map(|letter| vocabulary.residue_id(letter).map(|id| (id, letter as char)))
            .collect();
        let max_residues = config
            .max_tokens()
            .map(|t| t.saturating_sub(tokenizer.num_special_tokens()));
        Ok(Self {
            model,
            tokenizer,
            device: device.clone(),
            skipped,
            max_residues,
            tokens_per_batch: 16_384,
            residues,
            mask,
        })
    }

    /// The checkpoint's tensors the model did not use (by checkpoint name).
    pub fn skipped_tensors(&self) -> &[String] {
        &self.skipped
    }

    /// The tokenizer.
    pub fn tokenizer(&self) -> &Tokenizer {
        &self.tokenizer
    }

    /// Sets what happens to residues the vocabulary lacks.
    pub fn with_unknown_residues(mut self, unknown: UnknownResidues) -> Self {
        self.tokenizer = self.tokenizer.with_unknown_residues(unknown);
        self
    }

    /// Most tokens (rows times width) per forward pass (default 16384).
    pub fn with_tokens_per_batch(mut self, tokens: usize) -> Self {
        self.tokens_per_batch = tokens.max(1);
        self
    }

    /// Residue ids of a raw sequence, checked against the model's length limit.
    pub fn encode(&self, record: &str, sequence: &[u8]) -> Result<Vec<u32>, GenerateError> {
        let ids = self.tokenizer.encode_residues(record, sequence)?;
        self.check_length(record, ids.len())?;
        Ok(ids)
    }

    /// Fails when a protein of `residues` residues is longer than the model's positions allow.
    pub fn check_length(&self, record: &str, residues: usize) -> Result<(), GenerateError> {
        match self.max_residues {
            Some(limit) if residues > limit => Err(GenerateError::Unsupported(format!(
                "record '{record}': {residues} residues, more than the model's {limit}"
            ))),
            _ => Ok(()),
        }
    }

    fn letter(&self, id: u32) -> char {
        self.tokenizer
            .vocabulary()
            .residue_letter(id)
            .unwrap_or('?')
    }

    /// Full-vocabulary log-probabilities at the masked residue indices of each row (residue
    /// ids, unframed; the masked ones replaced by the mask token here), in batches of at most
    /// `tokens_per_batch` tokens.
    ///
    /// Returns, per row, one `[vocab]` vector per masked index, in the order given.
    fn log_probs(
        &self,
        rows: &[(&[u32], Vec<usize>)],
    ) -> Result<Vec<Vec<Vec<f32>>>, GenerateError> {
        let mut out = Vec::with_capacity(rows.len());
        let mut start = 0;
        while start < rows.len() {
            let width = |end: usize| {
                rows[start..end]
                    .iter()
                    .map(|(r, _)| r.len())
                    .max()
                    .unwrap_or(0)
                    + self.tokenizer.num_special_tokens()
            };
            let mut end = start + 1;
            while end < rows.len() && (end + 1 - start) * width(end + 1) <= self.tokens_per_batch {
                end += 1;
            }
            out.extend(self.log_probs_batch(&rows[start..end])?);
            start = end;
        }
        Ok(out)
    }

    fn log_probs_batch(
        &self,
        rows: &[(&[u32], Vec<usize>)],
    ) -> Result<Vec<Vec<Vec<f32>>>, GenerateError> {
        let framed: Vec<Vec<u32>> = rows
            .iter()
            .map(|(residues, masked)| {
                let mut residues = residues.to_vec();
                for &i in masked {
                    residues[i] = self.mask;
                }
                self.tokenizer.frame(residues.into_iter())
            })
            .collect();
        let batch = framed.len();
        let width = framed.iter().map(Vec::len).max().unwrap_or(0);
        let vocabulary = self.tokenizer.vocabulary();
        let left = vocabulary.padding_side() == PaddingSide::Left;
        let mut ids = vec![i64::from(vocabulary.specials().pad); batch * width];
        let mut attention = vec![0i64; batch * width];
        let mut positions = Vec::new();
        for (row, tokens) in framed.iter().enumerate() {
            let offset = if left { width - tokens.len() } else { 0 };
            let start = row * width + offset;
            for (k, &id) in tokens.iter().enumerate() {
                ids[start + k] = i64::from(id);
                attention[start + k] = 1;
            }
            let span = self.tokenizer.residue_span(rows[row].0.len());
            positions.extend(rows[row].1.iter().map(|&i| (start + span.start + i) as i64));
        }
        if positions.is_empty() {
            return Ok(vec![Vec::new(); batch]);
        }
        let shape = [batch, width];
        let input = EncoderInput::new(
            Tensor::<2, Int>::from_data(TensorData::new(ids, shape), &self.device),
            Tensor::<2, Int>::from_data(TensorData::new(attention, shape), &self.device),
        );
        let n = positions.len();
        let positions = Tensor::<1, Int>::from_data(TensorData::new(positions, [n]), &self.device);
        let logits = self
            .model
            .logits_at(input, positions)
            .into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .map_err(|e| GenerateError::Output(format!("{e:?}")))?;
        let vocab = logits.len() / n;
        let mut chunks = logits.chunks(vocab).map(log_softmax);
        Ok(rows
            .iter()
            .map(|(_, masked)| {
                masked
                    .iter()
                    .map(|_| chunks.next().unwrap_or_default())
                    .collect()
            })
            .collect())
    }

    /// The `top_k` most likely residues at each `_` of `masked` (residues, any case, with `_`
    /// where hidden), all hidden positions masked at once.
    pub fn fill_mask(
        &self,
        record: &str,
        masked: &str,
        top_k: usize,
    ) -> Result<Vec<MaskPrediction>, GenerateError> {
        let mut ids = Vec::with_capacity(masked.len());
        let mut hidden = Vec::new();
        for (index, byte) in masked.bytes().enumerate() {
            if byte.is_ascii_whitespace() {
                continue;
            }
            if byte == HIDDEN as u8 {
                hidden.push(ids.len());
                ids.push(self.mask);
            } else {
                ids.push(self.tokenizer.residue_id_at(record, index + 1, byte)?);
            }
        }
        if ids.is_empty() {
            return Err(TokenizeError::Empty {
                record: record.to_string(),
            }
            .into());
        }
        if hidden.is_empty() {
            return Err(GenerateError::Unsupported(format!(
                "record '{record}': no position is hidden; write {HIDDEN} where residues should be predicted"
            )));
        }
        self.check_length(record, ids.len())?;
        let log_probs = self.log_probs(&[(&ids, hidden.clone())])?.remove(0);
        Ok(hidden
            .into_iter()
            .zip(log_probs)
            .map(|(i, lp)| {
                let mut candidates: Vec<(char, f32)> = self
                    .residues
                    .iter()
                    .map(|&(id, letter)| (letter, lp[id as usize].exp()))
                    .collect();
                candidates.sort_by(|a, b| b.1.total_cmp(&a.1));
                candidates.truncate(top_k.max(1));
                MaskPrediction {
                    position: i + 1,
                    candidates,
                }
            })
            .collect())
    }

    /// The pseudo-log-likelihood of a protein (residue ids from [`Self::encode`]): each residue
    /// masked in turn, one row each, batched.
    pub fn pseudo_log_likelihood(
        &self,
        residues: &[u32],
    ) -> Result<PseudoLikelihood, GenerateError> {
        let unk = self.tokenizer.vocabulary().specials().unk;
        let scored: Vec<usize> = (0..residues.len())
            .filter(|&i| Some(residues[i]) != unk)
            .collect();
        let rows: Vec<(&[u32], Vec<usize>)> = scored.iter().map(|&i| (residues, vec![i])).collect();
        let log_probs = self.log_probs(&rows)?;
        let mut per_residue = vec![f32::NAN; residues.len()];
        let mut total = 0.0f64;
        for (&i, lp) in scored.iter().zip(&log_probs) {
            let value = lp[0][residues[i] as usize];
            per_residue[i] = value;
            total += f64::from(value);
        }
        Ok(PseudoLikelihood {
            scored: scored.len(),
            log_likelihood: total,
            pseudo_perplexity: (-total / scored.len().max(1) as f64).exp(),
            per_residue,
        })
    }

    /// Masked-marginal scores of variants of one protein (residue ids from [`Self::encode`]).
    /// Each variant's wild-type residues are checked against the sequence; variants mutating
    /// the same positions share one forward row.
    pub fn score_variants(
        &self,
        record: &str,
        residues: &[u32],
        variants: &[Variant],
    ) -> Result<Vec<VariantScore>, GenerateError> {
        let id_of = |variant: &Variant, letter: char| {
            u8::try_from(letter)
                .ok()
                .and_then(|b| self.tokenizer.vocabulary().residue_id(b))
                .ok_or_else(|| {
                    GenerateError::Unsupported(format!(
                        "variant '{}': '{letter}' is not a residue of the model's vocabulary",
                        variant.name
                    ))
                })
        };
        let mut row_of: HashMap<Vec<usize>, usize> = HashMap::new();
        let mut rows: Vec<(&[u32], Vec<usize>)> = Vec::new();
        let mut planned = Vec::with_capacity(variants.len());
        for variant in variants {
            let mut indices = Vec::new();
            let mut terms = Vec::new();
            for m in &variant.mutations {
                let index = m.position - 1;
                let Some(&found) = residues.get(index) else {
                    return Err(GenerateError::Unsupported(format!(
                        "variant '{}': position {} is past the end of '{record}' ({} residues)",
                        variant.name,
                        m.position,
                        residues.len()
                    )));
                };
                if found != id_of(variant, m.wild_type)? {
                    return Err(GenerateError::Unsupported(format!(
                        "variant '{}': '{record}' has {} at position {}, not {}",
                        variant.name,
                        self.letter(found),
                        m.position,
                        m.wild_type
                    )));
                }
                indices.push(index);
                terms.push((index, found, id_of(variant, m.mutant)?));
            }
            indices.sort_unstable();
            let row = *row_of.entry(indices.clone()).or_insert_with(|| {
                rows.push((residues, indices.clone()));
                rows.len() - 1
            });
            planned.push((row, indices, terms));
        }
        let log_probs = self.log_probs(&rows)?;
        Ok(variants
            .iter()
            .zip(planned)
            .map(|(variant, (row, indices, terms))| {
                let score = terms
                    .iter()
                    .map(|&(index, wild_type, mutant)| {
                        let k = indices.iter().position(|&i| i == index).unwrap_or(0);
                        let lp = &log_probs[row][k];
                        f64::from(lp[mutant as usize]) - f64::from(lp[wild_type as usize])
                    })
                    .sum();
                VariantScore {
                    variant: variant.name.clone(),
                    score,
                }
            })
            .collect())
    }

    /// Masked-residue recovery: each residue of each protein is masked with probability
    /// `rate` (at least one per protein; residues read as the unknown token never), all of a
    /// protein's at once, and predicted (see [`Self::recover_at`]).
    pub fn recover(
        &self,
        proteins: &[(String, Vec<u32>)],
        rate: f64,
        seed: u64,
    ) -> Result<Recovery, GenerateError> {
        if !(rate > 0.0 && rate <= 1.0) {
            return Err(GenerateError::Unsupported(format!(
                "the masking rate must be in (0, 1], not {rate}"
            )));
        }
        let unk = self.tokenizer.vocabulary().specials().unk;
        let mut rng = StdRng::seed_from_u64(seed);
        let mut masked = Vec::with_capacity(proteins.len());
        for (_, residues) in proteins {
            let eligible: Vec<usize> = (0..residues.len())
                .filter(|&i| Some(residues[i]) != unk)
                .collect();
            let mut chosen: Vec<usize> = eligible
                .iter()
                .copied()
                .filter(|_| rng.random::<f64>() < rate)
                .collect();
            if chosen.is_empty() && !eligible.is_empty() {
                chosen.push(eligible[rng.random_range(0..eligible.len())]);
            }
            masked.push(chosen);
        }
        self.recover_at(proteins, &masked)
    }

    /// Masked-residue recovery at chosen 0-based residue indices (`masked[i]` for protein
    /// `i`), all of a protein's masked at once; each is predicted among the residue tokens.
    /// The unigram baseline predicts the most frequent residue of the same proteins, which
    /// flatters it.
    pub fn recover_at(
        &self,
        proteins: &[(String, Vec<u32>)],
        masked: &[Vec<usize>],
    ) -> Result<Recovery, GenerateError> {
        let unk = self.tokenizer.vocabulary().specials().unk;
        let mut rows: Vec<(&[u32], Vec<usize>)> = Vec::with_capacity(proteins.len());
        for ((id, residues), chosen) in proteins.iter().zip(masked) {
            if let Some(&bad) = chosen
                .iter()
                .find(|&&i| i >= residues.len() || Some(residues[i]) == unk)
            {
                return Err(GenerateError::Unsupported(format!(
                    "record '{id}': position {} is not a known residue of its {} residues",
                    bad + 1,
                    residues.len()
                )));
            }
            rows.push((residues, chosen.clone()));
        }
        let log_probs = self.log_probs(&rows)?;

        let mut counts: HashMap<u32, usize> = HashMap::new();
        for (_, residues) in proteins {
            for &id in residues.iter().filter(|&&id| Some(id) != unk) {
                *counts.entry(id).or_default() += 1;
            }
        }
        let total: usize = counts.values().sum();
        let (&most_frequent, _) = counts
            .iter()
            .max_by_key(|&(&id, &n)| (n, std::cmp::Reverse(id)))
            .ok_or_else(|| GenerateError::Unsupported("no residues to recover".into()))?;

        let mut positions = Vec::new();
        let (mut correct, mut nll, mut unigram_correct, mut unigram_nll) = (0usize, 0.0, 0, 0.0);
        for ((id, residues), ((_, masked), lps)) in proteins.iter().zip(rows.iter().zip(&log_probs))
        {
            for (&i, lp) in masked.iter().zip(lps) {
                let truth = residues[i];
                let (predicted, _) = self
                    .residues
                    .iter()
                    .map(|&(rid, _)| (rid, lp[rid as usize]))
                    .fold((truth, f32::NEG_INFINITY), |best, c| {
                        if c.1 > best.1 { c } else { best }
                    });
                correct += usize::from(predicted == truth);
                unigram_correct += usize::from(most_frequent == truth);
                nll -= f64::from(lp[truth as usize]);
                unigram_nll -= (counts[&truth] as f64 / total as f64).ln();
                positions.push(RecoveredPosition {
                    id: id.clone(),
                    position: i + 1,
                    residue: self.letter(truth),
                    predicted: self.letter(predicted),
                    log_prob: lp[truth as usize],
                });
            }
        }
        let masked = positions.len().max(1) as f64;
        Ok(Recovery {
            proteins: proteins.len(),
            masked: positions.len(),
            accuracy: correct as f64 / masked,
            cross_entropy: nll / masked,
            unigram_prediction: self.letter(most_frequent),
            unigram_accuracy: unigram_correct as f64 / masked,
            unigram_cross_entropy: unigram_nll / masked,
            positions,
        })
    }
}

/// `log_softmax` of one row of logits, in f64 for the sum.
fn log_softmax(logits: &[f32]) -> Vec<f32> {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    let sum: f64 = logits.iter().map(|&x| f64::from(x - max).exp()).sum();
    let log_sum = sum.ln() as f32 + max;
    logits.iter().map(|&x| x - log_sum).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../tests/fixtures")
            .join(name)
    }

    fn open(name: &str) -> Checkpoint {
        Checkpoint::open(fixture(name)).unwrap()
    }

    /// `albert_tiny` with its ids written out as a vocab.txt (the fixture has no spiece.model).
    fn albert_with_vocabulary(dir: &std::path::Path) -> Checkpoint {
        for file in ["config.json", "model.safetensors"] {
            std::fs::copy(fixture("albert_tiny").join(file), dir.join(file)).unwrap();
        }
        let mut vocab: Vec<String> = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
            .map(String::from)
            .to_vec();
        vocab.extend("ALGVESIKRDTPNQFYMHCWXUBZO".chars().map(String::from));
        vocab.extend((0..4).map(|i| format!("[unused{i}]")));
        std::fs::write(dir.join("vocab.txt"), vocab.join("\n")).unwrap();
        Checkpoint::open(dir).unwrap()
    }

    /// Fill-mask, variant scores and pseudo-log-likelihoods are three views of the same
    /// masked distributions: they must agree, and batching must not change them.
    #[test]
    fn the_tools_agree_on_every_masked_lm_fixture() {
        let device = Device::flex();
        let albert = tempfile::tempdir().unwrap();
        for name in [
            "bert_tiny",
            "albert_tiny",
            "esm_tiny",
            "electra_tiny_generator",
        ] {
            let checkpoint = match name {
                "albert_tiny" => albert_with_vocabulary(albert.path()),
                _ => open(name),
            };
            let model = MaskedLm::load(&checkpoint, &device).unwrap();
            let residues = model.encode("p", b"MKTAYIAKQRQISFVK").unwrap();
            let filled = model.fill_mask("p", "MKT_YIAKQRQISFVK", 100).unwrap();
            assert_eq!(filled.len(), 1);
            assert_eq!(filled[0].position, 4);
            let p = |residue: char| {
                filled[0]
                    .candidates
                    .iter()
                    .find(|c| c.0 == residue)
                    .map(|c| f64::from(c.1))
                    .unwrap()
            };
            let total: f64 = filled[0].candidates.iter().map(|c| f64::from(c.1)).sum();
            assert!(total > 0.0 && total <= 1.0 + 1e-5, "{name}: {total}");
            let variants = [
                Variant::parse("A4G").unwrap(),
                Variant::parse("A4G:K2R").unwrap(),
            ];
            let scores = model.score_variants("p", &residues, &variants).unwrap();
            let expected = p('G').ln() - p('A').ln();
            assert!(
                (scores[0].score - expected).abs() < 1e-4,
                "{name}: {scores:?} vs {expected}"
            );
            assert_ne!(scores[0].score, scores[1].score, "{name}");
            let pll = model.pseudo_log_likelihood(&residues).unwrap();
            assert_eq!(pll.scored, residues.len());
            assert!(
                (f64::from(pll.per_residue[3]) - p('A').ln()).abs() < 1e-4,
                "{name}"
            );
            // One row per forward pass gives the same as all rows padded together.
            let one_by_one = MaskedLm::load(&checkpoint, &device)
                .unwrap()
                .with_tokens_per_batch(1)
                .pseudo_log_likelihood(&residues)
                .unwrap();
            assert!(
                (one_by_one.log_likelihood - pll.log_likelihood).abs() < 1e-3,
                "{name}"
            );
            let wrong = model
                .score_variants("p", &residues, &[Variant::parse("K4G").unwrap()])
                .unwrap_err();
            assert!(wrong.to_string().contains("has A at position 4"), "{wrong}");
        }
    }

    #[test]
    fn recovery_at_drawn_positions_is_reproducible() {
        let model = MaskedLm::load(&open("bert_tiny"), &Device::flex()).unwrap();
        let proteins: Vec<(String, Vec<u32>)> = ["MKTAYIAKQRQISFVKSHFSRQ", "GSHMLEDPVDAFQ"]
            .iter()
            .enumerate()
            .map(|(i, s)| (format!("p{i}"), model.encode("p", s.as_bytes()).unwrap()))
            .collect();
        let drawn = model.recover(&proteins, 0.3, 7).unwrap();
        assert!(drawn.masked >= 2 && drawn.masked < 35, "{}", drawn.masked);
        let mut at = vec![Vec::new(); 2];
        for p in &drawn.positions {
            at[usize::from(p.id == "p1")].push(p.position - 1);
        }
        let again = model.recover_at(&proteins, &at).unwrap();
        assert_eq!(again, drawn);
        assert!(again.unigram_accuracy <= 1.0 && again.cross_entropy > 0.0);
        let err = model
            .recover_at(&proteins, &[vec![40], vec![]])
            .unwrap_err();
        assert!(err.to_string().contains("position 41"), "{err}");
    }

    #[test]
    fn models_without_a_masked_lm_head_say_so() {
        for name in ["t5_relu_tiny", "xlnet_tiny", "electra_tiny_discriminator"] {
            let err = MaskedLm::load(&open(name), &Device::flex()).unwrap_err();
            assert!(
                err.to_string().contains("no masked-LM head"),
                "{name}: {err}"
            );
        }
    }

    #[test]
    fn variants_parse_and_bad_ones_say_why() {
        let v = Variant::parse("A23G:k45r").unwrap();
        assert_eq!(
            v.mutations,
            vec![
                Mutation {
                    wild_type: 'A',
                    position: 23,
                    mutant: 'G'
                },
                Mutation {
                    wild_type: 'K',
                    position: 45,
                    mutant: 'R'
                }
            ]
        );
        for (bad, why) in [
            ("A0G", "1-based"),
            ("AG", "too short"),
            ("1A2", "start and end"),
            ("A2G:A2C", "twice"),
            ("", "empty"),
        ] {
            let err = Variant::parse(bad).unwrap_err().to_string();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn log_softmax_sums_to_one() {
        let lp = log_softmax(&[1.0, 2.0, 3.0, 1000.0]);
        let total: f64 = lp.iter().map(|&x| f64::from(x).exp()).sum();
        assert!((total - 1.0).abs() < 1e-6, "{total}");
        assert!(lp[3].abs() < 1e-6);
    }
}
