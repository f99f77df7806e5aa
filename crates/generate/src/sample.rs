//! Sampling new proteins from the autoregressive models, residue by residue.
//!
//! - **Transformer-XL** continues `[CLS] prompt` left to right. The prompt is read once; each
//!   new residue is then fed alone after the memory, which holds the last `mem_len` positions,
//!   so a step costs one position, not the whole sequence. Sampling stops at `[SEP]` (the end
//!   of a protein in training) or after `max_new_tokens`.
//! - **XLNet** predicts the residue after the prompt as `transformers` does: a placeholder is
//!   appended that no position may see (permutation mask), and the query stream at its
//!   position predicts it. XLNet was never trained to predict an end, so it samples exactly
//!   `max_new_tokens` residues, re-reading the whole sequence at each step.
//!
//! Only the 20 standard residues (and, for Transformer-XL, the end) are sampled, at
//! `temperature`, from the `top_k` most likely (0: all).

use std::path::{Path, PathBuf};

use burn::tensor::{Device, Int, Tensor, TensorData};
use prottrans_data::Tokenizer;
use prottrans_import::{Checkpoint, ImportError};
use prottrans_models::{
    ElectraConfig, MaskedLanguageModel, ModelConfig, PretrainingVisitor, RegisteredConfig,
    SegmentMemory, T5Config, TransfoXlConfig, TransfoXlLmHeadModel, XlnetConfig, XlnetInput,
    XlnetLmHeadModel,
};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

use crate::error::GenerateError;

/// How residues are drawn.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SamplingOptions {
    /// Most residues to add after the prompt.
    pub max_new_tokens: usize,
    /// Softmax temperature (1: the model's distribution; towards 0: greedy).
    pub temperature: f32,
    /// Sample among the `top_k` most likely tokens only (0: all).
    pub top_k: usize,
}

impl Default for SamplingOptions {
    fn default() -> Self {
        Self {
            max_new_tokens: 100,
            temperature: 1.0,
            top_k: 0,
        }
    }
}

#[derive(Debug)]
enum Model {
    TransfoXl(TransfoXlLmHeadModel),
    Xlnet(XlnetLmHeadModel),
}

/// Loads the model with its LM head for the autoregressive objectives; `None` for the others.
struct LoadModel<'a> {
    checkpoint: &'a Checkpoint,
    device: &'a Device,
}

impl PretrainingVisitor for LoadModel<'_> {
    type Output = Option<Result<Model, ImportError>>;

    fn masked_lm<M>(self, _: &M::Config) -> Self::Output
    where
        M: MaskedLanguageModel,
        M::Config: RegisteredConfig,
    {
        None
    }
    fn replaced_token_detection(self, _: &ElectraConfig) -> Self::Output {
        None
    }
    fn span_corruption(self, _: &T5Config) -> Self::Output {
        None
    }
    fn permutation_lm(self, _: &XlnetConfig) -> Self::Output {
        Some(
            self.checkpoint
                .load::<XlnetLmHeadModel>(self.device)
                .map(|(_, model)| Model::Xlnet(model)),
        )
    }
    fn causal_lm(self, _: &TransfoXlConfig) -> Self::Output {
        Some(
            self.checkpoint
                .load::<TransfoXlLmHeadModel>(self.device)
                .map(|(_, model)| Model::TransfoXl(model)),
        )
    }
}

/// An XLNet or Transformer-XL checkpoint loaded for sampling.
#[derive(Debug)]
pub struct Sampler {
    model: Model,
    tokenizer: Tokenizer,
    device: Device,
    source: PathBuf,
}

/// One sampled protein.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sampled {
    /// The prompt followed by the sampled residues.
    pub sequence: String,
    /// How many residues were sampled.
    pub new_residues: usize,
    /// Whether the model ended the protein (Transformer-XL's `[SEP]`) before the limit.
    pub ended: bool,
}

impl Sampler {
    /// Whether a checkpoint's architecture can be sampled from (XLNet, Transformer-XL).
    pub fn supports(config: &ModelConfig) -> bool {
        config.objective().is_autoregressive()
    }

    /// Loads an `XLNetLMHeadModel` or `TransfoXLLMHeadModel` checkpoint directory with the
    /// vocabulary beside it (as for embedding).
    pub fn load(dir: impl AsRef<Path>, device: &Device) -> Result<Self, GenerateError> {
        let dir = dir.as_ref();
        let checkpoint = Checkpoint::open(dir)?;
        let tokenizer = prottrans_import::checkpoint_tokenizer(dir, checkpoint.config())?;
        let config = checkpoint.config();
        let Some(model) = config.pretraining(LoadModel {
            checkpoint: &checkpoint,
            device,
        }) else {
            return Err(GenerateError::Unsupported(format!(
                "{}: sampling needs an XLNet or Transformer-XL checkpoint, this is {} (ProtT5 fills in residues instead: `_` in --sequence)",
                dir.display(),
                config.architecture()
            )));
        };
        let model = model?;
        let vocab_size = checkpoint.config().vocab_size();
        let residues = tokenizer.vocabulary().standard_residue_ids();
        if residues.is_empty() || residues.iter().any(|&id| id as usize >= vocab_size) {
            return Err(GenerateError::Unsupported(format!(
                "{}: the vocabulary `{}` does not give the 20 standard residues ids below the model's {vocab_size} embeddings",
                dir.display(),
                tokenizer.vocabulary().name()
            )));
        }
        Ok(Self {
            model,
            tokenizer,
            device: device.clone(),
            source: dir.to_path_buf(),
        })
    }

    /// The checkpoint directory.
    pub fn source(&self) -> &Path {
        &self.source
    }

    /// Samples one continuation of `prompt` (residues, possibly empty).
    pub fn sample(
        &self,
        record: &str,
        prompt: &str,
        options: &SamplingOptions,
        rng: &mut StdRng,
    ) -> Result<Sampled, GenerateError> {
        let prompt: String = prompt.chars().filter(|c| !c.is_whitespace()).collect();
        let residues = if prompt.is_empty() {
            Vec::new()
        } else {
            self.tokenizer.encode_residues(record, prompt.as_bytes())?
        };
        let vocabulary = self.tokenizer.vocabulary();
        let mut allowed = vocabulary.standard_residue_ids();
        let specials = vocabulary.specials();
        let mut generated = Vec::new();
        let mut ended = false;
        match &self.model {
            Model::TransfoXl(model) => {
                let (Some(start), Some(end)) = (specials.cls, specials.sep) else {
                    return Err(GenerateError::Unsupported(format!(
                        "{}: vocabulary `{}` has no [CLS]/[SEP]",
                        self.source.display(),
                        vocabulary.name()
                    )));
                };
                allowed.push(end);
                let mut sequence: Vec<u32> = std::iter::once(start)
                    .chain(residues.iter().copied())
                    .collect();
                // Each step feeds the new token after the memory; without memory (`mem_len`
                // 0) the whole sequence is read again.
                let remembers = model.transformer.mem_len() > 0;
                let mut input = sequence.clone();
                let mut memory: Option<SegmentMemory> = None;
                for _ in 0..options.max_new_tokens {
                    let (logits, next_memory) = model.forward(self.ids(&input), memory.as_ref());
                    if remembers {
                        memory = Some(next_memory);
                    }
                    let [_, len, vocab] = logits.dims();
                    let last = logits
                        .slice([0..1, len - 1..len, 0..vocab])
                        .reshape([vocab]);
                    let token = self.draw(last, &allowed, options, rng)?;
                    if token == end {
                        ended = true;
                        break;
                    }
                    generated.push(token);
                    sequence.push(token);
                    input = if remembers {
                        vec![token]
                    } else {
                        sequence.clone()
                    };
                }
            }
            Model::Xlnet(model) => {
                let placeholder = specials.mask.unwrap_or(specials.pad);
                let mut sequence = residues.clone();
                for _ in 0..options.max_new_tokens {
                    let n = sequence.len() + 1;
                    let ids: Vec<u32> = sequence
                        .iter()
                        .copied()
                        .chain(std::iter::once(placeholder))
                        .collect();
                    // Nobody sees the placeholder; the query stream predicts it.
                    let perm: Vec<bool> = (0..n * n).map(|k| k % n == n - 1).collect();
                    let mut mapping = vec![0.0f32; n];
                    mapping[n - 1] = 1.0;
                    let input = XlnetInput {
                        perm_mask: Some(Tensor::from_data(
                            TensorData::new(perm, [1, n, n]),
                            &self.device,
                        )),
                        target_mapping: Some(Tensor::from_data(
                            TensorData::new(mapping, [1, 1, n]),
                            &self.device,
                        )),
                        ..XlnetInput::new(self.ids(&ids), None)
                    };
                    let (logits, _) = model.forward(input, None);
                    let vocab = logits.dims()[2];
                    let token = self.draw(logits.reshape([vocab]), &allowed, options, rng)?;
                    sequence.push(token);
                    generated.push(token);
                }
            }
        }
        let letters: String = generated
            .iter()
            .filter_map(|&id| vocabulary.token(id))
            .map(|t| t.trim_start_matches('\u{2581}'))
            .collect();
        Ok(Sampled {
            sequence: format!("{}{letters}", prompt.to_ascii_uppercase()),
            new_residues: generated.len(),
            ended,
        })
    }

    fn ids(&self, ids: &[u32]) -> Tensor<2, Int> {
        let values: Vec<i64> = ids.iter().map(|&i| i64::from(i)).collect();
        Tensor::from_data(TensorData::new(values, [1, ids.len()]), &self.device)
    }

    /// Draws a token among `allowed` from `logits`.
    fn draw(
        &self,
        logits: Tensor<1>,
        allowed: &[u32],
        options: &SamplingOptions,
        rng: &mut StdRng,
    ) -> Result<u32, GenerateError> {
        let logits = logits
            .into_data()
            .convert::<f32>()
            .try_into_vec::<f32>()
            .map_err(|e| GenerateError::Output(format!("{e:?}")))?;
        Ok(draw(&logits, allowed, options, rng))
    }
}

/// Draws one of `allowed` with probability ∝ `exp(logit / temperature)`, among the `top_k` best.
fn draw(logits: &[f32], allowed: &[u32], options: &SamplingOptions, rng: &mut StdRng) -> u32 {
    let mut candidates: Vec<(u32, f32)> = allowed
        .iter()
        .filter_map(|&id| logits.get(id as usize).map(|&l| (id, l)))
        .collect();
    candidates.sort_by(|a, b| b.1.total_cmp(&a.1));
    if options.top_k > 0 {
        candidates.truncate(options.top_k);
    }
    let temperature = options.temperature.max(1e-4);
    let best = candidates[0].1;
    let weights: Vec<f64> = candidates
        .iter()
        .map(|&(_, l)| f64::from((l - best) / temperature).exp())
        .collect();
    let total: f64 = weights.iter().sum();
    let mut target = rng.random::<f64>() * total;
    for (&(id, _), w) in candidates.iter().zip(&weights) {
        if target < *w {
            return id;
        }
        target -= w;
    }
    candidates[candidates.len() - 1].0
}

/// The seeded generator sampling uses.
pub fn seeded(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn low_temperature_is_greedy_and_top_k_limits_the_choice() {
        let logits = [0.0, 5.0, 1.0, 4.9];
        let mut rng = seeded(1);
        let greedy = SamplingOptions {
            temperature: 1e-3,
            ..Default::default()
        };
        for _ in 0..20 {
            assert_eq!(draw(&logits, &[0, 1, 2, 3], &greedy, &mut rng), 1);
        }
        let top2 = SamplingOptions {
            top_k: 2,
            ..Default::default()
        };
        let mut seen = [0; 4];
        for _ in 0..400 {
            seen[draw(&logits, &[0, 1, 2, 3], &top2, &mut rng) as usize] += 1;
        }
        assert_eq!((seen[0], seen[2]), (0, 0), "{seen:?}");
        assert!(seen[1] > 100 && seen[3] > 100, "{seen:?}");
        // Tokens outside `allowed` are never drawn, however likely.
        assert_eq!(draw(&logits, &[0, 2], &greedy, &mut rng), 2);
    }
}
