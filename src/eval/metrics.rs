//! Ranking metrics computed as trec_eval computes them: gains are the qrels' relevance
//! levels, discounts `log2(rank + 1)`, the ideal ranking sorts all judged-relevant documents
//! by gain, and a query's score is averaged over all queries with judgements.

use std::collections::HashMap;

/// Relevance judgements of one query: document id → relevance level (> 0 is relevant).
pub type Judgements = HashMap<String, u32>;

/// nDCG at cutoff `k` of `ranking` (best first).
pub fn ndcg_at(ranking: &[String], judged: &Judgements, k: usize) -> f64 {
    let dcg: f64 = ranking
        .iter()
        .take(k)
        .enumerate()
        .map(|(idx, doc)| f64::from(*judged.get(doc).unwrap_or(&0)) / (idx as f64 + 2.0).log2())
        .sum();
    let mut gains: Vec<u32> = judged.values().copied().filter(|&g| g > 0).collect();
    gains.sort_unstable_by(|a, b| b.cmp(a));
    let ideal: f64 = gains
        .iter()
        .take(k)
        .enumerate()
        .map(|(idx, &g)| f64::from(g) / (idx as f64 + 2.0).log2())
        .sum();
    if ideal == 0.0 { 0.0 } else { dcg / ideal }
}

/// Share of the relevant documents found in the first `k`.
pub fn recall_at(ranking: &[String], judged: &Judgements, k: usize) -> f64 {
    let relevant = judged.values().filter(|&&g| g > 0).count();
    if relevant == 0 {
        return 0.0;
    }
    let found = ranking.iter().take(k).filter(|d| judged.get(*d).is_some_and(|&g| g > 0)).count();
    found as f64 / relevant as f64
}

/// Reciprocal rank of the first relevant document within the first `k` (0 when none).
pub fn mrr_at(ranking: &[String], judged: &Judgements, k: usize) -> f64 {
    ranking
        .iter()
        .take(k)
        .position(|d| judged.get(d).is_some_and(|&g| g > 0))
        .map_or(0.0, |idx| 1.0 / (idx as f64 + 1.0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn hand_computed_metrics() {
        let judged: Judgements =
            [("a".to_owned(), 1), ("b".to_owned(), 1), ("z".to_owned(), 0)].into();
        let ranking = ids(&["x", "a", "y", "b"]);
        // DCG = 1/log2(3) + 1/log2(5) = 0.630930 + 0.430677 = 1.061606
        // IDCG = 1/log2(2) + 1/log2(3) = 1 + 0.630930 = 1.630930
        // nDCG = 1.061606 / 1.630930 = 0.650921
        assert!((ndcg_at(&ranking, &judged, 10) - 0.650921).abs() < 1e-6);
        // Cutoff 2 keeps only "a": 0.630930 / 1.630930 = 0.386853
        assert!((ndcg_at(&ranking, &judged, 2) - 0.386853).abs() < 1e-6);
        assert_eq!(recall_at(&ranking, &judged, 2), 0.5);
        assert_eq!(recall_at(&ranking, &judged, 10), 1.0);
        assert_eq!(mrr_at(&ranking, &judged, 10), 0.5);
        assert_eq!(mrr_at(&ranking, &judged, 1), 0.0);
        // Graded relevance: gain 2 first, then 1.
        let graded: Judgements = [("a".to_owned(), 2), ("b".to_owned(), 1)].into();
        // DCG = 1/1 + 2/log2(3) = 1 + 1.261860 = 2.261860 ; IDCG = 2 + 1/log2(3) = 2.630930
        assert!((ndcg_at(&ids(&["b", "a"]), &graded, 10) - 0.859719).abs() < 1e-6);
    }
}
