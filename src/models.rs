//! Finds model files in the local models folder, in Quarry's own layout (`<dir>/<name>/`) and
//! in the Hugging Face cache layout (`<dir>/models--org--name/snapshots/<rev>/`). Never downloads.
//! [`discover`] is the one place that turns a folder into models, for the CLI, `quarry serve`
//! and the desktop app alike; it walks the folder and reads model headers only when a question
//! needs them, and once.

pub mod pull;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use serde::{Deserialize, Serialize};

use crate::config::EmbedderConfig;

/// The embedding model used when none is configured, and whose tokenizer sizes chunks.
pub const DEFAULT_EMBEDDER: &str = "sentence-transformers/all-MiniLM-L6-v2";

/// The catalog shipped with Quarry (`assets/models.toml`).
const CATALOG: &str = include_str!("../assets/models.toml");

/// One model of the catalog.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
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
    /// The retrieval gate fitted to this embedder (`quarry eval qa --evidence --calibrate`).
    #[serde(default)]
    pub gate_threshold: Option<f32>,
    /// Weight of embedding similarity in that gate's evidence score.
    #[serde(default)]
    pub gate_cosine_weight: Option<f32>,
    /// The gate for passages in another language than the question (multilingual embedders).
    #[serde(default)]
    pub gate_cross_language_threshold: Option<f32>,
    /// Folder name under the models folder (default: the last part of the id).
    #[serde(default)]
    pub folder: Option<String>,
    /// One line on what the model is good for.
    #[serde(default)]
    pub good_for: String,
    /// Memory it needs to run, roughly.
    #[serde(default)]
    pub ram_mb: Option<u32>,
    /// The files `quarry models pull` fetches (none: import only).
    #[serde(default)]
    pub download: Vec<DownloadFile>,
}

impl CatalogEntry {
    /// The folder the model is installed in, under the models folder.
    pub fn folder_name(&self) -> String {
        self.folder
            .clone()
            .unwrap_or_else(|| self.id.rsplit('/').next().unwrap_or(&self.id).to_owned())
    }
}

/// One file of a catalog model, where to get it and what it must be. Trust comes from the
/// sha256, not from the transport: any source that serves the same bytes will do.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, Serialize)]
pub struct DownloadFile {
    /// Path inside the model folder.
    pub path: String,
    /// Size in bytes, when confirmed.
    #[serde(default)]
    pub size: Option<u64>,
    /// SHA-256 of the bytes, when confirmed; a file without one is accepted on first download
    /// (on its size when known) and its hash recorded for later checks.
    #[serde(default)]
    pub sha256: Option<String>,
    /// How the hash was confirmed (or why it could not be).
    #[serde(default)]
    pub sha256_from: String,
    /// URLs (or folders) serving the file, tried in order.
    pub sources: Vec<String>,
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
    let gate = entry.as_ref().and_then(|e| {
        Some(crate::config::GateSettings {
            threshold: e.gate_threshold?,
            cosine_weight: e.gate_cosine_weight?,
            cross_language_threshold: e.gate_cross_language_threshold,
        })
    });
    Some(EmbedderConfig {
        id: id.to_owned(),
        dir,
        query_prefix: entry.as_ref().map(|e| e.query_prefix.clone()).unwrap_or_default(),
        passage_prefix: entry.map(|e| e.passage_prefix).unwrap_or_default(),
        gate,
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

/// A model found in the models folder.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct InstalledModel {
    /// Catalog id, or the folder / file name.
    pub id: String,
    /// "generate" or "embed".
    pub role: String,
    /// Architecture (GGUF `general.architecture`, or the embedder's catalog family).
    pub family: String,
    /// Quantization of a generator ("Q4_K_M", ...), "F32" for an embedder.
    pub quantization: String,
    /// Number of weights, when the header says.
    pub parameters: Option<u64>,
    /// Bytes on disk.
    pub bytes: u64,
    /// The file (generators) or folder (embedders).
    pub path: PathBuf,
    /// Why the model cannot be used, if it cannot.
    pub problem: Option<String>,
}

/// Every generator (`*.gguf`, or a Hugging Face checkpoint folder of a causal language model)
/// and embedder (a folder with `config.json` and `model.safetensors`) under `models_dir`, in Quarry's layout or the Hugging Face cache
/// layout, sorted by role and id.
fn installed(models_dir: &Path) -> Vec<InstalledModel> {
    let mut found = Vec::new();
    let walker = ignore::WalkBuilder::new(models_dir)
        .standard_filters(false)
        .follow_links(true)
        .max_depth(Some(6))
        .build();
    for entry in walker.flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|e| e.eq_ignore_ascii_case("gguf")) && path.is_file() {
            found.push(describe_generator(path));
        } else if path.is_dir() && path.join("config.json").is_file() {
            // Embedders come as one file; generators may come in shards.
            let single = path.join("model.safetensors").is_file();
            if is_generator_folder(path)
                && (single || path.join("model.safetensors.index.json").is_file())
            {
                found.push(describe_generator(path));
            } else if single {
                found.push(describe_embedder(path));
            }
        }
    }
    found.sort_by(|a, b| (&a.role, &a.id, &a.path).cmp(&(&b.role, &b.id, &b.path)));
    found
}

/// Whether the checkpoint folder `dir` holds a causal language model (`config.json` names a
/// `*ForCausalLM` architecture) rather than an embedder.
fn is_generator_folder(dir: &Path) -> bool {
    std::fs::read(dir.join("config.json"))
        .ok()
        .and_then(|b| serde_json::from_slice::<serde_json::Value>(&b).ok())
        .and_then(|c| {
            c["architectures"]
                .as_array()
                .map(|a| a.iter().any(|v| v.as_str().is_some_and(|n| n.ends_with("ForCausalLM"))))
        })
        .unwrap_or(false)
}

fn describe_generator(path: &Path) -> InstalledModel {
    let mut bytes = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    let mut id = match path.is_dir() {
        true => crate::generate::folder_id(path),
        false => crate::generate::id_from_path(path),
    };
    if id.contains('/') && path.is_file() {
        // A repository holds several quantizations: name the file too.
        let file = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        id = format!("{id}/{file}");
    }
    match crate::generate::candle_gguf::describe(path) {
        Ok(info) => {
            let supported = crate::generate::candle_gguf::runs(path, &info.architecture);
            bytes = info.file_bytes;
            InstalledModel {
                id,
                role: "generate".into(),
                problem: (!supported)
                    .then(|| format!("architecture \"{}\" is not supported", info.architecture)),
                family: info.architecture,
                quantization: info.quantization,
                parameters: Some(info.parameters),
                bytes,
                path: path.to_path_buf(),
            }
        }
        Err(e) => InstalledModel {
            id,
            role: "generate".into(),
            family: String::new(),
            quantization: String::new(),
            parameters: None,
            bytes,
            path: path.to_path_buf(),
            problem: Some(e.to_string()),
        },
    }
}

fn describe_embedder(dir: &Path) -> InstalledModel {
    let name = crate::generate::folder_id(dir);
    let entry = catalog()
        .into_iter()
        .find(|m| m.role == "embed" && (m.id == name || m.id.rsplit('/').next() == Some(&name)));
    let bytes = std::fs::metadata(dir.join("model.safetensors")).map(|m| m.len()).unwrap_or(0);
    InstalledModel {
        id: entry.as_ref().map(|e| e.id.clone()).unwrap_or(name),
        role: "embed".into(),
        family: entry.map(|e| e.family).unwrap_or_else(|| "bert".into()),
        quantization: "F32".into(),
        parameters: Some(bytes / 4),
        bytes,
        path: dir.to_path_buf(),
        problem: (!dir.join("tokenizer.json").is_file()).then(|| "no tokenizer.json".to_owned()),
    }
}

/// A models folder, as Quarry finds models in it. Cheap to make: the folder is walked and
/// generator headers read the first time a question needs them (which generators are there,
/// which one is the default), then kept.
#[derive(Debug)]
pub struct ModelFolder {
    dir: PathBuf,
    found: OnceLock<Vec<InstalledModel>>,
}

/// The models in `dir` (read lazily; see [`ModelFolder`]).
pub fn discover(dir: &Path) -> ModelFolder {
    ModelFolder { dir: dir.to_owned(), found: OnceLock::new() }
}

impl ModelFolder {
    /// The folder.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Every model in the folder (walked, and generator headers read, on the first call).
    pub fn installed(&self) -> &[InstalledModel] {
        self.found.get_or_init(|| installed(&self.dir))
    }

    /// The embedder settings for model `id`, if it is installed (no header is read).
    pub fn embedder(&self, id: &str) -> Option<EmbedderConfig> {
        embedder_config(&self.dir, id)
    }

    /// The generator `name_or_path` names: an existing file or checkpoint folder (no walk), or
    /// the id or file name (without `.gguf`) of an installed generator.
    pub fn find_generator(&self, name_or_path: &str) -> Option<PathBuf> {
        let direct = Path::new(name_or_path);
        if direct.is_file() || direct.join("config.json").is_file() {
            return Some(direct.to_path_buf());
        }
        let wanted = name_or_path.trim_end_matches(".gguf");
        self.installed().iter().filter(|m| m.role == "generate").find_map(|m| {
            let stem = m.path.file_stem().map(|s| s.to_string_lossy().into_owned());
            (m.id == wanted || stem.as_deref() == Some(wanted)).then(|| m.path.clone())
        })
    }

    /// The generator answers use when none is named: the first installed one that Quarry can
    /// run.
    pub fn default_generator(&self) -> Option<PathBuf> {
        self.installed()
            .iter()
            .find(|m| m.role == "generate" && m.problem.is_none())
            .map(|m| m.path.clone())
    }

    /// Settings for the library in `data_dir` with the models chosen for it:
    /// - the embedder: the one the library was built with (another would need a re-index), else
    ///   the one chosen with `quarry models use`, else multilingual-e5-small when installed (our
    ///   users write German as well as English), else all-MiniLM-L6-v2; its tokenizer sizes
    ///   chunks. Not installed: text search only.
    /// - with `with_generator`, the generator chosen with `quarry models use`, else the first
    ///   installed one Quarry can run. Commands that never generate pass `false`, so they read no
    ///   model header.
    pub fn engine_config(
        &self,
        data_dir: PathBuf,
        with_generator: bool,
    ) -> crate::config::EngineConfig {
        let choice = ModelChoice::read(&data_dir);
        let built_with = crate::index::meta::LibraryMeta::load_or_new(&data_dir)
            .ok()
            .and_then(|m| m.embedder)
            .map(|e| e.id);
        let embedder_id = built_with
            .or(choice.embedder.clone())
            .or_else(|| self.embedder(MULTILINGUAL_EMBEDDER).map(|e| e.id))
            .unwrap_or_else(|| DEFAULT_EMBEDDER.to_owned());
        let embedder = self.embedder(&embedder_id);
        let generator = match (with_generator, &choice.generator) {
            (false, _) => None,
            _ if choice.quotes_only => None,
            (true, Some(name)) => self.find_generator(name).or_else(|| self.default_generator()),
            (true, None) => self.default_generator(),
        };
        let mut config = crate::config::EngineConfig {
            data_dir,
            generator,
            models_dir: Some(self.dir.clone()),
            ..crate::config::EngineConfig::default()
        };
        if let Some(embedder) = embedder {
            config.use_embedder(embedder);
        }
        crate::config::LibrarySettings::read(&config.data_dir).apply(&mut config);
        config
    }
}

/// The multilingual embedder a new library uses when it is installed and nothing else was
/// chosen.
pub const MULTILINGUAL_EMBEDDER: &str = "intfloat/multilingual-e5-small";

/// The models chosen for a library (`quarry models use`), kept in `<data dir>/models.json`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelChoice {
    /// The generator: an installed model's id or file name, or a path.
    #[serde(default)]
    pub generator: Option<String>,
    /// The embedder's catalog id (used by a new library; an existing one keeps its own).
    #[serde(default)]
    pub embedder: Option<String>,
    /// The user chose to have answers quoted, without a generator (even when one is installed).
    #[serde(default)]
    pub quotes_only: bool,
}

impl ModelChoice {
    fn path(data_dir: &Path) -> PathBuf {
        data_dir.join("models.json")
    }

    /// The choice saved for `data_dir` (nothing chosen when there is none or it is unreadable).
    pub fn read(data_dir: &Path) -> Self {
        std::fs::read(Self::path(data_dir))
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default()
    }

    /// Saves the choice for `data_dir`.
    pub fn save(&self, data_dir: &Path) -> crate::error::Result<()> {
        std::fs::create_dir_all(data_dir).map_err(|e| crate::error::Error::io(data_dir, e))?;
        let path = Self::path(data_dir);
        let json = serde_json::to_vec_pretty(self)
            .map_err(|e| crate::error::Error::internal("cannot write the model choice", e))?;
        std::fs::write(&path, json).map_err(|e| crate::error::Error::io(&path, e))
    }
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
        // Every download names https sources and a checked-or-recorded hash, and every
        // generator is of an architecture Quarry runs.
        for entry in &catalog {
            for file in &entry.download {
                assert!(!file.sources.is_empty(), "{}: {} has no source", entry.id, file.path);
                assert!(file.sources.iter().all(|s| s.starts_with("https://")), "{}", entry.id);
                assert!(
                    file.sha256.as_ref().is_none_or(|h| h.len() == 64)
                        && !file.sha256_from.is_empty(),
                    "{}: {}",
                    entry.id,
                    file.path
                );
            }
            if entry.role == "generate" {
                let runs = crate::generate::candle_gguf::SUPPORTED_ARCHITECTURES;
                assert!(runs.contains(&entry.family.as_str()), "{}: {}", entry.id, entry.family);
            }
        }
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

    #[test]
    fn a_folder_is_walked_and_headers_read_only_when_generators_are_asked_for() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("broken.gguf"), b"not a gguf file").unwrap();
        let folder = discover(dir.path());
        let config = folder.engine_config(dir.path().join("library"), false);
        assert!(config.generator.is_none());
        assert!(folder.found.get().is_none(), "no walk for a command that does not generate");
        let config = folder.engine_config(dir.path().join("library"), true);
        assert!(config.generator.is_none(), "a file that does not parse is no default");
        let listed = folder.installed();
        assert_eq!(listed.len(), 1);
        assert!(listed[0].problem.is_some(), "{:?}", listed[0]);
        // Named by path, a file is found without walking anything.
        let again = discover(dir.path());
        let path = dir.path().join("broken.gguf");
        assert_eq!(again.find_generator(path.to_str().unwrap()), Some(path));
        assert!(again.found.get().is_none());
    }

    #[test]
    fn the_chosen_and_the_built_with_embedder_win_over_the_default() {
        let dir = tempfile::tempdir().unwrap();
        let models = dir.path().join("models");
        for name in ["all-MiniLM-L6-v2", "multilingual-e5-small"] {
            let folder = models.join(name);
            std::fs::create_dir_all(&folder).unwrap();
            for file in ["config.json", "tokenizer.json", "model.safetensors"] {
                std::fs::write(folder.join(file), "{}").unwrap();
            }
        }
        let folder = discover(&models);
        let data = dir.path().join("library");
        let id = |config: crate::config::EngineConfig| config.embedder.map(|e| e.id);
        // A new library: the multilingual model when it is installed.
        assert_eq!(
            id(folder.engine_config(data.clone(), false)).as_deref(),
            Some(MULTILINGUAL_EMBEDDER)
        );
        // Chosen.
        let choice = ModelChoice {
            embedder: Some(DEFAULT_EMBEDDER.into()),
            generator: None,
            quotes_only: false,
        };
        choice.save(&data).unwrap();
        assert_eq!(
            id(folder.engine_config(data.clone(), false)).as_deref(),
            Some(DEFAULT_EMBEDDER)
        );
        // A library built with e5 keeps it, whatever is chosen.
        let mut meta = crate::index::meta::LibraryMeta::load_or_new(&data).unwrap();
        meta.embedder = Some(crate::index::meta::EmbedderMeta {
            id: MULTILINGUAL_EMBEDDER.into(),
            dimensions: 384,
        });
        meta.save(&data).unwrap();
        assert_eq!(id(folder.engine_config(data, false)).as_deref(), Some(MULTILINGUAL_EMBEDDER));
    }
}
