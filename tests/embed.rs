//! The candle embedder against the reference: all-MiniLM-L6-v2 and multilingual-e5-small
//! embeddings computed with transformers in float32 (`reference_embeddings.json` beside each).

use quarry::embed::candle_bert::{CandleEmbedder, Prefixes};
use quarry::embed::{Embedder, cosine};

use crate::support::{real_model_dir, test_data};

/// A reference sentence's token ids and embedding.
fn reference_of(sentence: &serde_json::Value) -> (Vec<u32>, Vec<f32>) {
    let numbers = |key: &str| -> Vec<f64> {
        sentence[key].as_array().unwrap().iter().map(|v| v.as_f64().unwrap()).collect()
    };
    let ids = numbers("input_ids").into_iter().map(|v| v as u32).collect();
    let embedding = numbers("embedding").into_iter().map(|v| v as f32).collect();
    (ids, embedding)
}

#[test]
fn minilm_matches_the_reference_embeddings() {
    let Some(data) = test_data("minilm_matches_the_reference_embeddings") else { return };
    let dir = data.join("models/all-MiniLM-L6-v2");
    let embedder =
        CandleEmbedder::load(&dir, "sentence-transformers/all-MiniLM-L6-v2", Prefixes::default())
            .unwrap();
    assert_eq!((embedder.dimensions(), embedder.max_input_tokens()), (384, 256));
    let reference: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(dir.join("reference_embeddings.json")).unwrap(),
    )
    .unwrap();
    let sentences = reference["sentences"].as_array().unwrap();
    let texts: Vec<&str> = sentences.iter().map(|s| s["text"].as_str().unwrap()).collect();
    // One batch of mixed lengths: padding and length sorting must not change any vector.
    let vectors = embedder.embed_documents(&texts).unwrap();
    for (sentence, vector) in sentences.iter().zip(&vectors) {
        let text = sentence["text"].as_str().unwrap();
        let (ids, expected) = reference_of(sentence);
        assert_eq!(embedder.token_ids(text).unwrap(), ids, "{text}");
        let similarity = cosine(vector, &expected);
        assert!(similarity > 0.9999, "{text}: cosine {similarity}");
        let norm: f32 = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
        assert!((norm - 1.0).abs() < 1e-4, "{text}: norm {norm}");
    }
    // A query is embedded the same way (this model has no prefixes).
    let query = embedder.embed_query(texts[0]).unwrap();
    assert!(cosine(&query, &vectors[0]) > 0.99999);
}

#[test]
fn multilingual_e5_matches_the_reference_embeddings() {
    const TEST: &str = "multilingual_e5_matches_the_reference_embeddings";
    let Some(folder) = real_model_dir(TEST, "multilingual-e5-small-q4dq") else { return };
    // Installed as a user has it, so the catalog's prefixes and gate come with it.
    let models = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(&folder, models.path().join("multilingual-e5-small")).unwrap();
    let config =
        quarry::models::embedder_config(models.path(), "intfloat/multilingual-e5-small").unwrap();
    assert_eq!(
        (config.query_prefix.as_str(), config.passage_prefix.as_str()),
        ("query: ", "passage: ")
    );
    assert!(config.gate.is_some(), "the catalog carries a gate calibrated for e5");
    let prefixes = Prefixes { query: config.query_prefix, passage: config.passage_prefix };
    let embedder = CandleEmbedder::load(&config.dir, &config.id, prefixes).unwrap();
    assert_eq!((embedder.dimensions(), embedder.max_input_tokens()), (384, 512));
    let reference: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(folder.join("reference_embeddings.json")).unwrap(),
    )
    .unwrap();
    let sentences = reference["sentences"].as_array().unwrap();
    let mut passages = Vec::new();
    for sentence in sentences {
        let text = sentence["text"].as_str().unwrap();
        let (ids, expected) = reference_of(sentence);
        assert_eq!(embedder.token_ids(text).unwrap(), ids, "{text}");
        // The reference texts carry their prefix; the embedder adds it from the catalog.
        if let Some(query) = text.strip_prefix("query: ") {
            let vector = embedder.embed_query(query).unwrap();
            let similarity = cosine(&vector, &expected);
            assert!(similarity > 0.9999, "{text}: cosine {similarity}");
        } else {
            let passage = text.strip_prefix("passage: ").expect("query: or passage: prefix");
            passages.push((passage, expected));
        }
    }
    assert!(passages.len() >= 2, "the reference has passages");
    // One batch of mixed lengths: padding and length sorting must not change any vector.
    let texts: Vec<&str> = passages.iter().map(|(t, _)| *t).collect();
    let vectors = embedder.embed_documents(&texts).unwrap();
    for ((text, expected), vector) in passages.iter().zip(&vectors) {
        let similarity = cosine(vector, expected);
        assert!(similarity > 0.9999, "passage: {text}: cosine {similarity}");
    }
}
