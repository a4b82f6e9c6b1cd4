//! Worker-process isolation with real processes: a worker that crashes or hangs costs one
//! file, with the reason recorded, and the next file gets a fresh worker.

use std::time::Duration;

use quarry::FileKind;
use quarry::error::ExtractError;
use quarry::ingest::Source;
use quarry::ingest::worker::WorkerProcess;

use crate::support::quarry_bin;

fn source(path: &std::path::Path) -> Source {
    Source { path: path.to_owned(), kind: FileKind::Text, ocr: None, passwords: Default::default() }
}

#[test]
fn the_real_worker_extracts_and_survives_bad_files() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.txt");
    std::fs::write(&good, "plain words").unwrap();
    let mut worker = WorkerProcess::new(
        vec![quarry_bin().to_string_lossy().into_owned(), "__extract-worker".into()],
        Duration::from_secs(30),
        2048,
    );
    assert_eq!(worker.extract(&source(&good)).unwrap().text, "plain words");
    let missing = worker.extract(&source(&dir.path().join("missing.txt"))).unwrap_err();
    assert!(matches!(missing, ExtractError::Io(_)), "{missing:?}");
    let bad_pdf = dir.path().join("bad.pdf");
    std::fs::write(
        &bad_pdf,
        b"%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>",
    )
    .unwrap();
    let err = worker
        .extract(&Source {
            path: bad_pdf,
            kind: FileKind::Pdf,
            ocr: None,
            passwords: Default::default(),
        })
        .unwrap_err();
    assert!(err.to_string().contains("damaged PDF"), "{err}");
    assert_eq!(worker.extract(&source(&good)).unwrap().text, "plain words");
}

#[test]
fn a_hanging_worker_is_stopped_at_the_time_limit() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a.txt");
    std::fs::write(&file, "x").unwrap();
    // `sleep` reads no request and never answers: the parent must give up and kill it.
    let mut worker =
        WorkerProcess::new(vec!["sleep".into(), "600".into()], Duration::from_secs(1), 0);
    let started = std::time::Instant::now();
    let err = worker.extract(&source(&file)).unwrap_err();
    assert_eq!(err, ExtractError::Crashed("timed out after 1 s and was stopped".into()));
    assert!(started.elapsed() < Duration::from_secs(30));
}

#[test]
fn a_crashing_worker_is_reported_with_its_last_words() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a.txt");
    std::fs::write(&file, "x").unwrap();
    let script =
        "read line; echo 'quarry-worker panic: index out of bounds at lib.rs:9' >&2; kill -ABRT $$";
    let mut worker = WorkerProcess::new(
        vec!["sh".into(), "-c".into(), script.into()],
        Duration::from_secs(30),
        0,
    );
    let err = worker.extract(&source(&file)).unwrap_err().to_string();
    assert!(err.contains("crashed"), "{err}");
    assert!(err.contains("SIGABRT") || err.contains("signal: 6"), "{err}");
    assert!(err.contains("parser panicked: index out of bounds"), "{err}");
    // The next request starts a fresh worker.
    let err = worker.extract(&source(&file)).unwrap_err().to_string();
    assert!(err.contains("parser panicked"), "{err}");
}

/// A parser that wants more memory than the worker may have fails that one file; the next file
/// is read as usual.
#[cfg(target_os = "linux")]
#[test]
fn a_file_that_needs_too_much_memory_fails_alone() {
    let dir = tempfile::tempdir().unwrap();
    let big = dir.path().join("big.txt");
    let line = "The notice period is three months and the rent is due on the first day.\n";
    std::fs::write(&big, line.repeat(1_400_000)).unwrap();
    let good = dir.path().join("good.txt");
    std::fs::write(&good, "plain words").unwrap();
    let mut worker = WorkerProcess::new(
        vec![quarry_bin().to_string_lossy().into_owned(), "__extract-worker".into()],
        Duration::from_secs(60),
        48,
    );
    let err = worker.extract(&source(&big)).unwrap_err().to_string();
    assert!(err.contains("out of memory") || err.contains("crashed"), "{err}");
    assert_eq!(worker.extract(&source(&good)).unwrap().text, "plain words");
}

/// A worker cannot make the parent read an endless reply.
#[test]
fn an_oversized_reply_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("a.txt");
    std::fs::write(&file, "x").unwrap();
    let script = "read line; head -c 3000000 /dev/zero | tr '\\0' 'a'; echo";
    let mut worker = WorkerProcess::new(
        vec!["sh".into(), "-c".into(), script.into()],
        Duration::from_secs(30),
        0,
    )
    .with_reply_limit(1024 * 1024);
    let err = worker.extract(&source(&file)).unwrap_err().to_string();
    assert!(err.contains("reply larger than 1048576 bytes"), "{err}");
}
