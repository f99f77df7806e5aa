//! `prottrans finetune`'s library: LoRA and full fine-tuning of every architecture's encoder
//! with the paper's heads, on tiny checkpoints and the committed samples' short proteins.

mod common;

use std::path::{Path, PathBuf};

use common::{device, fixture, sample};
use prottrans::import::LoraAdapter;
use prottrans::prelude::*;
use prottrans::transfer::finetune::{ADAPTER_DIR, MODEL_DIR};
use prottrans::transfer::{
    Evaluation, FinetuneOptions, FinetuneSummary, Finetuning, LabelledSet, Method, Task,
};

/// The short proteins of a sample (the tiny BERTs take 62 residues).
fn short(name: &str, task: Task, max: usize) -> LabelledSet {
    let mut set = LabelledSet::read(sample(name), task).unwrap();
    set.drop_longer_than(max);
    assert!(!set.records.is_empty());
    set
}

fn lora(targets: &str) -> Method {
    Method::Lora {
        rank: 2,
        alpha: 4.0,
        targets: targets.split(',').map(String::from).collect(),
    }
}

/// ALBERT's and XLNet's fixtures with the sentencepiece vocabulary of their released models
/// beside them (in `dir`); the others as they are.
fn checkpoint(model: &str, dir: &Path) -> PathBuf {
    let spiece = match model {
        "albert_tiny" => "spiece_albert_like",
        "xlnet_tiny" => "spiece_xlnet_like",
        _ => return fixture(model),
    };
    let copy = dir.join(format!("{model}_checkpoint"));
    std::fs::create_dir_all(&copy).unwrap();
    for file in ["config.json", "model.safetensors"] {
        std::fs::copy(fixture(model).join(file), copy.join(file)).unwrap();
    }
    std::fs::copy(
        fixture(spiece).join("spiece.model"),
        copy.join("spiece.model"),
    )
    .unwrap();
    copy
}

fn run(
    model: &str,
    method: Method,
    out: &Path,
    tweak: impl FnOnce(&mut Finetuning),
) -> FinetuneSummary {
    let mut run = Finetuning {
        model: checkpoint(model, out.parent().unwrap()),
        train: short("ss8_train.csv", Task::SecondaryStructure, 62),
        valid: short("ss8_valid.csv", Task::SecondaryStructure, 62),
        max_length: Some(62),
        options: FinetuneOptions {
            method,
            epochs: 1,
            learning_rate: 1e-2,
            ..FinetuneOptions::default()
        },
        merge: false,
        out: out.to_path_buf(),
        device: device(),
        resume: false,
    };
    tweak(&mut run);
    prottrans::transfer::finetune(run).unwrap()
}

fn out_dir(name: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join(name);
    (dir, out)
}

#[test]
fn lora_on_bert_trains_the_adapters_and_head_only_and_writes_peft_files() {
    let (_dir, out) = out_dir("bert");
    let summary = run("bert_tiny", lora("q,k,v,o"), &out, |_| {});
    // Four attention projections in each of the two layers.
    assert_eq!(
        summary.adapted_layers.len(),
        8,
        "{:?}",
        summary.adapted_layers
    );
    assert!(summary.adapted_layers[0].starts_with("bert.encoder.layer."));
    // The adapters (rank 2, 32 -> 32) and the head train, nothing else.
    let adapter = LoraAdapter::read(out.join(ADAPTER_DIR)).unwrap();
    assert_eq!(adapter.parameters(), 8 * 2 * (32 + 32));
    let head = prottrans::transfer::ResidueHeadConfig::new(32).init(&device());
    let head_parameters = prottrans::burn::module::Module::num_params(&head);
    assert_eq!(
        summary.trainable_parameters,
        adapter.parameters() + head_parameters
    );
    // Read back over the untouched base, the adapter reproduces the trained encoder: the base
    // weights did not move.
    assert!(summary.reload_max_difference < 1e-4, "{summary:?}");
    // The same layout as the adapter peft was checked to read (tests/peft.rs).
    let reference = LoraAdapter::read(fixture("bert_tiny_lora_prottrans")).unwrap();
    assert!(
        adapter
            .targets()
            .iter()
            .all(|t| reference.targets().contains(t)
                || t.contains(".key.")
                || t.contains(".attention.output."))
    );
    // evaluate reads the head and runs the base with the adapter.
    let saved = prottrans::transfer::SavedHead::read(&out).unwrap();
    assert!(matches!(
        &saved.features,
        FeatureSpec::Model {
            adapter: Some(_),
            ..
        }
    ));
    let report = prottrans::transfer::evaluate(Evaluation {
        head: out.clone(),
        test: short("ss8_test.csv", Task::SecondaryStructure, 62),
        embeddings: None,
        model: None,
        adapter: None,
        out: None,
        tsne: false,
        device: device(),
    })
    .unwrap();
    assert!(!report.to_string().is_empty());
}

#[test]
fn full_fine_tuning_writes_a_checkpoint_that_reproduces_the_encoder() {
    let (_dir, out) = out_dir("full");
    let summary = run("t5_relu_tiny", Method::Full, &out, |_| {});
    assert_eq!(summary.trainable_parameters, summary.total_parameters);
    assert!(summary.adapter_dir.is_none());
    let model = out.join(MODEL_DIR);
    assert!(model.join("model.safetensors").is_file() && model.join("config.json").is_file());
    assert!(summary.reload_max_difference < 1e-4, "{summary:?}");
}

#[test]
fn merge_resume_accumulation_and_half_precision() {
    let (_dir, out) = out_dir("merge");
    let first = run("bert_tiny", lora("q,v"), &out, |r| r.merge = true);
    assert_eq!(first.epochs_run, 1);
    assert!(out.join(MODEL_DIR).join("model.safetensors").is_file());
    // Continuing the run for a second epoch; other options must not change.
    let second = run("bert_tiny", lora("q,v"), &out, |r| {
        r.merge = true;
        r.resume = true;
        r.options.epochs = 2;
    });
    assert_eq!(second.epochs_run, 2);
    let again = Finetuning {
        model: fixture("bert_tiny"),
        train: short("ss8_train.csv", Task::SecondaryStructure, 62),
        valid: short("ss8_valid.csv", Task::SecondaryStructure, 62),
        max_length: Some(62),
        options: FinetuneOptions {
            method: lora("q,v"),
            epochs: 3,
            learning_rate: 5e-3,
            ..FinetuneOptions::default()
        },
        merge: false,
        out: out.clone(),
        device: device(),
        resume: true,
    };
    let error = prottrans::transfer::finetune(again)
        .unwrap_err()
        .to_string();
    assert!(error.contains("only --epochs may change"), "{error}");

    let (_dir, out) = out_dir("bf16");
    let summary = run("bert_tiny", lora("q,v"), &out, |r| {
        r.options.precision = Precision::Bf16;
        r.options.accumulation = 2;
        r.options.max_tokens = 256;
    });
    assert!(summary.best_valid_loss.is_finite());
}

#[test]
fn every_architecture_fine_tunes_with_lora_and_localisation_heads() {
    for (model, targets) in [
        ("albert_tiny", "q,k,v,o,ffn"),
        ("electra_tiny_discriminator", "q,v"),
        ("esm_tiny", "q,v"),
        ("t5_gated_tiny", "q,v,ffn"),
        ("xlnet_tiny", "ffn"),
        ("transfo_xl_tiny", "q,o,ffn"),
    ] {
        let (_dir, out) = out_dir(model);
        let summary = run(model, lora(targets), &out, |r| {
            r.train = short("localization_train.csv", Task::Localization, 62);
            r.valid = short("localization_valid.csv", Task::Localization, 62);
        });
        println!(
            "{model}: {} layers adapted, reload {:.2e}",
            summary.adapted_layers.len(),
            summary.reload_max_difference
        );
        assert!(!summary.adapted_layers.is_empty(), "{model}");
        assert!(summary.reload_max_difference < 1e-4, "{model}: {summary:?}");
    }
}

#[test]
fn lora_targets_an_architecture_lacks_are_refused_by_name() {
    let (_dir, out) = out_dir("xlnet");
    let run = Finetuning {
        model: checkpoint("xlnet_tiny", out.parent().unwrap()),
        train: short("ss8_train.csv", Task::SecondaryStructure, 62),
        valid: short("ss8_valid.csv", Task::SecondaryStructure, 62),
        max_length: Some(62),
        options: FinetuneOptions::default(),
        merge: false,
        out,
        device: device(),
        resume: false,
    };
    let error = prottrans::transfer::finetune(run).unwrap_err().to_string();
    assert!(
        error.contains("`q` is not a layer LoRA adapts in xlnet") && error.contains("3-D"),
        "{error}"
    );
}
