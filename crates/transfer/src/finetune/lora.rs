//! Which linear layers of an encoder LoRA adapts.

use std::collections::BTreeMap;

use prottrans_models::LoraTargets;

use crate::error::TransferError;

/// The encoder's weights LoRA adapts for the short names `chosen`: module paths and their
/// checkpoint names. `names` maps the encoder's module paths to checkpoint names.
pub fn lora_layers(
    architecture: &str,
    targets: LoraTargets,
    chosen: &[String],
    names: &BTreeMap<String, String>,
) -> Result<Vec<(String, String)>, TransferError> {
    if chosen.is_empty() {
        return Err(TransferError::Invalid(
            "--lora-targets names no layer".into(),
        ));
    }
    let available = || {
        targets
            .iter()
            .map(|(name, _)| *name)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut patterns = Vec::new();
    for name in chosen {
        let Some((_, pattern)) = targets.iter().find(|(short, _)| short == name) else {
            let why = if architecture == "xlnet" && ["q", "k", "v", "o"].contains(&name.as_str()) {
                " (XLNet's attention weights are 3-D parameters, not linear layers, in transformers as here; LoRA adapts its feed-forward layers, or use --full)"
            } else {
                ""
            };
            return Err(TransferError::Invalid(format!(
                "--lora-targets: `{name}` is not a layer LoRA adapts in {architecture}{why}; it adapts {}",
                available()
            )));
        };
        patterns.push(regex::Regex::new(pattern).map_err(|e| {
            TransferError::Invalid(format!("the LoRA target `{name}`'s pattern: {e}"))
        })?);
    }
    let layers: Vec<(String, String)> = names
        .iter()
        .filter(|(path, key)| {
            path.ends_with(".weight")
                && key
                    .strip_suffix(".weight")
                    .is_some_and(|module| patterns.iter().any(|p| p.is_match(module)))
        })
        .map(|(path, key)| (path.clone(), key.clone()))
        .collect();
    if layers.is_empty() {
        return Err(TransferError::Invalid(format!(
            "--lora-targets {}: no weight of this {architecture} checkpoint matches",
            chosen.join(",")
        )));
    }
    Ok(layers)
}
