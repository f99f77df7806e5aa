//! ELECTRA's pretraining run: generator and discriminator trained together by replaced-token
//! detection, evaluated on validation (generator on masked residues against the unigram
//! baseline; discriminator accuracy, recall of replaced tokens and ROC AUC against calling
//! everything original), saved as the two `transformers` checkpoints.

use std::time::Instant;

use burn::module::Module;
use burn::tensor::Device;
use burn::train::SupervisedTraining;
use burn::train::metric::{LearningRateMetric, LossMetric};
use prottrans_data::BatchedSequences;
use prottrans_import::{ELECTRA_GENERATOR_DIR, save_electra};
use prottrans_models::ElectraConfig;
use serde::{Deserialize, Serialize};

use super::{
    Prepared, PretrainReport, PretrainRun, REPLACED_TOKEN_DETECTION, for_each_masked_batch,
    loaders, save_vocabulary, train,
};
use crate::baseline::UnigramBaseline;
use crate::error::TrainError;
use crate::objectives::mlm::MlmBatcher;
use crate::objectives::replaced_token::{
    ElectraMetric, ElectraQuantity, ReplacedTokenDetection, ReplacedTokenScores,
};

/// The discriminator on the validation tokens.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct DiscriminatorReport {
    /// Real tokens judged (special tokens included, padding excluded).
    pub tokens: u64,
    /// Of those, tokens the generator's sample changed.
    pub replaced: u64,
    /// Mean binary cross-entropy (nats).
    pub loss: f64,
    /// Fraction judged correctly.
    pub accuracy: f64,
    /// Fraction of replaced tokens caught.
    pub replaced_recall: f64,
    /// ROC AUC of the logits for "replaced" (0.5 is chance).
    pub auc: Option<f64>,
    /// Accuracy of calling every token original.
    pub all_original_accuracy: f64,
}

impl std::fmt::Display for DiscriminatorReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "  discriminator: {} tokens, {} replaced: loss {:.4}  accuracy {:.2}%  replaced caught {:.2}%  AUC {}  (calling all original: {:.2}%)",
            self.tokens,
            self.replaced,
            self.loss,
            100.0 * self.accuracy,
            100.0 * self.replaced_recall,
            self.auc
                .map_or("n/a".to_string(), |auc| format!("{auc:.4}")),
            100.0 * self.all_original_accuracy
        )
    }
}

/// ELECTRA and the unigram baseline scored on the same masked validation residues.
#[derive(Debug, Clone)]
pub struct ReplacedTokenEvaluation {
    /// Generator and discriminator sums.
    pub model: ReplacedTokenScores,
    /// Mean cross-entropy of the baseline on the masked residues (nats).
    pub unigram_loss: f64,
    /// Accuracy of the baseline's majority residue.
    pub unigram_accuracy: f64,
}

/// Scores ELECTRA on every batch of `data`, masked deterministically; the generator's samples
/// come from `device`'s random generator, seeded here with `seed`.
pub fn evaluate_replaced_token(
    model: &ReplacedTokenDetection,
    baseline: &UnigramBaseline,
    data: &BatchedSequences,
    batcher: &MlmBatcher,
    device: &Device,
    seed: u64,
) -> Result<ReplacedTokenEvaluation, TrainError> {
    device.seed(seed);
    let mut scores = ReplacedTokenScores::default();
    let labels = for_each_masked_batch(data, batcher, |masked| {
        let batch_scores = model
            .score(masked.to_tensors(device))
            .map_err(|e| TrainError::Training(format!("reading scores: {e:?}")))?;
        scores.merge(batch_scores);
        Ok(())
    })?;
    let (unigram_loss, unigram_accuracy) = baseline.score(labels);
    Ok(ReplacedTokenEvaluation {
        model: scores,
        unigram_loss,
        unigram_accuracy,
    })
}

pub(super) fn pretrain_replaced_token(
    run: &PretrainRun,
    prepared: Prepared,
    electra: &ElectraConfig,
    started: Instant,
) -> Result<PretrainReport, TrainError> {
    let config = &run.config;
    let batcher = MlmBatcher::new(prepared.tokenizer.clone(), config.masking())?;
    let (train_loader, valid_loader) = loaders(
        &batcher,
        prepared.train_sampled,
        prepared.valid_data.clone(),
        config.data.num_workers,
    );

    let generator = electra.generator_config();
    let weight = config.electra().discriminator_weight;
    let model = ReplacedTokenDetection::new(electra.init(&prepared.train_device), weight)
        .with_steps(run.step_settings());
    eprintln!(
        "model: ELECTRA, discriminator {} layers width {}, generator {} layers width {}, embeddings {} (shared), {} parameters, discriminator weight {weight}, on {}",
        electra.num_hidden_layers,
        electra.hidden_size,
        generator.num_hidden_layers,
        generator.hidden_size,
        electra.embedding_size,
        model.num_params(),
        run.placement()
    );
    let metric = ElectraMetric::new;
    let training = SupervisedTraining::new(&run.out, train_loader, valid_loader)
        .metric_train_numeric(LossMetric::new())
        .metric_train_numeric(metric(ElectraQuantity::GeneratorLoss))
        .metric_train_numeric(metric(ElectraQuantity::GeneratorAccuracy))
        .metric_train_numeric(metric(ElectraQuantity::DiscriminatorLoss))
        .metric_train_numeric(metric(ElectraQuantity::DiscriminatorAccuracy))
        .metric_train_numeric(metric(ElectraQuantity::DiscriminatorAuc))
        .metric_train_numeric(LearningRateMetric::new())
        .metric_valid_numeric(LossMetric::new())
        .metric_valid_numeric(metric(ElectraQuantity::GeneratorLoss))
        .metric_valid_numeric(metric(ElectraQuantity::GeneratorAccuracy))
        .metric_valid_numeric(metric(ElectraQuantity::DiscriminatorLoss))
        .metric_valid_numeric(metric(ElectraQuantity::DiscriminatorAccuracy))
        .metric_valid_numeric(metric(ElectraQuantity::ReplacedRecall))
        .metric_valid_numeric(metric(ElectraQuantity::DiscriminatorAuc));
    let trained = train(training, run, prepared.checkpoint, model)?;
    let model_dir = run.out.join("model");
    save_electra(&trained.model, electra, &model_dir)?;
    save_vocabulary(&prepared.tokenizer, &model_dir)?;
    save_vocabulary(&prepared.tokenizer, &model_dir.join(ELECTRA_GENERATOR_DIR))?;

    let eval_device = trained
        .devices()
        .into_iter()
        .next()
        .unwrap_or_else(|| run.device.clone());
    let baseline =
        UnigramBaseline::from_store(&prepared.train_store, prepared.tokenizer.vocabulary());
    let evaluation = evaluate_replaced_token(
        &trained,
        &baseline,
        &prepared.valid_data,
        &batcher,
        &eval_device,
        config.data.seed ^ 0xe1ec,
    )?;
    let scores = &evaluation.model;
    Ok(PretrainReport {
        objective: REPLACED_TOKEN_DETECTION.into(),
        steps: config.schedule.steps,
        train_sequences: prepared.train_store.len(),
        valid_sequences: prepared.valid_store.len(),
        valid_masked_residues: scores.generator.predicted,
        valid_loss: scores.generator.loss(),
        valid_accuracy: scores.generator.accuracy(),
        reconstruction: None,
        discriminator: Some(DiscriminatorReport {
            tokens: scores.tokens,
            replaced: scores.replaced,
            loss: scores.discriminator_loss(),
            accuracy: scores.discriminator_accuracy(),
            replaced_recall: scores.replaced_recall(),
            auc: scores.auc(),
            all_original_accuracy: scores.all_original_accuracy(),
        }),
        valid_perplexity: scores.generator.perplexity(),
        unigram_loss: evaluation.unigram_loss,
        unigram_accuracy: evaluation.unigram_accuracy,
        unigram_entropy: baseline.entropy,
        seconds: started.elapsed().as_secs_f64(),
        model_dir,
    })
}
