//! `prottrans embed --shard`, `merge` and `verify` as a scheduler's array job runs them: the
//! shards of one input merge into the single-process output; merge and verify refuse what does
//! not fit and list every missing protein.

#[path = "../../../tests/common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::succeeds;

use prottrans::embed::ndarray::ArrayD;

fn prottrans() -> Command {
    Command::new(env!("CARGO_BIN_EXE_prottrans"))
}

/// Fails; returns standard output and standard error.
fn fails(output: Output) -> (String, String) {
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    assert!(!output.status.success(), "prottrans succeeded: {stdout}");
    (stdout, stderr)
}

fn model_and_input(dir: &Path) -> (PathBuf, PathBuf) {
    common::random_model_and_proteins(dir, 60, 400)
}

fn contents(path: &Path) -> Vec<(String, ArrayD<f32>)> {
    common::embedding_contents(path)
}

fn embed(model: &Path, input: &Path, output: &Path, extra: &[&str]) -> Command {
    let mut command = prottrans();
    command
        .args(["embed", "--max-batch", "8", "--model"])
        .arg(model)
        .arg("--input")
        .arg(input)
        .arg("--output")
        .arg(output)
        .args(extra);
    command
}

fn merge(input: &Path, output: &Path, shards: &[PathBuf], extra: &[&str]) -> Output {
    prottrans()
        .args(["merge", "--input"])
        .arg(input)
        .arg("--output")
        .arg(output)
        .args(extra)
        .args(shards)
        .output()
        .unwrap()
}

fn verify(output: &Path, input: &Path) -> Output {
    prottrans()
        .arg("verify")
        .arg(output)
        .arg("--input")
        .arg(input)
        .output()
        .unwrap()
}

/// The same keys, and arrays within batching's rounding (shards batch other proteins together).
fn same_embeddings(got: &Path, expected: &Path) {
    let (got, expected) = (contents(got), contents(expected));
    assert_eq!(
        got.iter().map(|(k, _)| k).collect::<Vec<_>>(),
        expected.iter().map(|(k, _)| k).collect::<Vec<_>>()
    );
    let mut worst = 0.0f32;
    for ((_, a), (_, b)) in got.iter().zip(&expected) {
        assert_eq!(a.shape(), b.shape());
        for (x, y) in a.iter().zip(b) {
            worst = worst.max((x - y).abs());
        }
    }
    println!("largest difference from the single-process output: {worst:.3e}");
    assert!(worst <= 1e-5, "{worst}");
}

#[test]
fn shards_merge_into_the_single_process_output_and_misfits_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (model, input) = model_and_input(dir.path());
    let whole = dir.path().join("whole.npz");
    succeeds(embed(&model, &input, &whole, &[]).output().unwrap());

    // Three shards: one from its number, two as Slurm array tasks 0-2 would (`--shard auto`).
    let template = dir.path().join("emb-{shard}.npz");
    succeeds(
        embed(&model, &input, &template, &["--shard", "1/3"])
            .output()
            .unwrap(),
    );
    for task in ["1", "2"] {
        let stdout = succeeds(
            embed(&model, &input, &template, &["--shard", "auto"])
                .env("SLURM_ARRAY_TASK_ID", task)
                .env("SLURM_ARRAY_TASK_MIN", "0")
                .env("SLURM_ARRAY_TASK_MAX", "2")
                .env("SLURM_ARRAY_TASK_COUNT", "3")
                .output()
                .unwrap(),
        );
        assert!(stdout.contains("-of-3.npz"), "{stdout}");
    }
    let shards: Vec<PathBuf> = (1..=3)
        .map(|i| dir.path().join(format!("emb-{i}-of-3.npz")))
        .collect();
    let sizes: Vec<usize> = shards.iter().map(|s| contents(s).len()).collect();
    assert_eq!(sizes.iter().sum::<usize>(), 60, "{sizes:?}");
    // Balanced by residues: each shard within one protein (at most 400) of a third.
    let residues: Vec<usize> = shards
        .iter()
        .map(|s| contents(s).iter().map(|(_, v)| v.shape()[0]).sum())
        .collect();
    let (min, max) = (
        residues.iter().min().unwrap(),
        residues.iter().max().unwrap(),
    );
    assert!(max - min <= 400, "residues per shard {residues:?}");
    println!("proteins per shard {sizes:?}, residues {residues:?}");
    for shard in &shards {
        let stdout = succeeds(verify(shard, &input));
        assert!(stdout.contains("complete"), "{stdout}");
    }

    let merged = dir.path().join("merged.npz");
    succeeds(merge(&input, &merged, &shards, &[]));
    same_embeddings(&merged, &whole);
    succeeds(verify(&merged, &input));

    // A shard missing: every one of its proteins listed, nothing written.
    let partial = dir.path().join("partial.npz");
    let (stdout, stderr) = fails(merge(&input, &partial, &shards[..2], &[]));
    let listed: Vec<&str> = stdout
        .lines()
        .filter_map(|l| l.strip_prefix("missing\t"))
        .collect();
    assert_eq!(listed.len(), sizes[2], "{stdout}");
    assert!(listed.iter().all(|l| l.ends_with("\t3/3")), "{stdout}");
    assert!(stderr.contains("3/3 not given"), "{stderr}");
    assert!(!partial.exists());
    // One shard alone is no whole either (verify, by contrast, checks it as that shard).
    let (stdout, stderr) = fails(merge(&input, &partial, &shards[2..], &[]));
    assert_eq!(
        stdout
            .lines()
            .filter(|l| l.starts_with("missing\t"))
            .count(),
        sizes[0] + sizes[1],
        "{stdout}"
    );
    assert!(stderr.contains("1/3, 2/3 not given"), "{stderr}");
    // Accepted as partial, then completed by a resumed (unsharded) embed into it.
    succeeds(merge(&input, &partial, &shards[..2], &["--allow-partial"]));
    let (stdout, _) = fails(verify(&partial, &input));
    assert_eq!(
        stdout
            .lines()
            .filter(|l| l.starts_with("missing\t"))
            .count(),
        sizes[2]
    );
    let stdout = succeeds(
        embed(&model, &input, &partial, &["--resume"])
            .output()
            .unwrap(),
    );
    assert!(
        stdout.contains(&format!("embedded {} proteins", sizes[2])),
        "{stdout}"
    );
    succeeds(verify(&partial, &input));
    same_embeddings(&partial, &whole);

    // Refusals, each naming the file.
    let out = dir.path().join("refused.npz");
    let twice = [shards[0].clone(), shards[1].clone(), shards[0].clone()];
    let (_, stderr) = fails(merge(&input, &out, &twice, &[]));
    assert!(stderr.contains("is shard 1/3, as is"), "{stderr}");
    let per_protein = dir.path().join("pp-{shard}.npz");
    succeeds(
        embed(
            &model,
            &input,
            &per_protein,
            &["--shard", "3/3", "--per-protein"],
        )
        .output()
        .unwrap(),
    );
    let mixed = [
        shards[0].clone(),
        shards[1].clone(),
        dir.path().join("pp-3-of-3.npz"),
    ];
    let (_, stderr) = fails(merge(&input, &out, &mixed, &[]));
    assert!(
        stderr.contains("pp-3-of-3.npz") && stderr.contains("per_protein"),
        "{stderr}"
    );
    let (_, stderr) = fails(merge(
        &input,
        &out,
        &[whole.clone(), shards[0].clone()],
        &[],
    ));
    assert!(stderr.contains("no shard is recorded"), "{stderr}");
    // Another input: one protein fewer moves proteins between shards.
    let text = std::fs::read_to_string(&input).unwrap();
    let second = text.match_indices('>').nth(1).unwrap().0;
    let other_input = dir.path().join("other.fasta");
    std::fs::write(&other_input, &text[second..]).unwrap();
    let (_, stderr) = fails(merge(&other_input, &out, &shards, &[]));
    assert!(stderr.contains("another"), "{stderr}");
    // A protein whose sequence changed length: its array no longer fits.
    let first_line_end = text.find('\n').unwrap();
    let longer = format!(
        "{}A{}",
        &text[..=first_line_end],
        &text[first_line_end + 1..]
    );
    let changed = dir.path().join("changed.fasta");
    std::fs::write(&changed, longer).unwrap();
    let (_, stderr) = fails(verify(&whole, &changed));
    assert!(stderr.contains("has shape"), "{stderr}");
    assert!(!out.exists());
    let (_, stderr) = fails(merge(&input, &merged, &shards, &[]));
    assert!(stderr.contains("already exists"), "{stderr}");
}

#[test]
fn shard_options_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let (model, input) = model_and_input(dir.path());
    let out = dir.path().join("out.npz");
    let (_, stderr) = fails(
        embed(&model, &input, &out, &["--shard", "4/3"])
            .output()
            .unwrap(),
    );
    assert!(stderr.contains("from 1 to the count"), "{stderr}");
    let (_, stderr) = fails(
        embed(&model, &input, &out, &["--shard", "auto"])
            .env_remove("SLURM_ARRAY_TASK_ID")
            .output()
            .unwrap(),
    );
    assert!(stderr.contains("SLURM_ARRAY_TASK_ID"), "{stderr}");
    let template = dir.path().join("emb-{shard}.npz");
    let (_, stderr) = fails(embed(&model, &input, &template, &[]).output().unwrap());
    assert!(stderr.contains("only --shard fills in"), "{stderr}");
    // More shards than proteins: the empty ones are valid outputs, and verify says complete.
    let few = dir.path().join("few.fasta");
    std::fs::write(&few, ">A\nMKTAYIAK\n>B\nMKV\n").unwrap();
    let many = dir.path().join("m-{shard}.npz");
    for i in 1..=4 {
        succeeds(
            embed(&model, &few, &many, &["--shard", &format!("{i}/4")])
                .output()
                .unwrap(),
        );
    }
    let files: Vec<PathBuf> = (1..=4)
        .map(|i| dir.path().join(format!("m-{i}-of-4.npz")))
        .collect();
    let empty = files.iter().filter(|f| contents(f).is_empty()).count();
    assert_eq!(empty, 2);
    for file in &files {
        succeeds(verify(file, &few));
    }
    let merged = dir.path().join("m.npz");
    succeeds(merge(&few, &merged, &files, &[]));
    assert_eq!(contents(&merged).len(), 2);
}

/// Two workers (`--device cpu,cpu`: two threads on the CPU backend) take batches from one plan
/// and write what one does.
#[test]
fn several_devices_write_what_one_does() {
    let dir = tempfile::tempdir().unwrap();
    let (model, input) = model_and_input(dir.path());
    let one = dir.path().join("one.npz");
    succeeds(embed(&model, &input, &one, &[]).output().unwrap());
    let two = dir.path().join("two.npz");
    let output = embed(&model, &input, &two, &["--device", "cpu,cpu"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).to_string();
    succeeds(output);
    assert!(stderr.contains("2 workers, one per device"), "{stderr}");
    same_embeddings(&two, &one);
    let (_, stderr) = fails(
        embed(
            &model,
            &input,
            &dir.path().join("x.npz"),
            &["--device", "cpu,gpu9"],
        )
        .output()
        .unwrap(),
    );
    assert!(stderr.contains("gpu9"), "{stderr}");
}
