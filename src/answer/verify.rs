//! Citation verification of a generated answer: markers that name no given passage are removed
//! and reported, each sentence is checked against the passages it cites (term overlap and
//! embedding similarity), and each citation gets the passage sentence that best supports it as
//! its verbatim quote.

use std::collections::HashSet;

use super::evidence::{EvidenceWeights, PassageSentences, TermStats, combine};
use super::prompt::REFUSAL;
use super::sentences::split_sentences;
use crate::api::{AnswerSentence, Passage};
use crate::embed::{Embedder, cosine};
use crate::error::Result;

/// An answer after verification.
#[derive(Debug, Clone, PartialEq)]
pub struct Verified {
    /// The sentences, markers stripped, each with its valid citations and support.
    pub sentences: Vec<AnswerSentence>,
    /// Marker numbers that named no passage.
    pub removed: Vec<u32>,
    /// Per cited passage number, the index (passage, sentence) of its best-supporting sentence.
    pub quotes: Vec<(u32, usize)>,
    /// Whether the model answered with the refusal sentence.
    pub refused: bool,
}

impl Verified {
    /// Whether at least one sentence is supported by the passages it cites.
    pub fn any_supported(&self) -> bool {
        self.sentences.iter().any(|s| s.supported)
    }

    /// The answer text rebuilt from the checked sentences, with only valid markers.
    pub fn text(&self) -> String {
        self.sentences
            .iter()
            .map(|s| {
                let marks = super::markers(&s.citations);
                if marks.is_empty() {
                    return s.text.clone();
                }
                match s.text.strip_suffix(['.', '!', '?', ':', ';']) {
                    Some(body) => format!("{body} {marks}{}", &s.text[body.len()..]),
                    None => format!("{} {marks}", s.text),
                }
            })
            .collect::<Vec<_>>()
            .join(" ")
    }
}

/// Checks `answer` against `passages` (whose sentences are analysed in `sentences`).
/// A sentence is supported when its support score reaches `threshold`.
pub fn verify(
    answer: &str,
    passages: &[Passage],
    sentences: &PassageSentences,
    stats: &dyn TermStats,
    embedder: Option<&dyn Embedder>,
    weights: EvidenceWeights,
    threshold: f32,
) -> Result<Verified> {
    let refused = is_refusal(answer);
    let mut removed = Vec::new();
    let mut parsed: Vec<(String, Vec<u32>)> = Vec::new();
    for span in split_sentences(answer) {
        let (text, numbers) = strip_markers(span.of(answer));
        let mut valid = Vec::new();
        for n in numbers {
            if n >= 1 && (n as usize) <= passages.len() {
                if !valid.contains(&n) {
                    valid.push(n);
                }
            } else if !removed.contains(&n) {
                removed.push(n);
            }
        }
        if !text.is_empty() {
            parsed.push((text, valid));
        } else if let Some(last) = parsed.last_mut() {
            // A marker on its own after a sentence break belongs to the sentence before.
            for n in valid {
                if !last.1.contains(&n) {
                    last.1.push(n);
                }
            }
        }
    }
    let vectors = match embedder {
        Some(e) if !parsed.is_empty() => {
            let texts: Vec<&str> = parsed.iter().map(|(t, _)| t.as_str()).collect();
            Some(e.embed_documents(&texts)?)
        }
        _ => None,
    };
    let mut checked = Vec::new();
    let mut best_quote: Vec<(u32, usize, f32)> = Vec::new();
    for (i, (text, citations)) in parsed.into_iter().enumerate() {
        let terms: Vec<String> = stats.terms(&text);
        let weights_of = stats.idf(&terms);
        let total: f32 = weights_of.iter().sum();
        let mut support = 0.0f32;
        for &n in &citations {
            let p = n as usize - 1;
            let in_passage: f32 = terms
                .iter()
                .zip(&weights_of)
                .filter(|(t, _)| sentences.passage_terms[p].contains(*t))
                .map(|(_, w)| w)
                .sum();
            let lexical = if total > 0.0 { in_passage / total } else { 0.0 };
            // The passage sentence closest to the claim: its quote, and the embedding signal.
            let term_set: HashSet<&String> = terms.iter().collect();
            let mut best: Option<(usize, f32, Option<f32>)> = None;
            for (s, sentence_terms) in sentences.terms[p].iter().enumerate() {
                let shared = sentence_terms.iter().filter(|t| term_set.contains(t)).count() as f32;
                let overlap = shared / (terms.len().max(1) as f32);
                let sim = match (&vectors, &sentences.vectors) {
                    (Some(a), Some(b)) => Some(cosine(&a[i], &b[p][s]).max(0.0)),
                    _ => None,
                };
                let rank = combine(overlap, sim, weights);
                if best.is_none_or(|(_, r, _)| rank > r) {
                    best = Some((s, rank, sim));
                }
            }
            let Some((s, rank, sim)) = best else { continue };
            support = support.max(combine(lexical, sim, weights));
            match best_quote.iter_mut().find(|(m, _, _)| *m == n) {
                Some(q) if rank > q.2 => *q = (n, s, rank),
                Some(_) => {}
                None => best_quote.push((n, s, rank)),
            }
        }
        checked.push(AnswerSentence {
            supported: !citations.is_empty() && support >= threshold,
            text,
            citations,
            support,
        });
    }
    best_quote.sort_by_key(|(n, _, _)| *n);
    Ok(Verified {
        sentences: checked,
        removed,
        quotes: best_quote.into_iter().map(|(n, s, _)| (n, s)).collect(),
        refused,
    })
}

/// Whether `answer` is the refusal sentence (give or take case, punctuation and markers).
pub fn is_refusal(answer: &str) -> bool {
    let norm = |s: &str| {
        s.chars()
            .filter(|c| c.is_alphanumeric() || c.is_whitespace())
            .collect::<String>()
            .to_lowercase()
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    let (stripped, _) = strip_markers(answer);
    norm(&stripped).starts_with(&norm(REFUSAL))
}

/// `sentence` without its `[n]`, `[n, m]` and `[n][m]` markers, and the numbers they held.
pub fn strip_markers(sentence: &str) -> (String, Vec<u32>) {
    let mut text = String::with_capacity(sentence.len());
    let mut numbers = Vec::new();
    let mut rest = sentence;
    while let Some(open) = rest.find('[') {
        let Some(close) = rest[open..].find(']').map(|c| open + c) else { break };
        let inner = &rest[open + 1..close];
        let parsed: Option<Vec<u32>> = inner
            .split([',', ';'])
            .map(|part| part.trim().trim_start_matches(['#', 'n', 'N']).parse().ok())
            .collect();
        text.push_str(&rest[..open]);
        match parsed {
            Some(ns) if !inner.trim().is_empty() => numbers.extend(ns),
            _ => text.push_str(&rest[open..=close]),
        }
        rest = &rest[close + 1..];
    }
    text.push_str(rest);
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let text = text.replace(" .", ".").replace(" ,", ",").replace(" !", "!").replace(" ?", "?");
    (text.trim().to_owned(), numbers)
}

#[cfg(test)]
mod tests {
    use super::super::evidence::tests::{WordStats, passage};
    use super::*;

    const W: EvidenceWeights = EvidenceWeights { cosine: 0.5 };

    #[test]
    fn strips_markers_of_every_shape() {
        assert_eq!(
            strip_markers("Notice is three months [1]."),
            ("Notice is three months.".into(), vec![1])
        );
        assert_eq!(
            strip_markers("Rent [2][3] is due [1, 4]."),
            ("Rent is due.".into(), vec![2, 3, 1, 4])
        );
        assert_eq!(
            strip_markers("See [the annex] here."),
            ("See [the annex] here.".into(), vec![])
        );
    }

    #[test]
    fn removes_unknown_markers_and_flags_unsupported_sentences() {
        let passages = vec![
            passage(1, "The notice period is three months. It applies to both parties."),
            passage(2, "Rent is due on the first day of each month."),
        ];
        let sentences = PassageSentences::new(&passages, &WordStats, None).unwrap();
        let answer = "The notice period is three months [1][7]. Rent is due on the first day [2]. \
                      The landlord owns seven boats [1].";
        let v = verify(answer, &passages, &sentences, &WordStats, None, W, 0.5).unwrap();
        assert_eq!(v.removed, vec![7]);
        assert_eq!(v.sentences.len(), 3);
        assert_eq!(v.sentences[0].citations, vec![1]);
        assert!(v.sentences[0].supported);
        assert!(v.sentences[1].supported);
        assert!(!v.sentences[2].supported, "{:?}", v.sentences[2]);
        assert!(v.any_supported());
        assert!(!v.refused);
        assert_eq!(v.quotes, vec![(1, 0), (2, 0)]);
        assert_eq!(
            v.text(),
            "The notice period is three months [1]. Rent is due on the first day [2]. The landlord owns seven boats [1]."
        );
    }

    #[test]
    fn uncited_claims_are_unsupported_and_refusals_are_recognised() {
        let passages = vec![passage(1, "The notice period is three months.")];
        let sentences = PassageSentences::new(&passages, &WordStats, None).unwrap();
        let v = verify(
            "The notice period is three months.",
            &passages,
            &sentences,
            &WordStats,
            None,
            W,
            0.5,
        )
        .unwrap();
        assert!(!v.any_supported());
        assert!(is_refusal("I could not find the answer in your documents."));
        assert!(is_refusal("i could not find the answer in your documents [1]"));
        assert!(!is_refusal("The answer is in your documents."));
    }
}
