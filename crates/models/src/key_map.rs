//! Checkpoint key <-> module path tables, declared as data beside the modules they describe
//! (each architecture's file holds its own); `prottrans-import` applies them.
//!
//! Each rule pairs a Hugging Face key prefix with a module path prefix; `{i}` and `{j}` stand
//! for layer indices. Rules are applied in order, each at most once, in both directions.

/// The key mapping of one model class.
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
    /// Checkpoint keys (regexes) that are known and deliberately not loaded: heads and poolers
    /// the class lacks, buffers the model derives from its config.
    pub ignored: &'static [&'static str],
    /// Checkpoint keys (regexes) that are copies of tensors the class loads (decoders tied to
    /// the word embeddings): not loaded, never reported as skipped, never refused by strict
    /// loading.
    pub tied: &'static [&'static str],
}

/// `(checkpoint prefix, module prefix)` pairs; `{i}` and `{j}` stand for layer indices.
pub type RuleTable = &'static [(&'static str, &'static str)];
