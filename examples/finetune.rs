//! Fine-tuning with LoRA, end to end: adapters on a checkpoint's attention projections and the
//! paper's per-residue head train together on real PDB chains; the run writes the adapter in
//! Hugging Face PEFT's layout and a head that `evaluate` scores on held-out chains by running
//! the base model with the adapter.
//!
//! ```sh
//! cargo run --release --example finetune -- [CHECKPOINT_DIR]
//! ```
//!
//! CHECKPOINT_DIR is a Hugging Face checkpoint (`prottrans pretrain`'s `model/`, a download of
//! `Rostlab/prot_bert` or `Rostlab/prot_t5_xl_half_uniref50-enc`); without it, the tiny BERT of
//! the test fixtures. Data: the committed samples of `data/samples/` (ProMod3's 8-state DSSP,
//! split by 30% identity clusters), chains of at most 62 residues so that the tiny model (64
//! positions) and a 2-core CPU manage in seconds.

use prottrans::import::LoraAdapter;
use prottrans::prelude::*;
use prottrans::transfer::finetune::ADAPTER_DIR;
use prottrans::transfer::{Evaluation, FinetuneOptions, Finetuning, LabelledSet, Method, Task};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let device = DeviceSpec::Cpu.device()?;
    let model = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "tests/fixtures/bert_tiny".into());
    let max_length = 62;
    let read = |name: &str| -> Result<LabelledSet, Box<dyn std::error::Error>> {
        let mut set = LabelledSet::read(format!("data/samples/{name}"), Task::SecondaryStructure)?;
        let dropped = set.drop_longer_than(max_length);
        println!(
            "{}: {} chains ({} longer than {max_length} left out)",
            set.path.display(),
            set.records.len(),
            dropped.len()
        );
        Ok(set)
    };
    let (train, valid, test) = (
        read("ss8_train.csv")?,
        read("ss8_valid.csv")?,
        read("ss8_test.csv")?,
    );

    let out = std::path::PathBuf::from("runs/finetune");
    if out.exists() {
        std::fs::remove_dir_all(&out)?;
    }
    let summary = prottrans::transfer::finetune(Finetuning {
        model: model.into(),
        train,
        valid,
        max_length: Some(max_length),
        options: FinetuneOptions {
            // Rank-4 adapters on q, k, v and o (the default), alpha 8.
            method: Method::default(),
            epochs: 5,
            ..FinetuneOptions::default()
        },
        merge: false,
        out: out.clone(),
        device: device.clone(),
        resume: false,
    })?;
    println!(
        "{} of {} parameters trained ({} layers adapted), {:.1} s per epoch, kept epoch {}",
        summary.trainable_parameters,
        summary.total_parameters,
        summary.adapted_layers.len(),
        summary.seconds_per_epoch,
        summary.best_epoch
    );
    let adapter = LoraAdapter::read(out.join(ADAPTER_DIR))?;
    println!(
        "adapter: r = {}, lora_alpha = {}, {} pairs in {}",
        adapter.config().r,
        adapter.config().lora_alpha,
        adapter.targets().len(),
        adapter.dir().display()
    );

    let report = evaluate(Evaluation {
        head: out.clone(),
        test,
        embeddings: None,
        model: None,
        adapter: None,
        out: None,
        tsne: false,
        device,
    })?;
    print!("{report}");
    Ok(())
}
