//! ProtXLNet and ProtTXL against `transformers`: tiny random `XLNetLMHeadModel` (transformers
//! 5.24) and `TransfoXLLMHeadModel` (4.57) checkpoints and the outputs `transformers` computed
//! for them (`scripts/fixtures/make_fixtures.py`): left-padded batches, two-stream attention
//! with a permutation mask, and segments read one after the other with memory.

mod common;

use common::{Expected, device, fixture, max_diff_on_tokens, values};
use prottrans::burn::tensor::{Device, Int, Tensor, TensorData, activation};
use prottrans::prelude::*;

const TOLERANCE: f32 = 1e-4;

fn float_tensor<const D: usize>(expected: &Expected, name: &str, device: &Device) -> Tensor<D> {
    let (shape, values) = expected.tensor(name);
    Tensor::from_data(TensorData::new(values, shape), device)
}

fn max_diff(actual: &[f32], expected: &[f32]) -> f32 {
    assert_eq!(actual.len(), expected.len());
    actual
        .iter()
        .zip(expected)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0, f32::max)
}

/// `transformers` keeps memories as `[mem_len, batch, d]`; ours are `[batch, mem_len, d]`.
fn compare_memory(memory: &SegmentMemory, expected: &Expected, prefix: &str) -> f32 {
    let mut worst = 0.0f32;
    for (i, layer) in memory.layers.iter().enumerate() {
        let (shape, want) = expected.tensor(&format!("{prefix}.mems.{i}"));
        assert_eq!(
            layer.dims(),
            [shape[1], shape[0], shape[2]],
            "{prefix} memory {i}"
        );
        worst = worst.max(max_diff(&values(layer.clone().swap_dims(0, 1)), &want));
    }
    worst
}

fn slice_columns(ids: &Tensor<2, Int>, range: std::ops::Range<usize>) -> Tensor<2, Int> {
    let [batch, _] = ids.dims();
    ids.clone().slice([0..batch, range])
}

#[test]
fn prot_xlnet_matches_transformers_on_a_left_padded_batch() {
    let device = device();
    let (config, model) = Checkpoint::open(fixture("xlnet_tiny"))
        .unwrap()
        .load_xlnet_lm_head(&device)
        .unwrap();
    let expected = Expected::load("xlnet_tiny");
    let (_, mask) = expected.ints("attention_mask");
    let input = XlnetInput {
        token_type_ids: Some(expected.int_tensor("token_type_ids", &device)),
        output_hidden_states: true,
        ..XlnetInput::new(
            expected.int_tensor("input_ids", &device),
            Some(expected.int_tensor("attention_mask", &device)),
        )
    };
    let output = model.transformer.forward(input.clone(), None);
    let mut hidden = 0.0f32;
    for (i, state) in output.hidden_states.into_iter().enumerate() {
        let (_, want) = expected.tensor(&format!("hidden_states.{i}"));
        hidden = hidden.max(max_diff_on_tokens(
            &values(state),
            &want,
            &mask,
            config.d_model,
        ));
    }
    let (_, want) = expected.tensor("last_hidden_state");
    let last = max_diff_on_tokens(
        &values(output.last_hidden_state),
        &want,
        &mask,
        config.d_model,
    );
    let (_, want) = expected.tensor("logits");
    let logits = max_diff_on_tokens(
        &values(model.forward(input, None).0),
        &want,
        &mask,
        config.vocab_size,
    );
    println!(
        "xlnet_tiny: hidden states {hidden:.3e}, last hidden state {last:.3e}, logits {logits:.3e}"
    );
    assert!(hidden <= TOLERANCE && last <= TOLERANCE && logits <= TOLERANCE);
}

#[test]
fn prot_xlnet_two_stream_attention_matches_transformers() {
    let device = device();
    let (config, model) = Checkpoint::open(fixture("xlnet_tiny"))
        .unwrap()
        .load_xlnet_lm_head(&device)
        .unwrap();
    let expected = Expected::load("xlnet_tiny");
    let input = XlnetInput {
        token_type_ids: Some(expected.int_tensor("token_type_ids", &device)),
        perm_mask: Some(
            float_tensor::<3>(&expected, "two_stream.perm_mask", &device).greater_elem(0.5),
        ),
        target_mapping: Some(float_tensor(
            &expected,
            "two_stream.target_mapping",
            &device,
        )),
        ..XlnetInput::new(
            expected.int_tensor("input_ids", &device),
            Some(expected.int_tensor("attention_mask", &device)),
        )
    };
    let (_, mask) = expected.ints("attention_mask");
    let output = model.transformer.forward(input.clone(), None);
    let (_, want) = expected.tensor("two_stream.content_last_hidden_state");
    let content = max_diff_on_tokens(
        &values(output.last_hidden_state),
        &want,
        &mask,
        config.d_model,
    );
    let (_, want) = expected.tensor("two_stream.query_last_hidden_state");
    let query = max_diff(&values(output.query_hidden_state.unwrap()), &want);

    let (logits, _) = model.forward(input, None);
    let (_, want) = expected.tensor("two_stream.logits");
    let logit_diff = max_diff(&values(logits.clone()), &want);
    // The loss `XLNetLMHeadModel` reports: mean cross-entropy over the targets.
    let (_, labels) = expected.ints("two_stream.labels");
    let [batch, targets, vocab] = logits.dims();
    let log_probs = values(activation::log_softmax(
        logits.reshape([batch * targets, vocab]),
        1,
    ));
    let loss = -labels
        .iter()
        .enumerate()
        .map(|(n, &label)| log_probs[n * vocab + label as usize])
        .sum::<f32>()
        / labels.len() as f32;
    let (_, want_loss) = expected.tensor("two_stream.loss");
    println!(
        "xlnet_tiny two-stream: content {content:.3e}, query {query:.3e}, logits {logit_diff:.3e}, loss {loss:.6} vs {:.6}",
        want_loss[0]
    );
    assert!(content <= TOLERANCE && query <= TOLERANCE && logit_diff <= TOLERANCE);
    assert!((loss - want_loss[0]).abs() <= TOLERANCE);
}

#[test]
fn prot_xlnet_segments_with_memory_match_transformers() {
    let device = device();
    let (config, mut model) = Checkpoint::open(fixture("xlnet_tiny"))
        .unwrap()
        .load_xlnet_lm_head(&device)
        .unwrap();
    model.transformer.set_mem_len(Some(8));
    let expected = Expected::load("xlnet_tiny");
    let ids = expected.int_tensor("mem.input_ids", &device);
    let types = expected.int_tensor("mem.token_type_ids", &device);
    let mut memory: Option<SegmentMemory> = None;
    let mut start = 0;
    for (k, len) in [12, 12, 7].into_iter().enumerate() {
        let input = XlnetInput {
            token_type_ids: Some(slice_columns(&types, start..start + len)),
            ..XlnetInput::new(slice_columns(&ids, start..start + len), None)
        };
        let output = model.transformer.forward(input, memory.as_ref());
        let (_, want) = expected.tensor(&format!("mem.segment{k}.last_hidden_state"));
        let hidden = max_diff(&values(output.last_hidden_state), &want);
        let mems = compare_memory(&output.memory, &expected, &format!("mem.segment{k}"));
        println!(
            "xlnet_tiny segment {k} ({len} tokens, memory {}): hidden {hidden:.3e}, memory {mems:.3e}",
            memory.as_ref().map_or(0, SegmentMemory::len)
        );
        assert!(hidden <= TOLERANCE && mems <= TOLERANCE, "segment {k}");
        memory = Some(output.memory);
        start += len;
    }
    // Without memory, one pass over the whole protein.
    let input = XlnetInput {
        token_type_ids: Some(types),
        ..XlnetInput::new(ids, None)
    };
    let (_, want) = expected.tensor("mem.full.last_hidden_state");
    let whole = max_diff(
        &values(model.transformer.forward(input, None).last_hidden_state),
        &want,
    );
    assert!(whole <= TOLERANCE, "{whole}");
    let _ = config;
}

#[test]
fn prot_txl_segments_with_memory_match_transformers() {
    let device = device();
    let (config, model) = Checkpoint::open(fixture("transfo_xl_tiny"))
        .unwrap()
        .load_transfo_xl_lm_head(&device)
        .unwrap();
    assert_eq!(config.mem_len, 5);
    let expected = Expected::load("transfo_xl_tiny");
    let ids = expected.int_tensor("input_ids", &device);
    let (_, id_values) = expected.ints("input_ids");
    let seq = id_values.len() / 2;
    let mut memory: Option<SegmentMemory> = None;
    let mut start = 0;
    for (k, len) in [7, 7, 4].into_iter().enumerate() {
        let segment = slice_columns(&ids, start..start + len);
        let output = model
            .transformer
            .forward(segment.clone(), memory.as_ref(), true);
        let mut hidden = 0.0f32;
        for (i, state) in output.hidden_states.iter().enumerate() {
            let (_, want) = expected.tensor(&format!("segment{k}.hidden_states.{i}"));
            hidden = hidden.max(max_diff(&values(state.clone()), &want));
        }
        let (_, want) = expected.tensor(&format!("segment{k}.last_hidden_state"));
        let last = max_diff(&values(output.last_hidden_state), &want);
        let mems = compare_memory(&output.memory, &expected, &format!("segment{k}"));

        // `transformers` returns log-probabilities; and per-token losses shifted inside the segment.
        let (logits, _) = model.forward(segment, memory.as_ref());
        let log_probs = activation::log_softmax(logits, 2);
        let (_, want) = expected.tensor(&format!("segment{k}.logits"));
        let scores = values(log_probs.clone());
        let score_diff = max_diff(&scores, &want);
        let (_, want_losses) = expected.tensor(&format!("segment{k}.losses"));
        let vocab = config.vocab_size;
        let mut losses = Vec::new();
        for b in 0..2 {
            for t in 0..len - 1 {
                let next = id_values[b * seq + start + t + 1] as usize;
                losses.push(-scores[(b * len + t) * vocab + next]);
            }
        }
        let loss_diff = max_diff(&losses, &want_losses);
        println!(
            "transfo_xl_tiny segment {k} ({len} tokens): hidden states {hidden:.3e}, last {last:.3e}, memory {mems:.3e}, log-probs {score_diff:.3e}, losses {loss_diff:.3e}"
        );
        assert!(
            hidden <= TOLERANCE && last <= TOLERANCE && mems <= TOLERANCE,
            "segment {k}"
        );
        assert!(
            score_diff <= TOLERANCE && loss_diff <= TOLERANCE,
            "segment {k}"
        );
        memory = Some(output.memory);
        start += len;
    }
    // One pass: from the zero memory `transformers` starts with, and with no memory at all.
    let (_, want) = expected.tensor("full.last_hidden_state");
    let full = max_diff(
        &values(
            model
                .transformer
                .forward(ids.clone(), None, false)
                .last_hidden_state,
        ),
        &want,
    );
    let (_, want) = expected.tensor("full_nomem.last_hidden_state");
    let no_memory = max_diff(
        &values(
            model
                .transformer
                .forward(ids, Some(&SegmentMemory::empty()), false)
                .last_hidden_state,
        ),
        &want,
    );
    println!("transfo_xl_tiny one pass: {full:.3e}, without memory {no_memory:.3e}");
    assert!(full <= TOLERANCE && no_memory <= TOLERANCE);
}

#[test]
fn xlnet_and_transfo_xl_round_trip_through_the_transformers_layout() {
    let device = device();
    let dir = tempfile::tempdir().unwrap();
    let (config, model) = Checkpoint::open(fixture("xlnet_tiny"))
        .unwrap()
        .load_xlnet_lm_head(&device)
        .unwrap();
    save_xlnet_lm_head(&model, &config, dir.path().join("xlnet")).unwrap();
    let (_, again) = Checkpoint::open(dir.path().join("xlnet"))
        .unwrap()
        .load_xlnet_lm_head(&device)
        .unwrap();
    let ids = Tensor::<2, Int>::from_ints([[10, 11, 12, 4, 3]], &device);
    let a = values(model.forward(XlnetInput::new(ids.clone(), None), None).0);
    let b = values(again.forward(XlnetInput::new(ids, None), None).0);
    assert_eq!(a, b);

    let (config, model) = Checkpoint::open(fixture("transfo_xl_tiny"))
        .unwrap()
        .load_transfo_xl_lm_head(&device)
        .unwrap();
    save_transfo_xl_lm_head(&model, &config, dir.path().join("txl")).unwrap();
    let (_, again) = Checkpoint::open(dir.path().join("txl"))
        .unwrap()
        .load_transfo_xl_lm_head(&device)
        .unwrap();
    let ids = Tensor::<2, Int>::from_ints([[5, 6, 7, 8]], &device);
    assert_eq!(
        values(model.forward(ids.clone(), None).0),
        values(again.forward(ids, None).0)
    );
    // The bare encoders load from the same files, heads skipped.
    for name in ["xlnet_tiny", "transfo_xl_tiny"] {
        let encoder = Checkpoint::open(fixture(name))
            .unwrap()
            .load_encoder(&device, prottrans::burn::tensor::FloatDType::F32)
            .unwrap();
        assert_eq!(encoder.hidden_size(), 32);
    }
}

/// The fixture's XLNet laid out as the released ProtXLNet: weights, `config.json` and the
/// sentencepiece model beside them.
fn xlnet_checkpoint_with_spiece() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for file in ["config.json", "model.safetensors"] {
        std::fs::copy(fixture("xlnet_tiny").join(file), dir.path().join(file)).unwrap();
    }
    std::fs::copy(
        fixture("spiece_xlnet_like").join("spiece.model"),
        dir.path().join("spiece.model"),
    )
    .unwrap();
    dir
}

/// `prottrans embed` on an XLNet checkpoint: ids and mask without token types (as the authors
/// embed), left padding, `<sep> <cls>` cut off; per-residue embeddings are `transformers`'
/// hidden states, alone or in a padded batch.
#[test]
fn xlnet_embeddings_are_the_reference_hidden_states() {
    let device = device();
    let dir = xlnet_checkpoint_with_spiece();
    let embedder = prottrans::embed::Embedder::load(dir.path(), &device).unwrap();
    let expected = Expected::load("xlnet_tiny");
    let (shape, want) = expected.tensor("no_token_types.last_hidden_state");
    let (seq, d) = (shape[1], shape[2]);
    let sequences = [
        "MKTAY",
        "MQIFVKTLTGXTITLEV",
        "MSKGEELFTGVVPILVELDGDVNGHKFSV",
    ];
    let batched = embedder.embed_many(&sequences).unwrap();
    let mut worst = 0.0f32;
    for (row, sequence) in sequences.iter().enumerate() {
        let alone = embedder.embed(sequence).unwrap();
        assert_eq!(alone.dim(), (sequence.len(), d));
        let first = seq - (sequence.len() + 2); // left padding, then the residues
        for (got, name) in [(&alone, "alone"), (&batched[row], "batched")] {
            for (r, residue) in got.rows().into_iter().enumerate() {
                let offset = (row * seq + first + r) * d;
                for (k, &x) in residue.iter().enumerate() {
                    let diff = (x - want[offset + k]).abs();
                    assert!(diff <= TOLERANCE, "{sequence} {name} residue {r}: {diff}");
                    worst = worst.max(diff);
                }
            }
        }
    }
    println!("XLNet per-residue embeddings vs transformers: max abs diff {worst:.3e}");
}

/// A protein longer than one segment goes through Transformer-XL in segments, each after the
/// memory of the previous ones: the embedder gives what the chained model calls give.
#[test]
fn transfo_xl_embeds_long_proteins_through_its_memory() {
    let device = device();
    let embedder = prottrans::embed::Embedder::load(fixture("transfo_xl_tiny"), &device).unwrap();
    assert_eq!(embedder.segment_length(), Some(5), "the fixture's mem_len");
    let protein = "MSKGEELFTGVVPILVEL";
    let got = embedder.embed(protein).unwrap();
    assert_eq!(got.dim(), (18, 32));

    let (_, model) = Checkpoint::open(fixture("transfo_xl_tiny"))
        .unwrap()
        .load_transfo_xl_lm_head(&device)
        .unwrap();
    let vocabulary = Vocabulary::prot_bert();
    let mut ids = vec![i64::from(vocabulary.specials().cls.unwrap())];
    ids.extend(
        protein
            .bytes()
            .map(|b| i64::from(vocabulary.residue_id(b).unwrap())),
    );
    ids.push(i64::from(vocabulary.specials().sep.unwrap()));
    let ids = Tensor::<2, Int>::from_data(TensorData::new(ids, [1, 20]), &device);
    let mut memory: Option<SegmentMemory> = None;
    let mut states = Vec::new();
    for start in (0..20).step_by(5) {
        let output = model.transformer.forward(
            slice_columns(&ids, start..start + 5),
            memory.as_ref(),
            false,
        );
        states.extend(values(output.last_hidden_state));
        memory = Some(output.memory);
    }
    let want = &states[32..32 * 19];
    let diff = max_diff(got.as_slice().unwrap(), want);
    assert!(diff <= 1e-6, "{diff}");
    // In a batch, the long protein is split out and still runs alone through the memory; the
    // short ones keep their order.
    let batch = embedder.embed_many(&["MKT", protein, "MK"]).unwrap();
    assert_eq!(batch[1], got);
    for (i, short) in [(0, "MKT"), (2, "MK")] {
        let diff = (&batch[i] - &embedder.embed(short).unwrap())
            .iter()
            .fold(0f32, |m, v| m.max(v.abs()));
        assert!(diff <= 1e-5, "{short}: {diff}");
    }
    // One pass over all 20 tokens differs: the memory holds only 5 positions.
    let whole = values(
        model
            .transformer
            .forward(ids, None, false)
            .last_hidden_state,
    );
    assert!(max_diff(got.as_slice().unwrap(), &whole[32..32 * 19]) > 1e-3);
}

/// Sampling continues the prompt with standard residues, reproducibly for a seed.
#[test]
fn sampling_from_xlnet_and_transfo_xl_continues_the_prompt() {
    use prottrans::generate::{Sampler, SamplingOptions, seeded};
    let device = device();
    let xlnet_dir = xlnet_checkpoint_with_spiece();
    let options = SamplingOptions {
        max_new_tokens: 12,
        ..Default::default()
    };
    for dir in [fixture("transfo_xl_tiny"), xlnet_dir.path().to_path_buf()] {
        let sampler = Sampler::load(&dir, &device).unwrap();
        let a = sampler
            .sample("p", "mkt", &options, &mut seeded(3))
            .unwrap();
        let b = sampler
            .sample("p", "MKT", &options, &mut seeded(3))
            .unwrap();
        assert_eq!(a, b, "{}", dir.display());
        assert!(a.sequence.starts_with("MKT"), "{a:?}");
        assert_eq!(a.sequence.len(), 3 + a.new_residues);
        assert!(
            a.new_residues <= 12 && (a.ended || a.new_residues == 12),
            "{a:?}"
        );
        assert!(
            a.sequence
                .bytes()
                .all(|r| b"ACDEFGHIKLMNPQRSTVWY".contains(&r)),
            "{a:?}"
        );
        let greedy = SamplingOptions {
            temperature: 1e-4,
            ..options
        };
        let g1 = sampler.sample("p", "", &greedy, &mut seeded(1)).unwrap();
        let g2 = sampler.sample("p", "", &greedy, &mut seeded(2)).unwrap();
        assert_eq!(g1, g2, "near-zero temperature is greedy whatever the seed");
    }
    let err = Sampler::load(fixture("bert_tiny"), &device).unwrap_err();
    assert!(err.to_string().contains("XLNet or Transformer-XL"), "{err}");
}
