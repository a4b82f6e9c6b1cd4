//! What each part of the full-text analysis earns: BM25 alone over the paragraphs of a
//! SQuAD-layout file (each paragraph one chunk, its language detected as at indexing), asked
//! every question; recall@1/5/10 of the gold paragraph with the full German analysis, without
//! compound parts, without stemming, and with none of it (every chunk through the English
//! analyzer, as before German was treated apart). No embedder: it runs in seconds.

use std::collections::HashMap;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::index::analysis::AnalysisOptions;
use crate::index::fulltext::{FullText, TextEntry};

#[derive(Debug, Deserialize)]
struct QuestionLine {
    #[serde(default)]
    pid: String,
    question: String,
}

#[derive(Debug, Deserialize)]
struct ParagraphLine {
    pid: String,
    title: String,
    context: String,
}

/// One analysis variant's recall.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AnalyzerRun {
    /// Which parts of the analysis were on.
    pub variant: String,
    /// Questions whose gold paragraph came first.
    pub recall_at_1: f64,
    /// ... among the first five.
    pub recall_at_5: f64,
    /// ... among the first ten.
    pub recall_at_10: f64,
    /// Questions asked (those whose gold paragraph is in the file).
    pub questions: usize,
    /// Paragraphs indexed.
    pub paragraphs: usize,
    /// Paragraphs detected as German.
    pub german_paragraphs: usize,
}

/// The variants, in the order they are reported.
pub fn variants() -> Vec<(&'static str, AnalysisOptions)> {
    let all = AnalysisOptions::default();
    vec![
        ("english analyzer for all (before)", AnalysisOptions { german: false, ..all }),
        (
            "german: folding, no stemming, no parts",
            AnalysisOptions {
                german_stemming: false,
                compound_parts: false,
                query_parts: false,
                ..all
            },
        ),
        (
            "german: folding, stemming, no parts",
            AnalysisOptions { compound_parts: false, query_parts: false, ..all },
        ),
        ("german: folding, no stemming, parts", AnalysisOptions { german_stemming: false, ..all }),
        (
            "german: folding, stemming, parts of library words",
            AnalysisOptions { query_parts: false, ..all },
        ),
        (
            "german: folding, stemming, parts of question words",
            AnalysisOptions { compound_parts: false, ..all },
        ),
        ("german: folding, stemming, both parts (the library)", all),
    ]
}

/// Runs every variant over `paragraphs` with `questions`, building indexes under `work`.
pub fn evaluate(questions: &Path, paragraphs: &Path, work: &Path) -> Result<Vec<AnalyzerRun>> {
    let questions: Vec<QuestionLine> = super::read_jsonl(questions)?;
    let paragraphs: Vec<ParagraphLine> = super::read_jsonl(paragraphs)?;
    let languages: Vec<String> =
        paragraphs.iter().map(|p| crate::chunk::detect_language(&p.context)).collect();
    let german_paragraphs = languages.iter().filter(|l| *l == "deu").count();
    let known: HashMap<&str, ()> = paragraphs.iter().map(|p| (p.pid.as_str(), ())).collect();
    let asked: Vec<&QuestionLine> =
        questions.iter().filter(|q| known.contains_key(q.pid.as_str())).collect();
    if asked.is_empty() {
        return Err(Error::user("no question has its gold paragraph (pid) in the paragraphs file"));
    }
    let mut runs = Vec::new();
    for (i, (name, options)) in variants().into_iter().enumerate() {
        let dir = work.join(format!("variant-{i}"));
        let index = FullText::open_with(&dir, options)?;
        let entries: Vec<TextEntry<'_>> = paragraphs
            .iter()
            .zip(&languages)
            .map(|(p, language)| TextEntry {
                chunk_id: &p.pid,
                doc_id: &p.pid,
                text: &p.context,
                title: &p.title,
                before: "",
                after: "",
                language,
            })
            .collect();
        index.rebuild(|add| add(&entries))?;
        let mut found = [0usize; 3];
        for q in &asked {
            let hits = index.search(&q.question, 10)?;
            let rank = hits.iter().position(|(id, _)| *id == q.pid);
            for (slot, k) in [1, 5, 10].into_iter().enumerate() {
                found[slot] += usize::from(rank.is_some_and(|r| r < k));
            }
        }
        let rate = |n: usize| n as f64 / asked.len() as f64;
        runs.push(AnalyzerRun {
            variant: name.to_owned(),
            recall_at_1: rate(found[0]),
            recall_at_5: rate(found[1]),
            recall_at_10: rate(found[2]),
            questions: asked.len(),
            paragraphs: paragraphs.len(),
            german_paragraphs,
        });
    }
    Ok(runs)
}
