//! The authors' batching for embedding: longest proteins first, batches bounded by residues
//! and by proteins, long proteins alone.

/// Plans batches of indices into `lengths`.
///
/// Proteins are taken longest first (ties in input order). A batch grows until one more
/// protein would take it over `max_residues` residues or `max_batch` proteins; a protein
/// longer than `alone_above` residues (or than `max_residues`) is a batch of its own. Sorting
/// by length keeps padding small, and longest first meets memory trouble at the start.
pub fn plan_batches(
    lengths: &[usize],
    max_residues: usize,
    max_batch: usize,
    alone_above: usize,
) -> Vec<Vec<usize>> {
    let mut order: Vec<usize> = (0..lengths.len()).collect();
    order.sort_by_key(|&i| std::cmp::Reverse(lengths[i]));
    let mut batches = Vec::new();
    let mut batch: Vec<usize> = Vec::new();
    let mut residues = 0;
    for i in order {
        let length = lengths[i];
        if length > alone_above || length > max_residues {
            batches.push(vec![i]);
            continue;
        }
        if !batch.is_empty() && (residues + length > max_residues || batch.len() >= max_batch) {
            batches.push(std::mem::take(&mut batch));
            residues = 0;
        }
        batch.push(i);
        residues += length;
    }
    if !batch.is_empty() {
        batches.push(batch);
    }
    batches
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_first_within_budgets() {
        let lengths = [10, 50, 30, 30, 5, 2000, 40];
        let batches = plan_batches(&lengths, 100, 3, 1000);
        assert_eq!(batches[0], vec![5], "long proteins run alone and first");
        assert_eq!(batches[1], vec![1, 6], "50 + 40 fits, + 30 would not");
        assert_eq!(
            batches[2],
            vec![2, 3, 0],
            "30 + 30 + 10, then the sequence cap"
        );
        assert_eq!(batches[3], vec![4]);
        let mut all: Vec<usize> = batches.concat();
        all.sort();
        assert_eq!(
            all,
            (0..lengths.len()).collect::<Vec<_>>(),
            "every protein exactly once"
        );
    }

    #[test]
    fn proteins_above_the_residue_budget_run_alone() {
        assert_eq!(
            plan_batches(&[300, 20], 100, 10, 1000),
            vec![vec![0], vec![1]]
        );
    }
}
