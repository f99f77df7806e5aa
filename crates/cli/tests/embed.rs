//! `prottrans embed` as users run it: interrupted and resumed, at reduced precision, and
//! (with the `hdf5` feature) read back by h5py.

#[path = "../../../tests/common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use common::{fixture, succeeds};
use prottrans::embed::ndarray::ArrayD;
use prottrans::embed::output::EmbeddingFile;
use prottrans::prelude::*;

fn prottrans() -> Command {
    Command::new(env!("CARGO_BIN_EXE_prottrans"))
}

fn model_and_input(dir: &Path) -> (PathBuf, PathBuf) {
    common::random_model_and_proteins(dir, 120, 500)
}

fn contents(path: &Path) -> Vec<(String, ArrayD<f32>)> {
    common::embedding_contents(path)
}

fn embed_args(model: &Path, input: &Path, output: &Path) -> Vec<String> {
    [
        "embed",
        "--model",
        &model.display().to_string(),
        "--input",
        &input.display().to_string(),
        "--output",
        &output.display().to_string(),
        "--max-batch",
        "8",
    ]
    .map(String::from)
    .to_vec()
}

/// Killed (SIGKILL) in the middle, then resumed: the same file as one uninterrupted run.
#[test]
fn an_interrupted_run_resumes_to_the_same_output() {
    let dir = tempfile::tempdir().unwrap();
    let (model, input) = model_and_input(dir.path());
    let whole = dir.path().join("whole.npz");
    succeeds(
        prottrans()
            .args(embed_args(&model, &input, &whole))
            .output()
            .unwrap(),
    );

    let resumed = dir.path().join("resumed.npz");
    let partial = dir.path().join("resumed.npz.partial");
    let mut child = prottrans()
        .args(embed_args(&model, &input, &resumed))
        .args(["--batch-delay-ms", "100"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    let parts = |dir: &Path| {
        std::fs::read_dir(dir)
            .map(|d| {
                d.filter_map(Result::ok)
                    .filter(|e| e.file_name().to_string_lossy().starts_with("part-"))
                    .count()
            })
            .unwrap_or(0)
    };
    while parts(&partial) < 3 {
        assert!(Instant::now() < deadline, "no progress within 60 s");
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run finished before it could be interrupted"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(
        !resumed.exists(),
        "no output may appear before the run completes"
    );
    let done = parts(&partial);
    assert!(
        (3..15).contains(&done),
        "{done} parts at the interruption (15 batches in all)"
    );

    // Without --resume the unfinished run is not clobbered.
    let refused = prottrans()
        .args(embed_args(&model, &input, &resumed))
        .output()
        .unwrap();
    assert!(!refused.status.success());
    assert!(String::from_utf8_lossy(&refused.stderr).contains("--resume"));

    let stdout = succeeds(
        prottrans()
            .args(embed_args(&model, &input, &resumed))
            .arg("--resume")
            .output()
            .unwrap(),
    );
    assert!(stdout.contains("proteins were already done"), "{stdout}");
    assert!(
        !partial.exists(),
        "the work directory is removed once the output is complete"
    );

    let (a, b) = (contents(&whole), contents(&resumed));
    assert_eq!(a.len(), 120);
    assert_eq!(
        a.iter().map(|(k, _)| k).collect::<Vec<_>>(),
        b.iter().map(|(k, _)| k).collect::<Vec<_>>()
    );
    let worst = a
        .iter()
        .zip(&b)
        .map(|((_, x), (_, y))| {
            assert_eq!(x.shape(), y.shape());
            x.iter()
                .zip(y)
                .map(|(p, q)| (p - q).abs())
                .fold(0.0f32, f32::max)
        })
        .fold(0.0f32, f32::max);
    println!(
        "interrupted after {done} of 15 batches; resumed output differs by at most {worst:.2e}"
    );
    assert!(worst <= 1e-5, "{worst}");
}

/// f16 and bf16 against transformers run in torch.float16 / torch.bfloat16 on the same
/// f16 checkpoint (tests/fixtures/bert_tiny_encoder_f16). The bounds are loose because the
/// two libraries round at different places; f32 on the same weights is checked to 1e-4
/// elsewhere.
#[test]
fn half_precision_embeddings_stay_close_to_transformers() {
    let dir = tempfile::tempdir().unwrap();
    let sequences = [
        "MKTAY",
        "MQIFVKTLTGXTITLEV",
        "MSKGEELFTGVVPILVELDGDVNGHKFSV",
    ];
    let fasta: String = sequences
        .iter()
        .enumerate()
        .map(|(i, s)| format!(">s{i}\n{s}\n"))
        .collect();
    let input = dir.path().join("in.fa");
    std::fs::write(&input, fasta).unwrap();
    // ProtBert frames `[CLS] residues [SEP]` (residues from position 1), ProtT5 `residues </s>`.
    for (name, first_residue) in [
        ("bert_tiny_encoder_f16", 1),
        ("t5_relu_tiny_encoder_f16", 0),
    ] {
        let checkpoint = fixture(name);
        let bytes = std::fs::read(checkpoint.join("expected.safetensors")).unwrap();
        let expected = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        for (precision, tensor, bound) in [
            ("f32", "f16_weights_f32_last_hidden_state", 1e-4f32),
            ("f16", "f16_last_hidden_state", 2e-2),
            ("bf16", "bf16_last_hidden_state", 1e-1),
        ] {
            let output = dir.path().join(format!("{name}-{precision}.npz"));
            succeeds(
                prottrans()
                    .args(embed_args(&checkpoint, &input, &output))
                    .args(["--precision", precision])
                    .output()
                    .unwrap(),
            );
            let view = expected.tensor(tensor).unwrap();
            let (width, d) = (view.shape()[1], view.shape()[2]);
            let want: Vec<f32> = view
                .data()
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
                .collect();
            let mut file = EmbeddingFile::open(&output).unwrap();
            let mut worst = 0.0f32;
            for (i, s) in sequences.iter().enumerate() {
                let got = file.read(&format!("s{i}")).unwrap();
                assert_eq!(got.shape(), [s.len(), d]);
                let start = (i * width + first_residue) * d;
                for (g, w) in got.iter().zip(&want[start..start + s.len() * d]) {
                    assert!(g.is_finite(), "{name} {precision}: non-finite output");
                    worst = worst.max((g - w).abs());
                }
            }
            println!(
                "{name} --precision {precision}: max abs diff {worst:.3e} against transformers ({tensor})"
            );
            assert!(worst <= bound, "{name} {precision}: {worst} > {bound}");
        }
    }
}

/// `prottrans generate` fills hidden residues with a T5 checkpoint and names bad input.
#[test]
fn generate_prints_the_filled_residues() {
    let out = succeeds(
        prottrans()
            .args(["generate", "--model"])
            .arg(fixture("t5_relu_tiny"))
            .args(["--sequence", "MQ_FVK", "--sequence", "m_t"])
            .output()
            .unwrap(),
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines[0], "id\tinput\toutput\tfilled");
    assert_eq!(lines.len(), 3, "{out}");
    let fields: Vec<&str> = lines[1].split('\t').collect();
    assert_eq!(&fields[..2], ["sequence1", "MQ_FVK"]);
    assert!(fields[3].starts_with("3:"), "{out}");
    let fields: Vec<&str> = lines[2].split('\t').collect();
    assert_eq!(fields[1], "M_T");
    let failed = prottrans()
        .args(["generate", "--model"])
        .arg(fixture("t5_relu_tiny"))
        .args(["--sequence", "MQ1"])
        .output()
        .unwrap();
    assert!(!failed.status.success());
    let err = String::from_utf8_lossy(&failed.stderr);
    assert!(err.contains("position 3"), "{err}");
}

/// The h5 file opens in h5py with the expected keys, shapes, values and attributes, and both
/// files record the run's settings.
#[cfg(feature = "hdf5")]
#[test]
fn h5_output_opens_in_h5py() {
    let dir = tempfile::tempdir().unwrap();
    let (model, input) = model_and_input(dir.path());
    let h5 = dir.path().join("out.h5");
    let npz = dir.path().join("out.npz");
    succeeds(
        prottrans()
            .args(embed_args(&model, &input, &h5))
            .output()
            .unwrap(),
    );
    succeeds(
        prottrans()
            .args(embed_args(&model, &input, &npz))
            .output()
            .unwrap(),
    );
    assert_eq!(
        contents(&h5),
        contents(&npz),
        "h5 and npz hold the same arrays"
    );
    let script = r#"
import sys, gzip, json, zipfile, h5py, numpy as np
h5, npz, fasta = sys.argv[1:4]
headers = {}
for line in open(fasta):
    if line.startswith(">"):
        header = line[1:].strip()
        headers[header.split()[0].replace("/", "_").replace(".", "_")] = header
f = h5py.File(h5, "r"); z = np.load(npz)
assert sorted(f.keys()) == sorted(headers) == sorted(z.files), "keys differ"
for key, ds in f.items():
    assert ds.dtype == np.float32 and ds.ndim == 2 and ds.shape[1] == 32, (key, ds.shape, ds.dtype)
    assert ds.attrs["header"] == headers[key], (key, ds.attrs["header"])
    assert int(ds.attrs["length"]) == ds.shape[0], key
    assert np.array_equal(ds[()], z[key]), key
run = json.loads(f.attrs["prottrans_run"])
assert run["precision"] == "f32" and run["per_protein"] is False and run["hidden_size"] == 32, run
comment = zipfile.ZipFile(npz).comment.decode()
assert json.loads(comment.removeprefix("prottrans_run=")) == run, (comment, run)
print(f"h5py {h5py.__version__}: {len(f)} datasets checked")
"#;
    let python = std::env::var("PROTTRANS_PYTHON").unwrap_or_else(|_| "python3".into());
    let output = Command::new(&python)
        .arg("-c")
        .arg(script)
        .arg(&h5)
        .arg(&npz)
        .arg(&input)
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {python} (set PROTTRANS_PYTHON to a Python with h5py and numpy): {e}"
            )
        });
    let stdout = succeeds(output);
    println!("{stdout}");
}

/// Large T5 activations that overflow f16 are clamped between sublayers, as transformers does,
/// so half-precision embeddings stay finite.
#[test]
fn half_precision_t5_embeddings_stay_finite_when_activations_overflow() {
    use prottrans::burn::module::Param;
    let device = DeviceSpec::Cpu.device().unwrap();
    let (config, mut model) = load_t5(fixture("t5_relu_tiny"), &device).unwrap();
    let feed_forward = &mut model.encoder.block[0].feed_forward;
    feed_forward.intermediate.weight =
        Param::from_tensor(feed_forward.intermediate.weight.val() * 1000.0);
    feed_forward.output.weight = Param::from_tensor(feed_forward.output.weight.val() * 1000.0);
    // In f32 the residual stream after the first block leaves f16's range.
    let ids = prottrans::burn::tensor::Tensor::<2, prottrans::burn::tensor::Int>::from_ints(
        [[19, 16, 12, 15, 6, 14, 1]],
        &device,
    );
    let states = model
        .encode(EncoderInput::unpadded(ids).with_hidden_states())
        .hidden_states;
    let largest = states[1].clone().abs().max().into_scalar::<f32>();
    assert!(
        largest > 65504.0,
        "the test needs an overflow; largest activation {largest}"
    );

    let dir = tempfile::tempdir().unwrap();
    let checkpoint = dir.path().join("model");
    save_t5(&model, &config, &checkpoint).unwrap();
    let input = dir.path().join("in.fa");
    std::fs::write(&input, ">a\nMQIFVK\n>b\nMSKGEELFTGVVPILVELDGDVNGHKFSV\n").unwrap();
    let output = dir.path().join("f16.npz");
    succeeds(
        prottrans()
            .args(embed_args(&checkpoint, &input, &output))
            .args(["--precision", "f16"])
            .output()
            .unwrap(),
    );
    for (key, values) in contents(&output) {
        assert!(
            values.iter().all(|v| v.is_finite()),
            "{key}: non-finite f16 embedding"
        );
    }
}
