//! The short fuzzing run of CI (stable Rust, no instrumentation): every committed corpus input
//! of every target, then seeded mutations of them (bit flips, truncations, splices, repeated
//! and random bytes), through the same entry points as the cargo-fuzz targets. Any panic fails.
//! One test per target, so the test harness replays them side by side.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::Instant;

use prottrans_fuzz::{TARGETS, Target};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};

/// Mutated inputs per target; a few seconds in all, the load-bearing ones are the weights.
const MUTANTS: usize = 300;

fn corpus_dir(target: &Target) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../fuzz/corpus")
        .join(target.name)
}

fn corpus(target: &Target) -> Vec<(String, Vec<u8>)> {
    let dir = corpus_dir(target);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.is_file())
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).unwrap())
        })
        .collect()
}

fn mutate(rng: &mut StdRng, input: &[u8], other: &[u8]) -> Vec<u8> {
    let mut out = input.to_vec();
    for _ in 0..rng.random_range(1..=4) {
        let len = out.len();
        match rng.random_range(0..6) {
            0 if len > 0 => {
                let at = rng.random_range(0..len);
                out[at] ^= 1 << rng.random_range(0..8);
            }
            1 if len > 0 => out.truncate(rng.random_range(0..len)),
            2 => {
                let at = rng.random_range(0..=len);
                let junk: Vec<u8> = (0..rng.random_range(1..16)).map(|_| rng.random()).collect();
                out.splice(at..at, junk);
            }
            3 if len > 0 => {
                let at = rng.random_range(0..len);
                let end = (at + rng.random_range(1..64)).min(len);
                let chunk = out[at..end].to_vec();
                out.splice(at..at, chunk);
            }
            4 if !other.is_empty() => {
                let at = rng.random_range(0..=len);
                let from = rng.random_range(0..other.len());
                let end = (from + rng.random_range(1..256)).min(other.len());
                out.splice(at..at, other[from..end].iter().copied());
            }
            _ if len > 0 => {
                let at = rng.random_range(0..len);
                out[at] = [0, 0xff, b'\n', b',', b'"', b'{', b'9'][rng.random_range(0..7)];
            }
            _ => {}
        }
    }
    out
}

fn run_one(target: &Target, scratch: &Path, label: &str, input: &[u8], failures: &mut Vec<String>) {
    if catch_unwind(AssertUnwindSafe(|| (target.run)(scratch, input))).is_err() {
        failures.push(format!("{}: {label} ({} bytes)", target.name, input.len()));
    }
}

/// One test per target, named after it (`fasta`, ...), and the list of them.
macro_rules! replayed {
    ($($name:ident),* $(,)?) => {
        $(
            #[test]
            fn $name() {
                replay(prottrans_fuzz::target(stringify!($name)).expect("a fuzz target"));
            }
        )*
        /// The targets that have a test here.
        const REPLAYED: &[&str] = &[$(stringify!($name)),*];
    };
}

replayed!(
    fasta,
    labelled_csv,
    recipe,
    config_json,
    vocab_txt,
    spiece_model,
    tokenizer_json,
    safetensors,
    pytorch,
    bpk,
);

#[test]
fn every_target_is_replayed() {
    let targets: Vec<&str> = TARGETS.iter().map(|t| t.name).collect();
    assert_eq!(targets, REPLAYED, "add the new target to `replayed!`");
}

/// Every corpus input of `target`, then its seeded mutants; panics naming each input that
/// panicked.
fn replay(target: &Target) {
    let started = Instant::now();
    let mut failures = Vec::new();
    {
        let scratch = tempfile::tempdir().unwrap();
        let inputs = corpus(target);
        assert!(
            !inputs.is_empty(),
            "{}: the corpus is empty",
            corpus_dir(target).display()
        );
        for (name, bytes) in &inputs {
            run_one(target, scratch.path(), name, bytes, &mut failures);
        }
        let mut rng = StdRng::seed_from_u64(0x5eed);
        for i in 0..MUTANTS {
            let (name, input) = &inputs[rng.random_range(0..inputs.len())];
            let other = &inputs[rng.random_range(0..inputs.len())].1;
            let mutant = mutate(&mut rng, input, other);
            run_one(
                target,
                scratch.path(),
                &format!("mutant {i} of {name}"),
                &mutant,
                &mut failures,
            );
        }
        eprintln!(
            "{}: {} corpus inputs, {MUTANTS} mutants, {:.1} s",
            target.name,
            inputs.len(),
            started.elapsed().as_secs_f64()
        );
    }
    assert!(failures.is_empty(), "panicked on:\n{}", failures.join("\n"));
}
