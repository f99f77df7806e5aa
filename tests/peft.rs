//! LoRA adapters made by `peft` (PEFT layout) merged into the tiny checkpoints, against what
//! `peft`'s `PeftModel` computes for the same batch (`scripts/fixtures/make_fixtures.py`:
//! `bert_tiny_lora` on `BertForMaskedLM`, `t5_relu_tiny_lora` on `T5EncoderModel` with rsLoRA).

mod common;

use std::sync::Arc;

use common::{Expected, device, fixture};
use prottrans::import::LoraAdapter;
use prottrans::prelude::*;

const TOLERANCE: f32 = 1e-4;
/// The fixtures' batch (`PROTEIN_SEQS` of the fixture script).
const SEQUENCES: [&str; 3] = [
    "MKTAY",
    "MQIFVKTLTGXTITLEV",
    "MSKGEELFTGVVPILVELDGDVNGHKFSV",
];

/// Largest difference between the embedder's per-residue output and `name` of the fixture's
/// `[batch, tokens, d]` outputs, whose residues start at token `offset` (1 after BERT's
/// `[CLS]`, 0 for T5).
fn worst(embedder: &Embedder, expected: &Expected, name: &str, offset: usize) -> f32 {
    let (shape, want) = expected.tensor(name);
    let (tokens, d) = (shape[1], shape[2]);
    let embedded = embedder.embed_many(&SEQUENCES).unwrap();
    let mut worst = 0.0f32;
    for (b, residues) in embedded.iter().enumerate() {
        assert_eq!(residues.dim(), (SEQUENCES[b].len(), d));
        for ((i, j), value) in residues.indexed_iter() {
            let reference = want[(b * tokens + offset + i) * d + j];
            worst = worst.max((value - reference).abs());
        }
    }
    worst
}

/// The base fixture `base` with the adapter fixture `adapter` merged in.
fn with_adapter(base: &str, adapter: &str) -> Embedder {
    let adapter = Arc::new(LoraAdapter::read(fixture(adapter)).unwrap());
    let checkpoint = Checkpoint::open(fixture(base))
        .unwrap()
        .with_adapter(adapter);
    Embedder::load_checkpoint(&checkpoint, &device(), Precision::F32).unwrap()
}

#[test]
fn a_peft_adapter_on_bert_matches_peft() {
    let adapter = LoraAdapter::read(fixture("bert_tiny_lora")).unwrap();
    assert_eq!(adapter.config().r, 4);
    assert_eq!(adapter.scaling(), 2.0);
    // Query, key, value, attention output and FFN input of both layers.
    assert_eq!(adapter.targets().len(), 10);
    assert_eq!(adapter.parameters(), 10 * 4 * (32 + 32) + 2 * 4 * (64 - 32));

    let embedder = with_adapter("bert_tiny", "bert_tiny_lora");
    let expected = Expected::load("bert_tiny_lora");
    let merged = worst(&embedder, &expected, "last_hidden_state", 1);
    let base = Embedder::load(fixture("bert_tiny"), &device()).unwrap();
    let unmerged = worst(&base, &expected, "last_hidden_state", 1);
    println!("BERT + LoRA against peft: {merged:.3e} (the base model alone: {unmerged:.3e})");
    assert!(merged < TOLERANCE, "{merged}");
    assert!(unmerged > 0.1, "the adapter must matter: {unmerged}");
    assert!(worst(&base, &expected, "base_last_hidden_state", 1) < TOLERANCE);
}

#[test]
fn a_peft_adapter_on_a_t5_encoder_matches_peft() {
    let embedder = with_adapter("t5_relu_tiny", "t5_relu_tiny_lora");
    let adapter = LoraAdapter::read(fixture("t5_relu_tiny_lora")).unwrap();
    assert!(adapter.config().use_rslora);
    assert_eq!(adapter.scaling(), 4.0, "rsLoRA: alpha / sqrt(r)");
    let expected = Expected::load("t5_relu_tiny_lora");
    let merged = worst(&embedder, &expected, "last_hidden_state", 0);
    let base = Embedder::load(fixture("t5_relu_tiny"), &device()).unwrap();
    let unmerged = worst(&base, &expected, "last_hidden_state", 0);
    println!("T5 encoder + LoRA against peft: {merged:.3e} (the base alone: {unmerged:.3e})");
    assert!(merged < TOLERANCE, "{merged}");
    assert!(unmerged > 0.1, "the adapter must matter: {unmerged}");
}

#[test]
fn an_adapter_for_another_model_is_refused() {
    let adapter = Arc::new(LoraAdapter::read(fixture("t5_relu_tiny_lora")).unwrap());
    let checkpoint = Checkpoint::open(fixture("bert_tiny"))
        .unwrap()
        .with_adapter(adapter);
    let error = Embedder::load_checkpoint(&checkpoint, &device(), Precision::F32)
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("adapter_model.safetensors") && error.contains("another model"),
        "{error}"
    );
    let error = LoraAdapter::read(fixture("bert_tiny"))
        .unwrap_err()
        .to_string();
    assert!(error.contains("adapter_config.json"), "{error}");
}

#[test]
fn a_merged_checkpoint_embeds_as_the_adapter_does() {
    let dir = tempfile::tempdir().unwrap();
    let merged = dir.path().join("merged");
    let adapter = LoraAdapter::read(fixture("bert_tiny_lora")).unwrap();
    let report = adapter
        .write_merged(&fixture("bert_tiny"), &merged)
        .unwrap();
    assert_eq!(report.merged.len(), 10);
    assert!(report.skipped.is_empty());
    let embedder = Embedder::load(&merged, &device()).unwrap();
    let expected = Expected::load("bert_tiny_lora");
    let worst = worst(&embedder, &expected, "last_hidden_state", 1);
    println!("merged BERT checkpoint against peft: {worst:.3e}");
    assert!(worst < TOLERANCE, "{worst}");
    // Files beside the weights come along; nothing is left half-written.
    assert!(merged.join("config.json").is_file());
    let left: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(left.len(), 1);
}

/// The other direction: an adapter `prottrans finetune` trained and wrote, which `peft`
/// applied to `BertForMaskedLM` for the fixture (every tensor of the file in its place).
#[test]
fn an_adapter_prottrans_wrote_matches_peft() {
    let adapter = LoraAdapter::read(fixture("bert_tiny_lora_prottrans")).unwrap();
    assert_eq!((adapter.config().r, adapter.scaling()), (2, 2.0));
    // q, v and the feed-forward pair of both layers.
    assert_eq!(adapter.targets().len(), 8);
    let embedder = with_adapter("bert_tiny", "bert_tiny_lora_prottrans");
    let expected = Expected::load("bert_tiny_lora_prottrans");
    let merged = worst(&embedder, &expected, "last_hidden_state", 1);
    let base = Embedder::load(fixture("bert_tiny"), &device()).unwrap();
    let unmerged = worst(&base, &expected, "last_hidden_state", 1);
    println!("prottrans-written adapter in peft: {merged:.3e} (the base alone: {unmerged:.3e})");
    assert!(merged < TOLERANCE, "{merged}");
    assert!(
        unmerged > 10.0 * TOLERANCE,
        "the adapter must matter: {unmerged}"
    );
}
