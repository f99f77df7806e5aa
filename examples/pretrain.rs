//! Pretrain a tiny ProtBert on the bundled UniProt sample from Rust, then load the result back.
//!
//! ```sh
//! cargo run --release --example pretrain
//! ```

use prottrans::prelude::*;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let device = DeviceSpec::Cpu.device()?;
    let mut config = PretrainConfig::from_toml_file("configs/tiny.toml")?;
    config.schedule.steps = 100;
    config.schedule.checkpoint_every = 50;
    let out = std::env::temp_dir().join("prottrans-example-pretrain");
    let _ = std::fs::remove_dir_all(&out);

    let report = pretrain(PretrainRun {
        config,
        train: "data/samples/uniprot_train.fasta.gz".into(),
        valid: "data/samples/uniprot_valid.fasta.gz".into(),
        out: out.clone(),
        device: device.clone(),
        extra_devices: Vec::new(),
        strategy: DataParallel::Gather,
        resume: false,
    })?;
    println!("{report}");

    // The final model is a Hugging Face checkpoint directory.
    let (config, model) = load_bert_for_masked_lm(&report.model_dir, &device)?;
    println!(
        "reloaded: {} layers, width {}, {} parameters",
        config.num_hidden_layers,
        config.hidden_size,
        prottrans::burn::module::Module::num_params(&model)
    );
    Ok(())
}
