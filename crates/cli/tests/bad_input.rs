//! Bad input through the real binary: each case fails with a nonzero exit and a message that
//! names the file and the place (or succeeds only when asked to), never a panic.

#[path = "../../../tests/common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::{fixture, repo};

/// Runs `prottrans ARGS`; returns whether it succeeded, and stdout + stderr.
fn prottrans(args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_prottrans"))
        .args(args)
        .output()
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(!text.contains("panicked"), "a panic: {text}");
    (out.status.success(), text)
}

fn fails_naming(args: &[&str], expected: &[&str]) {
    let (ok, text) = prottrans(args);
    assert!(!ok, "succeeded: prottrans {}\n{text}", args.join(" "));
    for part in expected {
        assert!(text.contains(part), "{part:?} not in:\n{text}");
    }
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

/// A random BERT of the quickstart's shape, with its masked-LM head and vocabulary.
fn model(dir: &Path) -> PathBuf {
    let model = dir.join("model");
    let recipe = repo().join("configs/quickstart.toml");
    let (ok, text) = prottrans(&[
        "init-model",
        "--config",
        path(&recipe),
        "--out",
        path(&model),
    ]);
    assert!(ok, "{text}");
    model
}

/// `embed --model MODEL --input INPUT --output OUTPUT EXTRA...`
fn embed_args<'a>(
    model: &'a str,
    input: &'a Path,
    output: &'a Path,
    extra: &[&'a str],
) -> Vec<&'a str> {
    let mut args = vec![
        "embed",
        "--model",
        model,
        "--input",
        path(input),
        "--output",
        path(output),
    ];
    args.extend(extra);
    args
}

fn owned(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

/// A copy of the files of directory `from` in `to`.
fn copy_dir(from: &Path, to: &Path) -> PathBuf {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), to.join(entry.file_name())).unwrap();
    }
    to.to_path_buf()
}

/// `train-head --task localization` on one-hot features, the first arguments of a case.
fn localization_one_hot<'a>(train: &'a Path, valid: &'a Path, out: &'a Path) -> Vec<&'a str> {
    vec![
        "train-head",
        "--task",
        "localization",
        "--train",
        path(train),
        "--valid",
        path(valid),
        "--features",
        "one-hot",
        "--out",
        path(out),
    ]
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let file = dir.join(name);
    std::fs::write(&file, text).unwrap();
    file
}

#[test]
fn bad_input_catalogue() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let model = model(dir);
    let m = path(&model);
    let out = dir.join("out.npz");

    // Empty input: an error unless allowed.
    let empty = write(dir, "empty.fasta", "");
    fails_naming(
        &embed_args(m, &empty, &out, &[]),
        &["empty.fasta", "no proteins", "--allow-empty"],
    );
    let (ok, text) = prottrans(&embed_args(m, &empty, &out, &["--allow-empty"]));
    assert!(ok, "{text}");
    std::fs::remove_file(&out).unwrap();

    // A character that is no residue: file, line, record and position.
    let bad = write(dir, "bad.fasta", ">ok\nMKT\n>p2\nMK\nT1L\n");
    fails_naming(
        &embed_args(m, &bad, &out, &[]),
        &["bad.fasta:5", "record 'p2'", "'1' at position"],
    );
    assert!(!out.exists());

    let bad_free = write(dir, "more.fasta", ">with_j\nMKJL\n>more\nMKTAY\n");

    // A letter the vocabulary lacks (J): read as [UNK] and counted, or refused on request.
    let j = write(dir, "j.fasta", ">with_j\nMKJL\n");
    let (ok, text) = prottrans(&embed_args(m, &j, &out, &[]));
    assert!(ok, "{text}");
    assert!(text.contains("1 residue(s) in 1 protein(s)"), "{text}");
    std::fs::remove_file(&out).unwrap();
    fails_naming(
        &embed_args(m, &j, &out, &["--refuse-unknown"]),
        &["j.fasta:2", "residue 'J' at position 3"],
    );

    // An existing output is not overwritten without --resume.
    let (ok, text) = prottrans(&embed_args(m, &j, &out, &[]));
    assert!(ok, "{text}");
    fails_naming(&embed_args(m, &j, &out, &[]), &["out.npz"]);

    // Nor extended with other embeddings: the settings recorded inside it must match.
    for (option, setting) in [
        ("--precision=bf16", "precision"),
        ("--per-protein", "per_protein"),
    ] {
        fails_naming(
            &embed_args(m, &bad_free, &out, &["--resume", option]),
            &["out.npz", "other settings", setting],
        );
    }
    let (ok, text) = prottrans(&embed_args(m, &bad_free, &out, &["--resume"]));
    assert!(ok, "the same settings extend it: {text}");

    // init-model never replaces a model silently.
    let recipe = repo().join("configs/quickstart.toml");
    fails_naming(
        &["init-model", "--config", path(&recipe), "--out", m],
        &["already holds a model", "--force"],
    );
    let (ok, text) = prottrans(&[
        "init-model",
        "--config",
        path(&recipe),
        "--out",
        m,
        "--force",
    ]);
    assert!(ok, "{text}");

    // Masked-LM tools.
    fails_naming(
        &["fill-mask", "--model", m, "--sequence", "MKTAY"],
        &["no position is hidden"],
    );
    let wild_type = write(dir, "wt.fasta", ">wt\nMKTAYIAKQR\n");
    let variants: [(&str, &[&str]); 3] = [
        ("K4G", &["variant 'K4G'", "has A at position 4"]),
        ("A0G", &["variant 'A0G'", "1-based"]),
        ("A40G", &["past the end"]),
    ];
    for (variant, expected) in variants {
        fails_naming(
            &[
                "score",
                "--model",
                m,
                "--input",
                path(&wild_type),
                "--mutations",
                variant,
            ],
            expected,
        );
    }

    let two = write(dir, "two.fasta", ">a\nMKT\n>b\nMKV\n");
    fails_naming(
        &[
            "score",
            "--model",
            m,
            "--input",
            path(&two),
            "--mutations",
            "K2R",
        ],
        &["two.fasta", "--protein"],
    );
    fails_naming(
        &[
            "recover",
            "--model",
            m,
            "--input",
            path(&wild_type),
            "--rate",
            "0",
        ],
        &["rate"],
    );
    let at = write(dir, "at.tsv", "id\tposition\nnobody\t3\n");
    fails_naming(
        &[
            "recover",
            "--model",
            m,
            "--input",
            path(&wild_type),
            "--at",
            path(&at),
        ],
        &["at.tsv:2", "'nobody' is not in the FASTA file"],
    );
    let t5 = fixture("t5_relu_tiny");
    fails_naming(
        &["fill-mask", "--model", path(&t5), "--sequence", "MK_"],
        &["t5_relu_tiny", "no masked-LM head"],
    );

    // Recipes and head options outside their domains, named before anything reaches burn.
    let quickstart = std::fs::read_to_string(&recipe).unwrap();
    for (setting, key) in [
        ("beta_1 = 1.5", "optimizer.beta_1"),
        ("epsilon = 0.0", "optimizer.epsilon"),
        ("weight_decay = -0.1", "optimizer.weight_decay"),
        ("grad_clip_norm = -1.0", "optimizer.grad_clip_norm"),
    ] {
        let name = setting.split(' ').next().unwrap();
        let kept: Vec<&str> = quickstart
            .lines()
            .filter(|line| !line.starts_with(&format!("{name} ")))
            .collect();
        let bad = write(
            dir,
            "bad.toml",
            &kept
                .join("\n")
                .replace("[optimizer]", &format!("[optimizer]\n{setting}")),
        );
        fails_naming(
            &[
                "init-model",
                "--config",
                path(&bad),
                "--out",
                path(&dir.join("x")),
            ],
            &["bad.toml", key],
        );
    }
    let samples = repo().join("data/samples");
    let (train, valid) = (samples.join("ss_train.csv"), samples.join("ss_valid.csv"));
    for (option, value, expected) in [
        ("--dropout", "1.5", "dropout"),
        ("--learning-rate", "NaN", "learning rate"),
        ("--weight-decay", "-1", "weight decay"),
    ] {
        fails_naming(
            &[
                "train-head",
                "--task",
                "secondary-structure",
                "--train",
                path(&train),
                "--valid",
                path(&valid),
                "--features",
                "one-hot",
                "--out",
                path(&dir.join("head")),
                &format!("{option}={value}"),
            ],
            &[expected],
        );
    }

    // A learning rate that makes the loss NaN: stopped with the step, no head saved.
    let huge_step = dir.join("huge-step");
    let (train, valid) = (
        samples.join("localization_train.csv"),
        samples.join("localization_valid.csv"),
    );
    let mut args = localization_one_hot(&train, &valid, &huge_step);
    args.extend(["--learning-rate", "1e30"]);
    fails_naming(
        &args,
        &["huge-step", "loss was", "at step", "no head was saved"],
    );
    assert!(!huge_step.join("head.json").exists());

    // A misspelt config.json key: the shape errors come with the key that was not read.
    let typo = dir.join("typo");
    std::fs::create_dir(&typo).unwrap();
    std::fs::copy(
        fixture("bert_tiny").join("model.safetensors"),
        typo.join("model.safetensors"),
    )
    .unwrap();
    let config = std::fs::read_to_string(fixture("bert_tiny").join("config.json")).unwrap();
    std::fs::write(
        typo.join("config.json"),
        config.replace("\"num_hidden_layers\"", "\"num_hidden_layer\""),
    )
    .unwrap();
    fails_naming(
        &[
            "embed",
            "--model",
            path(&typo),
            "--input",
            path(&j),
            "--output",
            path(&dir.join("t.npz")),
        ],
        &[
            "model.safetensors",
            "missing",
            "misspelt?): num_hidden_layer",
        ],
    );

    // Not a checkpoint.
    fails_naming(&["inspect", path(dir)], &["no config.json"]);

    // A header that is not UTF-8: refused with its line, not replaced in the output key.
    let latin1 = dir.join("latin1.fasta");
    std::fs::write(&latin1, b">ok\nMKT\n>caf\xe9\nMKV\n").unwrap();
    fails_naming(
        &embed_args(m, &latin1, &dir.join("l.npz"), &[]),
        &["latin1.fasta:3", "not UTF-8", "0xe9"],
    );

    // Where attention holds every pair of positions (T5 off the fused kernel: here bf16), a
    // protein whose attention would not fit the memory budget is refused before the run,
    // naming the option; the fused f32 path has no such limit.
    let long = write(
        dir,
        "long.fasta",
        &format!(">long\n{}\n", "MKTAYIAKQR".repeat(11)),
    );
    let budget = ["--max-attention-gib", "0.0004"];
    let mut bf16 = budget.to_vec();
    bf16.extend(["--precision", "bf16"]);
    let t5 = path(&t5);
    fails_naming(
        &embed_args(t5, &long, &dir.join("b.npz"), &bf16),
        &[
            "long.fasta:1",
            "record 'long' has 110 residues",
            "--max-attention-gib",
        ],
    );
    let (ok, text) = prottrans(&embed_args(t5, &long, &dir.join("f.npz"), &budget));
    assert!(ok, "the fused path needs no attention budget: {text}");
    fails_naming(
        &embed_args(t5, &long, &dir.join("g.npz"), &["--max-attention-gib", "0"]),
        &["not a positive number of GiB"],
    );
}

/// `pretrain --resume` reads its checkpoints back before burn-train does: a damaged latest one
/// is passed over (with a warning), and when none reads back the error names every file.
#[test]
fn resume_passes_over_unreadable_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let tiny = std::fs::read_to_string(repo().join("configs/tiny.toml")).unwrap();
    let recipe = write(
        dir,
        "recipe.toml",
        &tiny
            .replace("steps = 60", "steps = 8")
            .replace("warmup_steps = 6", "warmup_steps = 2")
            .replace("checkpoint_every = 20", "checkpoint_every = 4"),
    );
    let samples = repo().join("data/samples");
    let (train, valid) = (
        samples.join("uniprot_train.fasta.gz"),
        samples.join("uniprot_valid.fasta.gz"),
    );
    let out = dir.join("run");
    let args = [
        "pretrain",
        "--config",
        path(&recipe),
        "--train",
        path(&train),
        "--valid",
        path(&valid),
        "--out",
        path(&out),
    ];
    let (ok, text) = prottrans(&args);
    assert!(ok, "{text}");
    let checkpoint = out.join("checkpoint");
    let truncate = |name: &str| {
        let file = checkpoint.join(name);
        let bytes = std::fs::read(&file).unwrap();
        std::fs::write(&file, &bytes[..bytes.len() / 2]).unwrap();
    };
    let mut resume = args.to_vec();
    resume.push("--resume");

    truncate("model-2.bpk");
    let (ok, text) = prottrans(&resume);
    assert!(ok, "{text}");
    assert!(
        text.contains("checkpoint 2 does not read back") && text.contains("model-2.bpk"),
        "{text}"
    );
    assert!(text.contains("resuming from checkpoint 1"), "{text}");

    // The resumed run wrote checkpoint 2 again; now damage every checkpoint.
    for name in ["optim-1.bpk", "optim-2.bpk"] {
        truncate(name);
    }
    fails_naming(
        &resume,
        &["no checkpoint reads back", "optim-1.bpk", "optim-2.bpk"],
    );
}

#[cfg(unix)]
#[test]
fn saved_models_get_the_usual_file_mode() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().unwrap();
    let model = model(dir.path());
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    // What any new file gets here (0666 less the umask), not tempfile's owner-only 0600.
    let probe = dir.path().join("probe");
    std::fs::File::create(&probe).unwrap();
    for file in ["config.json", "model.safetensors", "vocab.txt"] {
        assert_eq!(mode(&model.join(file)), mode(&probe), "{file}");
    }
}

#[test]
fn a_second_job_on_the_same_output_is_refused_while_the_first_runs() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let model = model(dir);
    let input = write(dir, "three.fasta", ">a\nMKTAY\n>b\nMKTAYI\n>c\nMKTAYIA\n");
    let out = dir.join("out.npz");
    let args = [
        "embed",
        "--model",
        path(&model),
        "--input",
        path(&input),
        "--output",
        path(&out),
        "--max-batch",
        "1",
    ];
    let mut first = Command::new(env!("CARGO_BIN_EXE_prottrans"))
        .args(args)
        .args(["--batch-delay-ms", "1500"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the first job holds its lock (the lock file appears when it does).
    let lock = dir.join(".out.npz.lock");
    let started = std::time::Instant::now();
    while !lock.exists() && started.elapsed().as_secs() < 60 {
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let mut resume = args.to_vec();
    resume.push("--resume");
    fails_naming(&resume, &["out.npz", "another prottrans embed is writing"]);
    assert!(first.wait().unwrap().success());
    assert!(out.is_file());
    assert!(!lock.exists(), "the lock file is removed when the job ends");
}

/// A training loss that turns NaN (f16 at learning rate 1) stops `pretrain` with the step,
/// saves no model and keeps the checkpoint written before it.
#[test]
fn a_non_finite_loss_stops_pretraining() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let tiny = std::fs::read_to_string(repo().join("configs/tiny.toml")).unwrap();
    let recipe = write(
        dir,
        "recipe.toml",
        &tiny
            .replace("steps = 60", "steps = 40")
            .replace("warmup_steps = 6", "warmup_steps = 2")
            .replace("checkpoint_every = 20", "checkpoint_every = 10")
            .replace("learning_rate = 0.003", "learning_rate = 1.0"),
    );
    let samples = repo().join("data/samples");
    let out = dir.join("run");
    let (train, valid) = (
        samples.join("uniprot_train.fasta.gz"),
        samples.join("uniprot_valid.fasta.gz"),
    );
    let args = [
        "pretrain",
        "--config",
        path(&recipe),
        "--train",
        path(&train),
        "--valid",
        path(&valid),
        "--out",
        path(&out),
        "--precision",
        "f16",
    ];
    let (ok, text) = prottrans(&args);
    assert!(!ok, "{text}");
    let step: usize = text
        .split("at step ")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no step named: {text}"));
    assert!(text.contains("no model was saved"), "{text}");
    assert!(!out.join("model").exists(), "no model after a NaN loss");
    // The checkpoints written before the bad step are kept, none after it.
    let checkpoints = step.saturating_sub(1) / 10;
    for epoch in 1..=4 {
        assert_eq!(
            out.join(format!("checkpoint/model-{epoch}.bpk")).exists(),
            epoch <= checkpoints && epoch + 2 > checkpoints,
            "checkpoint {epoch} after a NaN loss at step {step}: {text}"
        );
    }
    if checkpoints > 0 {
        assert!(
            text.contains(&format!("from step {}", checkpoints * 10)),
            "{text}"
        );
    }
}

/// More of the catalogue: damaged checkpoints, malformed FASTA and CSV, recipes and options
/// outside their domains, each refused with the file and the place (or the option).
#[test]
fn bad_input_catalogue_files_recipes_and_options() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let model = model(dir);
    let m = path(&model);
    let samples = repo().join("data/samples");
    let sample = |name: &str| samples.join(name).display().to_string();
    let ok = write(dir, "ok.fasta", ">a\nMKTAY\n");
    let out = |name: &str| dir.join(name).display().to_string();

    // Damaged checkpoints.
    let copy_model = |name: &str| copy_dir(&model, &dir.join(name));
    let truncated = copy_model("truncated");
    let weights = std::fs::read(model.join("model.safetensors")).unwrap();
    std::fs::write(truncated.join("model.safetensors"), &weights[..100]).unwrap();
    let bad_json = copy_model("bad-json");
    std::fs::write(bad_json.join("config.json"), "{ not json").unwrap();

    // Malformed inputs.
    let no_header = write(dir, "no-header.fasta", "MKT\n>a\nMKT\n");
    let fastq = write(dir, "reads.fasta", "@r\nACGT\n+\nIIII\n");
    let empty_record = write(dir, "empty-record.fasta", ">a\n>b\nMKT\n");
    let gz = std::fs::read(samples.join("uniprot_valid.fasta.gz")).unwrap();
    let cut_gz = dir.join("cut.fasta.gz");
    std::fs::write(&cut_gz, &gz[..500]).unwrap();
    let ss_header = "input,dssp3,dssp8,disorder,cb513_mask\n";
    let loc_header = "id,sequence,location,membrane,split\n";
    let bad_letter = write(dir, "letter.csv", &format!("{ss_header}MKTAY,CCHZC,,,\n"));
    let bad_length = write(dir, "length.csv", &format!("{ss_header}MKTAY,CCH,,,\n"));
    let duplicate = write(
        dir,
        "duplicate.csv",
        &format!("{loc_header}A1,MKTAY,Nucleus,soluble,train\nA1,MKTAY,Nucleus,soluble,train\n"),
    );
    let short_row = write(
        dir,
        "short.csv",
        &format!("{loc_header}A1,MKTAY,Nucleus,soluble\n"),
    );

    // Recipes.
    let tiny = std::fs::read_to_string(repo().join("configs/tiny.toml")).unwrap();
    let recipe = |name: &str, from: &str, to: &str| {
        assert!(tiny.contains(from), "{from}");
        path(&write(dir, name, &tiny.replace(from, to))).to_string()
    };
    let typo = recipe("typo.toml", "hidden_size = 32", "hidden_sise = 32");
    let zero = recipe("zero.toml", "steps = 60", "steps = 0");
    let heads = recipe(
        "heads.toml",
        "num_attention_heads = 4",
        "num_attention_heads = 5",
    );
    let arch = recipe(
        "arch.toml",
        "architecture = \"bert\"",
        "architecture = \"gpt2\"",
    );
    let crop = recipe("crop.toml", "max_residues = 62", "max_residues = 500");
    let broken = path(&write(dir, "broken.toml", "[model\n")).to_string();
    let empty = write(dir, "empty.fasta", "");
    let pretrain = |recipe: &str, train: &str| -> Vec<String> {
        [
            "pretrain",
            "--config",
            recipe,
            "--train",
            train,
            "--valid",
            &sample("uniprot_valid.fasta.gz"),
            "--out",
            &out("run"),
        ]
        .map(String::from)
        .to_vec()
    };
    let train = sample("uniprot_train.fasta.gz");

    // A head, then damaged copies of it.
    let head = dir.join("head");
    let (ok_head, text) = prottrans(&[
        "train-head",
        "--task",
        "localization",
        "--train",
        &sample("localization_train.csv"),
        "--valid",
        &sample("localization_valid.csv"),
        "--features",
        "one-hot",
        "--epochs",
        "1",
        "--out",
        path(&head),
    ]);
    assert!(ok_head, "{text}");
    let bad_head = dir.join("bad-head");
    std::fs::create_dir_all(&bad_head).unwrap();
    std::fs::copy(
        head.join("head.safetensors"),
        bad_head.join("head.safetensors"),
    )
    .unwrap();
    std::fs::write(bad_head.join("head.json"), "{oops").unwrap();
    let cut_head = dir.join("cut-head");
    std::fs::create_dir_all(&cut_head).unwrap();
    std::fs::copy(head.join("head.json"), cut_head.join("head.json")).unwrap();
    std::fs::write(cut_head.join("head.safetensors"), b"not safetensors").unwrap();
    let one = write(dir, "one.fasta", ">A0A088MIT0\nMKTAYIAK\n");
    let (embedded, text) = prottrans(&embed_args(m, &one, &dir.join("one.npz"), &[]));
    assert!(embedded, "{text}");

    let train_head = |task: &str, train: &str, valid: &str, extra: &[&str]| {
        let mut args = owned(&[
            "train-head",
            "--task",
            task,
            "--train",
            train,
            "--valid",
            valid,
        ]);
        args.extend(owned(extra));
        args
    };
    let transfo_xl = fixture("transfo_xl_tiny");
    let cases: Vec<(Vec<String>, Vec<&str>)> = vec![
        (
            owned(&embed_args("no-such-model", &ok, &dir.join("a.npz"), &[])),
            vec!["no-such-model", "no checkpoint directory"],
        ),
        (
            owned(&embed_args(path(&truncated), &ok, &dir.join("a.npz"), &[])),
            vec!["truncated/model.safetensors"],
        ),
        (
            owned(&embed_args(path(&bad_json), &ok, &dir.join("a.npz"), &[])),
            vec!["bad-json/config.json", "line 1"],
        ),
        (
            owned(&embed_args(m, &no_header, &dir.join("a.npz"), &[])),
            vec!["no-header.fasta:1"],
        ),
        (
            owned(&embed_args(m, &fastq, &dir.join("a.npz"), &[])),
            vec!["reads.fasta:1", "FASTQ"],
        ),
        (
            owned(&embed_args(m, &empty_record, &dir.join("a.npz"), &[])),
            vec!["empty-record.fasta:1", "record 'a'", "empty"],
        ),
        (
            owned(&embed_args(m, &cut_gz, &dir.join("a.npz"), &[])),
            vec!["cut.fasta.gz"],
        ),
        (
            owned(&embed_args(m, &ok, &dir.join("a.txt"), &[])),
            vec!["a.txt", "unknown output format"],
        ),
        (
            owned(&embed_args(
                m,
                &dir.join("missing.fasta"),
                &dir.join("a.npz"),
                &[],
            )),
            vec!["missing.fasta", "No such file"],
        ),
        (
            owned(&embed_args(
                m,
                &ok,
                &dir.join("a.npz"),
                &["--max-batch", "0"],
            )),
            vec!["--max-batch"],
        ),
        (
            owned(&embed_args(
                m,
                &ok,
                &dir.join("a.npz"),
                &["--segment-length", "10"],
            )),
            vec!["--segment-length", "one pass"],
        ),
        (
            [
                "fill-mask",
                "--model",
                m,
                "--sequence",
                "MK_AY",
                "--top-k",
                "0",
            ]
            .map(String::from)
            .to_vec(),
            vec!["--top-k"],
        ),
        (
            [
                "generate",
                "--model",
                path(&transfo_xl),
                "--sequence",
                "MKT",
                "--num-samples",
                "0",
            ]
            .map(String::from)
            .to_vec(),
            vec!["--num-samples"],
        ),
        (
            [
                "generate",
                "--model",
                path(&transfo_xl),
                "--sequence",
                "MKT",
                "--temperature",
                "0",
            ]
            .map(String::from)
            .to_vec(),
            vec!["--temperature"],
        ),
        (
            ["generate", "--model", m, "--sequence", "MKT"]
                .map(String::from)
                .to_vec(),
            vec!["BERT", "fill-mask"],
        ),
        (
            [
                "score",
                "--model",
                m,
                "--input",
                path(&ok),
                "--mutations",
                "",
            ]
            .map(String::from)
            .to_vec(),
            vec!["variant ''", "empty"],
        ),
        (
            train_head(
                "secondary-structure",
                path(&bad_letter),
                path(&bad_letter),
                &["--features", "one-hot", "--out", &out("h1")],
            ),
            vec!["letter.csv:2", "'Z' at residue 4"],
        ),
        (
            train_head(
                "secondary-structure",
                path(&bad_length),
                path(&bad_length),
                &["--features", "one-hot", "--out", &out("h2")],
            ),
            vec!["length.csv:2", "3 labels for a sequence of 5"],
        ),
        (
            train_head(
                "localization",
                path(&duplicate),
                path(&duplicate),
                &["--features", "one-hot", "--out", &out("h3")],
            ),
            vec!["duplicate.csv:3", "already used at line 2"],
        ),
        (
            train_head(
                "localization",
                path(&short_row),
                path(&short_row),
                &["--features", "one-hot", "--out", &out("h4")],
            ),
            vec!["short.csv:2"],
        ),
        (
            train_head(
                "localization",
                &sample("localization_train.csv"),
                &sample("localization_valid.csv"),
                &[
                    "--embeddings",
                    &out("one.npz"),
                    "--valid-embeddings",
                    &out("one.npz"),
                    "--out",
                    &out("h5"),
                ],
            ),
            vec!["one.npz", "have no embedding"],
        ),
        (
            [
                "predict",
                "--head",
                &out("no-head"),
                "--input",
                path(&ok),
                "--output",
                &out("p.tsv"),
            ]
            .map(String::from)
            .to_vec(),
            vec!["no-head/head.json"],
        ),
        (
            [
                "predict",
                "--head",
                path(&bad_head),
                "--input",
                path(&ok),
                "--output",
                &out("p.tsv"),
            ]
            .map(String::from)
            .to_vec(),
            vec!["bad-head/head.json", "line 1"],
        ),
        (
            [
                "predict",
                "--head",
                path(&cut_head),
                "--input",
                path(&ok),
                "--output",
                &out("p.tsv"),
            ]
            .map(String::from)
            .to_vec(),
            vec!["cut-head/head.safetensors"],
        ),
        (pretrain(&typo, &train), vec!["typo.toml", "hidden_sise"]),
        (pretrain(&zero, &train), vec!["zero.toml", "schedule.steps"]),
        (
            pretrain(&heads, &train),
            vec!["heads.toml", "num_attention_heads (5)"],
        ),
        (
            pretrain(&arch, &train),
            vec!["arch.toml", "unknown architecture `gpt2`"],
        ),
        (
            pretrain(&crop, &train),
            vec!["crop.toml", "max_position_embeddings"],
        ),
        (pretrain(&broken, &train), vec!["broken.toml", "line 1"]),
        (
            pretrain(&recipe("fine.toml", "", ""), path(&empty)),
            vec!["empty.fasta", "no sequences"],
        ),
    ];
    for (args, expected) in &cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        fails_naming(&args, expected);
    }
    assert!(cases.len() >= 30, "{} cases", cases.len());
}

/// The findings of the 2026-12-07 bad-input campaign (`scripts/campaign.py`), one case each.
#[test]
fn bad_input_catalogue_campaign_findings() {
    let dir = tempfile::tempdir().unwrap();
    let dir = dir.path();
    let model = model(dir);
    let m = path(&model);
    let ok = write(dir, "ok.fasta", ">a\nMKTAYIAKQR\n");
    let copy_model = |name: &str| copy_dir(&model, &dir.join(name));
    let embed_into =
        |model: &Path, name: &str| owned(&embed_args(path(model), &ok, &dir.join(name), &[]));
    let mut cases: Vec<(Vec<String>, Vec<String>)> = Vec::new();

    // A repeated token in vocab.txt (here A in place of L: L would read as unknown).
    let repeated = copy_model("repeated-vocab");
    let vocab = std::fs::read_to_string(model.join("vocab.txt")).unwrap();
    std::fs::write(
        repeated.join("vocab.txt"),
        vocab.replacen("\nL\n", "\nA\n", 1),
    )
    .unwrap();
    cases.push((
        embed_into(&repeated, "r.npz"),
        owned(&["vocab.txt", "token 'A' repeats line"]),
    ));
    // config.json: a negative layer-norm epsilon (NaN embeddings), a value of the wrong type.
    let config = std::fs::read_to_string(model.join("config.json")).unwrap();
    let mut value: serde_json::Value = serde_json::from_str(&config).unwrap();
    for (name, key, bad) in [
        ("eps", "layer_norm_eps", serde_json::json!(-1.0)),
        ("typed", "hidden_size", serde_json::json!("64")),
    ] {
        let copy = copy_model(name);
        let good = value[key].clone();
        value[key] = bad;
        std::fs::write(copy.join("config.json"), value.to_string()).unwrap();
        value[key] = good;
        cases.push((
            embed_into(&copy, &format!("{name}.npz")),
            vec![format!("{name}/config.json"), key.to_string()],
        ));
    }
    // NaN weights: the embedding is refused, not written.
    let nan = copy_model("nan-weights");
    let weights = std::fs::read(model.join("model.safetensors")).unwrap();
    let header_len = u64::from_le_bytes(weights[..8].try_into().unwrap()) as usize;
    let header: serde_json::Value = serde_json::from_slice(&weights[8..8 + header_len]).unwrap();
    let (_, entry) = header
        .as_object()
        .unwrap()
        .iter()
        .find(|(k, _)| k.ends_with("word_embeddings.weight"))
        .unwrap();
    let offsets = &entry["data_offsets"];
    let (start, end) = (
        8 + header_len + offsets[0].as_u64().unwrap() as usize,
        8 + header_len + offsets[1].as_u64().unwrap() as usize,
    );
    let mut broken = weights.clone();
    for value in broken[start..end].chunks_exact_mut(4) {
        value.copy_from_slice(&f32::NAN.to_le_bytes());
    }
    std::fs::write(nan.join("model.safetensors"), broken).unwrap();
    cases.push((
        embed_into(&nan, "nan.npz"),
        owned(&["protein 'a'", "non-finite", "nan-weights", "--resume"]),
    ));
    // A recipe value of the wrong type in [model]: the key is named.
    let tiny = std::fs::read_to_string(repo().join("configs/tiny.toml")).unwrap();
    let typed = write(
        dir,
        "typed.toml",
        &tiny.replace("hidden_size = 32", "hidden_size = \"32\""),
    );
    cases.push((
        owned(&[
            "init-model",
            "--config",
            path(&typed),
            "--out",
            path(&dir.join("x")),
        ]),
        owned(&["typed.toml", "`hidden_size`"]),
    ));
    // A header with no residues at the end of a file.
    let header_only = write(dir, "header-only.fasta", ">a\n");
    cases.push((
        owned(&embed_args(m, &header_only, &dir.join("h.npz"), &[])),
        owned(&["header-only.fasta:1", "no residues"]),
    ));
    // A misspelt location class: an error with its line, not a masked protein.
    let samples = repo().join("data/samples");
    let mars = write(
        dir,
        "mars.csv",
        "id,sequence,location,membrane,split\nA1,MKTAY,Nucleus,soluble,train\nA2,MKTAY,Nucleas,soluble,train\n",
    );
    let valid = samples.join("localization_valid.csv");
    cases.push((
        owned(&localization_one_hot(&mars, &valid, &dir.join("head"))),
        owned(&["mars.csv:3", "'Nucleas'", "Nucleus"]),
    ));
    // A masked position past the end of its protein.
    let at = write(dir, "at.tsv", "id\tposition\na\t30\n");
    cases.push((
        owned(&[
            "recover",
            "--model",
            m,
            "--input",
            path(&ok),
            "--at",
            path(&at),
        ]),
        owned(&["at.tsv:2", "past the end of 'a'"]),
    ));
    for (args, expected) in &cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let expected: Vec<&str> = expected.iter().map(String::as_str).collect();
        fails_naming(&args, &expected);
    }
    assert!(!dir.join("nan.npz").exists());

    // Predictions never replace a file the user has, unless --force.
    let head = dir.join("loc-head");
    let train = samples.join("localization_train.csv");
    let mut args = localization_one_hot(&train, &train, &head);
    args.extend(["--epochs", "1"]);
    let (trained, text) = prottrans(&args);
    assert!(trained, "{text}");
    assert!(
        text.contains("the validation scores are not held out"),
        "{text}"
    );
    let kept = write(dir, "kept.tsv", "the user's own file\n");
    let predict = |extra: &[&str]| {
        let mut args = vec![
            "predict",
            "--head",
            path(&head),
            "--input",
            path(&ok),
            "--output",
            path(&kept),
        ];
        args.extend(extra);
        prottrans(&args)
    };
    let (replaced, text) = predict(&[]);
    assert!(
        !replaced && text.contains("kept.tsv") && text.contains("--force"),
        "{text}"
    );
    assert_eq!(
        std::fs::read_to_string(&kept).unwrap(),
        "the user's own file\n"
    );
    let (replaced, text) = predict(&["--force"]);
    assert!(replaced, "{text}");
    assert!(std::fs::read_to_string(&kept).unwrap().starts_with("id\t"));

    // Ids with '/' get the ProtTrans embedder's keys, and the run says so.
    let slash = write(dir, "slash.fasta", ">sp/P1.2\nMKTAY\n");
    let (embedded, text) = prottrans(&embed_args(m, &slash, &dir.join("s.npz"), &[]));
    assert!(embedded, "{text}");
    assert!(text.contains("'sp/P1.2' as 'sp_P1_2'"), "{text}");
}
