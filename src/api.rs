//! Plain serialisable types shared by the CLI's JSON output and the UI: the contract of DESIGN.md §5.
//! They hold no third-party types, so they can cross any boundary.

use serde::{Deserialize, Serialize};
use ts_rs::TS;

/// The kind of a source file, decided from its extension and magic bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS)]
#[serde(rename_all = "lowercase")]
pub enum FileKind {
    /// Portable Document Format.
    Pdf,
    /// Plain text in any common encoding.
    Text,
    /// Markdown (CommonMark).
    Markdown,
    /// An HTML page.
    Html,
    /// A Word document (Office Open XML).
    Docx,
    /// An OpenDocument text (`.odt`).
    Odt,
    /// Slides (PowerPoint `.pptx`, OpenDocument `.odp`): one page per slide.
    Presentation,
    /// A workbook (`.xlsx`, `.xls`, `.ods`) or a table (`.csv`, `.tsv`): one page per sheet.
    Spreadsheet,
    /// An e-book (`.epub`): one page per chapter.
    Epub,
    /// A saved e-mail message (`.eml`) with its attachments.
    Email,
    /// A picture of text (`.png`, `.jpg`, `.tif`), read by OCR.
    Image,
    /// Rich Text Format (`.rtf`); `\page` breaks make pages.
    Rtf,
    /// A mailbox (`.mbox`): each message a document of its own (`<mailbox>/message N`).
    Mailbox,
    /// A zip archive: each entry Quarry reads a document of its own (`<archive>/<entry>`).
    Archive,
}

impl FileKind {
    /// The name stored in the documents table and shown to users.
    pub fn as_str(self) -> &'static str {
        match self {
            FileKind::Pdf => "pdf",
            FileKind::Text => "text",
            FileKind::Markdown => "markdown",
            FileKind::Html => "html",
            FileKind::Docx => "docx",
            FileKind::Odt => "odt",
            FileKind::Presentation => "presentation",
            FileKind::Spreadsheet => "spreadsheet",
            FileKind::Epub => "epub",
            FileKind::Email => "email",
            FileKind::Image => "image",
            FileKind::Rtf => "rtf",
            FileKind::Mailbox => "mbox",
            FileKind::Archive => "zip",
        }
    }

    /// Every kind, in the order users see them.
    pub const ALL: [FileKind; 14] = [
        FileKind::Pdf,
        FileKind::Text,
        FileKind::Markdown,
        FileKind::Html,
        FileKind::Docx,
        FileKind::Odt,
        FileKind::Rtf,
        FileKind::Presentation,
        FileKind::Spreadsheet,
        FileKind::Epub,
        FileKind::Email,
        FileKind::Mailbox,
        FileKind::Archive,
        FileKind::Image,
    ];

    /// What a citation's page number counts in this kind of file: "page", "slide", "sheet",
    /// "chapter", "message" (in a mailbox) or "part" (of an e-mail: the message, then each
    /// attachment).
    pub fn page_name(self) -> &'static str {
        match self {
            FileKind::Presentation => "slide",
            FileKind::Spreadsheet => "sheet",
            FileKind::Epub => "chapter",
            FileKind::Email | FileKind::Archive => "part",
            FileKind::Mailbox => "message",
            _ => "page",
        }
    }

    /// Whether files of this kind hold documents of their own (archive entries, mailbox
    /// messages), indexed under the file's path as `<file>/<name>`.
    pub fn holds_documents(self) -> bool {
        matches!(self, FileKind::Mailbox | FileKind::Archive)
    }

    /// Parses a name written by [`FileKind::as_str`].
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "pdf" => FileKind::Pdf,
            "text" => FileKind::Text,
            "markdown" => FileKind::Markdown,
            "html" => FileKind::Html,
            "docx" => FileKind::Docx,
            "odt" => FileKind::Odt,
            "presentation" => FileKind::Presentation,
            "spreadsheet" => FileKind::Spreadsheet,
            "epub" => FileKind::Epub,
            "email" => FileKind::Email,
            "image" => FileKind::Image,
            "rtf" => FileKind::Rtf,
            "mbox" => FileKind::Mailbox,
            "zip" => FileKind::Archive,
            _ => return None,
        })
    }
}

/// A word OCR read on a page, with its box as fractions of the page's width and height (from
/// the top left), so the viewer can highlight a quote on the page image.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct OcrWord {
    /// The word as read.
    pub text: String,
    /// Left edge, 0..1 of the page width.
    pub x: f32,
    /// Top edge, 0..1 of the page height.
    pub y: f32,
    /// Width, as a fraction of the page width.
    pub w: f32,
    /// Height, as a fraction of the page height.
    pub h: f32,
}

/// The words OCR read on one page of a document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OcrPage {
    /// 1-based page number.
    pub page: u32,
    /// Words in reading order.
    pub words: Vec<OcrWord>,
}

/// Where a document stands in the index (DESIGN.md §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, TS)]
#[serde(rename_all = "lowercase")]
pub enum DocumentState {
    /// Its chunks are committed in both indexes.
    Indexed,
    /// Extraction failed; `error` says why. It has no chunks.
    Failed,
    /// Deliberately not indexed (for example, too large); `error` says why.
    Skipped,
    /// Being written; cleaned up and re-queued if found on open.
    Pending,
}

impl DocumentState {
    /// The name stored in the documents table.
    pub fn as_str(self) -> &'static str {
        match self {
            DocumentState::Indexed => "indexed",
            DocumentState::Failed => "failed",
            DocumentState::Skipped => "skipped",
            DocumentState::Pending => "pending",
        }
    }

    /// Parses a name written by [`DocumentState::as_str`].
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "indexed" => DocumentState::Indexed,
            "failed" => DocumentState::Failed,
            "skipped" => DocumentState::Skipped,
            "pending" => DocumentState::Pending,
            _ => return None,
        })
    }
}

/// One document of the library, as `quarry docs` lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct DocumentInfo {
    /// Absolute path of the source file.
    pub path: String,
    /// File kind.
    pub kind: FileKind,
    /// Index state.
    pub state: DocumentState,
    /// Why it failed or was skipped.
    pub error: Option<String>,
    /// Non-fatal problems found while extracting (damaged pages, pages without text).
    pub warnings: Vec<String>,
    /// Number of pages (PDF) or sections.
    pub pages: u32,
    /// Number of chunks in the index.
    pub chunks: u32,
    /// SHA-256 of the file content, hex.
    pub sha256: String,
    /// When it was last indexed (RFC 3339), if ever.
    pub indexed_at: Option<String>,
    /// File size in bytes.
    #[ts(type = "number")]
    pub size: u64,
    /// Document title when the format has one (HTML `<title>`, DOCX core properties).
    pub title: Option<String>,
    /// For a document inside an archive or mailbox: the path of that file (the document's
    /// path is this path, `/`, and its name inside).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[ts(optional)]
    pub inside: Option<String>,
}

/// One file that could not be indexed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
pub struct Failure {
    /// The file.
    pub path: String,
    /// Why, in words a user can act on.
    pub error: String,
}

/// What one `index` run did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, TS)]
pub struct IndexReport {
    /// New documents indexed.
    pub added: u32,
    /// Changed documents re-indexed.
    pub updated: u32,
    /// Documents removed because their file is gone.
    pub removed: u32,
    /// Documents left as they were.
    pub unchanged: u32,
    /// Documents that failed (also listed in `failures`).
    pub failed: u32,
    /// Chunks written in this run.
    #[ts(type = "number")]
    pub chunks: u64,
    /// Pages extracted in this run.
    #[ts(type = "number")]
    pub pages: u64,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// Each failed file with its reason.
    pub failures: Vec<Failure>,
    /// Paths the walk passed over, with why (a link leading out of the folder, a folder that
    /// cannot be read, a link loop).
    #[serde(default)]
    pub passed_over: Vec<Failure>,
}

/// How a search finds its hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, TS)]
#[serde(rename_all = "lowercase")]
pub enum SearchMode {
    /// Vector and BM25 results fused with reciprocal rank fusion.
    #[default]
    Hybrid,
    /// Nearest neighbours of the query embedding.
    Vector,
    /// BM25 over the full-text index.
    Text,
}

impl SearchMode {
    /// The mode's name as the CLI spells it.
    pub fn as_str(self) -> &'static str {
        match self {
            SearchMode::Hybrid => "hybrid",
            SearchMode::Vector => "vector",
            SearchMode::Text => "text",
        }
    }
}

/// One search result.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct SearchHit {
    /// The chunk.
    pub chunk_id: String,
    /// Path of the document it belongs to.
    pub doc_path: String,
    /// First page of the chunk (1-based; sections count as pages for non-paged formats).
    pub page: u32,
    /// Last page of the chunk.
    pub page_end: u32,
    /// Character span of the chunk in the document's extracted text.
    #[ts(type = "number")]
    pub char_start: u64,
    /// End of the character span (exclusive).
    #[ts(type = "number")]
    pub char_end: u64,
    /// Heading path for structured formats ("Intro > Scope"), empty otherwise.
    pub heading: String,
    /// Score: BM25 for text search, cosine similarity for vector search, the RRF sum for hybrid.
    pub score: f32,
    /// Which retrievers found it ("vector", "text").
    pub retrievers: Vec<String>,
    /// The chunk text.
    pub text: String,
    /// The chunk's detected language (ISO 639-3, "" when unknown).
    #[serde(default)]
    pub language: String,
}

/// The library at a glance (`quarry status`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct LibraryStatus {
    /// The data directory.
    pub data_dir: String,
    /// Library format version.
    pub format_version: u32,
    /// Number of documents by state.
    #[ts(type = "number")]
    pub documents: u64,
    /// Indexed documents.
    #[ts(type = "number")]
    pub indexed: u64,
    /// Failed documents.
    #[ts(type = "number")]
    pub failed: u64,
    /// Skipped documents.
    #[ts(type = "number")]
    pub skipped: u64,
    /// Pending documents (interrupted runs).
    #[ts(type = "number")]
    pub pending: u64,
    /// Chunks in the vector store.
    #[ts(type = "number")]
    pub chunks: u64,
    /// Chunks in the full-text index (equal to `chunks` in a consistent library).
    #[ts(type = "number")]
    pub text_index_chunks: u64,
    /// How chunks were sized.
    pub chunker: String,
    /// The embedding model of the vectors, if the library has vectors.
    pub embedder: Option<String>,
    /// Folders and files added to the library.
    pub sources: Vec<String>,
}

/// How an answer was produced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default, TS)]
#[serde(rename_all = "lowercase")]
pub enum AnswerMode {
    /// Written by the local language model from the numbered passages, then verified.
    #[default]
    Generated,
    /// No model: the best-supported sentences of the passages, quoted verbatim.
    Evidence,
}

impl AnswerMode {
    /// The mode's name as the CLI and the audit log spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            AnswerMode::Generated => "generated",
            AnswerMode::Evidence => "evidence",
        }
    }
}

/// What the caller asks for in one `ask`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
#[serde(default)]
pub struct AskOptions {
    /// Passages to retrieve before selection.
    pub k: usize,
    /// Quote the evidence instead of generating.
    pub evidence: bool,
    /// Most tokens the model may write.
    pub max_tokens: usize,
    /// Where the answer may look (empty: the whole library).
    pub scope: AskScope,
    /// The conversation the question belongs to: a thread's id to continue it, [`NEW_THREAD`]
    /// to start one; none for a question on its own. In a thread, a follow-up is rewritten
    /// into a standalone question before the search, and the turn is saved.
    #[serde(default)]
    pub thread: Option<String>,
}

/// [`AskOptions::thread`] for a question that starts a new conversation.
pub const NEW_THREAD: &str = "new";

/// A part of the library to answer from: documents under these folders (or these files) and
/// of these kinds; an empty list does not restrict.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(default)]
pub struct AskScope {
    /// Folders or files (absolute paths).
    pub within: Vec<String>,
    /// File kinds.
    pub kinds: Vec<FileKind>,
}

impl AskScope {
    /// Whether the scope restricts nothing.
    pub fn is_everything(&self) -> bool {
        self.within.is_empty() && self.kinds.is_empty()
    }
}

impl Default for AskOptions {
    fn default() -> Self {
        Self { k: 8, evidence: false, max_tokens: 384, scope: AskScope::default(), thread: None }
    }
}

/// One numbered passage given to the model (or quoted from in evidence mode).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct Passage {
    /// The number citations use (`[n]`), from 1.
    pub n: u32,
    /// The chunk.
    pub chunk_id: String,
    /// Its document.
    pub doc_path: String,
    /// SHA-256 of the document's content when it was indexed.
    pub doc_sha256: String,
    /// First page.
    pub page: u32,
    /// Last page.
    pub page_end: u32,
    /// Character span of the passage in the document's extracted text.
    #[ts(type = "number")]
    pub char_start: u64,
    /// End of that span (exclusive).
    #[ts(type = "number")]
    pub char_end: u64,
    /// Fused retrieval score.
    pub score: f32,
    /// Which retrievers found it.
    pub retrievers: Vec<String>,
    /// The passage text.
    pub text: String,
    /// The chunk's detected language (ISO 639-3, "" when unknown).
    #[serde(default)]
    pub language: String,
}

/// A citation of an answer: a passage and the sentence of it that supports the claim.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct Citation {
    /// The passage number as written in the answer.
    pub n: u32,
    /// The chunk.
    pub chunk_id: String,
    /// The document.
    pub doc_path: String,
    /// The page the quote is on.
    pub page: u32,
    /// Character span of the passage in the document's extracted text.
    #[ts(type = "number")]
    pub char_start: u64,
    /// End of the passage span.
    #[ts(type = "number")]
    pub char_end: u64,
    /// The best-matching sentence of the passage, verbatim.
    pub quote: String,
    /// Character span of the quote in the document's extracted text (for highlighting).
    #[ts(type = "number")]
    pub quote_start: u64,
    /// End of the quote span (exclusive).
    #[ts(type = "number")]
    pub quote_end: u64,
}

/// One sentence of an answer with its citations and whether the passages support it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct AnswerSentence {
    /// The sentence without its citation markers.
    pub text: String,
    /// Passage numbers it cites (only numbers of given passages).
    pub citations: Vec<u32>,
    /// Whether the cited passages support it.
    pub supported: bool,
    /// Support score in [0, 1] (lexical and embedding overlap with the best cited sentence).
    pub support: f32,
    /// Its citation was attached by Quarry: the model wrote the sentence without a marker (or
    /// with markers that do not support it) and the passage named in `citations` does.
    #[serde(default)]
    pub attributed: bool,
}

/// How long each part of an answer took.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, TS)]
pub struct AnswerTimings {
    /// Query embedding, both retrievers, fusion and passage selection.
    pub retrieve_ms: f64,
    /// Scoring the passages' sentences against the question (the gate's evidence).
    #[serde(default)]
    pub evidence_ms: f64,
    /// From the question to the first generated text the user sees (0 without generation).
    #[serde(default)]
    pub first_token_ms: f64,
    /// Reading the prompt (prefill), as the generator reports it.
    #[serde(default)]
    pub prompt_ms: f64,
    /// Tokens in the prompt (0 when a server generator does not report them).
    #[serde(default)]
    pub prompt_tokens: usize,
    /// Prompt tokens whose attention cache was reused (the system prompt's prefix).
    #[serde(default)]
    pub cached_prompt_tokens: usize,
    /// Writing the answer after its first token.
    #[serde(default)]
    pub decode_ms: f64,
    /// Time to the first generated token (0 without generation).
    pub ttft_ms: f64,
    /// Wall-clock time of the whole answer.
    pub total_ms: f64,
    /// Generated tokens.
    pub tokens: usize,
    /// Decode speed.
    pub tokens_per_s: f64,
}

/// The retrieval gate's decision: the strength of the best evidence against the threshold.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, TS)]
pub struct GateDecision {
    /// Evidence strength of the best sentence in the retrieved passages.
    pub score: f32,
    /// The calibrated threshold it is compared with.
    pub threshold: f32,
    /// Whether the evidence passed.
    pub passed: bool,
}

/// Why an answer is "not found in your documents", for UIs to say in their own language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum AbstainCause {
    /// The retrieval gate: no passage answers the question closely enough.
    WeakEvidence,
    /// Evidence mode found no sentence close enough to quote.
    NothingToQuote,
    /// The model answered with the refusal sentence.
    ModelRefused,
    /// No sentence of the model's answer is supported by the passages it cites.
    Unsupported,
}

impl AbstainCause {
    /// The cause in English words (the CLI and the audit log).
    pub fn describe(self) -> &'static str {
        match self {
            AbstainCause::WeakEvidence => "no passage of the library answers this closely enough",
            AbstainCause::NothingToQuote => "no sentence of the passages is close enough to quote",
            AbstainCause::ModelRefused => "the model found no answer in the passages",
            AbstainCause::Unsupported => {
                "no sentence of the model's answer is supported by the passages it cites"
            }
        }
    }
}

/// Why the model's writing was cut short.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum EarlyStop {
    /// Citation markers in a long run without words between them.
    MarkerLoop,
    /// The same words again and again.
    RepeatedText,
    /// A passage copied verbatim for more than a sentence or two.
    LongCopy,
    /// The model wrote until the token limit.
    MaxTokens,
}

impl EarlyStop {
    /// Whether the model was looping rather than answering: what came after the stop is
    /// noise, and quotes are due when nothing before it holds up.
    pub fn is_degenerate(self) -> bool {
        matches!(self, EarlyStop::MarkerLoop | EarlyStop::RepeatedText | EarlyStop::MaxTokens)
    }

    /// In English words (the CLI and the audit log).
    pub fn describe(self) -> &'static str {
        match self {
            EarlyStop::MarkerLoop => "the model repeated citation markers without writing",
            EarlyStop::RepeatedText => "the model repeated itself",
            EarlyStop::LongCopy => "the model copied a passage at length",
            EarlyStop::MaxTokens => "the model wrote until the length limit",
        }
    }
}

/// Why a generated answer fell back to quoting the evidence.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum FallbackCause {
    /// The model degenerated (looped) and nothing it wrote before could be verified.
    Degenerate,
    /// The model could not run (its error is in `fallback_detail`).
    GenerationFailed,
    /// The model named passages (`[1]`) without writing an answer: their best sentences are
    /// quoted.
    MarkersOnly,
}

impl FallbackCause {
    /// In English words (the CLI and the audit log).
    pub fn describe(self) -> &'static str {
        match self {
            FallbackCause::Degenerate => {
                "the model's answer degenerated; these are the passages' best sentences instead"
            }
            FallbackCause::GenerationFailed => {
                "the model could not answer; these are the passages' best sentences instead"
            }
            FallbackCause::MarkersOnly => {
                "the model pointed at passages without writing an answer; these are their best \
                 sentences"
            }
        }
    }
}

/// A grounded answer (`quarry ask --json`, DESIGN.md §5).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct Answer {
    /// The question as asked.
    pub question: String,
    /// The answer text with `[n]` markers, or the refusal sentence.
    pub answer: String,
    /// The question's language ("en" for every language but German), in which the refusal
    /// and the reasons below are written.
    #[serde(default)]
    pub language: crate::language::TextLanguage,
    /// Whether the answer is "not found in your documents".
    pub abstained: bool,
    /// Why it abstained, when it did, in words of `language`.
    pub abstain_reason: Option<String>,
    /// Why it abstained, as a code.
    pub abstain_cause: Option<AbstainCause>,
    /// How it was produced.
    pub mode: AnswerMode,
    /// The answer split into sentences with their support.
    pub sentences: Vec<AnswerSentence>,
    /// Every passage cited by the answer.
    pub citations: Vec<Citation>,
    /// The passages given to the model (or quoted from).
    pub passages: Vec<Passage>,
    /// Citation markers that named no given passage and were removed.
    pub removed_citations: Vec<u32>,
    /// The retrieval gate's decision.
    pub gate: GateDecision,
    /// The generator's file name, when one wrote the answer.
    pub model: Option<String>,
    /// What the model wrote, before verification (markers, loops and all), when it wrote.
    #[serde(default)]
    pub model_text: Option<String>,
    /// Why the model's writing was cut short, when it was.
    #[serde(default)]
    pub early_stop: Option<EarlyStop>,
    /// Why a generated answer became quotes of the evidence (`mode` is then `evidence`).
    #[serde(default)]
    pub fallback: Option<FallbackCause>,
    /// What went wrong, in words, when the answer fell back to quotes.
    #[serde(default)]
    pub fallback_detail: Option<String>,
    /// Share of the question's terms (weighted by rarity) that the cited passages contain, for
    /// generated answers.
    #[serde(default)]
    pub question_coverage: Option<f32>,
    /// The question's terms (as the full-text index analyses them) that no cited passage
    /// contains.
    #[serde(default)]
    pub uncovered_terms: Vec<String>,
    /// Timings.
    pub timings: AnswerTimings,
    /// The conversation this answer is a turn of, when it is one.
    #[serde(default)]
    pub conversation: Option<AnswerConversation>,
}

/// Where a page starts in a document's text.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct PageStart {
    /// The page (1-based).
    pub page: u32,
    /// Character offset of its first indexed character.
    #[ts(type = "number")]
    pub char_start: u64,
}

/// A document's indexed text, for the source viewer: character offsets match the spans of
/// hits and citations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct DocumentText {
    /// The document.
    pub path: String,
    /// Its kind.
    pub kind: FileKind,
    /// Number of pages.
    pub pages: u32,
    /// The text, rebuilt from the chunks (gaps between sections filled with blanks).
    pub text: String,
    /// Where each page with text starts.
    pub page_starts: Vec<PageStart>,
}

/// Progress of the current or last indexing run, as the UI shows it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, TS)]
pub struct IndexProgress {
    /// Whether a run is going.
    pub running: bool,
    /// Whether the last run was stopped before it finished (the next run resumes).
    pub paused: bool,
    /// Files to extract in this run.
    #[ts(type = "number")]
    pub total: u64,
    /// Files done (indexed or failed).
    #[ts(type = "number")]
    pub done: u64,
    /// Files that failed.
    #[ts(type = "number")]
    pub failed: u64,
    /// Files already up to date.
    #[ts(type = "number")]
    pub unchanged: u64,
    /// Files per second so far.
    pub rate_per_s: f64,
    /// Seconds left at that rate.
    pub eta_s: Option<f64>,
    /// The file finished last.
    pub current: Option<String>,
    /// The report of the finished run.
    pub report: Option<IndexReport>,
    /// Why the run stopped, if it failed.
    pub error: Option<String>,
}

/// The settings the UI shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct AppSettings {
    /// The library folder.
    pub data_dir: String,
    /// The models folder.
    pub models_dir: String,
    /// The embedding model in use.
    pub embedder: Option<String>,
    /// The generator in use (file name); `None` answers in evidence mode.
    pub generator: Option<String>,
    /// The retrieval gate's threshold.
    pub gate_threshold: f32,
    /// Passages retrieved per question.
    pub default_k: usize,
    /// Most tokens an answer may take.
    pub max_answer_tokens: usize,
    /// Whether scanned pages and images are read by OCR.
    pub ocr: bool,
    /// A models folder chosen in Settings that takes effect when Quarry starts again.
    pub models_dir_next_start: Option<String>,
}

/// A model found in the models folder, as the Models view lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct ModelSummary {
    /// Catalog id, or the folder / file name.
    pub id: String,
    /// "generate" or "embed".
    pub role: String,
    /// Architecture family.
    pub family: String,
    /// Quantization ("Q4_K_M", "F32", ...).
    pub quantization: String,
    /// Number of weights, when known.
    #[ts(type = "number | null")]
    pub parameters: Option<u64>,
    /// Bytes on disk.
    #[ts(type = "number")]
    pub bytes: u64,
    /// The file or folder.
    pub path: String,
    /// Why it cannot be used, if it cannot.
    pub problem: Option<String>,
    /// Whether this library uses it (the embedder it was built with, the generator it answers
    /// with).
    pub in_use: bool,
}

/// A model of the catalog, as the Models view offers it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct CatalogModel {
    /// Catalog id ("org/name").
    pub id: String,
    /// "generate" or "embed".
    pub role: String,
    /// Architecture family.
    pub family: String,
    /// Licence of the weights.
    pub license: String,
    /// Approximate download size.
    pub size_mb: u32,
    /// Languages it is meant for.
    pub languages: Vec<String>,
    /// One line on what it is good for.
    pub good_for: String,
    /// Memory it needs, roughly.
    pub ram_mb: Option<u32>,
    /// Whether Quarry can download it (`quarry models pull`).
    pub downloadable: bool,
    /// Whether it is installed in the models folder.
    pub installed: bool,
}

/// The download in progress (or the last one).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, TS)]
pub struct PullProgress {
    /// The catalog id being (or last) downloaded.
    pub id: Option<String>,
    /// Whether a download is going.
    pub running: bool,
    /// The file being fetched.
    pub file: Option<String>,
    /// Bytes done.
    #[ts(type = "number")]
    pub done: u64,
    /// Bytes in all, when known.
    #[ts(type = "number | null")]
    pub total: Option<u64>,
    /// Bytes per second.
    pub rate: f64,
    /// Why it stopped, if it failed.
    pub error: Option<String>,
    /// Whether it was stopped by the user (the next pull resumes).
    pub cancelled: bool,
    /// The folder it was installed in, when it finished.
    pub installed: Option<String>,
}

/// What the Models view shows.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct ModelsOverview {
    /// The models folder.
    pub models_dir: String,
    /// What is installed there.
    pub installed: Vec<ModelSummary>,
    /// What Quarry can download or knows how to run.
    pub catalog: Vec<CatalogModel>,
    /// The download in progress, or the last one.
    pub pull: PullProgress,
}

/// Where an answer is while it is being made, for the UI's status line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(tag = "stage", rename_all = "snake_case")]
pub enum AnswerStage {
    /// Searching the library.
    Searching,
    /// Reading the passages found (how many).
    Reading {
        /// Passages selected for the answer.
        passages: u32,
    },
    /// The model is writing.
    Writing,
    /// The model's text is being checked against the passages.
    Checking,
    /// A follow-up was rewritten into the standalone question that is searched for (before
    /// `searching`).
    Rewritten {
        /// The question as searched for.
        question: String,
        /// Who rewrote it.
        by: QuestionRewrite,
    },
}

/// How a question in a conversation became the question Quarry searched for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "snake_case")]
pub enum QuestionRewrite {
    /// It stands on its own (or it opened the conversation).
    Unchanged,
    /// A follow-up, completed from the previous turn by Quarry's rules (see
    /// `conversation::rewrite`).
    Rules,
    /// A follow-up, rewritten by the language model (and checked).
    Model,
}

/// An answer's place in a conversation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct AnswerConversation {
    /// The thread.
    pub thread_id: String,
    /// The turn, from 1.
    pub turn: u32,
    /// What the user typed (the answer's `question` is what was searched for).
    pub asked: String,
    /// How `asked` became the question.
    pub rewritten_by: QuestionRewrite,
}

/// A saved conversation as the thread list shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct ThreadSummary {
    /// Its id.
    pub id: String,
    /// Its title (the first question, until renamed).
    pub title: String,
    /// When it was started (RFC 3339, UTC).
    pub created: String,
    /// When its last turn was added or it was renamed.
    pub updated: String,
    /// Number of turns.
    pub turns: u32,
}

/// A saved conversation: its turns, each with its own citations and verification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct Thread {
    /// Its id.
    pub id: String,
    /// Its title.
    pub title: String,
    /// When it was started (RFC 3339, UTC).
    pub created: String,
    /// When it last changed.
    pub updated: String,
    /// The turns in order.
    pub turns: Vec<ThreadTurn>,
}

/// One question and its answer in a thread.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, TS)]
pub struct ThreadTurn {
    /// When it was answered (RFC 3339, UTC).
    pub time: String,
    /// The answer (its `conversation` says what was typed and how it was rewritten).
    pub answer: Answer,
}

/// How a thread is exported.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, TS)]
#[serde(rename_all = "lowercase")]
pub enum ThreadExportFormat {
    /// A report for people, with the sources of every turn.
    Markdown,
    /// The thread as saved, with the audit records it produced.
    Json,
}
