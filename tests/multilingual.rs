//! German as a first-class language, end to end with the real multilingual-e5-small folder
//! (`../shared/data/fetch-multilingual-e5.sh`): German questions reach German documents through
//! stems, spellings and compound parts, and English documents through the multilingual vectors;
//! answers and refusals come in the question's language, cited by page.

use quarry::api::{AskOptions, SearchMode};
use quarry::language::TextLanguage;
use quarry::{CancelToken, Engine};

use crate::support::{TempLibrary, real_model_dir};

const TEST: &str = "german_questions_reach_german_and_english_documents";

#[tokio::test]
async fn german_questions_reach_german_and_english_documents() {
    let Some(folder) = real_model_dir(TEST, "multilingual-e5-small-q4dq") else { return };
    let models = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(&folder, models.path().join("multilingual-e5-small")).unwrap();
    let lib = TempLibrary::new();
    let docs = lib.path().join("docs");
    std::fs::create_dir_all(&docs).unwrap();
    std::fs::write(
        docs.join("mietvertrag.md"),
        "# Mietvertrag\n\nDie Kündigungsfrist für die Wohnung in der Hauptstraße 5 beträgt drei \
         Monate zum Monatsende. Die Miete ist bis zum dritten Werktag eines Monats zu zahlen.\n",
    )
    .unwrap();
    std::fs::write(
        docs.join("garden.md"),
        "# Garden\n\nThe community garden opens at seven in the morning. Roses are watered every \
         evening by the volunteers, and the compost is turned on Saturdays.\n",
    )
    .unwrap();
    std::fs::write(
        docs.join("train.md"),
        "# Travel\n\nThe night train to Vienna leaves from platform four at 22:40 and arrives \
         at 8:15 the next morning.\n",
    )
    .unwrap();
    // A new library takes multilingual-e5-small when it is installed.
    let folder_models = quarry::models::discover(models.path());
    let mut config = folder_models.engine_config(lib.path().to_owned(), false);
    assert_eq!(
        config.embedder.as_ref().map(|e| e.id.as_str()),
        Some("intfloat/multilingual-e5-small")
    );
    config.extraction = lib.in_process_config().extraction;
    let report = lib.index(config.clone(), &[&docs]).await;
    assert_eq!(report.failed, 0, "{:?}", report.failures);
    let engine = Engine::open(config).await.unwrap();

    // BM25 alone: a compound part, an ae/ß spelling and an inflected form find the lease.
    for query in ["Frist", "Hauptstrasse", "Kuendigungsfristen", "Mieten"] {
        let hits = engine.search(query, SearchMode::Text, 3).await.unwrap();
        assert!(
            hits.first().is_some_and(|h| h.doc_path.ends_with("mietvertrag.md")),
            "{query}: {hits:?}"
        );
    }

    let evidence = AskOptions { evidence: true, ..AskOptions::default() };
    let cancel = CancelToken::new();
    // German question, German document.
    let answer = engine
        .ask("Wie lang ist die Kündigungsfrist der Wohnung?", &evidence, &mut |_: &str| {}, &cancel)
        .await
        .unwrap();
    assert!(!answer.abstained, "{answer:?}");
    assert_eq!(answer.language, TextLanguage::German);
    assert!(answer.citations[0].doc_path.ends_with("mietvertrag.md"), "{:?}", answer.citations);
    assert!(answer.answer.contains("drei Monate"), "{}", answer.answer);
    // German question, English document: only the multilingual vectors connect them.
    let answer = engine
        .ask("Wann fährt der Nachtzug nach Wien ab?", &evidence, &mut |_: &str| {}, &cancel)
        .await
        .unwrap();
    assert!(!answer.abstained, "{answer:?}");
    assert!(answer.citations[0].doc_path.ends_with("train.md"), "{:?}", answer.citations);
    assert!(answer.answer.contains("22:40"), "{}", answer.answer);
    // Nothing about it in the library: refused, in German.
    let answer = engine
        .ask("Wer hat die Relativitätstheorie entwickelt?", &evidence, &mut |_: &str| {}, &cancel)
        .await
        .unwrap();
    assert!(answer.abstained, "{answer:?}");
    assert_eq!(answer.answer, "Ich konnte die Antwort in Ihren Dokumenten nicht finden.");
    assert!(answer.abstain_reason.as_deref().is_some_and(|r| r.starts_with("keine Passage")));
    // The same in English stays English.
    let answer = engine
        .ask("Who developed the theory of relativity?", &evidence, &mut |_: &str| {}, &cancel)
        .await
        .unwrap();
    assert!(answer.abstained, "{answer:?}");
    assert_eq!(answer.answer, "I could not find the answer in your documents.");
}
