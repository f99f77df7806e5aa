//! `prottrans init-model`: a randomly initialised model of a recipe's shape.

use std::path::PathBuf;

use anyhow::Context;
use prottrans::prelude::*;

#[derive(clap::Args, Debug)]
pub struct InitModelArgs {
    /// Training recipe (TOML) whose [model] section gives the shape.
    #[arg(long)]
    config: PathBuf,
    /// Output directory (config.json + model.safetensors).
    #[arg(long)]
    out: PathBuf,
    /// Seed of the initialisation (default: the recipe's data seed, as `pretrain` uses).
    #[arg(long)]
    seed: Option<u64>,
}

pub fn run(InitModelArgs { config, out, seed }: InitModelArgs) -> anyhow::Result<()> {
    let recipe = PretrainConfig::from_toml_file(&config)?;
    let device = DeviceSpec::Cpu.device()?;
    device.seed(seed.unwrap_or(recipe.data.seed));
    let written =
        match &recipe.model {
            ModelConfig::Bert(bert) => save_bert_for_masked_lm(&bert.init(&device), bert, &out)
                .map(|()| {
                    format!(
                        "{}-layer, width-{} BERT",
                        bert.num_hidden_layers, bert.hidden_size
                    )
                }),
            ModelConfig::Albert(albert) => {
                save_albert_for_masked_lm(&albert.init(&device), albert, &out).map(|()| {
                    format!(
                        "{}-pass, width-{} ALBERT",
                        albert.num_hidden_layers, albert.hidden_size
                    )
                })
            }
            ModelConfig::Electra(electra) => save_electra(&electra.init(&device), electra, &out)
                .map(|()| {
                    format!(
                        "{}-layer, width-{} ELECTRA discriminator (generator in {}/)",
                        electra.num_hidden_layers,
                        electra.hidden_size,
                        prottrans::import::ELECTRA_GENERATOR_DIR
                    )
                }),
            ModelConfig::T5(t5) => save_t5(&t5.init(&device), t5, &out).map(|()| {
                format!(
                    "{}+{}-layer, width-{} T5",
                    t5.num_layers,
                    t5.decoder_layers(),
                    t5.d_model
                )
            }),
            ModelConfig::Xlnet(xlnet) => save_xlnet_lm_head(&xlnet.init(&device), xlnet, &out)
                .and_then(|()| {
                    // The vocabulary `prottrans pretrain` trains XLNet with, for `embed`.
                    let path = out.join("vocab.txt");
                    std::fs::write(
                        &path,
                        prottrans::data::Vocabulary::prottrans_xlnet().to_vocab_txt(),
                    )
                    .map_err(|source| prottrans::import::ImportError::Io { path, source })
                })
                .map(|()| format!("{}-layer, width-{} XLNet", xlnet.n_layer, xlnet.d_model)),
            ModelConfig::Esm(esm) => save_pretrained(&esm.init(&device), esm, &out).map(|()| {
                format!(
                    "{}-layer, width-{} ESM-2",
                    esm.num_hidden_layers, esm.hidden_size
                )
            }),
            ModelConfig::TransfoXl(txl) => save_transfo_xl_lm_head(&txl.init(&device), txl, &out)
                .map(|()| {
                    format!(
                        "{}-layer, width-{} Transformer-XL",
                        txl.n_layer, txl.d_model
                    )
                }),
        }
        .with_context(|| format!("writing {}", out.display()))?;
    println!("random {written} written to {}", out.display());
    Ok(())
}
