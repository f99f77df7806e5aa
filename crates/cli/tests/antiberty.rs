//! Real trained weights: AntiBERTy (PyPI `antiberty==0.1.3`, a protein BERT trained on antibody
//! sequences) through `prottrans embed` and `prottrans recover`, against `transformers`' outputs
//! on real antibody variable domains (`tests/fixtures/antiberty`, made by
//! `scripts/antiberty.py fixture`); loading as `transformers` does (unused heads skipped and
//! named, `--strict` refusing them) and residues its vocabulary lacks.
//!
//! The weights (100 MB) are not committed: `scripts/antiberty.py model DIR` assembles them from
//! the wheel, and the test reads DIR from `PROTTRANS_ANTIBERTY`. `.ci/run` does both and runs it
//! with `--ignored`; without the variable it is reported as ignored, never as passed.

#[path = "../../../tests/common/mod.rs"]
mod common;

use std::path::PathBuf;
use std::process::Command;

use common::fixture;
use prottrans::embed::output::EmbeddingFile;

fn model_dir() -> PathBuf {
    PathBuf::from(std::env::var_os("PROTTRANS_ANTIBERTY").expect(
        "PROTTRANS_ANTIBERTY names the model directory `scripts/antiberty.py model DIR` made",
    ))
}

/// Runs `prottrans COMMAND --model DIR ARGS...`; returns success, stdout and stderr.
fn prottrans(command: &str, args: &[&std::ffi::OsStr]) -> (bool, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_prottrans"))
        .args([command, "--model"])
        .arg(model_dir())
        .args(args)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string(),
        String::from_utf8_lossy(&out.stderr).to_string(),
    )
}

fn embed(extra: &[&str], output: &std::path::Path) -> String {
    let input = fixture("antiberty").join("sequences.fasta");
    let mut args = vec![
        "--input".as_ref(),
        input.as_os_str(),
        "--output".as_ref(),
        output.as_os_str(),
    ];
    args.extend(extra.iter().map(std::ffi::OsStr::new));
    let (ok, _, stderr) = prottrans("embed", &args);
    assert!(ok, "prottrans embed failed:\n{stderr}");
    stderr
}

fn expected(name: &str) -> (Vec<usize>, Vec<f32>) {
    let bytes = std::fs::read(fixture("antiberty").join("expected.safetensors")).unwrap();
    let tensors = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let view = tensors.tensor(name).unwrap();
    let values = view
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect();
    (view.shape().to_vec(), values)
}

const PROTEINS: [&str; 4] = [
    "trastuzumab_VH",
    "trastuzumab_VL",
    "adalimumab_VH",
    "adalimumab_VL",
];

#[test]
#[ignore = "needs AntiBERTy's weights: PROTTRANS_ANTIBERTY=DIR after `scripts/antiberty.py model DIR` (.ci/run does this)"]
fn antiberty_embeddings_match_transformers() {
    let dir = tempfile::tempdir().unwrap();
    let per_residue = dir.path().join("residues.npz");
    let log = embed(&[], &per_residue);
    // The pooler and the species/chain/graft/MLM heads are skipped, and said so in one line.
    let skipped = log
        .lines()
        .find(|l| l.contains("tensor(s) the encoder does not use"))
        .unwrap_or_else(|| panic!("no skipped-tensor line in:\n{log}"));
    println!("{skipped}");
    for head in [
        "bert.pooler.dense.weight",
        "cls.species.weight",
        "cls.chain.weight",
    ] {
        assert!(skipped.contains(head), "{head} not named: {skipped}");
    }

    let per_protein = dir.path().join("proteins.npz");
    embed(&["--per-protein"], &per_protein);

    let (mut residues_file, mut proteins_file) = (
        EmbeddingFile::open(&per_residue).unwrap(),
        EmbeddingFile::open(&per_protein).unwrap(),
    );
    let (mut worst_residue, mut worst_protein) = (0.0f32, 0.0f32);
    for (index, name) in PROTEINS.iter().enumerate() {
        let got = residues_file.read(name).unwrap();
        let (shape, want) = expected(&format!("per_residue_{index}"));
        let (length, dims) = (shape[0], shape[1]);
        assert_eq!(got.shape(), [length, 512], "{name}");
        for row in 0..length {
            for column in 0..dims {
                let diff = (got[[row, column]] - want[row * dims + column]).abs();
                assert!(diff.is_finite(), "{name}: non-finite output");
                worst_residue = worst_residue.max(diff);
            }
        }
        let got = proteins_file.read(name).unwrap();
        let (_, want) = expected(&format!("per_protein_{index}"));
        assert_eq!(got.shape(), [512], "{name}");
        for (g, w) in got.iter().zip(&want) {
            worst_protein = worst_protein.max((g - w).abs());
        }
    }
    println!(
        "AntiBERTy against transformers on {} antibody domains: max abs diff {worst_residue:.2e} per residue, {worst_protein:.2e} per protein",
        PROTEINS.len()
    );
    assert!(worst_residue <= 1e-4, "per residue: {worst_residue}");
    assert!(worst_protein <= 1e-4, "per protein: {worst_protein}");
}

#[test]
#[ignore = "needs AntiBERTy's weights: PROTTRANS_ANTIBERTY=DIR after `scripts/antiberty.py model DIR` (.ci/run does this)"]
fn strict_loading_refuses_the_heads_and_unknown_residues_are_counted() {
    let dir = tempfile::tempdir().unwrap();
    let input = fixture("antiberty").join("sequences.fasta");
    let output = dir.path().join("strict.npz");
    let (ok, _, stderr) = prottrans(
        "embed",
        &[
            "--input".as_ref(),
            input.as_os_str(),
            "--output".as_ref(),
            output.as_os_str(),
            "--strict".as_ref(),
        ],
    );
    assert!(!ok, "--strict loaded a checkpoint with unused heads");
    assert!(
        stderr.contains("refused by strict loading") && stderr.contains("cls.species.weight"),
        "{stderr}"
    );
    assert!(!output.exists());

    // AntiBERTy's vocabulary has no X (nor U, mapped to X): they become [UNK], counted.
    let fasta = dir.path().join("x.fasta");
    std::fs::write(
        &fasta,
        ">with_x\nEVQLVXSGGGLVQPGU\n>clean\nDIQMTQSPSSLSASVG\n",
    )
    .unwrap();
    let output = dir.path().join("x.npz");
    let args = [
        "--input".as_ref(),
        fasta.as_os_str(),
        "--output".as_ref(),
        output.as_os_str(),
    ];
    let (ok, stdout, stderr) = prottrans("embed", &args);
    assert!(ok, "{stderr}");
    assert!(
        stdout.contains("2 residue(s) in 1 protein(s) are not in the model's vocabulary")
            && stdout.contains("(with_x)"),
        "{stdout}"
    );
    std::fs::remove_file(&output).unwrap();
    let mut refuse = args.to_vec();
    refuse.push("--refuse-unknown".as_ref());
    let (ok, _, stderr) = prottrans("embed", &refuse);
    assert!(!ok);
    assert!(
        stderr.contains("x.fasta:2") && stderr.contains("residue 'X' at position 6"),
        "{stderr}"
    );
}

#[test]
#[ignore = "needs AntiBERTy's weights: PROTTRANS_ANTIBERTY=DIR after `scripts/antiberty.py model DIR` (.ci/run does this)"]
fn antiberty_recovery_matches_transformers_on_the_same_positions() {
    let dir = tempfile::tempdir().unwrap();
    let input = fixture("antiberty").join("antibodies.fasta");
    let reference = fixture("antiberty").join("recovery.tsv");
    let positions = dir.path().join("positions.tsv");
    let (ok, stdout, stderr) = prottrans(
        "recover",
        &[
            "--input".as_ref(),
            input.as_os_str(),
            "--at".as_ref(),
            reference.as_os_str(),
            "--positions".as_ref(),
            positions.as_os_str(),
        ],
    );
    assert!(ok, "{stderr}");
    println!("{stdout}");
    let rows = |path: &std::path::Path| -> Vec<Vec<String>> {
        std::fs::read_to_string(path)
            .unwrap()
            .lines()
            .skip(1)
            .map(|l| l.split('\t').map(String::from).collect())
            .collect()
    };
    let (ours, theirs) = (rows(&positions), rows(&reference));
    assert_eq!(ours.len(), theirs.len());
    assert!(ours.len() > 1000, "{} positions", ours.len());
    let (mut worst, mut disagree, mut ours_right, mut theirs_right) = (0.0f64, 0, 0, 0);
    for (a, b) in ours.iter().zip(&theirs) {
        assert_eq!(a[..3], b[..3], "same protein, position and residue");
        let (x, y): (f64, f64) = (a[4].parse().unwrap(), b[4].parse().unwrap());
        worst = worst.max((x - y).abs());
        disagree += usize::from(a[3] != b[3]);
        ours_right += usize::from(a[3] == a[2]);
        theirs_right += usize::from(b[3] == b[2]);
    }
    let n = ours.len() as f64;
    println!(
        "AntiBERTy recovery on {} positions: prottrans {:.2}%, transformers {:.2}%; {disagree} predictions differ; max |log p| diff {worst:.1e}",
        ours.len(),
        100.0 * ours_right as f64 / n,
        100.0 * theirs_right as f64 / n
    );
    assert!(worst <= 1e-4, "log-probabilities differ by {worst}");
    // Only a near-tie between two residues could flip a prediction.
    assert!(disagree <= 2, "{disagree} predictions differ");
    // A trained antibody model recovers far more than the unigram baseline.
    assert!(
        ours_right as f64 / n > 0.6,
        "recovery {}",
        ours_right as f64 / n
    );
}
