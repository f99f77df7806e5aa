//! Runs interrupted and resumed: training killed (SIGKILL) after a checkpoint, and embedding and
//! training stopped by a full disk, end with the same losses, weights and embeddings as one
//! uninterrupted run, each step logged once.

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

/// configs/tiny.toml's model (with `model_extra` lines in `[model]`), 40 steps, a checkpoint
/// every 10, written into `dir`.
fn tiny_recipe(dir: &Path, model_extra: &str) -> PathBuf {
    let tiny = std::fs::read_to_string(repo().join("configs/tiny.toml")).unwrap();
    let recipe = dir.join("recipe.toml");
    std::fs::write(
        &recipe,
        tiny.replace("steps = 60", "steps = 40")
            .replace("checkpoint_every = 20", "checkpoint_every = 10")
            .replace("[model]", &format!("[model]\n{model_extra}")),
    )
    .unwrap();
    recipe
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

/// Runs `args(DIR)` once to the end and once killed after checkpoint 2 and resumed; both
/// must log the same metrics and end with the same weights (`weights`, relative to DIR).
/// Returns the uninterrupted run's metrics.
fn resumed_equals_uninterrupted(
    dir: &Path,
    args: impl Fn(&Path) -> Vec<String>,
    weights_file: &str,
) -> Vec<serde_json::Value> {
    let whole = dir.join("whole");
    let run = prottrans().args(args(&whole)).output().unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );

    let resumed = dir.join("resumed");
    kill_when_written(&args(&resumed), &checkpoint(&resumed, 2));
    assert!(
        !resumed.join(weights_file).exists(),
        "killed before the end"
    );
    resume(&args(&resumed));

    let expected = metrics(&whole);
    same_metrics(&metrics(&resumed), &expected);
    assert_eq!(
        weights(&resumed.join(weights_file)),
        weights(&whole.join(weights_file)),
        "final weights"
    );
    expected
}

#[test]
fn a_killed_pretraining_resumes_to_the_same_losses_and_weights() {
    let dir = tempfile::tempdir().unwrap();
    // With dropout: its stream must be restored too.
    let recipe = tiny_recipe(
        dir.path(),
        "hidden_dropout_prob = 0.1\nattention_probs_dropout_prob = 0.1",
    );

    let metrics = resumed_equals_uninterrupted(
        dir.path(),
        |out| pretrain_args(&recipe, out),
        "model/model.safetensors",
    );
    assert_eq!(metrics.len(), 44, "40 steps and 4 validations");
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
    let metrics = resumed_equals_uninterrupted(dir.path(), args, "head.safetensors");
    let validations = metrics.iter().filter(|m| m["split"] == "valid").count();
    assert_eq!(validations, 6, "one validation per epoch");
}

/// `embed` and `pretrain` on a small filesystem (a tmpfs in a private mount namespace, through
/// `unshare`): each stops with an error naming the file and the full disk, keeps what it
/// finished (batches; checkpoints), and once the filesystem is enlarged, `--resume` ends with
/// the same output as an uninterrupted run. Remounted read-only, both refuse with the path.
#[test]
fn a_full_disk_stops_embed_and_pretrain_and_they_resume_once_space_is_back() {
    let dir = tempfile::tempdir().unwrap();
    let recipe = tiny_recipe(dir.path(), "");
    let proteins = dir.path().join("proteins.fasta");
    let mut fasta = String::new();
    for record in prottrans::data::FastaReader::open(sample("uniprot_valid.fasta.gz"))
        .unwrap()
        .take(32)
    {
        let record = record.unwrap();
        let sequence = String::from_utf8_lossy(&record.sequence).into_owned();
        fasta.push_str(&format!(">{}\n{sequence}\n", record.id));
    }
    std::fs::write(&proteins, fasta).unwrap();
    let model = common::fixture("esm_tiny");
    let embed = format!(
        "embed --model {} --input {} --max-residues 1000",
        model.display(),
        proteins.display()
    );
    let pretrain = pretrain_args(&recipe, Path::new("$FS/run")).join(" ");
    let (fs, kept) = (dir.path().join("fs"), dir.path().join("kept"));
    std::fs::create_dir_all(&fs).unwrap();
    std::fs::create_dir_all(&kept).unwrap();
    // Each step's output goes to $KEPT, outside the tmpfs, for the checks below.
    let script = format!(
        r#"
set -u
FS={fs}; KEPT={kept}; P={binary}
mount -t tmpfs -o size=1200k tmpfs "$FS" || exit 90
$P {embed} --output "$FS/out.npz" > "$KEPT/embed-full.log" 2>&1 && exit 91
ls "$FS/out.npz.partial" > "$KEPT/embed-parts"
mount -o remount,size=64m "$FS" || exit 92
$P {embed} --output "$FS/out.npz" --resume > "$KEPT/embed-resumed.log" 2>&1 || exit 93
cp "$FS/out.npz" "$KEPT/resumed.npz"
rm -rf "$FS"/*
mount -o remount,size=400k "$FS" || exit 94
$P {pretrain} > "$KEPT/pretrain-full.log" 2>&1 && exit 95
ls "$FS/run/checkpoint" > "$KEPT/pretrain-checkpoints"
mount -o remount,size=64m "$FS" || exit 96
$P {pretrain} --resume > "$KEPT/pretrain-resumed.log" 2>&1 || exit 97
cp "$FS/run/metrics.jsonl" "$KEPT/metrics.jsonl"
cp "$FS/run/model/model.safetensors" "$KEPT/model.safetensors"
mount -o remount,ro "$FS" || exit 98
$P {embed} --output "$FS/ro.npz" > "$KEPT/embed-ro.log" 2>&1 && exit 99
$P {pretrain_ro} > "$KEPT/pretrain-ro.log" 2>&1 && exit 100
exit 0
"#,
        pretrain_ro = pretrain_args(&recipe, Path::new("$FS/ro-run")).join(" "),
        fs = fs.display(),
        kept = kept.display(),
        binary = env!("CARGO_BIN_EXE_prottrans"),
    );
    let run = Command::new("unshare")
        .args(["--user", "--map-root-user", "--mount", "sh", "-c", &script])
        .output()
        .expect("unshare (util-linux) runs the test in a private mount namespace");
    let log = |name: &str| std::fs::read_to_string(kept.join(name)).unwrap_or_default();
    assert!(
        run.status.success(),
        "step {:?} failed: {}\n{}\n{}\n{}",
        run.status.code(),
        String::from_utf8_lossy(&run.stderr),
        log("embed-full.log"),
        log("pretrain-full.log"),
        log("pretrain-resumed.log"),
    );

    // embed: the error names the part and the full disk; a finished batch was kept and reused.
    let full = log("embed-full.log");
    assert!(
        full.contains("out.npz.partial/part-") && full.contains("No space left on device"),
        "{full}"
    );
    assert!(
        !full.contains("panicked") && !full.contains("drop failed"),
        "{full}"
    );
    assert!(
        log("embed-parts").contains("part-000000.npz"),
        "no batch kept"
    );
    assert!(log("embed-resumed.log").contains("were already done"));
    let whole = dir.path().join("whole.npz");
    let args: Vec<String> = embed.split(' ').map(String::from).collect();
    let run = prottrans()
        .args(&args)
        .arg("--output")
        .arg(&whole)
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let read = |path: &Path| {
        let mut file = prottrans::embed::output::EmbeddingFile::open(path).unwrap();
        let mut keys = file.keys().unwrap();
        keys.sort();
        keys.into_iter()
            .map(|k| {
                let values = file.read(&k).unwrap();
                (k, values)
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(read(&kept.join("resumed.npz")), read(&whole));

    // A read-only filesystem: a clear error naming the output, for both.
    for (name, file) in [("embed-ro.log", "ro.npz"), ("pretrain-ro.log", "ro-run")] {
        let text = log(name);
        assert!(
            text.contains(file) && text.contains("Read-only file system"),
            "{name}: {text}"
        );
        assert!(!text.contains("panicked"), "{text}");
    }

    // pretrain: the error names the checkpoint file; checkpoint 1 was kept; the resumed run
    // ends as an uninterrupted one.
    let full = log("pretrain-full.log");
    assert!(
        full.contains("checkpoint/") && full.contains("No space left on device"),
        "{full}"
    );
    assert!(log("pretrain-checkpoints").contains("model-1.bpk"));
    assert!(log("pretrain-resumed.log").contains("resuming from checkpoint 1"));
    let whole = dir.path().join("whole-run");
    let run = prottrans()
        .args(pretrain_args(&recipe, &whole))
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let expected = metrics(&whole);
    let got: Vec<serde_json::Value> = std::fs::read_to_string(kept.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect();
    same_metrics(&got, &expected);
    assert_eq!(
        weights(&kept.join("model.safetensors")),
        weights(&whole.join("model/model.safetensors"))
    );
}
