//! Evidence scoring: how well each sentence of the retrieved passages answers the question, from
//! two signals that fail differently: the share of the question's terms (weighted by how rare
//! they are in the library) the sentence contains, and the embedding similarity of sentence and
//! question. The best score drives the retrieval gate; the best sentences are evidence mode's
//! answer and the quotes of citations.

use std::collections::HashSet;

use super::sentences::{SentenceSpan, split_sentences};
use crate::api::Passage;
use crate::embed::{Embedder, cosine};
use crate::error::Result;
use crate::language::TextLanguage;

/// Term statistics of the library's full-text index: the same analysis (lower-casing, stop
/// words, stemming) as BM25 search, and each term's inverse document frequency.
pub trait TermStats {
    /// The distinct index terms of `text`, in order of first appearance.
    fn terms(&self, text: &str) -> Vec<String>;
    /// BM25's inverse document frequency of each term (terms the library lacks get the highest).
    fn idf(&self, terms: &[String]) -> Vec<f32>;
}

/// How the two signals combine into one evidence score in [0, 1].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EvidenceWeights {
    /// Weight of the embedding similarity (the rest goes to term coverage).
    pub cosine: f32,
    /// For a multilingual embedder: a sentence in another language than the question shares no
    /// terms with it, so it is judged by its cosine alone, shifted by this so that one threshold
    /// serves both (the same-language threshold minus the cross-language one). `None` (an
    /// embedder without a cross-language calibration): the mix, as for any sentence.
    pub cross_language_shift: Option<f32>,
}

impl EvidenceWeights {
    /// The mix with `cosine` weight, without cross-language judgement.
    pub const fn mix(cosine: f32) -> Self {
        Self { cosine, cross_language_shift: None }
    }
}

/// A text's analysed terms, each weighted by its idf: what the question and each sentence of
/// an answer are measured with, so "how much of this text does that passage hold" is computed
/// one way for the gate, evidence quotes and verification.
#[derive(Debug, Clone, Default)]
pub struct WeightedTerms {
    terms: Vec<(String, f32)>,
    total: f32,
}

impl WeightedTerms {
    /// Analyses `text` with the library's term statistics.
    pub fn new(text: &str, stats: &dyn TermStats) -> Self {
        let terms = stats.terms(text);
        let idf = stats.idf(&terms);
        let terms: Vec<(String, f32)> = terms.into_iter().zip(idf).collect();
        let total = terms.iter().map(|(_, w)| w).sum();
        Self { terms, total }
    }

    /// The terms, in text order (repeats kept).
    pub fn terms(&self) -> impl Iterator<Item = &String> {
        self.terms.iter().map(|(t, _)| t)
    }

    /// How many terms (repeats counted).
    pub fn len(&self) -> usize {
        self.terms.len()
    }

    /// Whether the text has no terms at all.
    pub fn is_empty(&self) -> bool {
        self.terms.is_empty()
    }

    /// Share of the idf weight found in `terms` (0 when the text has no terms).
    pub fn coverage(&self, terms: &HashSet<String>) -> f32 {
        if self.total <= 0.0 {
            return 0.0;
        }
        let found: f32 = self.terms.iter().filter(|(t, _)| terms.contains(t)).map(|(_, w)| w).sum();
        found / self.total
    }

    /// The terms missing from `terms`, rarest first.
    pub fn missing(&self, terms: &HashSet<String>) -> Vec<String> {
        let mut missing: Vec<&(String, f32)> =
            self.terms.iter().filter(|(t, _)| !terms.contains(t)).collect();
        missing.sort_by(|a, b| b.1.total_cmp(&a.1));
        missing.into_iter().map(|(t, _)| t.clone()).collect()
    }
}

/// The question, analysed once.
pub struct Question {
    terms: WeightedTerms,
    vector: Option<Vec<f32>>,
    /// The question's language when the detector is sure of it.
    language: Option<TextLanguage>,
}

impl Question {
    /// Analyses `text` with the library's term statistics; `vector` is its query embedding when
    /// the library has an embedder.
    pub fn new(text: &str, stats: &dyn TermStats, vector: Option<Vec<f32>>) -> Self {
        Self {
            terms: WeightedTerms::new(text, stats),
            vector,
            language: TextLanguage::detect_confident(text),
        }
    }

    /// The question's terms missing from `terms`, rarest first.
    pub fn missing(&self, terms: &HashSet<String>) -> Vec<String> {
        self.terms.missing(terms)
    }

    /// Share of the question's term weight found in `terms` (0 when the question has no terms).
    pub fn coverage(&self, terms: &HashSet<String>) -> f32 {
        self.terms.coverage(terms)
    }
}

/// One sentence of one passage with its evidence signals.
#[derive(Debug, Clone, PartialEq)]
pub struct ScoredSentence {
    /// Index of the passage in the list scored.
    pub passage: usize,
    /// Byte span of the sentence in the passage text.
    pub span: SentenceSpan,
    /// Share of the question's term weight in the sentence.
    pub coverage: f32,
    /// Share of the question's term weight in the whole passage.
    pub passage_coverage: f32,
    /// Embedding similarity of sentence and question, when the library has an embedder.
    pub cosine: Option<f32>,
    /// The combined evidence score.
    pub score: f32,
}

/// The sentences of `passages`, each with a term set, and their embeddings when an embedder is
/// given: computed once, used by the gate, evidence mode and citation checks.
pub struct PassageSentences {
    /// Per passage: its sentences' spans.
    pub spans: Vec<Vec<SentenceSpan>>,
    /// Per passage: each sentence's index terms.
    pub terms: Vec<Vec<HashSet<String>>>,
    /// Per passage: all its index terms.
    pub passage_terms: Vec<HashSet<String>>,
    /// Per passage: each sentence's embedding.
    pub vectors: Option<Vec<Vec<Vec<f32>>>>,
    /// Per passage: its chunk's language as detected at indexing (German or not; `None` when
    /// the detector was not sure, and the passage is then taken to be in the question's).
    pub languages: Vec<Option<TextLanguage>>,
}

impl PassageSentences {
    /// Splits and analyses every passage; embeds all sentences in one batch.
    pub fn new(
        passages: &[Passage],
        stats: &dyn TermStats,
        embedder: Option<&dyn Embedder>,
    ) -> Result<Self> {
        let spans: Vec<Vec<SentenceSpan>> =
            passages.iter().map(|p| split_sentences(&p.text)).collect();
        let terms: Vec<Vec<HashSet<String>>> = passages
            .iter()
            .zip(&spans)
            .map(|(p, ss)| {
                ss.iter().map(|s| stats.terms(s.of(&p.text)).into_iter().collect()).collect()
            })
            .collect();
        let passage_terms = terms.iter().map(|ts| ts.iter().flatten().cloned().collect()).collect();
        let vectors = match embedder {
            None => None,
            Some(embedder) => {
                let texts: Vec<&str> = passages
                    .iter()
                    .zip(&spans)
                    .flat_map(|(p, ss)| ss.iter().map(|s| s.of(&p.text)))
                    .collect();
                let mut flat = embedder.embed_documents(&texts)?.into_iter();
                Some(
                    spans
                        .iter()
                        .map(|ss| ss.iter().filter_map(|_| flat.next()).collect())
                        .collect(),
                )
            }
        };
        let languages = passages
            .iter()
            .map(|p| (!p.language.is_empty()).then(|| TextLanguage::of_code(&p.language)))
            .collect();
        Ok(Self { spans, terms, passage_terms, vectors, languages })
    }

    /// Every sentence scored against `question`, best first.
    pub fn score(&self, question: &Question, weights: EvidenceWeights) -> Vec<ScoredSentence> {
        let mut res = Vec::new();
        for (p, spans) in self.spans.iter().enumerate() {
            let passage_coverage = question.coverage(&self.passage_terms[p]);
            for (s, span) in spans.iter().enumerate() {
                let coverage = question.coverage(&self.terms[p][s]);
                let cosine = match (&self.vectors, &question.vector) {
                    (Some(vectors), Some(q)) => Some(cosine(&vectors[p][s], q).max(0.0)),
                    _ => None,
                };
                // Terms are not shared across languages: a passage in another language than the
                // question is judged by the embedding alone, when there is one.
                let score = match (cosine, weights.cross_language_shift) {
                    (Some(c), Some(shift))
                        if self.languages[p]
                            .zip(question.language)
                            .is_some_and(|(p, q)| p != q) =>
                    {
                        c + shift
                    }
                    _ => combine(coverage, cosine, weights),
                };
                res.push(ScoredSentence {
                    passage: p,
                    span: *span,
                    coverage,
                    passage_coverage,
                    cosine,
                    score,
                });
            }
        }
        res.sort_by(|a, b| b.score.total_cmp(&a.score));
        res
    }
}

/// The evidence score of one sentence: coverage alone without embeddings, else the weighted mix.
pub fn combine(coverage: f32, cosine: Option<f32>, weights: EvidenceWeights) -> f32 {
    match cosine {
        Some(c) => weights.cosine * c + (1.0 - weights.cosine) * coverage,
        None => coverage,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// Term statistics for tests: lower-cased words minus a few stop words; a word's idf is
    /// its length (rare words tend to be long), so the arithmetic is easy to follow.
    pub(crate) struct WordStats;

    impl TermStats for WordStats {
        fn terms(&self, text: &str) -> Vec<String> {
            let mut seen = HashSet::new();
            text.split(|c: char| !c.is_alphanumeric())
                .map(str::to_lowercase)
                .filter(|w| {
                    !w.is_empty() && !["the", "is", "a", "of", "what", "when"].contains(&w.as_str())
                })
                .filter(|w| seen.insert(w.clone()))
                .collect()
        }
        fn idf(&self, terms: &[String]) -> Vec<f32> {
            terms.iter().map(|t| t.len() as f32).collect()
        }
    }

    pub(crate) fn passage(n: u32, text: &str) -> Passage {
        Passage {
            n,
            chunk_id: format!("c{n}"),
            doc_path: format!("/d{n}.txt"),
            doc_sha256: String::new(),
            page: 1,
            page_end: 1,
            char_start: 100,
            char_end: 100 + text.chars().count() as u64,
            score: 0.0,
            retrievers: vec![],
            text: text.into(),
            language: String::new(),
        }
    }

    /// Every text gets the same vector: a cosine of 1 between any two.
    struct SameVector;

    impl Embedder for SameVector {
        fn model_id(&self) -> &str {
            "same"
        }
        fn dimensions(&self) -> usize {
            2
        }
        fn max_input_tokens(&self) -> usize {
            512
        }
        fn embed_documents(
            &self,
            texts: &[&str],
        ) -> Result<Vec<Vec<f32>>, crate::embed::EmbedError> {
            Ok(texts.iter().map(|_| vec![1.0, 0.0]).collect())
        }
        fn embed_query(&self, _: &str) -> Result<Vec<f32>, crate::embed::EmbedError> {
            Ok(vec![1.0, 0.0])
        }
    }

    #[test]
    fn a_passage_in_another_language_is_judged_by_the_embedding_alone() {
        let in_language =
            |n, text, code: &str| Passage { language: code.into(), ..passage(n, text) };
        let passages = vec![
            in_language(1, "The night train to Vienna leaves from platform four.", "eng"),
            in_language(2, "Der Nachtzug nach Wien fährt um elf von Gleis vier ab.", "deu"),
            passage(3, "Nachtzug Wien Gleis vier."),
        ];
        let sentences = PassageSentences::new(&passages, &WordStats, Some(&SameVector)).unwrap();
        assert_eq!(
            sentences.languages,
            vec![Some(TextLanguage::English), Some(TextLanguage::German), None]
        );
        let question = "Wann fährt der Nachtzug nach Wien ab?";
        let q = Question::new(question, &WordStats, Some(vec![1.0, 0.0]));
        let weights = EvidenceWeights { cosine: 0.5, cross_language_shift: Some(-0.25) };
        let scored = sentences.score(&q, weights);
        let of = |n: usize| scored.iter().find(|s| s.passage == n).unwrap();
        // The English passage shares no term with the German question, so its coverage says
        // nothing: the shifted cosine is its score. The German one mixes both signals.
        assert_eq!(of(0).score, 0.75);
        assert!((of(1).score - combine(of(1).coverage, Some(1.0), weights)).abs() < 1e-6);
        assert!(of(1).coverage < 1.0);
        // A chunk whose language was not detected counts as the question's.
        assert!((of(2).score - combine(of(2).coverage, Some(1.0), weights)).abs() < 1e-6);
        // Without a cross-language calibration every sentence gets the mix.
        let scored = sentences.score(&q, EvidenceWeights::mix(0.5));
        let english = scored.iter().find(|s| s.passage == 0).unwrap();
        assert_eq!(english.score, combine(english.coverage, Some(1.0), EvidenceWeights::mix(0.5)));
    }

    #[test]
    fn coverage_weighs_rare_terms() {
        let q = Question::new("When did Rollo swear fealty?", &WordStats, None);
        // terms: did(3) rollo(5) swear(5) fealty(6) → total 19
        let found: HashSet<String> = ["rollo", "fealty"].iter().map(|s| s.to_string()).collect();
        assert!((q.coverage(&found) - 11.0 / 19.0).abs() < 1e-6);
    }

    #[test]
    fn best_sentence_first_without_embeddings() {
        let passages = vec![
            passage(
                1,
                "The Normans lived in France. Rollo agreed to swear fealty to King Charles III.",
            ),
            passage(2, "Steam engines burn coal to boil water."),
        ];
        let sentences = PassageSentences::new(&passages, &WordStats, None).unwrap();
        let q = Question::new("Who did Rollo swear fealty to?", &WordStats, None);
        let scored = sentences.score(&q, EvidenceWeights::mix(0.5));
        assert_eq!(scored.len(), 3);
        assert_eq!(scored[0].passage, 0);
        assert_eq!(
            scored[0].span.of(&passages[0].text),
            "Rollo agreed to swear fealty to King Charles III."
        );
        assert_eq!(scored[0].cosine, None);
        assert!(scored[0].score > 0.6 && scored[2].score == 0.0);
    }

    #[test]
    fn combine_mixes_signals() {
        let w = EvidenceWeights::mix(0.25);
        assert!((combine(0.8, Some(0.4), w) - 0.7).abs() < 1e-6);
        assert_eq!(combine(0.8, None, w), 0.8);
    }
}
