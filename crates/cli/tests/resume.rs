//! Training runs killed (SIGKILL) after a checkpoint and resumed: the same per-step losses,
//! validation scores and final weights as one uninterrupted run, each step logged once.

#[path = "../../../tests/common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{repo, sample};

fn prottrans() -> Command {
    Command::new(env!("CARGO_BIN_EXE_prottrans"))
}

/// `pretrain` of `recipe` into `out`.
fn pretrain_args(recipe: &Path, out: &Path) -> Vec<String> {
    let path = |p: &Path| p.display().to_string();
    vec![
        "pretrain".into(),
        "--config".into(),
        path(recipe),
        "--train".into(),
        path(&sample("uniprot_train.fasta.gz")),
        "--valid".into(),
        path(&sample("uniprot_valid.fasta.gz")),
        "--out".into(),
        path(out),
    ]
}

/// Every line of `metrics.jsonl`: split, step and each metric's value, in order.
fn metrics(out: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(out.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// The same lines in the same order; the first difference is reported.
fn same_metrics(got: &[serde_json::Value], expected: &[serde_json::Value]) {
    for (line, (got, expected)) in got.iter().zip(expected).enumerate() {
        assert_eq!(got, expected, "metrics.jsonl line {}", line + 1);
    }
    assert_eq!(got.len(), expected.len(), "metrics.jsonl lines");
}

/// The tensors of a safetensors file, by name (burn writes the header in no fixed order).
fn weights(file: &Path) -> Vec<(String, Vec<u8>)> {
    let bytes = std::fs::read(file).unwrap();
    let tensors = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut all: Vec<(String, Vec<u8>)> = tensors
        .tensors()
        .into_iter()
        .map(|(name, view)| (name, view.data().to_vec()))
        .collect();
    all.sort();
    all
}

/// Runs `args` until all of `files` exist, then kills it (SIGKILL).
fn kill_when_written(args: &[String], files: &[PathBuf]) {
    let mut child = prottrans()
        .args(args)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    while !files.iter().all(|f| f.exists()) {
        assert!(
            Instant::now() < deadline,
            "{files:?} not written within 120 s"
        );
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run finished before it could be interrupted"
        );
        std::thread::sleep(Duration::from_millis(1));
    }
    child.kill().unwrap();
    child.wait().unwrap();
}

/// Runs `args` with `--resume` to the end.
fn resume(args: &[String]) {
    let run = prottrans().args(args).arg("--resume").output().unwrap();
    let log = String::from_utf8_lossy(&run.stderr);
    assert!(run.status.success(), "{log}");
    assert!(log.contains("resuming from"), "{log}");
}

fn checkpoint(out: &Path, epoch: usize) -> Vec<PathBuf> {
    ["model", "optim", "scheduler"]
        .map(|n| out.join(format!("checkpoint/{n}-{epoch}.bpk")))
        .to_vec()
}

#[test]
fn a_killed_pretraining_resumes_to_the_same_losses_and_weights() {
    let dir = tempfile::tempdir().unwrap();
    let tiny = std::fs::read_to_string(repo().join("configs/tiny.toml")).unwrap();
    let recipe = dir.path().join("recipe.toml");
    std::fs::write(
        &recipe,
        // configs/tiny.toml's model with dropout (its stream must be restored too), 40 steps,
        // a checkpoint every 10.
        tiny.replace("steps = 60", "steps = 40")
            .replace("checkpoint_every = 20", "checkpoint_every = 10")
            .replace(
                "[model]",
                "[model]\nhidden_dropout_prob = 0.1\nattention_probs_dropout_prob = 0.1",
            ),
    )
    .unwrap();

    let whole = dir.path().join("whole");
    let run = prottrans()
        .args(pretrain_args(&recipe, &whole))
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );

    let resumed = dir.path().join("resumed");
    let args = pretrain_args(&recipe, &resumed);
    kill_when_written(&args, &checkpoint(&resumed, 2));
    assert!(!resumed.join("model").exists(), "killed before the end");
    resume(&args);

    let (expected, got) = (metrics(&whole), metrics(&resumed));
    assert_eq!(expected.len(), 44, "40 steps and 4 validations");
    same_metrics(&got, &expected);
    assert_eq!(
        weights(&resumed.join("model/model.safetensors")),
        weights(&whole.join("model/model.safetensors")),
        "final weights"
    );
}

/// The same for a head (shuffled examples, dropout 0.25): killed after its second epoch.
#[test]
fn a_killed_head_training_resumes_to_the_same_losses_and_weights() {
    let dir = tempfile::tempdir().unwrap();
    let args = |out: &Path| -> Vec<String> {
        let path = |p: &Path| p.display().to_string();
        vec![
            "train-head".into(),
            "--task".into(),
            "localization".into(),
            "--train".into(),
            path(&sample("localization_train.csv")),
            "--valid".into(),
            path(&sample("localization_valid.csv")),
            "--features".into(),
            "one-hot".into(),
            "--epochs".into(),
            "6".into(),
            "--patience".into(),
            "6".into(),
            "--out".into(),
            path(out),
        ]
    };
    let whole = dir.path().join("whole");
    let run = prottrans().args(args(&whole)).output().unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );

    let resumed = dir.path().join("resumed");
    kill_when_written(&args(&resumed), &checkpoint(&resumed, 2));
    assert!(!resumed.join("head.json").exists(), "killed before the end");
    resume(&args(&resumed));

    let (expected, got) = (metrics(&whole), metrics(&resumed));
    let validations = expected.iter().filter(|m| m["split"] == "valid").count();
    assert_eq!(validations, 6, "one validation per epoch");
    same_metrics(&got, &expected);
    assert_eq!(
        weights(&resumed.join("head.safetensors")),
        weights(&whole.join("head.safetensors")),
        "final weights"
    );
}
