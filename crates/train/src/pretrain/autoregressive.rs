//! Pretraining runs of the autoregressive models: Transformer-XL by causal LM read in segments
//! with memory, XLNet by permutation LM. Both are scored on validation residues only (the next
//! residue for Transformer-XL, the target residues for XLNet) against the unigram baseline, so
//! their per-residue perplexity compares with every other objective's.

use std::time::Instant;

use burn::module::Module;
use burn::train::SupervisedTraining;
use prottrans_import::{save_transfo_xl_lm_head, save_xlnet_lm_head};
use prottrans_models::{TransfoXlConfig, XlnetConfig};

use super::{
    Evaluation, Prepared, PretrainReport, PretrainRun, evaluate_residues, loaders, save_vocabulary,
    train,
};
use crate::baseline::UnigramBaseline;
use crate::error::TrainError;
use crate::objectives::causal_lm::{CausalLm, CausalLmBatcher};
use crate::objectives::permutation_lm::{PermutationBatcher, PermutationLm};

pub(super) const CAUSAL_LM: &str = "causal-lm";
pub(super) const PERMUTATION_LM: &str = "permutation-lm";

fn report(
    objective: &str,
    run: &PretrainRun,
    sequences: (usize, usize),
    evaluation: Evaluation,
    baseline: &UnigramBaseline,
    model_dir: std::path::PathBuf,
    started: Instant,
) -> PretrainReport {
    let scores = evaluation.model;
    PretrainReport {
        objective: objective.into(),
        steps: run.config.schedule.steps,
        train_sequences: sequences.0,
        valid_sequences: sequences.1,
        valid_masked_residues: scores.predicted,
        valid_loss: scores.loss(),
        valid_accuracy: scores.accuracy(),
        reconstruction: None,
        discriminator: None,
        valid_perplexity: scores.perplexity(),
        unigram_loss: evaluation.unigram_loss,
        unigram_accuracy: evaluation.unigram_accuracy,
        unigram_entropy: baseline.entropy,
        seconds: started.elapsed().as_secs_f64(),
        model_dir,
    }
}

/// Transformer-XL by causal LM.
pub(super) fn pretrain_causal_lm(
    run: &PretrainRun,
    prepared: Prepared,
    txl: &TransfoXlConfig,
    started: Instant,
) -> Result<PretrainReport, TrainError> {
    let config = &run.config;
    let sequences = (prepared.train_store.len(), prepared.valid_store.len());
    let segment_length = config.autoregressive().segment_length;
    let batcher = CausalLmBatcher::new(prepared.tokenizer.clone());
    let (train_loader, valid_loader) = loaders(
        &batcher,
        prepared.train_sampled,
        prepared.valid_data.clone(),
        config.data.num_workers,
    );
    let model = CausalLm::new(txl.init(&prepared.train_device), segment_length)
        .with_steps(run.step_settings());
    eprintln!(
        "model: Transformer-XL, {} layers, width {}, segments of {segment_length} tokens with a memory of {}, {} parameters, on {}",
        txl.n_layer,
        txl.d_model,
        txl.mem_len,
        model.num_params(),
        run.placement()
    );
    let training = next_token_metrics!(SupervisedTraining::new(
        &run.out,
        train_loader,
        valid_loader
    ));
    let trained = train(training, run, prepared.checkpoint, model)?;
    let model_dir = run.out.join("model");
    save_transfo_xl_lm_head(&trained.model, txl, &model_dir)?;
    save_vocabulary(&prepared.tokenizer, &model_dir)?;

    let device = trained
        .devices()
        .into_iter()
        .next()
        .unwrap_or_else(|| run.device.clone());
    let baseline =
        UnigramBaseline::from_store(&prepared.train_store, prepared.tokenizer.vocabulary());
    let evaluation = evaluate_residues(&prepared.valid_data, &baseline, |batch| {
        let targets = batcher.frame(batch).residues_only();
        let labels = targets.labels.clone();
        (trained.score(targets.to_tensors(&device)), labels)
    })?;
    Ok(report(
        CAUSAL_LM, run, sequences, evaluation, &baseline, model_dir, started,
    ))
}

/// XLNet by permutation LM.
pub(super) fn pretrain_permutation_lm(
    run: &PretrainRun,
    prepared: Prepared,
    xlnet: &XlnetConfig,
    started: Instant,
) -> Result<PretrainReport, TrainError> {
    let config = &run.config;
    let sequences = (prepared.train_store.len(), prepared.valid_store.len());
    let partial_prediction = config.autoregressive().partial_prediction;
    let batcher = PermutationBatcher::new(prepared.tokenizer.clone(), partial_prediction)?;
    let (train_loader, valid_loader) = loaders(
        &batcher,
        prepared.train_sampled,
        prepared.valid_data.clone(),
        config.data.num_workers,
    );
    let model =
        PermutationLm::new(xlnet.init(&prepared.train_device)).with_steps(run.step_settings());
    eprintln!(
        "model: XLNet, {} layers, width {}, predicting 1/{partial_prediction} of the residues, {} parameters, on {}",
        xlnet.n_layer,
        xlnet.d_model,
        model.num_params(),
        run.placement()
    );
    let training = next_token_metrics!(SupervisedTraining::new(
        &run.out,
        train_loader,
        valid_loader
    ));
    let trained = train(training, run, prepared.checkpoint, model)?;
    let model_dir = run.out.join("model");
    save_xlnet_lm_head(&trained.model, xlnet, &model_dir)?;
    save_vocabulary(&prepared.tokenizer, &model_dir)?;

    let device = trained
        .devices()
        .into_iter()
        .next()
        .unwrap_or_else(|| run.device.clone());
    let baseline =
        UnigramBaseline::from_store(&prepared.train_store, prepared.tokenizer.vocabulary());
    let evaluation = evaluate_residues(&prepared.valid_data, &baseline, |batch| {
        let permuted = batcher.permute(batch);
        let labels = permuted.labels.clone();
        (trained.score(permuted.to_tensors(&device)), labels)
    })?;
    Ok(report(
        PERMUTATION_LM,
        run,
        sequences,
        evaluation,
        &baseline,
        model_dir,
        started,
    ))
}
