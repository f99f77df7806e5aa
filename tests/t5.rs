//! ProtT5 against `transformers`: tiny random `T5ForConditionalGeneration` checkpoints with
//! ReLU (T5 v1.0, tied head) and gated-GELU (T5 v1.1, own head) feed-forward, the f16
//! `T5EncoderModel`, and the outputs `transformers` computed for them
//! (`scripts/fixtures/make_fixtures.py`). Batches are padded, sequences are corrupted with
//! sentinels as in pretraining.

mod common;

use common::{Expected, device, fixture, values};
use prottrans::burn::tensor::{FloatDType, Int, Tensor, TensorData};
use prottrans::embed::ndarray::{Array2, ArrayView2, s};
use prottrans::embed::{Embedder, mean_over_residues};
use prottrans::models::Encoder;
use prottrans::models::t5::relative_position_buckets;
use prottrans::prelude::*;

const TOLERANCE: f32 = 1e-4;
const SEQUENCES: [&str; 3] = [
    "MKTAY",
    "MQIFVKTLTGXTITLEV",
    "MSKGEELFTGVVPILVELDGDVNGHKFSV",
];

/// Largest |a - b| over positions where `keep` is true; `width` values per position.
fn max_diff_where(actual: &[f32], expected: &[f32], keep: &[bool], width: usize) -> f32 {
    assert_eq!(actual.len(), expected.len());
    assert_eq!(keep.len() * width, actual.len());
    let mut max = 0.0f32;
    for (position, &k) in keep.iter().enumerate() {
        if k {
            for i in position * width..(position + 1) * width {
                max = max.max((actual[i] - expected[i]).abs());
            }
        }
    }
    max
}

fn check_full_model(name: &str) {
    let device = device();
    let (config, model) = load_t5(fixture(name), &device).unwrap();
    let expected = Expected::load(name);
    let (_, mask) = expected.ints("attention_mask");
    let tokens: Vec<bool> = mask.iter().map(|&m| m == 1).collect();
    let input = EncoderInput::new(
        expected.int_tensor("input_ids", &device),
        expected.int_tensor("attention_mask", &device),
    )
    .with_hidden_states();
    let d = config.d_model;

    let output = model.encode(input.clone());
    let (shape, want) = expected.tensor("encoder_hidden_states");
    assert_eq!(
        shape[0],
        output.hidden_states.len(),
        "{name}: one state per block input + final"
    );
    let per_state = want.len() / shape[0];
    let mut worst_state = 0.0f32;
    for (i, state) in output.hidden_states.into_iter().enumerate() {
        let want = &want[i * per_state..(i + 1) * per_state];
        worst_state = worst_state.max(max_diff_where(&values(state), want, &tokens, d));
    }
    let (_, want) = expected.tensor("encoder_last_hidden_state");
    let encoder = max_diff_where(&values(output.last_hidden_state), &want, &tokens, d);

    let (_, labels) = expected.ints("labels");
    let targets: Vec<bool> = labels.iter().map(|&l| l >= 0).collect();
    let logits = model.forward(input, expected.int_tensor("decoder_input_ids", &device));
    let (_, want) = expected.tensor("logits");
    let logits = max_diff_where(&values(logits), &want, &targets, config.vocab_size);

    let mut alone = 0.0f32;
    for i in 0..SEQUENCES.len() {
        let ids = expected.int_tensor(&format!("single_{i}_input_ids"), &device);
        let decoder = expected.int_tensor(&format!("single_{i}_decoder_input_ids"), &device);
        let (_, want) = expected.tensor(&format!("single_{i}_logits"));
        let got = values(model.forward(EncoderInput::unpadded(ids), decoder));
        alone = alone.max(max_diff_where(
            &got,
            &want,
            &vec![true; want.len() / config.vocab_size],
            config.vocab_size,
        ));
    }
    println!(
        "{name}: encoder states max abs diff {worst_state:.3e}, encoder output {encoder:.3e}, \
         logits (padded batch) {logits:.3e}, logits (alone) {alone:.3e}"
    );
    for (what, diff) in [
        ("encoder states", worst_state),
        ("encoder output", encoder),
        ("logits", logits),
        ("logits alone", alone),
    ] {
        assert!(diff <= TOLERANCE, "{name}: {what} differ by {diff}");
    }
}

#[test]
fn relu_t5_with_tied_head_matches_transformers() {
    check_full_model("t5_relu_tiny");
}

#[test]
fn gated_gelu_t5_with_own_head_matches_transformers() {
    check_full_model("t5_gated_tiny");
}

/// `generate(do_sample=False, num_beams=1)` on the corrupted batch gives the same tokens.
#[test]
fn greedy_generation_matches_transformers() {
    let device = device();
    for name in ["t5_relu_tiny", "t5_gated_tiny"] {
        let (_, model) = load_t5(fixture(name), &device).unwrap();
        let expected = Expected::load(name);
        let input = EncoderInput::new(
            expected.int_tensor("input_ids", &device),
            expected.int_tensor("attention_mask", &device),
        );
        let generated = model.generate_greedy(input, 12).unwrap();
        let (shape, want) = expected.ints("generated");
        for (row, got) in generated.iter().enumerate() {
            // transformers: start token, tokens, `</s>`, then padding for finished rows.
            let full = &want[row * shape[1] + 1..(row + 1) * shape[1]];
            let end = full
                .iter()
                .position(|&t| t == 1)
                .map_or(full.len(), |e| e + 1);
            let got: Vec<i64> = got.iter().map(|&t| i64::from(t)).collect();
            assert_eq!(got, full[..end], "{name} row {row}");
        }
        println!(
            "{name}: {} greedy sequences equal to transformers'",
            generated.len()
        );
    }
}

/// Relative-position buckets for distances up to 1100 either way, against transformers'
/// `_relative_position_bucket` with ProtT5's 32 buckets and max distance 128.
#[test]
fn relative_position_buckets_match_transformers() {
    let expected = Expected::load("t5_relu_tiny");
    let (_, relative) = expected.ints("bucket_relative");
    let query = 1100usize;
    assert_eq!(relative.first(), Some(&-(query as i64)));
    for (name, bidirectional) in [("bucket_bidirectional", true), ("bucket_causal", false)] {
        let (_, want) = expected.ints(name);
        let table = relative_position_buckets(query + 1, relative.len(), bidirectional, 32, 128);
        let row = &table[query * relative.len()..];
        assert_eq!(row, &want[..], "{name}");
    }
}

/// The encoder alone, loaded through the architecture-agnostic `load_encoder`, from the full
/// checkpoint and from the f16 `T5EncoderModel` files (with and without
/// `encoder.embed_tokens.weight`).
#[test]
fn encoder_only_loading_matches_transformers() {
    let device = device();
    let full = Checkpoint::open(fixture("t5_relu_tiny")).unwrap();
    let encoder = full.load_encoder(&device, FloatDType::F32).unwrap();
    assert!(matches!(encoder, Encoder::T5(_)));
    let expected = Expected::load("t5_relu_tiny");
    let (_, mask) = expected.ints("attention_mask");
    let tokens: Vec<bool> = mask.iter().map(|&m| m == 1).collect();
    let out = encoder.encode(EncoderInput::new(
        expected.int_tensor("input_ids", &device),
        expected.int_tensor("attention_mask", &device),
    ));
    let (_, want) = expected.tensor("encoder_last_hidden_state");
    let diff = max_diff_where(&values(out.last_hidden_state), &want, &tokens, 32);
    println!("encoder from the full checkpoint: max abs diff {diff:.3e}");
    assert!(diff <= TOLERANCE);

    let expected = Expected::load("t5_relu_tiny_encoder_f16");
    let (_, want) = expected.tensor("f16_weights_f32_last_hidden_state");
    let (_, mask) = expected.ints("attention_mask");
    let tokens: Vec<bool> = mask.iter().map(|&m| m == 1).collect();
    for dir in [
        fixture("t5_relu_tiny_encoder_f16"),
        fixture("t5_relu_tiny_encoder_f16/pt"),
    ] {
        let checkpoint = Checkpoint::open(&dir).unwrap();
        let names = checkpoint.tensor_names().unwrap();
        let encoder = checkpoint.load_encoder(&device, FloatDType::F32).unwrap();
        let out = encoder.encode(EncoderInput::new(
            expected.int_tensor("input_ids", &device),
            expected.int_tensor("attention_mask", &device),
        ));
        let diff = max_diff_where(&values(out.last_hidden_state), &want, &tokens, 32);
        let embed_tokens = names.iter().any(|n| n == "encoder.embed_tokens.weight");
        println!(
            "f16 encoder ({}, encoder.embed_tokens stored: {embed_tokens}): max abs diff {diff:.3e}",
            dir.display()
        );
        assert!(diff <= TOLERANCE, "{}: {diff}", dir.display());
    }
}

/// `prottrans embed`'s library path: per-residue rows are the residues (`</s>` dropped), the
/// per-protein vector their mean; padded batches equal single sequences.
#[test]
fn embeddings_drop_the_end_token_and_match_transformers() {
    let expected = Expected::load("t5_relu_tiny_encoder_f16");
    let (shape, want) = expected.tensor("f16_weights_f32_last_hidden_state");
    let (width, d) = (shape[1], shape[2]);
    let all = ArrayView2::from_shape((shape[0] * width, d), &want).unwrap();
    let embedder = Embedder::load(fixture("t5_relu_tiny_encoder_f16"), &device()).unwrap();
    assert_eq!(
        embedder.max_residues(),
        None,
        "relative positions: no length limit"
    );
    let batched = embedder.embed_many(&SEQUENCES).unwrap();
    for (i, sequence) in SEQUENCES.iter().enumerate() {
        let want: Array2<f32> = all
            .slice(s![i * width..i * width + sequence.len(), ..])
            .to_owned();
        for got in [&batched[i], &embedder.embed(sequence).unwrap()] {
            assert_eq!(got.shape(), [sequence.len(), d]);
            let diff = got
                .iter()
                .zip(&want)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f32::max);
            assert!(diff <= TOLERANCE, "sequence {i}: {diff}");
            let mean_want = want.mean_axis(prottrans::embed::ndarray::Axis(0)).unwrap();
            let mean_diff = mean_over_residues(got)
                .iter()
                .zip(&mean_want)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f32::max);
            assert!(
                mean_diff <= TOLERANCE,
                "sequence {i} per-protein: {mean_diff}"
            );
        }
    }
}

/// A model prottrans saves has the keys, shapes and values of the `transformers` checkpoint.
#[test]
fn saved_t5_checkpoints_have_the_transformers_layout() {
    let device = device();
    for name in ["t5_relu_tiny", "t5_gated_tiny"] {
        let dir = fixture(name);
        let (config, model) = load_t5(&dir, &device).unwrap();
        let out = tempfile::tempdir().unwrap();
        save_t5(&model, &config, out.path()).unwrap();
        let original = std::fs::read(dir.join("model.safetensors")).unwrap();
        let saved = std::fs::read(out.path().join("model.safetensors")).unwrap();
        let original = safetensors::SafeTensors::deserialize(&original).unwrap();
        let saved = safetensors::SafeTensors::deserialize(&saved).unwrap();
        let mut want: Vec<&str> = original.names();
        let mut got: Vec<&str> = saved.names();
        want.sort();
        got.sort();
        assert_eq!(got, want, "{name}");
        for key in want {
            let (a, b) = (original.tensor(key).unwrap(), saved.tensor(key).unwrap());
            assert_eq!(a.shape(), b.shape(), "{name} {key}");
            assert_eq!(a.data(), b.data(), "{name} {key}");
        }
        let (again, _) = load_t5(out.path(), &device).unwrap();
        assert_eq!(again, config, "{name}: config.json round trip");
    }
}

/// Checkpoints of the wrong kind are refused with the file and the names of what is wrong.
#[test]
fn mismatched_t5_weights_are_named() {
    let device = device();
    let dir = tempfile::tempdir().unwrap();
    for file in ["model.safetensors", "config.json"] {
        std::fs::copy(fixture("t5_relu_tiny").join(file), dir.path().join(file)).unwrap();
    }
    // A gated config over ReLU weights: `wi_0`/`wi_1` missing, `wi` unexpected.
    let config = std::fs::read_to_string(dir.path().join("config.json")).unwrap();
    std::fs::write(
        dir.path().join("config.json"),
        config.replace(
            "\"feed_forward_proj\": \"relu\"",
            "\"feed_forward_proj\": \"gated-gelu\"",
        ),
    )
    .unwrap();
    let err = load_t5(dir.path(), &device).unwrap_err().to_string();
    assert!(err.contains("model.safetensors"), "{err}");
    assert!(err.contains("DenseReluDense.wi_1"), "{err}");
    assert!(err.contains("DenseReluDense.wi.weight"), "{err}");
    // The encoder-only release cannot be loaded as the full model (nor generate).
    let err = load_t5(fixture("t5_relu_tiny_encoder_f16"), &device)
        .unwrap_err()
        .to_string();
    assert!(err.contains("encoder only"), "{err}");
    // A BERT checkpoint is not a T5.
    let err = load_t5(fixture("bert_tiny"), &device)
        .unwrap_err()
        .to_string();
    assert!(err.contains("t5") && err.contains("bert"), "{err}");
}

#[test]
fn shift_right_starts_with_the_decoder_start_token() {
    let (_, model) = load_t5(fixture("t5_relu_tiny"), &device()).unwrap();
    assert_eq!(model.shift_right(&[5, 6, 1]), vec![0, 5, 6]);
    let ids = Tensor::<2, Int>::from_data(TensorData::new(vec![5i64, 6, 1], [1, 3]), &device());
    assert_eq!(
        model
            .encode(EncoderInput::unpadded(ids))
            .last_hidden_state
            .dims(),
        [1, 3, 32]
    );
}

/// `_` marks hidden residues, which become `<extra_id_0>`, `<extra_id_1>`, ...; the generator's
/// output is the model's greedy rewrite, and bad characters are named with their position.
#[test]
fn the_generator_fills_hidden_residues() {
    let generator =
        prottrans::generate::Generator::load(fixture("t5_relu_tiny"), &device()).unwrap();
    let (ids, hidden) = generator.encode("p", "mk_a _Y").unwrap();
    assert_eq!(ids, vec![19, 14, 127, 3, 126, 18, 1]);
    assert_eq!(hidden, vec![2, 4]);
    let filled = generator.fill("p", "MQ_FVK", 7).unwrap();
    assert_eq!(filled.input, "MQ_FVK");
    assert_eq!(filled.filled.len(), 1);
    assert_eq!(filled.filled[0].0, 3);
    // The same tokens as the model's own greedy decoding.
    let (_, model) = load_t5(fixture("t5_relu_tiny"), &device()).unwrap();
    let ids = Tensor::<2, Int>::from_data(
        TensorData::new(vec![19i64, 16, 127, 15, 6, 14, 1], [1, 7]),
        &device(),
    );
    let tokens = model
        .generate_greedy(EncoderInput::unpadded(ids), 7)
        .unwrap()
        .remove(0);
    let vocabulary = prottrans::data::Vocabulary::prot_t5();
    let third = vocabulary.token(tokens[2]).unwrap();
    assert_eq!(
        filled.filled[0].1.map(String::from).as_deref(),
        Some(third).filter(|t| t.len() == 1)
    );
    let err = generator.fill("p", "MQ-FV", 5).unwrap_err().to_string();
    assert!(err.contains("position 3"), "{err}");
}

/// Every recipe in configs/ parses; the released ProtT5 shapes have their published sizes
/// (XL: encoder ~1.2B of ~3B; XXL: ~11B).
#[test]
fn every_config_parses_and_released_t5_shapes_have_their_sizes() {
    let configs = common::repo().join("configs");
    let mut seen = 0;
    for entry in std::fs::read_dir(&configs).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "toml") {
            PretrainConfig::from_toml_file(&path)
                .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            seen += 1;
        }
    }
    assert!(seen >= 10, "{seen} recipes");
    let billions = |n: usize| n as f64 / 1e9;
    for (name, encoder, total) in [
        ("prot_t5_xl_uniref50", (1.1, 1.3), (2.7, 3.1)),
        ("prot_t5_xl_bfd", (1.1, 1.3), (2.7, 3.1)),
        ("prot_t5_xl_half_uniref50_enc", (1.1, 1.3), (2.7, 3.1)),
        ("prot_t5_xxl_uniref50", (4.5, 5.0), (10.5, 11.5)),
        ("prot_t5_xxl_bfd", (4.5, 5.0), (10.5, 11.5)),
    ] {
        let recipe = PretrainConfig::from_toml_file(configs.join(format!("{name}.toml"))).unwrap();
        let ModelConfig::T5(config) = &recipe.model else {
            panic!("{name} is not T5")
        };
        let (e, t) = (
            billions(config.num_encoder_parameters()),
            billions(config.num_parameters()),
        );
        println!("{name}: encoder {e:.2}B, total {t:.2}B parameters");
        assert!((encoder.0..encoder.1).contains(&e), "{name}: encoder {e}B");
        assert!((total.0..total.1).contains(&t), "{name}: total {t}B");
    }
}

/// Embeddings of a released-like T5 with its own tokenizer files against `transformers`: the
/// ids the authors' tokenizer call gives, and the encoder states at the residues (`skip`
/// tokens before them: ProstT5's `<AA2fold>`), batched and alone.
fn check_released_like_embeddings(name: &str, skip: usize) -> f32 {
    let expected = Expected::load(name);
    let (shape, want) = expected.tensor("encoder_last_hidden_state");
    let (width, d) = (shape[1], shape[2]);
    let all = ArrayView2::from_shape((shape[0] * width, d), &want).unwrap();
    let (_, ids) = expected.ints("input_ids");
    let embedder = Embedder::load(fixture(name), &device()).unwrap();
    let mut worst = 0.0f32;
    let batched = embedder.embed_many(&SEQUENCES).unwrap();
    for (i, sequence) in SEQUENCES.iter().enumerate() {
        let framed = embedder
            .tokenizer()
            .encode("p", sequence.as_bytes())
            .unwrap();
        let want_ids: Vec<u32> = ids[i * width..i * width + framed.len()]
            .iter()
            .map(|&id| id as u32)
            .collect();
        assert_eq!(framed, want_ids, "{name}: ids of sequence {i}");
        let start = i * width + skip;
        let want: Array2<f32> = all.slice(s![start..start + sequence.len(), ..]).to_owned();
        let (alone_shape, alone) =
            expected.tensor(&format!("single_{i}_encoder_last_hidden_state"));
        let alone = ArrayView2::from_shape((alone_shape[1], d), &alone).unwrap();
        let alone = alone.slice(s![skip..skip + sequence.len(), ..]);
        for got in [&batched[i], &embedder.embed(sequence).unwrap()] {
            assert_eq!(got.shape(), [sequence.len(), d]);
            for reference in [want.view(), alone.view()] {
                let diff = got
                    .iter()
                    .zip(reference.iter())
                    .map(|(a, b)| (a - b).abs())
                    .fold(0.0, f32::max);
                worst = worst.max(diff);
            }
        }
    }
    worst
}

#[test]
fn prostt5_embeds_after_its_prefix_and_translates_to_3di_as_transformers_does() {
    let worst = check_released_like_embeddings("prostt5_tiny", 1);
    println!("ProstT5-like per-residue embeddings: max abs diff {worst:.2e}");
    assert!(worst <= TOLERANCE, "{worst}");

    let generator =
        prottrans::generate::Generator::load(fixture("prostt5_tiny"), &device()).unwrap();
    assert!(generator.translates_to_3di());
    let expected = Expected::load("prostt5_tiny");
    for (i, sequence) in SEQUENCES.iter().enumerate() {
        let translated = generator.translate_to_3di("p", sequence).unwrap();
        let (_, generated) = expected.ints(&format!("single_{i}_generated"));
        // After the start token, one 3Di token per residue: ids 128.. are the letters of
        // ProtT5's first 20 residues in lower case.
        let want: String = generated[1..]
            .iter()
            .map(|&id| {
                let letter = "algvsredtipkfqnymhwc".as_bytes()[id as usize - 128];
                char::from(letter)
            })
            .collect();
        assert_eq!(translated.output, want, "sequence {i}");
        assert_eq!(translated.output.len(), sequence.len());
    }
    // ProtT5 itself has no 3Di letters.
    let prott5 = prottrans::generate::Generator::load(fixture("t5_relu_tiny"), &device()).unwrap();
    assert!(!prott5.translates_to_3di());
}

#[test]
fn ankh_embeds_with_its_own_tokenizer_as_transformers_does() {
    let worst = check_released_like_embeddings("ankh_tiny", 0);
    println!("Ankh-like per-residue embeddings: max abs diff {worst:.2e}");
    assert!(worst <= TOLERANCE, "{worst}");
}

/// ProtT5's `spiece.model` with T5's 100 extra ids gives exactly the built-in ids, so the
/// released checkpoint reads the same whether its file is there or not.
#[test]
fn a_prott5_spiece_model_gives_the_built_in_ids() {
    let from_file =
        Vocabulary::from_t5_files(&fixture("prostt5_tiny").join("spiece.model"), 100, None)
            .unwrap();
    let built_in = Vocabulary::prot_t5();
    assert_eq!(from_file.len(), built_in.len());
    assert_eq!(from_file.specials(), built_in.specials());
    for residue in b"ACDEFGHIKLMNPQRSTVWYXBOUZ" {
        assert_eq!(
            from_file.residue_id(*residue),
            built_in.residue_id(*residue)
        );
    }
    for i in 0..100 {
        let sentinel = format!("<extra_id_{i}>");
        assert_eq!(
            from_file.id(&sentinel),
            built_in.id(&sentinel),
            "{sentinel}"
        );
    }
}
