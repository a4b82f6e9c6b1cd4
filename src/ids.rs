//! Newtype identifiers, so a document id is never passed where a chunk id belongs.

use std::fmt;
use std::path::Path;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// Identifies a document by its absolute path: the same file keeps its id across re-indexing.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct DocumentId(pub String);

impl DocumentId {
    /// The id of the document at `path` (expected to be absolute and normalised).
    pub fn for_path(path: &Path) -> Self {
        let digest = Sha256::digest(path.to_string_lossy().as_bytes());
        DocumentId(hex(&digest[..8]))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for DocumentId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Identifies one chunk: its document, the content version it came from, and its position.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct ChunkId(pub String);

impl ChunkId {
    /// The id of chunk `ordinal` of `doc` whose content hashes to `sha256` (hex).
    pub fn new(doc: &DocumentId, sha256: &str, ordinal: u32) -> Self {
        let version = sha256.get(..8).unwrap_or(sha256);
        ChunkId(format!("{doc}-{version}-{ordinal:05}"))
    }

    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for ChunkId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Lower-case hex of `bytes`.
pub fn hex(bytes: &[u8]) -> String {
    use fmt::Write;
    let mut res = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(res, "{b:02x}");
    }
    res
}

/// The SHA-256 of the file at `path`, in hex, read in 1 MiB blocks: documents (to tell a
/// changed file from a touched one), model files (the audit log, downloads) all hash this way.
pub fn sha256_file(path: &std::path::Path) -> std::io::Result<String> {
    use sha2::Digest;
    use std::io::Read;
    let mut file = std::fs::File::open(path)?;
    let mut hasher = sha2::Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok(hex(&hasher.finalize()));
        }
        hasher.update(&buf[..n]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_stable_and_distinct() {
        let a = DocumentId::for_path(Path::new("/a/b.pdf"));
        assert_eq!(a, DocumentId::for_path(Path::new("/a/b.pdf")));
        assert_ne!(a, DocumentId::for_path(Path::new("/a/c.pdf")));
        assert_eq!(a.as_str().len(), 16);
        let c = ChunkId::new(&a, "0123456789abcdef", 7);
        assert_eq!(c.as_str(), format!("{a}-01234567-00007"));
    }
}
