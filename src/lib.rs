//! Quarry's engine: offline question answering over a person's own documents.
//!
//! The pipeline is a row of stages that talk through plain types, wired in one place
//! ([`engine::Engine`]):
//! [`ingest`] finds files and extracts text with page spans ([`ingest::Extracted`]),
//! [`chunk`] cuts it into token-sized [`chunk::Chunk`]s,
//! and [`index`] keeps the LanceDB tables and the tantivy index in step ([`index::Store`]).
//! Results come back as the plain types of [`api`] ([`api::SearchHit`], [`api::DocumentInfo`]).
//!
//! ```
//! # tokio::runtime::Runtime::new().unwrap().block_on(async {
//! use quarry::{CancelToken, Engine, EngineConfig, SearchMode};
//! let docs = tempfile::tempdir().unwrap();
//! std::fs::write(docs.path().join("lease.md"), "# Lease\n\nThe notice period is three months.").unwrap();
//! std::fs::write(docs.path().join("garden.txt"), "Roses need sun and water.").unwrap();
//! let data = tempfile::tempdir().unwrap();
//! let config = EngineConfig { data_dir: data.path().into(), ..EngineConfig::default() };
//! let engine = Engine::open_for_write(config).await.unwrap();
//! let report = engine.index(&[docs.path().into()], &mut |_| {}, &CancelToken::new()).await.unwrap();
//! assert_eq!(report.added, 2);
//! let hits = engine.search("notice period", SearchMode::Text, 5).await.unwrap();
//! assert!(hits[0].doc_path.ends_with("lease.md"));
//! # });
//! ```

// No unsafe code in the engine but one FFI call in `allocator` (which allows it for itself);
// the SIMD kernels live in crates/quant-kernels.
#![deny(unsafe_code)]
#![warn(missing_docs)]

pub mod allocator;
pub mod answer;
pub mod api;
pub mod bench;
pub mod chunk;
pub mod config;
pub mod conversation;
pub mod embed;
pub mod engine;
pub mod error;
pub mod eval;
pub mod generate;
pub mod ids;
pub mod index;
pub mod ingest;
pub mod language;
pub mod models;
pub mod progress;
pub mod retrieve;
pub mod watch;

pub use api::{
    Answer, AnswerMode, AskOptions, Citation, DocumentInfo, DocumentState, FileKind, IndexReport,
    LibraryStatus, SearchHit, SearchMode,
};
pub use config::{AnswerConfig, ChunkingConfig, EngineConfig, ExtractionConfig};
pub use engine::{Engine, EngineBuilder, IndexJob, SourceWatch};
pub use error::{Error, Result};
pub use progress::{CancelToken, IngestEvent, ProgressSink};
