//! Engine settings as plain data, validated once when the engine opens.
//! The engine never reads files or the environment to find its settings: callers build this.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Everything the engine needs to know from its caller.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EngineConfig {
    /// The library folder (LanceDB tables, tantivy index, `library.json`); for a library on
    /// object storage (`remote`), this machine's folder for it: its own text index, settings,
    /// conversations and audit log.
    pub data_dir: PathBuf,
    /// A library whose tables live on S3-compatible object storage; `None`: all in `data_dir`.
    pub remote: Option<RemoteLibrary>,
    /// A `tokenizer.json` used to size chunks in tokens; without it chunks are sized in
    /// characters (about four per token).
    pub tokenizer: Option<PathBuf>,
    /// The embedding model; `None` builds a text-only library (BM25 search only).
    pub embedder: Option<EmbedderConfig>,
    /// How document text is extracted.
    pub extraction: ExtractionConfig,
    /// How text is cut into chunks.
    pub chunking: ChunkingConfig,
    /// The GGUF model that writes answers; `None` answers in evidence mode.
    pub generator: Option<PathBuf>,
    /// An OpenAI-compatible server that writes the answers instead of a local model (it takes
    /// precedence over `generator`).
    pub generator_server: Option<GeneratorServerConfig>,
    /// How answers are grounded and checked.
    pub answer: AnswerConfig,
    /// The models folder: what the app lists as installed and where `pull` puts downloads.
    pub models_dir: Option<PathBuf>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            data_dir: PathBuf::from("quarry-data"),
            remote: None,
            tokenizer: None,
            embedder: None,
            extraction: ExtractionConfig::default(),
            chunking: ChunkingConfig::default(),
            generator: None,
            generator_server: None,
            answer: AnswerConfig::default(),
            models_dir: None,
        }
    }
}

/// A library on S3-compatible object storage (`s3://bucket/prefix`): the LanceDB tables, the
/// library's `library.json`, its OCR word boxes and the writer lease live there; each machine
/// keeps the derived text index in its own `data_dir`. Credentials, region and endpoint come
/// from the usual AWS environment variables and profiles (`AWS_ACCESS_KEY_ID`, `AWS_PROFILE`,
/// `AWS_REGION`, `AWS_ENDPOINT_URL` for MinIO, Ceph, Garage and the like); `storage_options`
/// adds LanceDB object-store options on top (`aws_endpoint`, `allow_http`, ...).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteLibrary {
    /// `s3://bucket/prefix`, without a trailing slash.
    pub uri: String,
    /// Object-store options passed to LanceDB as they are (no secrets belong here: those come
    /// from the environment).
    #[serde(default)]
    pub storage_options: std::collections::BTreeMap<String, String>,
    /// How long the writer lease lasts without renewal: how long a writer that died blocks
    /// the next one at most.
    #[serde(default = "default_lease_seconds")]
    pub lease_seconds: u64,
}

fn default_lease_seconds() -> u64 {
    crate::index::remote::DEFAULT_LEASE_SECONDS
}

impl RemoteLibrary {
    /// The library at `uri` when it names object storage (`s3://bucket[/prefix]`); `Ok(None)`
    /// for a plain folder; an error naming the address when it is malformed or of a kind
    /// Quarry cannot store a library on.
    pub fn parse(uri: &str) -> Result<Option<Self>> {
        let Some((scheme, rest)) = uri.split_once("://") else { return Ok(None) };
        if scheme != "s3" {
            return Err(Error::user(format!(
                "{uri}: a library can live in a folder or on S3-compatible storage (s3://bucket/prefix), not on {scheme}://"
            )));
        }
        let rest = rest.trim_end_matches('/');
        let bucket = rest.split('/').next().unwrap_or_default();
        if bucket.is_empty() || rest.split('/').any(str::is_empty) || rest.contains(['?', '#']) {
            return Err(Error::user(format!(
                "{uri}: expected s3://bucket or s3://bucket/prefix (no empty parts, no query)"
            )));
        }
        Ok(Some(Self {
            uri: format!("s3://{rest}"),
            storage_options: Default::default(),
            lease_seconds: default_lease_seconds(),
        }))
    }

    /// Allows plain HTTP when the storage server's endpoint is an `http://` address (a MinIO
    /// on the LAN, a test server on loopback), which object_store otherwise refuses.
    pub fn allow_http_for(&mut self, endpoint: &str) {
        if endpoint.starts_with("http://") {
            self.storage_options.insert("allow_http".to_owned(), "true".to_owned());
        }
    }

    /// This machine's folder for the library when the user names none: one per address under
    /// the platform's cache folder (`~/.cache/quarry/libraries/<bucket>-<prefix>-<hash>`).
    pub fn default_cache_dir(&self) -> Result<PathBuf> {
        let base = directories::ProjectDirs::from("org", "Quarry", "quarry")
            .map(|p| p.cache_dir().join("libraries"))
            .ok_or_else(|| Error::user("no home folder for the library's cache; name one"))?;
        let readable: String = self
            .uri
            .trim_start_matches("s3://")
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() || c == '-' || c == '_' { c } else { '-' })
            .take(60)
            .collect();
        let digest = {
            use sha2::Digest;
            crate::ids::hex(&sha2::Sha256::digest(self.uri.as_bytes())[..4])
        };
        Ok(base.join(format!("{readable}-{digest}")))
    }
}

/// An inference server speaking the OpenAI chat API (llama.cpp's server, vLLM, Ollama, LM
/// Studio, TGI) that writes answers from the same grounded prompt a local model gets.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GeneratorServerConfig {
    /// The server: its base URL (`http://127.0.0.1:8080`), its `/v1` URL or the full
    /// `/v1/chat/completions` URL.
    pub url: String,
    /// The model to ask for; `None` takes the first one the server lists.
    #[serde(default)]
    pub model: Option<String>,
    /// Sent as a bearer token. Never written out (not serialised, not in `Debug`, not logged).
    #[serde(skip)]
    pub api_key: Option<String>,
    /// Tokens the server's model attends to; passages are chosen to fit it.
    #[serde(default = "default_server_context")]
    pub context_length: usize,
    /// Seconds the server may stay silent (connecting, reading the prompt, between pieces).
    #[serde(default = "default_server_timeout")]
    pub timeout_s: u64,
}

fn default_server_context() -> usize {
    4096
}

fn default_server_timeout() -> u64 {
    300
}

impl GeneratorServerConfig {
    /// A server at `url` with the default context and timeout.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            model: None,
            api_key: None,
            context_length: default_server_context(),
            timeout_s: default_server_timeout(),
        }
    }
}

impl GeneratorServerConfig {
    /// "qwen2.5-7b at http://127.0.0.1:8080", as settings and reports show the server.
    pub fn describe(&self) -> String {
        format!(
            "{} at {}",
            self.model.as_deref().unwrap_or("the server's model"),
            crate::generate::openai_server::display_url(&self.url)
        )
    }
}

impl std::fmt::Debug for GeneratorServerConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("GeneratorServerConfig")
            .field("url", &crate::generate::openai_server::display_url(&self.url))
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "(set)"))
            .field("context_length", &self.context_length)
            .field("timeout_s", &self.timeout_s)
            .finish()
    }
}

/// A sentence-embedding model in a local folder.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmbedderConfig {
    /// Model id, recorded in `library.json` ("sentence-transformers/all-MiniLM-L6-v2").
    pub id: String,
    /// Folder with `config.json`, `tokenizer.json`, `model.safetensors`.
    pub dir: PathBuf,
    /// Put before queries (E5: "query: ").
    #[serde(default)]
    pub query_prefix: String,
    /// Put before passages (E5: "passage: ").
    #[serde(default)]
    pub passage_prefix: String,
    /// The retrieval gate calibrated for this model (from its catalog entry); `None` keeps
    /// [`AnswerConfig`]'s values. Cosines of different models sit in different bands, so a gate
    /// fitted to one means nothing for another.
    #[serde(default)]
    pub gate: Option<GateSettings>,
}

/// The retrieval gate fitted to one embedder by `quarry eval qa --evidence --calibrate`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GateSettings {
    /// Abstain below this evidence score.
    pub threshold: f32,
    /// Weight of embedding similarity in the evidence score (the rest is term coverage).
    pub cosine_weight: f32,
    /// The threshold for sentences in another language than the question (multilingual
    /// embedders), on embedding similarity alone.
    #[serde(default)]
    pub cross_language_threshold: Option<f32>,
}

/// Where and how untrusted files are parsed.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ExtractionConfig {
    /// Parse files in worker processes started with this command line (the `quarry` binary
    /// in its hidden worker mode), so a crash or hang in a parser loses only that file.
    /// `None` parses in-process, which only tests should do.
    pub worker_command: Option<Vec<String>>,
    /// Number of files extracted at once.
    pub workers: usize,
    /// Longest time one file may take before its worker is killed.
    pub per_file_timeout_secs: u64,
    /// Files larger than this are skipped with a reason.
    pub max_file_bytes: u64,
    /// Memory one worker may allocate (Linux: RLIMIT_DATA); a parser that wants more fails on
    /// that file only.
    pub worker_memory_mb: u64,
    /// Most chunks one file may make (which also bounds its embedding work); a longer file
    /// fails with the reason.
    pub max_chunks_per_file: usize,
    /// Longest time chunking one file may take.
    pub chunking_timeout_secs: u64,
    /// OCR for pages without a text layer and for image files (Tesseract); `None` switches it
    /// off (images are then passed over).
    pub ocr: Option<crate::ingest::ocr::OcrOptions>,
    /// Passwords to try on encrypted PDFs during this run (never written anywhere).
    #[serde(skip)]
    pub pdf_passwords: crate::ingest::Passwords,
}

impl Default for ExtractionConfig {
    fn default() -> Self {
        Self {
            worker_command: None,
            workers: std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2).min(4),
            per_file_timeout_secs: 120,
            max_file_bytes: 512 * 1024 * 1024,
            worker_memory_mb: 2048,
            max_chunks_per_file: 20_000,
            chunking_timeout_secs: 120,
            ocr: Some(crate::ingest::ocr::OcrOptions::default()),
            pdf_passwords: crate::ingest::Passwords::default(),
        }
    }
}

impl ExtractionConfig {
    /// The per-file time limit.
    pub fn per_file_timeout(&self) -> Duration {
        Duration::from_secs(self.per_file_timeout_secs)
    }
}

/// Chunk sizing. Recorded in `library.json`, since it changes what the index contains.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ChunkingConfig {
    /// Largest chunk, in tokens. all-MiniLM-L6-v2 reads at most 256 word pieces; 200 leaves
    /// room for the special tokens and for the query/passage prefixes of other models.
    pub max_tokens: usize,
    /// Tokens shared by neighbouring chunks, so a sentence cut at a boundary is still whole
    /// in one of them.
    pub overlap_tokens: usize,
}

impl Default for ChunkingConfig {
    fn default() -> Self {
        Self { max_tokens: 200, overlap_tokens: 32 }
    }
}

/// Grounded answering: the retrieval gate, passage budget and citation checks.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AnswerConfig {
    /// The retrieval gate: abstain without calling the model when the best sentence of the
    /// retrieved passages scores below this (embedding similarity and term coverage mixed by
    /// `evidence_cosine_weight`). Calibrated on SQuAD, see [`AnswerConfig::default`].
    pub gate_threshold: f32,
    /// The gate for libraries without vectors, where the score is term coverage alone.
    pub gate_threshold_text_only: f32,
    /// Passages retrieved per question when the caller names no number.
    pub passages_per_question: usize,
    /// Most tokens an answer may take when the caller names no limit.
    pub max_answer_tokens: usize,
    /// The gate for a sentence in another language than the question, judged by embedding
    /// similarity alone; only a multilingual embedder has one (from its catalog entry).
    pub gate_threshold_cross_language: Option<f32>,
    /// Weight of embedding similarity in the gate's evidence score (the rest is term coverage).
    pub evidence_cosine_weight: f32,
    /// Weight of embedding similarity when choosing which sentences evidence mode quotes.
    pub quote_cosine_weight: f32,
    /// A generated sentence counts as supported when its support score reaches this.
    pub support_threshold: f32,
    /// Most passages given to the model.
    pub max_passages: usize,
    /// Tokens the passages may take in the prompt, together.
    pub passage_budget_tokens: usize,
    /// Sentences quoted in evidence mode.
    pub evidence_sentences: usize,
    /// Evidence mode quotes a sentence only when it scores at least this share of the best.
    pub evidence_relative: f32,
    /// How the grounded prompt is laid out (see `quarry eval qa --prompt-style`).
    pub prompt_style: crate::answer::prompt::PromptStyle,
    /// Repetition penalty for generated answers (1.0 = off).
    pub repeat_penalty: f32,
    /// Give the model, of each passage, only its best sentence for the question and this many
    /// sentences on either side (`None`: whole passages). Citations, verification and the
    /// viewer keep the whole passage.
    pub prompt_sentence_window: Option<usize>,
    /// Answers written at the same time; more are refused as busy (HTTP 429), so answers
    /// cannot starve listing, search and indexing.
    pub max_concurrent_answers: usize,
}

impl Default for AnswerConfig {
    /// The gate's weight and thresholds come from `quarry eval qa --evidence --calibrate` on
    /// `../shared/data/squad2` (500 questions; library = every other article): the setting
    /// that refuses the most answerable questions about left-out articles while refusing at most
    /// 5 % of those about kept articles, leaving room under the 10 % bar for unseen data.
    /// Measured there: weight 0.7, threshold 0.411 → 97.9 % of out-of-library questions refused,
    /// 4.4 % of in-library ones. Coverage alone (libraries without vectors), same rule:
    /// threshold 0.311 → 89.4 % refused at 4.4 %.
    fn default() -> Self {
        Self {
            gate_threshold: 0.41,
            gate_threshold_text_only: 0.31,
            passages_per_question: 8,
            max_answer_tokens: 384,
            gate_threshold_cross_language: None,
            evidence_cosine_weight: 0.7,
            quote_cosine_weight: 0.5,
            support_threshold: 0.5,
            max_passages: 6,
            passage_budget_tokens: 1500,
            evidence_sentences: 3,
            evidence_relative: 0.85,
            prompt_style: crate::answer::prompt::PromptStyle::default(),
            repeat_penalty: 1.0,
            prompt_sentence_window: None,
            max_concurrent_answers: 4,
        }
    }
}

/// The folder the library lives in when the user names none: the platform's data folder
/// (`~/.local/share/quarry` on Linux). The CLI and the desktop app both start from it.
pub fn default_data_dir() -> Result<PathBuf> {
    directories::ProjectDirs::from("org", "Quarry", "quarry")
        .map(|p| p.data_dir().to_owned())
        .ok_or_else(|| Error::user("no home folder to keep the library in; name a data folder"))
}

impl EngineConfig {
    /// Makes `embedder` the library's vector model: its tokenizer sizes chunks and its
    /// calibrated gate, when it has one, replaces the default.
    pub fn use_embedder(&mut self, embedder: EmbedderConfig) {
        let tokenizer = embedder.dir.join("tokenizer.json");
        self.tokenizer = tokenizer.is_file().then_some(tokenizer);
        if let Some(gate) = embedder.gate {
            self.answer.gate_threshold = gate.threshold;
            self.answer.evidence_cosine_weight = gate.cosine_weight;
            self.answer.gate_threshold_cross_language = gate.cross_language_threshold;
        }
        self.embedder = Some(embedder);
    }

    /// What the UI shows of these settings, with the models folder they were found in.
    pub fn app_settings(&self, models_dir: &std::path::Path) -> crate::api::AppSettings {
        crate::api::AppSettings {
            data_dir: self.data_dir.to_string_lossy().into_owned(),
            models_dir: models_dir.to_string_lossy().into_owned(),
            embedder: self.embedder.as_ref().map(|e| e.id.clone()),
            generator: self
                .generator
                .as_ref()
                .and_then(|g| g.file_name())
                .map(|n| n.to_string_lossy().into_owned()),
            gate_threshold: self.answer.gate_threshold,
            default_k: self.answer.passages_per_question,
            max_answer_tokens: self.answer.max_answer_tokens,
            ocr: self.extraction.ocr.is_some(),
            models_dir_next_start: None,
        }
    }

    /// Checks the settings once, so nothing downstream re-checks them.
    pub fn validate(&self) -> Result<()> {
        if self.chunking.max_tokens < 16 {
            return Err(Error::user("chunking.max_tokens must be at least 16"));
        }
        if self.chunking.overlap_tokens >= self.chunking.max_tokens / 2 {
            return Err(Error::user(
                "chunking.overlap_tokens must be less than half of max_tokens",
            ));
        }
        if self.extraction.workers == 0 {
            return Err(Error::user("extraction.workers must be at least 1"));
        }
        if self.extraction.per_file_timeout_secs == 0 {
            return Err(Error::user("extraction.per_file_timeout_secs must be at least 1"));
        }
        if let Some(cmd) = &self.extraction.worker_command
            && cmd.is_empty()
        {
            return Err(Error::user("extraction.worker_command is empty"));
        }
        if !(self.answer.repeat_penalty.is_finite() && self.answer.repeat_penalty > 0.0) {
            return Err(Error::user("answer.repeat_penalty must be a positive number (1.0 = off)"));
        }
        if let Some(ocr) = &self.extraction.ocr {
            let valid = !ocr.languages.is_empty()
                && ocr.languages.split('+').all(|l| {
                    !l.is_empty() && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                });
            if !valid {
                return Err(Error::user(format!(
                    "extraction.ocr.languages must be Tesseract language names joined by '+' \
                     (\"deu+eng\"), not \"{}\"",
                    ocr.languages
                )));
            }
        }
        if let Some(server) = &self.generator_server {
            let scheme = server.url.split_once("://").map(|(scheme, _)| scheme);
            if !matches!(scheme, Some("http" | "https")) {
                return Err(Error::user(format!(
                    "generator_server.url must be an http:// or https:// URL, not \"{}\"",
                    crate::generate::openai_server::display_url(&server.url)
                )));
            }
            if server.context_length < 256 {
                return Err(Error::user("generator_server.context_length must be at least 256"));
            }
        }
        Ok(())
    }
}

/// What the user changed in Settings, kept in `<data dir>/settings.json`: applied over the
/// defaults whenever the library is opened (command-line flags still win), and by a running
/// engine at once (`Engine::update_settings`), except the models folder, which is read when
/// Quarry starts.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ts_rs::TS)]
#[serde(default, deny_unknown_fields)]
pub struct LibrarySettings {
    /// The models folder (instead of `<data dir>/models`).
    pub models_dir: Option<String>,
    /// The retrieval gate (evidence threshold), 0 to 1.
    pub gate_threshold: Option<f32>,
    /// Passages retrieved per question, 1 to 50.
    pub passages_per_question: Option<usize>,
    /// Most tokens an answer may take, 16 to 4096.
    pub max_answer_tokens: Option<usize>,
    /// Whether scanned pages and images are read by OCR.
    pub ocr: Option<bool>,
}

impl LibrarySettings {
    fn path(data_dir: &Path) -> PathBuf {
        data_dir.join("settings.json")
    }

    /// The settings saved for `data_dir` (none saved: all defaults). A file that cannot be
    /// read is named in a warning and ignored, so a damaged file never locks the user out.
    pub fn read(data_dir: &Path) -> Self {
        let path = Self::path(data_dir);
        match std::fs::read(&path) {
            Ok(bytes) => match serde_json::from_slice::<Self>(&bytes) {
                // A models folder moved away since is not a reason to drop the other settings.
                Ok(settings) if settings.check_values().is_ok() => settings,
                Ok(_) | Err(_) => {
                    tracing::warn!("{}: not valid settings; using the defaults", path.display());
                    Self::default()
                }
            },
            Err(_) => Self::default(),
        }
    }

    /// `change`'s values over these (a field `change` leaves out keeps its value).
    pub fn merged(&self, change: &Self) -> Self {
        Self {
            models_dir: change.models_dir.clone().or_else(|| self.models_dir.clone()),
            gate_threshold: change.gate_threshold.or(self.gate_threshold),
            passages_per_question: change.passages_per_question.or(self.passages_per_question),
            max_answer_tokens: change.max_answer_tokens.or(self.max_answer_tokens),
            ocr: change.ocr.or(self.ocr),
        }
    }

    /// Refuses a value out of range, naming the field.
    pub fn validate(&self) -> Result<()> {
        self.check_values()?;
        if let Some(dir) = &self.models_dir {
            let path = Path::new(dir);
            if !path.is_absolute() || !path.is_dir() {
                return Err(Error::user(format!(
                    "models_dir: {dir} is not an existing folder (give its full path)"
                )));
            }
        }
        Ok(())
    }

    /// The ranges of the numbers.
    fn check_values(&self) -> Result<()> {
        if let Some(g) = self.gate_threshold
            && !(0.0..=1.0).contains(&g)
        {
            return Err(Error::user(format!("gate_threshold: must be between 0 and 1 (got {g})")));
        }
        if let Some(k) = self.passages_per_question
            && !(1..=50).contains(&k)
        {
            return Err(Error::user(format!(
                "passages_per_question: must be between 1 and 50 (got {k})"
            )));
        }
        if let Some(n) = self.max_answer_tokens
            && !(16..=4096).contains(&n)
        {
            return Err(Error::user(format!(
                "max_answer_tokens: must be between 16 and 4096 (got {n})"
            )));
        }
        Ok(())
    }

    /// Saves these settings for `data_dir` (written whole, through a temporary file).
    pub fn save(&self, data_dir: &Path) -> Result<()> {
        self.validate()?;
        std::fs::create_dir_all(data_dir).map_err(|e| Error::io(data_dir, e))?;
        let path = Self::path(data_dir);
        let json = serde_json::to_vec_pretty(self)
            .map_err(|e| Error::internal("cannot write the settings", e))?;
        let tmp = path.with_extension("json.tmp");
        std::fs::write(&tmp, json).map_err(|e| Error::io(&tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))
    }

    /// Applies the answer and OCR settings to `config` (the models folder is the caller's:
    /// it decides which models are found).
    pub fn apply(&self, config: &mut EngineConfig) {
        if let Some(g) = self.gate_threshold {
            config.answer.gate_threshold = g;
        }
        if let Some(k) = self.passages_per_question {
            config.answer.passages_per_question = k;
        }
        if let Some(n) = self.max_answer_tokens {
            config.answer.max_answer_tokens = n;
        }
        match self.ocr {
            Some(false) => config.extraction.ocr = None,
            Some(true) if config.extraction.ocr.is_none() => {
                config.extraction.ocr = ExtractionConfig::default().ocr;
            }
            _ => {}
        }
    }

    /// The models folder saved for `data_dir`, if one was chosen.
    pub fn models_dir(data_dir: &Path) -> Option<PathBuf> {
        Self::read(data_dir).models_dir.map(PathBuf::from)
    }
}
