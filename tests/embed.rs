//! Embeddings against `transformers` and the guarantees of the embedding job: same results in
//! any batch, clear errors for bad input and bad checkpoints.

mod common;

use std::io::Write;
use std::path::Path;

use common::{Expected, device, fixture, sample, save_random_bert};
use prottrans::embed::ndarray::{Array1, Array2, ArrayView2};
use prottrans::embed::output::EmbeddingFile;
use prottrans::embed::{EmbedError, EmbedJob, EmbedOptions, Embedder, mean_over_residues};
use prottrans::prelude::*;

/// The fixtures' batch (`MKTAY`, ... see tests/fixtures/bert_tiny/README.md).
const SEQUENCES: [&str; 3] = [
    "MKTAY",
    "MQIFVKTLTGXTITLEV",
    "MSKGEELFTGVVPILVELDGDVNGHKFSV",
];
const TOLERANCE: f32 = 1e-4;

/// Per-residue embeddings `transformers` computed: rows 1..=L of each padded sequence.
fn expected_residues(expected: &Expected, name: &str) -> Vec<Array2<f32>> {
    let (shape, values) = expected.tensor(name);
    let (batch, width, d) = (shape[0], shape[1], shape[2]);
    assert_eq!(batch, SEQUENCES.len());
    SEQUENCES
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let all = ArrayView2::from_shape((batch * width, d), &values).unwrap();
            let start = i * width + 1;
            all.slice(prottrans::embed::ndarray::s![start..start + s.len(), ..])
                .to_owned()
        })
        .collect()
}

/// transformers' per-protein embedding: the mean over residues, in f64.
fn expected_mean(residues: &Array2<f32>) -> Array1<f32> {
    residues
        .mapv(f64::from)
        .mean_axis(prottrans::embed::ndarray::Axis(0))
        .unwrap()
        .mapv(|x| x as f32)
}

fn max_abs_diff<D: prottrans::embed::ndarray::Dimension>(
    a: &prottrans::embed::ndarray::Array<f32, D>,
    b: &prottrans::embed::ndarray::Array<f32, D>,
) -> f32 {
    assert_eq!(a.shape(), b.shape());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Per-residue and per-protein, padded batch and alone, against `expected_name`.
fn check_against(dir: &Path, expected_fixture: &str, expected_name: &str) {
    let embedder = Embedder::load(dir, &device()).unwrap();
    let expected = expected_residues(&Expected::load(expected_fixture), expected_name);
    let batched = embedder.embed_many(&SEQUENCES).unwrap();
    let (mut residue_diff, mut protein_diff) = (0.0f32, 0.0f32);
    for (i, sequence) in SEQUENCES.iter().enumerate() {
        let alone = embedder.embed(sequence).unwrap();
        for got in [&batched[i], &alone] {
            residue_diff = residue_diff.max(max_abs_diff(got, &expected[i]));
            protein_diff = protein_diff.max(max_abs_diff(
                &mean_over_residues(got),
                &expected_mean(&expected[i]),
            ));
        }
    }
    println!(
        "{}: per-residue max abs diff {residue_diff:.3e}, per-protein {protein_diff:.3e}",
        dir.file_name().unwrap().to_string_lossy()
    );
    assert!(
        residue_diff <= TOLERANCE,
        "{}: per-residue {residue_diff}",
        dir.display()
    );
    assert!(
        protein_diff <= TOLERANCE,
        "{}: per-protein {protein_diff}",
        dir.display()
    );
}

#[test]
fn embeddings_match_transformers_from_safetensors_and_pytorch_bin() {
    check_against(&fixture("bert_tiny"), "bert_tiny", "last_hidden_state");
    check_against(&fixture("bert_tiny_pt"), "bert_tiny", "last_hidden_state");
}

/// f16 `BertModel` checkpoints (no `bert.` prefix, with a pooler), loaded into f32.
#[test]
fn f16_encoder_checkpoints_match_transformers() {
    for name in ["bert_tiny_encoder_f16", "bert_tiny_encoder_f16_pt"] {
        check_against(
            &fixture(name),
            "bert_tiny_encoder_f16",
            "f16_weights_f32_last_hidden_state",
        );
    }
}

/// `--matmul-precision bf16`: on a CPU with AMX-BF16 the embeddings move by bf16 rounding only
/// (per-protein cosine to transformers' f32 >= 0.9999); elsewhere the products stay f32 and
/// the embeddings are exactly the f32 ones.
#[test]
fn bf16_products_stay_close_to_transformers_or_fall_back_to_f32() {
    use prottrans::embed::MatmulPrecision;
    let dir = fixture("bert_tiny");
    let exact = Embedder::load(&dir, &device()).unwrap();
    let rounded = Embedder::load(&dir, &device())
        .unwrap()
        .with_matmul_precision(MatmulPrecision::Bf16);
    let expected = expected_residues(&Expected::load("bert_tiny"), "last_hidden_state");
    let (f32_out, bf16_out) = (
        exact.embed_many(&SEQUENCES).unwrap(),
        rounded.embed_many(&SEQUENCES).unwrap(),
    );
    if rounded.bf16_products_run() {
        for (i, (got, want)) in bf16_out.iter().zip(&expected).enumerate() {
            let (a, b) = (mean_over_residues(got), expected_mean(want));
            let cosine = a.dot(&b) / (a.dot(&a).sqrt() * b.dot(&b).sqrt());
            println!(
                "sequence {i}: per-residue max abs diff {:.3e}, per-protein cosine {cosine:.6}",
                max_abs_diff(got, want)
            );
            assert!(cosine >= 0.9999, "sequence {i}: cosine {cosine}");
            assert!(max_abs_diff(got, want) < 0.1, "sequence {i}");
        }
        assert_ne!(f32_out, bf16_out, "the bf16 products should have run");
    } else {
        println!("no AMX-BF16 here: bf16 products fall back to f32");
        assert_eq!(f32_out, bf16_out);
    }
}

/// Real proteins of many lengths: alone, all together, and in other groupings.
#[test]
fn batch_composition_does_not_change_any_embedding() {
    let device = device();
    let dir = tempfile::tempdir().unwrap();
    save_random_bert(dir.path(), &device);
    let embedder = Embedder::load(dir.path(), &device).unwrap();
    let mut proteins = Vec::new();
    for record in FastaReader::open(sample("uniprot_valid.fasta.gz")).unwrap() {
        let record = record.unwrap();
        if record.sequence.len() <= 1000 {
            proteins.push(
                embedder
                    .tokenizer()
                    .encode_residues(&record.id, &record.sequence)
                    .unwrap(),
            );
        }
        if proteins.len() == 12 {
            break;
        }
    }
    let lengths: Vec<usize> = proteins.iter().map(Vec::len).collect();
    assert!(
        lengths.iter().max() > Some(&(4 * lengths.iter().min().unwrap())),
        "{lengths:?}"
    );
    let alone: Vec<Array2<f32>> = proteins
        .iter()
        .map(|p| embedder.embed_residue_ids(&[p]).unwrap().remove(0))
        .collect();
    let refs: Vec<&[u32]> = proteins.iter().map(Vec::as_slice).collect();
    let together = embedder.embed_residue_ids(&refs).unwrap();
    let mut reversed_refs = refs.clone();
    reversed_refs.reverse();
    let mut reversed = embedder.embed_residue_ids(&reversed_refs[..5]).unwrap();
    reversed.extend(embedder.embed_residue_ids(&reversed_refs[5..]).unwrap());
    reversed.reverse();
    let mut worst = 0.0f32;
    for i in 0..proteins.len() {
        worst = worst.max(max_abs_diff(&alone[i], &together[i]));
        worst = worst.max(max_abs_diff(&alone[i], &reversed[i]));
    }
    println!("largest change from batch composition: {worst:.3e} (lengths {lengths:?})");
    assert!(
        worst <= 1e-5,
        "batch composition changed an embedding by {worst}"
    );
}

fn write_fasta(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
    let path = dir.join(name);
    std::fs::File::create(&path)
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    path
}

fn run_job(
    embedder: &Embedder,
    input: &Path,
    output: &Path,
    options: EmbedOptions,
) -> Result<(), EmbedError> {
    EmbedJob {
        embedder,
        input: input.to_path_buf(),
        output: output.to_path_buf(),
        options,
    }
    .run(&mut |_| {})
    .map(|_| ())
}

#[test]
fn bad_input_is_an_error_naming_the_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let embedder = Embedder::load(fixture("bert_tiny"), &device()).unwrap();
    let cases = [
        (
            "duplicate.fa",
            ">P1 first\nMKTAY\n>P2\nMKV\n>P1 again\nMKV\n",
            vec![":5:", "'P1'", "line 1"],
        ),
        (
            "dots.fa",
            ">sp|P1.1\nMKTAY\n>sp|P1_1\nMKV\n",
            vec![":3:", "sp|P1_1"],
        ),
        (
            "empty.fa",
            ">P1\nMKTAY\n>P2\n>P3\nMKV\n",
            vec![":3:", "'P2'", "empty"],
        ),
        (
            "invalid.fa",
            ">P1\nMKTAY\n>P2\nMKV\nMK1V\n",
            vec![":5:", "'P2'", "'1'"],
        ),
        (
            "long.fa",
            &format!(">P1\nMKTAY\n>P2 long\n{}\n", "A".repeat(63)),
            vec![":3:", "'P2'", "63 residues", "62"],
        ),
    ];
    for (name, text, needles) in cases {
        let input = write_fasta(dir.path(), name, text);
        let output = dir.path().join(format!("{name}.npz"));
        let err = run_job(&embedder, &input, &output, EmbedOptions::default())
            .unwrap_err()
            .to_string();
        assert!(err.contains(&input.display().to_string()), "{name}: {err}");
        for needle in needles {
            assert!(err.contains(needle), "{name}: no {needle:?} in: {err}");
        }
        assert!(
            !output.exists(),
            "{name}: an output was written despite the error"
        );
    }
}

#[test]
fn long_proteins_can_be_skipped_and_are_listed() {
    let dir = tempfile::tempdir().unwrap();
    let embedder = Embedder::load(fixture("bert_tiny"), &device()).unwrap();
    let input = write_fasta(
        dir.path(),
        "in.fa",
        &format!(">P1\nMKTAY\n>P2\n{}\n>P3\nMKV\n", "A".repeat(70)),
    );
    let output = dir.path().join("out.npz");
    let options = EmbedOptions {
        long_policy: prottrans::embed::LongPolicy::Skip,
        ..EmbedOptions::default()
    };
    let summary = EmbedJob {
        embedder: &embedder,
        input,
        output: output.clone(),
        options,
    }
    .run(&mut |_| {})
    .unwrap();
    assert_eq!(summary.skipped_long, vec!["P2".to_string()]);
    let mut file = EmbeddingFile::open(&output).unwrap();
    let mut keys = file.keys().unwrap();
    keys.sort();
    assert_eq!(keys, ["P1", "P3"]);
}

/// The job's per-protein file holds the means of its per-residue file, keyed by header word.
#[test]
fn job_outputs_are_keyed_and_per_protein_is_the_residue_mean() {
    let dir = tempfile::tempdir().unwrap();
    let embedder = Embedder::load(fixture("bert_tiny"), &device()).unwrap();
    let fasta: String = SEQUENCES
        .iter()
        .enumerate()
        .map(|(i, s)| {
            format!(
                ">tr|Q{i}.2/1 protein {i}\n{}\n{}\n",
                &s[..s.len() / 2],
                &s[s.len() / 2..]
            )
        })
        .collect();
    let input = write_fasta(dir.path(), "in.fa", &fasta);
    let residues = dir.path().join("residues.npz");
    let proteins = dir.path().join("proteins.npz");
    let options = EmbedOptions {
        max_batch: 2,
        ..EmbedOptions::default()
    };
    run_job(&embedder, &input, &residues, options.clone()).unwrap();
    run_job(
        &embedder,
        &input,
        &proteins,
        EmbedOptions {
            per_protein: true,
            ..options
        },
    )
    .unwrap();
    let expected = expected_residues(&Expected::load("bert_tiny"), "last_hidden_state");
    let (mut residues, mut proteins) = (
        EmbeddingFile::open(&residues).unwrap(),
        EmbeddingFile::open(&proteins).unwrap(),
    );
    for (i, want) in expected.iter().enumerate() {
        let key = format!("tr|Q{i}_2_1");
        let got = residues.read(&key).unwrap().into_dimensionality().unwrap();
        assert!(max_abs_diff(&got, want) <= TOLERANCE, "{key}");
        let mean = proteins.read(&key).unwrap().into_dimensionality().unwrap();
        assert!(
            max_abs_diff(&mean, &expected_mean(want)) <= TOLERANCE,
            "{key}"
        );
    }
}

#[test]
fn an_existing_output_is_not_overwritten_without_resume() {
    let dir = tempfile::tempdir().unwrap();
    let embedder = Embedder::load(fixture("bert_tiny"), &device()).unwrap();
    let input = write_fasta(dir.path(), "in.fa", ">P1\nMKTAY\n");
    let output = dir.path().join("out.npz");
    run_job(&embedder, &input, &output, EmbedOptions::default()).unwrap();
    let err = run_job(&embedder, &input, &output, EmbedOptions::default()).unwrap_err();
    assert!(matches!(err, EmbedError::OutputExists { .. }), "{err}");
    // With --resume and a new protein, the output gains it and keeps the old one.
    let input = write_fasta(dir.path(), "in.fa", ">P1\nMKTAY\n>P2\nMKV\n");
    run_job(
        &embedder,
        &input,
        &output,
        EmbedOptions {
            resume: true,
            ..EmbedOptions::default()
        },
    )
    .unwrap();
    let mut keys = EmbeddingFile::open(&output).unwrap().keys().unwrap();
    keys.sort();
    assert_eq!(keys, ["P1", "P2"]);
    // Per-protein vectors are not added to a per-residue file.
    let input = write_fasta(dir.path(), "in.fa", ">P1\nMKTAY\n>P2\nMKV\n>P3\nMKL\n");
    let options = EmbedOptions {
        resume: true,
        per_protein: true,
        ..EmbedOptions::default()
    };
    let err = run_job(&embedder, &input, &output, options)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("cannot resume") && err.contains("per_protein false there, true in this run"),
        "{err}"
    );
}

/// A crash after three batches, then a lost part: resuming embeds the lost proteins again and
/// never writes over a finished part.
#[test]
fn a_resume_after_a_lost_part_embeds_its_proteins_again() {
    let dir = tempfile::tempdir().unwrap();
    let embedder = Embedder::load(fixture("bert_tiny"), &device()).unwrap();
    let fasta: String = (0..10)
        .map(|i| format!(">P{i}\n{}\n", &"MKTAYIAKQRQISFVK"[..5 + i]))
        .collect();
    let input = write_fasta(dir.path(), "in.fa", &fasta);
    let options = EmbedOptions {
        max_batch: 2,
        ..EmbedOptions::default()
    };
    let whole = dir.path().join("whole.npz");
    run_job(&embedder, &input, &whole, options.clone()).unwrap();

    let output = dir.path().join("out.npz");
    let job = EmbedJob {
        embedder: &embedder,
        input: input.clone(),
        output: output.clone(),
        options: options.clone(),
    };
    let crashed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut batches = 0;
        job.run(&mut |event| {
            if let prottrans::embed::Progress::Batch { .. } = event {
                batches += 1;
                if batches == 3 {
                    panic!("simulated crash after three batches");
                }
            }
        })
    }));
    assert!(crashed.is_err());
    let partial = dir.path().join("out.npz.partial");
    std::fs::remove_file(partial.join("part-000001.npz")).unwrap();

    run_job(
        &embedder,
        &input,
        &output,
        EmbedOptions {
            resume: true,
            ..options
        },
    )
    .unwrap();
    let (mut a, mut b) = (
        EmbeddingFile::open(&whole).unwrap(),
        EmbeddingFile::open(&output).unwrap(),
    );
    let mut keys = b.keys().unwrap();
    keys.sort();
    assert_eq!(keys.len(), 10, "{keys:?}");
    for key in keys {
        let (x, y) = (a.read(&key).unwrap(), b.read(&key).unwrap());
        assert!(max_abs_diff(&x, &y) <= 1e-5, "{key}");
    }
}
