//! `quarry models pull`: downloads a catalog model's files (HTTP(S) with ranges, or a copy from
//! a folder), resumable after an interruption, and checked against the catalog's size and
//! sha256 before anything is moved into the models folder: a truncated or wrong file is never
//! installed. This is the only network I/O Quarry does, and only when the user asks for it.
//!
//! Layout: a file in progress is `<models>/.partial/<folder>/<path>.part` (a name no model
//! lookup matches); when every file of the model is complete and checked, they are moved to
//! `<models>/<folder>/<path>`, the weights last, so a model is never listed half-installed. A
//! file whose hash the catalog could not confirm is accepted on its size (when known), and its
//! hash is recorded in `<models>/<folder>/quarry-pull.json` so `models verify` catches any later
//! change.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::{CatalogEntry, DownloadFile};
use crate::error::{Error, Result};
use crate::progress::CancelToken;

/// The record of hashes a pull accepted without a catalog hash.
const PULL_RECORD: &str = "quarry-pull.json";
/// The folder of files in progress.
const PARTIAL_DIR: &str = ".partial";
/// Where catalog sources live unless a mirror is given.
const HUGGING_FACE: &str = "https://huggingface.co";

/// What a pull is doing, for progress bars.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum PullEvent {
    /// A file's download starts (or resumes at `from`).
    File {
        /// The file's path in the model folder.
        path: String,
        /// Where it comes from.
        source: String,
        /// Bytes already there from an earlier attempt.
        from: u64,
        /// Its size, when known.
        size: Option<u64>,
    },
    /// Bytes of the model done so far.
    Progress {
        /// Bytes of all files done.
        done: u64,
        /// Bytes of all files, when every size is known.
        total: Option<u64>,
        /// Bytes per second over the last second or so.
        rate: f64,
    },
    /// An attempt failed; the next one resumes (or tries the next source).
    Retry {
        /// The file.
        path: String,
        /// Why the attempt failed.
        error: String,
    },
    /// Every file is in place and checked.
    Installed {
        /// The model folder.
        dir: PathBuf,
    },
}

/// How to pull.
#[derive(Debug, Clone)]
pub struct PullOptions {
    /// A server with the Hugging Face file layout (`<base>/<repo>/resolve/<rev>/<path>`) to use
    /// instead of huggingface.co (a company mirror), or a folder holding the model's files.
    pub mirror: Option<String>,
    /// Attempts per source before the next source is tried.
    pub attempts: u32,
    /// Longest wait for the server to send anything.
    pub read_timeout: Duration,
}

impl Default for PullOptions {
    fn default() -> Self {
        Self { mirror: None, attempts: 4, read_timeout: Duration::from_secs(60) }
    }
}

/// The result of checking one installed file.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FileCheck {
    /// The file's path in the model folder.
    pub path: String,
    /// `ok`, `missing`, `wrong size`, `wrong sha256`, or `unchecked` (no hash known).
    pub state: String,
}

/// The folder a catalog model is installed in.
pub fn model_dir(models_dir: &Path, entry: &CatalogEntry) -> PathBuf {
    models_dir.join(entry.folder_name())
}

/// Downloads every file of `entry` into `models_dir`, resuming what an earlier pull left, and
/// returns the model folder. Cancelling keeps the partial files for the next pull.
pub async fn pull(
    models_dir: &Path,
    entry: &CatalogEntry,
    options: &PullOptions,
    sink: &mut (dyn FnMut(PullEvent) + Send),
    cancel: &CancelToken,
) -> Result<PathBuf> {
    if entry.download.is_empty() {
        return Err(Error::user(format!(
            "{}: the catalog lists no download for this model; copy it in with `quarry models import`",
            entry.id
        )));
    }
    let dest = model_dir(models_dir, entry);
    let staging = models_dir.join(PARTIAL_DIR).join(entry.folder_name());
    let client = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(30))
        .read_timeout(options.read_timeout)
        .user_agent(concat!("quarry/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| Error::internal("cannot set up downloads", e))?;
    let total = entry.download.iter().map(|f| f.size).sum::<Option<u64>>();
    let mut progress = Progress::new(total);
    let mut record = read_record(&dest);
    let mut done_files: Vec<(&DownloadFile, PathBuf, String)> = Vec::new();
    for file in &entry.download {
        let installed = dest.join(&file.path);
        if let Some(sha) = installed_and_intact(&installed, file, &record)? {
            progress.skip(file.size.unwrap_or(0));
            done_files.push((file, installed, sha));
            continue;
        }
        let part = staging.join(format!("{}.part", file.path));
        if let Some(parent) = part.parent() {
            std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
        }
        let sha = fetch_file(&client, file, &part, options, &mut progress, sink, cancel).await?;
        progress.file_done();
        done_files.push((file, part, sha));
    }
    // Every file is complete and checked: move them in, the weights last.
    std::fs::create_dir_all(&dest).map_err(|e| Error::io(&dest, e))?;
    done_files.sort_by_key(|(f, _, _)| is_weights(&f.path));
    for (file, from, sha) in &done_files {
        let to = dest.join(&file.path);
        if from != &to {
            if let Some(parent) = to.parent() {
                std::fs::create_dir_all(parent).map_err(|e| Error::io(parent, e))?;
            }
            std::fs::rename(from, &to).map_err(|e| Error::io(&to, e))?;
        }
        if file.sha256.is_none() {
            record.insert(file.path.clone(), sha.clone());
        }
    }
    write_record(&dest, &record)?;
    let _ = std::fs::remove_dir_all(&staging);
    sink(PullEvent::Installed { dir: dest.clone() });
    Ok(dest)
}

/// Re-checks the installed files of `entry` against the catalog (or the hashes recorded when
/// they were pulled).
pub fn verify(models_dir: &Path, entry: &CatalogEntry) -> Result<Vec<FileCheck>> {
    let dest = model_dir(models_dir, entry);
    let record = read_record(&dest);
    let mut checks = Vec::new();
    for file in &entry.download {
        let path = dest.join(&file.path);
        let state = match std::fs::metadata(&path) {
            Err(_) => "missing",
            Ok(m) if file.size.is_some_and(|s| s != m.len()) => "wrong size",
            Ok(_) => match file.sha256.as_ref().or(record.get(&file.path)) {
                None => "unchecked",
                Some(want) if *want == sha256_of(&path)? => "ok",
                Some(_) => "wrong sha256",
            },
        };
        checks.push(FileCheck { path: file.path.clone(), state: state.into() });
    }
    Ok(checks)
}

/// Removes the installed model `entry` and anything a pull of it left; returns the folder.
pub fn remove(models_dir: &Path, entry: &CatalogEntry) -> Result<PathBuf> {
    let dest = model_dir(models_dir, entry);
    let staging = models_dir.join(PARTIAL_DIR).join(entry.folder_name());
    if !dest.exists() && !staging.exists() {
        return Err(Error::user(format!(
            "{}: not installed in {}",
            entry.id,
            models_dir.display()
        )));
    }
    for dir in [&dest, &staging] {
        if dir.exists() {
            std::fs::remove_dir_all(dir).map_err(|e| Error::io(dir, e))?;
        }
    }
    Ok(dest)
}

/// The sha256 of an installed file that is already complete and intact (so the pull skips
/// it), or `None` when it must be fetched.
fn installed_and_intact(
    path: &Path,
    file: &DownloadFile,
    record: &BTreeMap<String, String>,
) -> Result<Option<String>> {
    let Ok(meta) = std::fs::metadata(path) else { return Ok(None) };
    if file.size.is_some_and(|s| s != meta.len()) {
        return Ok(None);
    }
    let Some(want) = file.sha256.as_ref().or(record.get(&file.path)) else { return Ok(None) };
    let sha = sha256_of(path)?;
    Ok((sha == *want).then_some(sha))
}

/// Fetches one file into `part` from its sources in turn, resuming what is there; returns its
/// sha256 once it is complete and matches the catalog.
async fn fetch_file(
    client: &reqwest::Client,
    file: &DownloadFile,
    part: &Path,
    options: &PullOptions,
    progress: &mut Progress,
    sink: &mut (dyn FnMut(PullEvent) + Send),
    cancel: &CancelToken,
) -> Result<String> {
    let mut last_error = String::from("no source");
    for source in &file.sources {
        let source = match &options.mirror {
            // A folder (a USB stick, a shared drive) holding the model's files.
            Some(base) if !base.starts_with("http://") && !base.starts_with("https://") => {
                base.clone()
            }
            Some(base) if source.starts_with(HUGGING_FACE) => {
                format!("{}{}", base.trim_end_matches('/'), &source[HUGGING_FACE.len()..])
            }
            _ => source.clone(),
        };
        for attempt in 0..options.attempts.max(1) {
            if cancel.is_cancelled() {
                return Err(Error::Cancelled);
            }
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(500 << attempt.min(4))).await;
            }
            match fetch_once(client, file, &source, part, progress, sink, cancel).await {
                Ok(sha) => return Ok(sha),
                Err(Attempt::Cancelled) => return Err(Error::Cancelled),
                Err(Attempt::Retry(e)) => {
                    sink(PullEvent::Retry { path: file.path.clone(), error: e.clone() });
                    last_error = format!("{source}: {e}");
                }
                Err(Attempt::WrongBytes(e)) => {
                    // Never kept: the next source starts from nothing.
                    let _ = std::fs::remove_file(part);
                    sink(PullEvent::Retry { path: file.path.clone(), error: e.clone() });
                    last_error = format!("{source}: {e}");
                    break;
                }
            }
        }
    }
    Err(Error::user(format!(
        "cannot download {}: {last_error}; nothing was installed (run the pull again to resume)",
        file.path
    )))
}

/// Why one attempt ended without the file.
enum Attempt {
    /// A network or server problem: try again, resuming.
    Retry(String),
    /// The bytes are not the catalog's: discard them, try another source.
    WrongBytes(String),
    /// The user cancelled.
    Cancelled,
}

/// One attempt at `source`: continues `part` where it ends (a range request, or a copy from a
/// folder), then checks size and sha256.
async fn fetch_once(
    client: &reqwest::Client,
    file: &DownloadFile,
    source: &str,
    part: &Path,
    progress: &mut Progress,
    sink: &mut (dyn FnMut(PullEvent) + Send),
    cancel: &CancelToken,
) -> std::result::Result<String, Attempt> {
    let io = |e: std::io::Error| Attempt::Retry(format!("{}: {e}", part.display()));
    let mut have = std::fs::metadata(part).map(|m| m.len()).unwrap_or(0);
    if file.size.is_some_and(|s| have > s) {
        std::fs::remove_file(part).map_err(io)?;
        have = 0;
    }
    let mut hasher = Sha256::new();
    if have > 0 {
        hash_into(part, &mut hasher).map_err(io)?;
    }
    progress.resume(have);
    sink(PullEvent::File {
        path: file.path.clone(),
        source: source.into(),
        from: have,
        size: file.size,
    });
    let complete = file.size == Some(have);
    if !complete {
        if source.starts_with("http://") || source.starts_with("https://") {
            fetch_http(client, file, source, part, have, &mut hasher, progress, sink, cancel)
                .await?;
        } else {
            copy_local(file, source, part, have, &mut hasher, progress, sink, cancel)?;
        }
    }
    let got = std::fs::metadata(part).map(|m| m.len()).map_err(io)?;
    if let Some(size) = file.size.filter(|&s| s != got) {
        return Err(Attempt::WrongBytes(format!("{got} bytes, the catalog says {size}")));
    }
    let sha = crate::ids::hex(&hasher.finalize());
    match &file.sha256 {
        Some(want) if *want != sha => {
            Err(Attempt::WrongBytes(format!("sha256 {sha}, the catalog says {want}")))
        }
        _ => Ok(sha),
    }
}

/// Appends the rest of `source` (from byte `have`) to `part`.
#[allow(clippy::too_many_arguments)] // One call site; the pieces of one attempt.
async fn fetch_http(
    client: &reqwest::Client,
    file: &DownloadFile,
    source: &str,
    part: &Path,
    mut have: u64,
    hasher: &mut Sha256,
    progress: &mut Progress,
    sink: &mut (dyn FnMut(PullEvent) + Send),
    cancel: &CancelToken,
) -> std::result::Result<(), Attempt> {
    let io = |e: std::io::Error| Attempt::Retry(format!("{}: {e}", part.display()));
    let mut request = client.get(source).header(reqwest::header::ACCEPT_ENCODING, "identity");
    if have > 0 {
        request = request.header(reqwest::header::RANGE, format!("bytes={have}-"));
    }
    let mut response = request.send().await.map_err(|e| Attempt::Retry(network_error(e)))?;
    let status = response.status();
    let mut out = match status.as_u16() {
        206 if have > 0 => {
            let start = response
                .headers()
                .get(reqwest::header::CONTENT_RANGE)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("bytes "))
                .and_then(|v| v.split('-').next())
                .and_then(|v| v.parse::<u64>().ok());
            if start != Some(have) {
                return Err(Attempt::WrongBytes(format!(
                    "asked for bytes from {have}, got a range starting at {start:?}"
                )));
            }
            std::fs::OpenOptions::new().append(true).open(part).map_err(io)?
        }
        200 => {
            // The server ignored the range: start over.
            *hasher = Sha256::new();
            progress.resume(0);
            have = 0;
            std::fs::File::create(part).map_err(io)?
        }
        416 => return Ok(()),
        404 => return Err(Attempt::WrongBytes(format!("{source}: not found (404)"))),
        code => return Err(Attempt::Retry(format!("the server answered {code}"))),
    };
    loop {
        if cancel.is_cancelled() {
            out.flush().map_err(io)?;
            return Err(Attempt::Cancelled);
        }
        let chunk = match response.chunk().await {
            Ok(Some(chunk)) => chunk,
            Ok(None) => break,
            Err(e) => {
                out.flush().map_err(io)?;
                return Err(Attempt::Retry(format!("the connection broke: {}", network_error(e))));
            }
        };
        have += chunk.len() as u64;
        if file.size.is_some_and(|s| have > s) {
            return Err(Attempt::WrongBytes(format!("more than the {} bytes", file.path)));
        }
        out.write_all(&chunk).map_err(io)?;
        hasher.update(&chunk);
        progress.add(chunk.len() as u64);
        progress.report(sink);
    }
    out.sync_all().map_err(io)?;
    Ok(())
}

/// Appends the rest of the file at `source` (a folder holding the model's files, or a
/// `file://` URL of one) to `part`.
#[allow(clippy::too_many_arguments)] // As `fetch_http`.
fn copy_local(
    file: &DownloadFile,
    source: &str,
    part: &Path,
    have: u64,
    hasher: &mut Sha256,
    progress: &mut Progress,
    sink: &mut (dyn FnMut(PullEvent) + Send),
    cancel: &CancelToken,
) -> std::result::Result<(), Attempt> {
    let io = |e: std::io::Error| Attempt::Retry(format!("{source}: {e}"));
    let path = PathBuf::from(source.strip_prefix("file://").unwrap_or(source));
    let path = if path.is_dir() { path.join(&file.path) } else { path };
    let mut input = std::fs::File::open(&path)
        .map_err(|e| Attempt::WrongBytes(format!("{}: {e}", path.display())))?;
    std::io::Seek::seek(&mut input, std::io::SeekFrom::Start(have)).map_err(io)?;
    let mut out = std::fs::OpenOptions::new().create(true).append(true).open(part).map_err(io)?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        if cancel.is_cancelled() {
            return Err(Attempt::Cancelled);
        }
        let n = input.read(&mut buf).map_err(io)?;
        if n == 0 {
            break;
        }
        out.write_all(&buf[..n]).map_err(io)?;
        hasher.update(&buf[..n]);
        progress.add(n as u64);
        progress.report(sink);
    }
    out.sync_all().map_err(io)?;
    Ok(())
}

/// Bytes done across the model's files, and the rate, reported about five times a second.
struct Progress {
    finished_files: u64,
    current: u64,
    total: Option<u64>,
    window: (Instant, u64),
    rate: f64,
    last_report: Option<Instant>,
}

impl Progress {
    fn new(total: Option<u64>) -> Self {
        Self {
            finished_files: 0,
            current: 0,
            total,
            window: (Instant::now(), 0),
            rate: 0.0,
            last_report: None,
        }
    }

    /// A file (re)starts with `have` bytes already there.
    fn resume(&mut self, have: u64) {
        self.current = have;
    }

    /// The current file is complete.
    fn file_done(&mut self) {
        self.finished_files += std::mem::take(&mut self.current);
    }

    /// A file already installed counts as done.
    fn skip(&mut self, bytes: u64) {
        self.finished_files += bytes;
    }

    fn add(&mut self, bytes: u64) {
        self.current += bytes;
    }

    fn done(&self) -> u64 {
        self.finished_files + self.current
    }

    fn report(&mut self, sink: &mut (dyn FnMut(PullEvent) + Send)) {
        let now = Instant::now();
        if self.last_report.is_some_and(|t| now.duration_since(t) < Duration::from_millis(200)) {
            return;
        }
        let (since, at) = self.window;
        let secs = now.duration_since(since).as_secs_f64();
        if secs >= 1.0 {
            self.rate = self.done().saturating_sub(at) as f64 / secs;
            self.window = (now, self.done());
        }
        self.last_report = Some(now);
        sink(PullEvent::Progress { done: self.done(), total: self.total, rate: self.rate });
    }
}

/// A network error with its causes ("error sending request: client error (Connect): dns
/// error: …"), without the URL the message names anyway.
fn network_error(err: reqwest::Error) -> String {
    let err = err.without_url();
    let mut text = err.to_string();
    let mut source = std::error::Error::source(&err);
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Whether `path` is a weights file (moved into place last).
fn is_weights(path: &str) -> bool {
    path.ends_with(".gguf") || path.ends_with(".safetensors")
}

fn read_record(dest: &Path) -> BTreeMap<String, String> {
    std::fs::read(dest.join(PULL_RECORD))
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default()
}

fn write_record(dest: &Path, record: &BTreeMap<String, String>) -> Result<()> {
    if record.is_empty() {
        return Ok(());
    }
    let path = dest.join(PULL_RECORD);
    let json = serde_json::to_vec_pretty(record)
        .map_err(|e| Error::internal("cannot write the pull record", e))?;
    std::fs::write(&path, json).map_err(|e| Error::io(&path, e))
}

fn hash_into(path: &Path, hasher: &mut Sha256) -> std::io::Result<()> {
    let mut file = std::fs::File::open(path)?;
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = file.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        hasher.update(&buf[..n]);
    }
}

fn sha256_of(path: &Path) -> Result<String> {
    crate::ids::sha256_file(path).map_err(|e| Error::io(path, e))
}
