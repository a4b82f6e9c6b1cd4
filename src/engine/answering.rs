//! `Engine::ask`: retrieval → passage selection → retrieval gate → evidence quotes or grounded
//! generation → citation verification → audit record. The generator is loaded on first use
//! and kept; generation runs on a blocking thread and streams through a channel.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use tracing::instrument;

use super::Engine;
use crate::answer::audit::{
    self, AuditGeneration, AuditModel, AuditOutcome, AuditPassage, AuditRecord, AuditRetrieval,
};
use crate::answer::evidence::{
    EvidenceWeights, PassageSentences, Question, ScoredSentence, TermStats,
};
use crate::answer::guard::DegenerationGuard;
use crate::answer::passages::{approximate_tokens, select_passages};
use crate::answer::verify::verify;
use crate::answer::{citation, evidence_answer, evidence_text, messages, prompt};
use crate::api::{
    AbstainCause, Answer, AnswerMode, AnswerStage, AnswerTimings, AskOptions, EarlyStop,
    FallbackCause, GateDecision, Passage, SearchMode,
};
use crate::config::GeneratorServerConfig;
use crate::embed::Embedder;
use crate::error::{Error, Result};
use crate::generate::candle_gguf::GgufGenerator;
use crate::generate::openai_server::ServerGenerator;
use crate::generate::{GenerationParams, Generator, StopReason, TokenSink};
use crate::index::{Store, TextLanguage};
use crate::progress::CancelToken;

/// A loaded generator with what the audit log records about it.
pub(crate) struct LoadedGenerator {
    name: String,
    sha256: String,
    /// The server the model runs behind, when it is not local.
    server: Option<String>,
    model: Mutex<Box<dyn Generator>>,
}

impl LoadedGenerator {
    /// Wraps a loaded model: its name is the model file's name (else the model's own), its
    /// fingerprint the file's SHA-256 (a model with no file, such as a test double, is
    /// recorded as `unhashed`).
    fn new(model: Box<dyn Generator>) -> Result<Self> {
        let info = model.info();
        let name = info
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .filter(|n| !n.is_empty())
            .unwrap_or_else(|| info.name.clone());
        let sha256 = if info.path.is_file() {
            crate::ids::sha256_file(&info.path).map_err(|e| Error::io(&info.path, e))?
        } else {
            "unhashed".to_owned()
        };
        let server = info.server_url.clone();
        Ok(Self { name, sha256, server, model: Mutex::new(model) })
    }

    fn name(&self) -> String {
        self.name.clone()
    }

    /// Runs the model on `messages` to the end and returns its text (for short side tasks such
    /// as rewriting a follow-up; answers stream through `generate_answer`).
    pub(super) async fn complete(
        self: &Arc<Self>,
        messages: Vec<crate::generate::ChatMessage>,
        params: GenerationParams,
        cancel: &CancelToken,
    ) -> Result<String> {
        let model = Arc::clone(self);
        let cancel = cancel.clone();
        tokio::task::spawn_blocking(move || {
            let mut model =
                model.model.lock().map_err(|_| Error::invariant("the generator is poisoned"))?;
            let mut text = String::new();
            let mut collect = |piece: &str| text.push_str(piece);
            model.generate(&messages, &params, &mut collect, &cancel)?;
            Ok(text)
        })
        .await
        .map_err(|e| Error::internal("the generation task failed", e))?
    }

    fn count_tokens(&self, text: &str) -> usize {
        let counted = self.model.lock().ok().and_then(|m| m.count_tokens(text).ok());
        counted.unwrap_or_else(|| approximate_tokens(text))
    }
}

/// The generator of an engine: none, one given when the engine was built, or a model file
/// loaded on the first generated answer.
pub(crate) enum GeneratorSlot {
    None,
    Given(Arc<LoadedGenerator>),
    FromFile {
        path: PathBuf,
        loaded: tokio::sync::Mutex<Option<Arc<LoadedGenerator>>>,
    },
    /// An OpenAI-compatible server, connected to on the first generated answer.
    Server {
        config: GeneratorServerConfig,
        loaded: tokio::sync::Mutex<Option<Arc<LoadedGenerator>>>,
    },
}

impl GeneratorSlot {
    pub(crate) fn given(model: Box<dyn Generator>) -> Result<Self> {
        Ok(Self::Given(Arc::new(LoadedGenerator::new(model)?)))
    }

    pub(crate) fn from_file(path: Option<PathBuf>) -> Self {
        match path {
            Some(path) => Self::FromFile { path, loaded: Default::default() },
            None => Self::None,
        }
    }

    pub(crate) fn server(config: GeneratorServerConfig) -> Self {
        Self::Server { config, loaded: Default::default() }
    }

    /// The server answers come from, when they do.
    pub(crate) fn server_config(&self) -> Option<&GeneratorServerConfig> {
        match self {
            Self::Server { config, .. } => Some(config),
            _ => None,
        }
    }

    pub(crate) fn is_some(&self) -> bool {
        !matches!(self, Self::None)
    }

    /// The model file, when the generator comes from one.
    pub(crate) fn path(&self) -> Option<&Path> {
        match self {
            Self::FromFile { path, .. } => Some(path),
            Self::None | Self::Given(_) | Self::Server { .. } => None,
        }
    }
}

impl std::fmt::Debug for GeneratorSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeneratorSlot").finish_non_exhaustive()
    }
}

/// Answers being written, by the id the edge gave them, so an edge that cannot drop a stream
/// to stop one (the desktop app's IPC) can cancel it by id.
#[derive(Debug, Default)]
pub(crate) struct RunningAnswers(Arc<Mutex<HashMap<String, CancelToken>>>, AnswerSlots);

/// How many answers are being worked on; `ask` takes a slot for its whole run.
#[derive(Debug, Default)]
struct AnswerSlots(std::sync::atomic::AtomicUsize);

/// A taken answer slot, given back on drop.
struct AnswerSlot<'a>(&'a AnswerSlots);

impl AnswerSlots {
    fn take(&self, limit: usize) -> Result<AnswerSlot<'_>> {
        use std::sync::atomic::Ordering;
        let taken = self.0.fetch_add(1, Ordering::SeqCst);
        if taken >= limit.max(1) {
            self.0.fetch_sub(1, Ordering::SeqCst);
            return Err(Error::Busy(format!(
                "{taken} answers are being written already; ask again when one is done"
            )));
        }
        Ok(AnswerSlot(self))
    }
}

impl Drop for AnswerSlot<'_> {
    fn drop(&mut self) {
        self.0.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// The cancel token of one answer registered under an id; the id is released on drop.
#[derive(Debug)]
pub struct AnswerTicket {
    id: String,
    token: CancelToken,
    running: Arc<Mutex<HashMap<String, CancelToken>>>,
}

impl AnswerTicket {
    /// The token to pass to [`Engine::ask`].
    pub fn token(&self) -> &CancelToken {
        &self.token
    }
}

impl Drop for AnswerTicket {
    fn drop(&mut self) {
        if let Ok(mut running) = self.running.lock() {
            running.remove(&self.id);
        }
    }
}

/// The full-text index's analysis and statistics, as evidence scoring sees them: everything
/// of one question (the question, passage sentences, answer sentences) is analysed for the
/// question's language, so its terms compare like with like.
struct StoreTerms<'a>(&'a Store, TextLanguage);

impl TermStats for StoreTerms<'_> {
    fn terms(&self, text: &str) -> Vec<String> {
        self.0.analyze(text, self.1)
    }
    fn idf(&self, terms: &[String]) -> Vec<f32> {
        self.0.idf(terms)
    }
}

impl Evidence {
    /// The passages as the model sees them with a sentence window: each cut to its best
    /// sentence for the question and `window` sentences on either side (a passage without
    /// scored sentences stays whole).
    pub fn windowed_passages(&self, window: usize) -> Vec<Passage> {
        crate::answer::passages::sentence_windows(
            &self.passages,
            &self.sentences.spans,
            &self.scored,
            window,
        )
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
    /// The question's language, which every term comparison of this answer analyses for.
    pub language: TextLanguage,
    /// Milliseconds spent retrieving and scoring.
    pub retrieve_ms: f64,
    /// Milliseconds the sentence scoring took.
    pub evidence_ms: f64,
    /// The embedder the question and sentences were scored with (verification uses the same).
    embedder: Option<Arc<dyn Embedder>>,
}

impl Engine {
    /// Registers an answer about to be asked under `id` (chosen by the edge, unique among
    /// the answers running): its token stops it, and so does [`Engine::cancel_answer`] with
    /// the same id. Fails with [`Error::Busy`] when the id is in use.
    pub fn answer_ticket(&self, id: &str) -> Result<AnswerTicket> {
        let running = Arc::clone(&self.answers.0);
        let token = CancelToken::new();
        let mut map = running.lock().map_err(|_| Error::invariant("answer registry poisoned"))?;
        if map.contains_key(id) {
            return Err(Error::Busy(format!("an answer with id {id} is already running")));
        }
        map.insert(id.to_owned(), token.clone());
        drop(map);
        Ok(AnswerTicket { id: id.to_owned(), token, running })
    }

    /// Stops the answer registered under `id`; `false` when none is running under it.
    pub fn cancel_answer(&self, id: &str) -> bool {
        let running = self.answers.0.lock();
        running.ok().and_then(|r| r.get(id).map(CancelToken::cancel)).is_some()
    }

    /// Retrieves and scores the evidence for `question`; `count_tokens` sizes passages for the
    /// model's prompt.
    pub async fn evidence(
        &self,
        question: &str,
        k: usize,
        count_tokens: &mut (dyn FnMut(&str) -> usize + Send),
    ) -> Result<Evidence> {
        self.evidence_within(question, k, &crate::api::AskScope::default(), count_tokens).await
    }

    /// [`Engine::evidence`] from the documents inside `scope` only.
    pub async fn evidence_within(
        &self,
        question: &str,
        k: usize,
        scope: &crate::api::AskScope,
        count_tokens: &mut (dyn FnMut(&str) -> usize + Send),
    ) -> Result<Evidence> {
        let within = self.resolve_scope(scope).await?;
        let started = Instant::now();
        let mode = self.default_search_mode();
        // One embedding of the question serves the vector search and the sentence scores.
        let embedder = self.question_embedder()?;
        let vector = embedder.as_ref().map(|e| e.embed_query(question)).transpose()?;
        let hits = self
            .search_with(question, vector.as_deref(), mode, k.max(1), within.as_deref())
            .await?;
        let sha256_of = self.sha256_by_path(hits.iter().map(|h| h.doc_path.as_str())).await?;
        let cfg = &self.config.answer;
        let passages = select_passages(
            hits,
            &sha256_of,
            cfg.max_passages,
            cfg.passage_budget_tokens,
            count_tokens,
        );
        let retrieve_ms = started.elapsed().as_secs_f64() * 1000.0;
        let scoring = Instant::now();
        let language = TextLanguage::detect(question);
        let stats = StoreTerms(&self.store, language);
        let sentences = PassageSentences::new(&passages, &stats, embedder.as_deref())?;
        let question = Question::new(question, &stats, vector);
        let scored = sentences.score(&question, self.evidence_weights());
        let threshold = self.gate_threshold();
        let score = scored.first().map_or(0.0, |s| s.score);
        Ok(Evidence {
            passages,
            sentences,
            question,
            scored,
            gate: GateDecision { score, threshold, passed: score >= threshold },
            language,
            mode,
            retrieve_ms,
            evidence_ms: scoring.elapsed().as_secs_f64() * 1000.0,
            embedder,
        })
    }

    /// The embedder questions are scored with: the library's, when the library holds vectors,
    /// with the memory of passage-sentence vectors in front; none for a text-only library.
    fn question_embedder(&self) -> Result<Option<Arc<dyn Embedder>>> {
        match self.default_search_mode() {
            SearchMode::Text => Ok(None),
            _ => Ok(self.embedder()?.map(|e| self.sentence_vectors.in_front_of(e))),
        }
    }

    /// The retrieval gate's threshold: the evidence score mixes in embedding similarity only
    /// when questions are embedded, and each mix has its own calibrated threshold.
    pub fn gate_threshold(&self) -> f32 {
        match self.default_search_mode() {
            SearchMode::Text => self.config.answer.gate_threshold_text_only,
            _ => self.live_settings().gate_threshold,
        }
    }

    fn evidence_weights(&self) -> EvidenceWeights {
        let answer = &self.config.answer;
        EvidenceWeights {
            cosine: answer.evidence_cosine_weight,
            cross_language_shift: answer
                .gate_threshold_cross_language
                .map(|cross| answer.gate_threshold - cross),
        }
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
        let _slot = self.answers.1.take(self.config.answer.max_concurrent_answers)?;
        let generator = if options.evidence { None } else { self.generator().await? };
        // In a conversation, a follow-up is searched for as a standalone question.
        let conversation = match options.thread.as_deref() {
            Some(thread) => {
                Some(self.follow_up(thread, question, generator.as_ref(), sink, cancel).await?)
            }
            None => None,
        };
        let question = conversation.as_ref().map_or(question, |c| c.question.as_str());
        sink.stage(AnswerStage::Searching);
        let mut count = |text: &str| match &generator {
            Some(g) => g.count_tokens(text),
            None => approximate_tokens(text),
        };
        let evidence =
            self.evidence_within(question, options.k, &options.scope, &mut count).await?;
        sink.stage(AnswerStage::Reading { passages: evidence.passages.len() as u32 });
        let mut answer = Answer {
            question: question.to_owned(),
            answer: String::new(),
            language: TextLanguage::of_answer(question),
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
            model_text: None,
            early_stop: None,
            fallback: None,
            fallback_detail: None,
            question_coverage: None,
            uncovered_terms: Vec::new(),
            timings: AnswerTimings {
                retrieve_ms: evidence.retrieve_ms,
                evidence_ms: evidence.evidence_ms,
                ..Default::default()
            },
            conversation: conversation.as_ref().map(|c| c.turn.clone()),
        };
        if !evidence.gate.passed {
            abstain(&mut answer, AbstainCause::WeakEvidence);
        } else if let Some(generator) = &generator {
            self.record(&answer, &evidence, Some(generator), options, AuditOutcome::Started)?;
            let written = self
                .generate_answer(&mut answer, &evidence, generator, options, sink, cancel, started)
                .await;
            if let Err(err) = written {
                // A stopped answer (the user, or a client that went away) is on the record too,
                // with what the model had written.
                if matches!(err, Error::Cancelled) {
                    answer.timings.total_ms = started.elapsed().as_secs_f64() * 1000.0;
                    self.record(
                        &answer,
                        &evidence,
                        Some(generator),
                        options,
                        AuditOutcome::Cancelled,
                    )?;
                }
                return Err(err);
            }
        } else {
            self.quote_evidence(&mut answer, &evidence, None, sink);
        }
        answer.timings.total_ms = started.elapsed().as_secs_f64() * 1000.0;
        self.record(&answer, &evidence, generator.as_deref(), options, AuditOutcome::Answered)?;
        if let Some(conversation) = &conversation {
            self.threads.append(&conversation.turn.thread_id, answer.clone())?;
        }
        Ok(answer)
    }

    /// Evidence mode's answer: the best sentences of the passages, quoted with citations.
    /// `only`, when given, limits the quotes to those passage numbers.
    fn quote_evidence(
        &self,
        answer: &mut Answer,
        evidence: &Evidence,
        only: Option<&[u32]>,
        sink: &mut dyn TokenSink,
    ) {
        let cfg = &self.config.answer;
        // Which sentences to quote is ranked with its own weighting (term coverage counts more
        // than for the gate: the quote should hold what was asked). Every sentence gets the mix,
        // in any language: a passage in the question's language that holds its words is the
        // better quote, and among passages in another language the mix still ranks by cosine.
        let mut ranked = evidence
            .sentences
            .score(&evidence.question, EvidenceWeights::mix(cfg.quote_cosine_weight));
        if let Some(only) = only {
            ranked.retain(|s| only.contains(&evidence.passages[s.passage].n));
        }
        let (sentences, citations) = evidence_answer(
            &evidence.passages,
            &ranked,
            0.0,
            cfg.evidence_relative,
            cfg.evidence_sentences,
        );
        answer.mode = AnswerMode::Evidence;
        answer.answer = evidence_text(&sentences);
        sink.text(&answer.answer);
        answer.sentences = sentences;
        answer.citations = citations;
        if answer.sentences.is_empty() {
            abstain(answer, AbstainCause::NothingToQuote);
        }
    }

    /// The generated answer: the model writes from the numbered passages while the
    /// degeneration guard watches; what it wrote up to any loop is verified (sentences without a
    /// supporting marker get the citation of the passage that supports them); a loop or a
    /// model failure with nothing verifiable falls back to quoting the evidence.
    #[allow(clippy::too_many_arguments)] // The pipeline's step that needs the whole ask.
    async fn generate_answer(
        &self,
        answer: &mut Answer,
        evidence: &Evidence,
        generator: &Arc<LoadedGenerator>,
        options: &AskOptions,
        sink: &mut dyn TokenSink,
        cancel: &CancelToken,
        asked: Instant,
    ) -> Result<()> {
        let cfg = &self.config.answer;
        let passages = match cfg.prompt_sentence_window {
            Some(window) => evidence.windowed_passages(window),
            None => evidence.passages.clone(),
        };
        let messages = prompt::grounded_messages_in(cfg.prompt_style, &answer.question, &passages);
        let params = GenerationParams {
            max_tokens: options.max_tokens,
            repeat_penalty: cfg.repeat_penalty,
            ..Default::default()
        };
        // The guard stops the model through a token of its own; the user's still reaches it.
        let stop = cancel.child();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
        let model = Arc::clone(generator);
        let stop_task = stop.clone();
        let task = tokio::task::spawn_blocking(move || {
            let mut model =
                model.model.lock().map_err(|_| Error::invariant("the generator is poisoned"))?;
            let mut forward = |piece: &str| {
                let _ = tx.send(piece.to_owned());
            };
            Ok::<_, Error>(model.generate(&messages, &params, &mut forward, &stop_task)?)
        });
        sink.stage(AnswerStage::Writing);
        let mut guard = DegenerationGuard::new(evidence.passages.iter().map(|p| p.text.as_str()));
        while let Some(piece) = rx.recv().await {
            if answer.timings.first_token_ms == 0.0 && !piece.is_empty() {
                answer.timings.first_token_ms = asked.elapsed().as_secs_f64() * 1000.0;
            }
            if guard.stopped().is_some() {
                continue;
            }
            sink.text(&piece);
            if guard.push(&piece).is_some() {
                stop.cancel();
            }
        }
        let report =
            match task.await.map_err(|e| Error::internal("the generation task failed", e))? {
                Ok(report) => report,
                Err(e @ (Error::Internal { .. } | Error::Io { .. })) if !cancel.is_cancelled() => {
                    let detail = format!("{}: {e}", generator.name());
                    tracing::warn!(target: "engine::answer", "{detail}; quoting the evidence");
                    answer.fallback = Some(FallbackCause::GenerationFailed);
                    answer.fallback_detail = Some(detail);
                    self.quote_evidence(answer, evidence, None, sink);
                    return Ok(());
                }
                Err(e) => return Err(e),
            };
        if cancel.is_cancelled() {
            answer.model_text = Some(guard.text().to_owned());
            answer.answer = guard.text().to_owned();
            return Err(Error::Cancelled);
        }
        if report.stop_reason == StopReason::MaxTokens {
            guard.hit_max_tokens();
        } else {
            guard.finish();
        }
        answer.early_stop = guard.stopped();
        answer.model_text = Some(guard.text().to_owned());
        answer.timings.ttft_ms = report.ttft_ms;
        answer.timings.prompt_ms = report.prefill_ms;
        answer.timings.prompt_tokens = report.prompt_tokens;
        answer.timings.cached_prompt_tokens = report.cached_prompt_tokens;
        answer.timings.decode_ms = (report.total_ms - report.ttft_ms).max(0.0);
        answer.timings.tokens = report.generated_tokens;
        answer.timings.tokens_per_s = report.decode_tokens_per_s;
        sink.stage(AnswerStage::Checking);
        let verified = verify(
            guard.usable(),
            &evidence.passages,
            &evidence.sentences,
            &StoreTerms(&self.store, evidence.language),
            evidence.embedder.as_deref(),
            self.evidence_weights(),
            cfg.support_threshold,
        )?;
        answer.removed_citations = verified.removed.clone();
        if verified.refused {
            abstain(answer, AbstainCause::ModelRefused);
            return Ok(());
        }
        if !verified.any_supported() {
            if !verified.pointed.is_empty() && verified.sentences.is_empty() {
                answer.fallback = Some(FallbackCause::MarkersOnly);
                self.quote_evidence(answer, evidence, Some(&verified.pointed), sink);
            } else if answer.early_stop.is_some_and(EarlyStop::is_degenerate) {
                answer.fallback = Some(FallbackCause::Degenerate);
                answer.fallback_detail = answer
                    .early_stop
                    .map(|s| messages::early_stop_reason(s, answer.language).to_owned());
                self.quote_evidence(answer, evidence, None, sink);
            } else {
                abstain(answer, AbstainCause::Unsupported);
            }
            return Ok(());
        }
        let cited: HashSet<String> = verified
            .sentences
            .iter()
            .filter(|s| s.supported)
            .flat_map(|s| s.citations.iter())
            .flat_map(|&n| evidence.sentences.passage_terms[n as usize - 1].iter().cloned())
            .collect();
        answer.question_coverage = Some(evidence.question.coverage(&cited));
        answer.uncovered_terms = evidence.question.missing(&cited);
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

    /// The engine's generator, loading it from its file (and hashing the file for the audit
    /// log) on first use. `None` when the engine has none.
    async fn generator(&self) -> Result<Option<Arc<LoadedGenerator>>> {
        let current = self.generator_slot();
        let (source, slot) = match current.as_ref() {
            GeneratorSlot::None => return Ok(None),
            GeneratorSlot::Given(loaded) => return Ok(Some(Arc::clone(loaded))),
            GeneratorSlot::FromFile { path, loaded } => (Ok(path.clone()), loaded),
            GeneratorSlot::Server { config, loaded } => (Err(config.clone()), loaded),
        };
        let mut slot = slot.lock().await;
        if let Some(loaded) = slot.as_ref() {
            return Ok(Some(Arc::clone(loaded)));
        }
        let loaded = tokio::task::spawn_blocking(move || match source {
            Ok(path) => load_generator(&path),
            Err(server) => connect_generator(&server),
        })
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
        outcome: AuditOutcome,
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
            model: generator.map(|g| AuditModel {
                id: g.name(),
                sha256: g.sha256.clone(),
                server: g.server.clone(),
            }),
            embedder: meta.embedder.map(|e| e.id),
            retrieval: AuditRetrieval {
                mode: evidence.mode.as_str().to_owned(),
                k: options.k,
                gate: answer.gate.clone(),
                scope: options.scope.clone(),
            },
            library_version: meta.format_version,
            quarry_version: env!("CARGO_PKG_VERSION").to_owned(),
            timings: answer.timings.clone(),
            generation: generator.filter(|_| answer.gate.passed).map(|_| AuditGeneration {
                prompt_style: self.config.answer.prompt_style,
                repeat_penalty: self.config.answer.repeat_penalty,
                max_tokens: options.max_tokens,
                early_stop: answer.early_stop,
                fallback: answer.fallback,
                attributed: answer
                    .sentences
                    .iter()
                    .filter(|s| s.attributed)
                    .flat_map(|s| s.citations.iter().copied())
                    .collect(),
            }),
            outcome,
            conversation: answer.conversation.clone(),
            prev_sha256: None,
        };
        audit::append(&audit::log_path(self.store.dir()), &record)
    }
}

fn abstain(answer: &mut Answer, cause: AbstainCause) {
    answer.abstained = true;
    answer.abstain_reason = Some(messages::abstain_reason(cause, answer.language).to_owned());
    answer.abstain_cause = Some(cause);
    answer.answer = messages::refusal(answer.language).to_owned();
    answer.sentences.clear();
    answer.citations.clear();
}

fn load_generator(path: &Path) -> Result<LoadedGenerator> {
    LoadedGenerator::new(Box::new(GgufGenerator::load(path)?))
}

fn connect_generator(server: &GeneratorServerConfig) -> Result<LoadedGenerator> {
    LoadedGenerator::new(Box::new(ServerGenerator::connect(server)?))
}
