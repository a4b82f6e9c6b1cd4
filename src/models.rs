//! Finds model files in the local models folder, in Quarry's own layout (`<dir>/<name>/`) and
//! in the Hugging Face cache layout (`<dir>/models--org--name/snapshots/<rev>/`). Never downloads.

use std::path::{Path, PathBuf};

/// The embedding model used when none is configured, and whose tokenizer sizes chunks.
pub const DEFAULT_EMBEDDER: &str = "sentence-transformers/all-MiniLM-L6-v2";

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
