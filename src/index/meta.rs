//! `library.json`: the format version and the settings an index was built with, so a library
//! opened by another version or with other settings asks for a re-index instead of returning
//! nonsense. Also the library's writer lock.

use std::fs::File;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};

/// Version of the on-disk layout. Bump it when tables or the text index change shape.
pub const FORMAT_VERSION: u32 = 2;

/// The embedding model a library's vectors come from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmbedderMeta {
    /// Model id.
    pub id: String,
    /// Vector length.
    pub dimensions: usize,
}

/// The contents of `library.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LibraryMeta {
    /// On-disk format version.
    pub format_version: u32,
    /// How chunks were sized ([`crate::chunk::Chunker::description`]); empty before the first run.
    pub chunker: String,
    /// The embedder of the vectors; `None` for a text-only library.
    #[serde(default)]
    pub embedder: Option<EmbedderMeta>,
    /// Folders and files the user added, absolute.
    pub sources: Vec<PathBuf>,
    /// When the library was created (RFC 3339).
    pub created_at: String,
}

impl LibraryMeta {
    fn new() -> Self {
        Self {
            format_version: FORMAT_VERSION,
            chunker: String::new(),
            embedder: None,
            sources: Vec::new(),
            created_at: chrono::Utc::now().to_rfc3339(),
        }
    }

    fn path(dir: &Path) -> PathBuf {
        dir.join("library.json")
    }

    /// Reads `library.json` from `dir`, or starts a new one; refuses other format versions.
    pub fn load_or_new(dir: &Path) -> Result<Self> {
        let path = Self::path(dir);
        match std::fs::read(&path) {
            Ok(bytes) => {
                Self::parse(&bytes, &path.display().to_string(), &dir.display().to_string())
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::new()),
            Err(e) => Err(Error::io(path, e)),
        }
    }

    /// A new library's metadata (no sources, no chunker yet).
    pub fn fresh() -> Self {
        Self::new()
    }

    /// Reads a `library.json` found at `origin` (a file or an object's address) for the
    /// library at `library`; refuses other format versions.
    pub fn parse(bytes: &[u8], origin: &str, library: &str) -> Result<Self> {
        let meta: LibraryMeta = serde_json::from_slice(bytes).map_err(|e| {
            Error::user(format!("{origin} is damaged ({e}); delete the library and re-index"))
        })?;
        if meta.format_version != FORMAT_VERSION {
            return Err(Error::user(format!(
                "the library in {library} has format {} but this Quarry reads format {FORMAT_VERSION}; \
                 re-index into a new library (another data folder or s3:// prefix)",
                meta.format_version
            )));
        }
        Ok(meta)
    }

    /// The file's contents.
    pub fn to_json(&self) -> Result<Vec<u8>> {
        serde_json::to_vec_pretty(self).map_err(|e| Error::internal("encode library.json", e))
    }

    /// Writes `library.json` atomically (write, then rename).
    pub fn save(&self, dir: &Path) -> Result<()> {
        let path = Self::path(dir);
        let tmp = dir.join("library.json.tmp");
        std::fs::write(&tmp, self.to_json()?).map_err(|e| Error::io(&tmp, e))?;
        std::fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))?;
        Ok(())
    }
}

/// Held while a process writes to the library; a second writer gets a clear error.
/// The operating system releases it when the process dies, so a crash never leaves it stuck.
#[derive(Debug)]
pub struct WriterLock {
    _file: File,
}

impl WriterLock {
    /// Takes the lock on the library in `dir`.
    pub fn acquire(dir: &Path) -> Result<Self> {
        let path = dir.join("writer.lock");
        let file = File::create(&path).map_err(|e| Error::io(&path, e))?;
        match file.try_lock() {
            Ok(()) => Ok(Self { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => Err(Error::user(format!(
                "another Quarry process is writing to the library in {}; wait for it to finish",
                dir.display()
            ))),
            Err(std::fs::TryLockError::Error(e)) => Err(Error::io(path, e)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn meta_round_trips_and_rejects_other_formats() {
        let dir = tempfile::tempdir().unwrap();
        let mut meta = LibraryMeta::load_or_new(dir.path()).unwrap();
        meta.sources.push(PathBuf::from("/docs"));
        meta.save(dir.path()).unwrap();
        assert_eq!(LibraryMeta::load_or_new(dir.path()).unwrap(), meta);
        meta.format_version = 99;
        meta.save(dir.path()).unwrap();
        let err = LibraryMeta::load_or_new(dir.path()).unwrap_err();
        assert!(err.to_string().contains("format 99"), "{err}");
    }

    #[test]
    fn second_writer_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let first = WriterLock::acquire(dir.path()).unwrap();
        assert!(
            WriterLock::acquire(dir.path()).unwrap_err().to_string().contains("another Quarry")
        );
        drop(first);
        WriterLock::acquire(dir.path()).unwrap();
    }
}
