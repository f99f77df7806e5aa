//! Checkpoint key <-> module path tables, one per architecture, declared as data.
//!
//! Each rule pairs a Hugging Face key prefix with a module path prefix; `{i}` stands for a
//! layer index. Rules are applied in order, each at most once, in both directions.

use std::collections::HashMap;
use std::sync::{Mutex, OnceLock};

use burn::store::KeyRemapper;
use prottrans_models::Architecture;
use regex::Regex;

pub use prottrans_models::key_map::{KeyMap, RuleTable};

// Each architecture's tables live in its model file; re-exported for the loaders here.
pub use prottrans_models::albert::{ALBERT_ENCODER, ALBERT_FOR_MASKED_LM};
pub use prottrans_models::bert::{BERT_ENCODER, BERT_FOR_MASKED_LM};
pub use prottrans_models::electra::{ELECTRA_DISCRIMINATOR, ELECTRA_ENCODER, ELECTRA_GENERATOR};
pub use prottrans_models::t5::{
    T5_EMBED_TOKENS_ALIAS, T5_ENCODER_GATED, T5_ENCODER_RELU, T5_GATED, T5_RELU,
};
pub use prottrans_models::transfo_xl::{TRANSFO_XL_ENCODER, TRANSFO_XL_LM_HEAD};
pub use prottrans_models::xlnet::{XLNET_ENCODER, XLNET_LM_HEAD};

/// The architecture whose signature the checkpoint keys show, if any (signatures are tried in
/// registry order).
pub fn detect_architecture<S: AsRef<str>>(keys: &[S]) -> Option<Architecture> {
    Architecture::ALL.iter().copied().find(|architecture| {
        let regex = cached_regex(architecture.signature()).expect("signatures are valid regexes");
        keys.iter().any(|key| regex.is_match(key.as_ref()))
    })
}

/// Turns a prefix template into a regex matching `prefix.` or the whole key.
fn pattern(template: &str) -> String {
    let escaped = regex::escape(template)
        .replace(r"\{i\}", r"(\d+)")
        .replace(r"\{j\}", r"(\d+)");
    format!(r"^{escaped}(\.|$)")
}

fn replacement(template: &str, suffix_group: usize) -> String {
    format!(
        "{}${{{suffix_group}}}",
        template.replace("{i}", "${1}").replace("{j}", "${2}")
    )
}

/// Applying a [`KeyMap`]: the regexes burn's stores take, and single keys for messages.
pub trait ApplyKeyMap {
    /// Checkpoint keys -> module paths.
    fn to_module(&self) -> KeyRemapper;
    /// Module paths -> checkpoint keys.
    fn to_checkpoint(&self) -> KeyRemapper;
    /// Whether an unused checkpoint key is one this class deliberately skips (a head, pooler or
    /// buffer it lacks) or a copy of a tensor it loads.
    fn is_ignored(&self, key: &str) -> bool;
    /// Whether a checkpoint key is a copy of a tensor the class loads (a tied decoder).
    fn is_tied(&self, key: &str) -> bool;
    /// Maps one checkpoint key to its module path (for messages and tests).
    fn map_to_module(&self, key: &str) -> String {
        apply(&self.to_module(), key)
    }
    /// Maps one module path to its checkpoint key (for messages and tests).
    fn map_to_checkpoint(&self, path: &str) -> String {
        apply(&self.to_checkpoint(), path)
    }
}

/// `pattern` compiled once per process (loading a checkpoint asks for the same few dozen
/// regexes once per key; compiling them each time was most of a small load's time).
fn cached_regex(pattern: &str) -> Result<Regex, regex::Error> {
    static CACHE: OnceLock<Mutex<HashMap<String, Regex>>> = OnceLock::new();
    let mut cache = CACHE
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    if let Some(regex) = cache.get(pattern) {
        return Ok(regex.clone());
    }
    let regex = Regex::new(pattern)?;
    cache.insert(pattern.to_string(), regex.clone());
    Ok(regex)
}

/// [`build_remapper`], built once per process for each table and direction: it depends only on
/// the map's `'static` rule and alias slices, so their addresses name it.
fn remapper(map: &KeyMap, to_module: bool) -> KeyRemapper {
    type Key = (usize, usize, usize, usize, bool);
    static CACHE: OnceLock<Mutex<HashMap<Key, KeyRemapper>>> = OnceLock::new();
    let key = (
        map.rules.as_ptr() as usize,
        map.rules.len(),
        map.aliases.as_ptr() as usize,
        map.aliases.len(),
        to_module,
    );
    let mut cache = CACHE
        .get_or_init(Default::default)
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    cache
        .entry(key)
        .or_insert_with(|| build_remapper(map, to_module))
        .clone()
}

fn build_remapper(map: &KeyMap, to_module: bool) -> KeyRemapper {
    let aliases = map
        .aliases
        .iter()
        .filter(|_| to_module)
        .map(|&(from, to)| (from.to_string(), to.to_string()));
    let rules = map
        .rules
        .iter()
        .flat_map(|&(hf_prefix, module_prefix, table)| {
            table.iter().map(move |&(hf, module)| {
                (
                    format!("{hf_prefix}{hf}"),
                    format!("{module_prefix}{module}"),
                )
            })
        });
    let rules = rules.map(|(hf, module)| {
        let (from, to) = if to_module {
            (hf, module)
        } else {
            (module, hf)
        };
        let (from, to) = (from.as_str(), to.as_str());
        let groups = usize::from(from.contains("{i}")) + usize::from(from.contains("{j}"));
        (pattern(from), replacement(to, groups + 1))
    });
    let pairs: Vec<(String, String)> = aliases.chain(rules).collect();
    KeyRemapper::from_patterns(pairs).expect("key map rules are valid regexes")
}

impl ApplyKeyMap for KeyMap {
    fn to_module(&self) -> KeyRemapper {
        remapper(self, true)
    }

    fn to_checkpoint(&self) -> KeyRemapper {
        remapper(self, false)
    }

    fn is_ignored(&self, key: &str) -> bool {
        matches_any(self.ignored, key) || self.is_tied(key)
    }

    fn is_tied(&self, key: &str) -> bool {
        matches_any(self.tied, key)
    }
}

fn matches_any(patterns: &[&str], key: &str) -> bool {
    patterns
        .iter()
        .any(|p| cached_regex(p).is_ok_and(|regex| regex.is_match(key)))
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
            (
                "bert.embeddings.LayerNorm.weight",
                "bert.embeddings.layer_norm.weight",
            ),
            (
                "bert.embeddings.word_embeddings.weight",
                "bert.embeddings.word_embeddings.weight",
            ),
            (
                "bert.encoder.layer.11.attention.self.query.bias",
                "bert.encoder.layer.11.attention.query.bias",
            ),
            (
                "bert.encoder.layer.3.attention.output.dense.weight",
                "bert.encoder.layer.3.attention.output.weight",
            ),
            (
                "bert.encoder.layer.3.attention.output.LayerNorm.bias",
                "bert.encoder.layer.3.attention_norm.bias",
            ),
            (
                "bert.encoder.layer.0.intermediate.dense.weight",
                "bert.encoder.layer.0.feed_forward.intermediate.weight",
            ),
            (
                "bert.encoder.layer.0.output.dense.bias",
                "bert.encoder.layer.0.feed_forward.output.bias",
            ),
            (
                "bert.encoder.layer.29.output.LayerNorm.weight",
                "bert.encoder.layer.29.output_norm.weight",
            ),
            (
                "cls.predictions.transform.dense.weight",
                "cls.transform.weight",
            ),
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
        for key in [
            "bert.encoder.layer.2.attention.self.query.weight",
            "encoder.layer.2.attention.self.query.weight",
        ] {
            assert_eq!(
                BERT_ENCODER.map_to_module(key),
                "encoder.layer.2.attention.query.weight"
            );
        }
        assert_eq!(
            BERT_ENCODER.map_to_checkpoint("embeddings.layer_norm.bias"),
            "embeddings.LayerNorm.bias"
        );
        for skipped in [
            "pooler.dense.weight",
            "cls.predictions.bias",
            "embeddings.position_ids",
        ] {
            assert!(BERT_ENCODER.is_ignored(skipped), "{skipped}");
        }
    }

    #[test]
    fn t5_keys_round_trip() {
        for (map, hf, module) in [
            (
                T5_RELU,
                "encoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight",
                "encoder.relative_attention_bias.weight",
            ),
            (
                T5_RELU,
                "decoder.block.0.layer.0.SelfAttention.relative_attention_bias.weight",
                "decoder.relative_attention_bias.weight",
            ),
            (
                T5_RELU,
                "encoder.block.3.layer.0.SelfAttention.q.weight",
                "encoder.block.3.self_attention.query.weight",
            ),
            (
                T5_RELU,
                "encoder.block.3.layer.0.layer_norm.weight",
                "encoder.block.3.self_attention_norm.weight",
            ),
            (
                T5_RELU,
                "encoder.block.11.layer.1.DenseReluDense.wi.weight",
                "encoder.block.11.feed_forward.intermediate.weight",
            ),
            (
                T5_RELU,
                "encoder.block.1.layer.1.layer_norm.weight",
                "encoder.block.1.feed_forward_norm.weight",
            ),
            (
                T5_RELU,
                "decoder.block.2.layer.1.EncDecAttention.o.weight",
                "decoder.block.2.cross_attention.output.weight",
            ),
            (
                T5_RELU,
                "decoder.block.2.layer.1.layer_norm.weight",
                "decoder.block.2.cross_attention_norm.weight",
            ),
            (
                T5_RELU,
                "decoder.block.2.layer.2.DenseReluDense.wo.weight",
                "decoder.block.2.feed_forward.output.weight",
            ),
            (
                T5_RELU,
                "decoder.block.2.layer.2.layer_norm.weight",
                "decoder.block.2.feed_forward_norm.weight",
            ),
            (
                T5_RELU,
                "encoder.final_layer_norm.weight",
                "encoder.final_layer_norm.weight",
            ),
            (T5_RELU, "shared.weight", "shared.weight"),
            (
                T5_GATED,
                "encoder.block.0.layer.1.DenseReluDense.wi_0.weight",
                "encoder.block.0.feed_forward.intermediate.weight",
            ),
            (
                T5_GATED,
                "decoder.block.0.layer.2.DenseReluDense.wi_1.weight",
                "decoder.block.0.feed_forward.gate.weight",
            ),
            (T5_GATED, "lm_head.weight", "lm_head.weight"),
        ] {
            assert_eq!(map.map_to_module(hf), module, "{hf}");
            assert_eq!(map.map_to_checkpoint(module), hf, "{module}");
        }
        // A gated checkpoint under a ReLU config is not silently half-loaded.
        let stray = "encoder.block.0.layer.1.DenseReluDense.wi_0.weight";
        assert_eq!(T5_RELU.map_to_module(stray), stray);
        assert!(T5_ENCODER_RELU.is_ignored("decoder.block.0.layer.2.DenseReluDense.wo.weight"));
        assert!(T5_RELU.is_ignored("encoder.embed_tokens.weight"));
    }

    #[test]
    fn albert_and_electra_keys_round_trip() {
        for (map, hf, module) in [
            (
                ALBERT_FOR_MASKED_LM,
                "albert.embeddings.LayerNorm.bias",
                "albert.embeddings.layer_norm.bias",
            ),
            (
                ALBERT_FOR_MASKED_LM,
                "albert.encoder.embedding_hidden_mapping_in.weight",
                "albert.encoder.embedding_hidden_mapping_in.weight",
            ),
            (
                ALBERT_FOR_MASKED_LM,
                "albert.encoder.albert_layer_groups.1.albert_layers.0.attention.query.weight",
                "albert.encoder.albert_layer_groups.1.albert_layers.0.attention.query.weight",
            ),
            (
                ALBERT_FOR_MASKED_LM,
                "albert.encoder.albert_layer_groups.1.albert_layers.2.attention.dense.bias",
                "albert.encoder.albert_layer_groups.1.albert_layers.2.attention.output.bias",
            ),
            (
                ALBERT_FOR_MASKED_LM,
                "albert.encoder.albert_layer_groups.0.albert_layers.1.attention.LayerNorm.weight",
                "albert.encoder.albert_layer_groups.0.albert_layers.1.attention_norm.weight",
            ),
            (
                ALBERT_FOR_MASKED_LM,
                "albert.encoder.albert_layer_groups.0.albert_layers.0.ffn.weight",
                "albert.encoder.albert_layer_groups.0.albert_layers.0.feed_forward.intermediate.weight",
            ),
            (
                ALBERT_FOR_MASKED_LM,
                "albert.encoder.albert_layer_groups.0.albert_layers.0.ffn_output.bias",
                "albert.encoder.albert_layer_groups.0.albert_layers.0.feed_forward.output.bias",
            ),
            (
                ALBERT_FOR_MASKED_LM,
                "albert.encoder.albert_layer_groups.0.albert_layers.0.full_layer_layer_norm.bias",
                "albert.encoder.albert_layer_groups.0.albert_layers.0.output_norm.bias",
            ),
            (
                ALBERT_FOR_MASKED_LM,
                "predictions.dense.weight",
                "predictions.transform.weight",
            ),
            (
                ALBERT_FOR_MASKED_LM,
                "predictions.LayerNorm.weight",
                "predictions.layer_norm.weight",
            ),
            (ALBERT_FOR_MASKED_LM, "predictions.bias", "predictions.bias"),
            (
                ELECTRA_DISCRIMINATOR,
                "electra.embeddings.word_embeddings.weight",
                "embeddings.word_embeddings.weight",
            ),
            (
                ELECTRA_DISCRIMINATOR,
                "electra.embeddings.LayerNorm.weight",
                "embeddings.layer_norm.weight",
            ),
            (
                ELECTRA_DISCRIMINATOR,
                "electra.embeddings_project.bias",
                "discriminator.embeddings_project.bias",
            ),
            (
                ELECTRA_DISCRIMINATOR,
                "electra.encoder.layer.1.attention.output.dense.weight",
                "discriminator.encoder.layer.1.attention.output.weight",
            ),
            (
                ELECTRA_DISCRIMINATOR,
                "electra.encoder.layer.0.output.LayerNorm.bias",
                "discriminator.encoder.layer.0.output_norm.bias",
            ),
            (
                ELECTRA_DISCRIMINATOR,
                "discriminator_predictions.dense_prediction.weight",
                "discriminator.discriminator_predictions.dense_prediction.weight",
            ),
            (
                ELECTRA_GENERATOR,
                "electra.encoder.layer.0.intermediate.dense.weight",
                "generator.encoder.layer.0.feed_forward.intermediate.weight",
            ),
            (
                ELECTRA_GENERATOR,
                "generator_predictions.dense.weight",
                "generator.generator_predictions.transform.weight",
            ),
            (
                ELECTRA_GENERATOR,
                "generator_predictions.LayerNorm.bias",
                "generator.generator_predictions.layer_norm.bias",
            ),
            (
                ELECTRA_GENERATOR,
                "generator_lm_head.bias",
                "generator.generator_predictions.bias",
            ),
            (
                ELECTRA_ENCODER,
                "electra.embeddings_project.weight",
                "embeddings_project.weight",
            ),
            (
                ELECTRA_ENCODER,
                "electra.encoder.layer.0.attention.self.key.bias",
                "encoder.layer.0.attention.key.bias",
            ),
        ] {
            assert_eq!(map.map_to_module(hf), module, "{hf}");
            assert_eq!(map.map_to_checkpoint(module), hf, "{module}");
        }
        assert!(ALBERT_FOR_MASKED_LM.is_ignored("sop_classifier.classifier.weight"));
        assert!(ALBERT_FOR_MASKED_LM.is_ignored("predictions.decoder.weight"));
        assert!(ELECTRA_GENERATOR.is_ignored("generator_lm_head.weight"));
        assert!(ELECTRA_ENCODER.is_ignored("discriminator_predictions.dense.weight"));
        assert_eq!(
            ALBERT_ENCODER.map_to_module("albert.embeddings.LayerNorm.weight"),
            "embeddings.layer_norm.weight"
        );
    }

    #[test]
    fn architectures_are_told_apart_by_their_keys() {
        for (keys, want) in [
            (
                &["bert.encoder.layer.0.attention.self.query.weight"][..],
                Some(Architecture::Bert),
            ),
            (
                &["encoder.layer.0.attention.self.query.weight"],
                Some(Architecture::Bert),
            ),
            (
                &[
                    "shared.weight",
                    "encoder.block.0.layer.0.SelfAttention.q.weight",
                ],
                Some(Architecture::T5),
            ),
            (
                &["albert.encoder.albert_layer_groups.0.albert_layers.0.ffn.weight"],
                Some(Architecture::Albert),
            ),
            (
                &[
                    "electra.encoder.layer.0.attention.self.query.weight",
                    "discriminator_predictions.dense.weight",
                ],
                Some(Architecture::Electra),
            ),
            (
                &["transformer.layer.0.rel_attn.q", "transformer.mask_emb"],
                Some(Architecture::Xlnet),
            ),
            (
                &[
                    "transformer.word_emb.emb_layers.0.weight",
                    "transformer.layers.0.dec_attn.qkv_net.weight",
                ],
                Some(Architecture::TransfoXl),
            ),
            (&["something.else"], None),
        ] {
            assert_eq!(detect_architecture(keys), want, "{keys:?}");
        }
    }
}
