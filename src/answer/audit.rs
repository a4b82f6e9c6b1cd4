//! The audit log: one JSON line per answer in `<library>/audit/answers.jsonl`, holding what a
//! reviewer needs to show how an answer was produced and to reproduce it (DESIGN.md §6), and
//! its export as JSON lines or a Markdown report.
//!
//! The log is tamper-evident: each record carries the SHA-256 of the line before it (a hash
//! chain), and `answers.jsonl.head` the number of records and the hash of the last one, so
//! [`verify`] finds an edited, deleted, inserted or reordered record. Appends hold an exclusive
//! lock on the file; files are readable by their owner only.

use std::io::{BufRead, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

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
    /// File name of the model (for a model behind a server: the model id the server gave).
    pub id: String,
    /// SHA-256 of the model file (`unhashed` for a model behind a server).
    pub sha256: String,
    /// The OpenAI-compatible server that wrote the answer, without credentials.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub server: Option<String>,
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
    /// The part of the library the question was asked about (empty: all of it).
    #[serde(default)]
    pub scope: crate::api::AskScope,
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

/// Which moment of an answer a record holds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditOutcome {
    /// The answer as given (checked, refused, or quoted).
    #[default]
    Answered,
    /// The model was about to write: question, passages and model, no answer yet.
    Started,
    /// Stopped (by the user, or a client that went away) before it was checked; the text is
    /// what the model had written.
    Cancelled,
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
    /// Which moment of the answer this record is (a generated answer gets a `started` record
    /// before the model writes, so even an answer the app never finished is on the record).
    #[serde(default)]
    pub outcome: AuditOutcome,
    /// The conversation the answer is a turn of (what was typed, how it was rewritten).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation: Option<crate::api::AnswerConversation>,
    /// SHA-256 of the previous line of the log (none for the first record, and in records
    /// written before the log was chained).
    #[serde(default)]
    pub prev_sha256: Option<String>,
}

/// The audit log of the library in `data_dir`.
pub fn log_path(data_dir: &Path) -> PathBuf {
    data_dir.join("audit").join("answers.jsonl")
}

/// The file that holds the number of records and the hash of the last one.
fn head_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".head");
    path.with_file_name(name)
}

/// The head of the chain: how many lines the log has and the SHA-256 of the last one.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Head {
    records: u64,
    last_sha256: Option<String>,
}

fn sha256_hex(bytes: &[u8]) -> String {
    crate::ids::hex(&Sha256::digest(bytes))
}

/// Opens (creating, readable by the owner only) a file of the log.
fn open_private(path: &Path, options: &mut std::fs::OpenOptions) -> Result<std::fs::File> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path).map_err(|e| Error::io(path, e))
}

/// Appends `record` to the log as one line, chained to the line before it.
pub fn append(path: &Path, record: &AuditRecord) -> Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let _ = std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700));
        }
    }
    let mut file =
        open_private(path, std::fs::OpenOptions::new().create(true).read(true).append(true))?;
    // One writer at a time, so two answers never chain to the same line.
    file.lock().map_err(|e| Error::io(path, e))?;
    let last = last_line(&mut file).map_err(|e| Error::io(path, e))?;
    let mut record = record.clone();
    record.prev_sha256 = last.as_deref().map(|l| sha256_hex(l.as_bytes()));
    let line = serde_json::to_string(&record)
        .map_err(|e| Error::internal("cannot write the audit record", e))?;
    // One write of a whole line.
    file.write_all(format!("{line}\n").as_bytes()).map_err(|e| Error::io(path, e))?;
    let head_file = head_path(path);
    let mut head: Head = std::fs::read(&head_file)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();
    if head.records == 0 && last.is_some() {
        // A log from before the head existed: count what is there.
        head.records = count_lines(path)? - 1;
    }
    head.records += 1;
    head.last_sha256 = Some(sha256_hex(line.as_bytes()));
    let mut out = open_private(
        &head_file,
        std::fs::OpenOptions::new().create(true).write(true).truncate(true),
    )?;
    let json = serde_json::to_vec(&head).map_err(|e| Error::internal("audit head", e))?;
    out.write_all(&json).map_err(|e| Error::io(&head_file, e))
}

fn count_lines(path: &Path) -> Result<u64> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    Ok(std::io::BufReader::new(file)
        .lines()
        .map_while(std::result::Result::ok)
        .filter(|l| !l.trim().is_empty())
        .count() as u64)
}

/// The last non-empty line of `file` (read from the end, whatever the log's size).
fn last_line(file: &mut std::fs::File) -> std::io::Result<Option<String>> {
    let len = file.seek(SeekFrom::End(0))?;
    let mut window = 64 * 1024u64;
    loop {
        let start = len.saturating_sub(window);
        file.seek(SeekFrom::Start(start))?;
        let mut tail = Vec::new();
        Read::by_ref(file).take(len - start).read_to_end(&mut tail)?;
        let text = String::from_utf8_lossy(&tail);
        let trimmed = text.trim_end_matches('\n');
        match trimmed.rfind('\n') {
            Some(i) => return Ok(Some(trimmed[i + 1..].to_owned())),
            None if start == 0 => {
                return Ok((!trimmed.trim().is_empty()).then(|| trimmed.to_owned()));
            }
            None => window *= 4,
        }
    }
}

/// What [`verify`] found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ChainReport {
    /// Records in the log.
    pub records: u64,
    /// Records at the start written before the log was chained (not covered).
    pub unchained: u64,
    /// The first problem: the line number and what is wrong; none when the chain holds.
    pub broken: Option<(u64, String)>,
}

/// Checks the hash chain of the log at `path` and its head.
pub fn verify(path: &Path) -> Result<ChainReport> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Ok(ChainReport { records: 0, unchained: 0, broken: None });
        }
        Err(e) => return Err(Error::io(path, e)),
    };
    let mut report = ChainReport { records: 0, unchained: 0, broken: None };
    let mut previous: Option<String> = None;
    // Records at the start without a link (a log from before the chain, or its first record).
    let mut leading_unlinked = 0u64;
    let mut linked = false;
    for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = line.map_err(|e| Error::io(path, e))?;
        if line.trim().is_empty() {
            continue;
        }
        let number = n as u64 + 1;
        report.records += 1;
        let want = previous.as_deref().map(|p| sha256_hex(p.as_bytes()));
        let problem = match serde_json::from_str::<AuditRecord>(&line) {
            Err(e) => Some(format!("not an audit record ({e})")),
            Ok(r) => match (&r.prev_sha256, linked) {
                (None, false) => {
                    leading_unlinked += 1;
                    None
                }
                (None, true) => Some("has no link to the record before it".to_owned()),
                (Some(_), _) if previous.is_none() => {
                    Some("links to a record before it, and there is none: records were removed from the start".to_owned())
                }
                (Some(prev), _) => {
                    linked = true;
                    (Some(prev) != want.as_ref()).then(|| {
                        "does not follow the record before it: that record was changed, or a \
                         record was removed, inserted or moved here"
                            .to_owned()
                    })
                }
            },
        };
        if let Some(problem) = problem {
            report.broken.get_or_insert((number, problem));
        }
        previous = Some(line);
    }
    let head_exists = head_path(path).is_file();
    // The last unlinked record is covered by the link of the one after it (or the head).
    report.unchained =
        if linked || head_exists { leading_unlinked.saturating_sub(1) } else { leading_unlinked };
    if report.broken.is_none() {
        let head: Option<Head> =
            std::fs::read(head_path(path)).ok().and_then(|b| serde_json::from_slice(&b).ok());
        let last = previous.as_deref().map(|l| sha256_hex(l.as_bytes()));
        match head {
            Some(head) if head.records != report.records => {
                report.broken = Some((
                    report.records,
                    format!(
                        "the log has {} records, its head says {}: records were removed or added at the end",
                        report.records, head.records
                    ),
                ));
            }
            Some(head) if head.last_sha256 != last => {
                report.broken = Some((report.records, "the last record was changed".to_owned()));
            }
            Some(_) => {}
            None if linked => {
                report.broken = Some((report.records, "the head file is missing".to_owned()));
            }
            None => {}
        }
    }
    Ok(report)
}

/// The records in the log at or after `since`, oldest first, and a note for each line that
/// could not be read (it is skipped: one damaged line does not hide the rest). A missing log
/// has none.
pub fn read_all(
    path: &Path,
    since: Option<DateTime<Utc>>,
) -> Result<(Vec<AuditRecord>, Vec<String>)> {
    let file = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok((Vec::new(), Vec::new())),
        Err(e) => return Err(Error::io(path, e)),
    };
    let mut res = Vec::new();
    let mut problems = Vec::new();
    for (n, line) in std::io::BufReader::new(file).lines().enumerate() {
        let line = match line {
            Ok(line) => line,
            Err(e) => {
                problems.push(format!("{} line {}: {e}", path.display(), n + 1));
                continue;
            }
        };
        if line.trim().is_empty() {
            continue;
        }
        match serde_json::from_str::<AuditRecord>(&line) {
            Ok(record) if since.is_none_or(|t| record.time >= t) => res.push(record),
            Ok(_) => {}
            Err(e) => problems.push(format!(
                "{} line {}: not an audit record ({e}); skipped",
                path.display(),
                n + 1
            )),
        }
    }
    Ok((res, problems))
}

/// The records in the log at or after `since`, oldest first; a line that does not parse is an
/// error naming its line number (see [`read_all`] to skip such lines).
pub fn read(path: &Path, since: Option<DateTime<Utc>>) -> Result<Vec<AuditRecord>> {
    let (records, problems) = read_all(path, since)?;
    match problems.into_iter().next() {
        Some(problem) => Err(Error::user(problem)),
        None => Ok(records),
    }
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

/// `text` as plain Markdown text on one line: no heading, list, link, emphasis or HTML can
/// come from a question or a document.
pub(crate) fn md(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '\n' | '\r' => out.push(' '),
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '\\' | '`' | '*' | '_' | '[' | ']' | '#' | '|' | '~' | '!' | '(' | ')' => {
                out.push('\\');
                out.push(c);
            }
            c => out.push(c),
        }
    }
    out
}

/// An answer and its sources as Markdown (the audit report and conversation exports): the
/// answer or why it was not found, then each citation with document, page, the document's
/// hash as indexed (`sha256_of` a chunk id) and the quote.
pub(crate) fn markdown_answer<'a>(
    abstained: bool,
    abstain_reason: Option<&str>,
    mode: AnswerMode,
    answer: &str,
    citations: &[Citation],
    sha256_of: impl Fn(&str) -> Option<&'a str>,
) -> String {
    let mut s = if abstained {
        format!(
            "**Answer:** not found in the documents ({})\n\n",
            md(abstain_reason.unwrap_or("no reason recorded"))
        )
    } else {
        format!("**Answer ({}):** {}\n\n", mode.as_str(), md(answer))
    };
    if !citations.is_empty() {
        s.push_str("**Sources:**\n\n");
        for c in citations {
            let sha = sha256_of(&c.chunk_id).unwrap_or("");
            s.push_str(&format!(
                "- \\[{}\\] {}, page {} (sha256 {}…): \"{}\"\n",
                c.n,
                md(&c.doc_path),
                c.page,
                sha.get(..12).unwrap_or(sha),
                md(&c.quote)
            ));
        }
        s.push('\n');
    }
    s
}

fn markdown_record(r: &AuditRecord) -> String {
    let mut s = format!("\n## {}\n\n", r.time.to_rfc3339_opts(chrono::SecondsFormat::Secs, true));
    s.push_str(&format!("**Question:** {}\n\n", md(&r.question)));
    match r.outcome {
        AuditOutcome::Answered => {}
        AuditOutcome::Started => {
            s.push_str(
                "**Started:** the model began to write; the answer is the next record \
                        for this question (none: the app stopped first).\n\n",
            );
            return s;
        }
        AuditOutcome::Cancelled => s.push_str("**Stopped** before the answer was checked.\n\n"),
    }
    s.push_str(&markdown_answer(
        r.abstained,
        r.abstain_reason.as_deref(),
        r.mode,
        &r.answer,
        &r.citations,
        |chunk| r.passages.iter().find(|p| p.chunk_id == chunk).map(|p| p.doc_sha256.as_str()),
    ));
    let model = match &r.model {
        Some(m) => format!("{} (sha256 {})", md(&m.id), m.sha256),
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
                scope: Default::default(),
            },
            library_version: 3,
            quarry_version: "0.1.0".into(),
            timings: AnswerTimings::default(),
            generation: None,
            outcome: AuditOutcome::Answered,
            conversation: None,
            prev_sha256: None,
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
        assert!(recent[0].prev_sha256.is_some(), "chained to the record before");
        let unchained = AuditRecord { prev_sha256: None, ..recent[0].clone() };
        assert_eq!(unchained, record("2026-03-04T10:00:00Z", "notice period?", false));
        let md = export(&recent, ExportFormat::Markdown).unwrap();
        assert!(md.contains("**Question:** notice period?"));
        assert!(md.contains(
            "- \\[1\\] /docs/lease.pdf, page 4 (sha256 abababababab…): \"Notice is three months.\""
        ));
        let jsonl = export(&all, ExportFormat::Jsonl).unwrap();
        assert_eq!(jsonl.lines().count(), 2);
        assert_eq!(jsonl, std::fs::read_to_string(&path).unwrap());
    }

    fn chained_log(dir: &Path, n: usize) -> (PathBuf, Vec<String>) {
        let path = log_path(dir);
        for i in 0..n {
            append(
                &path,
                &record(&format!("2026-01-0{}T10:00:00Z", i + 1), &format!("q{i}"), false),
            )
            .unwrap();
        }
        let lines = std::fs::read_to_string(&path).unwrap().lines().map(str::to_owned).collect();
        (path, lines)
    }

    fn rewrite(path: &Path, lines: &[String]) {
        std::fs::write(path, lines.iter().map(|l| format!("{l}\n")).collect::<String>()).unwrap();
    }

    #[test]
    fn the_chain_finds_edited_removed_added_and_moved_records() {
        let dir = tempfile::tempdir().unwrap();
        let (path, lines) = chained_log(dir.path(), 4);
        let intact = verify(&path).unwrap();
        assert_eq!((intact.records, intact.unchained, intact.broken), (4, 0, None));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600);
        }
        let broken_at = |lines: &[String]| {
            rewrite(&path, lines);
            verify(&path).unwrap().broken.map(|(line, _)| line)
        };
        // An edited answer in the middle: the next record no longer follows it.
        let mut edited = lines.clone();
        edited[1] = edited[1].replace("Three months", "Six months");
        assert_eq!(broken_at(&edited), Some(3));
        // A removed record in the middle, and the first one.
        assert_eq!(broken_at(&[lines[0].clone(), lines[2].clone(), lines[3].clone()]), Some(2));
        assert_eq!(broken_at(&lines[1..]), Some(1));
        // Two records swapped.
        assert_eq!(
            broken_at(&[lines[0].clone(), lines[2].clone(), lines[1].clone(), lines[3].clone()]),
            Some(2)
        );
        // The last record edited, or removed: the head knows.
        let mut last = lines.clone();
        last[3] = last[3].replace("q3", "q9");
        assert_eq!(broken_at(&last), Some(4));
        assert_eq!(broken_at(&lines[..3]), Some(3));
        // Restored: intact again.
        assert_eq!(broken_at(&lines), None);
    }

    #[test]
    fn markdown_cannot_be_forged_from_a_question_or_a_document() {
        let mut r = record(
            "2026-03-04T10:00:00Z",
            "rent?\n\n## Approved by legal\n<script>x</script>",
            false,
        );
        r.citations[0].quote = "**bold** [link](http://evil) | cell".into();
        let md = export(&[r], ExportFormat::Markdown).unwrap();
        assert!(!md.contains("\n## Approved"), "{md}");
        assert!(!md.contains("<script>") && md.contains("&lt;script&gt;"), "{md}");
        assert!(!md.contains("**bold**") && !md.contains("[link](http"), "{md}");
    }

    #[test]
    fn a_damaged_line_is_skipped_and_named_by_read_all() {
        let dir = tempfile::tempdir().unwrap();
        let (path, _) = chained_log(dir.path(), 2);
        let mut text = std::fs::read_to_string(&path).unwrap();
        text.insert_str(0, "{not json\n");
        std::fs::write(&path, text).unwrap();
        let (records, problems) = read_all(&path, None).unwrap();
        assert_eq!(records.len(), 2);
        assert_eq!(problems.len(), 1);
        assert!(problems[0].contains("line 1"), "{problems:?}");
        assert_eq!(verify(&path).unwrap().broken.map(|(l, _)| l), Some(1));
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
