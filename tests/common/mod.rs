//! Helpers shared by the integration tests.
#![allow(dead_code)] // each test file uses its own subset

use std::path::{Path, PathBuf};

use prottrans::burn::tensor::{Device, Int, Tensor, TensorData};
use prottrans::prelude::*;
use safetensors::{Dtype, SafeTensors};

/// The device under test: `PROTTRANS_TEST_DEVICE` (e.g. `wgpu`, with that feature built in),
/// else the default CPU backend.
pub fn device() -> Device {
    let spec: DeviceSpec = std::env::var("PROTTRANS_TEST_DEVICE")
        .unwrap_or_else(|_| "cpu".into())
        .parse()
        .unwrap();
    spec.device().unwrap()
}

/// The standard output of a finished `prottrans` command, failing the test (with its standard
/// error) unless it succeeded.
pub fn succeeds(output: std::process::Output) -> String {
    let stdout = String::from_utf8_lossy(&output.stdout).to_string();
    assert!(
        output.status.success(),
        "prottrans failed: {}\n{stdout}",
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

/// The repository root (this module is also used by the tests of crates/cli).
pub fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .find(|dir| dir.join("Cargo.lock").is_file())
        .expect("tests run inside the repository")
        .to_path_buf()
}

/// Largest |a - b| over positions where `mask` is 1; `width` values per position.
pub fn max_diff_on_tokens(actual: &[f32], expected: &[f32], mask: &[i64], width: usize) -> f32 {
    assert_eq!(actual.len(), expected.len());
    assert_eq!(mask.len() * width, actual.len());
    let mut max = 0.0f32;
    for (token, &m) in mask.iter().enumerate() {
        if m == 0 {
            continue;
        }
        for i in token * width..(token + 1) * width {
            max = max.max((actual[i] - expected[i]).abs());
        }
    }
    max
}

/// A tensor's values as f32.
pub fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().convert::<f32>().try_to_vec::<f32>().unwrap()
}

/// A committed fixture directory.
pub fn fixture(name: &str) -> PathBuf {
    repo().join("tests/fixtures").join(name)
}

/// A committed data sample.
pub fn sample(name: &str) -> PathBuf {
    repo().join("data/samples").join(name)
}

/// The tensors `transformers` computed for a fixture (`expected.safetensors`).
pub struct Expected {
    bytes: Vec<u8>,
}

impl Expected {
    pub fn load(fixture_name: &str) -> Self {
        let path = fixture(fixture_name).join("expected.safetensors");
        Self {
            bytes: std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())),
        }
    }

    pub fn tensor(&self, name: &str) -> (Vec<usize>, Vec<f32>) {
        let tensors = SafeTensors::deserialize(&self.bytes).unwrap();
        let view = tensors.tensor(name).unwrap();
        assert_eq!(view.dtype(), Dtype::F32, "{name}");
        let values = view
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        (view.shape().to_vec(), values)
    }

    pub fn ints(&self, name: &str) -> (Vec<usize>, Vec<i64>) {
        let tensors = SafeTensors::deserialize(&self.bytes).unwrap();
        let view = tensors.tensor(name).unwrap();
        assert_eq!(view.dtype(), Dtype::I64, "{name}");
        let values = view
            .data()
            .chunks_exact(8)
            .map(|b| i64::from_le_bytes(b.try_into().unwrap()))
            .collect();
        (view.shape().to_vec(), values)
    }

    pub fn int_tensor(&self, name: &str, device: &Device) -> Tensor<2, Int> {
        let (shape, values) = self.ints(name);
        Tensor::from_data(TensorData::new(values, [shape[0], shape[1]]), device)
    }
}

/// A small random ProtBert-vocabulary model with room for 1024 residues, saved in the
/// Hugging Face layout (for tests on real-length proteins).
pub fn save_random_bert(dir: &Path, device: &Device) -> BertConfig {
    let config = BertConfig {
        hidden_size: 32,
        num_hidden_layers: 2,
        num_attention_heads: 4,
        intermediate_size: 64,
        max_position_embeddings: 1026,
        ..BertConfig::default()
    };
    save_bert_for_masked_lm(&config.init(device), &config, dir).unwrap();
    config
}

/// A small random ALBERT (ProtBert's vocabulary, as `prottrans pretrain` trains it, with its
/// `vocab.txt`) with room for 1024 residues, saved in the Hugging Face layout.
pub fn save_random_albert(dir: &Path, device: &Device) -> AlbertConfig {
    let config = AlbertConfig {
        vocab_size: 30,
        embedding_size: 16,
        hidden_size: 32,
        num_hidden_layers: 2,
        num_attention_heads: 4,
        intermediate_size: 64,
        max_position_embeddings: 1026,
        ..AlbertConfig::default()
    };
    save_albert_for_masked_lm(&config.init(device), &config, dir).unwrap();
    std::fs::write(
        dir.join("vocab.txt"),
        Vocabulary::prot_bert().to_vocab_txt(),
    )
    .unwrap();
    config
}

/// A small random ELECTRA pair (discriminator in `dir`, generator in `dir/generator`) with room
/// for 1024 residues.
pub fn save_random_electra(dir: &Path, device: &Device) -> ElectraConfig {
    let config = ElectraConfig {
        embedding_size: 16,
        hidden_size: 32,
        num_hidden_layers: 2,
        num_attention_heads: 4,
        intermediate_size: 64,
        max_position_embeddings: 1026,
        ..ElectraConfig::default()
    };
    save_electra(&config.init(device), &config, dir).unwrap();
    config
}

/// A small random BERT in `dir/model`, and the first `count` real proteins of at most
/// `max_residues` residues of the validation sample in `dir/proteins.fasta`.
pub fn random_model_and_proteins(
    dir: &Path,
    count: usize,
    max_residues: usize,
) -> (PathBuf, PathBuf) {
    let model = dir.join("model");
    save_random_bert(&model, &DeviceSpec::Cpu.device().unwrap());
    let mut fasta = String::new();
    let records = FastaReader::open(sample("uniprot_valid.fasta.gz"))
        .unwrap()
        .map(Result::unwrap)
        .filter(|record| record.sequence.len() <= max_residues)
        .take(count);
    for record in records {
        fasta.push_str(&format!(
            ">{}\n{}\n",
            record.header,
            String::from_utf8_lossy(&record.sequence)
        ));
    }
    let input = dir.join("proteins.fasta");
    std::fs::write(&input, fasta).unwrap();
    (model, input)
}

/// Every array of an embedding file, sorted by key.
pub fn embedding_contents(path: &Path) -> Vec<(String, prottrans::embed::ndarray::ArrayD<f32>)> {
    let mut file = prottrans::embed::output::EmbeddingFile::open(path).unwrap();
    let mut keys = file.keys().unwrap();
    keys.sort();
    keys.into_iter()
        .map(|k| {
            let v = file.read(&k).unwrap();
            (k, v)
        })
        .collect()
}
