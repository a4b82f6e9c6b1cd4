//! Grounded answers (DESIGN.md §6): passage selection, the grounded prompt, evidence scoring
//! for the retrieval gate and evidence mode, citation verification and the audit log. Pure
//! functions over plain types; the engine wires them to retrieval and generation.

pub mod audit;
pub mod evidence;
pub mod guard;
pub mod messages;
pub mod passages;
pub mod prompt;
pub mod sentences;
pub mod verify;

use crate::api::{AnswerSentence, Citation, Passage};
use evidence::ScoredSentence;
use sentences::SentenceSpan;

/// Citation markers as answers write them: `[1][3]`.
pub fn markers(numbers: &[u32]) -> String {
    numbers.iter().map(|n| format!("[{n}]")).collect()
}

/// The citation of `passage` quoting the sentence at `span` of its text.
pub fn citation(passage: &Passage, span: SentenceSpan) -> Citation {
    let quote_start = passage.char_start + passage.text[..span.start].chars().count() as u64;
    let quote = span.of(&passage.text);
    Citation {
        n: passage.n,
        chunk_id: passage.chunk_id.clone(),
        doc_path: passage.doc_path.clone(),
        page: passage.page,
        char_start: passage.char_start,
        char_end: passage.char_end,
        quote: quote.to_owned(),
        quote_start,
        quote_end: quote_start + quote.chars().count() as u64,
    }
}

/// Evidence mode's answer: up to `max_sentences` of the best-scored sentences (`scored` is best
/// first) that reach `threshold` and score at least `relative` of the best, quoted verbatim in
/// reading order of their score, each with its citation.
pub fn evidence_answer(
    passages: &[Passage],
    scored: &[ScoredSentence],
    threshold: f32,
    relative: f32,
    max_sentences: usize,
) -> (Vec<AnswerSentence>, Vec<Citation>) {
    let Some(best) = scored.first().map(|s| s.score) else { return (Vec::new(), Vec::new()) };
    let mut sentences = Vec::new();
    let mut citations: Vec<Citation> = Vec::new();
    for s in scored.iter().filter(|s| s.score >= threshold && s.score >= best * relative) {
        if sentences.len() >= max_sentences {
            break;
        }
        let passage = &passages[s.passage];
        let text = s.span.of(&passage.text).split_whitespace().collect::<Vec<_>>().join(" ");
        if sentences.iter().any(|a: &AnswerSentence| a.text == text) {
            continue;
        }
        if !citations.iter().any(|c| c.n == passage.n) {
            citations.push(citation(passage, s.span));
        }
        sentences.push(AnswerSentence {
            text,
            citations: vec![passage.n],
            supported: true,
            support: s.score,
            attributed: false,
        });
    }
    citations.sort_by_key(|c| c.n);
    (sentences, citations)
}

/// The answer text of evidence mode: each sentence in quotation marks with its marker.
pub fn evidence_text(sentences: &[AnswerSentence]) -> String {
    sentences
        .iter()
        .map(|s| format!("\u{201C}{}\u{201D} {}", s.text, markers(&s.citations)))
        .collect::<Vec<_>>()
        .join("\n")
}

#[cfg(test)]
mod tests {
    use super::evidence::tests::{WordStats, passage};
    use super::evidence::{EvidenceWeights, PassageSentences, Question};
    use super::*;

    #[test]
    fn evidence_quotes_the_best_sentences_with_spans_in_the_document() {
        let passages = vec![
            passage(1, "Bauer signed the lease. The notice period für beide is three months."),
            passage(2, "Rent is due monthly. The notice period may be shortened by agreement."),
        ];
        let sentences = PassageSentences::new(&passages, &WordStats, None).unwrap();
        let q = Question::new("What is the notice period?", &WordStats, None);
        let scored = sentences.score(&q, EvidenceWeights::mix(0.5));
        let (answer, citations) = evidence_answer(&passages, &scored, 0.3, 0.5, 3);
        assert_eq!(answer.len(), 2);
        assert_eq!(answer[0].text, "The notice period für beide is three months.");
        assert_eq!(citations.len(), 2);
        let c = &citations[0];
        assert_eq!(c.n, 1);
        assert_eq!(c.quote, "The notice period für beide is three months.");
        // The passage starts at character 100 of its document; the quote 24 characters in.
        assert_eq!((c.quote_start, c.quote_end), (124, 124 + c.quote.chars().count() as u64));
        let text = evidence_text(&answer);
        assert!(
            text.starts_with("\u{201C}The notice period für beide is three months.\u{201D} [1]\n")
        );
        // Nothing reaches an impossible threshold.
        assert!(evidence_answer(&passages, &scored, 2.0, 0.5, 3).0.is_empty());
    }
}
