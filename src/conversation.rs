//! Conversations: threads of questions and answers saved in the library
//! (`<library>/threads/<id>.json`), each turn with its own citations and verification, and
//! their export as Markdown or JSON. How a follow-up becomes a standalone question lives in
//! [`rewrite`].

pub mod rewrite;

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use crate::answer::audit::AuditRecord;
use crate::api::{Answer, Thread, ThreadExportFormat, ThreadSummary, ThreadTurn};
use crate::error::{Error, Result};

/// Longest title kept (characters).
const TITLE_CHARS: usize = 120;

/// The threads of one library, one JSON file each. Changes to one thread are made under a lock
/// (load, change, write a temporary file, rename), so two answers in one thread both land.
#[derive(Debug)]
pub struct ThreadStore {
    dir: PathBuf,
    writing: Mutex<()>,
}

impl ThreadStore {
    /// The threads of the library in `data_dir`.
    pub fn new(data_dir: &Path) -> Self {
        Self { dir: data_dir.join("threads"), writing: Mutex::new(()) }
    }

    /// Every thread, the most recently changed first. A file that cannot be read is skipped
    /// with a warning naming it.
    pub fn list(&self) -> Result<Vec<ThreadSummary>> {
        let entries = match std::fs::read_dir(&self.dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(Error::io(&self.dir, e)),
        };
        let mut threads = Vec::new();
        for entry in entries {
            let path = entry.map_err(|e| Error::io(&self.dir, e))?.path();
            if path.extension().is_none_or(|e| e != "json") {
                continue;
            }
            match read_summary(&path) {
                Ok(summary) => threads.push(summary),
                Err(e) => tracing::warn!(target: "engine::answer", "skipping a thread: {e}"),
            }
        }
        threads.sort_by(|a, b| b.updated.cmp(&a.updated).then_with(|| b.id.cmp(&a.id)));
        Ok(threads)
    }

    /// The thread `id`.
    pub fn load(&self, id: &str) -> Result<Thread> {
        read_thread(&self.path(id)?)
    }

    /// A fresh thread id (the thread is saved with its first turn).
    pub fn new_id(&self) -> String {
        format!("{:016x}", rand::random::<u64>())
    }

    /// Adds `answer` as the next turn of thread `id`, starting the thread (titled after what
    /// was asked) when it has no file yet; returns the thread as saved.
    pub fn append(&self, id: &str, answer: Answer) -> Result<Thread> {
        let _writing = self.lock()?;
        let time = now();
        let mut thread = match self.load(id) {
            Ok(thread) => thread,
            Err(_) if !self.path(id)?.exists() => Thread {
                id: id.to_owned(),
                title: title_of(
                    answer.conversation.as_ref().map_or(&answer.question, |c| &c.asked),
                ),
                created: time.clone(),
                updated: time.clone(),
                turns: Vec::new(),
            },
            Err(e) => return Err(e),
        };
        thread.turns.push(ThreadTurn { time: time.clone(), answer });
        thread.updated = time;
        self.write(&thread)?;
        Ok(thread)
    }

    /// Gives thread `id` a new title.
    pub fn rename(&self, id: &str, title: &str) -> Result<ThreadSummary> {
        let title = title.trim();
        if title.is_empty() {
            return Err(Error::user("title: a thread's title cannot be empty"));
        }
        let _writing = self.lock()?;
        let mut thread = self.load(id)?;
        thread.title = title_of(title);
        thread.updated = now();
        self.write(&thread)?;
        Ok(summary(&thread))
    }

    /// Deletes thread `id` (its answers stay in the audit log).
    pub fn delete(&self, id: &str) -> Result<()> {
        let _writing = self.lock()?;
        let path = self.path(id)?;
        match std::fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(no_thread(id)),
            Err(e) => Err(Error::io(&path, e)),
        }
    }

    fn lock(&self) -> Result<std::sync::MutexGuard<'_, ()>> {
        self.writing.lock().map_err(|_| Error::invariant("the thread store is poisoned"))
    }

    /// The file of thread `id`; ids are what [`ThreadStore::new_id`] makes (anything else could name a path
    /// outside the folder).
    fn path(&self, id: &str) -> Result<PathBuf> {
        if id.len() != 16 || !id.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(no_thread(id));
        }
        Ok(self.dir.join(format!("{id}.json")))
    }

    fn write(&self, thread: &Thread) -> Result<()> {
        std::fs::create_dir_all(&self.dir).map_err(|e| Error::io(&self.dir, e))?;
        let path = self.path(&thread.id)?;
        let json = serde_json::to_vec_pretty(thread)
            .map_err(|e| Error::internal("cannot write the thread", e))?;
        let mut file =
            tempfile::NamedTempFile::new_in(&self.dir).map_err(|e| Error::io(&self.dir, e))?;
        std::io::Write::write_all(&mut file, &json).map_err(|e| Error::io(&path, e))?;
        file.persist(&path).map_err(|e| Error::io(&path, e.error))?;
        Ok(())
    }
}

fn read_thread(path: &Path) -> Result<Thread> {
    let bytes = match std::fs::read(path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let id = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
            return Err(no_thread(&id));
        }
        Err(e) => return Err(Error::io(path, e)),
    };
    serde_json::from_slice(&bytes)
        .map_err(|e| Error::user(format!("{}: not a readable thread ({e})", path.display())))
}

/// A thread's summary, its turns counted but not built (the list is read after every answer).
fn read_summary(path: &Path) -> Result<ThreadSummary> {
    #[derive(serde::Deserialize)]
    struct Head {
        id: String,
        title: String,
        created: String,
        updated: String,
        turns: Vec<serde::de::IgnoredAny>,
    }
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    let head: Head = serde_json::from_slice(&bytes)
        .map_err(|e| Error::user(format!("{}: not a readable thread ({e})", path.display())))?;
    Ok(ThreadSummary {
        id: head.id,
        title: head.title,
        created: head.created,
        updated: head.updated,
        turns: head.turns.len() as u32,
    })
}

fn no_thread(id: &str) -> Error {
    Error::user(format!("there is no conversation with the id {id:?} in this library"))
}

fn summary(thread: &Thread) -> ThreadSummary {
    ThreadSummary {
        id: thread.id.clone(),
        title: thread.title.clone(),
        created: thread.created.clone(),
        updated: thread.updated.clone(),
        turns: thread.turns.len() as u32,
    }
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn title_of(text: &str) -> String {
    let one_line = text.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() <= TITLE_CHARS {
        return one_line;
    }
    let mut title: String = one_line.chars().take(TITLE_CHARS - 1).collect();
    title.push('…');
    title
}

/// `thread` exported: Markdown for people (each turn with what was typed, what was searched
/// for, the answer and its sources with pages and quotes) or JSON (the thread as saved and the
/// audit records its answers produced).
pub fn export(
    thread: &Thread,
    audit: &[AuditRecord],
    format: ThreadExportFormat,
) -> Result<String> {
    match format {
        ThreadExportFormat::Json => serde_json::to_string_pretty(&serde_json::json!({
            "thread": thread,
            "audit": audit,
        }))
        .map_err(|e| Error::internal("cannot write the thread", e)),
        ThreadExportFormat::Markdown => Ok(markdown(thread)),
    }
}

fn markdown(thread: &Thread) -> String {
    use crate::answer::audit::md;
    let mut s = format!("# {}\n\n", md(&thread.title));
    s.push_str(&format!(
        "Conversation {} started {}, {} turns.\n",
        thread.id,
        thread.created,
        thread.turns.len()
    ));
    for (i, turn) in thread.turns.iter().enumerate() {
        let a = &turn.answer;
        let asked = a.conversation.as_ref().map(|c| c.asked.as_str()).unwrap_or(&a.question);
        s.push_str(&format!("\n## {}. {}\n\n", i + 1, md(asked)));
        if asked != a.question {
            s.push_str(&format!("*Searched for:* {}\n\n", md(&a.question)));
        }
        s.push_str(&crate::answer::audit::markdown_answer(
            a.abstained,
            a.abstain_reason.as_deref(),
            a.mode,
            &a.answer,
            &a.citations,
            |chunk| a.passages.iter().find(|p| p.chunk_id == chunk).map(|p| p.doc_sha256.as_str()),
        ));
        s.push_str(&format!(
            "Answered {} by {}.\n",
            turn.time,
            md(a.model.as_deref().unwrap_or("quotes of the evidence"))
        ));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_outside_the_store_s_own_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let store = ThreadStore::new(dir.path());
        for id in ["../../etc/passwd", "", "0123456789abcdeg", "0123456789abcdef0"] {
            let err = store.load(id).unwrap_err().to_string();
            assert!(err.contains("no conversation"), "{id}: {err}");
        }
        assert!(store.list().unwrap().is_empty());
    }

    fn answer(question: &str) -> Answer {
        serde_json::from_value(serde_json::json!({
            "question": question, "answer": "Three months [1].", "abstained": false,
            "abstain_reason": null, "abstain_cause": null, "mode": "evidence", "sentences": [],
            "citations": [], "passages": [], "removed_citations": [],
            "gate": { "score": 0.7, "threshold": 0.4, "passed": true }, "model": null,
            "timings": { "retrieve_ms": 1.0, "total_ms": 1.0, "tokens": 0,
                         "tokens_per_s": 0.0, "ttft_ms": 0.0 }
        }))
        .unwrap()
    }

    #[test]
    fn threads_are_started_renamed_listed_and_deleted() {
        let dir = tempfile::tempdir().unwrap();
        let store = ThreadStore::new(dir.path());
        let a = store.new_id();
        let thread = store.append(&a, answer("How long is the\nnotice period?")).unwrap();
        assert_eq!(thread.title, "How long is the notice period?");
        assert_eq!(store.append(&a, answer("And the deposit?")).unwrap().turns.len(), 2);
        let b = store.new_id();
        assert_eq!(
            store.append(&b, answer(&"x".repeat(500))).unwrap().title.chars().count(),
            TITLE_CHARS
        );
        std::thread::sleep(std::time::Duration::from_millis(5));
        store.rename(&a, "Lease").unwrap();
        let listed = store.list().unwrap();
        assert_eq!(listed.len(), 2);
        assert_eq!((listed[0].title.as_str(), listed[0].turns), ("Lease", 2), "renamed last");
        assert!(store.rename(&a, "  ").unwrap_err().to_string().contains("title"));
        store.delete(&a).unwrap();
        assert!(store.delete(&a).is_err());
        std::fs::write(dir.path().join("threads").join("0000000000000000.json"), b"{").unwrap();
        assert_eq!(store.list().unwrap().len(), 1, "a damaged file is skipped");
        assert!(store.append("0000000000000000", answer("q")).is_err(), "nor overwritten");
    }
}
