//! Throughput of the model code on each compiled-in backend, with the same workloads as
//! `benches/torch_reference.py` so the two can be compared on one machine in one run.
//!
//! ```sh
//! cargo bench --bench backends --features ndarray -- --device flex --device ndarray
//! python benches/torch_reference.py --threads 2
//! ```
//!
//! Prints one JSON object per device and workload.

use std::time::Instant;

use prottrans::burn::optim::{AdamWConfig, GradientsParams};
use prottrans::burn::tensor::{Device, Int, Tensor, TensorData};
use prottrans::prelude::*;
use prottrans::train::{MaskedLm, MlmBatch};
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};

struct Workload {
    name: &'static str,
    config: BertConfig,
    batch: usize,
    seq: usize,
    train: bool,
}

fn workloads() -> Vec<Workload> {
    let quickstart = BertConfig {
        hidden_size: 64,
        num_hidden_layers: 2,
        num_attention_heads: 4,
        intermediate_size: 256,
        max_position_embeddings: 130,
        ..BertConfig::default()
    };
    let small = BertConfig {
        hidden_size: 256,
        num_hidden_layers: 4,
        num_attention_heads: 4,
        intermediate_size: 1024,
        max_position_embeddings: 512,
        ..BertConfig::default()
    };
    // configs/tiny.toml's model, with its 2048-token batches.
    let tiny = BertConfig {
        hidden_size: 32,
        num_hidden_layers: 2,
        num_attention_heads: 4,
        intermediate_size: 64,
        max_position_embeddings: 66,
        ..BertConfig::default()
    };
    vec![
        Workload {
            name: "train_tiny",
            config: tiny,
            batch: 32,
            seq: 64,
            train: true,
        },
        Workload {
            name: "train_quickstart",
            config: quickstart,
            batch: 32,
            seq: 128,
            train: true,
        },
        Workload {
            name: "train_small",
            config: small.clone(),
            batch: 16,
            seq: 256,
            train: true,
        },
        Workload {
            name: "infer_small",
            config: BertConfig {
                max_position_embeddings: 514,
                ..small
            },
            batch: 8,
            seq: 512,
            train: false,
        },
    ]
}

/// `[CLS] random residues [SEP]` in every row; 15% of residue positions predicted.
fn batch(w: &Workload, device: &Device) -> MlmBatch {
    let mut rng = StdRng::seed_from_u64(0);
    let mut ids = vec![0i64; w.batch * w.seq];
    let mut residue_positions = Vec::new();
    for row in 0..w.batch {
        for col in 0..w.seq {
            let flat = row * w.seq + col;
            ids[flat] = match col {
                0 => 2,
                c if c == w.seq - 1 => 3,
                _ => {
                    residue_positions.push(flat as i64);
                    rng.random_range(5..25)
                }
            };
        }
    }
    residue_positions.shuffle(&mut rng);
    residue_positions.truncate(residue_positions.len() * 15 / 100);
    let labels: Vec<i64> = residue_positions.iter().map(|&p| ids[p as usize]).collect();
    let n = labels.len();
    MlmBatch {
        input_ids: Tensor::from_data(TensorData::new(ids, [w.batch, w.seq]), device),
        attention_mask: Some(Tensor::<2, Int>::ones([w.batch, w.seq], device)),
        positions: Tensor::from_data(TensorData::new(residue_positions, [n]), device),
        labels: Tensor::from_data(TensorData::new(labels, [n]), device),
    }
}

fn time(iters: usize, mut f: impl FnMut()) -> (f64, f64) {
    for _ in 0..3 {
        f();
    }
    let mut samples: Vec<f64> = (0..iters)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    let mean = samples.iter().sum::<f64>() / samples.len() as f64;
    (samples[samples.len() / 2], mean)
}

fn run(spec: &DeviceSpec, w: &Workload, iters: usize) -> Result<String, BackendError> {
    let device = spec.probe()?;
    let (median, mean) = if w.train {
        let device = device.autodiff();
        let mut model = MaskedLm::new(w.config.init(&device), 1);
        let mut optim = AdamWConfig::new()
            .with_epsilon(1e-8)
            .with_weight_decay(0.01)
            .init();
        let input = batch(w, &device);
        time(iters, || {
            let output = model.forward_loss(input.clone());
            let loss = output.loss.clone();
            let grads = GradientsParams::from_grads(loss.backward(), &model);
            model = optim.step(1e-3, model.clone(), grads);
            let _ = loss.into_scalar::<f32>();
        })
    } else {
        let model = w.config.init_model(&device);
        let input = batch(w, &device);
        time(iters, || {
            let out = model.encode(EncoderInput {
                attention_mask: input.attention_mask.clone(),
                ..EncoderInput::unpadded(input.input_ids.clone())
            });
            let _ = out.last_hidden_state.sum().into_scalar::<f32>();
        })
    };
    let tokens = (w.batch * w.seq) as f64;
    Ok(format!(
        r#"{{"impl": "prottrans-{spec}", "workload": "{}", "median_ms": {median:.2}, "mean_ms": {mean:.2}, "steps_per_s": {:.2}, "tokens_per_s": {:.0}, "threads": {}}}"#,
        w.name,
        1e3 / median,
        tokens / (median / 1e3),
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1)
    ))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let value_of = |flag: &str| -> Vec<String> {
        args.windows(2)
            .filter(|w| w[0] == flag)
            .map(|w| w[1].clone())
            .collect()
    };
    let mut devices: Vec<DeviceSpec> = value_of("--device")
        .iter()
        .map(|d| d.parse().unwrap_or_else(|e| panic!("{e}")))
        .collect();
    if devices.is_empty() {
        devices.push(DeviceSpec::Cpu);
    }
    let iters = value_of("--iters")
        .first()
        .and_then(|n| n.parse().ok())
        .unwrap_or(10);
    let only = value_of("--workloads");
    for spec in &devices {
        for w in workloads() {
            if !only.is_empty() && !only.iter().any(|o| o.split(',').any(|n| n == w.name)) {
                continue;
            }
            match run(spec, &w, iters) {
                Ok(line) => println!("{line}"),
                Err(e) => eprintln!("{spec}: {e}"),
            }
        }
    }
}
