//! Checkpoint key <-> module path tables, one per architecture, declared as data.
//!
//! Each rule pairs a Hugging Face key prefix with a module path prefix; `{i}` stands for a
//! layer index. Rules are applied in order, each at most once, in both directions.

use burn::store::KeyRemapper;
use regex::Regex;

/// The key mapping of one architecture.
#[derive(Debug, Clone, Copy)]
pub struct KeyMap {
    /// `(checkpoint prefix, module prefix)` pairs.
    pub rules: &'static [(&'static str, &'static str)],
    /// `(regex, replacement)` applied to checkpoint keys before `rules` when loading: alternative
    /// spellings such as a missing architecture prefix.
    pub aliases: &'static [(&'static str, &'static str)],
    /// Checkpoint keys (regexes) that are known and deliberately not loaded.
    pub ignored: &'static [&'static str],
}

/// `BertForMaskedLM` checkpoints (ProtBert).
pub const BERT: KeyMap = KeyMap {
    aliases: &[(r"^(embeddings|encoder)\.", "bert.$1.")],
    rules: &[
        ("bert.embeddings.LayerNorm", "bert.embeddings.layer_norm"),
        ("bert.encoder.layer.{i}.attention.self.query", "bert.encoder.layer.{i}.attention.query"),
        ("bert.encoder.layer.{i}.attention.self.key", "bert.encoder.layer.{i}.attention.key"),
        ("bert.encoder.layer.{i}.attention.self.value", "bert.encoder.layer.{i}.attention.value"),
        ("bert.encoder.layer.{i}.attention.output.dense", "bert.encoder.layer.{i}.attention.output"),
        ("bert.encoder.layer.{i}.attention.output.LayerNorm", "bert.encoder.layer.{i}.attention_norm"),
        ("bert.encoder.layer.{i}.intermediate.dense", "bert.encoder.layer.{i}.feed_forward.intermediate"),
        ("bert.encoder.layer.{i}.output.dense", "bert.encoder.layer.{i}.feed_forward.output"),
        ("bert.encoder.layer.{i}.output.LayerNorm", "bert.encoder.layer.{i}.output_norm"),
        ("cls.predictions.transform.dense", "cls.transform"),
        ("cls.predictions.transform.LayerNorm", "cls.layer_norm"),
        ("cls.predictions.bias", "cls.bias"),
    ],
    ignored: &[
        r"^bert\.pooler\.",
        r"^bert\.embeddings\.position_ids$",
        r"^cls\.predictions\.decoder\.", // tied to the word embeddings
        r"^cls\.seq_relationship\.",
    ],
};

/// Turns a prefix template into a regex matching `prefix.` or the whole key.
fn pattern(template: &str) -> String {
    let escaped = regex::escape(template).replace(r"\{i\}", r"(\d+)");
    format!(r"^{escaped}(\.|$)")
}

fn replacement(template: &str, suffix_group: usize) -> String {
    format!("{}${{{suffix_group}}}", template.replace("{i}", "${1}"))
}

impl KeyMap {
    fn remapper(&self, to_module: bool) -> KeyRemapper {
        let aliases = self
            .aliases
            .iter()
            .filter(|_| to_module)
            .map(|&(from, to)| (from.to_string(), to.to_string()));
        let rules = self.rules.iter().map(|&(hf, module)| {
            let (from, to) = if to_module { (hf, module) } else { (module, hf) };
            let groups = usize::from(from.contains("{i}"));
            (pattern(from), replacement(to, groups + 1))
        });
        let pairs: Vec<(String, String)> = aliases.chain(rules).collect();
        KeyRemapper::from_patterns(pairs).expect("key map rules are valid regexes")
    }

    /// Checkpoint keys -> module paths.
    pub fn to_module(&self) -> KeyRemapper {
        self.remapper(true)
    }

    /// Module paths -> checkpoint keys.
    pub fn to_checkpoint(&self) -> KeyRemapper {
        self.remapper(false)
    }

    /// Whether an unused checkpoint key is one this architecture deliberately skips.
    pub fn is_ignored(&self, key: &str) -> bool {
        self.ignored
            .iter()
            .any(|p| Regex::new(p).is_ok_and(|regex| regex.is_match(key)))
    }

    /// Maps one checkpoint key to its module path (for messages and tests).
    pub fn map_to_module(&self, key: &str) -> String {
        apply(&self.to_module(), key)
    }

    /// Maps one module path to its checkpoint key (for messages and tests).
    pub fn map_to_checkpoint(&self, path: &str) -> String {
        apply(&self.to_checkpoint(), path)
    }
}

fn apply(remapper: &KeyRemapper, key: &str) -> String {
    let mut key = key.to_string();
    for (regex, replacement) in remapper.to_regex_pairs() {
        if regex.is_match(&key) {
            key = regex.replace_all(&key, replacement.as_str()).to_string();
        }
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bert_keys_round_trip() {
        for (hf, module) in [
            ("bert.embeddings.LayerNorm.weight", "bert.embeddings.layer_norm.weight"),
            ("bert.embeddings.word_embeddings.weight", "bert.embeddings.word_embeddings.weight"),
            ("bert.encoder.layer.11.attention.self.query.bias", "bert.encoder.layer.11.attention.query.bias"),
            ("bert.encoder.layer.3.attention.output.dense.weight", "bert.encoder.layer.3.attention.output.weight"),
            ("bert.encoder.layer.3.attention.output.LayerNorm.bias", "bert.encoder.layer.3.attention_norm.bias"),
            ("bert.encoder.layer.0.intermediate.dense.weight", "bert.encoder.layer.0.feed_forward.intermediate.weight"),
            ("bert.encoder.layer.0.output.dense.bias", "bert.encoder.layer.0.feed_forward.output.bias"),
            ("bert.encoder.layer.29.output.LayerNorm.weight", "bert.encoder.layer.29.output_norm.weight"),
            ("cls.predictions.transform.dense.weight", "cls.transform.weight"),
            ("cls.predictions.bias", "cls.bias"),
        ] {
            assert_eq!(BERT.map_to_module(hf), module, "{hf}");
            assert_eq!(BERT.map_to_checkpoint(module), hf, "{module}");
        }
        assert_eq!(
            BERT.map_to_module("encoder.layer.1.output.LayerNorm.bias"),
            "bert.encoder.layer.1.output_norm.bias"
        );
        assert!(BERT.is_ignored("bert.pooler.dense.weight"));
        assert!(BERT.is_ignored("cls.predictions.decoder.weight"));
        assert!(!BERT.is_ignored("bert.encoder.layer.0.output.dense.weight"));
    }
}
