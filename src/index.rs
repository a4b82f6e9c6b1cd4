//! Index stage: the library on disk. [`Store`] keeps the LanceDB tables (the source of truth)
//! and the tantivy index in step with the pending→indexed protocol of DESIGN.md §3, so a
//! process killed at any moment leaves a library that opens, tells the truth and finishes later.

pub mod analysis;
pub mod fulltext;
pub mod meta;
pub mod remote;
pub mod schema;
pub mod tables;

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use tracing::{info, warn};

pub use self::analysis::TextLanguage;
use self::fulltext::{FullText, TextEntry};
use self::meta::{EmbedderMeta, LibraryMeta, WriterLock};
use self::remote::{RemoteFiles, WriterLease};
use self::schema::{ChunkRow, DocumentRow};
use self::tables::{Tables, in_filter};
use crate::api::{DocumentState, SearchHit};
use crate::config::RemoteLibrary;
use crate::error::{Error, Result};

/// Errors of the index stage (LanceDB, tantivy, library metadata).
#[derive(Debug, thiserror::Error)]
pub enum IndexError {
    /// LanceDB failed.
    #[error("vector store: {0}")]
    Lance(#[from] lancedb::Error),
    /// Arrow conversion failed.
    #[error("arrow: {0}")]
    Arrow(#[from] arrow_schema::ArrowError),
    /// tantivy failed.
    #[error("full-text index: {0}")]
    Tantivy(#[from] tantivy::TantivyError),
    /// The stored data does not have the expected shape.
    #[error("corrupt library: {0}")]
    Corrupt(String),
    /// Object storage refused or failed a request (the library's address, what, why).
    #[error("object storage: {0}")]
    Remote(String),
}

impl From<IndexError> for Error {
    fn from(err: IndexError) -> Self {
        Error::internal("index", err)
    }
}

/// From this many chunks on, vector search uses an IVF-HNSW index instead of a full scan:
/// a scan of 50k 384-dimension vectors already takes about as long as the rest of a query.
pub const ANN_THRESHOLD: usize = 50_000;

/// A document ready to be committed: its final row and its chunks.
#[derive(Debug, Clone)]
pub struct PreparedDocument {
    /// The row as it will read once committed.
    pub row: DocumentRow,
    /// Its chunks (empty for failed documents).
    pub chunks: Vec<ChunkRow>,
    /// The words OCR read, with their boxes, for the pages it read.
    pub ocr_words: Vec<crate::api::OcrPage>,
}

/// The library: LanceDB tables, tantivy index and `library.json` in one data folder, or, for
/// a library on object storage, the tables, `library.json` and OCR words there and this
/// machine's text index in the data folder.
#[derive(Debug)]
pub struct Store {
    dir: PathBuf,
    tables: Tables,
    fulltext: FullText,
    meta: Mutex<LibraryMeta>,
    lock: Option<WriterLock>,
    remote: Option<Remote>,
}

/// What a library on object storage adds: its files there and, for a writer, the lease.
#[derive(Debug)]
struct Remote {
    files: RemoteFiles,
    lease: Option<WriterLease>,
}

/// Where the text index of a library on object storage says it was built from: the table
/// versions it reflects (in the data folder, beside `text/`).
const TEXT_SYNCED: &str = "text-synced.json";

/// The contents of [`TEXT_SYNCED`].
#[derive(Debug, PartialEq, serde::Serialize, serde::Deserialize)]
struct TextSynced {
    library: String,
    documents: u64,
    chunks: u64,
}

impl Store {
    /// Opens the library in `dir` (or, with `remote`, the library on object storage with
    /// `dir` as this machine's folder for it) for reading, and creates it when missing. A new
    /// library takes `embedder` as its vector model; an existing one must have been built with it.
    pub async fn open(
        dir: &Path,
        remote: Option<&RemoteLibrary>,
        embedder: Option<EmbedderMeta>,
    ) -> Result<Self> {
        let files = match remote {
            Some(library) => Some(RemoteFiles::open(library).await?),
            None => None,
        };
        let shared = remote.zip(files.as_ref());
        let store = Self::open_unchecked(dir, shared, embedder.clone(), remote.is_none()).await?;
        let built_with = store.meta().embedder;
        // A reader without a model may still search by text; another model may not read.
        if embedder.is_some() && built_with != embedder {
            return Err(embedder_mismatch(&store.location(), &built_with, &embedder));
        }
        // A text index out of step with the tables (dropped for an older schema, say, or
        // behind another machine's writes) is rebuilt here when no local process writes to
        // this folder; a writer rebuilds it when it opens.
        if !store.text_in_step().await?
            && let Ok(lock) = WriterLock::acquire(dir)
        {
            let mut store = store;
            store.lock = Some(lock);
            warn!(target: "engine::index", "text index out of step; rebuilding");
            store.rebuild_text_index().await?;
            store.lock = None;
            return Ok(store);
        }
        Ok(store)
    }

    /// Opens (or creates) the library without comparing its embedder with `embedder`.
    /// `library`: a library on object storage, with its files already reached.
    async fn open_unchecked(
        dir: &Path,
        library: Option<(&RemoteLibrary, &RemoteFiles)>,
        embedder: Option<EmbedderMeta>,
        create: bool,
    ) -> Result<Self> {
        let (remote, stored_meta) = match library {
            Some((library, files)) => {
                let files = files.clone();
                let origin = format!("{}/library.json", library.uri);
                let meta = match files.read("library.json").await? {
                    Some(bytes) => Some(LibraryMeta::parse(&bytes, &origin, &library.uri)?),
                    // Only a writer, holding the lease, creates a shared library.
                    None if !create => {
                        return Err(Error::user(format!(
                            "no library at {} yet: `quarry --data-dir {} index FOLDER` creates it",
                            library.uri, library.uri
                        )));
                    }
                    None => None,
                };
                (Some(Remote { files, lease: None }), meta)
            }
            None => {
                let exists = dir.join("library.json").exists();
                (None, exists.then(|| LibraryMeta::load_or_new(dir)).transpose()?)
            }
        };
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let is_new = stored_meta.is_none();
        let mut meta = stored_meta.unwrap_or_else(LibraryMeta::fresh);
        if is_new {
            meta.embedder = embedder;
        }
        let dims = meta.embedder.as_ref().map(|e| e.dimensions);
        let tables = match library.map(|(library, _)| library) {
            Some(library) => {
                let uri = format!("{}/lance", library.uri);
                Tables::open(&uri, remote::storage_options(library), dims)
                    .await
                    .map_err(|e| remote::remote_error(&library.uri, "tables", e))?
            }
            None => {
                let lance_dir = dir.join("lance");
                let uri = lance_dir.to_str().ok_or_else(|| {
                    Error::user(format!("data folder {} is not valid UTF-8", dir.display()))
                })?;
                Tables::open(uri, Default::default(), dims).await?
            }
        };
        let text_dir = dir.join("text");
        let fulltext = match FullText::open(&text_dir) {
            Ok(ft) => ft,
            Err(e) => {
                // The text index is derived data: a damaged one is rebuilt, never fatal.
                warn!(target: "engine::index", "text index unreadable ({e}); rebuilding");
                std::fs::remove_dir_all(&text_dir).map_err(|e| Error::io(&text_dir, e))?;
                FullText::open(&text_dir)?
            }
        };
        let store = Self {
            dir: dir.to_owned(),
            tables,
            fulltext,
            meta: Mutex::new(meta),
            lock: None,
            remote,
        };
        if is_new {
            store.save_meta().await?;
        } else if store.remote.is_some() {
            // This machine's copy, so the model choice can read it before the library opens.
            store.meta().save(dir)?;
        }
        Ok(store)
    }

    /// Opens the library for writing: takes the writer lock (and, on object storage, the
    /// writer lease), then repairs what an interrupted run left behind.
    pub async fn open_for_write(
        dir: &Path,
        remote: Option<&RemoteLibrary>,
        embedder: Option<EmbedderMeta>,
    ) -> Result<Self> {
        let files = match remote {
            Some(library) => Some(RemoteFiles::open(library).await?),
            None => None,
        };
        let shared = remote.zip(files.as_ref());
        let lease = match shared {
            Some((library, files)) => {
                Some(WriterLease::acquire(files, library.lease_seconds).await?)
            }
            None => None,
        };
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        let lock = WriterLock::acquire(dir)?;
        let mut store = Self::open_unchecked(dir, shared, embedder.clone(), true).await?;
        let built_with = store.meta().embedder;
        if built_with != embedder {
            if !store.tables.documents().await?.is_empty() {
                return Err(embedder_mismatch(&store.location(), &built_with, &embedder));
            }
            // An empty library (say, one `quarry status` created) simply starts over.
            store.tables.drop_all().await?;
            drop(store);
            let text = dir.join("text");
            if text.exists() {
                std::fs::remove_dir_all(&text).map_err(|e| Error::io(&text, e))?;
            }
            for file in ["library.json", TEXT_SYNCED] {
                let path = dir.join(file);
                if path.exists() {
                    std::fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
                }
            }
            if let Some(files) = &files {
                files.delete("library.json").await?;
            }
            store = Self::open_unchecked(dir, shared, embedder, true).await?;
        }
        store.lock = Some(lock);
        if let Some(remote) = store.remote.as_mut() {
            remote.lease = lease;
        }
        store.recover().await?;
        Ok(store)
    }

    /// The data folder (for a library on object storage: this machine's folder for it).
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Where the library lives, as the user named it: its folder or its `s3://` address.
    pub fn location(&self) -> String {
        match &self.remote {
            Some(remote) => remote.files.uri().to_owned(),
            None => self.dir.display().to_string(),
        }
    }

    /// A copy of `library.json`.
    pub fn meta(&self) -> LibraryMeta {
        self.meta.lock().map(|m| m.clone()).unwrap_or_else(|p| p.into_inner().clone())
    }

    /// Changes `library.json` and saves it.
    pub async fn update_meta(&self, change: impl FnOnce(&mut LibraryMeta)) -> Result<()> {
        if self.remote.is_some() {
            self.ensure_writer()?;
        }
        {
            let mut meta = self.meta.lock().unwrap_or_else(|p| p.into_inner());
            change(&mut meta);
        }
        self.save_meta().await
    }

    async fn save_meta(&self) -> Result<()> {
        let meta = self.meta();
        if let Some(remote) = &self.remote {
            remote.files.write("library.json", meta.to_json()?).await?;
        }
        meta.save(&self.dir)
    }

    /// Whether the text index reflects the tables: as many entries as chunks and, for a
    /// library on object storage, built from the table versions open now.
    async fn text_in_step(&self) -> Result<bool> {
        if self.fulltext.len() != self.tables.count_chunks().await? {
            return Ok(false);
        }
        if self.remote.is_none() {
            return Ok(true);
        }
        let synced = std::fs::read(self.dir.join(TEXT_SYNCED))
            .ok()
            .and_then(|bytes| serde_json::from_slice::<TextSynced>(&bytes).ok());
        Ok(synced == Some(self.text_synced().await?))
    }

    async fn text_synced(&self) -> Result<TextSynced> {
        let (documents, chunks) = self.tables.versions().await?;
        Ok(TextSynced { library: self.location(), documents, chunks })
    }

    /// Records that the text index reflects the tables as they are now (a library on object
    /// storage only; a local one compares counts).
    async fn mark_text_synced(&self) -> Result<()> {
        if self.remote.is_none() {
            return Ok(());
        }
        let path = self.dir.join(TEXT_SYNCED);
        let json = serde_json::to_vec(&self.text_synced().await?)
            .map_err(|e| Error::internal("encode text-synced.json", e))?;
        std::fs::write(&path, json).map_err(|e| Error::io(&path, e))
    }

    /// Whether this store may write: `Error::Busy` for a library on object storage that was
    /// opened read-only because another machine held the writer lease.
    /// Also refuses once a writer lost its lease.
    pub fn check_writable(&self) -> Result<()> {
        if let Some(remote) = &self.remote {
            if self.lock.is_none() {
                return Err(Error::Busy(format!(
                    "the library at {} is open read-only here (another Quarry process held the \
                     writer lease when it was opened); restart once it is done to add or remove \
                     documents",
                    remote.files.uri()
                )));
            }
            if let Some(lease) = &remote.lease {
                lease.check()?;
            }
        }
        Ok(())
    }

    fn ensure_writer(&self) -> Result<()> {
        self.check_writable()?;
        if self.lock.is_none() {
            return Err(Error::invariant("library opened read-only was asked to write"));
        }
        if let Some(remote) = &self.remote {
            match &remote.lease {
                Some(lease) => lease.check()?,
                None => {
                    return Err(Error::invariant(
                        "library on object storage written without the lease",
                    ));
                }
            }
        }
        Ok(())
    }

    /// Cleans up after an interrupted run: chunks of pending documents and orphan chunks are
    /// removed from both indexes, and a text index that disagrees with the tables is rebuilt.
    async fn recover(&self) -> Result<()> {
        let docs = self.tables.documents().await?;
        let pending: Vec<String> = docs
            .iter()
            .filter(|d| d.state == DocumentState::Pending)
            .map(|d| d.doc_id.clone())
            .collect();
        let with_chunks: HashSet<&str> = docs
            .iter()
            .filter(|d| d.state == DocumentState::Indexed)
            .map(|d| d.doc_id.as_str())
            .collect();
        let orphans: Vec<String> = self
            .tables
            .chunk_doc_ids()
            .await?
            .into_iter()
            .filter(|id| !with_chunks.contains(id.as_str()))
            .collect();
        let mut stale: Vec<String> = pending.clone();
        stale.extend(orphans);
        stale.sort();
        stale.dedup();
        if !stale.is_empty() {
            info!(target: "engine::index", n_pending = pending.len(), n_stale = stale.len(), "recovering interrupted run");
            self.tables.delete_chunks_of(&stale).await?;
            self.fulltext.replace(&stale, &[])?;
        }
        if !self.text_in_step().await? {
            let n_chunks = self.tables.count_chunks().await?;
            warn!(target: "engine::index", text = self.fulltext.len(), tables = n_chunks, "text index out of step; rebuilding");
            self.rebuild_text_index().await?;
        }
        Ok(())
    }

    /// Rebuilds the tantivy index from the `chunks` table. It is this machine's own (for a
    /// library on object storage too), so the local writer lock is all it needs.
    pub async fn rebuild_text_index(&self) -> Result<()> {
        if self.lock.is_none() {
            return Err(Error::invariant(
                "library opened read-only was asked to rebuild its text index",
            ));
        }
        let titles: HashMap<String, String> = self
            .tables
            .documents()
            .await?
            .into_iter()
            .map(|d| (d.doc_id.clone(), index_title(&d)))
            .collect();
        let mut batches: Vec<Vec<ChunkRow>> = Vec::new();
        self.tables
            .for_each_chunk(|rows| {
                batches.push(rows);
                Ok(())
            })
            .await?;
        // Windows need a chunk's neighbours, which may sit in another batch.
        let rows: Vec<&ChunkRow> = batches.iter().flatten().collect();
        let entries = text_entries(rows, |doc_id| titles.get(doc_id).map_or("", String::as_str));
        self.fulltext.rebuild(|add| {
            for part in entries.chunks(4096) {
                add(part)?;
            }
            Ok(())
        })?;
        self.mark_text_synced().await
    }

    /// Every document row.
    pub async fn documents(&self) -> Result<Vec<DocumentRow>> {
        Ok(self.tables.documents().await?)
    }

    /// Document rows whose path is `root` or lies under it.
    pub async fn documents_under(&self, root: &Path) -> Result<Vec<DocumentRow>> {
        let docs = self.tables.documents().await?;
        Ok(docs.into_iter().filter(|d| Path::new(&d.path).starts_with(root)).collect())
    }

    /// Commits a batch of documents with the pending→indexed protocol:
    /// 1. rows marked pending; 2. chunks replaced in LanceDB (one transaction);
    /// 3. chunks replaced in tantivy (one commit); 4. rows written with their final state.
    ///
    /// A crash between 1 and 4 leaves pending rows that [`Store::open_for_write`] cleans up.
    pub async fn commit(&self, batch: &[PreparedDocument]) -> Result<()> {
        self.ensure_writer()?;
        if batch.is_empty() {
            return Ok(());
        }
        let doc_ids: Vec<String> = batch.iter().map(|d| d.row.doc_id.clone()).collect();
        let known: HashSet<String> = self
            .tables
            .documents_where(Some(&in_filter("doc_id", &doc_ids)))
            .await?
            .into_iter()
            .map(|d| d.doc_id)
            .collect();
        // Rows are written complete but pending; only the state changes at the end.
        let pending =
            |d: &PreparedDocument| DocumentRow { state: DocumentState::Pending, ..d.row.clone() };
        let (old, new): (Vec<&PreparedDocument>, Vec<&PreparedDocument>) =
            batch.iter().partition(|d| known.contains(&d.row.doc_id));
        self.tables.upsert_documents(&old.iter().map(|d| pending(d)).collect::<Vec<_>>()).await?;
        self.tables.add_documents(&new.iter().map(|d| pending(d)).collect::<Vec<_>>()).await?;
        // New documents' chunks are appended (no scan of the table); documents that had
        // chunks get theirs replaced in one merge, so readers never see a mix.
        let new_chunks: Vec<ChunkRow> = new.iter().flat_map(|d| d.chunks.iter().cloned()).collect();
        self.ensure_writer()?; // A lease may run out during a long commit.
        self.tables.add_chunks(&new_chunks).await?;
        let old_ids: Vec<String> = old.iter().map(|d| d.row.doc_id.clone()).collect();
        let old_chunks: Vec<ChunkRow> = old.iter().flat_map(|d| d.chunks.iter().cloned()).collect();
        self.tables.replace_chunks(&old_ids, &old_chunks).await?;
        let titles: HashMap<&str, String> =
            batch.iter().map(|d| (d.row.doc_id.as_str(), index_title(&d.row))).collect();
        let entries =
            text_entries(batch.iter().flat_map(|d| d.chunks.iter()).collect(), |doc_id| {
                titles.get(doc_id).map_or("", String::as_str)
            });
        self.fulltext.replace(&doc_ids, &entries)?;
        let mut by_state: HashMap<DocumentState, Vec<String>> = HashMap::new();
        for doc in batch {
            by_state.entry(doc.row.state).or_default().push(doc.row.doc_id.clone());
        }
        self.ensure_writer()?;
        for (state, ids) in by_state {
            self.tables.set_state(&ids, state.as_str()).await?;
        }
        // Derived data beside the tables: written after the commit, like the text index. A
        // document new to the library has no old words to remove (on object storage that is
        // a request saved per document).
        for doc in batch {
            if doc.ocr_words.is_empty() && !known.contains(&doc.row.doc_id) {
                continue;
            }
            self.write_ocr_words(&doc.row.doc_id, &doc.ocr_words).await?;
        }
        self.mark_text_synced().await
    }

    /// Where the OCR word boxes of a document are kept: `ocr/<doc id>.json` in the data
    /// folder, or under the library's prefix on object storage.
    fn ocr_words_name(doc_id: &str) -> String {
        format!("ocr/{doc_id}.json")
    }

    async fn write_ocr_words(&self, doc_id: &str, pages: &[crate::api::OcrPage]) -> Result<()> {
        let name = Self::ocr_words_name(doc_id);
        if let Some(remote) = &self.remote {
            if pages.is_empty() {
                return remote.files.delete(&name).await;
            }
            let json =
                serde_json::to_vec(pages).map_err(|e| Error::internal("encode OCR words", e))?;
            return remote.files.write(&name, json).await;
        }
        let path = self.dir.join(&name);
        if pages.is_empty() {
            return match std::fs::remove_file(&path) {
                Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(&path, e)),
                _ => Ok(()),
            };
        }
        let json =
            serde_json::to_vec(pages).map_err(|e| Error::io(&path, std::io::Error::other(e)))?;
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
        std::fs::write(&path, json).map_err(|e| Error::io(&path, e))
    }

    /// The words OCR read on `page` of a document, with their boxes (none when the page was
    /// not read by OCR).
    pub async fn ocr_words(&self, doc_id: &str, page: u32) -> Result<Vec<crate::api::OcrWord>> {
        let name = Self::ocr_words_name(doc_id);
        let (bytes, origin) = match &self.remote {
            Some(remote) => {
                (remote.files.read(&name).await?, format!("{}/{name}", remote.files.uri()))
            }
            None => {
                let path = self.dir.join(&name);
                match std::fs::read(&path) {
                    Ok(bytes) => (Some(bytes), path.display().to_string()),
                    Err(e) if e.kind() == std::io::ErrorKind::NotFound => (None, String::new()),
                    Err(e) => return Err(Error::io(&path, e)),
                }
            }
        };
        let Some(bytes) = bytes else { return Ok(Vec::new()) };
        let pages: Vec<crate::api::OcrPage> = serde_json::from_slice(&bytes).map_err(|e| {
            Error::user(format!("{origin} is damaged ({e}); re-index the document"))
        })?;
        Ok(pages.into_iter().find(|p| p.page == page).map(|p| p.words).unwrap_or_default())
    }

    /// Updates rows whose file is unchanged but whose size or mtime moved (a `touch`).
    pub async fn refresh_rows(&self, rows: &[DocumentRow]) -> Result<()> {
        self.ensure_writer()?;
        self.tables.upsert_documents(rows).await?;
        self.mark_text_synced().await
    }

    /// Removes documents and their chunks from both indexes.
    pub async fn remove(&self, doc_ids: &[String]) -> Result<()> {
        self.ensure_writer()?;
        if doc_ids.is_empty() {
            return Ok(());
        }
        // Mark first, so an interruption leaves pending rows that recovery cleans.
        let rows = self.tables.documents_where(Some(&in_filter("doc_id", doc_ids))).await?;
        let pending: Vec<DocumentRow> =
            rows.into_iter().map(|r| DocumentRow { state: DocumentState::Pending, ..r }).collect();
        self.tables.upsert_documents(&pending).await?;
        self.tables.delete_chunks_of(doc_ids).await?;
        self.fulltext.replace(doc_ids, &[])?;
        self.tables.delete_documents(doc_ids).await?;
        // On object storage, one listing instead of a request per document without words.
        let with_words = match &self.remote {
            Some(remote) => Some(remote.files.names_under("ocr/").await?),
            None => None,
        };
        for doc_id in doc_ids {
            let name = Self::ocr_words_name(doc_id);
            if with_words.as_ref().is_none_or(|names| names.contains(&name)) {
                self.write_ocr_words(doc_id, &[]).await?;
            }
        }
        self.mark_text_synced().await
    }

    /// Compacts the tables after a large run, and builds the vector index once the library is
    /// large enough to need one.
    pub async fn optimize(&self) -> Result<()> {
        self.ensure_writer()?;
        if self.tables.ensure_vector_index(ANN_THRESHOLD).await? {
            info!(target: "engine::index", "built the approximate vector index");
        }
        self.tables.optimize().await?;
        self.mark_text_synced().await
    }

    /// BM25 search over chunk text, best first.
    pub async fn search_text(
        &self,
        query: &str,
        limit: usize,
        within: Option<&[String]>,
    ) -> Result<Vec<SearchHit>> {
        let scored = self.fulltext.search_within(query, limit, within)?;
        if scored.is_empty() {
            return Ok(Vec::new());
        }
        let ids: Vec<String> = scored.iter().map(|(id, _)| id.clone()).collect();
        let mut rows: HashMap<String, ChunkRow> = self
            .tables
            .chunks_by_id(&ids)
            .await?
            .into_iter()
            .map(|r| (r.chunk_id.clone(), r))
            .collect();
        let mut res = Vec::with_capacity(scored.len());
        for (id, score) in scored {
            // A chunk in the text index but not in the table means the two are out of step;
            // skip it rather than cite text that is not in the library.
            let Some(row) = rows.remove(&id) else {
                warn!(target: "engine::index", chunk = %id, "text hit without a chunk row");
                continue;
            };
            let mut hit = hit_of(row, score);
            hit.retrievers.push("text".into());
            res.push(hit);
        }
        Ok(res)
    }

    /// The chunk `chunk_id` as a search hit (score 0, no retriever), if the library has it.
    pub async fn chunk(&self, chunk_id: &str) -> Result<Option<SearchHit>> {
        let rows = self.tables.chunks_by_id(&[chunk_id.to_owned()]).await?;
        Ok(rows.into_iter().next().map(|row| hit_of(row, 0.0)))
    }

    /// The `limit` chunks nearest to `vector`, best first, scored by cosine similarity.
    pub async fn search_vector(
        &self,
        vector: &[f32],
        limit: usize,
        within: Option<&[String]>,
    ) -> Result<Vec<SearchHit>> {
        let rows = self.tables.nearest(vector, limit, within).await?;
        Ok(rows
            .into_iter()
            .map(|(row, distance)| {
                let mut hit = hit_of(row, 1.0 - distance);
                hit.retrievers.push("vector".into());
                hit
            })
            .collect())
    }

    /// The rows of the documents at `paths`.
    pub async fn documents_at(&self, paths: &[String]) -> Result<Vec<DocumentRow>> {
        if paths.is_empty() {
            return Ok(Vec::new());
        }
        Ok(self.tables.documents_where(Some(&in_filter("path", paths))).await?)
    }

    /// Every chunk of one document, in reading order.
    pub async fn chunks_of(&self, doc_id: &str) -> Result<Vec<ChunkRow>> {
        let filter = format!("doc_id = {}", tables::sql_string(doc_id));
        let mut rows = self.tables.chunks_where(&filter, None).await?;
        rows.sort_by_key(|r| r.ordinal);
        Ok(rows)
    }

    /// The distinct full-text index terms of `text` as text in `language` is analysed
    /// (lower-cased, stop words dropped, stemmed).
    pub fn analyze(&self, text: &str, language: TextLanguage) -> Vec<String> {
        self.fulltext.analyze(text, language)
    }

    /// BM25 inverse document frequency of each index term.
    pub fn idf(&self, terms: &[String]) -> Vec<f32> {
        self.fulltext.idf(terms)
    }

    /// Whether chunks carry vectors.
    pub fn has_vectors(&self) -> bool {
        self.meta().embedder.is_some()
    }

    /// Number of chunks in the tables and in the text index.
    pub async fn chunk_counts(&self) -> Result<(u64, u64)> {
        Ok((self.tables.count_chunks().await?, self.fulltext.len()))
    }
}

fn embedder_mismatch(
    library: &str,
    built: &Option<EmbedderMeta>,
    now: &Option<EmbedderMeta>,
) -> Error {
    let describe = |e: &Option<EmbedderMeta>| match e {
        Some(e) => format!("{} ({} dimensions)", e.id, e.dimensions),
        None => "no embedding model".to_owned(),
    };
    Error::user(format!(
        "the library in {} was built with {}, but {} is configured now; \
         re-index into a new library (another data folder, or another s3:// prefix), or install \
         the library's model",
        library,
        describe(built),
        describe(now)
    ))
}

fn hit_of(row: ChunkRow, score: f32) -> SearchHit {
    SearchHit {
        chunk_id: row.chunk_id,
        doc_path: row.doc_path,
        page: row.page_start,
        page_end: row.page_end,
        char_start: row.char_start,
        char_end: row.char_end,
        heading: row.heading,
        score,
        retrievers: Vec::new(),
        text: row.text,
        language: row.language,
    }
}

/// The title indexed with each chunk: the document's own title and its file name.
fn index_title(row: &DocumentRow) -> String {
    let name = Path::new(&row.path).file_stem().map(|s| s.to_string_lossy()).unwrap_or_default();
    match &row.title {
        Some(title) => format!("{title} {name}"),
        None => name.into_owned(),
    }
}

/// The text-index entries of `rows`, each with the text of its neighbours in its document.
fn text_entries<'a>(
    mut rows: Vec<&'a ChunkRow>,
    title_of: impl Fn(&str) -> &'a str,
) -> Vec<TextEntry<'a>> {
    rows.sort_by(|a, b| (&a.doc_id, a.ordinal).cmp(&(&b.doc_id, b.ordinal)));
    let neighbour = |i: Option<usize>, doc_id: &str| -> &'a str {
        match i.and_then(|i| rows.get(i)) {
            Some(row) if row.doc_id == doc_id => row.text.as_str(),
            _ => "",
        }
    };
    rows.iter()
        .enumerate()
        .map(|(i, row)| TextEntry {
            chunk_id: &row.chunk_id,
            doc_id: &row.doc_id,
            text: &row.text,
            title: title_of(&row.doc_id),
            before: neighbour(i.checked_sub(1), &row.doc_id),
            after: neighbour(Some(i + 1), &row.doc_id),
            language: &row.language,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn minilm() -> Option<EmbedderMeta> {
        Some(EmbedderMeta { id: "m/a".into(), dimensions: 4 })
    }

    fn other() -> Option<EmbedderMeta> {
        Some(EmbedderMeta { id: "m/b".into(), dimensions: 8 })
    }

    fn row(path: &str) -> PreparedDocument {
        PreparedDocument {
            ocr_words: Vec::new(),
            row: DocumentRow {
                doc_id: "d1".into(),
                path: path.into(),
                kind: crate::api::FileKind::Text,
                size: 1,
                mtime_ns: 1,
                sha256: "00".into(),
                state: DocumentState::Indexed,
                error: None,
                warnings: vec![],
                pages: 1,
                chunks: 1,
                extractor: "text".into(),
                title: None,
                indexed_at: None,
            },
            chunks: vec![ChunkRow {
                chunk_id: "c1".into(),
                doc_id: "d1".into(),
                doc_path: path.into(),
                ordinal: 0,
                text: "alpha beta".into(),
                page_start: 1,
                page_end: 1,
                char_start: 0,
                char_end: 10,
                heading: String::new(),
                language: String::new(),
                vector: Some(vec![1.0, 0.0, 0.0, 0.0]),
            }],
        }
    }

    #[test]
    fn text_entries_take_neighbours_from_the_same_document_in_order() {
        let chunk = |doc: &str, ordinal: u32, text: &str| ChunkRow {
            chunk_id: format!("{doc}-{ordinal}"),
            doc_id: doc.into(),
            ordinal,
            text: text.into(),
            ..row("/x/a.txt").chunks[0].clone()
        };
        // Out of order and interleaved, as a rebuild may read them.
        let rows =
            [chunk("b", 0, "b0"), chunk("a", 2, "a2"), chunk("a", 0, "a0"), chunk("a", 1, "a1")];
        let entries = text_entries(rows.iter().collect(), |doc| if doc == "a" { "A" } else { "B" });
        let seen: Vec<(&str, &str, &str, &str)> =
            entries.iter().map(|e| (e.chunk_id, e.before, e.after, e.title)).collect();
        assert_eq!(
            seen,
            [
                ("a-0", "", "a1", "A"),
                ("a-1", "a0", "a2", "A"),
                ("a-2", "a1", "", "A"),
                ("b-0", "", "", "B"),
            ]
        );
    }

    #[tokio::test]
    async fn a_reader_rebuilds_a_text_index_of_an_older_schema() {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open_for_write(dir.path(), None, minilm()).await.unwrap();
        store.commit(&[row("/x/a.txt")]).await.unwrap();
        drop(store);
        // An index of another schema is dropped on open, leaving the tables' chunks unindexed.
        let text_dir = dir.path().join("text");
        std::fs::remove_dir_all(&text_dir).unwrap();
        std::fs::create_dir(&text_dir).unwrap();
        let mut schema = tantivy::schema::Schema::builder();
        schema.add_text_field("text", tantivy::schema::TEXT);
        tantivy::Index::create_in_dir(&text_dir, schema.build()).unwrap();
        let reader = Store::open(dir.path(), None, minilm()).await.unwrap();
        let hits = reader.search_text("alpha", 5, None).await.unwrap();
        assert_eq!(hits.len(), 1, "{hits:?}");
        assert_eq!(hits[0].chunk_id, "c1");
    }

    #[tokio::test]
    async fn another_embedder_is_refused_and_an_empty_library_adopts_one() {
        let dir = tempfile::tempdir().unwrap();
        // An empty text-only library (say, from `quarry status`) takes the model on first write.
        drop(Store::open(dir.path(), None, None).await.unwrap());
        let store = Store::open_for_write(dir.path(), None, minilm()).await.unwrap();
        store.commit(&[row("/x/a.txt")]).await.unwrap();
        let hits = store.search_vector(&[1.0, 0.0, 0.0, 0.0], 5, None).await.unwrap();
        assert_eq!(
            (hits[0].chunk_id.as_str(), hits[0].retrievers.as_slice()),
            ("c1", &["vector".to_owned()][..])
        );
        assert!((hits[0].score - 1.0).abs() < 1e-5);
        drop(store);
        let err = Store::open_for_write(dir.path(), None, other()).await.unwrap_err();
        assert!(err.to_string().contains("built with m/a (4 dimensions)"), "{err}");
        let err = Store::open_for_write(dir.path(), None, None).await.unwrap_err();
        assert!(
            err.to_string().contains("no embedding model is configured now")
                || err.to_string().contains("but no embedding model"),
            "{err}"
        );
        // Reading without the model still allows text search.
        let reader = Store::open(dir.path(), None, None).await.unwrap();
        assert_eq!(reader.search_text("alpha", 5, None).await.unwrap().len(), 1);
    }
}
