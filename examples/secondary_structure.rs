//! Secondary structure from frozen features, end to end: train the paper's per-residue CNN on
//! real PDB chains, score it on held-out chains (Q3, Q8 with standard errors, against the
//! majority class), reload it and predict a new protein.
//!
//! ```sh
//! cargo run --release --example secondary_structure -- [CHECKPOINT_DIR]
//! ```
//!
//! With CHECKPOINT_DIR (a Hugging Face checkpoint, e.g. `prottrans pretrain`'s `model/` or a
//! download of `Rostlab/prot_bert`) the head reads that model's embeddings; without it, one-hot
//! residues (the paper's baseline). Data: the committed samples of `data/samples/`
//! (ProMod3's 8-state DSSP, split by 30% identity clusters); `data/full/` holds the full sets.

use prottrans::prelude::*;
use prottrans::transfer::{
    Evaluation, FeatureSpec, HeadOptions, HeadTraining, LabelledSet, Task, predict,
};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let device = DeviceSpec::Cpu.device()?;
    let features = match std::env::args().nth(1) {
        Some(dir) => FeatureSpec::Model {
            dir: std::fs::canonicalize(dir)?,
            precision: "f32".into(),
            adapter: None,
        },
        None => FeatureSpec::OneHot,
    };
    let read =
        |name: &str| LabelledSet::read(format!("data/samples/{name}"), Task::SecondaryStructure);
    let (mut train, mut valid, mut test) = (
        read("ss8_train.csv")?,
        read("ss8_valid.csv")?,
        read("ss8_test.csv")?,
    );
    // Models have a fixed number of positions; leave longer chains out everywhere, visibly.
    let max_length = 1000;
    for set in [&mut train, &mut valid, &mut test] {
        let dropped = set.drop_longer_than(max_length);
        println!(
            "{}: {} chains ({} left out as longer than {max_length})",
            set.path.display(),
            set.records.len(),
            dropped.len()
        );
    }

    let out = std::path::PathBuf::from("runs/secondary_structure");
    if out.exists() {
        std::fs::remove_dir_all(&out)?;
    }
    let summary = train_head(HeadTraining {
        train,
        valid,
        features,
        train_embeddings: None,
        valid_embeddings: None,
        max_length: Some(max_length),
        options: HeadOptions {
            epochs: 10,
            ..HeadOptions::default()
        },
        out: out.clone(),
        device: device.clone(),
        resume: false,
    })?;
    println!(
        "trained {} epochs, kept epoch {}",
        summary.epochs_run, summary.best_epoch
    );

    let report = evaluate(Evaluation {
        head: out.clone(),
        test,
        embeddings: None,
        model: None,
        adapter: None,
        out: Some(out.join("test")),
        tsne: false,
        device: device.clone(),
    })?;
    print!("{report}");

    // Melittin, a helical bee-venom peptide.
    let proteins = vec![(
        "melittin".to_string(),
        "GIGAVLKVLTTGLPALISWIKRKRQQ".to_string(),
    )];
    let (_, predictions) = predict(&out, &proteins, None, None, None, &device)?;
    for p in &predictions {
        for o in &p.outputs {
            println!(
                "{} {}: {} (mean confidence {:.2})",
                p.id, o.name, o.prediction, o.confidence
            );
        }
    }
    println!(
        "curves, confusion matrices and the head are in {}",
        out.display()
    );
    Ok(())
}
