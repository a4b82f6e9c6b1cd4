//! Passage selection: from the fused hits, the best passages that fit the model's context
//! budget, without near-duplicates (neighbouring chunks share an overlap), numbered for citing.

use std::collections::HashMap;

use super::evidence::ScoredSentence;
use super::sentences::SentenceSpan;
use crate::api::{Passage, SearchHit};

/// Share of the shorter of two passages of one document that may overlap the other before the
/// lower-ranked one is dropped as a duplicate.
const MAX_OVERLAP: f64 = 0.5;

/// Tokens `text` takes when no model tokenizer is at hand: about four bytes per token, as
/// for English in BPE vocabularies. The one fallback every budget uses.
pub fn approximate_tokens(text: &str) -> usize {
    text.len() / 4
}

/// Picks passages from `hits` (best first): at most `max_passages`, together at most
/// `budget_tokens` as `count_tokens` counts them, skipping any that mostly repeats a passage
/// already chosen. `sha256_of` maps a document path to its content hash.
pub fn select_passages(
    hits: Vec<SearchHit>,
    sha256_of: &HashMap<String, String>,
    max_passages: usize,
    budget_tokens: usize,
    count_tokens: &mut dyn FnMut(&str) -> usize,
) -> Vec<Passage> {
    let mut chosen: Vec<Passage> = Vec::new();
    let mut used = 0usize;
    for hit in hits {
        if chosen.len() >= max_passages {
            break;
        }
        if chosen.iter().any(|p| duplicates(p, &hit)) {
            continue;
        }
        let tokens = count_tokens(&hit.text);
        if used + tokens > budget_tokens && !chosen.is_empty() {
            continue;
        }
        used += tokens;
        chosen.push(Passage {
            n: chosen.len() as u32 + 1,
            doc_sha256: sha256_of.get(&hit.doc_path).cloned().unwrap_or_default(),
            chunk_id: hit.chunk_id,
            doc_path: hit.doc_path,
            page: hit.page,
            page_end: hit.page_end,
            char_start: hit.char_start,
            char_end: hit.char_end,
            score: hit.score,
            retrievers: hit.retrievers,
            text: hit.text,
            language: hit.language,
        });
    }
    chosen
}

/// `passages` cut for the prompt: each to its best sentence for the question (the first of
/// `scored`, which is best first, for that passage) and `window` sentences on either side of
/// it; `spans` holds each passage's sentences. A passage without a scored sentence stays whole.
pub fn sentence_windows(
    passages: &[Passage],
    spans: &[Vec<SentenceSpan>],
    scored: &[ScoredSentence],
    window: usize,
) -> Vec<Passage> {
    passages
        .iter()
        .enumerate()
        .map(|(i, passage)| {
            let spans = spans.get(i).map(Vec::as_slice).unwrap_or_default();
            let best = scored
                .iter()
                .find(|s| s.passage == i)
                .and_then(|s| spans.iter().position(|span| *span == s.span));
            let Some(best) = best else { return passage.clone() };
            let (lo, hi) = (best.saturating_sub(window), (best + window).min(spans.len() - 1));
            match passage.text.get(spans[lo].start..spans[hi].end) {
                Some(text) => Passage { text: text.to_owned(), ..passage.clone() },
                None => passage.clone(),
            }
        })
        .collect()
}

/// Whether `hit` mostly repeats `kept` (same document, spans overlapping by more than
/// [`MAX_OVERLAP`] of the shorter).
fn duplicates(kept: &Passage, hit: &SearchHit) -> bool {
    if kept.doc_path != hit.doc_path {
        return false;
    }
    let overlap =
        kept.char_end.min(hit.char_end).saturating_sub(kept.char_start.max(hit.char_start));
    let shorter = (kept.char_end - kept.char_start).min(hit.char_end - hit.char_start).max(1);
    overlap as f64 / shorter as f64 > MAX_OVERLAP
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(id: &str, doc: &str, start: u64, end: u64) -> SearchHit {
        SearchHit {
            chunk_id: id.into(),
            doc_path: doc.into(),
            page: 2,
            page_end: 2,
            char_start: start,
            char_end: end,
            heading: String::new(),
            score: 1.0,
            retrievers: vec!["text".into()],
            text: "word ".repeat(((end - start) / 5) as usize),
            language: String::new(),
        }
    }

    #[test]
    fn drops_near_duplicates_and_numbers_in_rank_order() {
        let hits = vec![
            hit("a", "/x.pdf", 0, 1000),
            hit("b", "/x.pdf", 900, 1900), // overlaps a by 10 %: kept
            hit("c", "/x.pdf", 100, 900),  // inside a: dropped
            hit("d", "/y.pdf", 0, 1000),   // other document: kept
        ];
        let sha = HashMap::from([("/x.pdf".to_owned(), "abc".to_owned())]);
        let chosen = select_passages(hits, &sha, 10, 10_000, &mut approximate_tokens);
        let ids: Vec<(&str, u32)> = chosen.iter().map(|p| (p.chunk_id.as_str(), p.n)).collect();
        assert_eq!(ids, vec![("a", 1), ("b", 2), ("d", 3)]);
        assert_eq!(chosen[0].doc_sha256, "abc");
        assert_eq!(chosen[2].doc_sha256, "");
    }

    #[test]
    fn respects_budget_and_count() {
        let hits: Vec<SearchHit> =
            (0..6).map(|i| hit(&format!("h{i}"), &format!("/d{i}"), 0, 400)).collect();
        // 400 chars of "word " → 80 words → 100 "tokens" at len/4.
        let chosen =
            select_passages(hits.clone(), &HashMap::new(), 10, 250, &mut approximate_tokens);
        assert_eq!(chosen.len(), 2);
        let chosen = select_passages(hits, &HashMap::new(), 3, 10_000, &mut approximate_tokens);
        assert_eq!(chosen.len(), 3);
    }

    #[test]
    fn always_keeps_the_best_passage() {
        let hits = vec![hit("big", "/d", 0, 4000)];
        let chosen = select_passages(hits, &HashMap::new(), 5, 10, &mut approximate_tokens);
        assert_eq!(chosen.len(), 1);
    }

    #[test]
    fn sentence_windows_keep_the_best_sentence_and_its_neighbours() {
        let text = "The lease begins on the first of March in Ulm. The tenant pays the rent on the \
                    third working day. The deposit amounts to three months of rent in total. The \
                    landlord may inspect the flat once a year. Pets need the landlord's written consent.";
        let spans = crate::answer::sentences::split_sentences(text);
        assert_eq!(spans.len(), 5);
        let mut chosen = select_passages(
            vec![hit("a", "a.txt", 0, 80), hit("b", "b.txt", 0, 80)],
            &HashMap::new(),
            2,
            1000,
            &mut approximate_tokens,
        );
        chosen[0].text = text.to_owned();
        let scored = |passage: usize, span: SentenceSpan| ScoredSentence {
            passage,
            span,
            coverage: 0.5,
            passage_coverage: 0.5,
            cosine: None,
            score: 0.5,
        };
        // The best sentence of passage 0 is the third; passage 1 has none scored.
        let best = [scored(0, spans[2]), scored(0, spans[4])];
        let all = vec![spans.clone(), Vec::new()];
        let windows = sentence_windows(&chosen, &all, &best, 1);
        assert_eq!(
            windows[0].text,
            "The tenant pays the rent on the third working day. The deposit amounts to three months \
             of rent in total. The landlord may inspect the flat once a year."
        );
        assert_eq!(windows[1], chosen[1], "a passage without scored sentences stays whole");
        assert_eq!(windows[0].chunk_id, chosen[0].chunk_id, "only the text is cut");
        let tight = sentence_windows(&chosen, &all, &best, 0);
        assert_eq!(tight[0].text, "The deposit amounts to three months of rent in total.");
        let wide = sentence_windows(&chosen, &all, &best, 9);
        assert_eq!(wide[0].text, text);
    }
}
