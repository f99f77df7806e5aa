//! Backend conformance: the same checks on every backend this build has and this machine runs.
//!
//! Devices come from `PROTTRANS_TEST_DEVICES` (comma-separated `--device` names, e.g.
//! `flex,wgpu,tch`); each of them must open and pass. Unset, every backend compiled in is probed
//! and those that cannot run here (a CUDA build on a machine without a GPU) are printed as skipped,
//! never counted as passed.
//!
//! Every check compares a device with `transformers`' outputs stored in the fixtures or with the
//! default CPU backend (`flex`) run in the same test, within the tolerance stated beside it. Run
//! with `--nocapture` to see each device's largest deviation.
//!
//! **A CI-matrix test.** In the README's test command (default features) the only backend is
//! flex, so the comparisons with flex are flex against itself there and only those with
//! `transformers` say anything. The cross-backend checks run in `.ci/backends`, on a build with
//! `wgpu,tch,cuda`, with `PROTTRANS_TEST_DEVICES=flex,wgpu,tch`.

mod common;

use std::sync::Mutex;

use common::{Expected, fixture, values};
use prottrans::burn::module::Module;
use prottrans::burn::optim::{AdamWConfig, GradientsParams};
use prottrans::burn::tensor::{Device, Int, Tensor, TensorData};
use prottrans::prelude::*;
use prottrans::train::objectives::span_corruption::T5Batch;
use prottrans::train::{MaskedLm, MlmBatch, SpanCorruption};
use prottrans::transfer::heads::{ProteinHeadConfig, ResidueHeadConfig};
use prottrans::transfer::train::masked_cross_entropy;

/// One check at a time: GPU backends compile kernels on first use, and a software GPU shares the
/// CPU with the reference backend.
static SERIAL: Mutex<()> = Mutex::new(());

/// Tolerance against `transformers` and against flex for f32 forward passes (the parity tests'
/// bound; a GPU's reduction order and fused kernels stay far inside it).
const FORWARD_TOLERANCE: f32 = 1e-4;
/// Relative tolerance on losses after a few optimiser steps, against flex.
const TRAINING_TOLERANCE: f32 = 1e-3;

/// The devices under test, each with its name.
fn devices() -> Vec<(String, Device)> {
    match std::env::var("PROTTRANS_TEST_DEVICES") {
        Ok(list) => list
            .split(',')
            .map(str::trim)
            .filter(|name| !name.is_empty())
            .map(|name| {
                let spec: DeviceSpec = name
                    .parse()
                    .unwrap_or_else(|e| panic!("PROTTRANS_TEST_DEVICES: {e}"));
                let device = spec
                    .probe()
                    .unwrap_or_else(|e| panic!("PROTTRANS_TEST_DEVICES names {name}: {e}"));
                (name.to_string(), device)
            })
            .collect(),
        Err(_) => {
            let mut found = Vec::new();
            for backend in prottrans::backend::compiled_backends() {
                let spec: DeviceSpec = backend.name.parse().expect("backend names parse");
                match spec.probe() {
                    Ok(device) => found.push((backend.name.to_string(), device)),
                    Err(e) => println!("SKIPPED {}: {e}", backend.name),
                }
            }
            found
        }
    }
}

/// The CPU reference every device is compared with.
fn reference() -> Device {
    DeviceSpec::Cpu
        .device()
        .expect("the default CPU backend is compiled in")
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// `values` at the positions where `keep` is true, `width` values per position.
fn on_tokens(values: &[f32], keep: &[bool], width: usize) -> Vec<f32> {
    keep.iter()
        .enumerate()
        .filter(|(_, k)| **k)
        .flat_map(|(i, _)| values[i * width..(i + 1) * width].iter().copied())
        .collect()
}

/// Prints one line per device and fails if any deviation is above its tolerance.
fn report(check: &str, rows: &[(String, f32, f32)], tolerance: f32) {
    println!("{check} (tolerance {tolerance:.0e}):");
    for (device, deviation, from_cpu) in rows {
        println!(
            "  {device:>12}: max deviation from reference {deviation:.2e}, from flex {from_cpu:.2e}"
        );
    }
    for (device, deviation, from_cpu) in rows {
        assert!(
            *deviation <= tolerance && *from_cpu <= tolerance,
            "{check} on {device}: deviation {deviation:.3e}, from flex {from_cpu:.3e} (tolerance {tolerance:.0e})"
        );
    }
    assert!(!rows.is_empty(), "no device to test");
}

/// As [`report`], for a check with no `transformers` reference: each device against flex only.
fn report_against_flex(check: &str, rows: &[(String, f32)], tolerance: f32) {
    println!("{check} (tolerance {tolerance:.0e}, no transformers reference):");
    for (device, from_cpu) in rows {
        println!("  {device:>12}: max deviation from flex {from_cpu:.2e}");
        assert!(
            *from_cpu <= tolerance,
            "{check} on {device}: deviation from flex {from_cpu:.3e} (tolerance {tolerance:.0e})"
        );
    }
    assert!(!rows.is_empty(), "no device to test");
}

/// ProtBert's hidden states and MLM logits, as `transformers` computed them.
#[test]
fn bert_forward_matches_transformers_on_every_device() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let expected = Expected::load("bert_tiny");
    let (_, mask) = expected.ints("attention_mask");
    let keep: Vec<bool> = mask.iter().map(|&m| m == 1).collect();
    let run = |device: &Device| {
        let (config, model) = load_bert_for_masked_lm(fixture("bert_tiny"), device).unwrap();
        let input = EncoderInput::new(
            expected.int_tensor("input_ids", device),
            expected.int_tensor("attention_mask", device),
        );
        let hidden = values(model.encode(input.clone()).last_hidden_state);
        let logits = values(model.forward(input));
        let mut out = on_tokens(&hidden, &keep, config.hidden_size);
        out.extend(on_tokens(&logits, &keep, config.vocab_size));
        out
    };
    let mut want = on_tokens(&expected.tensor("last_hidden_state").1, &keep, 32);
    want.extend(on_tokens(&expected.tensor("mlm_logits").1, &keep, 30));
    let cpu = run(&reference());
    let rows: Vec<_> = devices()
        .into_iter()
        .map(|(name, device)| {
            let got = run(&device);
            (name, max_abs_diff(&got, &want), max_abs_diff(&got, &cpu))
        })
        .collect();
    report(
        "ProtBert hidden states and MLM logits vs transformers",
        &rows,
        FORWARD_TOLERANCE,
    );
}

/// ESM-2's hidden states, MLM logits and contacts (rotary attention, token dropout, the
/// contact head's explicit attention maps), as `transformers` computed them.
#[test]
fn esm_forward_matches_transformers_on_every_device() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let expected = Expected::load("esm_tiny");
    let (_, mask) = expected.ints("attention_mask");
    let keep: Vec<bool> = mask.iter().map(|&m| m == 1).collect();
    let run = |device: &Device| {
        let (config, model) =
            load_pretrained::<EsmForMaskedLm>(fixture("esm_tiny"), device).unwrap();
        let input = EncoderInput::new(
            expected.int_tensor("input_ids", device),
            expected.int_tensor("attention_mask", device),
        );
        let hidden = values(model.encode(input.clone()).last_hidden_state);
        let logits = values(model.forward(input));
        let contacts = values(model.esm.predict_contacts(
            expected.int_tensor("input_ids", device),
            Some(expected.int_tensor("attention_mask", device)),
        ));
        let mut out = on_tokens(&hidden, &keep, config.hidden_size);
        out.extend(on_tokens(&logits, &keep, config.vocab_size));
        // Every position: rows and columns of padding are zero maps, sigmoid(bias) in both.
        out.extend(contacts);
        out
    };
    let mut want = on_tokens(&expected.tensor("last_hidden_state").1, &keep, 32);
    want.extend(on_tokens(&expected.tensor("mlm_logits").1, &keep, 33));
    want.extend(expected.tensor("contacts").1);
    let cpu = run(&reference());
    let rows: Vec<_> = devices()
        .into_iter()
        .map(|(name, device)| {
            let got = run(&device);
            (name, max_abs_diff(&got, &want), max_abs_diff(&got, &cpu))
        })
        .collect();
    report(
        "ESM-2 hidden states, MLM logits and contacts vs transformers",
        &rows,
        FORWARD_TOLERANCE,
    );
}

/// ProtAlbert (shared layer groups) and ProtElectra (discriminator and generator): hidden
/// states and logits of the padded fixture batches, as `transformers` computed them.
#[test]
fn albert_and_electra_forward_match_transformers_on_every_device() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let fixtures = [
        "albert_tiny_groups",
        "electra_tiny_discriminator",
        "electra_tiny_generator",
    ];
    let run = |device: &Device| -> Vec<f32> {
        let mut out = Vec::new();
        for name in fixtures {
            let expected = Expected::load(name);
            let keep: Vec<bool> = expected
                .ints("attention_mask")
                .1
                .iter()
                .map(|&m| m == 1)
                .collect();
            let input = EncoderInput::new(
                expected.int_tensor("input_ids", device),
                expected.int_tensor("attention_mask", device),
            );
            let checkpoint = Checkpoint::open(fixture(name)).unwrap();
            let (hidden, logits, width, vocab) = match name {
                "albert_tiny_groups" => {
                    let (config, model) = checkpoint.load_albert_for_masked_lm(device).unwrap();
                    let hidden = model.encode(input.clone()).last_hidden_state;
                    (
                        hidden,
                        model.forward(input),
                        config.hidden_size,
                        config.vocab_size,
                    )
                }
                "electra_tiny_discriminator" => {
                    let (config, model) = checkpoint.load_electra_discriminator(device).unwrap();
                    let (output, logits) = model.forward(input);
                    (
                        output.last_hidden_state,
                        logits.unsqueeze_dim(2),
                        config.hidden_size,
                        1,
                    )
                }
                _ => {
                    let (config, model) = checkpoint.load_electra_generator(device).unwrap();
                    let (output, logits) = model.forward(input);
                    (
                        output.last_hidden_state,
                        logits,
                        config.hidden_size,
                        config.vocab_size,
                    )
                }
            };
            out.extend(on_tokens(&values(hidden), &keep, width));
            out.extend(on_tokens(&values(logits), &keep, vocab));
        }
        out
    };
    let mut want = Vec::new();
    for name in fixtures {
        let expected = Expected::load(name);
        let keep: Vec<bool> = expected
            .ints("attention_mask")
            .1
            .iter()
            .map(|&m| m == 1)
            .collect();
        let (shape, hidden) = expected.tensor("last_hidden_state");
        want.extend(on_tokens(&hidden, &keep, shape[2]));
        let logits = if name == "electra_tiny_discriminator" {
            "rtd_logits"
        } else {
            "mlm_logits"
        };
        let (shape, logits) = expected.tensor(logits);
        want.extend(on_tokens(
            &logits,
            &keep,
            shape.get(2).copied().unwrap_or(1),
        ));
    }
    let cpu = run(&reference());
    let rows: Vec<_> = devices()
        .into_iter()
        .map(|(name, device)| {
            let got = run(&device);
            (name, max_abs_diff(&got, &want), max_abs_diff(&got, &cpu))
        })
        .collect();
    report(
        "ProtAlbert and ProtElectra hidden states and logits vs transformers",
        &rows,
        FORWARD_TOLERANCE,
    );
}

/// ProtXLNet (left-padded batch, and the two-stream pass with a permutation mask) and ProtTXL
/// (three segments with memory): as `transformers` computed them.
#[test]
fn xlnet_and_transfo_xl_forward_match_transformers_on_every_device() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let xlnet = Expected::load("xlnet_tiny");
    let txl = Expected::load("transfo_xl_tiny");
    let keep: Vec<bool> = xlnet
        .ints("attention_mask")
        .1
        .iter()
        .map(|&m| m == 1)
        .collect();
    let run = |device: &Device| -> Vec<f32> {
        let (config, model) = Checkpoint::open(fixture("xlnet_tiny"))
            .unwrap()
            .load_xlnet_lm_head(device)
            .unwrap();
        let padded = XlnetInput {
            token_type_ids: Some(xlnet.int_tensor("token_type_ids", device)),
            ..XlnetInput::new(
                xlnet.int_tensor("input_ids", device),
                Some(xlnet.int_tensor("attention_mask", device)),
            )
        };
        let float = |name: &str| {
            let (shape, values) = xlnet.tensor(name);
            Tensor::<3>::from_data(TensorData::new(values, shape), device)
        };
        let two_stream = XlnetInput {
            perm_mask: Some(float("two_stream.perm_mask").greater_elem(0.5)),
            target_mapping: Some(float("two_stream.target_mapping")),
            ..padded.clone()
        };
        let mut out = on_tokens(
            &values(model.forward(padded, None).0),
            &keep,
            config.vocab_size,
        );
        out.extend(values(model.forward(two_stream, None).0));

        let (_, model) = Checkpoint::open(fixture("transfo_xl_tiny"))
            .unwrap()
            .load_transfo_xl_lm_head(device)
            .unwrap();
        let ids = txl.int_tensor("input_ids", device);
        let mut memory: Option<SegmentMemory> = None;
        for (start, end) in [(0, 7), (7, 14), (14, 18)] {
            let output = model.transformer.forward(
                ids.clone().slice([0..2, start..end]),
                memory.as_ref(),
                false,
            );
            out.extend(values(output.last_hidden_state));
            memory = Some(output.memory);
        }
        out
    };
    let mut want = on_tokens(
        &xlnet.tensor("logits").1,
        &keep,
        xlnet.tensor("logits").0[2],
    );
    want.extend(xlnet.tensor("two_stream.logits").1);
    for k in 0..3 {
        want.extend(txl.tensor(&format!("segment{k}.last_hidden_state")).1);
    }
    let cpu = run(&reference());
    let rows: Vec<_> = devices()
        .into_iter()
        .map(|(name, device)| {
            let got = run(&device);
            (name, max_abs_diff(&got, &want), max_abs_diff(&got, &cpu))
        })
        .collect();
    report(
        "ProtXLNet logits (padded, two-stream) and ProtTXL segments with memory vs transformers",
        &rows,
        FORWARD_TOLERANCE,
    );
}

/// ProtT5 (gated GELU, own head): encoder output and decoder logits, as `transformers` computed them.
#[test]
fn t5_forward_matches_transformers_on_every_device() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let name = "t5_gated_tiny";
    let expected = Expected::load(name);
    let (_, mask) = expected.ints("attention_mask");
    let encoder_keep: Vec<bool> = mask.iter().map(|&m| m == 1).collect();
    let (_, labels) = expected.ints("labels");
    let decoder_keep: Vec<bool> = labels.iter().map(|&l| l != -100).collect();
    let run = |device: &Device| {
        let (config, model) = load_t5(fixture(name), device).unwrap();
        let input = EncoderInput::new(
            expected.int_tensor("input_ids", device),
            expected.int_tensor("attention_mask", device),
        );
        let encoded = values(model.encode(input.clone()).last_hidden_state);
        let logits = values(model.forward(input, expected.int_tensor("decoder_input_ids", device)));
        let mut out = on_tokens(&encoded, &encoder_keep, config.d_model);
        out.extend(on_tokens(&logits, &decoder_keep, config.vocab_size));
        out
    };
    let (_, config) = load_t5(fixture(name), &reference())
        .map(|(c, _)| ((), c))
        .unwrap();
    let mut want = on_tokens(
        &expected.tensor("encoder_last_hidden_state").1,
        &encoder_keep,
        config.d_model,
    );
    want.extend(on_tokens(
        &expected.tensor("logits").1,
        &decoder_keep,
        config.vocab_size,
    ));
    let cpu = run(&reference());
    let rows: Vec<_> = devices()
        .into_iter()
        .map(|(name, device)| {
            let got = run(&device);
            (name, max_abs_diff(&got, &want), max_abs_diff(&got, &cpu))
        })
        .collect();
    report(
        "ProtT5 encoder output and logits vs transformers",
        &rows,
        FORWARD_TOLERANCE,
    );
}

/// A masked batch from the fixture's padded proteins: every third residue masked.
fn mlm_batch(expected: &Expected, device: &Device) -> MlmBatch {
    let specials = Vocabulary::prot_bert().specials();
    let (shape, ids) = expected.ints("input_ids");
    let (_, mask) = expected.ints("attention_mask");
    let mut input = ids.clone();
    let (mut positions, mut labels) = (Vec::new(), Vec::new());
    for (i, &id) in ids.iter().enumerate() {
        let residue = mask[i] == 1 && !Vocabulary::prot_bert().is_special(id as u32);
        if residue && i % 3 == 0 {
            input[i] = i64::from(specials.mask.expect("ProtBert has [MASK]"));
            positions.push(i as i64);
            labels.push(id);
        }
    }
    let n = positions.len();
    MlmBatch {
        input_ids: Tensor::from_data(TensorData::new(input, [shape[0], shape[1]]), device),
        attention_mask: Some(Tensor::from_data(
            TensorData::new(mask, [shape[0], shape[1]]),
            device,
        )),
        positions: Tensor::from_data(TensorData::new(positions, [n]), device),
        labels: Tensor::from_data(TensorData::new(labels, [n]), device),
    }
}

/// `steps` AdamW steps of `loss` on `model`; the loss before each step.
fn optimise<M, F>(model: M, steps: usize, loss: F) -> Vec<f32>
where
    M: Module,
    F: Fn(&M) -> Tensor<1>,
{
    optimised(model, steps, loss).0
}

/// [`optimise`], with the model after the last step.
fn optimised<M, F>(mut model: M, steps: usize, loss: F) -> (Vec<f32>, M)
where
    M: Module,
    F: Fn(&M) -> Tensor<1>,
{
    let mut optimizer = AdamWConfig::new().with_epsilon(1e-8).init();
    let mut losses = Vec::new();
    for _ in 0..steps {
        let value = loss(&model);
        losses.push(value.clone().into_scalar::<f32>());
        let grads = GradientsParams::from_grads(value.backward(), &model);
        model = optimizer.step(1e-2, model, grads);
    }
    (losses, model)
}

/// Compares per-step losses with flex's and checks that they fall.
fn report_training(check: &str, runs: &[(String, Vec<f32>)], cpu: &[f32]) {
    println!("{check} (relative tolerance {TRAINING_TOLERANCE:.0e} against flex):");
    for (device, losses) in runs {
        let worst = losses
            .iter()
            .zip(cpu)
            .map(|(a, b)| (a - b).abs() / b.abs().max(1e-6))
            .fold(0.0f32, f32::max);
        println!(
            "  {device:>12}: losses {losses:.4?}, largest relative deviation from flex {worst:.2e}"
        );
        assert!(
            losses.last() < losses.first(),
            "{check} on {device}: loss did not fall: {losses:?}"
        );
        assert!(
            worst <= TRAINING_TOLERANCE,
            "{check} on {device}: losses {losses:?} vs flex {cpu:?}"
        );
    }
    assert!(!runs.is_empty(), "no device to test");
}

/// Five AdamW steps of masked-LM training from the same weights give the same falling losses.
#[test]
fn bert_training_steps_agree_on_every_device() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let expected = Expected::load("bert_tiny");
    let run = |device: &Device| {
        let device = device.clone().autodiff();
        let (_, model) = load_bert_for_masked_lm(fixture("bert_tiny"), &device).unwrap();
        let batch = mlm_batch(&expected, &device);
        optimise(MaskedLm::new(model, 1), 5, |m| {
            m.forward_loss(batch.clone()).loss
        })
    };
    let cpu = run(&reference());
    let runs: Vec<_> = devices()
        .into_iter()
        .map(|(name, device)| (name, run(&device)))
        .collect();
    report_training("ProtBert masked-LM steps", &runs, &cpu);
}

/// Five AdamW steps of masked-LM training through LoRA adapters on the query and value
/// projections (burn's `apply_lora`, as `prottrans finetune` uses it) on every device: the
/// first loss is the base model's (B starts at zero) and agrees with flex, the losses fall, and
/// only the adapters move. (Each backend draws its own random A, so later losses differ.)
#[test]
fn lora_steps_train_only_the_adapters_on_every_device() {
    use prottrans::burn::module::{Lora, ParamGroup};
    use prottrans::burn::store::ModuleSnapshot;
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let expected = Expected::load("bert_tiny");
    let frozen = |model: &BertForMaskedLm| -> Vec<(String, Vec<f32>)> {
        model
            .collect(None, None, false)
            .into_iter()
            .filter(|t| !t.name.contains("query") && !t.name.contains("value"))
            .map(|t| {
                let data = prottrans::burn::store::bridge::to_data(&t)
                    .unwrap()
                    .convert::<f32>();
                (t.name.clone(), data.try_to_vec::<f32>().unwrap())
            })
            .collect()
    };
    let run = |device: &Device| {
        let device = device.clone().autodiff();
        device.seed(7);
        let (_, model) = load_bert_for_masked_lm(fixture("bert_tiny"), &device).unwrap();
        let before = frozen(&model);
        let targets = ParamGroup::from_regex(r"attention\.(query|value)\.weight$").unwrap();
        let model = model.apply_lora(Lora::new(2, 4.0).set_param_group(targets));
        let batch = mlm_batch(&expected, &device);
        let (losses, trained) = optimised(MaskedLm::new(model, 1), 5, |m| {
            m.forward_loss(batch.clone()).loss
        });
        assert!(
            frozen(&trained.model) == before,
            "a frozen weight moved on {device:?}"
        );
        losses
    };
    let cpu = run(&reference());
    println!("ProtBert masked-LM steps through LoRA (q, v), first loss against flex's:");
    let mut runs = 0;
    for (name, device) in devices() {
        let losses = run(&device);
        let first = (losses[0] - cpu[0]).abs() / cpu[0].abs();
        println!("  {name:>12}: losses {losses:.4?}, first loss {first:.2e} from flex");
        assert!(first <= TRAINING_TOLERANCE, "{name}: {losses:?} vs {cpu:?}");
        assert!(
            losses.last() < losses.first(),
            "{name}: loss did not fall: {losses:?}"
        );
        runs += 1;
    }
    assert!(runs > 0, "no device to test");
}

/// Five AdamW steps of T5 denoising (every target position) from the same weights.
#[test]
fn t5_training_steps_agree_on_every_device() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let name = "t5_relu_tiny";
    let expected = Expected::load(name);
    let (shape, labels) = expected.ints("labels");
    let positions: Vec<i64> = (0..labels.len() as i64)
        .filter(|&i| labels[i as usize] != -100)
        .collect();
    let targets: Vec<i64> = positions.iter().map(|&i| labels[i as usize]).collect();
    let n = positions.len();
    let run = |device: &Device| {
        let device = device.clone().autodiff();
        let (_, model) = load_t5(fixture(name), &device).unwrap();
        let batch = T5Batch {
            input_ids: expected.int_tensor("input_ids", &device),
            attention_mask: Some(expected.int_tensor("attention_mask", &device)),
            decoder_input_ids: expected.int_tensor("decoder_input_ids", &device),
            target_positions: Tensor::from_data(TensorData::new(positions.clone(), [n]), &device),
            targets: Tensor::from_data(TensorData::new(targets.clone(), [n]), &device),
            corrupted: Tensor::<1, Int>::ones([n], &device),
        };
        assert_eq!(shape.len(), 2);
        optimise(SpanCorruption::new(model, 1), 5, |m| {
            m.forward_output(batch.clone()).loss
        })
    };
    let cpu = run(&reference());
    let runs: Vec<_> = devices()
        .into_iter()
        .map(|(name, device)| (name, run(&device)))
        .collect();
    report_training("ProtT5 denoising steps", &runs, &cpu);
}

/// The paper's heads, with weights made on flex and moved: same logits, same training steps.
#[test]
fn transfer_heads_agree_on_every_device() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let cpu_device = reference();
    let (b, l, d) = (3, 20, 16);
    let lengths = [20, 13, 7];
    let mask: Vec<f32> = (0..b * l)
        .map(|i| if i % l < lengths[i / l] { 1.0 } else { 0.0 })
        .collect();
    let features: Vec<f32> = (0..b * l * d)
        .map(|i| {
            if mask[i / d] == 1.0 {
                ((i * 7919) % 97) as f32 / 48.5 - 1.0
            } else {
                0.0
            }
        })
        .collect();
    // Per-residue targets for the 3-state classifier, -1 at padding (ignored).
    let targets: Vec<i64> = (0..b * l)
        .map(|i| if mask[i] == 1.0 { (i % 3) as i64 } else { -1 })
        .collect();
    let residue = ResidueHeadConfig::new(d)
        .with_dropout(0.0)
        .init(&cpu_device);
    let protein = ProteinHeadConfig::new(d)
        .with_dropout(0.0)
        .init(&cpu_device);

    let run = |device: &Device| {
        let features = Tensor::<3>::from_data(TensorData::new(features.clone(), [b, l, d]), device);
        let mask = Tensor::<2>::from_data(TensorData::new(mask.clone(), [b, l]), device);
        let mut logits = Vec::new();
        for out in residue
            .clone()
            .to_device(device)
            .forward(features.clone(), mask.clone())
        {
            logits.extend(values(out));
        }
        for out in protein
            .clone()
            .to_device(device)
            .forward(features.clone(), mask.clone())
        {
            logits.extend(values(out));
        }
        let autodiff = device.clone().autodiff();
        let features = features.to_device(&autodiff);
        let mask = mask.to_device(&autodiff);
        let targets =
            Tensor::<1, Int>::from_data(TensorData::new(targets.clone(), [b * l]), &autodiff);
        let losses = optimise(residue.clone().to_device(&autodiff).train(), 5, |head| {
            let dssp3 = head.forward(features.clone(), mask.clone()).remove(0);
            masked_cross_entropy(dssp3.reshape([b * l, 3]), targets.clone())
        });
        (logits, losses)
    };
    let (cpu_logits, cpu_losses) = run(&cpu_device);
    let mut rows = Vec::new();
    let mut runs = Vec::new();
    for (name, device) in devices() {
        let (logits, losses) = run(&device);
        rows.push((name.clone(), max_abs_diff(&logits, &cpu_logits)));
        runs.push((name, losses));
    }
    report_against_flex("Transfer heads' logits", &rows, FORWARD_TOLERANCE);
    report_training("Secondary-structure head steps", &runs, &cpu_losses);
}

/// Saving on a device and loading back, on the device and on flex, gives the same model.
#[test]
fn checkpoints_round_trip_on_every_device() {
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let expected = Expected::load("t5_relu_tiny");
    let mut rows = Vec::new();
    for (name, device) in devices() {
        let dir = tempfile::tempdir().unwrap();
        let (bert_config, bert) = load_bert_for_masked_lm(fixture("bert_tiny"), &device).unwrap();
        let (t5_config, t5) = load_t5(fixture("t5_relu_tiny"), &device).unwrap();
        save_bert_for_masked_lm(&bert, &bert_config, dir.path().join("bert")).unwrap();
        save_t5(&t5, &t5_config, dir.path().join("t5")).unwrap();
        let bert_ids = Expected::load("bert_tiny").int_tensor("input_ids", &device);
        let t5_ids = expected.int_tensor("input_ids", &device);
        let original = [
            values(bert.forward(EncoderInput::unpadded(bert_ids.clone()))),
            values(
                t5.encode(EncoderInput::unpadded(t5_ids.clone()))
                    .last_hidden_state,
            ),
        ];
        let mut worst = 0.0f32;
        let mut worst_on_cpu = 0.0f32;
        for target in [device.clone(), reference()] {
            let (_, bert) = load_bert_for_masked_lm(dir.path().join("bert"), &target).unwrap();
            let (_, t5) = load_t5(dir.path().join("t5"), &target).unwrap();
            let reloaded = [
                values(bert.forward(EncoderInput::unpadded(bert_ids.clone().to_device(&target)))),
                values(
                    t5.encode(EncoderInput::unpadded(t5_ids.clone().to_device(&target)))
                        .last_hidden_state,
                ),
            ];
            let diff = max_abs_diff(&original[0], &reloaded[0])
                .max(max_abs_diff(&original[1], &reloaded[1]));
            if target == device {
                worst = diff;
            } else {
                worst_on_cpu = diff;
            }
        }
        // On its own device a reloaded model computes bit for bit what the saved one did.
        assert_eq!(worst, 0.0, "{name}: reloaded model differs by {worst}");
        rows.push((name, worst, worst_on_cpu));
    }
    report(
        "Save on the device, load on the device / on flex",
        &rows,
        FORWARD_TOLERANCE,
    );
}

/// f16 and bf16: where a device supports the precision, ProtBert's logits stay within the
/// precision's accuracy of f32 and mixed-precision training steps lower the loss; where it does
/// not, asking for it is an error that names the precision.
#[test]
fn half_precision_inference_and_training_on_every_device() {
    use prottrans::models::cast_floats;
    use prottrans::train::{MixedPrecision, StepSettings};
    let _serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
    let expected = Expected::load("bert_tiny");
    let (_, mask) = expected.ints("attention_mask");
    let keep: Vec<bool> = mask.iter().map(|&m| m == 1).collect();
    let want = on_tokens(&expected.tensor("mlm_logits").1, &keep, 30);
    // Relative to the largest logit: f16 keeps 11 bits of mantissa (5e-4 per rounding), bf16 8
    // (4e-3), and two layers of roundings add up.
    let largest = want.iter().fold(0.0f32, |m, x| m.max(x.abs()));
    let tolerance = |p: Precision| largest * if p == Precision::F16 { 5e-3 } else { 4e-2 };
    let mut supported = 0;
    for (name, device) in devices() {
        for precision in [Precision::F16, Precision::Bf16] {
            if let Err(e) = precision.check(&device) {
                println!("  {name:>12} {precision}: unsupported: {e}");
                assert!(
                    e.to_string()
                        .contains(&format!("does not compute in {precision}")),
                    "{e}"
                );
                continue;
            }
            supported += 1;
            let (_, model) = load_bert_for_masked_lm(fixture("bert_tiny"), &device).unwrap();
            let model = cast_floats(model, precision.dtype());
            let input = EncoderInput::new(
                expected.int_tensor("input_ids", &device),
                expected.int_tensor("attention_mask", &device),
            );
            let logits = on_tokens(&values(model.forward(input)), &keep, 30);
            let deviation = max_abs_diff(&logits, &want);

            let autodiff = device.clone().autodiff();
            let (_, model) = load_bert_for_masked_lm(fixture("bert_tiny"), &autodiff).unwrap();
            let batch = mlm_batch(&expected, &autodiff);
            let trainer = MaskedLm::new(model, 1).with_steps(
                StepSettings::default().with_precision(MixedPrecision::new(precision, None)),
            );
            let losses = optimise(trainer, 5, |m| m.forward_loss(batch.clone()).loss);
            println!(
                "  {name:>12} {precision}: logits max deviation from transformers' f32 {deviation:.2e} (largest logit {largest:.1}), training losses {losses:.4?}"
            );
            assert!(
                deviation <= tolerance(precision),
                "{name} {precision}: logits deviate by {deviation}"
            );
            assert!(
                losses.iter().all(|l| l.is_finite()) && losses[4] < losses[0],
                "{name} {precision}: {losses:?}"
            );
        }
    }
    assert!(supported > 0, "no device computes in f16 or bf16");
}
