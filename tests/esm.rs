//! ESM-2 against `transformers`: the tiny random `EsmForMaskedLM` checkpoint and the outputs
//! `transformers` computed for it (`scripts/fixtures/make_fixtures.py esm_tiny`): hidden
//! states, masked-LM logits and contacts of a padded batch and of each protein alone, ESM's
//! tokenisation (U, Z, O, B kept), the save/load round trip and embedding.

mod common;

use common::{Expected, device, fixture, max_diff_on_tokens, values};
use prottrans::burn::tensor::{Int, Tensor};
use prottrans::import::checkpoint_tokenizer;
use prottrans::prelude::*;
use safetensors::SafeTensors;

const FIXTURE: &str = "esm_tiny";
const TOLERANCE: f32 = 1e-4;

/// The fixture's proteins, in batch order (the last one carries two `<mask>` tokens).
fn sequences() -> Vec<String> {
    let text = std::fs::read_to_string(fixture(FIXTURE).join("README.md")).unwrap();
    let line = text
        .lines()
        .find(|l| l.starts_with("Sequences (batch order)"))
        .unwrap();
    line.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

/// Largest difference of two `[batch, n, n]` contact maps over each protein's own `L x L`.
fn contact_diff(got: &[f32], want: &[f32], n: usize, lengths: &[usize]) -> f32 {
    let mut worst = 0.0f32;
    for (b, &len) in lengths.iter().enumerate() {
        for i in 0..len {
            for j in 0..len {
                let k = b * n * n + i * n + j;
                worst = worst.max((got[k] - want[k]).abs());
            }
        }
    }
    worst
}

#[test]
fn esm2_matches_transformers_on_a_padded_batch() {
    let device = device();
    let (config, model) = load_pretrained::<EsmForMaskedLm>(fixture(FIXTURE), &device).unwrap();
    let expected = Expected::load(FIXTURE);
    let (shape, mask) = expected.ints("attention_mask");
    let input = EncoderInput::new(
        expected.int_tensor("input_ids", &device),
        expected.int_tensor("attention_mask", &device),
    )
    .with_hidden_states();

    let output = model.encode(input.clone());
    let d = config.hidden_size;
    let (hidden_shape, want) = expected.tensor("hidden_states");
    assert_eq!(hidden_shape[0], output.hidden_states.len());
    let per_state = want.len() / hidden_shape[0];
    let mut worst_hidden = 0.0f32;
    for (i, state) in output.hidden_states.into_iter().enumerate() {
        let want = &want[i * per_state..(i + 1) * per_state];
        let diff = max_diff_on_tokens(&values(state), want, &mask, d);
        println!("hidden state {i}: max abs diff {diff:.3e}");
        worst_hidden = worst_hidden.max(diff);
    }
    let (_, want) = expected.tensor("last_hidden_state");
    let last = max_diff_on_tokens(&values(output.last_hidden_state), &want, &mask, d);
    let (_, want) = expected.tensor("mlm_logits");
    let mlm = max_diff_on_tokens(
        &values(model.forward(input)),
        &want,
        &mask,
        config.vocab_size,
    );

    let contacts = model.esm.predict_contacts(
        expected.int_tensor("input_ids", &device),
        Some(expected.int_tensor("attention_mask", &device)),
    );
    let (contact_shape, want) = expected.tensor("contacts");
    assert_eq!(contacts.dims().to_vec(), contact_shape);
    let lengths: Vec<usize> = mask
        .chunks(shape[1])
        .map(|row| row.iter().sum::<i64>() as usize - 2)
        .collect();
    let contact = contact_diff(&values(contacts), &want, contact_shape[1], &lengths);
    println!("last hidden {last:.3e}, MLM logits {mlm:.3e}, contacts {contact:.3e}");

    assert!(worst_hidden <= TOLERANCE, "hidden states: {worst_hidden}");
    assert!(last <= TOLERANCE, "last hidden state: {last}");
    assert!(mlm <= TOLERANCE, "MLM logits: {mlm}");
    assert!(contact <= TOLERANCE, "contacts: {contact}");
}

#[test]
fn each_protein_alone_matches_transformers() {
    let device = device();
    let (config, model) = load_pretrained::<EsmForMaskedLm>(fixture(FIXTURE), &device).unwrap();
    let expected = Expected::load(FIXTURE);
    for i in 0..sequences().len() {
        let ids = expected.int_tensor(&format!("single_{i}_input_ids"), &device);
        let mask = Tensor::<2, Int>::ones(ids.dims(), &device);
        let (_, want) = expected.tensor(&format!("single_{i}_mlm_logits"));
        let tokens = vec![1i64; want.len() / config.vocab_size];
        let logits = model.forward(EncoderInput::new(ids.clone(), mask.clone()));
        let mlm = max_diff_on_tokens(&values(logits), &want, &tokens, config.vocab_size);
        // Unpadded, so without a mask too (the fused path).
        let unmasked = model.forward(EncoderInput::unpadded(ids.clone()));
        let unmasked = max_diff_on_tokens(&values(unmasked), &want, &tokens, config.vocab_size);
        let (shape, want) = expected.tensor(&format!("single_{i}_contacts"));
        let contacts = values(model.esm.predict_contacts(ids, Some(mask)));
        let contact = contact_diff(&contacts, &want, shape[1], &[shape[1]]);
        println!(
            "protein {i} alone: MLM {mlm:.3e} (no mask {unmasked:.3e}), contacts {contact:.3e}"
        );
        assert!(
            mlm.max(unmasked) <= TOLERANCE,
            "protein {i}: {mlm} {unmasked}"
        );
        assert!(contact <= TOLERANCE, "protein {i} contacts: {contact}");
    }
}

/// The checkpoint's own `vocab.txt` tokenises as `EsmTokenizer` did: `<cls> residues <eos>`,
/// with U, Z, O and B as tokens of their own.
#[test]
fn the_checkpoint_tokenizer_is_esms() {
    let dir = fixture(FIXTURE);
    let checkpoint = Checkpoint::open(&dir).unwrap();
    let tokenizer = checkpoint_tokenizer(&dir, checkpoint.config()).unwrap();
    let expected = Expected::load(FIXTURE);
    let proteins = sequences();
    let mut checked = 0;
    for (i, protein) in proteins.iter().enumerate() {
        if protein.contains('<') {
            continue; // `<mask>` is a token, not residues
        }
        let (_, want) = expected.ints(&format!("single_{i}_input_ids"));
        let got = tokenizer
            .encode(&format!("protein {i}"), protein.as_bytes())
            .unwrap();
        let got: Vec<i64> = got.into_iter().map(i64::from).collect();
        assert_eq!(got, want, "{protein}");
        checked += 1;
    }
    assert!(checked >= 4 && proteins.iter().any(|p| p.contains('U')));
}

/// Loading through the registry (any checkpoint, bare encoder) gives the hidden states the
/// class-specific loader gives; the embedder drops `<cls>` and `<eos>`.
#[test]
fn the_registry_loads_and_embeds_esm() {
    let device = device();
    let dir = fixture(FIXTURE);
    let checkpoint = Checkpoint::open(&dir).unwrap();
    assert_eq!(checkpoint.config().architecture().name(), "esm");
    let encoder = checkpoint
        .load_encoder(&device, prottrans::burn::tensor::FloatDType::F32)
        .unwrap();
    let expected = Expected::load(FIXTURE);
    let (_, mask) = expected.ints("attention_mask");
    let output = encoder.encode(EncoderInput::new(
        expected.int_tensor("input_ids", &device),
        expected.int_tensor("attention_mask", &device),
    ));
    let (_, want) = expected.tensor("last_hidden_state");
    let diff = max_diff_on_tokens(&values(output.last_hidden_state), &want, &mask, 32);
    assert!(diff <= TOLERANCE, "{diff}");

    let embedder = Embedder::load(&dir, &device).unwrap();
    let (_, want) = expected.tensor("single_0_last_hidden_state");
    let protein = &sequences()[0];
    let rows = embedder.embed(protein).unwrap();
    assert_eq!(rows.shape(), [protein.len(), 32]);
    let want = &want[32..32 * (protein.len() + 1)]; // without `<cls>` and `<eos>`
    let diff = rows
        .iter()
        .zip(want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(diff <= TOLERANCE, "embedding differs by {diff}");
}

/// A saved model loads back with the same outputs, with the key names released ESM-2
/// checkpoints use (`LayerNorm.weight`; transformers 5 writes the fixture's as `gamma`), and
/// without tied or recomputed tensors.
#[test]
fn saved_checkpoints_round_trip() {
    let device = device();
    let (config, model) = load_pretrained::<EsmForMaskedLm>(fixture(FIXTURE), &device).unwrap();
    let out = tempfile::tempdir().unwrap();
    save_pretrained(&model, &config, out.path()).unwrap();
    let (again_config, again) = load_pretrained::<EsmForMaskedLm>(out.path(), &device).unwrap();
    assert_eq!(again_config, config);

    let original = std::fs::read(fixture(FIXTURE).join("model.safetensors")).unwrap();
    let saved = std::fs::read(out.path().join("model.safetensors")).unwrap();
    let original = SafeTensors::deserialize(&original).unwrap();
    let saved = SafeTensors::deserialize(&saved).unwrap();
    let mut want: Vec<String> = original
        .names()
        .into_iter()
        .filter(|k| !k.ends_with("inv_freq"))
        .map(|k| k.replace(".gamma", ".weight").replace(".beta", ".bias"))
        .collect();
    let mut got: Vec<String> = saved.names().into_iter().map(str::to_string).collect();
    want.sort();
    got.sort();
    assert_eq!(got, want);

    let expected = Expected::load(FIXTURE);
    let input = EncoderInput::new(
        expected.int_tensor("input_ids", &device),
        expected.int_tensor("attention_mask", &device),
    );
    let a = values(model.forward(input.clone()));
    let b = values(again.forward(input));
    assert_eq!(a, b);
}

/// The released shapes have their published sizes (8M ... 15B parameters).
#[test]
fn released_esm2_recipes_have_their_sizes() {
    let configs = common::repo().join("configs");
    for (name, low, high) in [
        ("esm2_8m", 7.0e6, 8.5e6),
        ("esm2_35m", 33e6, 36e6),
        ("esm2_150m", 145e6, 152e6),
        ("esm2_650m", 640e6, 660e6),
        ("esm2_3b", 2.7e9, 3.0e9),
        ("esm2_15b", 14.5e9, 15.5e9),
    ] {
        let recipe = PretrainConfig::from_toml_file(configs.join(format!("{name}.toml"))).unwrap();
        let ModelConfig::Esm(config) = &recipe.model else {
            panic!("{name} is not ESM")
        };
        let n = config.num_parameters() as f64;
        println!("{name}: {:.1}M parameters", n / 1e6);
        assert!((low..high).contains(&n), "{name}: {n}");
    }
}

/// Masked-LM pretraining of a tiny ESM-2 beats the unigram baseline, and the saved model
/// embeds proteins with ESM's alphabet (a selenocysteine is its own token, not X).
#[test]
fn esm2_pretraining_beats_the_unigram_baseline() {
    let text = std::fs::read_to_string(common::repo().join("configs/esm2_tiny.toml"))
        .unwrap()
        .replace("steps = 60", "steps = 150")
        .replace("checkpoint_every = 20", "checkpoint_every = 75");
    let dir = tempfile::tempdir().unwrap();
    let report = pretrain(PretrainRun {
        config: PretrainConfig::from_toml_str(&text).unwrap(),
        train: common::sample("uniprot_train.fasta.gz"),
        valid: common::sample("uniprot_valid.fasta.gz"),
        out: dir.path().to_path_buf(),
        device: DeviceSpec::Cpu.device().unwrap(),
        extra_devices: Vec::new(),
        strategy: DataParallel::Gather,
        resume: false,
    })
    .unwrap();
    println!("{report}");
    assert!(
        report.valid_loss < report.unigram_loss,
        "validation loss {} is not below the unigram baseline {}",
        report.valid_loss,
        report.unigram_loss
    );
    let embedder = Embedder::load(&report.model_dir, &device()).unwrap();
    let tokenizer = embedder.tokenizer();
    let ids = tokenizer.encode("selenoprotein", b"MKU").unwrap();
    assert_eq!(ids, [0, 20, 15, 26, 2]);
    assert_eq!(embedder.embed("MKTAYIAKQRU").unwrap().dim(), (11, 32));
}
