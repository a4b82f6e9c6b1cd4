//! Grounded-QA evaluation on SQuAD 2.0 in the JSONL layout of `../shared/data/squad2`: the
//! paragraphs of every other article (titles sorted; the 1st, 3rd, 5th… kept) become the library,
//! then every question is asked. Answerable questions about left-out articles must be refused,
//! those about kept articles answered with a citation of the passage holding the gold answer;
//! SQuAD's unanswerable questions about kept articles are the adversarial near-misses.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::{Deserialize, Serialize};

use crate::api::{Answer, AnswerMode, AskOptions, EarlyStop, SearchMode};
use crate::config::EngineConfig;
use crate::engine::Engine;
use crate::error::{Error, Result};
use crate::progress::CancelToken;

#[derive(Debug, Deserialize)]
struct QuestionLine {
    id: String,
    /// The gold paragraph ("title#n").
    #[serde(default)]
    pid: String,
    title: String,
    question: String,
    is_impossible: bool,
    #[serde(default)]
    answers: Vec<GoldAnswer>,
}

#[derive(Debug, Deserialize)]
struct GoldAnswer {
    text: String,
}

#[derive(Debug, Deserialize)]
struct ParagraphLine {
    pid: String,
    title: String,
    context: String,
}

/// The metrics of DESIGN.md §5 and issue #5 (keys are part of the contract).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct QaMetrics {
    /// Answerable questions about left-out articles that were refused.
    pub out_of_library_abstention_recall: f64,
    /// Answerable questions about kept articles that were refused.
    pub in_library_wrongly_refused_rate: f64,
    /// Answered in-library questions whose citations include a passage containing a gold answer.
    pub citation_precision: f64,
    /// Citations naming a passage that was not among the retrieved ones (must be 0).
    pub citations_outside_retrieved: u64,
    /// SQuAD's unanswerable questions about kept articles that were refused.
    pub impossible_abstention_recall: f64,
    /// Unanswerable questions about left-out articles that were refused.
    pub out_of_library_impossible_abstention_recall: f64,
    /// SQuAD token F1 of the answer text against the gold answers, over answerable in-library
    /// questions (a refusal scores 0).
    pub answer_f1: f64,
    /// SQuAD exact match over the same questions.
    pub exact_match: f64,
    /// Answerable in-library questions that got an answer (not a refusal).
    pub answered_rate: f64,
    /// Answerable in-library questions whose answer text holds a gold answer (both normalised
    /// as SQuAD does; a refusal counts as a miss).
    pub gold_in_answer_rate: f64,
    /// Answers the model wrote that degenerated: stopped by the guard for a loop, or run to
    /// the token limit (share of the answers the model was asked for).
    pub degenerate_rate: f64,
    /// Answers the model wrote that ran to the token limit.
    pub max_tokens_rate: f64,
    /// Sentences of answered generated answers whose citation Quarry attached (the model wrote
    /// no supporting marker).
    pub attributed_rate: f64,
    /// Answers the model was asked for that fell back to evidence quotes.
    pub fallback_rate: f64,
    /// Answered in-library questions whose citations include a passage of the gold paragraph
    /// (scores citations across languages, where the gold answer string is in another language
    /// than the passages).
    #[serde(default)]
    pub citation_paragraph_precision: f64,
    /// Answerable in-library questions with a chunk of the gold paragraph first in the
    /// library's own search (hybrid, or text only for a library without vectors): retrieval
    /// measured apart from the gate.
    #[serde(default)]
    pub retrieval_recall_at_1: f64,
    /// The same among the first five hits.
    #[serde(default)]
    pub retrieval_recall_at_5: f64,
    /// The same first among the hits of BM25 alone.
    #[serde(default)]
    pub text_recall_at_1: f64,
    /// The same among the first five hits of BM25 alone.
    #[serde(default)]
    pub text_recall_at_5: f64,
    /// The same among the first five hits of the vector search alone (0 without vectors).
    #[serde(default)]
    pub vector_recall_at_5: f64,
}

/// How many questions and passages went in.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct QaCounts {
    /// Questions asked.
    pub questions: usize,
    /// Answerable, about a kept article.
    pub in_library: usize,
    /// Answerable, about a left-out article.
    pub out_of_library: usize,
    /// Unanswerable, about a kept article.
    pub impossible: usize,
    /// Unanswerable, about a left-out article.
    pub out_of_library_impossible: usize,
    /// In-library questions answered (not refused).
    pub answered_in_library: usize,
    /// Questions the model was asked (the gate passed).
    pub generated: usize,
    /// Articles in the library.
    pub library_articles: usize,
    /// Paragraphs in the library.
    pub library_paragraphs: usize,
    /// Chunks indexed.
    pub chunks: u64,
}

/// A threshold for the retrieval gate and what it achieves on the questions.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct GateCalibration {
    /// Weight of embedding similarity in the evidence score.
    pub cosine_weight: f32,
    /// The chosen threshold.
    pub threshold: f32,
    /// Out-of-library abstention recall at that threshold.
    pub out_of_library_abstention_recall: f64,
    /// In-library refusal rate at that threshold.
    pub in_library_wrongly_refused_rate: f64,
    /// The refusal rate the choice was held under.
    pub max_wrongly_refused: f64,
}

/// A p50 and a p95.
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Spread {
    /// Median.
    pub p50: f64,
    /// 95th percentile.
    pub p95: f64,
}

impl Spread {
    fn of(values: &mut [f64]) -> Self {
        Self { p50: percentile(values, 0.5), p95: percentile(values, 0.95) }
    }
}

/// An answer's time by stage, in milliseconds, and its prompt's size in tokens.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StageTimes {
    /// Query embedding, retrieval, fusion and passage selection.
    pub retrieve_ms: Spread,
    /// Scoring the passages' sentences (the gate).
    pub evidence_ms: Spread,
    /// From the question to the first generated text.
    pub first_token_ms: Spread,
    /// Reading the prompt.
    pub prompt_ms: Spread,
    /// Writing after the first token.
    pub decode_ms: Spread,
    /// Tokens in the prompt.
    pub prompt_tokens: Spread,
    /// Prompt tokens served from the attention cache.
    pub cached_prompt_tokens: Spread,
    /// Tokens the model wrote.
    #[serde(default)]
    pub answer_tokens: Spread,
}

/// One evaluation run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QaRun {
    /// Evidence or generated answers.
    pub mode: AnswerMode,
    /// The metrics.
    pub metrics: QaMetrics,
    /// Counts.
    pub counts: QaCounts,
    /// The gate threshold in force.
    pub gate_threshold: f32,
    /// Seconds to index the library.
    pub index_seconds: f64,
    /// Median time per answer.
    pub answer_ms_p50: f64,
    /// 95th percentile of the time per answer.
    pub answer_ms_p95: f64,
    /// Median and 95th percentile of the time per answer the model wrote (gate passed).
    pub generated_ms_p50: f64,
    /// 95th percentile of the same.
    pub generated_ms_p95: f64,
    /// Median time to the first generated token.
    pub ttft_ms_p50: f64,
    /// 95th percentile of the time to the first generated token.
    pub ttft_ms_p95: f64,
    /// Where an answer's time goes, stage by stage (p50 and p95): retrieval and evidence
    /// scoring over every answer; the rest over the answers the model wrote.
    #[serde(default)]
    pub stages: StageTimes,
    /// The generator, when answers were generated.
    pub model: Option<String>,
    /// The prompt layout.
    pub prompt_style: crate::answer::prompt::PromptStyle,
    /// The repetition penalty.
    pub repeat_penalty: f32,
    /// Most passages given to the model.
    pub max_passages: usize,
    /// The best gate thresholds found on these questions (with `calibrate`).
    pub calibration: Option<Vec<GateCalibration>>,
}

/// What to evaluate.
#[derive(Debug, Clone)]
pub struct QaEvalOptions {
    /// The questions file.
    pub questions: PathBuf,
    /// The paragraphs file (default: beside the questions, `questions` → `paragraphs`).
    pub paragraphs: Option<PathBuf>,
    /// Evidence mode instead of generation.
    pub evidence: bool,
    /// Ask only the first `limit` questions.
    pub limit: Option<usize>,
    /// Also search gate thresholds on these questions.
    pub calibrate: bool,
    /// Write every question with its answer to this JSON lines file.
    pub dump: Option<PathBuf>,
}

/// The paragraphs file beside `questions`: its name with `questions` replaced by `paragraphs`.
pub fn default_paragraphs(questions: &Path) -> Result<PathBuf> {
    let name = questions.file_name().and_then(|n| n.to_str()).unwrap_or_default();
    if !name.contains("questions") {
        return Err(Error::user(format!(
            "{}: cannot guess the paragraphs file (the name has no \"questions\"); pass --paragraphs",
            questions.display()
        )));
    }
    Ok(questions.with_file_name(name.replace("questions", "paragraphs")))
}

/// Runs the evaluation, building the library under `work`.
pub async fn evaluate(options: &QaEvalOptions, config: EngineConfig, work: &Path) -> Result<QaRun> {
    let paragraphs_path = match &options.paragraphs {
        Some(p) => p.clone(),
        None => default_paragraphs(&options.questions)?,
    };
    let mut questions: Vec<QuestionLine> = super::read_jsonl(&options.questions)?;
    let paragraphs: Vec<ParagraphLine> = super::read_jsonl(&paragraphs_path)?;
    if let Some(limit) = options.limit {
        questions.truncate(limit);
    }
    let paragraph_text: HashMap<&str, &str> =
        paragraphs.iter().map(|p| (p.pid.as_str(), p.context.as_str())).collect();
    let mut articles: BTreeMap<&str, Vec<(usize, &str)>> = BTreeMap::new();
    for p in &paragraphs {
        let ordinal = p.pid.rsplit('#').next().and_then(|n| n.parse().ok()).unwrap_or(usize::MAX);
        articles.entry(p.title.as_str()).or_default().push((ordinal, p.context.as_str()));
    }
    let kept: HashSet<&str> = articles.keys().step_by(2).copied().collect();
    let corpus = work.join("articles");
    std::fs::create_dir_all(&corpus).map_err(|e| Error::io(&corpus, e))?;
    let mut counts = QaCounts { library_articles: kept.len(), ..Default::default() };
    for (title, paras) in &mut articles {
        if !kept.contains(title) {
            continue;
        }
        paras.sort_by_key(|(n, _)| *n);
        counts.library_paragraphs += paras.len();
        let body = paras.iter().map(|(_, t)| t.trim()).collect::<Vec<_>>().join("\n\n");
        let path = corpus.join(format!("{}.txt", safe_name(title)));
        let mut file = std::fs::File::create(&path).map_err(|e| Error::io(&path, e))?;
        file.write_all(body.as_bytes()).map_err(|e| Error::io(&path, e))?;
    }
    let config = EngineConfig { data_dir: work.join("library"), ..config };
    let engine = Engine::open_for_write(config).await?;
    let gate_threshold = engine.gate_threshold();
    let started = Instant::now();
    let report = engine.index(&[corpus], &mut |_| {}, &CancelToken::new()).await?;
    let index_seconds = started.elapsed().as_secs_f64();
    if report.failed > 0 {
        return Err(Error::invariant(format!("{} articles failed to index", report.failed)));
    }
    counts.chunks = report.chunks;

    let ask = AskOptions { evidence: options.evidence, ..AskOptions::default() };
    let mut tally = Tally::default();
    let mut latencies = Vec::new();
    let mut generated_latencies = Vec::new();
    let mut ttfts = Vec::new();
    let mut stage: [Vec<f64>; 8] = Default::default();
    let mut dump = match &options.dump {
        Some(path) => Some(std::io::BufWriter::new(
            std::fs::File::create(path).map_err(|e| Error::io(path, e))?,
        )),
        None => None,
    };
    let mut features: Vec<(Category, Vec<(f32, f32)>)> = Vec::new();
    for q in &questions {
        let category = match (q.is_impossible, kept.contains(q.title.as_str())) {
            (false, true) => Category::InLibrary,
            (false, false) => Category::OutOfLibrary,
            (true, true) => Category::Impossible,
            (true, false) => Category::OutOfLibraryImpossible,
        };
        let started = Instant::now();
        let answer = engine.ask(&q.question, &ask, &mut |_: &str| {}, &CancelToken::new()).await?;
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        latencies.push(ms);
        let gold: Vec<&str> = q.answers.iter().map(|a| a.text.as_str()).collect();
        let t = &answer.timings;
        stage[0].push(t.retrieve_ms);
        stage[1].push(t.evidence_ms);
        if t.ttft_ms > 0.0 {
            generated_latencies.push(ms);
            ttfts.push(t.ttft_ms);
            stage[2].push(t.first_token_ms);
            stage[3].push(t.prompt_ms);
            stage[4].push(t.decode_ms);
            stage[5].push(t.prompt_tokens as f64);
            stage[6].push(t.cached_prompt_tokens as f64);
            stage[7].push(t.tokens as f64);
        }
        let gold_paragraph = paragraph_text.get(q.pid.as_str()).copied();
        tally.add(category, &answer, &gold, gold_paragraph);
        if category == Category::InLibrary
            && let Some(paragraph) = gold_paragraph
        {
            let hybrid = if engine.has_vectors() { SearchMode::Hybrid } else { SearchMode::Text };
            let mut found = [false; 5];
            for (i, (mode, k)) in [
                (hybrid, 1),
                (hybrid, 5),
                (SearchMode::Text, 5),
                (SearchMode::Vector, 5),
                (SearchMode::Text, 1),
            ]
            .into_iter()
            .enumerate()
            {
                if mode == SearchMode::Vector && !engine.has_vectors() {
                    continue;
                }
                let hits = engine.search(&q.question, mode, k).await?;
                found[i] = hits.iter().any(|h| is_of_paragraph(&h.text, paragraph));
            }
            tally.recall.push(found);
        }
        if let Some(out) = dump.as_mut() {
            let line = serde_json::json!({
                "id": q.id, "category": format!("{category:?}"), "question": q.question,
                "gold": gold, "answer": answer.answer, "model_text": answer.model_text, "abstained": answer.abstained,
                "abstain_cause": answer.abstain_cause, "early_stop": answer.early_stop,
                "fallback": answer.fallback, "sentences": answer.sentences, "gate": answer.gate.score,
                "question_coverage": answer.question_coverage, "uncovered": answer.uncovered_terms,
                "ms": ms, "timings": answer.timings,
                // What the model was given, so a reference engine can replay the same prompts
                // (not rebuilt when the model saw only sentence windows of the passages).
                "messages": (t.ttft_ms > 0.0 && engine.config().answer.prompt_sentence_window.is_none())
                    .then(|| crate::answer::prompt::grounded_messages_in(
                        engine.config().answer.prompt_style, &answer.question, &answer.passages)),
            });
            writeln!(out, "{line}")
                .map_err(|e| Error::io(options.dump.as_deref().unwrap_or(Path::new("")), e))?;
        }
        tracing::debug!(target: "eval", id = %q.id, ?category, abstained = answer.abstained, gate = answer.gate.score);
        if options.calibrate {
            let evidence = engine
                .evidence(&q.question, ask.k, &mut crate::answer::passages::approximate_tokens)
                .await?;
            let signals =
                evidence.scored.iter().map(|s| (s.cosine.unwrap_or(0.0), s.coverage)).collect();
            features.push((category, signals));
        }
    }
    if let Some(mut out) = dump {
        out.flush().map_err(|e| Error::io(options.dump.as_deref().unwrap_or(Path::new("")), e))?;
    }
    let (metrics, tallied) = tally.finish();
    counts.questions = questions.len();
    counts.in_library = tallied.in_library;
    counts.out_of_library = tallied.out_of_library;
    counts.impossible = tallied.impossible;
    counts.out_of_library_impossible = tallied.out_of_library_impossible;
    counts.answered_in_library = tallied.answered_in_library;
    counts.generated = tallied.generated;
    Ok(QaRun {
        mode: if options.evidence || !engine.has_generator() {
            AnswerMode::Evidence
        } else {
            AnswerMode::Generated
        },
        metrics,
        counts,
        gate_threshold,
        index_seconds,
        answer_ms_p50: percentile(&mut latencies, 0.5),
        answer_ms_p95: percentile(&mut latencies, 0.95),
        generated_ms_p50: percentile(&mut generated_latencies, 0.5),
        generated_ms_p95: percentile(&mut generated_latencies, 0.95),
        ttft_ms_p50: percentile(&mut ttfts, 0.5),
        ttft_ms_p95: percentile(&mut ttfts, 0.95),
        stages: {
            let [retrieve, evidence, first, prompt, decode, tokens, cached, written] = &mut stage;
            StageTimes {
                retrieve_ms: Spread::of(retrieve),
                evidence_ms: Spread::of(evidence),
                first_token_ms: Spread::of(first),
                prompt_ms: Spread::of(prompt),
                decode_ms: Spread::of(decode),
                prompt_tokens: Spread::of(tokens),
                cached_prompt_tokens: Spread::of(cached),
                answer_tokens: Spread::of(written),
            }
        },
        model: match &engine.config().generator_server {
            Some(server) => Some(server.describe()),
            None => engine
                .config()
                .generator
                .as_ref()
                .and_then(|g| g.file_name())
                .map(|n| n.to_string_lossy().into_owned()),
        }
        .filter(|_| !options.evidence),
        prompt_style: engine.config().answer.prompt_style,
        repeat_penalty: engine.config().answer.repeat_penalty,
        max_passages: engine.config().answer.max_passages,
        calibration: options.calibrate.then(|| calibrate(&features)),
    })
}

/// The value below which `share` of `values` lie (nearest rank); 0 for no values.
fn percentile(values: &mut [f64], share: f64) -> f64 {
    if values.is_empty() {
        return 0.0;
    }
    values.sort_by(f64::total_cmp);
    let rank = ((share * values.len() as f64).ceil() as usize).clamp(1, values.len());
    values[rank - 1]
}

fn safe_name(title: &str) -> String {
    title
        .chars()
        .map(|c| if c.is_alphanumeric() || c == '-' || c == '_' { c } else { '_' })
        .collect()
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Category {
    InLibrary,
    OutOfLibrary,
    Impossible,
    OutOfLibraryImpossible,
}

#[derive(Debug, Default)]
struct Tally {
    in_library: usize,
    in_library_refused: usize,
    answered_in_library: usize,
    cited_gold: usize,
    out_of_library: usize,
    out_of_library_refused: usize,
    impossible: usize,
    impossible_refused: usize,
    out_of_library_impossible: usize,
    out_of_library_impossible_refused: usize,
    outside: u64,
    f1: f64,
    exact: f64,
    gold_in_answer: usize,
    generated: usize,
    degenerate: usize,
    max_tokens: usize,
    fallback: usize,
    answered_sentences: usize,
    attributed_sentences: usize,
    cited_gold_paragraph: usize,
    /// Per answerable in-library question: the gold paragraph at hybrid@1, hybrid@5, text@5,
    /// vector@5, text@1.
    recall: Vec<[bool; 5]>,
}

impl Tally {
    fn add(
        &mut self,
        category: Category,
        answer: &Answer,
        gold: &[&str],
        gold_paragraph: Option<&str>,
    ) {
        let given: HashSet<&str> = answer.passages.iter().map(|p| p.chunk_id.as_str()).collect();
        self.outside +=
            answer.citations.iter().filter(|c| !given.contains(c.chunk_id.as_str())).count() as u64;
        let refused = answer.abstained;
        // The model was asked when it wrote something or fell back from it.
        if answer.timings.ttft_ms > 0.0 || answer.fallback.is_some() {
            self.generated += 1;
            self.degenerate += usize::from(answer.early_stop.is_some_and(|s| s.is_degenerate()));
            self.max_tokens += usize::from(answer.early_stop == Some(EarlyStop::MaxTokens));
            self.fallback += usize::from(answer.fallback.is_some());
            if !refused && answer.mode == AnswerMode::Generated {
                self.answered_sentences += answer.sentences.len();
                self.attributed_sentences +=
                    answer.sentences.iter().filter(|s| s.attributed).count();
            }
        }
        match category {
            Category::OutOfLibrary => {
                self.out_of_library += 1;
                self.out_of_library_refused += usize::from(refused);
            }
            Category::Impossible => {
                self.impossible += 1;
                self.impossible_refused += usize::from(refused);
            }
            Category::OutOfLibraryImpossible => {
                self.out_of_library_impossible += 1;
                self.out_of_library_impossible_refused += usize::from(refused);
            }
            Category::InLibrary => {
                self.in_library += 1;
                if refused {
                    self.in_library_refused += 1;
                    return;
                }
                self.answered_in_library += 1;
                let cites_gold = answer.citations.iter().any(|c| {
                    answer
                        .passages
                        .iter()
                        .any(|p| p.n == c.n && gold.iter().any(|g| contains_normalised(&p.text, g)))
                });
                self.cited_gold += usize::from(cites_gold);
                self.cited_gold_paragraph += usize::from(gold_paragraph.is_some_and(|para| {
                    answer.citations.iter().any(|c| {
                        answer.passages.iter().any(|p| p.n == c.n && is_of_paragraph(&p.text, para))
                    })
                }));
                if !cites_gold {
                    let quotes: Vec<&str> =
                        answer.citations.iter().map(|c| c.quote.as_str()).collect();
                    tracing::debug!(target: "eval", question = %answer.question, ?gold, ?quotes, "no cited passage holds the gold answer");
                }
                let text = answer_text(answer);
                self.gold_in_answer += usize::from(gold.iter().any(|g| {
                    let g = normalise(g);
                    !g.is_empty() && format!(" {} ", normalise(&text)).contains(&format!(" {g} "))
                }));
                self.f1 += gold.iter().map(|g| f1(&text, g)).fold(0.0, f64::max);
                self.exact += gold
                    .iter()
                    .map(|g| f64::from(u8::from(normalise(&text) == normalise(g))))
                    .fold(0.0, f64::max);
            }
        }
    }

    fn finish(self) -> (QaMetrics, Self) {
        let rate = |num: usize, den: usize| if den == 0 { 0.0 } else { num as f64 / den as f64 };
        let metrics = QaMetrics {
            out_of_library_abstention_recall: rate(
                self.out_of_library_refused,
                self.out_of_library,
            ),
            in_library_wrongly_refused_rate: rate(self.in_library_refused, self.in_library),
            citation_precision: rate(self.cited_gold, self.answered_in_library),
            citations_outside_retrieved: self.outside,
            impossible_abstention_recall: rate(self.impossible_refused, self.impossible),
            out_of_library_impossible_abstention_recall: rate(
                self.out_of_library_impossible_refused,
                self.out_of_library_impossible,
            ),
            answer_f1: if self.in_library == 0 { 0.0 } else { self.f1 / self.in_library as f64 },
            exact_match: if self.in_library == 0 {
                0.0
            } else {
                self.exact / self.in_library as f64
            },
            answered_rate: rate(self.answered_in_library, self.in_library),
            gold_in_answer_rate: rate(self.gold_in_answer, self.in_library),
            degenerate_rate: rate(self.degenerate, self.generated),
            max_tokens_rate: rate(self.max_tokens, self.generated),
            attributed_rate: rate(self.attributed_sentences, self.answered_sentences),
            fallback_rate: rate(self.fallback, self.generated),
            citation_paragraph_precision: rate(self.cited_gold_paragraph, self.answered_in_library),
            retrieval_recall_at_1: self.recall_rate(0),
            retrieval_recall_at_5: self.recall_rate(1),
            text_recall_at_1: self.recall_rate(4),
            text_recall_at_5: self.recall_rate(2),
            vector_recall_at_5: self.recall_rate(3),
        };
        (metrics, self)
    }
}

impl Tally {
    fn recall_rate(&self, column: usize) -> f64 {
        if self.recall.is_empty() {
            return 0.0;
        }
        self.recall.iter().filter(|r| r[column]).count() as f64 / self.recall.len() as f64
    }
}

/// Whether a chunk with `chunk_text` holds part of `paragraph`: a stretch of at least 40
/// characters of it (or all of a shorter chunk) occurs in the paragraph, whitespace collapsed.
/// Chunks may straddle two paragraphs; each counts for both.
fn is_of_paragraph(chunk_text: &str, paragraph: &str) -> bool {
    let flat = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ");
    let chunk = flat(chunk_text);
    let paragraph = flat(paragraph);
    let chars: Vec<char> = chunk.chars().collect();
    const PIECE: usize = 40;
    if chars.len() <= PIECE {
        return !chunk.is_empty() && paragraph.contains(&chunk);
    }
    // Pieces every PIECE/2 characters: an overlap of at least 1.5 pieces contains a whole one.
    (0..=chars.len() - PIECE)
        .step_by(PIECE / 2)
        .chain(std::iter::once(chars.len() - PIECE))
        .any(|start| paragraph.contains(&chars[start..start + PIECE].iter().collect::<String>()))
}

/// The answer's sentences without markers and quotation marks, for F1 and exact match.
fn answer_text(answer: &Answer) -> String {
    answer.sentences.iter().map(|s| s.text.as_str()).collect::<Vec<_>>().join(" ")
}

/// Whether `haystack` contains `needle` once both are lower-cased and whitespace-collapsed.
fn contains_normalised(haystack: &str, needle: &str) -> bool {
    let flat = |s: &str| s.split_whitespace().collect::<Vec<_>>().join(" ").to_lowercase();
    let needle = flat(needle);
    !needle.is_empty() && flat(haystack).contains(&needle)
}

/// SQuAD's answer normalisation (lower case, no punctuation, no articles, single spaces), with
/// two departures from the official script: punctuation becomes a space rather than nothing, and
/// typographic quotes and dashes count as punctuation.
fn normalise(text: &str) -> String {
    let lower: String = text
        .to_lowercase()
        .chars()
        .map(|c| if c.is_ascii_punctuation() || is_typographic_punctuation(c) { ' ' } else { c })
        .collect();
    lower
        .split_whitespace()
        .filter(|w| !matches!(*w, "a" | "an" | "the"))
        .collect::<Vec<_>>()
        .join(" ")
}

/// The typographic quotes and dashes of Wikipedia's text ("1979–80", “Normans”), which
/// models often write in ASCII: punctuation like their ASCII forms, so "1979-80" matches.
fn is_typographic_punctuation(c: char) -> bool {
    matches!(c, '\u{2010}'..='\u{2015}' | '\u{2018}'..='\u{201F}' | '\u{2212}')
}

/// SQuAD's token F1 of `prediction` against `gold`.
fn f1(prediction: &str, gold: &str) -> f64 {
    let pred = normalise(prediction);
    let gold = normalise(gold);
    let pred: Vec<&str> = pred.split_whitespace().collect();
    let gold: Vec<&str> = gold.split_whitespace().collect();
    if pred.is_empty() || gold.is_empty() {
        return f64::from(u8::from(pred == gold));
    }
    let mut remaining: Vec<&str> = gold.clone();
    let mut same = 0usize;
    for token in &pred {
        if let Some(i) = remaining.iter().position(|g| g == token) {
            remaining.swap_remove(i);
            same += 1;
        }
    }
    if same == 0 {
        return 0.0;
    }
    let precision = same as f64 / pred.len() as f64;
    let recall = same as f64 / gold.len() as f64;
    2.0 * precision * recall / (precision + recall)
}

/// Gate thresholds fitted to `features`: for each refusal budget `max` (0.05 and 0.1), the
/// cosine weight and threshold that refuse the most out-of-library questions while refusing at
/// most `max` of the in-library ones; then the same for coverage alone (weight 0, the score of
/// libraries without vectors).
fn calibrate(features: &[(Category, Vec<(f32, f32)>)]) -> Vec<GateCalibration> {
    let mut res = Vec::new();
    for max in [0.05, 0.1] {
        let fits: Vec<GateCalibration> =
            (0..=10).filter_map(|step| fit(features, step as f32 / 10.0, max)).collect();
        let best = fits.iter().fold(None::<&GateCalibration>, |best, c| match best {
            Some(b) if b.out_of_library_abstention_recall >= c.out_of_library_abstention_recall => {
                Some(b)
            }
            _ => Some(c),
        });
        res.extend(best.cloned());
        if best.is_some_and(|b| b.cosine_weight > 0.0) {
            res.extend(fits.into_iter().find(|c| c.cosine_weight == 0.0));
        }
    }
    res
}

/// The highest threshold for weight `w` that refuses at most `max` of the in-library questions.
fn fit(features: &[(Category, Vec<(f32, f32)>)], w: f32, max: f64) -> Option<GateCalibration> {
    let score = |signals: &[(f32, f32)]| {
        signals.iter().map(|(c, v)| w * c + (1.0 - w) * v).fold(0.0f32, f32::max)
    };
    let of = |category: Category| -> Vec<f32> {
        features.iter().filter(|(c, _)| *c == category).map(|(_, s)| score(s)).collect()
    };
    let mut inside = of(Category::InLibrary);
    let outside = of(Category::OutOfLibrary);
    if inside.is_empty() || outside.is_empty() {
        return None;
    }
    inside.sort_by(f32::total_cmp);
    let allowed = (max * inside.len() as f64).floor() as usize;
    let threshold = inside[allowed.min(inside.len() - 1)];
    let refused_in = inside.iter().filter(|&&s| s < threshold).count();
    let refused_out = outside.iter().filter(|&&s| s < threshold).count();
    Some(GateCalibration {
        cosine_weight: w,
        threshold,
        out_of_library_abstention_recall: refused_out as f64 / outside.len() as f64,
        in_library_wrongly_refused_rate: refused_in as f64 / inside.len() as f64,
        max_wrongly_refused: max,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn squad_normalisation_and_f1() {
        assert_eq!(normalise("The  Normans, of France!"), "normans of france");
        assert_eq!(normalise("the 1979–80 season"), normalise("1979-80 season"));
        assert_eq!(normalise("‘Normans’"), "normans");
        assert_eq!(f1("the 10th and 11th centuries", "10th and 11th centuries"), 1.0);
        // pred: in 10th and 11th centuries (5), 4 shared → P 0.8, R 1 → F1 8/9.
        assert!(
            (f1("in the 10th and 11th centuries", "10th and 11th centuries") - 8.0 / 9.0).abs()
                < 1e-9
        );
        // pred: rollo agreed to swear fealty (5), gold: rollo (1) → P 1/5, R 1 → F1 1/3.
        assert!((f1("Rollo agreed to swear fealty", "Rollo") - 1.0 / 3.0).abs() < 1e-9);
        assert_eq!(f1("Charles", "Rollo"), 0.0);
        assert!(contains_normalised("King  Charles\nIII of West Francia", "charles iii of"));
    }

    #[test]
    fn calibration_finds_the_separating_threshold() {
        let mut features = Vec::new();
        for i in 0..20 {
            // In-library: strong coverage; out-of-library: weak coverage, cosine useless.
            features.push((Category::InLibrary, vec![(0.5, 0.6 + i as f32 * 0.01)]));
            features.push((Category::OutOfLibrary, vec![(0.5, 0.1 + i as f32 * 0.01)]));
        }
        let cal = calibrate(&features);
        assert_eq!(cal.len(), 2);
        assert_eq!(cal[0].cosine_weight, 0.0);
        assert_eq!(cal[0].out_of_library_abstention_recall, 1.0);
        assert_eq!(cal[0].in_library_wrongly_refused_rate, 0.05);
    }

    #[test]
    fn a_chunk_belongs_to_the_paragraphs_it_overlaps() {
        let first = "The Panthers defense gave up just 308 points, ranking sixth in the league.";
        let second = "Kawann Short led the team in sacks with 11, forcing three fumbles as well.";
        let chunk = format!("{}  ranking sixth in the league.\n\n{second}", &first[..46]);
        assert!(is_of_paragraph(&chunk, first));
        assert!(is_of_paragraph(&chunk, second));
        assert!(!is_of_paragraph(&chunk, "An unrelated paragraph about the weather in Denver."));
        assert!(is_of_paragraph("308 points", first), "a short chunk inside the paragraph");
        assert!(!is_of_paragraph("", first));
    }

    #[test]
    fn paragraphs_file_is_found_beside_the_questions() {
        let p = default_paragraphs(Path::new("/d/squad2_dev_shared_questions.jsonl")).unwrap();
        assert_eq!(p, Path::new("/d/squad2_dev_shared_paragraphs.jsonl"));
        assert!(default_paragraphs(Path::new("/d/qs.jsonl")).is_err());
    }
}
