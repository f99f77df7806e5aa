//! Broken checkpoints give one error that names the file and every offending key.

mod common;

use std::collections::BTreeMap;
use std::path::Path;

use common::{device, fixture};
use prottrans::embed::{Embedder, Precision};
use prottrans::import::Checkpoint;
use safetensors::tensor::TensorView;
use safetensors::{Dtype, SafeTensors};

type Tensors = BTreeMap<String, (Dtype, Vec<usize>, Vec<u8>)>;

/// A copy of the `bert_tiny` fixture whose `model.safetensors` went through `edit`.
fn edited_fixture(edit: impl FnOnce(&mut Tensors)) -> tempfile::TempDir {
    let source = fixture("bert_tiny");
    let bytes = std::fs::read(source.join("model.safetensors")).unwrap();
    let file = SafeTensors::deserialize(&bytes).unwrap();
    let mut tensors: Tensors = file
        .tensors()
        .into_iter()
        .map(|(name, view)| {
            (
                name,
                (view.dtype(), view.shape().to_vec(), view.data().to_vec()),
            )
        })
        .collect();
    edit(&mut tensors);
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(source.join("config.json"), dir.path().join("config.json")).unwrap();
    let views: Vec<(String, TensorView<'_>)> = tensors
        .iter()
        .map(|(name, (dtype, shape, data))| {
            (
                name.clone(),
                TensorView::new(*dtype, shape.clone(), data).unwrap(),
            )
        })
        .collect();
    safetensors::serialize_to_file(views, None, &dir.path().join("model.safetensors")).unwrap();
    dir
}

fn load_error(dir: &Path) -> String {
    let err = Embedder::load(dir, &device()).unwrap_err().to_string();
    assert!(
        err.contains("model.safetensors") || err.contains("config.json"),
        "no file named: {err}"
    );
    err
}

#[test]
fn missing_extra_and_misshaped_tensors_are_all_named_in_one_error() {
    let dir = edited_fixture(|t| {
        t.remove("bert.encoder.layer.1.attention.self.key.weight");
        let (dtype, _, data) = t["cls.predictions.bias"].clone();
        t.insert(
            "bert.encoder.layer.0.extra.weight".into(),
            (dtype, vec![30], data),
        );
        let (dtype, shape, mut data) = t["bert.encoder.layer.0.intermediate.dense.bias"].clone();
        data.truncate(data.len() / 2);
        t.insert(
            "bert.encoder.layer.0.intermediate.dense.bias".into(),
            (dtype, vec![shape[0] / 2], data),
        );
    });
    let err = load_error(dir.path());
    println!("{err}");
    assert!(
        err.contains("encoder.layer.1.attention.self.key.weight"),
        "missing key not named: {err}"
    );
    assert!(
        err.contains("encoder.layer.0.extra.weight"),
        "unexpected key not named: {err}"
    );
    assert!(
        err.contains("encoder.layer.0.intermediate.dense.bias"),
        "misshaped key not named: {err}"
    );
    assert!(
        err.contains("[32]") && err.contains("[64]"),
        "shapes not given: {err}"
    );
}

#[test]
fn a_truncated_weights_file_is_named() {
    let dir = edited_fixture(|_| {});
    let path = dir.path().join("model.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() - 100]).unwrap();
    let err = load_error(dir.path());
    println!("{err}");
    assert!(err.contains(&path.display().to_string()), "{err}");
    let path_bin = fixture("bert_tiny_pt").join("pytorch_model.bin");
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        fixture("bert_tiny_pt").join("config.json"),
        dir.path().join("config.json"),
    )
    .unwrap();
    let bytes = std::fs::read(&path_bin).unwrap();
    std::fs::write(
        dir.path().join("pytorch_model.bin"),
        &bytes[..bytes.len() / 2],
    )
    .unwrap();
    let err = Embedder::load(dir.path(), &device())
        .unwrap_err()
        .to_string();
    println!("{err}");
    assert!(err.contains("pytorch_model.bin"), "{err}");
}

#[test]
fn weights_of_another_architecture_are_refused() {
    // T5-style keys under a BERT config.
    let dir = edited_fixture(|t| {
        let value = t["cls.predictions.bias"].clone();
        t.insert(
            "encoder.block.0.layer.0.SelfAttention.q.weight".into(),
            value.clone(),
        );
        t.insert("shared.weight".into(), value);
    });
    let err = Checkpoint::open(dir.path()).unwrap_err().to_string();
    println!("{err}");
    assert!(err.contains("`bert`") && err.contains("`t5`"), "{err}");
}

#[test]
fn a_directory_without_weights_is_named() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        fixture("bert_tiny").join("config.json"),
        dir.path().join("config.json"),
    )
    .unwrap();
    let err = Checkpoint::open(dir.path()).unwrap_err().to_string();
    assert!(
        err.contains("model.safetensors or pytorch_model.bin"),
        "{err}"
    );
}

#[test]
fn unused_tensors_are_skipped_and_named_unless_loading_is_strict() {
    let dir = edited_fixture(|t| {
        let (dtype, _, data) = t["cls.predictions.bias"].clone();
        t.insert("cls.species.weight".into(), (dtype, vec![30], data.clone()));
        t.insert("bert.encoder.extra.weight".into(), (dtype, vec![30], data));
    });
    let embedder = Embedder::load(dir.path(), &device()).unwrap();
    let skipped = embedder.skipped_tensors();
    for name in ["cls.species.weight", "bert.encoder.extra.weight"] {
        assert!(
            skipped.iter().any(|s| s == name),
            "{name} not in {skipped:?}"
        );
    }
    let strict = Checkpoint::open(dir.path()).unwrap().strict(true);
    let err = Embedder::load_checkpoint(&strict, &device(), Precision::F32)
        .unwrap_err()
        .to_string();
    assert!(err.contains("refused by strict loading"), "{err}");
    for name in ["cls.species.weight", "bert.encoder.extra.weight"] {
        assert!(err.contains(name), "{name} not named: {err}");
    }
    // The fixture itself has nothing unused for BertForMaskedLM: strict loading takes it.
    let fixture = Checkpoint::open(fixture("bert_tiny")).unwrap().strict(true);
    fixture
        .load::<prottrans::models::BertForMaskedLm>(&device())
        .unwrap();
}
