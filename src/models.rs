//! Finds model files in the local models folder, in Quarry's own layout (`<dir>/<name>/`) and
//! in the Hugging Face cache layout (`<dir>/models--org--name/snapshots/<rev>/`). Never downloads.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::config::EmbedderConfig;

/// The embedding model used when none is configured, and whose tokenizer sizes chunks.
pub const DEFAULT_EMBEDDER: &str = "sentence-transformers/all-MiniLM-L6-v2";

/// The catalog shipped with Quarry (`assets/models.toml`).
const CATALOG: &str = include_str!("../assets/models.toml");

/// One model of the catalog.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CatalogEntry {
    /// Hugging Face style id ("org/name").
    pub id: String,
    /// "embed", "rerank" or "generate".
    pub role: String,
    /// Architecture family.
    pub family: String,
    /// Files the model folder must hold.
    pub files: Vec<String>,
    /// Licence of the weights.
    pub license: String,
    /// Approximate download size.
    pub size_mb: u32,
    /// Languages it is meant for.
    #[serde(default)]
    pub languages: Vec<String>,
    /// Pooling of token vectors (embedders).
    #[serde(default)]
    pub pooling: String,
    /// Prefix for queries (embedders).
    #[serde(default)]
    pub query_prefix: String,
    /// Prefix for passages (embedders).
    #[serde(default)]
    pub passage_prefix: String,
}

#[derive(Deserialize)]
struct Catalog {
    model: Vec<CatalogEntry>,
}

/// Every model of the catalog.
pub fn catalog() -> Vec<CatalogEntry> {
    // The catalog is compiled in and checked by a test, so a parse failure cannot reach users.
    toml::from_str::<Catalog>(CATALOG).map(|c| c.model).unwrap_or_default()
}

/// The catalog entry of `id`.
pub fn catalog_entry(id: &str) -> Option<CatalogEntry> {
    catalog().into_iter().find(|m| m.id == id)
}

/// The embedder settings for model `id` installed under `models_dir`, if it is there.
pub fn embedder_config(models_dir: &Path, id: &str) -> Option<EmbedderConfig> {
    let dir = find_model(models_dir, id)?;
    if !dir.join("model.safetensors").is_file() {
        return None;
    }
    let entry = catalog_entry(id);
    Some(EmbedderConfig {
        id: id.to_owned(),
        dir,
        query_prefix: entry.as_ref().map(|e| e.query_prefix.clone()).unwrap_or_default(),
        passage_prefix: entry.map(|e| e.passage_prefix).unwrap_or_default(),
    })
}

/// The folder holding model `id` ("org/name" or "name") under `models_dir`, if installed:
/// `<dir>/name`, `<dir>/org/name`, or the newest snapshot in the Hugging Face cache layout.
pub fn find_model(models_dir: &Path, id: &str) -> Option<PathBuf> {
    let name = id.rsplit('/').next().unwrap_or(id);
    let candidates = [models_dir.join(name), models_dir.join(id)];
    if let Some(dir) = candidates
        .into_iter()
        .find(|d| d.join("config.json").is_file() || d.join("tokenizer.json").is_file())
    {
        return Some(dir);
    }
    let cache_name = format!("models--{}", id.replace('/', "--"));
    for base in [models_dir.join(&cache_name), models_dir.join("hub").join(&cache_name)] {
        let snapshots = base.join("snapshots");
        let Ok(entries) = std::fs::read_dir(&snapshots) else { continue };
        let mut dirs: Vec<(std::time::SystemTime, PathBuf)> = entries
            .flatten()
            .filter(|e| e.path().is_dir())
            .map(|e| {
                (e.metadata().and_then(|m| m.modified()).unwrap_or(std::time::UNIX_EPOCH), e.path())
            })
            .collect();
        dirs.sort();
        if let Some((_, dir)) = dirs.pop() {
            return Some(dir);
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_parses_and_has_the_default_embedder() {
        let catalog = catalog();
        assert!(catalog.len() >= 2);
        let e5 = catalog_entry("intfloat/multilingual-e5-small").unwrap();
        assert_eq!(
            (e5.query_prefix.as_str(), e5.passage_prefix.as_str()),
            ("query: ", "passage: ")
        );
        assert_eq!(catalog_entry(DEFAULT_EMBEDDER).unwrap().role, "embed");
    }

    #[test]
    fn finds_both_layouts() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(find_model(dir.path(), DEFAULT_EMBEDDER), None);
        let hf = dir.path().join("models--sentence-transformers--all-MiniLM-L6-v2/snapshots/abc");
        std::fs::create_dir_all(&hf).unwrap();
        assert_eq!(find_model(dir.path(), DEFAULT_EMBEDDER), Some(hf));
        let own = dir.path().join("all-MiniLM-L6-v2");
        std::fs::create_dir_all(&own).unwrap();
        std::fs::write(own.join("tokenizer.json"), "{}").unwrap();
        assert_eq!(find_model(dir.path(), DEFAULT_EMBEDDER), Some(own));
    }
}
