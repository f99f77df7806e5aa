//! ProtBert against `transformers`: the tiny random `BertForMaskedLM` checkpoint and the outputs
//! `transformers` computed for it (made by `scripts/fixtures/make_fixtures.py`).
//!
//! The batch is padded (three sequences of 5, 17 and 29 residues), so this also checks that
//! padding is masked exactly as `transformers` masks it.

mod common;

use common::{Expected, device, fixture, max_diff_on_tokens, values};
use prottrans::burn::tensor::{Int, Tensor};
use prottrans::prelude::*;
use safetensors::SafeTensors;

const FIXTURE: &str = "bert_tiny";

const TOLERANCE: f32 = 1e-4;

#[test]
fn prot_bert_matches_transformers_on_a_padded_batch() {
    let device = device();
    let dir = fixture(FIXTURE);
    let (config, model) = load_bert_for_masked_lm(&dir, &device).unwrap();
    let expected = Expected::load(FIXTURE);
    let (_, mask) = expected.ints("attention_mask");
    let input = EncoderInput::new(
        expected.int_tensor("input_ids", &device),
        expected.int_tensor("attention_mask", &device),
    )
    .with_hidden_states();

    let output = model.encode(input.clone());
    let d = config.hidden_size;
    let (shape, want) = expected.tensor("hidden_states");
    assert_eq!(
        shape[0],
        output.hidden_states.len(),
        "embedding output + one per layer"
    );
    let per_state = want.len() / shape[0];
    let mut worst_hidden = 0.0f32;
    for (i, state) in output.hidden_states.into_iter().enumerate() {
        let diff = max_diff_on_tokens(
            &values(state),
            &want[i * per_state..(i + 1) * per_state],
            &mask,
            d,
        );
        println!("hidden state {i}: max abs diff {diff:.3e}");
        worst_hidden = worst_hidden.max(diff);
    }
    let (_, want) = expected.tensor("last_hidden_state");
    let last = max_diff_on_tokens(&values(output.last_hidden_state), &want, &mask, d);
    println!("last hidden state: max abs diff {last:.3e}");

    let logits = model.forward(input);
    let (_, want) = expected.tensor("mlm_logits");
    let mlm = max_diff_on_tokens(&values(logits), &want, &mask, config.vocab_size);
    println!("MLM logits: max abs diff {mlm:.3e}");

    assert!(
        worst_hidden <= TOLERANCE,
        "hidden states differ by {worst_hidden}"
    );
    assert!(last <= TOLERANCE, "last hidden state differs by {last}");
    assert!(mlm <= TOLERANCE, "MLM logits differ by {mlm}");
}

#[test]
fn each_sequence_alone_matches_transformers() {
    let device = device();
    let dir = fixture(FIXTURE);
    let (config, model) = load_bert_for_masked_lm(&dir, &device).unwrap();
    let expected = Expected::load(FIXTURE);
    for i in 0..3 {
        let ids = expected.int_tensor(&format!("single_{i}_input_ids"), &device);
        let mask = Tensor::<2, Int>::ones(ids.dims(), &device);
        let (_, want) = expected.tensor(&format!("single_{i}_mlm_logits"));
        let tokens = vec![1i64; want.len() / config.vocab_size];
        let logits = model.forward(EncoderInput::new(ids, mask));
        let diff = max_diff_on_tokens(&values(logits), &want, &tokens, config.vocab_size);
        println!("sequence {i} alone: MLM logits max abs diff {diff:.3e}");
        assert!(diff <= TOLERANCE, "sequence {i}: {diff}");
    }
}

/// A model saved by prottrans has exactly the keys, shapes and values of the `transformers`
/// checkpoint it was loaded from (the tied decoder is not stored, as in `transformers`).
#[test]
fn saved_checkpoints_have_the_transformers_layout() {
    let device = device();
    let dir = fixture(FIXTURE);
    let (config, model) = load_bert_for_masked_lm(&dir, &device).unwrap();
    let out = tempfile::tempdir().unwrap();
    save_bert_for_masked_lm(&model, &config, out.path()).unwrap();

    let original = std::fs::read(dir.join("model.safetensors")).unwrap();
    let saved = std::fs::read(out.path().join("model.safetensors")).unwrap();
    let original = SafeTensors::deserialize(&original).unwrap();
    let saved = SafeTensors::deserialize(&saved).unwrap();
    let mut want: Vec<String> = original.names().into_iter().map(str::to_string).collect();
    let mut got: Vec<String> = saved.names().into_iter().map(str::to_string).collect();
    want.sort();
    got.sort();
    assert_eq!(got, want);
    for name in &want {
        let (a, b) = (original.tensor(name).unwrap(), saved.tensor(name).unwrap());
        assert_eq!(a.shape(), b.shape(), "{name}");
        assert_eq!(a.data(), b.data(), "{name}");
    }
}
