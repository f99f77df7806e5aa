//! `prottrans train-head`, `evaluate` and `predict` as a user runs them, on the committed
//! real samples.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn prottrans() -> Command {
    Command::new(env!("CARGO_BIN_EXE_prottrans"))
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .unwrap()
        .to_path_buf()
}

fn sample(name: &str) -> String {
    repo().join("data/samples").join(name).display().to_string()
}

fn run(command: &mut Command) -> Output {
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "failed: {}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

#[test]
fn localization_head_trains_evaluates_with_pictures_and_predicts() {
    let dir = tempfile::tempdir().unwrap();
    let head = dir.path().join("head");
    run(prottrans()
        .args([
            "train-head",
            "--task",
            "localization",
            "--features",
            "composition",
            "--epochs",
            "20",
        ])
        .args([
            "--train",
            &sample("localization_train.csv"),
            "--valid",
            &sample("localization_valid.csv"),
            "--out",
            head.to_str().unwrap(),
        ]));
    let eval = dir.path().join("eval");
    let output = run(prottrans().args([
        "evaluate",
        "--head",
        head.to_str().unwrap(),
        "--test",
        &sample("localization_test.csv"),
        "--out",
        eval.to_str().unwrap(),
    ]));
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains("Q10") && stdout.contains("Q2") && stdout.contains("majority"),
        "{stdout}"
    );
    // Composition alone carries signal: Q10 clears always predicting the majority class
    // (44% against 28% here) by more than its standard error.
    let report: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(eval.join("report.json")).unwrap()).unwrap();
    let location = &report["tasks"][0];
    assert_eq!(location["metric"], "Q10");
    let (q10, majority, error) = (
        location["accuracy"].as_f64().unwrap(),
        location["majority_accuracy"].as_f64().unwrap(),
        location["standard_error"].as_f64().unwrap(),
    );
    assert!(
        q10 > majority + 2.0 * error,
        "Q10 {q10} vs majority {majority} ± {error}"
    );
    for picture in [
        "tsne.png",
        "tsne.svg",
        "confusion-location.png",
        "confusion-membrane.svg",
        "report.json",
    ] {
        let path = eval.join(picture);
        assert!(
            std::fs::metadata(&path)
                .map(|m| m.len() > 1000)
                .unwrap_or(false),
            "{picture} missing or empty"
        );
    }
    assert!(head.join("curves.png").is_file() && head.join("curves.svg").is_file());

    let fasta = dir.path().join("new.fa");
    std::fs::write(
        &fasta,
        ">P1 first\nMKTAYIAKQRQISFVKSHFSRQ\n>P2\nMLLAVLYCLLWSFQTSAGHFPRA\n",
    )
    .unwrap();
    let tsv = dir.path().join("p.tsv");
    let json = dir.path().join("p.json");
    run(prottrans().args([
        "predict",
        "--head",
        head.to_str().unwrap(),
        "--input",
        fasta.to_str().unwrap(),
        "--output",
        tsv.to_str().unwrap(),
        "--json",
        json.to_str().unwrap(),
    ]));
    let table = std::fs::read_to_string(&tsv).unwrap();
    let lines: Vec<&str> = table.lines().collect();
    assert_eq!(
        lines[0],
        "id\tlength\tlocation\tlocation_confidence\tmembrane\tmembrane_confidence"
    );
    assert!(
        lines[1].starts_with("P1\t22\t") && lines[2].starts_with("P2\t23\t"),
        "{table}"
    );
    let predictions: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let probabilities = predictions[0]["outputs"][0]["probabilities"][0]
        .as_array()
        .unwrap();
    assert_eq!(probabilities.len(), 10);
    let sum: f64 = probabilities.iter().map(|p| p.as_f64().unwrap()).sum();
    assert!((sum - 1.0).abs() < 1e-4, "probabilities sum to {sum}");
}

#[test]
fn bad_labels_and_missing_features_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("bad.csv");
    std::fs::write(
        &bad,
        "input,dssp3,dssp8,disorder,cb513_mask\nMKV,HEC,,,\nMKVL,HEC,,,\n",
    )
    .unwrap();
    let output = prottrans()
        .args([
            "train-head",
            "--task",
            "secondary-structure",
            "--features",
            "one-hot",
            "--train",
            bad.to_str().unwrap(),
        ])
        .args([
            "--valid",
            &sample("ss8_valid.csv"),
            "--out",
            dir.path().join("h").to_str().unwrap(),
        ])
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("bad.csv:3:") && stderr.contains("3 labels for a sequence of 4"),
        "{stderr}"
    );

    let output = prottrans()
        .args([
            "train-head",
            "--task",
            "secondary-structure",
            "--train",
            &sample("ss8_valid.csv"),
            "--valid",
            &sample("ss8_valid.csv"),
        ])
        .args(["--out", dir.path().join("h").to_str().unwrap()])
        .output()
        .unwrap();
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("--features one-hot"));
}
