//! Fuzzing entry points for every reader of a user's file.
//!
//! Each target takes the raw bytes of one file, writes them where prottrans reads that file
//! (inside a scratch directory) and runs the reader the CLI runs, then uses what it read. An
//! error is the expected outcome of most inputs; a panic, an abort or an allocation beyond the
//! fuzzer's limit is a finding.
//!
//! The same functions serve the coverage-guided targets in `fuzz/` (cargo-fuzz, libFuzzer,
//! nightly) and the replay of their committed corpora in this crate's tests (stable, in CI).

use std::path::Path;

use prottrans::burn::tensor::FloatDType;
use prottrans::prelude::*;
use prottrans::transfer::Task;

/// One fuzz target: its name (also the folder of its corpus, `fuzz/corpus/NAME`) and its body.
pub struct Target {
    /// The cargo-fuzz target and corpus folder name.
    pub name: &'static str,
    /// Runs one input inside the scratch directory.
    pub run: fn(&Path, &[u8]),
}

/// Every target, in the order of the list of user files.
pub const TARGETS: &[Target] = &[
    Target {
        name: "fasta",
        run: fasta,
    },
    Target {
        name: "labelled_csv",
        run: labelled_csv,
    },
    Target {
        name: "recipe",
        run: recipe,
    },
    Target {
        name: "config_json",
        run: config_json,
    },
    Target {
        name: "vocab_txt",
        run: vocab_txt,
    },
    Target {
        name: "spiece_model",
        run: spiece_model,
    },
    Target {
        name: "tokenizer_json",
        run: tokenizer_json,
    },
    Target {
        name: "safetensors",
        run: safetensors,
    },
    Target {
        name: "pytorch",
        run: pytorch,
    },
    Target {
        name: "bpk",
        run: bpk,
    },
];

/// The target called `name`.
pub fn target(name: &str) -> Option<&'static Target> {
    TARGETS.iter().find(|t| t.name == name)
}

/// A scratch directory for this process (`$TMPDIR/prottrans-fuzz-PID`, made on first use and left
/// behind at exit), for the cargo-fuzz targets.
pub fn scratch() -> &'static Path {
    static SCRATCH: std::sync::OnceLock<std::path::PathBuf> = std::sync::OnceLock::new();
    SCRATCH.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("prottrans-fuzz-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("the temporary directory is writable");
        dir
    })
}

/// A tiny BERT checkpoint (the parity fixture), whose parts stand beside the fuzzed one.
const BERT_CONFIG: &[u8] =
    include_bytes!("../../../tests/fixtures/bert_tiny_encoder_f16/config.json");
const BERT_SAFETENSORS: &[u8] =
    include_bytes!("../../../tests/fixtures/bert_tiny_encoder_f16/model.safetensors");
const BERT_PT_CONFIG: &[u8] =
    include_bytes!("../../../tests/fixtures/bert_tiny_encoder_f16_pt/config.json");

/// Proteins encoded with every tokenizer read: standard, rare, unknown and lower-case letters.
const PROTEINS: &[&[u8]] = &[
    b"MKTAYIAKQR",
    b"ACDEFGHIKLMNPQRSTVWYXUZBO",
    b"mktay",
    b"*-.",
];

fn write(path: &Path, bytes: &[u8]) {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("the scratch directory is writable");
    }
    std::fs::write(path, bytes).expect("the scratch directory is writable");
}

fn device() -> prottrans::burn::tensor::Device {
    let spec: DeviceSpec = "cpu".parse().expect("cpu is a device");
    spec.device().expect("the CPU backend is compiled in")
}

fn use_tokenizer(tokenizer: &Tokenizer) {
    for protein in PROTEINS {
        if let Ok(ids) = tokenizer.encode("fuzz", protein) {
            let _ = tokenizer.decode(&ids);
        }
    }
}

/// FASTA, plain or gzip (needletail tells them apart by their first bytes), as `embed` reads it.
pub fn fasta(scratch: &Path, data: &[u8]) {
    let path = scratch.join("input.fasta");
    write(&path, data);
    for tokenizer in [Tokenizer::prot_bert(), Tokenizer::prot_t5()] {
        if let Ok(store) = SequenceStore::from_fasta(&path, &tokenizer) {
            let _ = (store.total_residues(), store.lengths());
        }
    }
}

/// A labelled CSV of either task (the first byte picks it), as `train-head` reads it.
pub fn labelled_csv(scratch: &Path, data: &[u8]) {
    let Some((&selector, text)) = data.split_first() else {
        return;
    };
    let task = if selector % 2 == 0 {
        Task::SecondaryStructure
    } else {
        Task::Localization
    };
    let path = scratch.join("labels.csv");
    write(&path, text);
    if let Ok(set) = LabelledSet::read(&path, task) {
        for index in 0..set.label_sets.len() {
            let _ = (set.has_labels(index), set.class_counts(index));
        }
        let _ = set.residues();
    }
}

/// A pretraining recipe, as `pretrain` and `init-model` read it, and everything derived from it.
pub fn recipe(scratch: &Path, data: &[u8]) {
    let path = scratch.join("recipe.toml");
    write(&path, data);
    if let Ok(recipe) = PretrainConfig::from_toml_file(&path) {
        let _ = (recipe.masking(), recipe.electra(), recipe.autoregressive());
        let _ = (recipe.objective_settings(), recipe.corruption());
        let _ = (
            recipe.special_tokens(),
            recipe.planner(),
            recipe.num_epochs(),
        );
        let _ = (
            recipe.optimizer(),
            recipe.mixed_precision(),
            recipe.scheduler(),
        );
    }
}

/// Writes a checkpoint directory (`config.json` and one weights file) and opens, summarises and
/// loads it as `embed` and `inspect` do.
fn use_checkpoint(dir: &Path, config: &[u8], weights_file: &str, weights: &[u8]) {
    write(&dir.join("config.json"), config);
    write(&dir.join(weights_file), weights);
    let Ok(checkpoint) = Checkpoint::open(dir) else {
        return;
    };
    let _ = checkpoint.summary();
    let _ = prottrans::import::checkpoint_tokenizer(dir, checkpoint.config());
    let _ = checkpoint.load_encoder(&device(), FloatDType::F32);
}

/// A checkpoint's `config.json`, beside the tiny BERT's weights, opened and loaded as `embed`
/// and `inspect` do.
pub fn config_json(scratch: &Path, data: &[u8]) {
    use_checkpoint(
        &scratch.join("config_json"),
        data,
        "model.safetensors",
        BERT_SAFETENSORS,
    );
}

/// A BERT-style `vocab.txt`, as read beside a checkpoint.
pub fn vocab_txt(scratch: &Path, data: &[u8]) {
    let path = scratch.join("vocab.txt");
    write(&path, data);
    let Ok(text) = std::fs::read_to_string(&path) else {
        return;
    };
    if let Ok(vocabulary) = Vocabulary::from_bert_vocab_txt(&path.display().to_string(), &text) {
        let _ = vocabulary.to_vocab_txt();
        use_tokenizer(&Tokenizer::new(vocabulary));
    }
}

/// A sentencepiece `spiece.model`, read alone (ALBERT, XLNet) and as T5's, with 100 sentinels.
pub fn spiece_model(scratch: &Path, data: &[u8]) {
    let path = scratch.join("spiece.model");
    write(&path, data);
    if let Ok(vocabulary) = Vocabulary::from_sentencepiece_file(&path) {
        use_tokenizer(&Tokenizer::new(vocabulary));
    }
    if let Ok(vocabulary) = Vocabulary::from_t5_files(&path, 100, None) {
        use_tokenizer(&Tokenizer::new(vocabulary));
    }
}

/// A Hugging Face `tokenizer.json`.
pub fn tokenizer_json(scratch: &Path, data: &[u8]) {
    let path = scratch.join("tokenizer.json");
    write(&path, data);
    if let Ok(vocabulary) = Vocabulary::from_tokenizer_json_file(&path) {
        use_tokenizer(&Tokenizer::new(vocabulary));
    }
}

/// A `model.safetensors` beside the tiny BERT's config, opened and loaded.
pub fn safetensors(scratch: &Path, data: &[u8]) {
    use_checkpoint(
        &scratch.join("safetensors"),
        BERT_CONFIG,
        "model.safetensors",
        data,
    );
}

/// A `pytorch_model.bin` (zip of a pickle and tensor records) beside the tiny BERT's config.
pub fn pytorch(scratch: &Path, data: &[u8]) {
    use_checkpoint(
        &scratch.join("pytorch"),
        BERT_PT_CONFIG,
        "pytorch_model.bin",
        data,
    );
}

/// A burn-train checkpoint record (`.bpk`), as `--resume` checks it: the bytes stand for the
/// model, optimiser and scheduler records of one epoch.
pub fn bpk(scratch: &Path, data: &[u8]) {
    let out = scratch.join("bpk");
    for record in ["model", "optim", "scheduler"] {
        write(
            &out.join("checkpoint").join(format!("{record}-1.bpk")),
            data,
        );
    }
    let _ = prottrans::train::pretrain::latest_readable_checkpoint(&out);
}
