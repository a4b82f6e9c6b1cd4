//! Hybrid retrieval end to end with the real MiniLM embedder: a small slice of BEIR SciFact
//! indexed through the normal pipeline and scored with the same code as `quarry eval`.

use std::collections::HashSet;
use std::io::Write;

use quarry::SearchMode;
use quarry::eval::beir::{evaluate, read_qrels};

use crate::support::{TempLibrary, test_data};

/// Writes a BEIR folder with the first `n_queries` judged test queries, their relevant
/// documents, and the first `n_distractors` other documents of the corpus.
fn write_slice(
    scifact: &std::path::Path,
    out: &std::path::Path,
    n_queries: usize,
    n_distractors: usize,
) {
    let qrels = read_qrels(&scifact.join("qrels/test.tsv")).unwrap();
    let queries = std::fs::read_to_string(scifact.join("queries.jsonl")).unwrap();
    let mut kept_queries = Vec::new();
    let mut needed: HashSet<String> = HashSet::new();
    for line in queries.lines() {
        let q: serde_json::Value = serde_json::from_str(line).unwrap();
        let id = q["_id"].as_str().unwrap();
        if let Some(judged) = qrels.get(id)
            && kept_queries.len() < n_queries
        {
            needed.extend(judged.keys().cloned());
            kept_queries.push((id.to_owned(), line.to_owned()));
        }
    }
    std::fs::create_dir_all(out.join("qrels")).unwrap();
    let mut q_out = std::fs::File::create(out.join("queries.jsonl")).unwrap();
    let mut r_out = std::fs::File::create(out.join("qrels/test.tsv")).unwrap();
    writeln!(r_out, "query-id\tcorpus-id\tscore").unwrap();
    for (id, line) in &kept_queries {
        writeln!(q_out, "{line}").unwrap();
        for doc in qrels[id].keys() {
            writeln!(r_out, "{id}\t{doc}\t1").unwrap();
        }
    }
    let corpus = std::fs::read_to_string(scifact.join("corpus.jsonl")).unwrap();
    let mut c_out = std::fs::File::create(out.join("corpus.jsonl")).unwrap();
    let mut distractors = 0;
    for line in corpus.lines() {
        let doc: serde_json::Value = serde_json::from_str(line).unwrap();
        let needed_doc = needed.contains(doc["_id"].as_str().unwrap());
        if needed_doc || distractors < n_distractors {
            distractors += usize::from(!needed_doc);
            writeln!(c_out, "{line}").unwrap();
        }
    }
}

#[tokio::test]
async fn hybrid_beats_or_matches_each_retriever_on_a_scifact_slice() {
    let Some(data) = test_data("hybrid_beats_or_matches_each_retriever_on_a_scifact_slice") else {
        return;
    };
    let models = data.join("models");
    let slice = tempfile::tempdir().unwrap();
    write_slice(&data.join("beir/scifact"), slice.path(), 25, 120);
    let lib = TempLibrary::new();
    let mut config = lib.config();
    config.embedder = quarry::models::embedder_config(&models, quarry::models::DEFAULT_EMBEDDER);
    assert!(config.embedder.is_some(), "MiniLM missing from {}", models.display());
    config.tokenizer = config.embedder.as_ref().map(|e| e.dir.join("tokenizer.json"));
    let work = tempfile::tempdir().unwrap();
    let runs = evaluate(
        slice.path(),
        config,
        work.path(),
        &[SearchMode::Hybrid, SearchMode::Vector, SearchMode::Text],
    )
    .await
    .unwrap();
    let ndcg: Vec<f64> = runs.iter().map(|r| r.metrics.ndcg_10).collect();
    eprintln!("scifact slice nDCG@10 hybrid/vector/text: {ndcg:?}");
    assert_eq!(runs[0].queries, 25);
    // With ~150 documents the task is easy; these floors catch a broken retriever or fusion,
    // and the full-corpus bars are checked by `make eval`.
    for (run, floor) in runs.iter().zip([0.6, 0.5, 0.5]) {
        assert!(run.metrics.ndcg_10 >= floor, "{:?}: {:?}", run.mode, run.metrics);
        assert!(run.metrics.recall_100 >= run.metrics.recall_10);
    }
    assert!(ndcg[0] + 0.02 >= ndcg[1].min(ndcg[2]), "fusion lost to a single retriever: {ndcg:?}");
}

#[tokio::test]
async fn search_results_name_their_retrievers_and_a_text_library_refuses_vector_search() {
    let Some(data) = test_data("search_results_name_their_retrievers") else { return };
    let docs = tempfile::tempdir().unwrap();
    crate::ingest::write_fixtures(docs.path());
    let lib = TempLibrary::new();
    let mut config = lib.in_process_config();
    config.embedder =
        quarry::models::embedder_config(&data.join("models"), quarry::models::DEFAULT_EMBEDDER);
    lib.index(config.clone(), &[docs.path()]).await;
    let engine = quarry::Engine::open(config).await.unwrap();
    assert_eq!(engine.default_search_mode(), SearchMode::Hybrid);
    // "mooring place for boats" shares words with the harbour page and means the same thing.
    let hits = engine.search("where can boats be moored", SearchMode::Hybrid, 3).await.unwrap();
    assert!(hits[0].doc_path.ends_with("page.html"), "{hits:?}");
    assert!(hits[0].retrievers.contains(&"vector".to_owned()), "{:?}", hits[0]);
    let vector = engine.search("Kündigungsfrist Mietvertrag", SearchMode::Vector, 2).await.unwrap();
    assert!(vector.iter().all(|h| h.retrievers == ["vector"]));
    let status = engine.status().await.unwrap();
    assert_eq!(status.embedder.as_deref(), Some(quarry::models::DEFAULT_EMBEDDER));

    let text_only = TempLibrary::new();
    text_only.index(text_only.in_process_config(), &[docs.path()]).await;
    let engine = quarry::Engine::open(text_only.in_process_config()).await.unwrap();
    assert_eq!(engine.default_search_mode(), SearchMode::Text);
    let err = engine.search("boats", SearchMode::Hybrid, 3).await.unwrap_err();
    assert!(err.is_user_error() && err.to_string().contains("needs vectors"), "{err}");
}
