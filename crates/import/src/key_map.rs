//! Checkpoint key <-> module path tables, one per architecture, declared as data.
//!
//! Each rule pairs a Hugging Face key prefix with a module path prefix; `{i}` stands for a
//! layer index. Rules are applied in order, each at most once, in both directions.

use burn::store::KeyRemapper;
use prottrans_models::Architecture;
use regex::Regex;

/// The key mapping of one model type.
#[derive(Debug, Clone, Copy)]
pub struct KeyMap {
    /// Rule tables, each with a prefix put in front of both sides of its rules: one table of
    /// `(checkpoint prefix, module prefix)` pairs serves a bare encoder (`""`) and the same
    /// encoder inside a model with heads (`"bert."`).
    pub rules: &'static [(&'static str, RuleTable)],
    /// `(regex, replacement)` applied to checkpoint keys before `rules` when loading: alternative
    /// spellings such as a missing or extra architecture prefix.
    pub aliases: &'static [(&'static str, &'static str)],
    /// Checkpoint keys (regexes) that are known and deliberately not loaded.
    pub ignored: &'static [&'static str],
}

/// `(checkpoint prefix, module prefix)` pairs; `{i}` stands for a layer index.
pub type RuleTable = &'static [(&'static str, &'static str)];

/// The BERT encoder (embeddings and layers), relative to the encoder.
const BERT_LAYERS: RuleTable = &[
    ("embeddings.LayerNorm", "embeddings.layer_norm"),
    ("encoder.layer.{i}.attention.self.query", "encoder.layer.{i}.attention.query"),
    ("encoder.layer.{i}.attention.self.key", "encoder.layer.{i}.attention.key"),
    ("encoder.layer.{i}.attention.self.value", "encoder.layer.{i}.attention.value"),
    ("encoder.layer.{i}.attention.output.dense", "encoder.layer.{i}.attention.output"),
    ("encoder.layer.{i}.attention.output.LayerNorm", "encoder.layer.{i}.attention_norm"),
    ("encoder.layer.{i}.intermediate.dense", "encoder.layer.{i}.feed_forward.intermediate"),
    ("encoder.layer.{i}.output.dense", "encoder.layer.{i}.feed_forward.output"),
    ("encoder.layer.{i}.output.LayerNorm", "encoder.layer.{i}.output_norm"),
];

/// BERT's masked-LM head; its decoder is tied to the word embeddings.
const BERT_MLM_HEAD: RuleTable = &[
    ("cls.predictions.transform.dense", "cls.transform"),
    ("cls.predictions.transform.LayerNorm", "cls.layer_norm"),
    ("cls.predictions.bias", "cls.bias"),
];

/// `BertForMaskedLM` checkpoints (ProtBert) into [`BertForMaskedLm`](prottrans_models::BertForMaskedLm).
pub const BERT_FOR_MASKED_LM: KeyMap = KeyMap {
    aliases: &[(r"^(embeddings|encoder)\.", "bert.$1.")],
    rules: &[("bert.", BERT_LAYERS), ("", BERT_MLM_HEAD)],
    ignored: &[
        r"^bert\.pooler\.",
        r"^bert\.embeddings\.position_ids$",
        r"^cls\.predictions\.decoder\.", // tied to the word embeddings
        r"^cls\.seq_relationship\.",
    ],
};

/// Any BERT checkpoint (`BertModel`, `BertForMaskedLM`, `BertForPreTraining`) into the bare
/// encoder [`BertModel`](prottrans_models::BertModel): heads and pooler are skipped.
pub const BERT_ENCODER: KeyMap = KeyMap {
    aliases: &[(r"^bert\.", "")],
    rules: &[("", BERT_LAYERS)],
    ignored: &[r"^pooler\.", r"^embeddings\.position_ids$", r"^cls\."],
};

/// Key patterns that only one architecture's checkpoints have, checked in order; used to tell
/// which architecture a weights file holds whatever its `config.json` says.
pub const SIGNATURES: &[(Architecture, &str)] = &[
    (Architecture::Electra, r"^(electra\.|discriminator_predictions\.|generator_predictions\.|generator_lm_head\.)"),
    (Architecture::Albert, r"(^|\.)albert_layer_groups\.|^albert\."),
    (Architecture::T5, r"(^|\.)block\.\d+\.layer\.\d+\.|^shared\.weight$"),
    (Architecture::Xlnet, r"(^|\.)layer\.\d+\.rel_attn\.|^transformer\.mask_emb$"),
    (Architecture::TransfoXl, r"(^|\.)layers\.\d+\.dec_attn\.|^transformer\.word_emb\."),
    (Architecture::Bert, r"(^|\.)encoder\.layer\.\d+\.attention\.self\.query\."),
];

/// The architecture whose signature the checkpoint keys show, if any.
pub fn detect_architecture<S: AsRef<str>>(keys: &[S]) -> Option<Architecture> {
    SIGNATURES.iter().find_map(|&(architecture, signature)| {
        let regex = Regex::new(signature).expect("signatures are valid regexes");
        keys.iter()
            .any(|key| regex.is_match(key.as_ref()))
            .then_some(architecture)
    })
}

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
        let rules = self.rules.iter().flat_map(|&(prefix, table)| {
            table.iter().map(move |&(hf, module)| {
                (format!("{prefix}{hf}"), format!("{prefix}{module}"))
            })
        });
        let rules = rules.map(|(hf, module)| {
            let (from, to) = if to_module { (hf, module) } else { (module, hf) };
            let (from, to) = (from.as_str(), to.as_str());
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
            assert_eq!(BERT_FOR_MASKED_LM.map_to_module(hf), module, "{hf}");
            assert_eq!(BERT_FOR_MASKED_LM.map_to_checkpoint(module), hf, "{module}");
        }
        assert_eq!(
            BERT_FOR_MASKED_LM.map_to_module("encoder.layer.1.output.LayerNorm.bias"),
            "bert.encoder.layer.1.output_norm.bias"
        );
        assert!(BERT_FOR_MASKED_LM.is_ignored("bert.pooler.dense.weight"));
        assert!(BERT_FOR_MASKED_LM.is_ignored("cls.predictions.decoder.weight"));
        assert!(!BERT_FOR_MASKED_LM.is_ignored("bert.encoder.layer.0.output.dense.weight"));
    }

    #[test]
    fn encoder_keys_come_with_or_without_the_bert_prefix() {
        for key in ["bert.encoder.layer.2.attention.self.query.weight", "encoder.layer.2.attention.self.query.weight"] {
            assert_eq!(BERT_ENCODER.map_to_module(key), "encoder.layer.2.attention.query.weight");
        }
        assert_eq!(
            BERT_ENCODER.map_to_checkpoint("embeddings.layer_norm.bias"),
            "embeddings.LayerNorm.bias"
        );
        for skipped in ["pooler.dense.weight", "cls.predictions.bias", "embeddings.position_ids"] {
            assert!(BERT_ENCODER.is_ignored(skipped), "{skipped}");
        }
    }

    #[test]
    fn architectures_are_told_apart_by_their_keys() {
        for (keys, want) in [
            (&["bert.encoder.layer.0.attention.self.query.weight"][..], Some(Architecture::Bert)),
            (&["encoder.layer.0.attention.self.query.weight"], Some(Architecture::Bert)),
            (&["shared.weight", "encoder.block.0.layer.0.SelfAttention.q.weight"], Some(Architecture::T5)),
            (&["albert.encoder.albert_layer_groups.0.albert_layers.0.ffn.weight"], Some(Architecture::Albert)),
            (&["electra.encoder.layer.0.attention.self.query.weight", "discriminator_predictions.dense.weight"], Some(Architecture::Electra)),
            (&["transformer.layer.0.rel_attn.q", "transformer.mask_emb"], Some(Architecture::Xlnet)),
            (&["transformer.word_emb.emb_layers.0.weight", "transformer.layers.0.dec_attn.qkv_net.weight"], Some(Architecture::TransfoXl)),
            (&["something.else"], None),
        ] {
            assert_eq!(detect_architecture(keys), want, "{keys:?}");
        }
    }
}
