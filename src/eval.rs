//! Retrieval evaluation: the BEIR file layout and the metrics trec_eval reports, so our
//! numbers compare with published baselines.

pub mod analyzers;
pub mod beir;
pub mod metrics;
pub mod squad;

use std::io::BufRead;
use std::path::Path;

use serde::de::DeserializeOwned;

use crate::error::{Error, Result};

/// Every non-blank line of the JSON-lines file at `path`; a bad line is an error naming it.
pub fn read_jsonl<T: DeserializeOwned>(path: &Path) -> Result<Vec<T>> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    let mut res = Vec::new();
    for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| Error::io(path, e))?;
        if line.trim().is_empty() {
            continue;
        }
        res.push(
            serde_json::from_str(&line)
                .map_err(|e| Error::user(format!("{}: line {}: {e}", path.display(), n + 1)))?,
        );
    }
    Ok(res)
}
