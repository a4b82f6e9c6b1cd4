//! Shared test helpers: temporary libraries, the shared test data folder, and running the
//! `quarry` binary.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use quarry::{CancelToken, Engine, EngineConfig, IndexReport};

/// The repository root.
pub(crate) fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The shared test data (`QUARRY_TEST_DATA`, else `../shared/data`), or `None` with a note on
/// stderr so a skipped test says why.
pub(crate) fn test_data(test: &str) -> Option<PathBuf> {
    let dir = std::env::var_os("QUARRY_TEST_DATA")
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("../shared/data"));
    if dir.is_dir() {
        Some(dir)
    } else {
        eprintln!("SKIPPED {test}: no test data at {} (set QUARRY_TEST_DATA)", dir.display());
        None
    }
}

/// The path of the `quarry` binary under test.
pub(crate) fn quarry_bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_quarry"))
}

/// A library in a temporary folder, with the extraction worker set to the real binary.
pub(crate) struct TempLibrary {
    pub(crate) dir: tempfile::TempDir,
}

impl TempLibrary {
    pub(crate) fn new() -> Self {
        // Not hidden (tempfile's default `.tmp` prefix is): adding a hidden folder asks first.
        Self { dir: tempfile::Builder::new().prefix("quarry-test-").tempdir().unwrap() }
    }

    pub(crate) fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Engine settings for this library; extraction isolated in the `quarry` worker.
    pub(crate) fn config(&self) -> EngineConfig {
        let mut config =
            EngineConfig { data_dir: self.path().to_owned(), ..EngineConfig::default() };
        config.extraction.worker_command =
            Some(vec![quarry_bin().to_string_lossy().into_owned(), "__extract-worker".into()]);
        config
    }

    /// Settings with extraction in this process (faster, for text fixtures).
    pub(crate) fn in_process_config(&self) -> EngineConfig {
        EngineConfig { data_dir: self.path().to_owned(), ..EngineConfig::default() }
    }

    pub(crate) async fn index(&self, config: EngineConfig, paths: &[&Path]) -> IndexReport {
        let engine = Engine::open_for_write(config).await.unwrap();
        let paths: Vec<PathBuf> = paths.iter().map(|p| p.to_path_buf()).collect();
        engine.index(&paths, &mut |_| {}, &CancelToken::new()).await.unwrap()
    }

    /// Runs `quarry --data-dir <this library> args...`.
    pub(crate) fn run(&self, args: &[&str]) -> Output {
        quarry(self.path(), args)
    }
}

/// Runs the binary with a data folder and no models folder.
pub(crate) fn quarry(data_dir: &Path, args: &[&str]) -> Output {
    Command::new(quarry_bin())
        .arg("--data-dir")
        .arg(data_dir)
        .arg("--models-dir")
        .arg(data_dir.join("no-models"))
        .args(args)
        .env_remove("QUARRY_LOG")
        .output()
        .unwrap()
}

/// Parses a command's stdout as JSON, failing with its stderr when it did not succeed.
pub(crate) fn json_of(output: &Output) -> serde_json::Value {
    assert!(
        output.status.success(),
        "command failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&output.stdout)))
}

/// A real embedder folder built by `../shared/data/fetch-multilingual-e5.sh` under the real
/// models folder (`make test` builds it), or `None` with a note on stderr.
pub(crate) fn real_model_dir(test: &str, folder: &str) -> Option<PathBuf> {
    let dir = std::env::var_os("QUARRY_REAL_MODELS").map(PathBuf::from).or_else(|| {
        std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/quarry/real-models"))
    })?;
    let path = dir.join(folder);
    if path.join("model.safetensors").is_file() {
        Some(path)
    } else {
        eprintln!(
            "SKIPPED {test}: no {} (run ../shared/data/fetch-multilingual-e5.sh, or `make test`)",
            path.display()
        );
        None
    }
}

/// A real checkpoint fetched by `../shared/data/fetch-real-models.sh` (`QUARRY_REAL_MODELS`,
/// else `~/.cache/quarry/real-models`; `make test` fetches them), or `None` with a note on
/// stderr so a skipped test says why.
pub(crate) fn real_model(test: &str, file: &str) -> Option<PathBuf> {
    let dir = std::env::var_os("QUARRY_REAL_MODELS").map(PathBuf::from).or_else(|| {
        std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache/quarry/real-models"))
    })?;
    let path = dir.join(file);
    if path.is_file() {
        Some(path)
    } else {
        eprintln!(
            "SKIPPED {test}: no {} (run ../shared/data/fetch-real-models.sh, or `make test`)",
            path.display()
        );
        None
    }
}
