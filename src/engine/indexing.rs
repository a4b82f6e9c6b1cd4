//! The add-documents pipeline: walk → plan (what changed) → extract in isolated workers →
//! chunk → commit in batches. Extraction runs on its own threads and feeds the committing
//! task through a bounded channel, so memory stays flat however large the folder is.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tracing::{debug, info_span, warn};

use crate::api::{DocumentState, Failure, FileKind, IndexReport};
use crate::chunk::{ChunkLimits, Chunker};
use crate::config::EngineConfig;
use crate::embed::Embedder;
use crate::error::{Error, ExtractError, Result};
use crate::ids::{ChunkId, DocumentId};
use crate::index::schema::{ChunkRow, DocumentRow};
use crate::index::{PreparedDocument, Store};
use crate::ingest::sniff::kind_from_extension;
use crate::ingest::walk::{FoundFile, walk};
use crate::ingest::worker::{WorkerProcess, extract_in_process};
use crate::ingest::{Extracted, Source};
use crate::progress::{CancelToken, IngestEvent, ProgressSink};

/// A batch is committed when it holds this many documents...
const BATCH_DOCS: usize = 64;
/// ...or this many chunks...
const BATCH_CHUNKS: usize = 4096;
/// ...or when its oldest document has waited this long, so progress is saved steadily
/// (each commit costs a few table versions, so not much more often than this).
const BATCH_AGE: Duration = Duration::from_secs(10);

/// One file to process, with what the library knew about it before.
struct Job {
    file: FoundFile,
    previous: Option<DocumentRow>,
    /// The documents it held (archive entries, mailbox messages), by path.
    members_before: HashSet<String>,
    force: bool,
}

/// What a worker thread made of one job.
enum Outcome {
    /// Content unchanged: only size/mtime moved.
    Unchanged(DocumentRow),
    /// Extracted (or failed) and ready to commit.
    Prepared {
        doc: PreparedDocument,
        existed: bool,
        warnings: Vec<String>,
        /// The documents inside it, each with whether the library had it before.
        members: Vec<(PreparedDocument, bool)>,
        /// Ids of documents it held before and holds no more.
        stale: Vec<String>,
    },
}

/// The path of the archive or mailbox in `documents` that holds the document at `path`, if any.
pub(super) fn holder_of(path: &str, is_holder: impl Fn(&str) -> bool) -> Option<&str> {
    Path::new(path).ancestors().skip(1).filter_map(Path::to_str).find(|p| is_holder(p))
}

pub(super) async fn run(
    store: &Store,
    chunker: &Arc<Chunker>,
    embedder: Option<Arc<dyn Embedder>>,
    config: &EngineConfig,
    roots: &[PathBuf],
    sink: &mut dyn ProgressSink,
    cancel: &CancelToken,
) -> Result<IndexReport> {
    let started = Instant::now();
    let mut report = IndexReport::default();

    let existing: HashMap<String, DocumentRow> =
        store.documents().await?.into_iter().map(|d| (d.path.clone(), d)).collect();
    let rechunk = store.meta().chunker != chunker.description();
    // Documents inside archives and mailboxes come and go with the file that holds them.
    let is_holder = |p: &str| existing.get(p).is_some_and(|d| d.kind.holds_documents());
    let mut members_of: HashMap<&str, Vec<&DocumentRow>> = HashMap::new();
    for row in existing.values() {
        if let Some(holder) = holder_of(&row.path, is_holder) {
            members_of.entry(holder).or_default().push(row);
        }
    }
    let is_member = |p: &str| holder_of(p, is_holder).is_some();

    let mut jobs = Vec::new();
    let mut seen: HashSet<String> = HashSet::new();
    // A source folder that is not here (an unplugged drive, an unmounted share, or another
    // machine's folder in a library on shared storage) keeps its documents: only files missing
    // from a folder that is here count as deleted. A source that was one file and is gone is
    // removed as before.
    let was_folder = |root: &Path| {
        existing
            .keys()
            .any(|p| Path::new(p).starts_with(root) && Path::new(p) != root && !is_member(p))
    };
    let mut absent: Vec<&PathBuf> = Vec::new();
    for root in roots {
        if !root.exists() && was_folder(root) {
            warn!(target: "engine::ingest", root = %root.display(), "source not found; its documents are kept");
            report.passed_over.push(Failure {
                path: root.to_string_lossy().into_owned(),
                error: "not found on this machine: the documents indexed from it are kept \
                        (quarry remove takes them out)"
                    .into(),
            });
            absent.push(root);
            continue;
        }
        let _span = info_span!(target: "engine::ingest", "walk", root = %root.display()).entered();
        let (files, problems) = walk(root);
        for problem in problems {
            warn!(target: "engine::ingest", path = ?problem.path, "{}", problem.message);
            report.passed_over.push(Failure {
                path: problem
                    .path
                    .map(|p| p.to_string_lossy().into_owned())
                    .unwrap_or_else(|| root.to_string_lossy().into_owned()),
                error: problem.message,
            });
        }
        for file in files {
            let key = file.path.to_string_lossy().into_owned();
            if !seen.insert(key.clone()) {
                continue;
            }
            let previous = existing.get(&key).cloned();
            let settled = previous.as_ref().is_some_and(|p| {
                matches!(
                    p.state,
                    DocumentState::Indexed | DocumentState::Failed | DocumentState::Skipped
                )
            });
            let same_stat = previous
                .as_ref()
                .is_some_and(|p| p.size == file.size && p.mtime_ns == file.mtime_ns);
            let same_kind = previous.as_ref().is_some_and(|p| Ok(p.kind) == file.kind);
            // A file that failed for want of a password is tried again when passwords are given.
            let locked = previous.as_ref().is_some_and(|p| {
                p.state == DocumentState::Failed
                    && p.error.as_deref().is_some_and(|e| e.starts_with("encrypted"))
            });
            let retry = locked && !config.extraction.pdf_passwords.0.is_empty();
            // An archive or mailbox indexed as one document, before its entries and messages
            // became documents of their own, is read again.
            let one_document =
                previous.as_ref().is_some_and(|p| p.kind.holds_documents() && p.chunks > 0);
            if settled && same_stat && same_kind && !rechunk && !retry && !one_document {
                report.unchanged += 1;
                continue;
            }
            let members_before = members_of
                .get(key.as_str())
                .map(|rows| rows.iter().map(|r| r.path.clone()).collect())
                .unwrap_or_default();
            // Size or mtime moved: the worker hashes the file, and the content hash decides
            // there (a `touch` changes nothing); hashing once, off this task.
            let force = rechunk || retry || one_document;
            jobs.push(Job { file, previous, members_before, force });
        }
    }
    let vanished: Vec<String> = existing
        .values()
        .filter(|d| !seen.contains(&d.path) && !is_member(&d.path))
        .filter(|d| roots.iter().any(|r| Path::new(&d.path).starts_with(r)))
        .filter(|d| !absent.iter().any(|r| Path::new(&d.path).starts_with(r)))
        .flat_map(|d| {
            let members = members_of.get(d.path.as_str()).into_iter().flatten();
            std::iter::once(d.doc_id.clone()).chain(members.map(|m| m.doc_id.clone()))
        })
        .collect();
    let total = jobs.len() as u64;
    sink.event(IngestEvent::Planned {
        total,
        unchanged: report.unchanged as u64,
        removed: vanished.len() as u64,
    });

    let written =
        process(store, chunker, embedder, config, jobs, &mut report, sink, cancel).await?;

    if !vanished.is_empty() && !cancel.is_cancelled() {
        store.remove(&vanished).await?;
        report.removed = vanished.len() as u32;
    }
    store.update_meta(|meta| meta.chunker = chunker.description().to_owned()).await?;
    if written > 0 || report.removed > 0 {
        store.optimize().await?;
    }
    report.seconds = started.elapsed().as_secs_f64();
    sink.event(IngestEvent::Finished { report: report.clone() });
    if cancel.is_cancelled() {
        return Err(Error::Cancelled);
    }
    Ok(report)
}

/// Runs the jobs through the extraction threads and commits the results in batches.
/// Returns how many documents were written.
#[allow(clippy::too_many_arguments)] // One call site; a struct would only rename the list.
async fn process(
    store: &Store,
    chunker: &Arc<Chunker>,
    embedder: Option<Arc<dyn Embedder>>,
    config: &EngineConfig,
    jobs: Vec<Job>,
    report: &mut IndexReport,
    sink: &mut dyn ProgressSink,
    cancel: &CancelToken,
) -> Result<u64> {
    let total = jobs.len() as u64;
    if total == 0 {
        return Ok(0);
    }
    let n_threads = config.extraction.workers.min(jobs.len()).max(1);
    let queue = Arc::new(Mutex::new(jobs.into_iter()));
    let (tx, mut rx) = tokio::sync::mpsc::channel::<Outcome>(n_threads * 2);
    let (extracted_tx, extracted_rx) = std::sync::mpsc::sync_channel::<Outcome>(n_threads * 4);
    // The embedding thread: fed by the extraction threads, so the model never waits for one
    // slow PDF, and batching chunks of several small documents into one forward pass.
    std::thread::spawn(move || embed_stage(embedder.as_deref(), &extracted_rx, &tx));
    for _ in 0..n_threads {
        let queue = Arc::clone(&queue);
        let tx = extracted_tx.clone();
        let cancel = cancel.clone();
        let chunker = Arc::clone(chunker);
        let config = config.clone();
        // Plain threads: extraction blocks on worker pipes and chunking is CPU-bound. They stop
        // when the queue is empty, on cancel, or when the committing side goes away.
        std::thread::spawn(move || {
            let mut extractor = Extractor::new(&config);
            loop {
                if cancel.is_cancelled() {
                    break;
                }
                let job = match queue.lock() {
                    Ok(mut q) => q.next(),
                    Err(_) => None,
                };
                let Some(job) = job else { break };
                let outcome = prepare(job, &mut extractor, &chunker, &config);
                if tx.send(outcome).is_err() {
                    break;
                }
            }
        });
    }
    drop(extracted_tx);

    let mut done = 0u64;
    let mut written = 0u64;
    let mut batch: Vec<PreparedDocument> = Vec::new();
    // Files in the batch (an archive's entries are documents of the batch too), and the
    // documents their files no longer hold.
    let mut batch_files = 0u64;
    let mut stale: Vec<String> = Vec::new();
    let mut batch_chunks = 0usize;
    let mut oldest: Option<Instant> = None;
    let mut pending_events = Vec::new();
    // Files whose size or mtime moved but whose content did not: their rows are refreshed in
    // batches too (a `touch` of a whole folder must not cost a table write per file).
    let mut touched: Vec<DocumentRow> = Vec::new();
    loop {
        let wait = oldest.map_or(BATCH_AGE, |t| BATCH_AGE.saturating_sub(t.elapsed()));
        let next = tokio::time::timeout(wait, rx.recv()).await;
        let finished = matches!(next, Ok(None));
        if let Ok(Some(outcome)) = next {
            match outcome {
                Outcome::Unchanged(row) => {
                    report.unchanged += 1;
                    done += 1;
                    touched.push(row);
                }
                Outcome::Prepared { doc, existed, warnings, members, stale: gone } => {
                    // A file that holds documents counts as the documents it holds.
                    if members.is_empty() || doc.row.state != DocumentState::Indexed {
                        tally(report, &doc, existed);
                    }
                    for (member, existed) in &members {
                        tally(report, member, *existed);
                    }
                    pending_events.push(file_done(&doc, &members, warnings));
                    batch_chunks += doc.chunks.len();
                    batch_chunks += members.iter().map(|(m, _)| m.chunks.len()).sum::<usize>();
                    oldest.get_or_insert_with(Instant::now);
                    batch_files += 1;
                    stale.extend(gone);
                    batch.push(doc);
                    batch.extend(members.into_iter().map(|(m, _)| m));
                }
            }
        }
        let full = batch.len() >= BATCH_DOCS || batch_chunks >= BATCH_CHUNKS;
        let aged = oldest.is_some_and(|t| t.elapsed() >= BATCH_AGE);
        if !batch.is_empty() && (full || aged || finished) {
            // Removed before the commit: if the run stops in between, the file's row still
            // has its old size and time, and the next run reads it again.
            if !stale.is_empty() {
                store.remove(&stale).await?;
                stale.clear();
            }
            store.commit(&batch).await?;
            written += batch.len() as u64;
            done += batch_files;
            batch_files = 0;
            for event in pending_events.drain(..) {
                sink.event(event);
            }
            sink.event(IngestEvent::Committed { done, total });
            batch.clear();
            batch_chunks = 0;
            oldest = None;
        }
        if !touched.is_empty() && (touched.len() >= BATCH_DOCS || finished) {
            store.refresh_rows(&touched).await?;
            touched.clear();
        }
        if finished {
            return Ok(written);
        }
    }
}

/// Chunks embedded together; the embedder sorts them by length and runs its own batches.
const EMBED_BATCH: usize = 64;

/// Receives prepared documents, embeds their chunks in batches, and passes them on.
fn embed_stage(
    embedder: Option<&dyn Embedder>,
    input: &std::sync::mpsc::Receiver<Outcome>,
    output: &tokio::sync::mpsc::Sender<Outcome>,
) {
    let n_chunks = |o: &Outcome| match o {
        Outcome::Prepared { doc, members, .. } => {
            doc.chunks.len() + members.iter().map(|(m, _)| m.chunks.len()).sum::<usize>()
        }
        Outcome::Unchanged(_) => 0,
    };
    while let Ok(first) = input.recv() {
        let mut pending_chunks = n_chunks(&first);
        let mut pending = vec![first];
        while pending_chunks < EMBED_BATCH {
            match input.try_recv() {
                Ok(next) => {
                    pending_chunks += n_chunks(&next);
                    pending.push(next);
                }
                Err(_) => break,
            }
        }
        if let Some(embedder) = embedder {
            embed_outcomes(embedder, &mut pending);
        }
        for outcome in pending {
            if output.blocking_send(outcome).is_err() {
                return;
            }
        }
    }
}

/// Gives every chunk of `outcomes` its vector; documents whose chunks cannot be embedded fail.
fn embed_outcomes(embedder: &dyn Embedder, outcomes: &mut [Outcome]) {
    let docs: Vec<&mut PreparedDocument> = outcomes
        .iter_mut()
        .flat_map(|o| match o {
            Outcome::Prepared { doc, members, .. } => {
                let members = members.iter_mut().map(|(m, _)| m);
                std::iter::once(doc).chain(members).collect()
            }
            Outcome::Unchanged(_) => Vec::new(),
        })
        .filter(|doc| !doc.chunks.is_empty())
        .collect();
    if docs.is_empty() {
        return;
    }
    let texts: Vec<&str> =
        docs.iter().flat_map(|d| d.chunks.iter().map(|c| c.text.as_str())).collect();
    let _span = info_span!(target: "engine::embed", "embed", n_chunks = texts.len()).entered();
    match embedder.embed_documents(&texts) {
        Ok(vectors) => {
            let mut vectors = vectors.into_iter();
            for doc in docs {
                for chunk in &mut doc.chunks {
                    chunk.vector = vectors.next();
                }
            }
        }
        Err(e) => {
            warn!(target: "engine::embed", "embedding failed: {e}");
            for doc in docs {
                doc.chunks.clear();
                doc.row.chunks = 0;
                doc.row.state = DocumentState::Failed;
                doc.row.error = Some(format!("embedding failed: {e}"));
            }
        }
    }
}

fn tally(report: &mut IndexReport, doc: &PreparedDocument, existed: bool) {
    match doc.row.state {
        DocumentState::Indexed => {
            if existed {
                report.updated += 1;
            } else {
                report.added += 1;
            }
            report.chunks += doc.chunks.len() as u64;
            report.pages += u64::from(doc.row.pages);
        }
        DocumentState::Failed | DocumentState::Skipped | DocumentState::Pending => {
            report.failed += 1;
            report.failures.push(Failure {
                path: doc.row.path.clone(),
                error: doc.row.error.clone().unwrap_or_default(),
            });
        }
    }
}

/// The event for one file; for an archive or mailbox, its documents' chunks, pages, failures
/// and warnings are counted and named in it.
fn file_done(
    doc: &PreparedDocument,
    members: &[(PreparedDocument, bool)],
    mut warnings: Vec<String>,
) -> IngestEvent {
    let mut pages = doc.row.pages;
    let mut chunks = doc.chunks.len() as u32;
    for (member, _) in members {
        let name = member.row.path.strip_prefix(&doc.row.path).unwrap_or(&member.row.path);
        let name = name.trim_start_matches('/');
        pages += member.row.pages;
        chunks += member.chunks.len() as u32;
        if let Some(error) = &member.row.error {
            warnings.push(format!("{name}: {error}"));
        }
        warnings.extend(member.row.warnings.iter().map(|w| format!("{name}: {w}")));
    }
    if !members.is_empty() {
        pages -= doc.row.pages;
    }
    IngestEvent::FileDone {
        path: doc.row.path.clone(),
        state: doc.row.state,
        pages,
        chunks,
        error: doc.row.error.clone(),
        warnings,
    }
}

/// Extraction for one thread: an isolated worker process, or in-process for tests.
enum Extractor {
    Isolated(WorkerProcess),
    InProcess,
}

impl Extractor {
    fn new(config: &EngineConfig) -> Self {
        match &config.extraction.worker_command {
            Some(command) => Extractor::Isolated(WorkerProcess::new(
                command.clone(),
                config.extraction.per_file_timeout(),
                config.extraction.worker_memory_mb,
            )),
            None => Extractor::InProcess,
        }
    }

    fn extract(&mut self, source: &Source) -> std::result::Result<Extracted, ExtractError> {
        match self {
            Extractor::Isolated(worker) => worker.extract(source),
            Extractor::InProcess => extract_in_process(source),
        }
    }
}

/// Hashes, extracts and chunks one file on a worker thread.
fn prepare(
    job: Job,
    extractor: &mut Extractor,
    chunker: &Chunker,
    config: &EngineConfig,
) -> Outcome {
    let path = job.file.path.to_string_lossy().into_owned();
    let _span = info_span!(target: "engine::ingest", "document", path = %path).entered();
    let doc_id = DocumentId::for_path(&job.file.path);
    let existed = job.previous.is_some();
    let mut row = DocumentRow {
        doc_id: doc_id.0.clone(),
        path,
        kind: job
            .file
            .kind
            .clone()
            .unwrap_or_else(|_| kind_from_extension(&job.file.path).unwrap_or(FileKind::Text)),
        size: job.file.size,
        mtime_ns: job.file.mtime_ns,
        sha256: String::new(),
        state: DocumentState::Failed,
        error: None,
        warnings: Vec::new(),
        pages: 0,
        chunks: 0,
        extractor: String::new(),
        title: None,
        indexed_at: Some(chrono::Utc::now().to_rfc3339()),
    };
    // Whatever the file held before goes when it fails or is skipped now.
    let all_stale = || -> Vec<String> {
        job.members_before.iter().map(|p| DocumentId::for_path(Path::new(p)).0).collect()
    };
    let fail = |mut row: DocumentRow, state: DocumentState, error: String| {
        row.state = state;
        row.error = Some(error);
        Outcome::Prepared {
            doc: PreparedDocument { row, chunks: Vec::new(), ocr_words: Vec::new() },
            existed,
            warnings: Vec::new(),
            members: Vec::new(),
            stale: all_stale(),
        }
    };
    match crate::ids::sha256_file(&job.file.path) {
        Ok(sha) => row.sha256 = sha,
        Err(e) => return fail(row, DocumentState::Failed, format!("cannot read the file: {e}")),
    }
    if let Some(prev) = &job.previous
        && !job.force
        && prev.sha256 == row.sha256
        && prev.state != DocumentState::Pending
        && Ok(prev.kind) == job.file.kind
    {
        return Outcome::Unchanged(DocumentRow {
            size: row.size,
            mtime_ns: row.mtime_ns,
            ..prev.clone()
        });
    }
    let kind = match &job.file.kind {
        Ok(kind) => *kind,
        Err(reason) => return fail(row, DocumentState::Failed, reason.clone()),
    };
    if job.file.size > config.extraction.max_file_bytes {
        let limit_mb = config.extraction.max_file_bytes / (1024 * 1024);
        return fail(row, DocumentState::Skipped, format!("larger than the {limit_mb} MiB limit"));
    }
    if kind == FileKind::Image && config.extraction.ocr.is_none() {
        return fail(row, DocumentState::Skipped, "an image, and OCR is switched off".into());
    }
    // OCR leaves the worker a quarter of the file's time limit for the rest.
    let ocr = config.extraction.ocr.clone().map(|mut ocr| {
        ocr.budget_secs =
            ocr.budget_secs.min(config.extraction.per_file_timeout_secs * 3 / 4).max(1);
        ocr
    });
    let passwords = config.extraction.pdf_passwords.clone();
    let source = Source { path: job.file.path.clone(), kind, ocr, passwords };
    let mut extracted = match extractor.extract(&source) {
        Ok(doc) => doc,
        Err(e) => return fail(row, DocumentState::Failed, e.to_string()),
    };
    let limits = ChunkLimits {
        max_chunks: config.extraction.max_chunks_per_file,
        time: Duration::from_secs(config.extraction.chunking_timeout_secs),
    };
    let found = std::mem::take(&mut extracted.members);
    let doc = chunked(row, extracted, kind, chunker, limits);
    if doc.row.state != DocumentState::Indexed {
        let reason = doc.row.error.clone().unwrap_or_default();
        return fail(doc.row, DocumentState::Failed, reason);
    }
    let mut members = Vec::with_capacity(found.len());
    for member in found {
        let path = format!("{}/{}", doc.row.path, member.name);
        let member_row = DocumentRow {
            doc_id: DocumentId::for_path(Path::new(&path)).0,
            path,
            kind: member.kind,
            size: member.size,
            sha256: member.sha256,
            warnings: Vec::new(),
            pages: 0,
            title: None,
            ..doc.row.clone()
        };
        let existed = job.members_before.contains(&member_row.path);
        let prepared = match member.extracted {
            Ok(extracted) => chunked(member_row, extracted, member.kind, chunker, limits),
            Err(reason) => failed(member_row, reason),
        };
        members.push((prepared, existed));
    }
    let now: HashSet<&str> = members.iter().map(|(m, _)| m.row.path.as_str()).collect();
    let stale = job
        .members_before
        .iter()
        .filter(|p| !now.contains(p.as_str()))
        .map(|p| DocumentId::for_path(Path::new(p)).0)
        .collect();
    let warnings = doc.row.warnings.clone();
    Outcome::Prepared { doc, existed, warnings, members, stale }
}

/// A document that failed for `reason`, without chunks.
fn failed(mut row: DocumentRow, reason: String) -> PreparedDocument {
    row.state = DocumentState::Failed;
    row.error = Some(reason);
    row.chunks = 0;
    PreparedDocument { row, chunks: Vec::new(), ocr_words: Vec::new() }
}

/// `extracted` chunked into the document `row` describes; a failed document with the reason
/// when chunking fails.
fn chunked(
    mut row: DocumentRow,
    extracted: Extracted,
    kind: FileKind,
    chunker: &Chunker,
    limits: ChunkLimits,
) -> PreparedDocument {
    let chunks = match chunker.chunk_within(&extracted, kind, limits) {
        Ok(chunks) => chunks,
        Err(reason) => return failed(row, reason),
    };
    debug!(target: "engine::chunk", path = %row.path, n_chunks = chunks.len(), "chunked");
    let doc_id = DocumentId(row.doc_id.clone());
    row.state = DocumentState::Indexed;
    row.error = None;
    row.extractor = extracted.extractor.clone();
    row.pages = extracted.pages;
    row.title = extracted.title.clone();
    row.warnings = extracted.warnings.clone();
    row.chunks = chunks.len() as u32;
    let rows = chunks
        .into_iter()
        .map(|c| ChunkRow {
            chunk_id: ChunkId::new(&doc_id, &row.sha256, c.ordinal).0,
            doc_id: doc_id.0.clone(),
            doc_path: row.path.clone(),
            ordinal: c.ordinal,
            text: c.text,
            page_start: c.page_start,
            page_end: c.page_end,
            char_start: c.char_start,
            char_end: c.char_end,
            heading: c.heading,
            language: c.language,
            vector: None,
        })
        .collect();
    PreparedDocument { row, chunks: rows, ocr_words: extracted.ocr_words }
}
