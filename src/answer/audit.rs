//! The audit log: one JSON line per answer in `<library>/audit/answers.jsonl`, holding what a
//! reviewer needs to show how an answer was produced and to reproduce it (DESIGN.md §6), and
//! its export as JSON lines or a Markdown report.

use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::api::{AnswerMode, AnswerTimings, Citation, GateDecision};
use crate::error::{Error, Result};

/// A passage as the audit log records it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditPassage {
    /// Its number in the prompt.
    pub n: u32,
    /// The chunk.
    pub chunk_id: String,
    /// The document.
    pub doc_path: String,
    /// The document's content hash when indexed.
    pub doc_sha256: String,
    /// Its page.
    pub page: u32,
}

/// The model that wrote an answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditModel {
    /// File name of the model.
    pub id: String,
    /// SHA-256 of the model file.
    pub sha256: String,
}

/// The retrieval settings of an answer.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRetrieval {
    /// Search mode.
    pub mode: String,
    /// Passages retrieved before selection.
    pub k: usize,
    /// The gate's decision.
    pub gate: GateDecision,
}

/// How the model was asked and how its writing ended, for generated answers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditGeneration {
    /// The prompt layout.
    pub prompt_style: crate::answer::prompt::PromptStyle,
    /// Repetition penalty (1.0 = off).
    pub repeat_penalty: f32,
    /// Token limit.
    pub max_tokens: usize,
    /// Why the writing was cut short, if it was.
    pub early_stop: Option<crate::api::EarlyStop>,
    /// Why the answer fell back to quotes, if it did.
    pub fallback: Option<crate::api::FallbackCause>,
    /// Passage numbers Quarry cited on the model's behalf.
    pub attributed: Vec<u32>,
}

/// One answer in the audit log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditRecord {
    /// When the answer was given (RFC 3339, UTC).
    pub time: DateTime<Utc>,
    /// The question.
    pub question: String,
    /// The answer text.
    pub answer: String,
    /// Whether it was "not found in your documents".
    pub abstained: bool,
    /// Why it abstained.
    pub abstain_reason: Option<String>,
    /// Generated or evidence.
    pub mode: AnswerMode,
    /// The citations with their quotes.
    pub citations: Vec<Citation>,
    /// Every passage given to the model.
    pub passages: Vec<AuditPassage>,
    /// The generator, when one was used.
    pub model: Option<AuditModel>,
    /// The embedding model of the library.
    pub embedder: Option<String>,
    /// Retrieval settings.
    pub retrieval: AuditRetrieval,
    /// Library format version.
    pub library_version: u32,
    /// Quarry's version.
    pub quarry_version: String,
    /// Timings.
    pub timings: AnswerTimings,
    /// The generation settings and outcome (absent for evidence mode and older records).
    #[serde(default)]
    pub generation: Option<AuditGeneration>,
}

/// The audit log of the library in `data_dir`.
pub fn log_path(data_dir: &Path) -> PathBuf {
    data_dir.join("audit").join("answers.jsonl")
}

/// Appends `record` to the log as one line.
pub fn append(path: &Path, record: &AuditRecord) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
    }
    let mut line = serde_json::to_string(record)
        .map_err(|e| Error::internal("cannot write the audit record", e))?;
    line.push('\n');
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| Error::io(path, e))?;
    // One write of a whole line: concurrent writers never interleave within a record.
    file.write_all(line.as_bytes()).map_err(|e| Error::io(path, e))
}

/// The records in the log at or after `since`, oldest first. A missing log has none; a line that
/// does not parse is an error naming its line number.
pub fn read(path: &Path, since: Option<DateTime<Utc>>) -> Result<Vec<AuditRecord>> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(Error::io(path, e)),
    };
    let mut res = Vec::new();
    for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| Error::io(path, e))?;
        if line.trim().is_empty() {
            continue;
        }
        let record: AuditRecord = serde_json::from_str(&line).map_err(|e| {
            Error::user(format!("{} line {}: not an audit record: {e}", path.display(), n + 1))
        })?;
        if since.is_none_or(|t| record.time >= t) {
            res.push(record);
        }
    }
    Ok(res)
}

/// Export formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExportFormat {
    /// The records as JSON lines, unchanged.
    Jsonl,
    /// A report for people.
    Markdown,
}

/// `records` in `format`.
pub fn export(records: &[AuditRecord], format: ExportFormat) -> Result<String> {
    let mut out = String::new();
    match format {
        ExportFormat::Jsonl => {
            for r in records {
                out.push_str(
                    &serde_json::to_string(r)
                        .map_err(|e| Error::internal("cannot write the audit record", e))?,
                );
                out.push('\n');
            }
        }
        ExportFormat::Markdown => {
            out.push_str(&format!("# Quarry answers ({} records)\n", records.len()));
            for r in records {
                out.push_str(&markdown_record(r));
            }
        }
    }
    Ok(out)
}

fn markdown_record(r: &AuditRecord) -> String {
    let mut s = format!("\n## {}\n\n", r.time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    s.push_str(&format!("**Question:** {}\n\n", r.question));
    if r.abstained {
        s.push_str(&format!(
            "**Answer:** not found in the documents ({})\n\n",
            r.abstain_reason.as_deref().unwrap_or("no reason recorded")
        ));
    } else {
        s.push_str(&format!("**Answer ({}):** {}\n\n", r.mode.as_str(), r.answer));
    }
    if !r.citations.is_empty() {
        s.push_str("**Sources:**\n\n");
        for c in &r.citations {
            let sha = r
                .passages
                .iter()
                .find(|p| p.chunk_id == c.chunk_id)
                .map(|p| p.doc_sha256.get(..12).unwrap_or(&p.doc_sha256))
                .unwrap_or("");
            s.push_str(&format!(
                "- [{}] {}, page {} (sha256 {sha}…): \"{}\"\n",
                c.n, c.doc_path, c.page, c.quote
            ));
        }
        s.push('\n');
    }
    let model = match &r.model {
        Some(m) => format!("{} (sha256 {})", m.id, m.sha256),
        None => "none".to_owned(),
    };
    s.push_str(&format!(
        "Model: {model}. Embedder: {}. Retrieval: {} k={}, gate {:.3} vs {:.3}. Library format {}, Quarry {}.\n",
        r.embedder.as_deref().unwrap_or("none"),
        r.retrieval.mode,
        r.retrieval.k,
        r.retrieval.gate.score,
        r.retrieval.gate.threshold,
        r.library_version,
        r.quarry_version
    ));
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(time: &str, question: &str, abstained: bool) -> AuditRecord {
        AuditRecord {
            time: time.parse().unwrap(),
            question: question.into(),
            answer: if abstained {
                "I could not find the answer in your documents.".into()
            } else {
                "Three months [1].".into()
            },
            abstained,
            abstain_reason: abstained.then(|| "weak evidence".into()),
            mode: AnswerMode::Evidence,
            citations: if abstained {
                vec![]
            } else {
                vec![Citation {
                    n: 1,
                    chunk_id: "c1".into(),
                    doc_path: "/docs/lease.pdf".into(),
                    page: 4,
                    char_start: 10,
                    char_end: 90,
                    quote: "Notice is three months.".into(),
                    quote_start: 20,
                    quote_end: 43,
                }]
            },
            passages: vec![AuditPassage {
                n: 1,
                chunk_id: "c1".into(),
                doc_path: "/docs/lease.pdf".into(),
                doc_sha256: "ab".repeat(32),
                page: 4,
            }],
            model: None,
            embedder: Some("all-MiniLM-L6-v2".into()),
            retrieval: AuditRetrieval {
                mode: "hybrid".into(),
                k: 8,
                gate: GateDecision { score: 0.7, threshold: 0.4, passed: true },
            },
            library_version: 3,
            quarry_version: "0.1.0".into(),
            timings: AnswerTimings::default(),
            generation: None,
        }
    }

    #[test]
    fn appends_reads_filters_and_exports() {
        let dir = tempfile::tempdir().unwrap();
        let path = log_path(dir.path());
        assert!(read(&path, None).unwrap().is_empty());
        append(&path, &record("2026-01-02T10:00:00Z", "old?", true)).unwrap();
        append(&path, &record("2026-03-04T10:00:00Z", "notice period?", false)).unwrap();
        let all = read(&path, None).unwrap();
        assert_eq!(all.len(), 2);
        let recent = read(&path, Some("2026-02-01T00:00:00Z".parse().unwrap())).unwrap();
        assert_eq!(recent.len(), 1);
        assert_eq!(recent[0], record("2026-03-04T10:00:00Z", "notice period?", false));
        let md = export(&recent, ExportFormat::Markdown).unwrap();
        assert!(md.contains("**Question:** notice period?"));
        assert!(md.contains(
            "- [1] /docs/lease.pdf, page 4 (sha256 abababababab…): \"Notice is three months.\""
        ));
        let jsonl = export(&all, ExportFormat::Jsonl).unwrap();
        assert_eq!(jsonl.lines().count(), 2);
        assert_eq!(jsonl, std::fs::read_to_string(&path).unwrap());
    }

    #[test]
    fn a_damaged_line_is_named() {
        let dir = tempfile::tempdir().unwrap();
        let path = log_path(dir.path());
        append(&path, &record("2026-01-02T10:00:00Z", "q", true)).unwrap();
        std::fs::OpenOptions::new()
            .append(true)
            .open(&path)
            .unwrap()
            .write_all(b"{not json\n")
            .unwrap();
        let err = read(&path, None).unwrap_err().to_string();
        assert!(err.contains("answers.jsonl line 2"), "{err}");
    }
}
