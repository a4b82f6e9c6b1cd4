//! Indexing runs owned by the engine, so every edge (the desktop shell, `quarry serve`, the
//! CLI's `--watch`) gets the same behaviour from one place: one run at a time, cancel ("pause":
//! the next run resumes), progress snapshots any edge can read or follow, and a folder watch
//! that asks for a re-scan after changes, remembered when a run is already going.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{oneshot, watch};

use super::Engine;
use crate::api::IndexProgress;
use crate::error::{Error, Result};
use crate::progress::{CancelToken, IngestEvent};

/// How often the watch re-reads the library's sources (folders added later get watched).
const WATCH_RECHECK: Duration = Duration::from_secs(3);
/// How long a burst of changes must be quiet before the re-scan starts.
const WATCH_QUIET: Duration = Duration::from_secs(1);

/// The engine's indexing state: the run going (if any), whether a re-scan was asked for
/// while it ran, and the latest progress snapshot with its followers.
pub(super) struct IndexRuns {
    state: Mutex<RunState>,
    progress: watch::Sender<IndexProgress>,
}

#[derive(Default)]
struct RunState {
    running: Option<CancelToken>,
    rescan_requested: bool,
}

impl Default for IndexRuns {
    fn default() -> Self {
        Self { state: Mutex::default(), progress: watch::Sender::new(IndexProgress::default()) }
    }
}

impl std::fmt::Debug for IndexRuns {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IndexRuns").finish_non_exhaustive()
    }
}

/// A started indexing run: cancel it, or wait for its closing snapshot. Dropping it leaves
/// the run going (its progress stays readable through [`Engine::index_progress`]).
#[derive(Debug)]
pub struct IndexJob {
    cancel: CancelToken,
    finished: oneshot::Receiver<IndexProgress>,
}

impl IndexJob {
    /// Asks the run to stop after the files in progress.
    pub fn cancel(&self) {
        self.cancel.cancel();
    }

    /// Waits for the run to end and returns its closing snapshot (report, pause or error).
    pub async fn finished(self) -> IndexProgress {
        self.finished.await.unwrap_or_else(|_| {
            let mut last = IndexProgress::default();
            last.finish(Err(Error::invariant("the indexing run ended without a result")));
            last
        })
    }
}

/// A folder watch started by [`Engine::watch_sources`]; dropping it stops watching.
#[derive(Debug)]
pub struct SourceWatch {
    cancel: CancelToken,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl SourceWatch {
    /// Stops watching and waits for the watch thread to end.
    pub fn stop(mut self) {
        self.cancel.cancel();
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for SourceWatch {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

impl Engine {
    /// Starts indexing `paths` (full paths of existing files or folders; none: every source
    /// again) in the background and returns at once. Fails with [`Error::Busy`] while another run is going: one run at a time per
    /// engine. A hidden folder (`~/.ssh`, `~/.config/…`) or a file without an extension is
    /// added only when `confirmed` (else [`Error::NeedsConfirmation`] says which and why).
    /// Progress goes to [`Engine::index_progress`] and its followers.
    pub fn start_index(self: &Arc<Self>, paths: Vec<PathBuf>, confirmed: bool) -> Result<IndexJob> {
        self.store.check_writable()?;
        // Checked here, before the run goes to the background, so every edge reports a bad
        // path at once (the app's and the web UI's path fields alike).
        for path in &paths {
            if !path.is_absolute() {
                return Err(Error::user(format!(
                    "{}: give the full path of the folder",
                    path.display()
                )));
            }
            super::canonical(path)?;
        }
        if !confirmed {
            needs_no_confirmation(&paths)?;
        }
        self.start_run(paths, false, None)?.ok_or_else(|| Error::invariant("no run was started"))
    }

    /// Indexes one document of the library again with `password`, for a PDF that failed as
    /// locked (the desktop's and the web UI's "Unlock"). The password is used for this run
    /// only: it is not stored, logged or put in the audit log.
    pub fn start_unlock(self: &Arc<Self>, file: PathBuf, password: String) -> Result<IndexJob> {
        self.store.check_writable()?;
        if !file.is_absolute() {
            return Err(Error::user(format!("{}: give the full path of the file", file.display())));
        }
        if password.is_empty() {
            return Err(Error::user("the password is empty"));
        }
        let passwords = crate::ingest::Passwords(vec![password]);
        self.start_run(vec![file], false, Some(passwords))?
            .ok_or_else(|| Error::invariant("no run was started"))
    }

    /// Starts a run, or with `rescan_if_busy` remembers to re-scan when the current one ends
    /// (`Ok(None)`). Deciding and remembering happen under one lock, so a change reported as a
    /// run ends is never lost.
    fn start_run(
        self: &Arc<Self>,
        paths: Vec<PathBuf>,
        rescan_if_busy: bool,
        passwords: Option<crate::ingest::Passwords>,
    ) -> Result<Option<IndexJob>> {
        let cancel = CancelToken::new();
        {
            let mut state = self.runs.state.lock().map_err(|_| poisoned())?;
            if state.running.is_some() {
                if rescan_if_busy {
                    state.rescan_requested = true;
                    return Ok(None);
                }
                return Err(Error::Busy("indexing is already running".into()));
            }
            state.running = Some(cancel.clone());
            state.rescan_requested = false;
        }
        self.runs.progress.send_replace(IndexProgress::started());
        let (done_tx, finished) = oneshot::channel();
        let engine = Arc::clone(self);
        let run_cancel = cancel.clone();
        self.runtime.spawn(async move {
            let started = Instant::now();
            let progress = &engine.runs.progress;
            let mut sink = |event: IngestEvent| {
                progress.send_modify(|p| p.apply(event, started.elapsed().as_secs_f64()));
            };
            let outcome = match passwords {
                Some(passwords) => {
                    engine.reindex_locked(&paths, passwords, &mut sink, &run_cancel).await
                }
                None => engine.index(&paths, &mut sink, &run_cancel).await,
            };
            if let Err(err) = &outcome {
                tracing::warn!(target: "engine::ingest", %err, "indexing run ended");
            }
            progress.send_modify(|p| p.finish(outcome));
            let last = progress.borrow().clone();
            let again = match engine.runs.state.lock() {
                Ok(mut state) => {
                    state.running = None;
                    std::mem::take(&mut state.rescan_requested)
                }
                Err(_) => false,
            };
            let _ = done_tx.send(last);
            if again {
                let _ = engine.start_run(Vec::new(), true, None);
            }
        });
        Ok(Some(IndexJob { cancel, finished }))
    }

    /// Asks the running indexing run to stop after the files in progress; `false` when none
    /// is running.
    pub fn cancel_index(&self) -> bool {
        match self.runs.state.lock() {
            Ok(state) => state.running.as_ref().map(CancelToken::cancel).is_some(),
            Err(_) => false,
        }
    }

    /// The latest snapshot of the current or last indexing run.
    pub fn index_progress(&self) -> IndexProgress {
        self.runs.progress.borrow().clone()
    }

    /// A receiver that sees every new snapshot (the latest one when it falls behind), for
    /// edges that push progress to the UI.
    pub fn follow_index_progress(&self) -> watch::Receiver<IndexProgress> {
        self.runs.progress.subscribe()
    }

    /// Re-scans every source now, or when the current run ends.
    pub fn request_rescan(self: &Arc<Self>) {
        if let Err(err) = self.start_run(Vec::new(), true, None) {
            tracing::warn!(target: "engine::ingest", %err, "cannot start a re-scan");
        }
    }

    /// Watches the library's sources (and folders added later) and re-scans after each burst
    /// of changes, and once at the start for changes made while nothing ran, so the library
    /// stays in sync while the app runs. Watching stops when the returned handle is dropped.
    pub fn watch_sources(self: &Arc<Self>) -> SourceWatch {
        let cancel = CancelToken::new();
        let engine = Arc::clone(self);
        let watch_cancel = cancel.clone();
        let thread = std::thread::Builder::new()
            .name("quarry-watch".into())
            .spawn(move || {
                crate::watch::keep_watching(
                    || engine.store.meta().sources,
                    true,
                    &[engine.store.dir().to_owned()],
                    WATCH_RECHECK,
                    WATCH_QUIET,
                    &watch_cancel,
                    |changed| {
                        tracing::info!(target: "engine::ingest", changed = changed.len(), "sources changed; re-scanning");
                        engine.request_rescan();
                    },
                    |err| tracing::warn!(target: "engine::ingest", %err, "cannot watch the sources"),
                );
            })
            .map_err(|e| tracing::warn!(target: "engine::ingest", %e, "cannot start watching"))
            .ok();
        SourceWatch { cancel, thread }
    }
}

/// Refuses, until the user confirms, paths people rarely mean to put in a library: hidden
/// folders (keys, browser profiles, settings) and files without an extension.
fn needs_no_confirmation(paths: &[PathBuf]) -> Result<()> {
    for path in paths {
        let real = std::fs::canonicalize(path).unwrap_or_else(|_| path.clone());
        let hidden = real.components().any(|c| match c {
            std::path::Component::Normal(name) => name.to_string_lossy().starts_with('.'),
            _ => false,
        });
        if hidden {
            return Err(Error::NeedsConfirmation(format!(
                "{} is a hidden folder (they hold keys and settings more often than documents); \
                 add it anyway?",
                path.display()
            )));
        }
        if real.is_file() && real.extension().is_none() {
            return Err(Error::NeedsConfirmation(format!(
                "{} has no file extension, so its type is a guess; add it anyway?",
                path.display()
            )));
        }
    }
    Ok(())
}

fn poisoned() -> Error {
    Error::invariant("the indexing state is poisoned")
}
