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
    /// A worker started lazily with `command` (program then arguments).
    pub fn new(command: Vec<String>, timeout: Duration) -> Self {
        Self { command, timeout, running: None }
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
            self.running = Some(spawn(&self.command)?);
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

fn spawn(command: &[String]) -> Result<Running, ExtractError> {
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
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
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
    if tail.iter().any(|l| l.contains("overflowed its stack")) {
        return ": stack overflow in the parser (a looping or very deep document structure?)"
            .into();
    }
    match tail.iter().rev().find(|l| !l.trim().is_empty() && !l.starts_with("note:")) {
        Some(line) => format!(": {line}"),
        None => String::new(),
    }
}
