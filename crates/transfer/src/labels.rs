//! The label sets of the paper's transfer tasks, in the paper's order (see `PROTTRANS.md`).
//!
//! Labels are class indices; [`UNKNOWN`] marks a label that is missing or not one of the
//! classes. Unknown labels are left out of the loss and of every metric, never guessed.

use serde::{Deserialize, Serialize};

/// The label of a residue or protein whose class is not known.
pub const UNKNOWN: i64 = -1;

/// A named, ordered set of classes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LabelSet {
    /// Short name used in metric names and reports (`dssp3`, `location`, ...).
    pub name: &'static str,
    /// The metric the paper reports for it (`Q3`, `Q10`, ...).
    pub metric: &'static str,
    /// Class names in index order.
    pub classes: &'static [&'static str],
}

impl LabelSet {
    /// Number of classes.
    pub fn len(&self) -> usize {
        self.classes.len()
    }

    /// Always false: every label set has classes.
    pub fn is_empty(&self) -> bool {
        self.classes.is_empty()
    }
}

/// 3-state secondary structure: helix, strand, other.
pub const DSSP3: LabelSet = LabelSet {
    name: "dssp3",
    metric: "Q3",
    classes: &["H", "E", "C"],
};
/// 8-state DSSP secondary structure.
pub const DSSP8: LabelSet = LabelSet {
    name: "dssp8",
    metric: "Q8",
    classes: &["G", "H", "I", "B", "E", "S", "T", "C"],
};
/// Residue disorder as in the released heads: class 0 is the label `0`, class 1 the label `1`.
pub const DISORDER: LabelSet = LabelSet {
    name: "disorder",
    metric: "Q2 disorder",
    classes: &["0", "1"],
};
/// DeepLoc's ten subcellular locations.
pub const LOCATION: LabelSet = LabelSet {
    name: "location",
    metric: "Q10",
    classes: &[
        "Cell membrane",
        "Cytoplasm",
        "Endoplasmic reticulum",
        "Golgi apparatus",
        "Lysosome/Vacuole",
        "Mitochondrion",
        "Nucleus",
        "Peroxisome",
        "Plastid",
        "Extracellular",
    ],
};
/// Membrane-bound or soluble.
pub const MEMBRANE: LabelSet = LabelSet {
    name: "membrane",
    metric: "Q2",
    classes: &["soluble", "membrane"],
};

/// The two transfer problems of the paper.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Task {
    /// Per residue: 3- and 8-state secondary structure (and disorder where labelled).
    SecondaryStructure,
    /// Per protein: 10-class localisation and membrane vs soluble.
    Localization,
}

impl Task {
    /// The label sets predicted, in the order of the head's outputs.
    pub fn label_sets(self, with_disorder: bool) -> Vec<LabelSet> {
        match self {
            Task::SecondaryStructure if with_disorder => vec![DSSP3, DSSP8, DISORDER],
            Task::SecondaryStructure => vec![DSSP3, DSSP8],
            Task::Localization => vec![LOCATION, MEMBRANE],
        }
    }
}

impl std::fmt::Display for Task {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Task::SecondaryStructure => "secondary-structure",
            Task::Localization => "localization",
        })
    }
}

impl std::str::FromStr for Task {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "secondary-structure" | "ss" => Ok(Task::SecondaryStructure),
            "localization" | "localisation" => Ok(Task::Localization),
            other => Err(format!(
                "unknown task '{other}': expected secondary-structure or localization"
            )),
        }
    }
}

/// The DSSP 8-state to 3-state mapping of the paper: H, G, I -> H; E, B -> E; the rest -> C.
pub fn dssp8_to_dssp3(state: u8) -> u8 {
    match state {
        b'H' | b'G' | b'I' => b'H',
        b'E' | b'B' => b'E',
        _ => b'C',
    }
}

/// Normalises a location name to a [`LOCATION`] index: case, `.`/`_` for spaces (DeepLoc's
/// `Cell.membrane`) and a few synonyms are accepted. `None` for names of no class.
pub fn location_index(name: &str) -> Option<usize> {
    let norm = |s: &str| {
        s.trim()
            .to_lowercase()
            .replace(['.', '_', '-'], " ")
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    let wanted = norm(name);
    let synonym = match wanted.as_str() {
        "er" => "endoplasmic reticulum",
        "golgi" => "golgi apparatus",
        "lysosome" | "vacuole" | "lysosome/vacuole" => "lysosome/vacuole",
        "secreted" | "extracellular space" => "extracellular",
        "mitochondria" => "mitochondrion",
        "chloroplast" => "plastid",
        "plasma membrane" => "cell membrane",
        other => other,
    }
    .to_string();
    LOCATION.classes.iter().position(|c| norm(c) == synonym)
}

/// Parses a membrane label: `membrane`/`M`/`1` and `soluble`/`S`/`0`; `U`, `unknown` and
/// empty are unknown. `Err` for anything else.
pub fn membrane_label(value: &str) -> Result<i64, String> {
    match value.trim().to_lowercase().as_str() {
        "membrane" | "m" | "1" | "1.0" => Ok(1),
        "soluble" | "s" | "0" | "0.0" => Ok(0),
        "" | "u" | "unknown" | "-" => Ok(UNKNOWN),
        other => Err(format!(
            "membrane label '{other}' is none of membrane/soluble/M/S/U/1/0"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn location_names_in_deeploc_spelling() {
        assert_eq!(location_index("Cell.membrane"), Some(0));
        assert_eq!(location_index("Endoplasmic.reticulum"), Some(2));
        assert_eq!(location_index("Lysosome/Vacuole"), Some(4));
        assert_eq!(location_index("extracellular"), Some(9));
        assert_eq!(location_index("Secreted"), Some(9));
        assert_eq!(location_index("Cytoplasm;Nucleus"), None);
    }

    #[test]
    fn eight_to_three_states() {
        let three: String = "GHIBESTC"
            .bytes()
            .map(|b| dssp8_to_dssp3(b) as char)
            .collect();
        assert_eq!(three, "HHHEECCC");
    }

    #[test]
    fn membrane_labels() {
        assert_eq!(membrane_label("M"), Ok(1));
        assert_eq!(membrane_label("soluble"), Ok(0));
        assert_eq!(membrane_label("U"), Ok(UNKNOWN));
        assert!(membrane_label("maybe").is_err());
    }
}
