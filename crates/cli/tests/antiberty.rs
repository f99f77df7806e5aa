//! Real trained weights: AntiBERTy (PyPI `antiberty==0.1.3`, a protein BERT trained on antibody
//! sequences) through `prottrans embed`, against `transformers`' outputs on four real antibody
//! variable domains (`tests/fixtures/antiberty`, made by `scripts/antiberty.py fixture`).
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

fn embed(extra: &[&str], output: &std::path::Path) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_prottrans"))
        .args(["embed", "--model"])
        .arg(model_dir())
        .arg("--input")
        .arg(fixture("antiberty").join("sequences.fasta"))
        .arg("--output")
        .arg(output)
        .args(extra)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "prottrans embed failed:\n{stderr}");
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
