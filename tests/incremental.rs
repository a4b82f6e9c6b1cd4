//! Incremental indexing: unchanged files are skipped, touched files are re-hashed but not
//! re-indexed, edited files replace their chunks, deleted files leave the library, and a source
//! folder that is not there (an unplugged drive) keeps its documents.

use std::time::{Duration, SystemTime};

use quarry::{Engine, SearchMode};

use crate::support::TempLibrary;

fn set_mtime(path: &std::path::Path, when: SystemTime) {
    let file = std::fs::File::options().write(true).open(path).unwrap();
    file.set_modified(when).unwrap();
}

#[tokio::test]
async fn touch_edit_delete_and_remove() {
    let docs = tempfile::tempdir().unwrap();
    let a = docs.path().join("a.txt");
    let b = docs.path().join("b.md");
    let c = docs.path().join("c.txt");
    std::fs::write(&a, "Alpha document about glaciers.").unwrap();
    std::fs::write(&b, "# Beta\n\nBeta document about volcanoes.").unwrap();
    std::fs::write(&c, "Gamma document about deserts.").unwrap();
    let lib = TempLibrary::new();
    let config = lib.in_process_config();

    let first = lib.index(config.clone(), &[docs.path()]).await;
    assert_eq!((first.added, first.updated, first.unchanged, first.removed), (3, 0, 0, 0));

    // Nothing changed.
    let again = lib.index(config.clone(), &[docs.path()]).await;
    assert_eq!((again.added, again.updated, again.unchanged), (0, 0, 3));

    // Touch: the mtime moves, the content hash does not.
    set_mtime(&a, SystemTime::now() + Duration::from_secs(60));
    let touched = lib.index(config.clone(), &[docs.path()]).await;
    assert_eq!((touched.updated, touched.unchanged, touched.chunks), (0, 3, 0));

    // Edit: the chunks are replaced, the old text is gone.
    std::fs::write(&b, "# Beta\n\nBeta document about geysers instead.").unwrap();
    set_mtime(&b, SystemTime::now() + Duration::from_secs(120));
    let edited = lib.index(config.clone(), &[docs.path()]).await;
    assert_eq!((edited.updated, edited.unchanged), (1, 2));
    let engine = Engine::open(config.clone()).await.unwrap();
    assert!(engine.search("volcanoes", SearchMode::Text, 5).await.unwrap().is_empty());
    let hits = engine.search("geysers", SearchMode::Text, 5).await.unwrap();
    assert_eq!(hits.len(), 1);
    assert!(hits[0].doc_path.ends_with("b.md"));
    drop(engine);

    // Delete: the document and its chunks leave both indexes.
    std::fs::remove_file(&c).unwrap();
    let deleted = lib.index(config.clone(), &[docs.path()]).await;
    assert_eq!((deleted.removed, deleted.unchanged), (1, 2));
    let engine = Engine::open(config.clone()).await.unwrap();
    assert!(engine.search("deserts", SearchMode::Text, 5).await.unwrap().is_empty());
    let status = engine.status().await.unwrap();
    assert_eq!((status.documents, status.chunks, status.text_index_chunks), (2, 2, 2));
    drop(engine);

    // Re-scanning the known sources needs no paths.
    let engine = Engine::open_for_write(config.clone()).await.unwrap();
    let rescan = engine.index(&[], &mut |_| {}, &quarry::CancelToken::new()).await.unwrap();
    assert_eq!(rescan.unchanged, 2);

    // Remove: explicit removal of one file.
    assert_eq!(engine.remove(std::slice::from_ref(&a)).await.unwrap(), 1);
    let status = engine.status().await.unwrap();
    assert_eq!((status.documents, status.chunks, status.text_index_chunks), (1, 1, 1));
    let err = engine.remove(&[a]).await.unwrap_err();
    assert!(err.to_string().contains("not in the library"), "{err}");
}

#[tokio::test]
async fn a_file_that_turns_bad_is_reported_and_others_are_kept() {
    let docs = tempfile::tempdir().unwrap();
    let good = docs.path().join("good.txt");
    let doc = docs.path().join("doc.docx");
    std::fs::write(&good, "Steady text about lighthouses.").unwrap();
    crate::ingest::write_docx(&doc);
    let lib = TempLibrary::new();
    let config = lib.in_process_config();
    let first = lib.index(config.clone(), &[docs.path()]).await;
    assert_eq!(first.added, 2);
    // The Word file is overwritten with garbage.
    std::fs::write(&doc, b"PK\x03\x04 truncated garbage").unwrap();
    set_mtime(&doc, SystemTime::now() + Duration::from_secs(60));
    let second = lib.index(config.clone(), &[docs.path()]).await;
    assert_eq!(second.failed, 1);
    assert!(second.failures[0].path.ends_with("doc.docx"));
    assert!(second.failures[0].error.contains("not a valid zip archive"), "{:?}", second.failures);
    let engine = Engine::open(config).await.unwrap();
    assert_eq!(engine.search("lighthouses", SearchMode::Text, 5).await.unwrap().len(), 1);
    assert!(engine.search("escrow", SearchMode::Text, 5).await.unwrap().is_empty());
}

#[tokio::test]
async fn a_missing_source_folder_keeps_its_documents_and_a_missing_source_file_leaves() {
    // An unplugged drive (or another machine's folder in a shared library): re-scanning the
    // sources must not read its absence as every file deleted.
    let place = tempfile::tempdir().unwrap();
    let drive = place.path().join("usb-stick");
    std::fs::create_dir_all(&drive).unwrap();
    std::fs::write(drive.join("a.txt"), "Alpha document about glaciers.").unwrap();
    std::fs::write(drive.join("b.txt"), "Beta document about volcanoes.").unwrap();
    let single = place.path().join("single.txt");
    std::fs::write(&single, "Gamma document about deserts.").unwrap();
    let lib = TempLibrary::new();
    let config = lib.in_process_config();
    let first = lib.index(config.clone(), &[&drive, &single]).await;
    assert_eq!(first.added, 3);

    std::fs::rename(&drive, place.path().join("elsewhere")).unwrap();
    std::fs::remove_file(&single).unwrap();
    // No paths: the library's own sources are re-scanned.
    let rescan = lib.index(config.clone(), &[]).await;
    assert_eq!(rescan.removed, 1, "{rescan:?}");
    let note = rescan.passed_over.iter().find(|f| f.path == drive.to_string_lossy());
    assert!(
        note.is_some_and(|f| f.error.contains("not found on this machine")),
        "{:?}",
        rescan.passed_over
    );
    let engine = Engine::open(config).await.unwrap();
    let docs = engine.documents().await.unwrap();
    let mut names: Vec<String> = docs.iter().map(|d| d.path.clone()).collect();
    names.sort();
    assert_eq!(
        names,
        [drive.join("a.txt"), drive.join("b.txt")].map(|p| p.to_string_lossy().into_owned())
    );
    let hits = engine.search("glaciers", SearchMode::Text, 5).await.unwrap();
    assert!(hits.iter().any(|h| h.doc_path.ends_with("a.txt")));
}

fn write_zip(path: &std::path::Path, entries: &[(&str, &str)]) {
    use std::io::Write;
    let mut zip = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    for (name, text) in entries {
        zip.start_file(*name, zip::write::SimpleFileOptions::default()).unwrap();
        zip.write_all(text.as_bytes()).unwrap();
    }
    zip.finish().unwrap();
}

fn message(from: &str, subject: &str, body: &str) -> String {
    format!("From {from} Mon Dec  7 10:00:00 2026\nFrom: {from}\nSubject: {subject}\n\n{body}\n\n")
}

#[tokio::test]
async fn documents_inside_archives_and_mailboxes_come_and_go_with_their_file() {
    let docs = tempfile::tempdir().unwrap();
    let pack = docs.path().join("pack.zip");
    let mbox = docs.path().join("verwaltung.mbox");
    write_zip(
        &pack,
        &[
            ("minutes/june.txt", "The board approved the new pier in June."),
            ("minutes/july.txt", "The harbour fees stay the same in July."),
        ],
    );
    std::fs::write(&mbox, message("anna@example.org", "Aufzug", "Der Aufzug steht still."))
        .unwrap();
    let lib = TempLibrary::new();
    let config = lib.in_process_config();
    let paths = |engine_docs: Vec<quarry::DocumentInfo>| -> Vec<String> {
        let root = docs.path().to_str().unwrap();
        engine_docs.iter().map(|d| d.path.strip_prefix(root).unwrap().to_owned()).collect()
    };

    // The entries and the message are documents of their own, beside their files.
    let first = lib.index(config.clone(), &[docs.path()]).await;
    assert_eq!((first.added, first.failed), (3, 0), "{first:?}");
    let engine = Engine::open(config.clone()).await.unwrap();
    assert_eq!(
        paths(engine.documents().await.unwrap()),
        [
            "/pack.zip",
            "/pack.zip/minutes/july.txt",
            "/pack.zip/minutes/june.txt",
            "/verwaltung.mbox",
            "/verwaltung.mbox/message 1"
        ]
    );
    let hits = engine.search("pier", SearchMode::Text, 5).await.unwrap();
    assert!(hits[0].doc_path.ends_with("pack.zip/minutes/june.txt"), "{hits:?}");
    // A scope of archives reaches what they hold.
    let scope = quarry::api::AskScope { within: vec![], kinds: vec![quarry::FileKind::Archive] };
    let found = engine
        .evidence_within("harbour fees", 5, &scope, &mut |s: &str| s.len() / 4)
        .await
        .unwrap();
    assert!(found.passages.iter().any(|p| p.doc_path.ends_with("minutes/july.txt")));
    assert!(found.passages.iter().all(|p| p.doc_path.contains("pack.zip/")));
    drop(engine);

    // Nothing changed: nothing is read again, and nothing inside the files is lost.
    let again = lib.index(config.clone(), &[docs.path()]).await;
    assert_eq!((again.added, again.updated, again.removed, again.unchanged), (0, 0, 0, 2));

    // An entry edited, one gone, one new; a message appended to the mailbox.
    write_zip(
        &pack,
        &[
            ("minutes/june.txt", "The board postponed the new pier in June."),
            ("minutes/august.txt", "A dredger arrives in August."),
        ],
    );
    set_mtime(&pack, SystemTime::now() + Duration::from_secs(60));
    let mut mailbox = std::fs::read_to_string(&mbox).unwrap();
    mailbox.push_str(&message("verwaltung@example.org", "Re: Aufzug", "Der Monteur kommt."));
    std::fs::write(&mbox, mailbox).unwrap();
    set_mtime(&mbox, SystemTime::now() + Duration::from_secs(60));
    let changed = lib.index(config.clone(), &[docs.path()]).await;
    assert_eq!((changed.added, changed.updated, changed.failed), (2, 2, 0), "{changed:?}");
    let engine = Engine::open(config.clone()).await.unwrap();
    assert_eq!(
        paths(engine.documents().await.unwrap()),
        [
            "/pack.zip",
            "/pack.zip/minutes/august.txt",
            "/pack.zip/minutes/june.txt",
            "/verwaltung.mbox",
            "/verwaltung.mbox/message 1",
            "/verwaltung.mbox/message 2"
        ]
    );
    assert!(engine.search("harbour fees", SearchMode::Text, 5).await.unwrap().is_empty());
    assert!(engine.search("approved", SearchMode::Text, 5).await.unwrap().is_empty());
    let hits = engine.search("Monteur", SearchMode::Text, 5).await.unwrap();
    assert!(hits[0].doc_path.ends_with("verwaltung.mbox/message 2"), "{hits:?}");
    let status = engine.status().await.unwrap();
    assert_eq!((status.chunks, status.text_index_chunks), (4, 4));
    drop(engine);

    // Removing the archive removes what it held; deleting the mailbox too.
    let engine = Engine::open_for_write(config.clone()).await.unwrap();
    assert_eq!(engine.remove(std::slice::from_ref(&pack)).await.unwrap(), 3);
    assert_eq!(
        paths(engine.documents().await.unwrap()),
        ["/verwaltung.mbox", "/verwaltung.mbox/message 1", "/verwaltung.mbox/message 2"]
    );
    drop(engine);
    std::fs::remove_file(&pack).unwrap();
    std::fs::remove_file(&mbox).unwrap();
    let gone = lib.index(config.clone(), &[docs.path()]).await;
    assert_eq!(gone.removed, 3, "{gone:?}");
    let engine = Engine::open(config).await.unwrap();
    let left = engine.documents().await.unwrap();
    assert!(left.is_empty(), "{left:?}");
    let status = engine.status().await.unwrap();
    assert_eq!((status.chunks, status.text_index_chunks), (0, 0));
}
