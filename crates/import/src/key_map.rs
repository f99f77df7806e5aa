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
    /// Rule tables, each with a checkpoint prefix and a module prefix put in front of the two
    /// sides of its rules: one table serves a bare encoder (`""`) and the same encoder inside a
    /// model with heads (`"bert."`), or a tower stored under another name (ELECTRA's
    /// `electra.encoder` is the module's `discriminator.encoder`).
    pub rules: &'static [(&'static str, &'static str, RuleTable)],
    /// `(regex, replacement)` applied to checkpoint keys before `rules` when loading: alternative
    /// spellings such as a missing or extra architecture prefix.
    pub aliases: &'static [(&'static str, &'static str)],
    /// Checkpoint keys (regexes) that are known and deliberately not loaded.
    pub ignored: &'static [&'static str],
}

/// `(checkpoint prefix, module prefix)` pairs; `{i}` and `{j}` stand for layer indices.
pub type RuleTable = &'static [(&'static str, &'static str)];

/// BERT's embedding LayerNorm (BERT, ALBERT, ELECTRA), relative to the encoder.
const BERT_EMBEDDINGS: RuleTable = &[("embeddings.LayerNorm", "embeddings.layer_norm")];

/// BERT's layers (BERT, and each ELECTRA tower), relative to the encoder.
const BERT_LAYERS: RuleTable = &[
    (
        "encoder.layer.{i}.attention.self.query",
        "encoder.layer.{i}.attention.query",
    ),
    (
        "encoder.layer.{i}.attention.self.key",
        "encoder.layer.{i}.attention.key",
    ),
    (
        "encoder.layer.{i}.attention.self.value",
        "encoder.layer.{i}.attention.value",
    ),
    (
        "encoder.layer.{i}.attention.output.dense",
        "encoder.layer.{i}.attention.output",
    ),
    (
        "encoder.layer.{i}.attention.output.LayerNorm",
        "encoder.layer.{i}.attention_norm",
    ),
    (
        "encoder.layer.{i}.intermediate.dense",
        "encoder.layer.{i}.feed_forward.intermediate",
    ),
    (
        "encoder.layer.{i}.output.dense",
        "encoder.layer.{i}.feed_forward.output",
    ),
    (
        "encoder.layer.{i}.output.LayerNorm",
        "encoder.layer.{i}.output_norm",
    ),
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
    rules: &[
        ("bert.", "bert.", BERT_EMBEDDINGS),
        ("bert.", "bert.", BERT_LAYERS),
        ("", "", BERT_MLM_HEAD),
    ],
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
    rules: &[("", "", BERT_EMBEDDINGS), ("", "", BERT_LAYERS)],
    ignored: &[r"^pooler\.", r"^embeddings\.position_ids$", r"^cls\."],
};

/// ALBERT's projection and layer groups, relative to the model; BERT layer names inside.
const ALBERT_LAYERS: RuleTable = &[
    ("embeddings.LayerNorm", "embeddings.layer_norm"),
    (
        "encoder.albert_layer_groups.{i}.albert_layers.{j}.attention.dense",
        "encoder.albert_layer_groups.{i}.albert_layers.{j}.attention.output",
    ),
    (
        "encoder.albert_layer_groups.{i}.albert_layers.{j}.attention.LayerNorm",
        "encoder.albert_layer_groups.{i}.albert_layers.{j}.attention_norm",
    ),
    (
        "encoder.albert_layer_groups.{i}.albert_layers.{j}.ffn_output",
        "encoder.albert_layer_groups.{i}.albert_layers.{j}.feed_forward.output",
    ),
    (
        "encoder.albert_layer_groups.{i}.albert_layers.{j}.ffn",
        "encoder.albert_layer_groups.{i}.albert_layers.{j}.feed_forward.intermediate",
    ),
    (
        "encoder.albert_layer_groups.{i}.albert_layers.{j}.full_layer_layer_norm",
        "encoder.albert_layer_groups.{i}.albert_layers.{j}.output_norm",
    ),
];

/// ALBERT's masked-LM head; its decoder is tied to the word embeddings.
const ALBERT_MLM_HEAD: RuleTable = &[
    ("predictions.dense", "predictions.transform"),
    ("predictions.LayerNorm", "predictions.layer_norm"),
];

/// `AlbertForMaskedLM` and `AlbertForPreTraining` checkpoints (ProtAlbert) into
/// [`AlbertForMaskedLm`](prottrans_models::AlbertForMaskedLm).
pub const ALBERT_FOR_MASKED_LM: KeyMap = KeyMap {
    aliases: &[],
    rules: &[
        ("albert.", "albert.", ALBERT_LAYERS),
        ("", "", ALBERT_MLM_HEAD),
    ],
    ignored: &[
        r"^albert\.pooler\.",
        r"^albert\.embeddings\.position_ids$",
        r"^predictions\.decoder\.", // tied to the word embeddings and `predictions.bias`
        r"^sop_classifier\.",
    ],
};

/// Any ALBERT checkpoint into the bare encoder [`AlbertModel`](prottrans_models::AlbertModel).
pub const ALBERT_ENCODER: KeyMap = KeyMap {
    aliases: &[(r"^albert\.", "")],
    rules: &[("", "", ALBERT_LAYERS)],
    ignored: &[
        r"^pooler\.",
        r"^embeddings\.position_ids$",
        r"^predictions\.",
        r"^sop_classifier\.",
    ],
};

/// One ELECTRA tower's projection (its layers are [`BERT_LAYERS`]), relative to the tower.
const ELECTRA_PROJECTION: RuleTable = &[("embeddings_project", "embeddings_project")];

/// ELECTRA's embeddings: shared by the towers, so stored outside them in the module.
const ELECTRA_EMBEDDINGS: RuleTable = &[
    ("embeddings.LayerNorm", "embeddings.layer_norm"),
    ("embeddings", "embeddings"),
];

/// Keys every ELECTRA checkpoint may carry that are never loaded.
const ELECTRA_IGNORED: &[&str] = &[r"^electra\.embeddings\.position_ids$"];

/// `ElectraForPreTraining` checkpoints (the ProtElectra discriminator) into
/// [`ElectraForPreTraining`](prottrans_models::ElectraForPreTraining).
pub const ELECTRA_DISCRIMINATOR: KeyMap = KeyMap {
    aliases: &[],
    rules: &[
        ("electra.", "", ELECTRA_EMBEDDINGS),
        ("electra.", "discriminator.", ELECTRA_PROJECTION),
        ("electra.", "discriminator.", BERT_LAYERS),
        (
            "discriminator_predictions",
            "discriminator.discriminator_predictions",
            &[("", "")],
        ),
    ],
    ignored: ELECTRA_IGNORED,
};

/// `ElectraForMaskedLM` checkpoints (the ProtElectra generator) into
/// [`ElectraForMaskedLm`](prottrans_models::ElectraForMaskedLm).
pub const ELECTRA_GENERATOR: KeyMap = KeyMap {
    aliases: &[],
    rules: &[
        ("electra.", "", ELECTRA_EMBEDDINGS),
        ("electra.", "generator.", ELECTRA_PROJECTION),
        ("electra.", "generator.", BERT_LAYERS),
        (
            "",
            "generator.generator_predictions.",
            &[
                ("generator_predictions.dense", "transform"),
                ("generator_predictions.LayerNorm", "layer_norm"),
                ("generator_lm_head.bias", "bias"),
            ],
        ),
    ],
    ignored: &[
        r"^electra\.embeddings\.position_ids$",
        r"^generator_lm_head\.weight$", // tied to the word embeddings
    ],
};

/// Either ELECTRA checkpoint into the bare encoder [`ElectraModel`](prottrans_models::ElectraModel).
pub const ELECTRA_ENCODER: KeyMap = KeyMap {
    aliases: &[(r"^(embeddings|embeddings_project|encoder)\.", "electra.$1.")],
    rules: &[
        ("electra.", "", ELECTRA_EMBEDDINGS),
        ("electra.", "", ELECTRA_PROJECTION),
        ("electra.", "", BERT_LAYERS),
    ],
    ignored: &[
        r"^electra\.embeddings\.position_ids$",
        r"^discriminator_predictions\.",
        r"^generator_predictions\.",
        r"^generator_lm_head\.",
    ],
};

/// T5 self-attention, relative to a stack (`encoder.` or `decoder.`). The relative position
/// bias is stored under the first block but belongs to the stack, which computes it once.
const T5_SELF_ATTENTION: RuleTable = &[
    (
        "block.0.layer.0.SelfAttention.relative_attention_bias",
        "relative_attention_bias",
    ),
    (
        "block.{i}.layer.0.SelfAttention.q",
        "block.{i}.self_attention.query",
    ),
    (
        "block.{i}.layer.0.SelfAttention.k",
        "block.{i}.self_attention.key",
    ),
    (
        "block.{i}.layer.0.SelfAttention.v",
        "block.{i}.self_attention.value",
    ),
    (
        "block.{i}.layer.0.SelfAttention.o",
        "block.{i}.self_attention.output",
    ),
    (
        "block.{i}.layer.0.layer_norm",
        "block.{i}.self_attention_norm",
    ),
];

/// The decoder's cross-attention (`layer.1`).
const T5_CROSS_ATTENTION: RuleTable = &[
    (
        "block.{i}.layer.1.EncDecAttention.q",
        "block.{i}.cross_attention.query",
    ),
    (
        "block.{i}.layer.1.EncDecAttention.k",
        "block.{i}.cross_attention.key",
    ),
    (
        "block.{i}.layer.1.EncDecAttention.v",
        "block.{i}.cross_attention.value",
    ),
    (
        "block.{i}.layer.1.EncDecAttention.o",
        "block.{i}.cross_attention.output",
    ),
    (
        "block.{i}.layer.1.layer_norm",
        "block.{i}.cross_attention_norm",
    ),
];

/// Feed-forward tables: `layer.1` in the encoder, `layer.2` in the decoder; ReLU (`wi`) or
/// gated (`wi_0` activated, `wi_1` linear). A checkpoint of the other kind is reported as
/// missing and unexpected weights rather than loaded half-way.
const T5_ENCODER_RELU_FF: RuleTable = &[
    (
        "block.{i}.layer.1.DenseReluDense.wi",
        "block.{i}.feed_forward.intermediate",
    ),
    (
        "block.{i}.layer.1.DenseReluDense.wo",
        "block.{i}.feed_forward.output",
    ),
    (
        "block.{i}.layer.1.layer_norm",
        "block.{i}.feed_forward_norm",
    ),
];
const T5_ENCODER_GATED_FF: RuleTable = &[
    (
        "block.{i}.layer.1.DenseReluDense.wi_0",
        "block.{i}.feed_forward.intermediate",
    ),
    (
        "block.{i}.layer.1.DenseReluDense.wi_1",
        "block.{i}.feed_forward.gate",
    ),
    (
        "block.{i}.layer.1.DenseReluDense.wo",
        "block.{i}.feed_forward.output",
    ),
    (
        "block.{i}.layer.1.layer_norm",
        "block.{i}.feed_forward_norm",
    ),
];
const T5_DECODER_RELU_FF: RuleTable = &[
    (
        "block.{i}.layer.2.DenseReluDense.wi",
        "block.{i}.feed_forward.intermediate",
    ),
    (
        "block.{i}.layer.2.DenseReluDense.wo",
        "block.{i}.feed_forward.output",
    ),
    (
        "block.{i}.layer.2.layer_norm",
        "block.{i}.feed_forward_norm",
    ),
];
const T5_DECODER_GATED_FF: RuleTable = &[
    (
        "block.{i}.layer.2.DenseReluDense.wi_0",
        "block.{i}.feed_forward.intermediate",
    ),
    (
        "block.{i}.layer.2.DenseReluDense.wi_1",
        "block.{i}.feed_forward.gate",
    ),
    (
        "block.{i}.layer.2.DenseReluDense.wo",
        "block.{i}.feed_forward.output",
    ),
    (
        "block.{i}.layer.2.layer_norm",
        "block.{i}.feed_forward_norm",
    ),
];

/// Keys of a `T5ForConditionalGeneration` that are aliases of `shared.weight` or that
/// transformers itself drops.
const T5_IGNORED: &[&str] = &[
    r"^(encoder|decoder)\.embed_tokens\.weight$",
    r"^decoder\.block\.0\.layer\.1\.EncDecAttention\.relative_attention_bias\.",
    // Tied head: the shared embedding decodes (T5 v1.0); a stored copy is not used.
    r"^lm_head\.weight$",
];

/// `T5ForConditionalGeneration` with ReLU feed-forward (T5 v1.0, ProtT5).
pub const T5_RELU: KeyMap = KeyMap {
    aliases: &[],
    rules: &[
        ("encoder.", "encoder.", T5_SELF_ATTENTION),
        ("encoder.", "encoder.", T5_ENCODER_RELU_FF),
        ("decoder.", "decoder.", T5_SELF_ATTENTION),
        ("decoder.", "decoder.", T5_CROSS_ATTENTION),
        ("decoder.", "decoder.", T5_DECODER_RELU_FF),
    ],
    ignored: T5_IGNORED,
};

/// `T5ForConditionalGeneration` with gated feed-forward (T5 v1.1).
pub const T5_GATED: KeyMap = KeyMap {
    aliases: &[],
    rules: &[
        ("encoder.", "encoder.", T5_SELF_ATTENTION),
        ("encoder.", "encoder.", T5_ENCODER_GATED_FF),
        ("decoder.", "decoder.", T5_SELF_ATTENTION),
        ("decoder.", "decoder.", T5_CROSS_ATTENTION),
        ("decoder.", "decoder.", T5_DECODER_GATED_FF),
    ],
    ignored: T5_IGNORED,
};

/// Any T5 checkpoint (`T5EncoderModel`, `T5ForConditionalGeneration`) into the encoder alone:
/// decoder and head are skipped.
pub const T5_ENCODER_RELU: KeyMap = KeyMap {
    aliases: &[],
    rules: &[
        ("encoder.", "encoder.", T5_SELF_ATTENTION),
        ("encoder.", "encoder.", T5_ENCODER_RELU_FF),
    ],
    ignored: &[
        r"^decoder\.",
        r"^lm_head\.",
        r"^encoder\.embed_tokens\.weight$",
    ],
};

/// [`T5_ENCODER_RELU`] for gated feed-forward.
pub const T5_ENCODER_GATED: KeyMap = KeyMap {
    aliases: &[],
    rules: &[
        ("encoder.", "encoder.", T5_SELF_ATTENTION),
        ("encoder.", "encoder.", T5_ENCODER_GATED_FF),
    ],
    ignored: &[
        r"^decoder\.",
        r"^lm_head\.",
        r"^encoder\.embed_tokens\.weight$",
    ],
};

/// Aliases for a T5 checkpoint that stores the embedding only as `encoder.embed_tokens`.
pub const T5_EMBED_TOKENS_ALIAS: &[(&str, &str)] = &[(r"^encoder\.embed_tokens\.", "shared.")];

/// XLNet's layers, relative to the model: the feed-forward block is Transformer-XL's.
const XLNET_LAYERS: RuleTable = &[
    (
        "layer.{i}.ff.layer_1",
        "layer.{i}.ff.feed_forward.intermediate",
    ),
    ("layer.{i}.ff.layer_2", "layer.{i}.ff.feed_forward.output"),
];

/// `XLNetLMHeadModel` checkpoints (ProtXLNet) into
/// [`XlnetLmHeadModel`](prottrans_models::XlnetLmHeadModel).
pub const XLNET_LM_HEAD: KeyMap = KeyMap {
    aliases: &[],
    rules: &[("transformer.", "transformer.", XLNET_LAYERS)],
    ignored: &[r"^lm_loss\.weight$"], // tied to the word embeddings
};

/// Any XLNet checkpoint into the bare [`XlnetModel`](prottrans_models::XlnetModel).
pub const XLNET_ENCODER: KeyMap = KeyMap {
    aliases: &[(r"^transformer\.", "")],
    rules: &[("", "", XLNET_LAYERS)],
    ignored: &[r"^lm_loss\.", r"^sequence_summary\.", r"^logits_proj\."],
};

/// Transformer-XL's embedding and feed-forward names, relative to the model.
const TRANSFO_XL_LAYERS: RuleTable = &[
    ("word_emb.emb_layers.0", "word_emb"),
    (
        "layers.{i}.pos_ff.CoreNet.0",
        "layers.{i}.pos_ff.feed_forward.intermediate",
    ),
    (
        "layers.{i}.pos_ff.CoreNet.3",
        "layers.{i}.pos_ff.feed_forward.output",
    ),
];

/// `TransfoXLLMHeadModel` checkpoints into
/// [`TransfoXlLmHeadModel`](prottrans_models::TransfoXlLmHeadModel).
pub const TRANSFO_XL_LM_HEAD: KeyMap = KeyMap {
    aliases: &[],
    rules: &[
        ("transformer.", "transformer.", TRANSFO_XL_LAYERS),
        ("", "", &[("crit.out_layers.0.bias", "crit_bias")]),
    ],
    ignored: &[
        r"^transformer\.pos_emb\.inv_freq$", // recomputed
        r"^crit\.out_layers\.0\.weight$",    // tied to the word embeddings
        // With `untie_r = false` every layer also stores the model's shared biases.
        r"^transformer\.layers\.\d+\.dec_attn\.r_[rw]_bias$",
    ],
};

/// Any Transformer-XL checkpoint into the bare [`TransfoXlModel`](prottrans_models::TransfoXlModel).
pub const TRANSFO_XL_ENCODER: KeyMap = KeyMap {
    aliases: &[(r"^transformer\.", "")],
    rules: &[("", "", TRANSFO_XL_LAYERS)],
    ignored: &[
        r"^pos_emb\.inv_freq$",
        r"^crit\.",
        r"^layers\.\d+\.dec_attn\.r_[rw]_bias$",
    ],
};

/// Key patterns that only one architecture's checkpoints have, checked in order; used to tell
/// which architecture a weights file holds whatever its `config.json` says.
pub const SIGNATURES: &[(Architecture, &str)] = &[
    (
        Architecture::Electra,
        r"^(electra\.|discriminator_predictions\.|generator_predictions\.|generator_lm_head\.)",
    ),
    (
        Architecture::Albert,
        r"(^|\.)albert_layer_groups\.|^albert\.",
    ),
    (
        Architecture::T5,
        r"(^|\.)block\.\d+\.layer\.\d+\.|^shared\.weight$",
    ),
    (
        Architecture::Xlnet,
        r"(^|\.)layer\.\d+\.rel_attn\.|^transformer\.mask_emb$",
    ),
    (
        Architecture::TransfoXl,
        r"(^|\.)layers\.\d+\.dec_attn\.|^transformer\.word_emb\.",
    ),
    (
        Architecture::Bert,
        r"(^|\.)encoder\.layer\.\d+\.attention\.self\.query\.",
    ),
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

impl KeyMap {
    fn remapper(&self, to_module: bool) -> KeyRemapper {
        let aliases = self
            .aliases
            .iter()
            .filter(|_| to_module)
            .map(|&(from, to)| (from.to_string(), to.to_string()));
        let rules = self
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
