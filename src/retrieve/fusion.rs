//! Reciprocal rank fusion (Cormack, Clarke and Büttcher, "Reciprocal Rank Fusion outperforms
//! Condorcet and individual Rank Learning Methods", SIGIR 2009): each list contributes
//! `1 / (k + rank)` for every id it ranks, ranks counted from 1; `k = 60` is the paper's value.

use std::collections::HashMap;
use std::hash::Hash;

/// The constant of the RRF paper.
pub const RRF_K: f32 = 60.0;

/// One fused result: the id, its RRF score, and the rank (from 1) it had in each input list.
#[derive(Debug, Clone, PartialEq)]
pub struct Fused<T> {
    /// The item.
    pub id: T,
    /// Sum of `1 / (k + rank)` over the lists that ranked it.
    pub score: f32,
    /// Its rank in each input list, `None` where the list did not have it.
    pub ranks: Vec<Option<usize>>,
}

/// Fuses ranked lists (best first) with reciprocal rank fusion. Ties keep the order in which
/// the ids were first seen, walking the lists in order, so the result is deterministic.
pub fn rrf<T: Clone + Eq + Hash>(lists: &[Vec<T>], k: f32) -> Vec<Fused<T>> {
    let weighted: Vec<Vec<(T, f32)>> =
        lists.iter().map(|l| l.iter().map(|id| (id.clone(), 1.0)).collect()).collect();
    rrf_weighted(&weighted, k)
}

/// [`rrf`] where each entry's `1 / (k + rank)` is multiplied by its weight (ranks are still
/// positions in its list).
pub fn rrf_weighted<T: Clone + Eq + Hash>(lists: &[Vec<(T, f32)>], k: f32) -> Vec<Fused<T>> {
    let mut index: HashMap<T, usize> = HashMap::new();
    let mut res: Vec<Fused<T>> = Vec::new();
    for (list_idx, list) in lists.iter().enumerate() {
        for (pos, (id, weight)) in list.iter().enumerate() {
            let slot = *index.entry(id.clone()).or_insert_with(|| {
                res.push(Fused { id: id.clone(), score: 0.0, ranks: vec![None; lists.len()] });
                res.len() - 1
            });
            let entry = &mut res[slot];
            // A list that repeats an id counts only its best rank.
            if entry.ranks[list_idx].is_none() {
                let rank = pos + 1;
                entry.ranks[list_idx] = Some(rank);
                entry.score += weight / (k + rank as f32);
            }
        }
    }
    // Stable sort: equal scores keep first-seen order.
    res.sort_by(|a, b| b.score.total_cmp(&a.score));
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hand_computed_scores() {
        // vector: a b c ; text: c a d
        // a: 1/61 + 1/62 = 0.016393 + 0.016129 = 0.032522
        // c: 1/63 + 1/61 = 0.015873 + 0.016393 = 0.032266
        // b: 1/62 = 0.016129 ; d: 1/63 = 0.015873
        let fused = rrf(&[vec!["a", "b", "c"], vec!["c", "a", "d"]], 60.0);
        let ids: Vec<&str> = fused.iter().map(|f| f.id).collect();
        assert_eq!(ids, vec!["a", "c", "b", "d"]);
        assert!((fused[0].score - 0.032522).abs() < 1e-5);
        assert!((fused[1].score - 0.032266).abs() < 1e-5);
        assert!((fused[2].score - 0.016129).abs() < 1e-5);
        assert_eq!(fused[0].ranks, vec![Some(1), Some(2)]);
        assert_eq!(fused[3].ranks, vec![None, Some(3)]);
    }

    #[test]
    fn ties_are_deterministic_and_duplicates_count_once() {
        // x and y both score 1/(1+1) = 0.5; x was seen first.
        let fused = rrf(&[vec!["x"], vec!["y", "y"]], 1.0);
        assert_eq!(fused.iter().map(|f| f.id).collect::<Vec<_>>(), vec!["x", "y"]);
        assert_eq!(fused[1].score, 0.5);
        assert!(rrf::<&str>(&[], 60.0).is_empty());
    }
}
