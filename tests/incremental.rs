//! Incremental indexing: unchanged files are skipped, touched files are re-hashed but not
//! re-indexed, edited files replace their chunks, deleted files leave the library.

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
