//! Long lists of tensor names, made short enough to read.

/// Tensor names with their layer indices folded: names that differ only in their numeric path
/// segments become one, written with `*` and the count (`decoder.block.*.layer.0.SelfAttention.k.weight
/// (x24)`), in order of first appearance. Names without a repeat are kept as they are.
///
/// ```
/// let names = ["pooler.dense.weight", "block.0.k.weight", "block.1.k.weight"].map(String::from);
/// assert_eq!(
///     prottrans_import::compact_names(&names),
///     ["pooler.dense.weight", "block.*.k.weight (x2)"]
/// );
/// ```
pub fn compact_names(names: &[String]) -> Vec<String> {
    let pattern = |name: &str| {
        name.split('.')
            .map(|part| {
                if !part.is_empty() && part.bytes().all(|b| b.is_ascii_digit()) {
                    "*"
                } else {
                    part
                }
            })
            .collect::<Vec<_>>()
            .join(".")
    };
    let mut groups: Vec<(String, Vec<&String>)> = Vec::new();
    for name in names {
        let key = pattern(name);
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, members)) => members.push(name),
            None => groups.push((key, vec![name])),
        }
    }
    groups
        .into_iter()
        .map(|(key, members)| match members.as_slice() {
            [single] => (*single).clone(),
            _ => format!("{key} (x{})", members.len()),
        })
        .collect()
}
