//! Retrieve stage: turns ranked lists from the retrievers (BM25 now, vectors next) into one
//! fused ranking. Fusion is a pure function over ranked ids, so it is deterministic and tested
//! with hand-computed numbers.

pub mod fusion;

use std::collections::HashMap;

use crate::api::SearchHit;

/// Fuses vector and text hits (each best first) with RRF and returns the best `k`, each scored
/// with its RRF sum and naming the retrievers that found it.
pub fn hybrid(vector: Vec<SearchHit>, text: Vec<SearchHit>, k: usize) -> Vec<SearchHit> {
    let lists = vec![
        vector.iter().map(|h| h.chunk_id.clone()).collect::<Vec<_>>(),
        text.iter().map(|h| h.chunk_id.clone()).collect::<Vec<_>>(),
    ];
    let mut by_id: HashMap<String, SearchHit> = HashMap::new();
    for hit in text.into_iter().chain(vector) {
        by_id.insert(hit.chunk_id.clone(), hit);
    }
    let names = ["vector", "text"];
    fusion::rrf(&lists, fusion::RRF_K)
        .into_iter()
        .take(k)
        .filter_map(|fused| {
            let mut hit = by_id.remove(&fused.id)?;
            hit.score = fused.score;
            hit.retrievers = fused
                .ranks
                .iter()
                .zip(names)
                .filter(|(rank, _)| rank.is_some())
                .map(|(_, name)| name.to_owned())
                .collect();
            Some(hit)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(id: &str, score: f32, by: &str) -> SearchHit {
        SearchHit {
            chunk_id: id.into(),
            doc_path: format!("/{id}"),
            page: 1,
            page_end: 1,
            char_start: 0,
            char_end: 1,
            heading: String::new(),
            score,
            retrievers: vec![by.into()],
            text: id.into(),
        }
    }

    #[test]
    fn hybrid_fuses_and_names_retrievers() {
        let vector = vec![hit("a", 0.9, "vector"), hit("b", 0.8, "vector")];
        let text = vec![hit("b", 12.0, "text"), hit("c", 9.0, "text")];
        let fused = hybrid(vector, text, 2);
        // b: 1/62 + 1/61 = 0.032522 beats a: 1/61 = 0.016393 and c: 1/62.
        assert_eq!(fused.iter().map(|h| h.chunk_id.as_str()).collect::<Vec<_>>(), vec!["b", "a"]);
        assert!((fused[0].score - 0.032522).abs() < 1e-5);
        assert_eq!(fused[0].retrievers, vec!["vector", "text"]);
        assert_eq!(fused[1].retrievers, vec!["vector"]);
    }
}
