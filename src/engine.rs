//! The engine facade: the one place that wires the stages together. Callers (the CLI, the
//! desktop shell, the HTTP server) open an [`Engine`] and call its methods; they never reach
//! into a stage.

mod answering;
mod conversations;
mod index_runs;
mod indexing;
mod model_pulls;
mod settings;

pub use answering::{AnswerTicket, Evidence};
pub use index_runs::{IndexJob, SourceWatch};

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use tracing::instrument;

use crate::api::{
    DocumentInfo, DocumentState, DocumentText, IndexReport, LibraryStatus, PageStart, SearchHit,
    SearchMode,
};
use crate::chunk::Chunker;
use crate::config::{EmbedderConfig, EngineConfig};
use crate::embed::Embedder;
use crate::embed::candle_bert::{CandleEmbedder, Prefixes, dimensions_of};
use crate::error::{Error, Result};
use crate::generate::Generator;
use crate::ids::DocumentId;
use crate::index::Store;
use crate::index::meta::EmbedderMeta;
use crate::index::schema::DocumentRow;
use crate::progress::{CancelToken, ProgressSink};

/// Largest document the viewer is sent whole.
pub const MAX_VIEWED_BYTES: u64 = 256 * 1024 * 1024;

/// Hybrid search fuses this many candidates from each retriever (at least `k`): deep enough
/// that a passage ranked moderately by both retrievers still surfaces.
const HYBRID_DEPTH: usize = 100;

/// An open library with the models and settings to index and search it.
#[derive(Debug)]
pub struct Engine {
    config: EngineConfig,
    store: Store,
    chunker: Arc<Chunker>,
    embedder: Option<EmbedderSlot>,
    /// Vectors of passage sentences, kept between questions (evidence scoring).
    sentence_vectors: Arc<crate::embed::sentence_cache::SentenceVectors>,
    /// Swapped whole when the user chooses another generator ([`Engine::use_generator`]); an
    /// answer already running keeps the slot it started with.
    generator: std::sync::RwLock<Arc<answering::GeneratorSlot>>,
    runs: index_runs::IndexRuns,
    pulls: model_pulls::ModelPulls,
    answers: answering::RunningAnswers,
    /// The library's saved conversations.
    threads: crate::conversation::ThreadStore,
    /// The settings the user can change while the engine runs (Settings view).
    live: std::sync::RwLock<settings::LiveSettings>,
    /// The runtime the engine was opened on: background runs are spawned there, also when
    /// started from a plain thread (the folder watch).
    runtime: tokio::runtime::Handle,
}

/// The embedding model: given when the engine was built, or loaded from its folder on first
/// use (listing documents should not pay for reading the weights).
enum EmbedderSlot {
    Given(Arc<dyn Embedder>),
    FromFolder {
        config: EmbedderConfig,
        dims: usize,
        model: OnceLock<std::result::Result<Arc<dyn Embedder>, Error>>,
    },
}

impl std::fmt::Debug for EmbedderSlot {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmbedderSlot").field("id", &self.meta().id).finish()
    }
}

impl EmbedderSlot {
    fn from_folder(config: &EmbedderConfig) -> Result<Self> {
        let dims = dimensions_of(&config.dir)?;
        Ok(Self::FromFolder { config: config.clone(), dims, model: OnceLock::new() })
    }

    fn meta(&self) -> EmbedderMeta {
        match self {
            Self::Given(model) => {
                EmbedderMeta { id: model.model_id().to_owned(), dimensions: model.dimensions() }
            }
            Self::FromFolder { config, dims, .. } => {
                EmbedderMeta { id: config.id.clone(), dimensions: *dims }
            }
        }
    }

    fn get(&self) -> Result<Arc<dyn Embedder>> {
        let (config, model) = match self {
            Self::Given(model) => return Ok(Arc::clone(model)),
            Self::FromFolder { config, model, .. } => (config, model),
        };
        let loaded = model.get_or_init(|| {
            let prefixes = Prefixes {
                query: config.query_prefix.clone(),
                passage: config.passage_prefix.clone(),
            };
            CandleEmbedder::load(&config.dir, &config.id, prefixes)
                .map(|m| Arc::new(m) as Arc<dyn Embedder>)
                .map_err(Error::from)
        });
        // A failed load is remembered; each caller gets the cause, its chain kept.
        loaded.as_ref().map(Arc::clone).map_err(Error::duplicate)
    }
}

/// Builds an [`Engine`]: settings, and optionally models already loaded (the embedder and
/// generator named in the settings are otherwise loaded from disk on first use). Tests inject
/// fakes this way; an app can share one loaded model between engines.
pub struct EngineBuilder {
    config: EngineConfig,
    embedder: Option<Arc<dyn Embedder>>,
    generator: Option<Box<dyn Generator>>,
}

impl std::fmt::Debug for EngineBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EngineBuilder").field("data_dir", &self.config.data_dir).finish()
    }
}

impl EngineBuilder {
    /// Uses `model` as the embedding model (instead of the one the settings name).
    pub fn embedder(mut self, model: Arc<dyn Embedder>) -> Self {
        self.embedder = Some(model);
        self
    }

    /// Uses `model` to write answers (instead of the one the settings name).
    pub fn generator(mut self, model: Box<dyn Generator>) -> Self {
        self.generator = Some(model);
        self
    }

    /// Opens the library for reading (search, listing, answers).
    pub async fn open(self) -> Result<Engine> {
        self.build(false).await
    }

    /// Opens the library for writing: takes the writer lock and repairs an interrupted run.
    pub async fn open_for_write(self) -> Result<Engine> {
        self.build(true).await
    }

    async fn build(self, write: bool) -> Result<Engine> {
        let Self { config, embedder, generator } = self;
        config.validate()?;
        let runtime = tokio::runtime::Handle::try_current()
            .map_err(|e| Error::internal("the engine needs a tokio runtime", e))?;
        let embedder = match embedder {
            Some(model) => Some(EmbedderSlot::Given(model)),
            None => config.embedder.as_ref().map(EmbedderSlot::from_folder).transpose()?,
        };
        let meta = embedder.as_ref().map(EmbedderSlot::meta);
        let store = if write {
            Store::open_for_write(&config.data_dir, config.remote.as_ref(), meta).await?
        } else {
            Store::open(&config.data_dir, config.remote.as_ref(), meta).await?
        };
        let chunker = Arc::new(make_chunker(&config)?);
        let generator = match generator {
            Some(model) => answering::GeneratorSlot::given(model)?,
            None => match &config.generator_server {
                Some(server) => answering::GeneratorSlot::server(server.clone()),
                None => answering::GeneratorSlot::from_file(config.generator.clone()),
            },
        };
        let generator = std::sync::RwLock::new(Arc::new(generator));
        let threads = crate::conversation::ThreadStore::new(&config.data_dir);
        let live = std::sync::RwLock::new(settings::LiveSettings::of(&config));
        Ok(Engine {
            config,
            store,
            chunker,
            embedder,
            sentence_vectors: Arc::new(crate::embed::sentence_cache::SentenceVectors::new(
                crate::embed::sentence_cache::DEFAULT_CAPACITY,
            )),
            generator,
            runs: Default::default(),
            pulls: Default::default(),
            answers: Default::default(),
            threads,
            live,
            runtime,
        })
    }
}

impl Engine {
    /// A builder for an engine with these settings (to inject models).
    pub fn builder(config: EngineConfig) -> EngineBuilder {
        EngineBuilder { config, embedder: None, generator: None }
    }

    /// Opens the library for reading (search, listing).
    pub async fn open(config: EngineConfig) -> Result<Self> {
        Self::builder(config).open().await
    }

    /// Opens the library for writing: takes the writer lock and repairs an interrupted run.
    pub async fn open_for_write(config: EngineConfig) -> Result<Self> {
        Self::builder(config).open_for_write().await
    }

    /// Opens the library for writing, like [`Engine::open_for_write`]; a library on object
    /// storage whose writer lease another machine holds is opened read-only instead (search
    /// and answers; adding documents is refused with the reason, see [`Engine::writable`]).
    /// For long-running edges (`quarry serve`).
    pub async fn open_for_write_or_read(config: EngineConfig) -> Result<Self> {
        let shared = config.remote.is_some();
        match Self::open_for_write(config.clone()).await {
            Err(Error::Busy(why)) if shared => {
                tracing::warn!(target: "engine::index", "{why}; opening the library read-only");
                Self::open(config).await
            }
            opened => opened,
        }
    }

    /// The loaded embedding model, if the library has one.
    pub fn embedder(&self) -> Result<Option<Arc<dyn Embedder>>> {
        self.embedder.as_ref().map(EmbedderSlot::get).transpose()
    }

    /// Whether this engine has an embedding model (vectors and hybrid search).
    pub fn has_embedder(&self) -> bool {
        self.embedder.is_some()
    }

    /// Whether the library's chunks carry vectors (it was built with an embedder).
    pub fn has_vectors(&self) -> bool {
        self.store.has_vectors()
    }

    /// Whether this engine has a generator (answers written by a model, not quoted).
    pub fn has_generator(&self) -> bool {
        self.generator_slot().is_some()
    }

    /// The generator slot answers start from.
    fn generator_slot(&self) -> Arc<answering::GeneratorSlot> {
        match self.generator.read() {
            Ok(slot) => Arc::clone(&slot),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Answers from now on are written by the model at `path` (loaded on the next answer), or
    /// quoted when `None`; the choice is saved for this library, so the next start uses it too.
    pub fn use_generator(&self, path: Option<PathBuf>) -> Result<()> {
        if let Some(path) = &path
            && !(path.is_file() || path.join("config.json").is_file())
        {
            return Err(Error::user(format!("{}: no such model file or folder", path.display())));
        }
        let mut choice = crate::models::ModelChoice::read(&self.config.data_dir);
        choice.generator = path.as_ref().map(|p| p.to_string_lossy().into_owned());
        choice.quotes_only = path.is_none();
        choice.save(&self.config.data_dir)?;
        let slot = Arc::new(answering::GeneratorSlot::from_file(path));
        match self.generator.write() {
            Ok(mut current) => *current = slot,
            Err(poisoned) => *poisoned.into_inner() = slot,
        }
        Ok(())
    }

    /// The path of the generator answers use now, when it is a file on disk.
    pub fn generator_path(&self) -> Option<PathBuf> {
        self.generator_slot().path().map(Path::to_path_buf)
    }

    /// What the UI's Settings view shows, as the engine runs now.
    pub fn app_settings(&self) -> crate::api::AppSettings {
        let mut settings = self
            .run_config()
            .app_settings(self.config.models_dir.as_deref().unwrap_or(Path::new("")));
        settings.models_dir_next_start =
            crate::config::LibrarySettings::read(&self.config.data_dir)
                .models_dir
                .filter(|dir| self.config.models_dir.as_deref() != Some(Path::new(dir)));
        settings.embedder = self.embedder.as_ref().map(|e| e.meta().id);
        let slot = self.generator_slot();
        settings.generator = match slot.server_config() {
            Some(server) => Some(server.describe()),
            None => self
                .generator_path()
                .and_then(|p| p.file_name().map(|n| n.to_string_lossy().into_owned())),
        };
        settings
    }

    /// The settings this engine runs with.
    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    /// Indexes `files`, documents already in the library, again with `passwords` for locked
    /// PDFs (for this run only). The files are not added as sources of their own.
    pub(crate) async fn reindex_locked(
        &self,
        files: &[PathBuf],
        passwords: crate::ingest::Passwords,
        sink: &mut dyn ProgressSink,
        cancel: &CancelToken,
    ) -> Result<IndexReport> {
        let files = files.iter().map(|p| canonical(p)).collect::<Result<Vec<_>>>()?;
        let names: Vec<String> = files.iter().map(|f| f.to_string_lossy().into_owned()).collect();
        let known = self.store.documents_at(&names).await?;
        if let Some(stranger) = names.iter().find(|n| !known.iter().any(|d| &d.path == *n)) {
            return Err(Error::user(format!("{stranger} is not a document of this library")));
        }
        let mut config = self.run_config();
        config.extraction.pdf_passwords = passwords;
        let embedder = self.embedder()?;
        indexing::run(&self.store, &self.chunker, embedder, &config, &files, sink, cancel).await
    }

    /// Adds files and folders to the library and indexes them incrementally: new files are
    /// added, changed ones replaced, unchanged ones skipped, vanished ones removed. With no
    /// paths, every source added before is re-scanned.
    #[instrument(skip_all, target = "engine::ingest", fields(n_paths = paths.len()))]
    pub async fn index(
        &self,
        paths: &[PathBuf],
        sink: &mut dyn ProgressSink,
        cancel: &CancelToken,
    ) -> Result<IndexReport> {
        let roots = if paths.is_empty() {
            let sources = self.store.meta().sources;
            if sources.is_empty() {
                return Err(Error::user(
                    "no folders in the library yet: name a file or folder to add",
                ));
            }
            sources
        } else {
            paths.iter().map(|p| canonical(p)).collect::<Result<Vec<_>>>()?
        };
        self.store
            .update_meta(|meta| {
                for root in &roots {
                    if !meta.sources.contains(root) {
                        meta.sources.push(root.clone());
                    }
                }
            })
            .await?;
        let embedder = self.embedder()?;
        let config = self.run_config();
        indexing::run(&self.store, &self.chunker, embedder, &config, &roots, sink, cancel).await
    }

    /// Removes files (or everything under folders) from the library; returns how many
    /// documents were removed.
    pub async fn remove(&self, paths: &[PathBuf]) -> Result<u32> {
        let mut doc_ids = Vec::new();
        let mut removed_sources = Vec::new();
        for path in paths {
            let abs = std::fs::canonicalize(path)
                .or_else(|_| std::path::absolute(path))
                .map_err(|e| Error::io(path, e))?;
            let docs = self.store.documents_under(&abs).await?;
            if docs.is_empty() {
                return Err(Error::user(format!("{}: not in the library", path.display())));
            }
            doc_ids.extend(docs.into_iter().map(|d| d.doc_id));
            removed_sources.push(abs);
        }
        self.store.remove(&doc_ids).await?;
        self.store
            .update_meta(|meta| {
                meta.sources.retain(|s| !removed_sources.iter().any(|r| s.starts_with(r)));
            })
            .await?;
        Ok(doc_ids.len() as u32)
    }

    /// The passage (chunk) `chunk_id`, as search hits and citations name it; `None` when the
    /// library has no such chunk (any more).
    pub async fn passage(&self, chunk_id: &str) -> Result<Option<SearchHit>> {
        self.store.chunk(chunk_id).await
    }

    /// Every document with its state, sorted by path.
    pub async fn documents(&self) -> Result<Vec<DocumentInfo>> {
        let rows = self.store.documents().await?;
        let holders: std::collections::HashSet<&str> =
            rows.iter().filter(|d| d.kind.holds_documents()).map(|d| d.path.as_str()).collect();
        let inside: Vec<Option<String>> = rows
            .iter()
            .map(|d| indexing::holder_of(&d.path, |p| holders.contains(p)).map(str::to_owned))
            .collect();
        let mut docs: Vec<DocumentInfo> = rows
            .into_iter()
            .zip(inside)
            .map(|(row, inside)| DocumentInfo { inside, ..document_info(row) })
            .collect();
        docs.sort_by(|a, b| a.path.cmp(&b.path));
        Ok(docs)
    }

    /// The indexed text of the document at `path` (an absolute path as listed by
    /// [`Engine::documents`]), rebuilt from its chunks so that hit and citation spans index it.
    pub async fn document_text(&self, path: &Path) -> Result<DocumentText> {
        let row = self.document_row(path).await?;
        let chunks = self.store.chunks_of(&row.doc_id).await?;
        let mut text = String::new();
        let mut cursor = 0u64;
        let mut page_starts: Vec<PageStart> = Vec::new();
        let mut ordered: Vec<_> = chunks.iter().collect();
        ordered.sort_by_key(|c| (c.char_start, c.char_end));
        for chunk in ordered {
            if page_starts.last().is_none_or(|p| p.page != chunk.page_start) {
                page_starts
                    .push(PageStart { page: chunk.page_start, char_start: chunk.char_start });
            }
            if chunk.char_start > cursor {
                let gap = (chunk.char_start - cursor) as usize;
                text.push('\n');
                text.extend(std::iter::repeat_n(' ', gap - 1));
                cursor = chunk.char_start;
            }
            let skip = (cursor - chunk.char_start) as usize;
            let before = text.len();
            text.extend(chunk.text.chars().skip(skip));
            cursor += text[before..].chars().count() as u64;
        }
        Ok(DocumentText { path: row.path, kind: row.kind, pages: row.pages, text, page_starts })
    }

    async fn document_row(&self, path: &Path) -> Result<DocumentRow> {
        // Rows keep the path as the text the library stores (Arrow strings).
        self.store
            .documents_at(&[path.to_string_lossy().into_owned()])
            .await?
            .into_iter()
            .next()
            .ok_or_else(|| Error::user(format!("{}: not in the library", path.display())))
    }

    /// The words OCR read on `page` of the document at `path`, with their boxes on the page
    /// (empty when that page had a text layer), so a viewer can highlight a quote on a scan.
    pub async fn ocr_words(&self, path: &Path, page: u32) -> Result<Vec<crate::api::OcrWord>> {
        let row = self.document_row(path).await?;
        self.store.ocr_words(&row.doc_id, page).await
    }

    /// The bytes and kind of the library document at `path`, for viewers that render the
    /// original (PDF). Only what was indexed is served: the document must be indexed, its file
    /// (links resolved) must still lie under one of the library's folders and have the size and
    /// time it had when indexed, and be at most [`MAX_VIEWED_BYTES`]. A document inside an
    /// archive is read from the archive, which must pass the same checks.
    pub async fn document_bytes(&self, path: &Path) -> Result<(crate::api::FileKind, Vec<u8>)> {
        use std::io::Read;
        let row = self.document_row(path).await?;
        let shown = Path::new(&row.path);
        if row.state != DocumentState::Indexed {
            return Err(Error::user(format!(
                "{}: not shown: it is {} in the library, not indexed",
                shown.display(),
                row.state.as_str()
            )));
        }
        let holder = self.holder_row(&row.path).await?;
        let file_row = holder.as_ref().unwrap_or(&row);
        let real = self.viewable_file(file_row)?;
        if let Some(holder) = &holder {
            let name = row.path[holder.path.len()..].trim_start_matches('/');
            if holder.kind != crate::api::FileKind::Archive {
                return Err(Error::user(format!(
                    "{}: not shown: a message of a mailbox is shown as its text",
                    shown.display()
                )));
            }
            let archive = std::fs::read(&real).map_err(|e| Error::io(&real, e))?;
            let bytes = crate::ingest::archive::read_member(&archive, name, MAX_VIEWED_BYTES)
                .map_err(|e| Error::user(format!("{}: not shown: {e}", shown.display())))?;
            return Ok((row.kind, bytes));
        }
        let mut file = std::fs::File::open(&real).map_err(|e| Error::io(&real, e))?;
        if file_row.size > MAX_VIEWED_BYTES {
            return Err(Error::user(format!(
                "{}: not shown: {} MiB is more than the viewer takes ({} MiB)",
                shown.display(),
                file_row.size >> 20,
                MAX_VIEWED_BYTES >> 20
            )));
        }
        let mut bytes = Vec::with_capacity(file_row.size as usize);
        file.by_ref()
            .take(MAX_VIEWED_BYTES)
            .read_to_end(&mut bytes)
            .map_err(|e| Error::io(&real, e))?;
        Ok((row.kind, bytes))
    }

    /// The archive or mailbox of the library that holds the document at `path`, if any.
    async fn holder_row(&self, path: &str) -> Result<Option<DocumentRow>> {
        let above: Vec<String> = Path::new(path)
            .ancestors()
            .skip(1)
            .filter_map(Path::to_str)
            .map(str::to_owned)
            .collect();
        let rows = self.store.documents_at(&above).await?;
        Ok(rows.into_iter().filter(|d| d.kind.holds_documents()).max_by_key(|d| d.path.len()))
    }

    /// The real path of the file of `row`, when it may be shown: still under one of the
    /// library's folders (links resolved), with the size and time it had when indexed.
    fn viewable_file(&self, row: &DocumentRow) -> Result<PathBuf> {
        let shown = Path::new(&row.path);
        let real = std::fs::canonicalize(shown).map_err(|e| Error::io(shown, e))?;
        let inside = self.store.meta().sources.iter().any(|source| {
            std::fs::canonicalize(source).is_ok_and(|source| real.starts_with(source))
        });
        if !inside {
            return Err(Error::user(format!(
                "{}: not shown: it now leads to {}, outside the library's folders",
                shown.display(),
                real.display()
            )));
        }
        let meta = std::fs::metadata(&real).map_err(|e| Error::io(&real, e))?;
        let mtime_ns = crate::ingest::walk::mtime_ns(&meta);
        if meta.len() != row.size || mtime_ns != row.mtime_ns {
            return Err(Error::user(format!(
                "{}: not shown: the file changed since it was indexed (re-index to see it)",
                shown.display()
            )));
        }
        Ok(real)
    }

    /// Whether this engine may add and remove documents (false for a library on object
    /// storage opened read-only because another machine was writing).
    pub fn writable(&self) -> bool {
        self.store.check_writable().is_ok()
    }

    /// The library at a glance.
    pub async fn status(&self) -> Result<LibraryStatus> {
        let docs = self.store.documents().await?;
        let count = |state| docs.iter().filter(|d| d.state == state).count() as u64;
        let (chunks, text_chunks) = self.store.chunk_counts().await?;
        let meta = self.store.meta();
        Ok(LibraryStatus {
            data_dir: self.store.location(),
            format_version: meta.format_version,
            documents: docs.len() as u64,
            indexed: count(DocumentState::Indexed),
            failed: count(DocumentState::Failed),
            skipped: count(DocumentState::Skipped),
            pending: count(DocumentState::Pending),
            chunks,
            text_index_chunks: text_chunks,
            chunker: meta.chunker,
            embedder: meta.embedder.map(|e| e.id),
            sources: meta.sources.iter().map(|s| s.to_string_lossy().into_owned()).collect(),
        })
    }

    /// Searches the library, best hit first.
    #[instrument(skip_all, target = "engine::retrieve", fields(k))]
    pub async fn search(&self, query: &str, mode: SearchMode, k: usize) -> Result<Vec<SearchHit>> {
        let vector = match mode {
            SearchMode::Text => None,
            // search_with reports these cases with their own messages.
            _ if query.trim().is_empty() || !self.store.has_vectors() => None,
            _ => Some(self.query_vector(query)?),
        };
        self.search_with(query, vector.as_deref(), mode, k, None).await
    }

    /// The documents of the library inside `scope`, as document ids; `None` when the scope
    /// restricts nothing. A scope that matches no document is an error saying so.
    async fn resolve_scope(&self, scope: &crate::api::AskScope) -> Result<Option<Vec<String>>> {
        if scope.is_everything() {
            return Ok(None);
        }
        let roots: Vec<PathBuf> = scope
            .within
            .iter()
            .map(|p| std::fs::canonicalize(p).unwrap_or_else(|_| PathBuf::from(p)))
            .collect();
        let docs = self.store.documents().await?;
        // A document inside an archive or mailbox is also of its file's kind ("zip": whatever
        // the archives hold).
        let kinds: HashMap<&str, crate::api::FileKind> =
            docs.iter().map(|d| (d.path.as_str(), d.kind)).collect();
        let is_holder = |p: &str| kinds.get(p).is_some_and(|k| k.holds_documents());
        let of_kind = |d: &DocumentRow| {
            scope.kinds.contains(&d.kind)
                || indexing::holder_of(&d.path, is_holder)
                    .is_some_and(|h| scope.kinds.contains(&kinds[h]))
        };
        let ids: Vec<String> = docs
            .iter()
            .filter(|d| d.state == DocumentState::Indexed)
            .filter(|d| roots.is_empty() || roots.iter().any(|r| Path::new(&d.path).starts_with(r)))
            .filter(|d| scope.kinds.is_empty() || of_kind(d))
            .map(|d| d.doc_id.clone())
            .collect();
        if ids.is_empty() {
            let mut parts = scope.within.clone();
            parts.extend(scope.kinds.iter().map(|k| format!("{} files", k.as_str())));
            return Err(Error::user(format!(
                "no indexed document in the library matches the scope ({})",
                parts.join(", ")
            )));
        }
        Ok(Some(ids))
    }

    /// [`Engine::search`] with the query's embedding already computed (vector and hybrid modes),
    /// for callers that need the embedding themselves.
    async fn search_with(
        &self,
        query: &str,
        vector: Option<&[f32]>,
        mode: SearchMode,
        k: usize,
        within: Option<&[String]>,
    ) -> Result<Vec<SearchHit>> {
        if query.trim().is_empty() {
            return Err(Error::user("the query is empty"));
        }
        if mode != SearchMode::Text && !self.store.has_vectors() {
            return Err(Error::user(format!(
                "{} search needs vectors, and this library was built without an embedding model; \
                 use --mode text, or install the model and re-index into a new data folder",
                mode.as_str()
            )));
        }
        let vector =
            || vector.ok_or_else(|| Error::invariant("vector search without a query vector"));
        match mode {
            SearchMode::Text => self.store.search_text(query, k, within).await,
            SearchMode::Vector => self.store.search_vector(vector()?, k, within).await,
            SearchMode::Hybrid => {
                let depth = k.max(HYBRID_DEPTH);
                let vector_hits = self.store.search_vector(vector()?, depth, within).await?;
                let text_hits = self.store.search_text(query, depth, within).await?;
                let language = crate::language::TextLanguage::detect_confident(query);
                Ok(crate::retrieve::hybrid(vector_hits, text_hits, k, language))
            }
        }
    }

    /// The search mode that uses everything the library has: hybrid with vectors, else text.
    pub fn default_search_mode(&self) -> SearchMode {
        if self.store.has_vectors() { SearchMode::Hybrid } else { SearchMode::Text }
    }

    fn query_vector(&self, query: &str) -> Result<Vec<f32>> {
        let embedder = self.embedder()?.ok_or_else(|| {
            Error::user(
                "the embedding model of this library is not installed; see `quarry models list`",
            )
        })?;
        Ok(embedder.embed_query(query)?)
    }

    /// Rebuilds the full-text index from the chunks table (`quarry reindex --text`).
    pub async fn rebuild_text_index(&self) -> Result<()> {
        self.store.rebuild_text_index().await
    }

    /// The id a document at `path` has.
    pub fn document_id(path: &Path) -> DocumentId {
        DocumentId::for_path(path)
    }
}

fn make_chunker(config: &EngineConfig) -> Result<Chunker> {
    match &config.tokenizer {
        Some(path) => Chunker::with_tokenizer(path, &config.chunking),
        None => Ok(Chunker::with_characters(&config.chunking)),
    }
}

fn canonical(path: &Path) -> Result<PathBuf> {
    std::fs::canonicalize(path).map_err(|e| {
        if e.kind() == std::io::ErrorKind::NotFound {
            Error::user(format!("{}: no such file or folder", path.display()))
        } else {
            Error::io(path, e)
        }
    })
}

fn document_info(row: DocumentRow) -> DocumentInfo {
    DocumentInfo {
        path: row.path,
        kind: row.kind,
        state: row.state,
        error: row.error,
        warnings: row.warnings,
        pages: row.pages,
        chunks: row.chunks,
        sha256: row.sha256,
        indexed_at: row.indexed_at,
        size: row.size,
        title: row.title,
        inside: None,
    }
}
