//! The pretraining recipe, read from TOML:
//!
//! ```toml
//! [model]            # architecture + Hugging Face config field names
//! architecture = "bert"
//! hidden_size = 64
//! ...
//! [masking]          # optional, BERT's masked LM (80% [MASK], 10% random, 10% kept)
//! [corruption]       # optional, T5's single-residue span corruption (90% sentinel, 10% random)
//! [electra]          # optional, ELECTRA's discriminator weight and replacements
//! [autoregressive]   # optional, XLNet's partial prediction, Transformer-XL's segment length
//! [data]             # crop length and batch budget
//! [optimizer]        # adamw | lamb, learning rate, clipping, accumulation
//! [schedule]         # steps, warmup, checkpoint interval
//! ```

use std::collections::BTreeSet;
use std::path::Path;

use burn::grad_clipping::GradientClippingConfig;
use burn::lr_scheduler::LrSchedulerConfig;
use burn::lr_scheduler::linear::LinearLrSchedulerConfig;
use burn::lr_scheduler::module_lr_scheduler::ModuleLrScheduler;
use burn::lr_scheduler::sequential::SequentialLrSchedulerConfig;
use burn::module::ParamGroup;
use burn::optim::{AdamWConfig, LambConfig, ModuleOptimizer};
use prottrans_data::{BatchPlanner, Tokenizer};
use prottrans_models::{Architecture, ModelConfig, Objective};
use serde::{Deserialize, Serialize};

use crate::error::TrainError;
use crate::objectives::mlm::MaskingConfig;
use crate::objectives::permutation_lm::DEFAULT_PARTIAL_PREDICTION;
use crate::objectives::pretraining::ObjectiveSettings;
use crate::objectives::replaced_token::{DEFAULT_DISCRIMINATOR_WEIGHT, Replacements};
use crate::objectives::span_corruption::CorruptionConfig;
use crate::precision::MixedPrecision;
use prottrans_backend::Precision;

/// A full pretraining recipe.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PretrainConfig {
    /// Model shape.
    pub model: ModelConfig,
    /// Masking rates (masked LM: BERT).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub masking: Option<MaskingConfig>,
    /// Corruption rates (span corruption: T5).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub corruption: Option<CorruptionConfig>,
    /// Replaced-token detection (ELECTRA).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub electra: Option<ReplacedTokenConfig>,
    /// XLNet's and Transformer-XL's objectives.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autoregressive: Option<AutoregressiveConfig>,
    /// Data handling.
    #[serde(default)]
    pub data: DataConfig,
    /// Optimiser.
    #[serde(default)]
    pub optimizer: OptimizerConfig,
    /// Length and checkpoints.
    pub schedule: ScheduleConfig,
}

/// Parameters LAMB leaves out of weight decay and layer-wise adaptation, by a part of their
/// module path: biases (including XLNet's and Transformer-XL's relative-attention biases) and
/// layer norms, as BERT's `exclude_from_layer_adaptation`.
pub const LAMB_UNADAPTED: &[&str] = &["bias", "norm"];

/// ELECTRA's objective.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReplacedTokenConfig {
    /// Weight of the discriminator's loss against the generator's (ELECTRA: 50).
    pub discriminator_weight: f64,
    /// Where the discriminator's replacements come from (ELECTRA: the generator).
    pub replacements: Replacements,
}

impl Default for ReplacedTokenConfig {
    fn default() -> Self {
        Self {
            discriminator_weight: DEFAULT_DISCRIMINATOR_WEIGHT,
            replacements: Replacements::Generator,
        }
    }
}

/// XLNet's permutation LM and Transformer-XL's causal LM.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AutoregressiveConfig {
    /// XLNet: `1/K` of each protein's residues are predicted (XLNet's K = 6).
    pub partial_prediction: usize,
    /// Transformer-XL: tokens per segment; a batch is read in segments, each after the memory
    /// (`model.mem_len`) of the previous ones.
    pub segment_length: usize,
}

impl Default for AutoregressiveConfig {
    fn default() -> Self {
        Self {
            partial_prediction: DEFAULT_PARTIAL_PREDICTION,
            segment_length: 128,
        }
    }
}

/// Cropping and batching.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DataConfig {
    /// Residues per sequence; longer sequences are cropped at random (ProtBert: 510, then 2046).
    pub max_residues: usize,
    /// Padded tokens per batch (sequences x longest).
    pub max_tokens: usize,
    /// Sequences per batch.
    pub max_sequences: usize,
    /// Data-loading worker threads.
    pub num_workers: usize,
    /// Seed for batching, cropping, masking and initialisation.
    pub seed: u64,
}

impl Default for DataConfig {
    fn default() -> Self {
        Self {
            max_residues: 510,
            max_tokens: 8192,
            max_sequences: 64,
            num_workers: 2,
            seed: 42,
        }
    }
}

/// Which optimiser.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    /// AdamW (decoupled weight decay).
    Adamw,
    /// LAMB (layer-wise trust ratio; ProtBert's optimiser).
    Lamb,
}

/// Optimiser settings.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OptimizerConfig {
    /// AdamW or LAMB.
    pub kind: OptimizerKind,
    /// Peak learning rate, reached after warmup.
    pub learning_rate: f64,
    /// Weight decay.
    pub weight_decay: f32,
    /// First-moment decay.
    pub beta_1: f32,
    /// Second-moment decay.
    pub beta_2: f32,
    /// Denominator epsilon (PyTorch's 1e-8 by default; burn's AdamW default is 1e-5).
    pub epsilon: f32,
    /// Clip each parameter's gradient to this L2 norm (burn clips per tensor); none if absent.
    pub grad_clip_norm: Option<f32>,
    /// Batches whose gradients are averaged before each optimiser step.
    pub grad_accumulation: usize,
    /// Precision of the forward and backward passes: `f32`, `f16` or `bf16`. Master weights and
    /// optimiser state stay f32 (see [`crate::precision`]).
    pub precision: Precision,
    /// Loss scale for f16 (default 1024; bf16 and f32 need none).
    pub loss_scale: Option<f32>,
}

impl Default for OptimizerConfig {
    fn default() -> Self {
        Self {
            kind: OptimizerKind::Adamw,
            learning_rate: 1e-3,
            weight_decay: 0.01,
            beta_1: 0.9,
            beta_2: 0.999,
            epsilon: 1e-8,
            grad_clip_norm: Some(1.0),
            grad_accumulation: 1,
            precision: Precision::F32,
            loss_scale: None,
        }
    }
}

/// Training length, warmup and checkpoints, in optimiser steps.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleConfig {
    /// Total optimiser steps; the learning rate decays linearly to zero at the last.
    pub steps: usize,
    /// Linear warmup steps.
    pub warmup_steps: usize,
    /// Steps between checkpoints (and validations). burn-train checkpoints per epoch, so this
    /// is the epoch length.
    pub checkpoint_every: usize,
}

/// The key of a bad value in `[model]`, which toml's error cannot name (an internally tagged
/// enum is read through a buffer): the table read again as the `config.json` it mirrors.
fn model_value_error(recipe: &toml::Table) -> Option<String> {
    let mut model = recipe.get("model")?.as_table()?.clone();
    let architecture = model.remove("architecture")?;
    model.insert("model_type".into(), architecture);
    let json = serde_json::to_string(&model).ok()?;
    match ModelConfig::from_hf_json_str(&json) {
        Err(prottrans_models::ModelConfigError::Parse { message, .. }) => Some(message),
        _ => None,
    }
}

impl PretrainConfig {
    /// Reads and checks a recipe file. Unknown keys are errors, named with their section.
    pub fn from_toml_file(path: impl AsRef<Path>) -> Result<Self, TrainError> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| TrainError::Io {
            path: path.to_path_buf(),
            source,
        })?;
        // Every error of the text is named with the file.
        Self::from_toml_str(&text).map_err(|e| TrainError::Recipe {
            path: path.to_path_buf(),
            message: match e {
                TrainError::Recipe { message, .. } | TrainError::Invalid(message) => message,
                other => other.to_string(),
            },
        })
    }

    /// Parses and checks recipe text.
    pub fn from_toml_str(text: &str) -> Result<Self, TrainError> {
        let recipe_error = |message: String| TrainError::Recipe {
            path: "<recipe>".into(),
            message,
        };
        let value: toml::Table = toml::from_str(text).map_err(|e| recipe_error(e.to_string()))?;
        // `[model]` is an internally tagged enum, which serde cannot make strict: check its keys.
        if let Some(model) = value.get("model").and_then(|m| m.as_table()) {
            let architecture = model.get("architecture").and_then(|a| a.as_str());
            if let Some(Err(e)) = architecture.map(Architecture::from_model_type) {
                return Err(recipe_error(format!("model.architecture: {e}")));
            }
            let known = model_keys(architecture);
            let unknown: Vec<&str> = model
                .keys()
                .map(String::as_str)
                .filter(|k| !known.contains(*k))
                .collect();
            if !unknown.is_empty() {
                return Err(recipe_error(format!(
                    "unknown key(s) in [model]: {} (known: {})",
                    unknown.join(", "),
                    known.iter().cloned().collect::<Vec<_>>().join(", ")
                )));
            }
        }
        let config: Self = toml::from_str(text).map_err(|e| {
            recipe_error(match model_value_error(&value) {
                Some(message) => format!("in [model], {message}"),
                None => e.to_string(),
            })
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks values across sections.
    pub fn validate(&self) -> Result<(), TrainError> {
        self.model.validate()?;
        let invalid = |m: String| Err(TrainError::Invalid(m));
        let objective = self.model.objective();
        let architecture = self.model.architecture();
        let spans = objective == Objective::SpanCorruption;
        let autoregressive = objective.is_autoregressive();
        if self.masking.is_some() && spans {
            return invalid(format!(
                "[masking] is for masked LM; {architecture} is trained with span corruption, set [corruption]"
            ));
        }
        if self.corruption.is_some() && !spans {
            let (how, section) = if autoregressive {
                ("autoregressively", "[autoregressive]")
            } else {
                ("with masked residues", "[masking]")
            };
            return invalid(format!(
                "[corruption] is for T5's span corruption; {architecture} is trained {how}, set {section}"
            ));
        }
        if self.masking.is_some() && autoregressive {
            return invalid(format!(
                "[masking] is for masked LM; {architecture} is trained autoregressively, set [autoregressive]"
            ));
        }
        if self.autoregressive.is_some() && !autoregressive {
            return invalid(format!(
                "[autoregressive] is for xlnet and transfo_xl; the model is {architecture}"
            ));
        }
        let a = self.autoregressive();
        if a.partial_prediction == 0 || a.segment_length == 0 {
            return invalid("autoregressive.partial_prediction and autoregressive.segment_length must be at least 1".into());
        }
        if self.electra.is_some() && objective != Objective::ReplacedTokenDetection {
            return invalid(format!(
                "[electra] is for ELECTRA; the model is {architecture}"
            ));
        }
        let weight = self.electra.unwrap_or_default().discriminator_weight;
        if !(weight.is_finite() && weight > 0.0) {
            return invalid(format!(
                "electra.discriminator_weight must be a positive number, got {weight}"
            ));
        }
        self.masking().validate()?;
        self.corruption().validate()?;
        let s = &self.schedule;
        if s.steps == 0 || s.checkpoint_every == 0 {
            return invalid(
                "schedule.steps and schedule.checkpoint_every must be at least 1".into(),
            );
        }
        if s.warmup_steps >= s.steps {
            return invalid(format!(
                "schedule.warmup_steps ({}) must be below schedule.steps ({})",
                s.warmup_steps, s.steps
            ));
        }
        let o = &self.optimizer;
        if !(o.learning_rate > 0.0 && o.learning_rate <= 1.0) {
            return invalid(format!(
                "optimizer.learning_rate must be in (0, 1], got {}",
                o.learning_rate
            ));
        }
        for (name, beta) in [("beta_1", o.beta_1), ("beta_2", o.beta_2)] {
            if !(0.0..1.0).contains(&beta) {
                return invalid(format!("optimizer.{name} must be in [0, 1), got {beta}"));
            }
        }
        if !(o.epsilon.is_finite() && o.epsilon > 0.0) {
            return invalid(format!(
                "optimizer.epsilon must be a positive number, got {}",
                o.epsilon
            ));
        }
        if !(o.weight_decay.is_finite() && o.weight_decay >= 0.0) {
            return invalid(format!(
                "optimizer.weight_decay must be zero or positive, got {}",
                o.weight_decay
            ));
        }
        if let Some(norm) = o.grad_clip_norm
            && !(norm.is_finite() && norm > 0.0)
        {
            return invalid(format!(
                "optimizer.grad_clip_norm must be a positive number (leave it out for no clipping), got {norm}"
            ));
        }
        if o.loss_scale.is_some_and(|s| !(s.is_finite() && s > 0.0)) {
            return invalid("optimizer.loss_scale must be a positive number".into());
        }
        if o.grad_accumulation == 0 {
            return invalid("optimizer.grad_accumulation must be at least 1".into());
        }
        let longest = self.data.max_residues + self.special_tokens();
        if let Some(limit) = self.model.max_tokens()
            && longest > limit
        {
            return invalid(format!(
                "data.max_residues ({}) + {} special tokens exceeds model.max_position_embeddings ({limit})",
                self.data.max_residues,
                self.special_tokens()
            ));
        }
        self.planner().validate()?;
        Ok(())
    }

    /// The masking rates when the recipe has no `[masking]`: BERT's 80/10/10, or ELECTRA's
    /// (85% `[MASK]`, 15% unchanged, no random residue: the generator supplies replacements).
    pub fn masking(&self) -> MaskingConfig {
        self.masking.unwrap_or(match self.model.objective() {
            Objective::ReplacedTokenDetection => MaskingConfig {
                probability: 0.15,
                mask_fraction: 0.85,
                random_fraction: 0.0,
            },
            _ => MaskingConfig::default(),
        })
    }

    /// ELECTRA's objective settings (defaults when the recipe has no `[electra]`).
    pub fn electra(&self) -> ReplacedTokenConfig {
        self.electra.unwrap_or_default()
    }

    /// XLNet's and Transformer-XL's settings (defaults when the recipe has no `[autoregressive]`).
    pub fn autoregressive(&self) -> AutoregressiveConfig {
        self.autoregressive.unwrap_or_default()
    }

    /// What the objectives read from the recipe.
    pub fn objective_settings(&self) -> ObjectiveSettings {
        let autoregressive = self.autoregressive();
        ObjectiveSettings {
            masking: self.masking(),
            corruption: self.corruption(),
            discriminator_weight: self.electra().discriminator_weight,
            replacements: self.electra().replacements,
            partial_prediction: autoregressive.partial_prediction,
            segment_length: autoregressive.segment_length,
            seed: self.data.seed,
        }
    }

    /// The corruption rates (the authors' when the recipe has no `[corruption]`).
    pub fn corruption(&self) -> CorruptionConfig {
        self.corruption.unwrap_or_default()
    }

    /// Special tokens around each sequence in the vocabulary the model is pretrained with:
    /// `[CLS] … [SEP]` for BERT, `… </s>` for T5.
    pub fn special_tokens(&self) -> usize {
        Tokenizer::new(self.model.default_vocabulary()).num_special_tokens()
    }

    /// The batch planner for this recipe.
    pub fn planner(&self) -> BatchPlanner {
        BatchPlanner {
            max_tokens: self.data.max_tokens,
            max_sequences: self.data.max_sequences,
            max_residues: self.data.max_residues,
            special_tokens: self.special_tokens(),
        }
    }

    /// Number of checkpoint intervals (burn-train epochs).
    pub fn num_epochs(&self) -> usize {
        self.schedule.steps.div_ceil(self.schedule.checkpoint_every)
    }

    /// The optimiser.
    pub fn optimizer(&self) -> ModuleOptimizer {
        let o = &self.optimizer;
        let clip = o.grad_clip_norm.map(GradientClippingConfig::Norm);
        match o.kind {
            OptimizerKind::Adamw => AdamWConfig::new()
                .with_beta_1(o.beta_1)
                .with_beta_2(o.beta_2)
                .with_epsilon(o.epsilon)
                .with_weight_decay(o.weight_decay)
                .with_grad_clipping(clip)
                .init(),
            OptimizerKind::Lamb => {
                let lamb = LambConfig::new()
                    .with_beta_1(o.beta_1)
                    .with_beta_2(o.beta_2)
                    .with_epsilon(o.epsilon)
                    .with_weight_decay(o.weight_decay)
                    .with_grad_clipping(clip.clone());
                // As BERT's LAMB (which ProtBert and ProtAlbert were trained with): biases and
                // layer norms take plain Adam steps, without weight decay or the layer-wise
                // trust ratio. burn applies the ratio to every tensor, and a bias that starts at
                // zero then grows by about a factor (1 + lr) per step: it never learns.
                let plain = lamb
                    .clone()
                    .with_use_trust_ratio(false)
                    .with_weight_decay(0.0)
                    .build();
                lamb.init().with_group(
                    ParamGroup::from_any_predicates(LAMB_UNADAPTED.to_vec()),
                    plain,
                    clip.map(|c| c.init()),
                )
            }
        }
    }

    /// How training steps compute.
    pub fn mixed_precision(&self) -> MixedPrecision {
        MixedPrecision::new(self.optimizer.precision, self.optimizer.loss_scale)
    }

    /// Linear warmup from near zero to the peak, then linear decay to zero at the last step.
    pub fn scheduler(&self) -> Result<ModuleLrScheduler, TrainError> {
        let peak = self.optimizer.learning_rate;
        let s = &self.schedule;
        let decay = LrSchedulerConfig::Linear(LinearLrSchedulerConfig::new(
            peak,
            0.0,
            s.steps - s.warmup_steps,
        ));
        let config = if s.warmup_steps == 0 {
            SequentialLrSchedulerConfig::new(vec![decay], vec![])
        } else {
            let start = peak / (s.warmup_steps as f64 + 1.0);
            let warmup = LrSchedulerConfig::Linear(LinearLrSchedulerConfig::new(
                start,
                peak,
                s.warmup_steps,
            ));
            SequentialLrSchedulerConfig::new(vec![warmup, decay], vec![s.warmup_steps])
        };
        config.init().map_err(TrainError::Invalid)
    }
}

/// Keys allowed in `[model]` for an architecture.
fn model_keys(architecture: Option<&str>) -> BTreeSet<String> {
    let mut keys = BTreeSet::from(["architecture".to_string()]);
    if let Some(architecture) = architecture.and_then(|a| Architecture::from_model_type(a).ok()) {
        keys.extend(architecture.config_keys());
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    const RECIPE: &str = r#"
        [model]
        architecture = "bert"
        hidden_size = 32
        num_hidden_layers = 2
        num_attention_heads = 4
        intermediate_size = 64
        max_position_embeddings = 130

        [data]
        max_residues = 126
        max_tokens = 2048

        [schedule]
        steps = 100
        warmup_steps = 10
        checkpoint_every = 25
    "#;

    #[test]
    fn reads_a_recipe_with_defaults() {
        let config = PretrainConfig::from_toml_str(RECIPE).unwrap();
        assert_eq!(config.num_epochs(), 4);
        assert_eq!(config.masking(), MaskingConfig::default());
        let ModelConfig::Bert(bert) = &config.model else {
            panic!("a BERT recipe");
        };
        assert_eq!(bert.vocab_size, 30);
        assert_eq!(bert.hidden_size, 32);
    }

    #[test]
    fn t5_recipes_take_corruption_not_masking() {
        let t5 = r#"
            [model]
            architecture = "t5"
            d_model = 32
            d_kv = 8
            d_ff = 64
            num_layers = 2
            num_heads = 4

            [corruption]
            probability = 0.2

            [schedule]
            steps = 10
            warmup_steps = 1
            checkpoint_every = 5
        "#;
        let config = PretrainConfig::from_toml_str(t5).unwrap();
        assert_eq!(config.special_tokens(), 1);
        assert_eq!(config.corruption().probability, 0.2);
        assert_eq!(config.corruption().sentinel_fraction, 0.9);
        let err = PretrainConfig::from_toml_str(&t5.replace("[corruption]", "[masking]"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("span corruption"), "{err}");
        let err = PretrainConfig::from_toml_str(&t5.replace("d_kv", "dkv"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("dkv"), "{err}");
        let err = PretrainConfig::from_toml_str(
            &RECIPE.replace("[schedule]", "[corruption]\n[schedule]"),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("masked residues"), "{err}");
    }

    #[test]
    fn names_unknown_keys_and_bad_values() {
        let err = PretrainConfig::from_toml_str(&RECIPE.replace("hidden_size", "hiden_size"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("hiden_size"), "{err}");
        let err = PretrainConfig::from_toml_str(&RECIPE.replace("max_tokens", "max_tokes"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("max_tokes"), "{err}");
        let err = PretrainConfig::from_toml_str(
            &RECIPE.replace("max_residues = 126", "max_residues = 200"),
        )
        .unwrap_err()
        .to_string();
        assert!(err.contains("max_position_embeddings"), "{err}");
    }

    #[test]
    fn learning_rate_warms_up_then_decays_to_zero() {
        let config = PretrainConfig::from_toml_str(RECIPE).unwrap();
        let mut scheduler = config.scheduler().unwrap();
        let lrs: Vec<f64> = (0..100).map(|_| scheduler.step().base()).collect();
        let peak = config.optimizer.learning_rate;
        assert!(lrs[0] < peak * 0.2, "{}", lrs[0]);
        let max = lrs.iter().cloned().fold(0.0, f64::max);
        assert!((max - peak).abs() < 1e-9, "{max}");
        assert!(lrs[99] < peak * 0.05, "{}", lrs[99]);
        assert!(lrs[20..].windows(2).all(|w| w[1] <= w[0] + 1e-12));
    }
}
