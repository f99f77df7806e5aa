//! Supervised transfer end to end on the committed real samples: heads learn, evaluation and
//! prediction agree, runs resume, and precomputed embeddings give the model's features.

mod common;

use std::io::Write;
use std::path::Path;

use common::{device, sample, save_random_albert, save_random_bert, save_random_electra};
use prottrans::embed::output::EmbeddingFile;
use prottrans::embed::{EmbedJob, EmbedOptions, Embedder};
use prottrans::transfer::features::{ProteinRef, compute_features};
use prottrans::transfer::{
    Evaluation, FeatureSpec, Head, HeadOptions, HeadTraining, LabelledSet, Task, evaluate, predict,
    train_head,
};

fn training(
    task: Task,
    train: &str,
    valid: &str,
    features: FeatureSpec,
    out: &Path,
    options: HeadOptions,
) -> HeadTraining {
    HeadTraining {
        train: LabelledSet::read(sample(train), task).unwrap(),
        valid: LabelledSet::read(sample(valid), task).unwrap(),
        features,
        train_embeddings: None,
        valid_embeddings: None,
        max_length: None,
        options,
        out: out.to_path_buf(),
        device: device(),
        resume: false,
    }
}

/// One-hot residues through the paper's CNN on 400 real PDB chains: well above the majority
/// class on 120 held-out chains; evaluation, reloading and prediction agree.
#[test]
fn secondary_structure_head_beats_the_majority_class_on_held_out_chains() {
    let dir = tempfile::tempdir().unwrap();
    let options = HeadOptions {
        epochs: 4,
        ..HeadOptions::default()
    };
    let summary = train_head(training(
        Task::SecondaryStructure,
        "ss8_train.csv",
        "ss8_valid.csv",
        FeatureSpec::OneHot,
        dir.path(),
        options,
    ))
    .unwrap();
    assert!(summary.best_epoch >= 1 && summary.best_epoch <= summary.epochs_run);
    for file in [
        "head.json",
        "head.safetensors",
        "curves.png",
        "curves.svg",
        "metrics.jsonl",
    ] {
        assert!(dir.path().join(file).is_file(), "{file} missing");
    }

    let test = LabelledSet::read(sample("ss8_test.csv"), Task::SecondaryStructure).unwrap();
    let residues = test.residues() as u64;
    let out = dir.path().join("eval");
    let report = evaluate(Evaluation {
        head: dir.path().to_path_buf(),
        test: test.clone(),
        embeddings: None,
        model: None,
        adapter: None,
        out: Some(out.clone()),
        tsne: true,
        device: device(),
    })
    .unwrap();
    println!("{report}");
    let q3 = &report.tasks[0];
    let q8 = &report.tasks[1];
    assert_eq!((q3.metric.as_str(), q8.metric.as_str()), ("Q3", "Q8"));
    assert_eq!(
        q3.labelled, residues,
        "every residue of the sample is labelled"
    );
    assert_eq!(q3.confusion.total(), q3.labelled);
    assert!(
        q3.accuracy > q3.majority_accuracy + 0.10,
        "Q3 {} vs majority {}",
        q3.accuracy,
        q3.majority_accuracy
    );
    assert!(
        q8.accuracy > q8.majority_accuracy + 0.03,
        "Q8 {} vs majority {}",
        q8.accuracy,
        q8.majority_accuracy
    );
    assert!(
        q3.standard_error > 0.0 && q3.standard_error < 0.03,
        "{}",
        q3.standard_error
    );
    for picture in [
        "confusion-dssp3.png",
        "confusion-dssp3.svg",
        "confusion-dssp8.png",
        "report.json",
    ] {
        assert!(out.join(picture).is_file(), "{picture} missing");
    }

    // Prediction reloads the head; its argmax reproduces the evaluated accuracy.
    let proteins: Vec<(String, String)> = test
        .records
        .iter()
        .map(|r| (r.id.clone(), r.sequence.clone()))
        .collect();
    let (_, predictions) = predict(dir.path(), &proteins, None, None, None, &device()).unwrap();
    let mut correct = 0u64;
    for (record, prediction) in test.records.iter().zip(&predictions) {
        let dssp3 = &prediction.outputs[0].prediction;
        assert_eq!(dssp3.len(), record.sequence.len());
        assert!(dssp3.bytes().all(|b| b"HEC".contains(&b)));
        let classes = ["H", "E", "C"];
        correct += dssp3
            .chars()
            .zip(&record.labels[0])
            .filter(|(p, l)| **l >= 0 && classes[**l as usize] == p.to_string())
            .count() as u64;
    }
    assert_eq!(
        correct,
        q3.confusion.correct(),
        "predict and evaluate disagree"
    );
}

/// A run continues from its checkpoint with more epochs; a second run into the same
/// directory without --resume is refused; a corrupt head is an error naming the file.
#[test]
fn localization_runs_resume_and_refuse_to_overwrite() {
    let dir = tempfile::tempdir().unwrap();
    let options = HeadOptions {
        epochs: 2,
        learning_rate: 1e-2,
        ..HeadOptions::default()
    };
    let run = training(
        Task::Localization,
        "localization_train.csv",
        "localization_valid.csv",
        FeatureSpec::Composition,
        dir.path(),
        options.clone(),
    );
    assert_eq!(train_head(run.clone()).unwrap().epochs_run, 2);

    let error = train_head(run.clone()).unwrap_err().to_string();
    assert!(error.contains("--resume"), "{error}");

    let longer = HeadTraining {
        resume: true,
        options: HeadOptions {
            epochs: 4,
            ..options.clone()
        },
        ..run.clone()
    };
    let summary = train_head(longer).unwrap();
    assert_eq!(summary.epochs_run, 4);
    let metrics = std::fs::read_to_string(dir.path().join("metrics.jsonl")).unwrap();
    let valid_epochs: Vec<u64> = metrics
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter(|v| v["split"] == "valid")
        .filter_map(|v| v["epoch"].as_u64())
        .collect();
    assert_eq!(
        valid_epochs,
        vec![1, 2, 3, 4],
        "epochs 1-2 from the first run, 3-4 resumed"
    );
    let losses = prottrans::transfer::train::valid_losses(&dir.path().join("metrics.jsonl"));
    let best = losses.iter().min_by(|a, b| a.1.total_cmp(&b.1)).unwrap();
    assert_eq!(
        (summary.best_epoch, summary.best_valid_loss),
        *best,
        "the kept epoch has the lowest validation loss"
    );
    assert!(
        dir.path()
            .join("checkpoint")
            .join(format!("model-{}.bpk", best.0))
            .is_file()
    );

    let changed = HeadTraining {
        resume: true,
        options: HeadOptions {
            learning_rate: 1e-3,
            epochs: 5,
            ..options
        },
        ..run
    };
    let error = train_head(changed).unwrap_err().to_string();
    assert!(error.contains("only --epochs may change"), "{error}");

    let weights = dir.path().join("head.safetensors");
    std::fs::write(&weights, b"not safetensors").unwrap();
    let error = Head::load(dir.path(), &device()).unwrap_err().to_string();
    assert!(error.contains("head.safetensors"), "{error}");
}

/// Features read from a `prottrans embed` file equal those computed from the model; a file
/// that lacks a protein is an error naming it.
#[test]
fn precomputed_embeddings_equal_model_features() {
    let dir = tempfile::tempdir().unwrap();
    let model = dir.path().join("model");
    save_random_bert(&model, &device());
    let set = LabelledSet::read(sample("ss8_valid.csv"), Task::SecondaryStructure).unwrap();
    let records = &set.records[..12];
    let fasta = dir.path().join("chains.fa");
    let mut file = std::fs::File::create(&fasta).unwrap();
    for r in records {
        writeln!(file, ">{}\n{}", r.id, r.sequence).unwrap();
    }
    drop(file);
    let output = dir.path().join("chains.npz");
    let embedder = Embedder::load(&model, &device()).unwrap();
    EmbedJob {
        embedder: &embedder,
        input: fasta,
        output: output.clone(),
        options: EmbedOptions::default(),
    }
    .run(&mut |_| {})
    .unwrap();
    assert_eq!(
        EmbeddingFile::open(&output).unwrap().keys().unwrap().len(),
        records.len()
    );

    let proteins: Vec<ProteinRef<'_>> = records
        .iter()
        .map(|r| ProteinRef {
            id: &r.id,
            sequence: &r.sequence,
        })
        .collect();
    let spec = FeatureSpec::Model {
        dir: model.clone(),
        precision: "f32".into(),
        adapter: None,
    };
    let computed = compute_features(&spec, &proteins, None, &device()).unwrap();
    let read = compute_features(
        &FeatureSpec::Embeddings { width: 32 },
        &proteins,
        Some(&output),
        &device(),
    )
    .unwrap();
    let mut worst = 0f32;
    for (a, b) in computed.iter().zip(&read) {
        assert_eq!(a.shape(), b.shape());
        worst = a
            .iter()
            .zip(b.iter())
            .map(|(x, y)| (x - y).abs())
            .fold(worst, f32::max);
    }
    assert!(worst < 1e-5, "file and model features differ by {worst}");

    let extra = ProteinRef {
        id: "NOT_EMBEDDED",
        sequence: "MKV",
    };
    let error = compute_features(
        &FeatureSpec::Embeddings { width: 32 },
        &[proteins[0], extra],
        Some(&output),
        &device(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        error.contains("chains.npz") && error.contains("NOT_EMBEDDED"),
        "{error}"
    );
}

/// The per-protein head trains on ALBERT and ELECTRA embeddings as on ProtBert's: features
/// come from the checkpoint through the same `Embedder`.
#[test]
fn heads_train_on_albert_and_electra_embeddings() {
    for architecture in ["albert", "electra"] {
        let dir = tempfile::tempdir().unwrap();
        let model = dir.path().join("model");
        match architecture {
            "albert" => drop(save_random_albert(&model, &device())),
            _ => drop(save_random_electra(&model, &device())),
        }
        let options = HeadOptions {
            epochs: 1,
            learning_rate: 1e-2,
            ..HeadOptions::default()
        };
        let mut run = training(
            Task::Localization,
            "localization_train.csv",
            "localization_valid.csv",
            FeatureSpec::Model {
                dir: model,
                precision: "f32".into(),
                adapter: None,
            },
            &dir.path().join("head"),
            options,
        );
        // Short proteins only: this is about the plumbing, and keeps the test fast.
        run.max_length = Some(300);
        run.train.records.retain(|r| r.sequence.len() <= 300);
        run.valid.records.retain(|r| r.sequence.len() <= 300);
        assert!(run.train.records.len() > 100 && run.valid.records.len() > 10);
        let summary = train_head(run).unwrap();
        assert_eq!(summary.epochs_run, 1, "{architecture}");
        assert!(
            summary.best_valid_loss.is_finite(),
            "{architecture}: {}",
            summary.best_valid_loss
        );
    }
}
