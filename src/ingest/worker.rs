//! Runs extraction in a separate worker process, so a parser that panics, overflows its stack,
//! aborts or loops forever on an untrusted file kills only the worker: the parent records that
//! file's failure with the reason, restarts the worker and carries on.
//!
//! Protocol: one JSON request per line on the worker's stdin, one JSON reply per line on its
//! stdout. The worker is the `quarry` binary itself in a hidden mode (see `main.rs`).

use std::collections::VecDeque;
use std::io::{BufRead, BufReader, Write};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::pdf::panic_message;
use super::{Extracted, Source, extract_source};
use crate::error::ExtractError;

/// The worker argument that caps its memory, in MiB.
pub const MEMORY_ARG: &str = "--memory-mb";

/// The largest reply the parent reads from a worker.
const MAX_REPLY_BYTES: u64 = 512 * 1024 * 1024;

/// What the reader thread passes on instead of a reply that was too large (not JSON, so it
/// can never be a real reply).
const TOO_LARGE: &str = "\u{0}reply too large";

/// The worker's main: `args` are those after [`WORKER_ARG`] (`--memory-mb N` caps the memory
/// it may allocate, on Linux), then it answers requests on stdin until it closes.
pub fn run(args: &[String]) -> std::io::Result<()> {
    let mut rest = args.iter();
    while let Some(arg) = rest.next() {
        if arg == MEMORY_ARG {
            let mb: u64 = rest
                .next()
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| std::io::Error::other(format!("{MEMORY_ARG} needs a number")))?;
            limit_memory(mb.saturating_mul(1024 * 1024), args)?;
        }
    }
    serve(std::io::stdin().lock(), std::io::stdout().lock())
}

/// Caps what this process may allocate (heap and private mappings; not the mapped binary).
///
/// A limit set here would only count mappings made from now on, and the allocator reserves a
/// gigabyte arena before `main` runs: the 98 MB file of `tests/isolation.rs` was then read
/// under a 48 MB cap in 7 of 40 runs on a loaded machine. So the worker sets the limit and
/// starts itself again (`exec`, which keeps the limit), and the new image counts everything
/// from its first allocation; 30 of 30 runs were then stopped. A process that is already
/// capped at or below `bytes` (the re-started worker) carries on.
#[cfg(target_os = "linux")]
fn limit_memory(bytes: u64, args: &[String]) -> std::io::Result<()> {
    use std::os::unix::process::CommandExt;
    let (soft, hard) = rlimit::getrlimit(rlimit::Resource::DATA)?;
    if soft <= bytes {
        return Ok(());
    }
    rlimit::setrlimit(rlimit::Resource::DATA, bytes, bytes.min(hard))?;
    let exe = std::env::current_exe()?;
    // `exec` returns only when it failed.
    Err(Command::new(exe).arg(WORKER_ARG).args(args).exec())
}

#[cfg(not(target_os = "linux"))]
fn limit_memory(_bytes: u64, _args: &[String]) -> std::io::Result<()> {
    // Elsewhere the time limit and process isolation still hold; no portable memory cap.
    Ok(())
}

/// The first argument that makes the `quarry` binary (or the desktop app's) serve as the
/// extraction worker instead of starting normally.
pub const WORKER_ARG: &str = "__extract-worker";

/// The command line that starts `exe` as the extraction worker.
pub fn worker_command(exe: &std::path::Path) -> Vec<String> {
    vec![exe.to_string_lossy().into_owned(), WORKER_ARG.to_owned()]
}

/// The answer to one request.
#[derive(Debug, Serialize, Deserialize)]
enum Reply {
    Ok(Extracted),
    Err(ExtractError),
}

/// Prefix of the line a worker writes to stderr when extraction panics.
const PANIC_PREFIX: &str = "quarry-worker panic: ";

/// The worker's main loop: reads requests from `input` until it closes, answers on `output`.
pub fn serve(input: impl BufRead, mut output: impl Write) -> std::io::Result<()> {
    std::panic::set_hook(Box::new(|info| {
        let msg = match info.payload().downcast_ref::<&str>() {
            Some(s) => (*s).to_owned(),
            None => info.payload().downcast_ref::<String>().cloned().unwrap_or_default(),
        };
        let location = info.location().map(|l| format!(" at {}:{}", l.file(), l.line()));
        #[allow(clippy::print_stderr)] // The parent reads this line to explain the failure.
        {
            eprintln!("{PANIC_PREFIX}{msg}{}", location.unwrap_or_default());
        }
    }));
    for line in input.lines() {
        let line = line?;
        if line.trim().is_empty() {
            continue;
        }
        let reply = match serde_json::from_str::<Source>(&line) {
            Ok(source) => match extract_in_process(&source) {
                Ok(doc) => Reply::Ok(doc),
                Err(e) => Reply::Err(e),
            },
            Err(e) => Reply::Err(ExtractError::Crashed(format!("bad request: {e}"))),
        };
        let json = serde_json::to_string(&reply).map_err(std::io::Error::other)?;
        output.write_all(json.as_bytes())?;
        output.write_all(b"\n")?;
        output.flush()?;
    }
    Ok(())
}

/// Extracts in this process, turning a panic into an error.
pub fn extract_in_process(source: &Source) -> Result<Extracted, ExtractError> {
    match catch_unwind(AssertUnwindSafe(|| extract_source(source))) {
        Ok(res) => res,
        Err(panic) => Err(ExtractError::Crashed(format!("panicked: {}", panic_message(&panic)))),
    }
}

/// One isolated worker process, restarted whenever it dies or is killed.
#[derive(Debug)]
pub struct WorkerProcess {
    command: Vec<String>,
    timeout: Duration,
    memory_mb: u64,
    reply_limit: u64,
    running: Option<Running>,
}

#[derive(Debug)]
struct Running {
    child: Child,
    stdin: ChildStdin,
    replies: Receiver<String>,
    stderr_tail: Arc<Mutex<VecDeque<String>>>,
}

impl WorkerProcess {
    /// A worker started lazily with `command` (program then arguments), that may take
    /// `timeout` per file and allocate `memory_mb` (0: no limit).
    pub fn new(command: Vec<String>, timeout: Duration, memory_mb: u64) -> Self {
        Self { command, timeout, memory_mb, reply_limit: MAX_REPLY_BYTES, running: None }
    }

    /// The same worker reading replies of at most `bytes` (default 512 MiB).
    pub fn with_reply_limit(mut self, bytes: u64) -> Self {
        self.reply_limit = bytes;
        self
    }

    /// Extracts `source` in the worker, within the time limit.
    pub fn extract(&mut self, source: &Source) -> Result<Extracted, ExtractError> {
        let request = serde_json::to_string(source)
            .map_err(|e| ExtractError::Crashed(format!("could not encode request: {e}")))?;
        // A worker that died between requests is noticed on write; start a fresh one once.
        for attempt in 0..2 {
            let running = self.running()?;
            if let Ok(mut tail) = running.stderr_tail.lock() {
                tail.clear();
            }
            let sent = running
                .stdin
                .write_all(request.as_bytes())
                .and_then(|()| running.stdin.write_all(b"\n"))
                .and_then(|()| running.stdin.flush());
            if sent.is_err() && attempt == 0 {
                self.kill();
                continue;
            }
            return self.await_reply();
        }
        Err(ExtractError::Crashed("could not start the extractor process".into()))
    }

    fn await_reply(&mut self) -> Result<Extracted, ExtractError> {
        let Some(running) = self.running.as_mut() else {
            return Err(ExtractError::Crashed("extractor process is not running".into()));
        };
        match running.replies.recv_timeout(self.timeout) {
            Ok(line) if line == TOO_LARGE => {
                let limit = self.reply_limit;
                self.kill();
                Err(ExtractError::Crashed(format!(
                    "sent a reply larger than {} bytes and was stopped",
                    limit
                )))
            }
            Ok(line) => match serde_json::from_str::<Reply>(&line) {
                Ok(Reply::Ok(doc)) => Ok(doc),
                Ok(Reply::Err(e)) => Err(e),
                Err(e) => {
                    self.kill();
                    Err(ExtractError::Crashed(format!("sent an unreadable reply: {e}")))
                }
            },
            Err(RecvTimeoutError::Timeout) => {
                self.kill();
                Err(ExtractError::Crashed(format!(
                    "timed out after {} s and was stopped",
                    self.timeout.as_secs()
                )))
            }
            Err(RecvTimeoutError::Disconnected) => {
                let status = running.child.wait().map(|s| s.to_string()).unwrap_or_default();
                // The stderr reader may still be draining the last lines.
                std::thread::sleep(Duration::from_millis(50));
                let reason = crash_reason(&running.stderr_tail);
                self.running = None;
                Err(ExtractError::Crashed(format!("crashed ({status}){reason}")))
            }
        }
    }

    fn running(&mut self) -> Result<&mut Running, ExtractError> {
        if self.running.is_none() {
            let mut command = self.command.clone();
            if self.memory_mb > 0 {
                command.extend([MEMORY_ARG.to_owned(), self.memory_mb.to_string()]);
            }
            self.running = Some(spawn(&command, self.reply_limit)?);
        }
        self.running
            .as_mut()
            .ok_or_else(|| ExtractError::Crashed("extractor process is not running".into()))
    }

    fn kill(&mut self) {
        if let Some(mut running) = self.running.take() {
            let _ = running.child.kill();
            let _ = running.child.wait();
        }
    }
}

impl Drop for WorkerProcess {
    fn drop(&mut self) {
        self.kill();
    }
}

fn spawn(command: &[String], reply_limit: u64) -> Result<Running, ExtractError> {
    let (program, args) = command
        .split_first()
        .ok_or_else(|| ExtractError::Crashed("no extractor command configured".into()))?;
    let mut child = Command::new(program)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| ExtractError::Crashed(format!("could not start {program}: {e}")))?;
    let (stdin, stdout, stderr) =
        match (child.stdin.take(), child.stdout.take(), child.stderr.take()) {
            (Some(i), Some(o), Some(e)) => (i, o, e),
            _ => return Err(ExtractError::Crashed("extractor pipes are missing".into())),
        };
    let (tx, replies) = channel();
    std::thread::spawn(move || {
        // Replies are read with a size cap: a worker cannot make the parent allocate without
        // bound. An oversized reply ends the stream (the worker is then stopped).
        let mut reader = BufReader::new(stdout);
        loop {
            let mut line = Vec::new();
            match std::io::Read::take(&mut reader, reply_limit + 1).read_until(b'\n', &mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) if line.len() as u64 > reply_limit && !line.ends_with(b"\n") => {
                    let _ = tx.send(TOO_LARGE.to_owned());
                    break;
                }
                Ok(_) => {
                    let text = String::from_utf8_lossy(&line).trim_end().to_owned();
                    if tx.send(text).is_err() {
                        break;
                    }
                }
            }
        }
    });
    let stderr_tail = Arc::new(Mutex::new(VecDeque::new()));
    let tail = Arc::clone(&stderr_tail);
    std::thread::spawn(move || {
        for line in BufReader::new(stderr).lines() {
            let Ok(line) = line else { break };
            tracing::debug!(target: "engine::ingest", "worker: {line}");
            if let Ok(mut tail) = tail.lock() {
                if tail.len() == 20 {
                    tail.pop_front();
                }
                tail.push_back(line);
            }
        }
    });
    Ok(Running { child, stdin, replies, stderr_tail })
}

/// The most telling line the worker wrote before it died.
fn crash_reason(tail: &Mutex<VecDeque<String>>) -> String {
    let Ok(tail) = tail.lock() else { return String::new() };
    if let Some(panic) = tail.iter().rev().find_map(|l| l.strip_prefix(PANIC_PREFIX)) {
        return format!(": parser panicked: {panic}");
    }
    if let Some(line) = tail.iter().find(|l| l.starts_with("memory allocation of")) {
        // The allocator's abort message, before the backtrace lines.
        return format!(": out of memory in the parser ({line}; the worker's memory cap)");
    }
    if tail.iter().any(|l| l.contains("overflowed its stack")) {
        return ": stack overflow in the parser (a looping or very deep document structure?)"
            .into();
    }
    match tail.iter().rev().find(|l| !l.trim().is_empty() && !l.starts_with("note:")) {
        Some(line) => format!(": {line}"),
        None => String::new(),
    }
}
