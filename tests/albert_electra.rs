//! ProtAlbert and ProtElectra against `transformers`: tiny random `AlbertForMaskedLM` and
//! `ElectraForPreTraining` / `ElectraForMaskedLM` checkpoints and the outputs `transformers`
//! computed for them (made by `scripts/fixtures/make_fixtures.py`), on padded batches.

mod common;

use common::{Expected, device, fixture, max_diff_on_tokens, values};
use prottrans::burn::tensor::{Int, Tensor, activation};
use prottrans::prelude::*;

const TOLERANCE: f32 = 1e-4;

fn padded_input(expected: &Expected, device: &prottrans::burn::tensor::Device) -> EncoderInput {
    EncoderInput::new(
        expected.int_tensor("input_ids", device),
        expected.int_tensor("attention_mask", device),
    )
    .with_hidden_states()
}

/// Compares every hidden state, returning the largest deviation.
fn compare_hidden_states(
    states: Vec<Tensor<3>>,
    expected: &Expected,
    mask: &[i64],
    width: usize,
) -> f32 {
    let (shape, want) = expected.tensor("hidden_states");
    assert_eq!(
        shape[0],
        states.len(),
        "embedding output + one per layer call"
    );
    let per_state = want.len() / shape[0];
    let mut worst = 0.0f32;
    for (i, state) in states.into_iter().enumerate() {
        let diff = max_diff_on_tokens(
            &values(state),
            &want[i * per_state..(i + 1) * per_state],
            mask,
            width,
        );
        println!("  hidden state {i}: max abs diff {diff:.3e}");
        worst = worst.max(diff);
    }
    worst
}

fn check_albert(name: &str) {
    let device = device();
    let (config, model) = load_albert_for_masked_lm(fixture(name), &device).unwrap();
    let expected = Expected::load(name);
    let (_, mask) = expected.ints("attention_mask");
    let input = padded_input(&expected, &device);

    let output = model.encode(input.clone());
    println!("{name}:");
    let hidden = compare_hidden_states(output.hidden_states, &expected, &mask, config.hidden_size);
    let (_, want) = expected.tensor("last_hidden_state");
    let last = max_diff_on_tokens(
        &values(output.last_hidden_state),
        &want,
        &mask,
        config.hidden_size,
    );
    let (_, want) = expected.tensor("mlm_logits");
    let mlm = max_diff_on_tokens(
        &values(model.forward(input)),
        &want,
        &mask,
        config.vocab_size,
    );
    println!(
        "{name}: hidden states {hidden:.3e}, last hidden state {last:.3e}, MLM logits {mlm:.3e}"
    );
    assert!(
        hidden <= TOLERANCE && last <= TOLERANCE,
        "hidden states differ by {hidden} / {last}"
    );
    assert!(mlm <= TOLERANCE, "MLM logits differ by {mlm}");
}

#[test]
fn prot_albert_matches_transformers() {
    check_albert("albert_tiny");
}

#[test]
fn albert_layer_groups_match_transformers() {
    check_albert("albert_tiny_groups");
}

#[test]
fn albert_sequences_alone_match_transformers() {
    let device = device();
    let (config, model) = load_albert_for_masked_lm(fixture("albert_tiny"), &device).unwrap();
    let expected = Expected::load("albert_tiny");
    for i in 0..3 {
        let (shape, ids) = expected.ints(&format!("single_{i}_input_ids"));
        let ids = Tensor::<2, Int>::from_data(
            prottrans::burn::tensor::TensorData::new(ids, [shape[0], shape[1]]),
            &device,
        );
        let mask = vec![1i64; shape[1]];
        let logits = model.forward(EncoderInput::unpadded(ids));
        let (_, want) = expected.tensor(&format!("single_{i}_mlm_logits"));
        let diff = max_diff_on_tokens(&values(logits), &want, &mask, config.vocab_size);
        println!("sequence {i} alone: MLM logits {diff:.3e}");
        assert!(diff <= TOLERANCE, "sequence {i}: {diff}");
    }
}

#[test]
fn prot_electra_discriminator_matches_transformers() {
    let name = "electra_tiny_discriminator";
    let device = device();
    let checkpoint = Checkpoint::open(fixture(name)).unwrap();
    let (config, model) = checkpoint.load_electra_discriminator(&device).unwrap();
    let expected = Expected::load(name);
    let (_, mask) = expected.ints("attention_mask");
    let (output, logits) = model.forward(padded_input(&expected, &device));
    println!("{name}:");
    let hidden = compare_hidden_states(output.hidden_states, &expected, &mask, config.hidden_size);
    let (_, want) = expected.tensor("rtd_logits");
    let rtd = max_diff_on_tokens(&values(logits.clone()), &want, &mask, 1);

    // The replaced-token loss of ElectraForPreTraining: BCE with logits over real tokens.
    let labels = expected.int_tensor("rtd_labels", &device).float();
    let weights = expected.int_tensor("attention_mask", &device).float();
    let bce = activation::softplus(logits.clone(), 1.0) - logits * labels;
    let loss = ((bce * weights.clone()).sum() / weights.sum()).into_scalar::<f32>();
    let (_, want_loss) = expected.tensor("rtd_loss");
    let loss_diff = (loss - want_loss[0]).abs();
    println!(
        "{name}: hidden states {hidden:.3e}, RTD logits {rtd:.3e}, RTD loss {loss:.6} (diff {loss_diff:.3e})"
    );
    assert!(hidden <= TOLERANCE, "hidden states differ by {hidden}");
    assert!(rtd <= TOLERANCE, "RTD logits differ by {rtd}");
    assert!(
        loss_diff <= TOLERANCE,
        "RTD loss {loss} vs {}",
        want_loss[0]
    );

    // The bare encoder reads the same checkpoint.
    let encoder = checkpoint
        .load_encoder(&device, prottrans::burn::tensor::FloatDType::F32)
        .unwrap();
    let last = encoder
        .encode(padded_input(&expected, &device))
        .last_hidden_state;
    let (_, want) = expected.tensor("last_hidden_state");
    let diff = max_diff_on_tokens(&values(last), &want, &mask, config.hidden_size);
    assert!(diff <= TOLERANCE, "bare encoder differs by {diff}");
}

#[test]
fn prot_electra_generator_matches_transformers() {
    let name = "electra_tiny_generator";
    let device = device();
    let checkpoint = Checkpoint::open(fixture(name)).unwrap();
    let (config, model) = checkpoint.load_electra_generator(&device).unwrap();
    let expected = Expected::load(name);
    let (_, mask) = expected.ints("attention_mask");
    let (output, logits) = model.forward(padded_input(&expected, &device));
    let (_, want) = expected.tensor("last_hidden_state");
    let last = max_diff_on_tokens(
        &values(output.last_hidden_state),
        &want,
        &mask,
        config.hidden_size,
    );
    let (_, want) = expected.tensor("mlm_logits");
    let mlm = max_diff_on_tokens(&values(logits.clone()), &want, &mask, config.vocab_size);

    // ElectraForMaskedLM's loss: cross-entropy over labelled positions.
    let (_, labels) = expected.ints("mlm_labels");
    let log_probs = values(activation::log_softmax(logits, 2));
    let (mut nll, mut n) = (0.0f64, 0usize);
    for (token, &label) in labels.iter().enumerate() {
        if label >= 0 {
            nll -= f64::from(log_probs[token * config.vocab_size + label as usize]);
            n += 1;
        }
    }
    let loss = (nll / n as f64) as f32;
    let (_, want_loss) = expected.tensor("mlm_loss");
    let loss_diff = (loss - want_loss[0]).abs();
    println!(
        "{name}: last hidden state {last:.3e}, MLM logits {mlm:.3e}, MLM loss {loss:.6} (diff {loss_diff:.3e})"
    );
    assert!(last <= TOLERANCE, "last hidden state differs by {last}");
    assert!(mlm <= TOLERANCE, "MLM logits differ by {mlm}");
    assert!(
        loss_diff <= TOLERANCE,
        "MLM loss {loss} vs {}",
        want_loss[0]
    );
}

#[test]
fn the_released_pair_joins_into_one_model_sharing_embeddings() {
    let device = device();
    let dir = fixture("electra_tiny_discriminator");
    let generator = fixture("electra_tiny_generator");
    let (config, joint) = load_electra(&dir, Some(&generator), &device).unwrap();
    assert_eq!(config.generator.as_ref().map(|g| g.hidden_size), Some(24));
    // Saved and reloaded, the pair comes back as two transformers checkpoints.
    let out = tempfile::tempdir().unwrap();
    save_electra(&joint, &config, out.path()).unwrap();
    let (again_config, again) = load_electra(out.path(), None, &device).unwrap();
    assert_eq!(again_config, config);
    let a = values(
        joint
            .embeddings
            .word_embeddings
            .weight
            .val()
            .unsqueeze::<3>(),
    );
    let b = values(
        again
            .embeddings
            .word_embeddings
            .weight
            .val()
            .unsqueeze::<3>(),
    );
    assert_eq!(a, b);
    // A discriminator directory is not a generator.
    let err = Checkpoint::open(&dir)
        .unwrap()
        .load_electra_generator(&device)
        .unwrap_err();
    assert!(err.to_string().contains("electra generator"), "{err}");
}

/// Our tokenizer, reading a sentencepiece model or a `tokenizer.json`, gives the ids python
/// sentencepiece and `tokenizers` give for the same proteins (written with spaces between
/// residues, as the authors feed them). The models are synthetic stand-ins shaped like
/// ProtAlbert's and ProtXLNet's (see their README).
#[test]
fn sentencepiece_vocabularies_match_python() {
    for name in ["spiece_albert_like", "spiece_xlnet_like"] {
        let dir = fixture(name);
        let text = std::fs::read_to_string(dir.join("expected.json")).unwrap();
        let expected: serde_json::Value = serde_json::from_str(&text).unwrap();
        let from_model =
            Tokenizer::new(Vocabulary::from_sentencepiece_file(dir.join("spiece.model")).unwrap());
        let from_json = Tokenizer::new(
            Vocabulary::from_tokenizer_json_file(dir.join("tokenizer.json")).unwrap(),
        );
        assert_eq!(
            from_model.vocabulary().len(),
            expected["vocab_size"].as_u64().unwrap() as usize
        );
        let cases = expected["cases"].as_array().unwrap();
        assert!(cases.len() >= 5);
        for case in cases {
            let sequence = case["sequence"].as_str().unwrap();
            let want: Vec<u32> = case["model_input_ids"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_u64().unwrap() as u32)
                .collect();
            let python_agrees = case["uppercased"]["agree"].as_bool().unwrap();
            assert!(
                python_agrees,
                "{name}: sentencepiece and tokenizers disagree on {sequence}"
            );
            for (source, tokenizer) in [
                ("spiece.model", &from_model),
                ("tokenizer.json", &from_json),
            ] {
                let ids = tokenizer.encode(sequence, sequence.as_bytes()).unwrap();
                assert_eq!(ids, want, "{name} {source}: {sequence}");
            }
        }
    }
}

/// Per-residue embeddings of `sequences` from `embedder` against `transformers`'
/// `last_hidden_state` of the fixture's padded batch (`[CLS]` at 0, residues at 1..=L).
fn embeddings_match_fixture(embedder: &prottrans::embed::Embedder, fixture_name: &str) -> f32 {
    let expected = Expected::load(fixture_name);
    let (shape, want) = expected.tensor("last_hidden_state");
    let (seq, d) = (shape[1], shape[2]);
    let sequences = [
        "MKTAY",
        "MQIFVKTLTGXTITLEV",
        "MSKGEELFTGVVPILVELDGDVNGHKFSV",
    ];
    let mut worst = 0.0f32;
    for (row, sequence) in sequences.iter().enumerate() {
        let got = embedder.embed(sequence).unwrap();
        assert_eq!(got.dim(), (sequence.len(), d));
        for (r, residue) in got.rows().into_iter().enumerate() {
            let offset = (row * seq + 1 + r) * d;
            for (k, &x) in residue.iter().enumerate() {
                worst = worst.max((x - want[offset + k]).abs());
            }
        }
    }
    worst
}

/// `prottrans embed` reads ELECTRA checkpoints (ProtBert's vocabulary) and ALBERT checkpoints
/// with their own vocabulary file, and its per-residue embeddings are `transformers`' hidden
/// states. An ALBERT checkpoint without a vocabulary is refused, not embedded with a guess; one
/// whose config.json lacks `model_type` (as the released ProtAlbert's) is recognised by its keys.
#[test]
fn embeddings_of_albert_and_electra_checkpoints_are_the_reference_hidden_states() {
    let device = device();
    let embedder =
        prottrans::embed::Embedder::load(fixture("electra_tiny_discriminator"), &device).unwrap();
    let electra = embeddings_match_fixture(&embedder, "electra_tiny_discriminator");
    println!("ELECTRA discriminator per-residue embeddings: max abs diff {electra:.3e}");
    assert!(electra <= TOLERANCE, "{electra}");

    let err = prottrans::embed::Embedder::load(fixture("albert_tiny"), &device).unwrap_err();
    assert!(err.to_string().contains("spiece.model"), "{err}");
    // The fixture's ids as a vocab.txt: specials 0..=4, residues from 5, four unused ids.
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        fixture("albert_tiny").join("model.safetensors"),
        dir.path().join("model.safetensors"),
    )
    .unwrap();
    // As Rostlab/prot_albert's config.json: no `model_type`, no `architectures`.
    let config = std::fs::read_to_string(fixture("albert_tiny").join("config.json")).unwrap();
    let mut config: serde_json::Value = serde_json::from_str(&config).unwrap();
    let fields = config.as_object_mut().unwrap();
    fields.remove("model_type");
    fields.remove("architectures");
    std::fs::write(dir.path().join("config.json"), config.to_string()).unwrap();
    let mut vocab: Vec<String> = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
        .map(String::from)
        .to_vec();
    vocab.extend("ALGVESIKRDTPNQFYMHCWXUBZO".chars().map(String::from));
    vocab.extend((0..4).map(|i| format!("[unused{i}]")));
    std::fs::write(dir.path().join("vocab.txt"), vocab.join("\n")).unwrap();
    let embedder = prottrans::embed::Embedder::load(dir.path(), &device).unwrap();
    let albert = embeddings_match_fixture(&embedder, "albert_tiny");
    println!("ALBERT per-residue embeddings: max abs diff {albert:.3e}");
    assert!(albert <= TOLERANCE, "{albert}");
}
