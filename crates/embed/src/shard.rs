//! Splitting one input into N shards that separate processes (a scheduler's array tasks) embed
//! on their own, without talking to each other.
//!
//! Every shard reads the whole input and computes the same assignment: proteins are taken in
//! the order of a hash of their key (xxHash3, stable across machines and versions), and each
//! goes to the shard with the fewest residues so far. So which shard holds a protein depends
//! only on the set of (key, length) pairs of the input and on N, never on the order of the
//! file; and the shards differ in residues by at most one protein's length.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt;
use std::str::FromStr;

use crate::error::EmbedError;

/// Shard `index` (1-based) of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Shard {
    /// 1 to `count`.
    pub index: usize,
    /// How many shards the input is split into.
    pub count: usize,
}

impl Shard {
    /// Shard `index` (1-based) of `count`.
    pub fn new(index: usize, count: usize) -> Result<Self, EmbedError> {
        if count == 0 || index == 0 || index > count {
            return Err(EmbedError::Options(format!(
                "shard {index}/{count}: the index runs from 1 to the count (e.g. 1/8 to 8/8)"
            )));
        }
        Ok(Self { index, count })
    }

    /// The shard of this Slurm array task: `SLURM_ARRAY_TASK_ID` counted from
    /// `SLURM_ARRAY_TASK_MIN`, of `SLURM_ARRAY_TASK_COUNT`. The array must be contiguous
    /// (`--array=0-7` or `1-8`, no step and no list), or tasks would miss shards.
    pub fn from_slurm(var: impl Fn(&str) -> Option<String>) -> Result<Self, EmbedError> {
        let number = |name: &str| -> Result<usize, EmbedError> {
            let text = var(name).ok_or_else(|| {
                EmbedError::Options(format!(
                    "--shard auto: {name} is not set (it is set inside a Slurm array job, `sbatch --array`); outside one give --shard I/N"
                ))
            })?;
            text.trim().parse().map_err(|_| {
                EmbedError::Options(format!("--shard auto: {name}='{text}' is not a number"))
            })
        };
        let (id, min, max, count) = (
            number("SLURM_ARRAY_TASK_ID")?,
            number("SLURM_ARRAY_TASK_MIN")?,
            number("SLURM_ARRAY_TASK_MAX")?,
            number("SLURM_ARRAY_TASK_COUNT")?,
        );
        if max < min || max - min + 1 != count {
            return Err(EmbedError::Options(format!(
                "--shard auto: the array runs {min}-{max} but has {count} tasks; shards need a contiguous array (e.g. --array=0-{}), or give --shard I/N yourself",
                count.saturating_sub(1)
            )));
        }
        Self::new(id - min + 1, count)
    }

    /// `0` to `count - 1`.
    fn position(self) -> usize {
        self.index - 1
    }

    /// `{shard}` in an output path made this shard's: `03-of-08`, padded so that the files
    /// sort in shard order.
    pub fn fill_in(self, template: &str) -> String {
        let width = self.count.to_string().len();
        template.replace(
            "{shard}",
            &format!("{:0width$}-of-{:0width$}", self.index, self.count),
        )
    }
}

impl fmt::Display for Shard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

impl FromStr for Shard {
    type Err = EmbedError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let parsed = text
            .split_once('/')
            .and_then(|(i, n)| Some((i.trim().parse().ok()?, n.trim().parse().ok()?)));
        match parsed {
            Some((index, count)) => Self::new(index, count),
            None => Err(EmbedError::Options(format!(
                "shard '{text}': expected I/N, e.g. 3/8 (shard 3 of 8), or auto"
            ))),
        }
    }
}

/// The shard of each protein (0-based positions, in the order given), for proteins given as
/// `(key, residues)`; keys must be unique.
pub fn assign_shards<K: AsRef<str>>(proteins: &[(K, usize)], count: usize) -> Vec<usize> {
    let mut order: Vec<(u64, usize)> = proteins
        .iter()
        .enumerate()
        .map(|(i, (key, _))| (key_hash(key.as_ref()), i))
        .collect();
    // Equal hashes (rare) are ordered by the keys themselves: never by the file's order.
    order.sort_unstable_by(|a, b| {
        a.0.cmp(&b.0)
            .then_with(|| proteins[a.1].0.as_ref().cmp(proteins[b.1].0.as_ref()))
    });
    // The least loaded shard, the lowest-numbered among equals.
    let mut loads: BinaryHeap<Reverse<(usize, usize)>> =
        (0..count).map(|shard| Reverse((0, shard))).collect();
    let mut shards = vec![0; proteins.len()];
    for (_, i) in order {
        let Some(Reverse((load, shard))) = loads.pop() else {
            break; // count == 0: nothing to assign to
        };
        shards[i] = shard;
        loads.push(Reverse((load + proteins[i].1, shard)));
    }
    shards
}

/// Whether `shard` holds the protein at each position of `proteins` (see [`assign_shards`]).
pub(crate) fn members<K: AsRef<str>>(proteins: &[(K, usize)], shard: Shard) -> Vec<bool> {
    assign_shards(proteins, shard.count)
        .into_iter()
        .map(|s| s == shard.position())
        .collect()
}

fn key_hash(key: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(key.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn proteins(n: usize) -> Vec<(String, usize)> {
        (0..n)
            .map(|i| (format!("P{i:05}"), 50 + (i * 7919) % 900))
            .collect()
    }

    #[test]
    fn every_protein_lands_in_one_shard_whatever_the_file_order() {
        let input = proteins(500);
        let shards = assign_shards(&input, 7);
        let mut reversed = input.clone();
        reversed.reverse();
        let shards_reversed = assign_shards(&reversed, 7);
        for (i, shard) in shards.iter().enumerate() {
            assert!(*shard < 7);
            assert_eq!(
                *shard,
                shards_reversed[input.len() - 1 - i],
                "{}",
                input[i].0
            );
        }
    }

    #[test]
    fn shards_differ_by_at_most_one_protein_of_residues() {
        let input = proteins(500);
        let shards = assign_shards(&input, 7);
        let mut loads = [0usize; 7];
        for ((_, length), shard) in input.iter().zip(&shards) {
            loads[*shard] += length;
        }
        let longest = input.iter().map(|p| p.1).max().unwrap();
        let (min, max) = (loads.iter().min().unwrap(), loads.iter().max().unwrap());
        assert!(max - min <= longest, "{loads:?}");
        assert!(*min > 0);
    }

    #[test]
    fn more_shards_than_proteins_leaves_some_empty() {
        let shards = assign_shards(&proteins(3), 5);
        let mut seen = shards.clone();
        seen.sort();
        seen.dedup();
        assert_eq!(
            seen.len(),
            3,
            "three proteins, three distinct shards: {shards:?}"
        );
    }

    #[test]
    fn shard_specs_parse_and_refuse() {
        assert_eq!(
            "3/8".parse::<Shard>().unwrap(),
            Shard { index: 3, count: 8 }
        );
        for bad in ["0/8", "9/8", "3", "a/b", "1/0"] {
            assert!(bad.parse::<Shard>().is_err(), "{bad}");
        }
        assert_eq!(
            Shard::new(3, 12).unwrap().fill_in("out/emb-{shard}.npz"),
            "out/emb-03-of-12.npz"
        );
    }

    #[test]
    fn slurm_array_tasks_count_from_the_array_start() {
        let env = |id: &'static str, min: &'static str, max: &'static str, count: &'static str| {
            move |name: &str| {
                Some(
                    match name {
                        "SLURM_ARRAY_TASK_ID" => id,
                        "SLURM_ARRAY_TASK_MIN" => min,
                        "SLURM_ARRAY_TASK_MAX" => max,
                        "SLURM_ARRAY_TASK_COUNT" => count,
                        _ => return None,
                    }
                    .to_string(),
                )
            }
        };
        assert_eq!(
            Shard::from_slurm(env("0", "0", "7", "8")).unwrap(),
            Shard::new(1, 8).unwrap()
        );
        assert_eq!(
            Shard::from_slurm(env("8", "1", "8", "8")).unwrap(),
            Shard::new(8, 8).unwrap()
        );
        let stepped = Shard::from_slurm(env("2", "0", "6", "4")).unwrap_err();
        assert!(stepped.to_string().contains("contiguous"), "{stepped}");
        let outside = Shard::from_slurm(|_| None).unwrap_err();
        assert!(
            outside.to_string().contains("SLURM_ARRAY_TASK_ID"),
            "{outside}"
        );
    }
}
