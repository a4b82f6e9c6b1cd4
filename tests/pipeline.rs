//! The engine's pipeline with injected test doubles (`fakes.rs`), on any machine and in
//! milliseconds: the ask path from retrieval to audit (supported, attributed, unsupported,
//! refused, looping and cancelled answers), and the indexing runs and folder watch the engine
//! owns for every edge. Nothing here needs `../shared/data`.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use quarry::answer::audit;
use quarry::answer::prompt::REFUSAL;
use quarry::api::{AbstainCause, FallbackCause};
use quarry::{AnswerMode, AskOptions, CancelToken, Engine, EngineConfig, Error};

use crate::fakes::{Script, ScriptedGenerator, SentChats, WordHashEmbedder, passage_holding};
use crate::support::TempLibrary;

const NOTICE_QUESTION: &str = "What is the notice period for terminating the lease?";
const UNRELATED_QUESTION: &str = "Who won the football world cup in 1998?";

/// A lease as a PDF (one clause per page) and a garden note.
fn write_documents(dir: &Path) -> PathBuf {
    let docs = dir.join("docs");
    std::fs::create_dir_all(&docs).unwrap();
    crate::answer::write_lease(&docs);
    std::fs::write(
        docs.join("garden.txt"),
        "Tomatoes need full sun and regular watering. Basil grows well beside them.\n",
    )
    .unwrap();
    docs
}

/// Settings for a library in `lib`, extraction in this process. The gate threshold is set for
/// the word-hash embedder's scale (the calibrated default is for MiniLM): the notice question
/// scores 0.49 on these documents, the football question 0.14.
fn config(lib: &TempLibrary) -> EngineConfig {
    let mut config = lib.in_process_config();
    config.answer.gate_threshold = 0.3;
    config
}

/// A library holding the documents, indexed with the word-hash embedder, and an engine on it
/// that writes answers with `script`.
async fn engine_with(lib: &TempLibrary, script: Script) -> (Engine, SentChats) {
    let docs = write_documents(lib.path());
    let indexer = Engine::builder(config(lib))
        .embedder(WordHashEmbedder::new())
        .open_for_write()
        .await
        .unwrap();
    let report = indexer.index(&[docs], &mut |_| {}, &CancelToken::new()).await.unwrap();
    assert_eq!((report.added, report.failed), (2, 0), "{report:?}");
    drop(indexer);
    let (generator, chats) = ScriptedGenerator::new(script);
    let engine = Engine::builder(config(lib))
        .embedder(WordHashEmbedder::new())
        .generator(generator)
        .open()
        .await
        .unwrap();
    (engine, chats)
}

async fn ask(engine: &Engine, question: &str) -> (quarry::Answer, String) {
    let mut streamed = String::new();
    let answer = engine
        .ask(
            question,
            &AskOptions::default(),
            &mut |p: &str| streamed.push_str(p),
            &CancelToken::new(),
        )
        .await
        .unwrap();
    (answer, streamed)
}

#[tokio::test]
async fn a_supported_answer_is_streamed_verified_cited_and_audited() {
    let lib = TempLibrary::new();
    let (engine, chats) = engine_with(
        &lib,
        Box::new(|m| {
            let n = passage_holding(m, "notice period of three months").unwrap();
            format!("The notice period is three months [{n}].")
        }),
    )
    .await;
    assert!(engine.has_generator() && engine.has_embedder());
    let (answer, streamed) = ask(&engine, NOTICE_QUESTION).await;
    assert!(answer.gate.passed, "{answer:#?}");
    assert_eq!(answer.mode, AnswerMode::Generated, "{answer:#?}");
    assert!(!answer.abstained, "{answer:#?}");
    assert_eq!(answer.model.as_deref(), Some(ScriptedGenerator::NAME));
    // What the user saw streaming is what the model wrote.
    assert_eq!(Some(streamed.as_str()), answer.model_text.as_deref());
    let sentence = &answer.sentences[0];
    assert!(sentence.supported && !sentence.attributed, "{answer:#?}");
    let citation = &answer.citations[0];
    assert!(citation.doc_path.ends_with("lease.pdf") && citation.page == 3, "{citation:?}");
    assert!(citation.quote.contains("notice period of three months"), "{citation:?}");
    assert!(answer.answer.starts_with("The notice period is three months ["), "{answer:#?}");
    assert!(answer.early_stop.is_none() && answer.fallback.is_none());

    // The model was sent the question and the numbered passages, the lease among them.
    let chats = chats.lock().unwrap();
    assert_eq!(chats.len(), 1);
    let user = &chats[0].iter().rfind(|m| m.role == "user").unwrap().content;
    assert!(user.contains(NOTICE_QUESTION) && user.contains("document=\"lease.pdf\""), "{user}");

    // The audit log names the model (no file: unhashed), the passages and the generation.
    let records = audit::read(&audit::log_path(lib.path()), None).unwrap();
    assert_eq!(records.len(), 2, "a started record, then the answer");
    assert_eq!(records[0].outcome, audit::AuditOutcome::Started);
    assert!(records[0].answer.is_empty() && !records[0].passages.is_empty());
    let record = &records[1];
    assert_eq!(record.outcome, audit::AuditOutcome::Answered);
    assert_eq!(record.model.as_ref().map(|m| m.id.as_str()), Some(ScriptedGenerator::NAME));
    assert_eq!(record.model.as_ref().map(|m| m.sha256.as_str()), Some("unhashed"));
    assert_eq!(record.embedder.as_deref(), Some(WordHashEmbedder::ID));
    assert_eq!(record.retrieval.mode, "hybrid");
    assert!(record.passages.iter().all(|p| p.doc_sha256.len() == 64));
    let generation = record.generation.as_ref().unwrap();
    assert!(generation.fallback.is_none() && generation.attributed.is_empty());
}

#[tokio::test]
async fn a_sentence_without_a_marker_gets_the_citation_of_the_passage_that_supports_it() {
    let lib = TempLibrary::new();
    let (engine, _) = engine_with(
        &lib,
        Box::new(|_| "Either party may terminate the lease with three months notice.".into()),
    )
    .await;
    let (answer, _) = ask(&engine, NOTICE_QUESTION).await;
    assert!(!answer.abstained, "{answer:#?}");
    let sentence = &answer.sentences[0];
    assert!(sentence.supported && sentence.attributed, "{answer:#?}");
    assert!(answer.citations.iter().any(|c| c.doc_path.ends_with("lease.pdf") && c.page == 3));
    let records = audit::read(&audit::log_path(lib.path()), None).unwrap();
    assert!(!records[1].generation.as_ref().unwrap().attributed.is_empty());
}

#[tokio::test]
async fn an_answer_no_passage_supports_is_refused() {
    let lib = TempLibrary::new();
    let (engine, _) = engine_with(
        &lib,
        Box::new(|_| "Penguins migrate to Antarctica every winter with their chicks.".into()),
    )
    .await;
    let (answer, _) = ask(&engine, NOTICE_QUESTION).await;
    assert!(answer.abstained, "{answer:#?}");
    assert_eq!(answer.abstain_cause, Some(AbstainCause::Unsupported));
    assert_eq!(answer.answer, REFUSAL);
    assert!(answer.citations.is_empty());
}

#[tokio::test]
async fn the_model_refusing_is_a_refusal_and_weak_evidence_never_reaches_the_model() {
    let lib = TempLibrary::new();
    let (engine, chats) = engine_with(&lib, Box::new(|_| REFUSAL.into())).await;
    let (answer, _) = ask(&engine, NOTICE_QUESTION).await;
    assert!(answer.abstained, "{answer:#?}");
    assert_eq!(answer.abstain_cause, Some(AbstainCause::ModelRefused));

    let (unrelated, streamed) = ask(&engine, UNRELATED_QUESTION).await;
    assert!(unrelated.abstained && !unrelated.gate.passed, "{unrelated:#?}");
    assert_eq!(unrelated.abstain_cause, Some(AbstainCause::WeakEvidence));
    assert!(streamed.is_empty() && unrelated.timings.tokens == 0);
    assert_eq!(chats.lock().unwrap().len(), 1, "the gate refused: the model was not asked");
    let records = audit::read(&audit::log_path(lib.path()), None).unwrap();
    assert_eq!(records.len(), 3, "started and refused by the model, then refused by the gate");
    assert!(records[1].abstained && records[2].abstained && records[2].generation.is_none());
}

#[tokio::test]
async fn a_model_looping_on_markers_is_stopped_and_the_answer_quotes_the_evidence() {
    let lib = TempLibrary::new();
    let (engine, _) =
        engine_with(&lib, Box::new(|_| (1..200).map(|n| format!("[{n}] ")).collect::<String>()))
            .await;
    let (answer, streamed) = ask(&engine, NOTICE_QUESTION).await;
    let stop = answer.early_stop.expect("the guard stops the loop");
    assert!(stop.is_degenerate(), "{answer:#?}");
    // Stopped early: far fewer than the 199 markers were streamed.
    assert!(streamed.matches('[').count() < 50, "{streamed}");
    assert_eq!(answer.mode, AnswerMode::Evidence, "{answer:#?}");
    assert!(matches!(
        answer.fallback,
        Some(FallbackCause::Degenerate | FallbackCause::MarkersOnly)
    ));
    assert!(!answer.abstained);
    assert!(answer.citations.iter().any(|c| c.doc_path.ends_with("lease.pdf") && c.page == 3));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_answer_is_cancelled_by_its_id() {
    let lib = TempLibrary::new();
    let (engine, _) =
        engine_with(&lib, Box::new(|_| "The notice period is three months. ".repeat(40))).await;
    let engine = Arc::new(engine);
    let ticket = engine.answer_ticket("answer-1").unwrap();
    assert!(matches!(engine.answer_ticket("answer-1"), Err(Error::Busy(_))));
    let stopper = Arc::clone(&engine);
    let mut sink = move |_: &str| {
        stopper.cancel_answer("answer-1");
    };
    let result =
        engine.ask(NOTICE_QUESTION, &AskOptions::default(), &mut sink, ticket.token()).await;
    assert!(matches!(result, Err(Error::Cancelled)), "{result:?}");
    drop(ticket);
    assert!(!engine.cancel_answer("answer-1"), "the id is released with its ticket");
    // The stopped answer is on the record, with what the model had written, and the log's
    // chain holds; an edited record breaks it (`quarry audit verify` exits with 1).
    let records = audit::read(&audit::log_path(lib.path()), None).unwrap();
    let last = records.last().unwrap();
    assert_eq!(last.outcome, audit::AuditOutcome::Cancelled, "{last:?}");
    assert!(last.answer.starts_with("The notice period"), "{last:?}");
    let verify = crate::support::quarry(lib.path(), &["audit", "verify", "--json"]);
    let report = crate::support::json_of(&verify);
    assert_eq!(report["broken"], serde_json::Value::Null, "{report}");
    let log = audit::log_path(lib.path());
    let text = std::fs::read_to_string(&log).unwrap();
    std::fs::write(&log, text.replace("The notice period", "The rent")).unwrap();
    let verify = crate::support::quarry(lib.path(), &["audit", "verify"]);
    assert_eq!(verify.status.code(), Some(1), "{}", String::from_utf8_lossy(&verify.stdout));
    assert!(String::from_utf8_lossy(&verify.stdout).contains("line 2"));
}

/// Answers beyond `max_concurrent_answers` are refused as busy (429 over HTTP) instead of
/// queueing behind the model and starving the other requests.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn answers_beyond_the_limit_are_refused_as_busy() {
    let lib = TempLibrary::new();
    let docs = write_documents(lib.path());
    let indexer = Engine::builder(config(&lib))
        .embedder(WordHashEmbedder::new())
        .open_for_write()
        .await
        .unwrap();
    indexer.index(&[docs], &mut |_| {}, &CancelToken::new()).await.unwrap();
    drop(indexer);
    let writing = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let release = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let (w, r) = (Arc::clone(&writing), Arc::clone(&release));
    let (generator, _) = ScriptedGenerator::new(Box::new(move |_| {
        w.store(true, std::sync::atomic::Ordering::SeqCst);
        while !r.load(std::sync::atomic::Ordering::SeqCst) {
            std::thread::sleep(Duration::from_millis(5));
        }
        "The notice period is three months.".into()
    }));
    let mut limited = config(&lib);
    limited.answer.max_concurrent_answers = 1;
    let engine = Arc::new(
        Engine::builder(limited)
            .embedder(WordHashEmbedder::new())
            .generator(generator)
            .open()
            .await
            .unwrap(),
    );
    let first = {
        let engine = Arc::clone(&engine);
        tokio::spawn(async move {
            engine
                .ask(
                    NOTICE_QUESTION,
                    &AskOptions::default(),
                    &mut |_: &str| {},
                    &CancelToken::new(),
                )
                .await
        })
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !writing.load(std::sync::atomic::Ordering::SeqCst) {
        assert!(Instant::now() < deadline, "the first answer never reached the model");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let second = engine
        .ask(NOTICE_QUESTION, &AskOptions::default(), &mut |_: &str| {}, &CancelToken::new())
        .await;
    assert!(matches!(second, Err(Error::Busy(_))), "{second:?}");
    release.store(true, std::sync::atomic::Ordering::SeqCst);
    let answer = first.await.unwrap().unwrap();
    assert!(!answer.abstained, "{answer:#?}");
    // The slot is free again.
    let third = engine
        .ask(NOTICE_QUESTION, &AskOptions::default(), &mut |_: &str| {}, &CancelToken::new())
        .await;
    assert!(third.is_ok(), "{third:?}");
}

#[tokio::test]
async fn indexing_runs_one_at_a_time_with_progress_cancel_and_rescan() {
    let lib = TempLibrary::new();
    let docs = write_documents(lib.path());
    let engine = Arc::new(
        Engine::builder(config(&lib))
            .embedder(WordHashEmbedder::new())
            .open_for_write()
            .await
            .unwrap(),
    );
    assert!(!engine.cancel_index(), "nothing to cancel yet");
    let mut updates = engine.follow_index_progress();
    let job = engine.start_index(vec![docs.clone()], false).unwrap();
    // On this single-threaded runtime the run cannot have finished: a second one is refused.
    assert!(matches!(engine.start_index(vec![docs.clone()], false), Err(Error::Busy(_))));
    assert!(engine.index_progress().running);
    let last = job.finished().await;
    assert!(!last.running && last.error.is_none() && !last.paused, "{last:?}");
    let report = last.report.as_ref().unwrap();
    assert_eq!((report.added, report.failed), (2, 0));
    assert_eq!(engine.index_progress(), last);
    assert!(updates.has_changed().unwrap());
    assert_eq!(*updates.borrow_and_update(), last);

    // A run cancelled before it gets going ends paused, and the next one resumes.
    std::fs::write(docs.join("new.txt"), "The caretaker collects the bins on Tuesdays.").unwrap();
    let job = engine.start_index(Vec::new(), false).unwrap();
    assert!(engine.cancel_index());
    let paused = job.finished().await;
    assert!(paused.paused && paused.error.is_none(), "{paused:?}");
    let resumed = engine.start_index(Vec::new(), false).unwrap().finished().await;
    assert_eq!(resumed.report.as_ref().map(|r| r.added), Some(1), "{resumed:?}");

    // A re-scan asked for while a run is going starts when it ends.
    std::fs::write(docs.join("later.txt"), "Parcels are left with the neighbour.").unwrap();
    let job = engine.start_index(Vec::new(), false).unwrap();
    engine.request_rescan();
    job.finished().await;
    let deadline = Instant::now() + Duration::from_secs(30);
    while engine.index_progress().running || engine.status().await.unwrap().documents < 4 {
        assert!(Instant::now() < deadline, "the re-scan never ran: {:?}", engine.index_progress());
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // A relative or missing path is refused at once, before anything runs in the background.
    let relative = engine.start_index(vec![PathBuf::from("docs")], false).unwrap_err();
    assert!(relative.to_string().contains("full path"), "{relative}");
    let missing = engine.start_index(vec![lib.path().join("nowhere")], false).unwrap_err();
    assert!(missing.to_string().contains("no such file or folder"), "{missing}");

    // A hidden folder, or a file without an extension, waits for the user's confirmation.
    let hidden = lib.path().join(".secrets");
    std::fs::create_dir_all(&hidden).unwrap();
    std::fs::write(hidden.join("keys.txt"), "not a document").unwrap();
    let asked = engine.start_index(vec![hidden.clone()], false).unwrap_err();
    assert!(matches!(asked, Error::NeedsConfirmation(_)) && asked.kind() == "confirm", "{asked}");
    let bare_file = docs.join("README");
    std::fs::write(&bare_file, "Read me.").unwrap();
    let asked = engine.start_index(vec![bare_file], false).unwrap_err();
    assert!(asked.to_string().contains("no file extension"), "{asked}");
    engine.start_index(vec![hidden], true).unwrap().finished().await;

    // A library with no sources yet says so instead of running.
    let empty = TempLibrary::new();
    let bare = Arc::new(Engine::open_for_write(empty.in_process_config()).await.unwrap());
    let failed = bare.start_index(Vec::new(), false).unwrap().finished().await;
    assert!(failed.error.as_deref().unwrap_or("").contains("no folders"), "{failed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_engine_watch_indexes_files_added_to_a_source() {
    let lib = TempLibrary::new();
    let docs = write_documents(lib.path());
    let engine = Arc::new(
        Engine::builder(config(&lib))
            .embedder(WordHashEmbedder::new())
            .open_for_write()
            .await
            .unwrap(),
    );
    engine.start_index(vec![docs.clone()], false).unwrap().finished().await;
    let watch = engine.watch_sources();
    std::fs::write(docs.join("keys.md"), "# Keys\n\nThe spare key is with the caretaker.").unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let docs = engine.documents().await.unwrap();
        if docs.iter().any(|d| d.path.ends_with("keys.md")) {
            break;
        }
        assert!(Instant::now() < deadline, "the watch did not index keys.md: {docs:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    watch.stop();
}

/// The viewer gets only what was indexed: not a failed document, not a file changed since,
/// not a file replaced by a link out of the library's folders.
#[tokio::test]
async fn only_indexed_unchanged_documents_inside_the_library_are_served() {
    let lib = TempLibrary::new();
    let docs = write_documents(lib.path());
    std::fs::write(docs.join("broken.pdf"), "<html>not a pdf</html>").unwrap();
    // A PDF inside an archive is served from the archive; a mailbox's message is not a file.
    let lease_bytes = std::fs::read(docs.join("lease.pdf")).unwrap();
    let mut zip = zip::ZipWriter::new(std::fs::File::create(docs.join("pack.zip")).unwrap());
    zip.start_file("contracts/lease.pdf", zip::write::SimpleFileOptions::default()).unwrap();
    std::io::Write::write_all(&mut zip, &lease_bytes).unwrap();
    zip.finish().unwrap();
    std::fs::write(
        docs.join("mail.mbox"),
        "From a@example.org Mon Dec  7 10:00:00 2026\nFrom: a@example.org\nSubject: Keys\n\nThe keys are at the office.\n",
    )
    .unwrap();
    let engine = Engine::builder(config(&lib)).open_for_write().await.unwrap();
    engine.index(std::slice::from_ref(&docs), &mut |_| {}, &CancelToken::new()).await.unwrap();
    let garden = docs.join("garden.txt");
    let (_, bytes) = engine.document_bytes(&garden).await.unwrap();
    assert!(bytes.starts_with(b"Tomatoes"));
    let refused = |err: Error| {
        assert!(matches!(err, Error::User(_)), "{err:?}");
        err.to_string()
    };
    let in_zip = docs.join("pack.zip/contracts/lease.pdf");
    let (kind, bytes) = engine.document_bytes(&in_zip).await.unwrap();
    assert_eq!((kind, bytes == lease_bytes), (quarry::FileKind::Pdf, true));
    let message = engine.document_bytes(&docs.join("mail.mbox/message 1")).await.unwrap_err();
    assert!(refused(message).contains("shown as its text"));
    let text = engine.document_text(&docs.join("mail.mbox/message 1")).await.unwrap();
    assert!(text.text.contains("The keys are at the office."), "{}", text.text);
    let other = std::fs::read(docs.join("garden.txt")).unwrap();
    let mut zip = zip::ZipWriter::new(std::fs::File::create(docs.join("pack.zip")).unwrap());
    zip.start_file("contracts/lease.pdf", zip::write::SimpleFileOptions::default()).unwrap();
    std::io::Write::write_all(&mut zip, &other).unwrap();
    zip.finish().unwrap();
    let changed = engine.document_bytes(&in_zip).await.unwrap_err();
    assert!(refused(changed).contains("changed since it was indexed"));
    let failed = engine.document_bytes(&docs.join("broken.pdf")).await.unwrap_err();
    assert!(refused(failed).contains("not indexed"));
    std::fs::write(&garden, "Tomatoes need full sun. And a secret appended later.").unwrap();
    let changed = engine.document_bytes(&garden).await.unwrap_err();
    assert!(refused(changed).contains("changed since it was indexed"));
    #[cfg(unix)]
    {
        let lease = docs.join("lease.pdf");
        let outside = lib.path().join("outside.pdf");
        std::fs::copy(&lease, &outside).unwrap();
        std::fs::remove_file(&lease).unwrap();
        std::os::unix::fs::symlink(&outside, &lease).unwrap();
        let linked = engine.document_bytes(&lease).await.unwrap_err();
        assert!(refused(linked).contains("outside the library"));
    }
    let unknown = engine.document_bytes(Path::new("/etc/passwd")).await.unwrap_err();
    assert!(refused(unknown).contains("not in the library"));
}

/// A file that would make more chunks than a file may (which also bounds its embedding work)
/// fails with the reason; the others are indexed.
#[tokio::test]
async fn a_file_too_long_to_chunk_fails_alone() {
    let lib = TempLibrary::new();
    let docs = write_documents(lib.path());
    let sentence = "The caretaker checks the heating, the water pipes and the smoke alarms. ";
    std::fs::write(docs.join("long.txt"), sentence.repeat(400)).unwrap();
    let mut limited = config(&lib);
    limited.extraction.max_chunks_per_file = 5;
    let engine = Engine::builder(limited).open_for_write().await.unwrap();
    let report = engine.index(&[docs], &mut |_| {}, &CancelToken::new()).await.unwrap();
    assert_eq!((report.added, report.failed), (2, 1), "{report:?}");
    assert!(report.failures[0].path.ends_with("long.txt"), "{report:?}");
    assert!(report.failures[0].error.contains("more than 5 chunks"), "{report:?}");
}

/// The Models view's backend: the catalog and what is installed, and one download at a time in
/// the background (here from the shared MiniLM folder, as from a USB stick), with progress.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn models_are_listed_and_downloaded_in_the_background() {
    const TEST: &str = "models_are_listed_and_downloaded_in_the_background";
    let Some(data) = crate::support::test_data(TEST) else { return };
    let lib = TempLibrary::new();
    let mut with_models = config(&lib);
    with_models.models_dir = Some(lib.path().join("models"));
    let engine = Arc::new(Engine::builder(with_models).open_for_write().await.unwrap());
    let minilm = quarry::models::DEFAULT_EMBEDDER;
    let before = engine.models_overview().unwrap();
    assert!(before.installed.is_empty());
    let offered = before.catalog.iter().find(|m| m.id == minilm).unwrap();
    assert!(offered.downloadable && !offered.installed, "{offered:?}");
    assert!(!engine.cancel_pull(), "nothing to stop yet");

    let from = data.join("models/all-MiniLM-L6-v2").to_string_lossy().into_owned();
    engine.start_pull(minilm, Some(from.clone())).unwrap();
    assert!(matches!(engine.start_pull(minilm, Some(from)), Err(Error::Busy(_))));
    let deadline = Instant::now() + Duration::from_secs(120);
    while engine.pull_progress().running {
        assert!(Instant::now() < deadline, "the download never ended");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let done = engine.pull_progress();
    assert!(done.error.is_none() && done.installed.is_some(), "{done:?}");
    assert!(done.total.is_none() || done.done > 90_000_000, "{done:?}");
    let after = engine.models_overview().unwrap();
    assert!(after.installed.iter().any(|m| m.id == minilm && m.problem.is_none()), "{after:?}");
    assert!(after.catalog.iter().any(|m| m.id == minilm && m.installed));
    let unknown = engine.start_pull("nobody/nothing", None).unwrap_err();
    assert!(unknown.to_string().contains("not in the catalog"));

    // Chosen for new libraries (this one has no embedder), then removed; nothing outside the
    // models folder can be removed.
    assert!(!engine.choose_embedder(minilm).unwrap());
    let choice = quarry::models::ModelChoice::read(lib.path());
    assert_eq!(choice.embedder.as_deref(), Some(minilm));
    let installed = after.installed.iter().find(|m| m.id == minilm).unwrap().path.clone();
    engine.remove_model(Path::new(&installed)).unwrap();
    assert!(engine.models_overview().unwrap().installed.is_empty());
    let outside = engine.remove_model(lib.path()).unwrap_err();
    assert!(outside.to_string().contains("not a model in"), "{outside}");
}

/// A question asked about part of the library is answered from that part only (a folder or
/// file, and file kinds), and the scope is on the record.
#[tokio::test]
async fn a_scoped_question_reads_only_its_scope() {
    let lib = TempLibrary::new();
    let (engine, _) = engine_with(
        &lib,
        Box::new(|m| {
            let n = passage_holding(m, "notice period of three months").unwrap_or(1);
            format!("The notice period is three months [{n}].")
        }),
    )
    .await;
    let docs = lib.path().join("docs");
    let scoped = |within: Vec<String>, kinds: Vec<quarry::FileKind>| AskOptions {
        scope: quarry::api::AskScope { within, kinds },
        ..AskOptions::default()
    };
    let lease = docs.join("lease.pdf").to_string_lossy().into_owned();
    let in_lease = engine
        .ask(NOTICE_QUESTION, &scoped(vec![lease], vec![]), &mut |_: &str| {}, &CancelToken::new())
        .await
        .unwrap();
    assert!(!in_lease.passages.is_empty());
    assert!(in_lease.passages.iter().all(|p| p.doc_path.ends_with("lease.pdf")), "{in_lease:#?}");
    // Only text files: the lease is out of scope, so the notice question finds nothing.
    let text_only = engine
        .ask(
            NOTICE_QUESTION,
            &scoped(vec![], vec![quarry::FileKind::Text]),
            &mut |_: &str| {},
            &CancelToken::new(),
        )
        .await
        .unwrap();
    assert!(
        text_only.passages.iter().all(|p| p.doc_path.ends_with("garden.txt")),
        "{text_only:#?}"
    );
    assert!(text_only.abstained, "{text_only:#?}");
    let nothing = engine
        .ask(
            NOTICE_QUESTION,
            &scoped(vec![lib.path().join("elsewhere").to_string_lossy().into_owned()], vec![]),
            &mut |_: &str| {},
            &CancelToken::new(),
        )
        .await
        .unwrap_err();
    assert!(nothing.to_string().contains("matches the scope"), "{nothing}");
    let records = audit::read(&audit::log_path(lib.path()), None).unwrap();
    assert!(records.iter().any(|r| r.retrieval.scope.kinds == vec![quarry::FileKind::Text]));
}

/// The engine's futures can be awaited from any runtime task, so the edges call it directly:
/// a compile-time check (this does not build if one of them stops being `Send`).
#[allow(dead_code)]
fn engine_futures_are_send() {
    fn is_send<T: Send>(_: &T) {}
    async fn all(engine: &Engine, cancel: &CancelToken) {
        let mut sink = |_: &str| {};
        let options = AskOptions::default();
        let ask = engine.ask("q", &options, &mut sink, cancel);
        is_send(&ask);
        let mut progress = |_| {};
        let index = engine.index(&[], &mut progress, cancel);
        is_send(&index);
        is_send(&engine.status());
        is_send(&engine.documents());
        is_send(&engine.search("q", quarry::SearchMode::Text, 1));
        is_send(&engine.document_text(std::path::Path::new("p")));
        is_send(&engine.remove(&[]));
    }
    let _ = all;
}

/// Asks `question` as a turn of `thread`, collecting the stages.
async fn ask_in(
    engine: &Engine,
    thread: &str,
    question: &str,
    evidence: bool,
) -> (quarry::Answer, Vec<quarry::api::AnswerStage>) {
    struct Stages(Vec<quarry::api::AnswerStage>);
    impl quarry::generate::TokenSink for Stages {
        fn text(&mut self, _: &str) {}
        fn stage(&mut self, stage: quarry::api::AnswerStage) {
            self.0.push(stage);
        }
    }
    let options = AskOptions { thread: Some(thread.to_owned()), evidence, ..AskOptions::default() };
    let mut stages = Stages(Vec::new());
    let answer = engine.ask(question, &options, &mut stages, &CancelToken::new()).await.unwrap();
    (answer, stages.0)
}

#[tokio::test]
async fn a_conversation_rewrites_follow_ups_keeps_each_turn_s_citations_and_is_saved() {
    use quarry::api::{AnswerStage, NEW_THREAD, QuestionRewrite, ThreadExportFormat};
    let lib = TempLibrary::new();
    // The model rewrites follow-ups (when asked to) and answers from the passage it is given.
    let (engine, chats) = engine_with(
        &lib,
        Box::new(|m| {
            if m[0].content.contains("rewrite a follow-up") {
                return "How much is the monthly rent for the lease?\nextra".into();
            }
            let user = &m.iter().rfind(|m| m.role == "user").unwrap().content;
            let question = user.rsplit("</passage>").next().unwrap();
            let (needle, reply) = if question.contains("monthly rent") {
                ("monthly rent is 1200 euros", "The monthly rent is 1200 euros")
            } else {
                ("notice period of three months", "The notice period is three months")
            };
            match passage_holding(m, needle) {
                Some(n) => format!("{reply} [{n}]."),
                None => "I don't know.".into(),
            }
        }),
    )
    .await;
    let (first, stages) = ask_in(&engine, NEW_THREAD, NOTICE_QUESTION, false).await;
    let turn = first.conversation.clone().unwrap();
    assert_eq!((turn.turn, turn.rewritten_by), (1, QuestionRewrite::Unchanged));
    assert!(!stages.iter().any(|s| matches!(s, AnswerStage::Rewritten { .. })));
    assert!(first.citations.iter().all(|c| c.page == 3), "{first:#?}");

    // The follow-up is rewritten by the model (its first line), shown as a stage, searched
    // for, and answered from another page.
    let (second, stages) = ask_in(&engine, &turn.thread_id, "And the rent?", false).await;
    let rewritten = "How much is the monthly rent for the lease?";
    assert_eq!(second.question, rewritten);
    let conversation = second.conversation.clone().unwrap();
    assert_eq!((conversation.turn, conversation.rewritten_by), (2, QuestionRewrite::Model));
    assert_eq!(conversation.asked, "And the rent?");
    assert!(stages.contains(&AnswerStage::Rewritten {
        question: rewritten.into(),
        by: QuestionRewrite::Model
    }));
    assert!(!second.abstained && second.citations.iter().all(|c| c.page == 2), "{second:#?}");
    {
        let chats = chats.lock().unwrap();
        let rewrite = &chats[1].iter().rfind(|m| m.role == "user").unwrap().content;
        assert!(rewrite.contains(NOTICE_QUESTION) && rewrite.contains("And the rent?"));
    }

    // Without a model (evidence mode) the rules rewrite a pronoun follow-up.
    let (third, _) = ask_in(&engine, &turn.thread_id, "Who made it?", true).await;
    let conversation = third.conversation.clone().unwrap();
    assert_eq!(conversation.rewritten_by, QuestionRewrite::Rules);
    assert_eq!(third.question, "Who made the lease?");
    assert!(third.citations.iter().any(|c| c.page == 1), "{third:#?}");

    // A standalone question in the thread is not rewritten.
    let (fourth, _) = ask_in(&engine, &turn.thread_id, NOTICE_QUESTION, true).await;
    assert_eq!(fourth.conversation.unwrap().rewritten_by, QuestionRewrite::Unchanged);

    // A stopped answer is not a turn.
    let stopped = CancelToken::new();
    stopped.cancel();
    let options = AskOptions { thread: Some(turn.thread_id.clone()), ..AskOptions::default() };
    let err = engine.ask("And the rent?", &options, &mut |_: &str| {}, &stopped).await;
    assert!(matches!(err, Err(Error::Cancelled)), "{err:?}");

    // Saved with every turn; listed, renamed, exported with the audit records, deleted.
    let thread = engine.thread(&turn.thread_id).unwrap();
    assert_eq!(thread.turns.len(), 4);
    assert_eq!(thread.title, NOTICE_QUESTION);
    // Saved as given (timings aside: JSON need not round-trip every float bit).
    let saved = &thread.turns[1].answer;
    assert_eq!(
        (&saved.question, &saved.answer, &saved.citations, &saved.sentences, &saved.conversation),
        (
            &second.question,
            &second.answer,
            &second.citations,
            &second.sentences,
            &second.conversation
        )
    );
    let renamed = engine.rename_thread(&thread.id, "The lease").unwrap();
    assert_eq!((renamed.title.as_str(), renamed.turns), ("The lease", 4));
    assert_eq!(engine.threads().unwrap().len(), 1);
    let markdown = engine.export_thread(&thread.id, ThreadExportFormat::Markdown).unwrap();
    assert!(markdown.starts_with("# The lease\n"), "{markdown}");
    assert!(markdown.contains("## 2. And the rent?"), "{markdown}");
    assert!(markdown.contains("*Searched for:* How much is the monthly rent for the lease?"));
    assert!(markdown.contains("lease.pdf, page 2"), "{markdown}");
    let json: serde_json::Value =
        serde_json::from_str(&engine.export_thread(&thread.id, ThreadExportFormat::Json).unwrap())
            .unwrap();
    assert_eq!(json["thread"]["turns"].as_array().unwrap().len(), 4);
    // Two records (started, answered) per generated turn, one per evidence turn, and the
    // stopped answer's two (started, cancelled).
    let audit = json["audit"].as_array().unwrap();
    assert_eq!(audit.len(), 8, "{audit:#?}");
    assert!(audit.iter().all(|r| r["conversation"]["thread_id"] == thread.id.as_str()));
    // A question on its own is not part of any thread.
    let (alone, _) = ask(&engine, NOTICE_QUESTION).await;
    assert!(alone.conversation.is_none());
    assert_eq!(engine.thread(&thread.id).unwrap().turns.len(), 4);
    engine.delete_thread(&thread.id).unwrap();
    assert!(engine.threads().unwrap().is_empty());
    let err = engine.thread(&thread.id).unwrap_err();
    assert!(matches!(err, Error::User(_)) && err.to_string().contains("no conversation"));
    let options =
        AskOptions { thread: Some(thread.id.clone()), evidence: true, ..AskOptions::default() };
    let err = engine.ask("And?", &options, &mut |_: &str| {}, &CancelToken::new()).await;
    assert!(err.unwrap_err().to_string().contains("no conversation"));
}

#[tokio::test]
async fn settings_are_checked_saved_applied_at_once_and_kept_for_the_next_start() {
    use quarry::config::LibrarySettings;
    let lib = TempLibrary::new();
    let (engine, _) = engine_with(&lib, Box::new(|_| "unused".into())).await;
    assert_eq!(engine.ask_options().k, 8);
    // Out of range: refused whole, naming the field; nothing saved.
    for (change, field) in [
        (LibrarySettings { gate_threshold: Some(1.5), ..Default::default() }, "gate_threshold"),
        (
            LibrarySettings { passages_per_question: Some(0), ..Default::default() },
            "passages_per_question",
        ),
        (LibrarySettings { max_answer_tokens: Some(5), ..Default::default() }, "max_answer_tokens"),
        (
            LibrarySettings { models_dir: Some("/no/such/folder".into()), ..Default::default() },
            "models_dir",
        ),
    ] {
        let err = engine.update_settings(&change).unwrap_err();
        assert!(matches!(err, Error::User(_)) && err.to_string().starts_with(field), "{err}");
    }
    assert!(!lib.path().join("settings.json").exists());
    // Applied at once: the next question reads 2 passages, OCR is off for the next run.
    let models = lib.path().join("my-models");
    std::fs::create_dir_all(&models).unwrap();
    let change = LibrarySettings {
        passages_per_question: Some(2),
        max_answer_tokens: Some(64),
        ocr: Some(false),
        gate_threshold: Some(0.35),
        models_dir: Some(models.to_string_lossy().into_owned()),
    };
    let now = engine.update_settings(&change).unwrap();
    assert_eq!((now.default_k, now.max_answer_tokens, now.ocr), (2, 64, false));
    assert!(
        (now.gate_threshold - 0.35).abs() < 1e-6 && (engine.gate_threshold() - 0.35).abs() < 1e-6
    );
    assert_eq!(now.models_dir_next_start.as_deref(), Some(models.to_str().unwrap()));
    let options = engine.ask_options();
    assert_eq!((options.k, options.max_tokens), (2, 64));
    let (answer, _) = ask_with(&engine, NOTICE_QUESTION, &options).await;
    assert!(answer.passages.len() <= 2, "{:?}", answer.passages.len());
    // A later change keeps what it does not name.
    let now = engine
        .update_settings(&LibrarySettings { passages_per_question: Some(3), ..Default::default() })
        .unwrap();
    assert_eq!((now.default_k, now.max_answer_tokens, now.ocr), (3, 64, false));
    drop(engine);
    // Kept for the next start: the models folder and the rest come back with the library.
    let saved = LibrarySettings::read(lib.path());
    assert_eq!(saved.passages_per_question, Some(3));
    assert_eq!(LibrarySettings::models_dir(lib.path()), Some(models.clone()));
    let mut config = config(&lib);
    saved.apply(&mut config);
    assert!(config.extraction.ocr.is_none() && config.answer.max_answer_tokens == 64);
    // A models folder moved away keeps the other settings; a damaged file is ignored
    // (defaults), never a locked-out library.
    std::fs::remove_dir(&models).unwrap();
    assert_eq!(LibrarySettings::read(lib.path()).passages_per_question, Some(3));
    std::fs::write(lib.path().join("settings.json"), b"{\"gate_threshold\": 7}").unwrap();
    assert_eq!(LibrarySettings::read(lib.path()), LibrarySettings::default());
}

async fn ask_with(
    engine: &Engine,
    question: &str,
    options: &AskOptions,
) -> (quarry::Answer, String) {
    let mut streamed = String::new();
    let answer = engine
        .ask(question, options, &mut |p: &str| streamed.push_str(p), &CancelToken::new())
        .await
        .unwrap();
    (answer, streamed)
}
