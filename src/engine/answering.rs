//! `Engine::ask`: retrieval → passage selection → retrieval gate → evidence quotes or grounded
//! generation → citation verification → audit record. The generator is loaded on first use
//! and kept; generation runs on a blocking thread and streams through a channel.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tracing::instrument;

use super::Engine;
use super::indexing::sha256_file;
use crate::answer::audit::{self, AuditModel, AuditPassage, AuditRecord, AuditRetrieval};
use crate::answer::evidence::{
    EvidenceWeights, PassageSentences, Question, ScoredSentence, TermStats,
};
use crate::answer::passages::select_passages;
use crate::answer::verify::verify;
use crate::answer::{citation, evidence_answer, evidence_text, prompt};
use crate::api::{
    AbstainCause, Answer, AnswerMode, AnswerTimings, AskOptions, GateDecision, Passage, SearchMode,
};
use crate::error::{Error, Result};
use crate::generate::candle_gguf::GgufGenerator;
use crate::generate::{GenerationParams, Generator, StopReason, TokenSink};
use crate::index::Store;
use crate::progress::CancelToken;

/// A loaded generator with what the audit log records about it.
pub(crate) struct LoadedGenerator {
    path: PathBuf,
    sha256: String,
    model: Mutex<Box<dyn Generator>>,
}

impl LoadedGenerator {
    fn name(&self) -> String {
        self.path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
    }

    fn count_tokens(&self, text: &str) -> usize {
        match self.model.lock() {
            Ok(model) => model.count_tokens(text).unwrap_or(text.len() / 4),
            Err(_) => text.len() / 4,
        }
    }
}

/// The generator slot of an engine: empty until the first generated answer.
#[derive(Default)]
pub(crate) struct GeneratorSlot(tokio::sync::Mutex<Option<Arc<LoadedGenerator>>>);

impl std::fmt::Debug for GeneratorSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeneratorSlot").finish_non_exhaustive()
    }
}

/// The full-text index's analysis and statistics, as evidence scoring sees them.
struct StoreTerms<'a>(&'a Store);

impl TermStats for StoreTerms<'_> {
    fn terms(&self, text: &str) -> Vec<String> {
        self.0.analyze(text)
    }
    fn idf(&self, terms: &[String]) -> Vec<f32> {
        self.0.idf(terms)
    }
}

/// What retrieval found for a question, scored for the gate and for quoting.
pub struct Evidence {
    /// The passages selected for the prompt, numbered.
    pub passages: Vec<Passage>,
    /// Their sentences, analysed and embedded.
    pub sentences: PassageSentences,
    /// The question, analysed.
    pub question: Question,
    /// Every sentence scored against the question for the gate, best first.
    pub scored: Vec<ScoredSentence>,
    /// The gate's decision on the best score.
    pub gate: GateDecision,
    /// Search mode used.
    pub mode: SearchMode,
    /// Milliseconds spent retrieving and scoring.
    pub retrieve_ms: f64,
}

impl Engine {
    /// Retrieves and scores the evidence for `question`; `count_tokens` sizes passages for the
    /// model's prompt.
    pub async fn evidence(
        &self,
        question: &str,
        k: usize,
        count_tokens: &mut dyn FnMut(&str) -> usize,
    ) -> Result<Evidence> {
        let started = Instant::now();
        let mode = self.default_search_mode();
        // One embedding of the question serves the vector search and the sentence scores.
        let embedder = if mode == SearchMode::Text { None } else { self.embedder()? };
        let vector = embedder.as_ref().map(|e| e.embed_query(question)).transpose()?;
        let hits = self.search_with(question, vector.as_deref(), mode, k.max(1)).await?;
        let sha256_of = self.sha256_by_path(hits.iter().map(|h| h.doc_path.as_str())).await?;
        let cfg = &self.config.answer;
        let passages = select_passages(
            hits,
            &sha256_of,
            cfg.max_passages,
            cfg.passage_budget_tokens,
            count_tokens,
        );
        let stats = StoreTerms(&self.store);
        let sentences = PassageSentences::new(&passages, &stats, embedder.as_deref())?;
        let question = Question::new(question, &stats, vector);
        let scored = sentences.score(&question, self.evidence_weights());
        let threshold =
            if embedder.is_some() { cfg.gate_threshold } else { cfg.gate_threshold_text_only };
        let score = scored.first().map_or(0.0, |s| s.score);
        Ok(Evidence {
            passages,
            sentences,
            question,
            scored,
            gate: GateDecision { score, threshold, passed: score >= threshold },
            mode,
            retrieve_ms: started.elapsed().as_secs_f64() * 1000.0,
        })
    }

    fn evidence_weights(&self) -> EvidenceWeights {
        EvidenceWeights { cosine: self.config.answer.evidence_cosine_weight }
    }

    /// Answers `question` from the library: quoting evidence (`options.evidence`, or when no
    /// generator is configured) or generating with the local model, whose streamed text goes to
    /// `sink`. Every answer, abstentions included, is appended to the audit log.
    #[instrument(skip_all, target = "engine::answer", fields(evidence = options.evidence))]
    pub async fn ask(
        &self,
        question: &str,
        options: &AskOptions,
        sink: &mut dyn TokenSink,
        cancel: &CancelToken,
    ) -> Result<Answer> {
        let started = Instant::now();
        let question = question.trim();
        if question.is_empty() {
            return Err(Error::user("the question is empty"));
        }
        let generator = if options.evidence { None } else { self.generator().await? };
        let mut count = |text: &str| match &generator {
            Some(g) => g.count_tokens(text),
            None => text.len() / 4,
        };
        let evidence = self.evidence(question, options.k, &mut count).await?;
        let cfg = &self.config.answer;
        let mut answer = Answer {
            question: question.to_owned(),
            answer: String::new(),
            abstained: false,
            abstain_reason: None,
            abstain_cause: None,
            mode: if generator.is_some() { AnswerMode::Generated } else { AnswerMode::Evidence },
            sentences: Vec::new(),
            citations: Vec::new(),
            passages: evidence.passages.clone(),
            removed_citations: Vec::new(),
            gate: evidence.gate.clone(),
            model: generator.as_ref().map(|g| g.name()),
            timings: AnswerTimings { retrieve_ms: evidence.retrieve_ms, ..Default::default() },
        };
        if !evidence.gate.passed {
            abstain(&mut answer, AbstainCause::WeakEvidence);
        } else if let Some(generator) = &generator {
            self.generate_answer(&mut answer, &evidence, generator, options, sink, cancel).await?;
        } else {
            // Which sentences to quote is ranked with its own weighting (term coverage counts
            // more than for the gate: the quote should hold what was asked).
            let ranked = evidence
                .sentences
                .score(&evidence.question, EvidenceWeights { cosine: cfg.quote_cosine_weight });
            let (sentences, citations) = evidence_answer(
                &evidence.passages,
                &ranked,
                0.0,
                cfg.evidence_relative,
                cfg.evidence_sentences,
            );
            answer.answer = evidence_text(&sentences);
            sink.text(&answer.answer);
            answer.sentences = sentences;
            answer.citations = citations;
            if answer.sentences.is_empty() {
                abstain(&mut answer, AbstainCause::NothingToQuote);
            }
        }
        answer.timings.total_ms = started.elapsed().as_secs_f64() * 1000.0;
        self.record(&answer, &evidence, generator.as_deref(), options)?;
        Ok(answer)
    }

    async fn generate_answer(
        &self,
        answer: &mut Answer,
        evidence: &Evidence,
        generator: &Arc<LoadedGenerator>,
        options: &AskOptions,
        sink: &mut dyn TokenSink,
        cancel: &CancelToken,
    ) -> Result<()> {
        let messages = prompt::grounded_messages(&answer.question, &evidence.passages);
        let params = GenerationParams { max_tokens: options.max_tokens, ..Default::default() };
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
        let model = Arc::clone(generator);
        let cancel_task = cancel.clone();
        let task = tokio::task::spawn_blocking(move || {
            let mut model =
                model.model.lock().map_err(|_| Error::invariant("the generator is poisoned"))?;
            let mut forward = |piece: &str| {
                let _ = tx.send(piece.to_owned());
            };
            Ok::<_, Error>(model.generate(&messages, &params, &mut forward, &cancel_task)?)
        });
        let mut text = String::new();
        while let Some(piece) = rx.recv().await {
            text.push_str(&piece);
            sink.text(&piece);
        }
        let report = task.await.map_err(|e| Error::internal("the generation task failed", e))??;
        if report.stop_reason == StopReason::Cancelled {
            return Err(Error::Cancelled);
        }
        answer.timings.ttft_ms = report.ttft_ms;
        answer.timings.tokens = report.generated_tokens;
        answer.timings.tokens_per_s = report.decode_tokens_per_s;
        let embedder = if evidence.mode == SearchMode::Text { None } else { self.embedder()? };
        let verified = verify(
            &text,
            &evidence.passages,
            &evidence.sentences,
            &StoreTerms(&self.store),
            embedder.as_deref(),
            self.evidence_weights(),
            self.config.answer.support_threshold,
        )?;
        answer.removed_citations = verified.removed.clone();
        if verified.refused {
            abstain(answer, AbstainCause::ModelRefused);
            return Ok(());
        }
        if !verified.any_supported() {
            abstain(answer, AbstainCause::Unsupported);
            return Ok(());
        }
        answer.answer = verified.text();
        answer.citations = verified
            .quotes
            .iter()
            .map(|&(n, s)| {
                let p = n as usize - 1;
                citation(&evidence.passages[p], evidence.sentences.spans[p][s])
            })
            .collect();
        answer.sentences = verified.sentences;
        Ok(())
    }

    /// The configured generator, loading it (and hashing its file for the audit log) on first
    /// use. `None` when no generator is configured.
    async fn generator(&self) -> Result<Option<Arc<LoadedGenerator>>> {
        let Some(path) = self.config.generator.clone() else { return Ok(None) };
        let mut slot = self.generator.0.lock().await;
        if let Some(loaded) = slot.as_ref() {
            return Ok(Some(Arc::clone(loaded)));
        }
        let loaded = tokio::task::spawn_blocking(move || load_generator(&path))
            .await
            .map_err(|e| Error::internal("loading the generator failed", e))??;
        let loaded = Arc::new(loaded);
        *slot = Some(Arc::clone(&loaded));
        Ok(Some(loaded))
    }

    async fn sha256_by_path<'a>(
        &self,
        paths: impl Iterator<Item = &'a str>,
    ) -> Result<HashMap<String, String>> {
        let mut wanted: Vec<String> = paths.map(str::to_owned).collect();
        wanted.sort();
        wanted.dedup();
        Ok(self
            .store
            .documents_at(&wanted)
            .await?
            .into_iter()
            .map(|d| (d.path, d.sha256))
            .collect())
    }

    fn record(
        &self,
        answer: &Answer,
        evidence: &Evidence,
        generator: Option<&LoadedGenerator>,
        options: &AskOptions,
    ) -> Result<()> {
        let meta = self.store.meta();
        let record = AuditRecord {
            time: chrono::Utc::now(),
            question: answer.question.clone(),
            answer: answer.answer.clone(),
            abstained: answer.abstained,
            abstain_reason: answer.abstain_reason.clone(),
            mode: answer.mode,
            citations: answer.citations.clone(),
            passages: answer
                .passages
                .iter()
                .map(|p| AuditPassage {
                    n: p.n,
                    chunk_id: p.chunk_id.clone(),
                    doc_path: p.doc_path.clone(),
                    doc_sha256: p.doc_sha256.clone(),
                    page: p.page,
                })
                .collect(),
            model: generator.map(|g| AuditModel { id: g.name(), sha256: g.sha256.clone() }),
            embedder: meta.embedder.map(|e| e.id),
            retrieval: AuditRetrieval {
                mode: evidence.mode.as_str().to_owned(),
                k: options.k,
                gate: answer.gate.clone(),
            },
            library_version: meta.format_version,
            quarry_version: env!("CARGO_PKG_VERSION").to_owned(),
            timings: answer.timings.clone(),
        };
        audit::append(&audit::log_path(self.store.dir()), &record)
    }
}

fn abstain(answer: &mut Answer, cause: AbstainCause) {
    answer.abstained = true;
    answer.abstain_reason = Some(cause.describe().to_owned());
    answer.abstain_cause = Some(cause);
    answer.answer = prompt::REFUSAL.to_owned();
    answer.sentences.clear();
    answer.citations.clear();
}

fn load_generator(path: &Path) -> Result<LoadedGenerator> {
    let model = GgufGenerator::load(path)?;
    let sha256 = sha256_file(path).map_err(|e| Error::io(path, e))?;
    Ok(LoadedGenerator { path: path.to_owned(), sha256, model: Mutex::new(Box::new(model)) })
}
