//! Plain serialisable types shared by the CLI's JSON output and the UI: the contract of DESIGN.md §5.
//! They hold no third-party types, so they can cross any boundary.

use serde::{Deserialize, Serialize};

/// The kind of a source file, decided from its extension and magic bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
        }
    }

    /// Parses a name written by [`FileKind::as_str`].
    pub fn parse(name: &str) -> Option<Self> {
        Some(match name {
            "pdf" => FileKind::Pdf,
            "text" => FileKind::Text,
            "markdown" => FileKind::Markdown,
            "html" => FileKind::Html,
            "docx" => FileKind::Docx,
            _ => return None,
        })
    }
}

/// Where a document stands in the index (DESIGN.md §3).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    pub size: u64,
    /// Document title when the format has one (HTML `<title>`, DOCX core properties).
    pub title: Option<String>,
}

/// One file that could not be indexed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Failure {
    /// The file.
    pub path: String,
    /// Why, in words a user can act on.
    pub error: String,
}

/// What one `index` run did.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
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
    pub chunks: u64,
    /// Pages extracted in this run.
    pub pages: u64,
    /// Wall-clock seconds.
    pub seconds: f64,
    /// Each failed file with its reason.
    pub failures: Vec<Failure>,
}

/// How a search finds its hits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
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
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
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
    pub char_start: u64,
    /// End of the character span (exclusive).
    pub char_end: u64,
    /// Heading path for structured formats ("Intro > Scope"), empty otherwise.
    pub heading: String,
    /// Score: BM25 for text search, cosine similarity for vector search, the RRF sum for hybrid.
    pub score: f32,
    /// Which retrievers found it ("vector", "text").
    pub retrievers: Vec<String>,
    /// The chunk text.
    pub text: String,
}

/// The library at a glance (`quarry status`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LibraryStatus {
    /// The data directory.
    pub data_dir: String,
    /// Library format version.
    pub format_version: u32,
    /// Number of documents by state.
    pub documents: u64,
    /// Indexed documents.
    pub indexed: u64,
    /// Failed documents.
    pub failed: u64,
    /// Skipped documents.
    pub skipped: u64,
    /// Pending documents (interrupted runs).
    pub pending: u64,
    /// Chunks in the vector store.
    pub chunks: u64,
    /// Chunks in the full-text index (equal to `chunks` in a consistent library).
    pub text_index_chunks: u64,
    /// How chunks were sized.
    pub chunker: String,
    /// The embedding model of the vectors, if the library has vectors.
    pub embedder: Option<String>,
    /// Folders and files added to the library.
    pub sources: Vec<String>,
}
