//! Folder watching: tells when files under the library's sources change, so callers re-run the
//! incremental index (which skips unchanged files by size and mtime) and the library stays in
//! sync. Built on `notify` (inotify on Linux, FSEvents on macOS, ReadDirectoryChanges on
//! Windows); events are debounced so a burst of saves becomes one run.

use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::time::{Duration, Instant};

use notify::{EventKind, RecommendedWatcher, RecursiveMode, Watcher};

use crate::error::{Error, Result};
use crate::progress::CancelToken;

/// How often a wait checks its cancel token.
const TICK: Duration = Duration::from_millis(200);

/// Watches folders and files for changes that matter to the library.
pub struct SourceWatcher {
    _watcher: RecommendedWatcher,
    events: Receiver<notify::Result<notify::Event>>,
    ignore: Vec<PathBuf>,
}

impl std::fmt::Debug for SourceWatcher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SourceWatcher").finish_non_exhaustive()
    }
}

/// What a wait ended with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WatchOutcome {
    /// Files changed (created, modified, removed or renamed); the paths seen, deduplicated.
    Changed(Vec<PathBuf>),
    /// Nothing changed within the time limit.
    Quiet,
    /// The cancel token was set.
    Cancelled,
}

impl SourceWatcher {
    /// Watches `sources` (folders recursively, files on their own), ignoring anything under
    /// `ignore` (the library's own folder, when it lies inside a source). Sources that no
    /// longer exist are skipped.
    pub fn new(sources: &[PathBuf], ignore: &[PathBuf]) -> Result<Self> {
        let (tx, events) = channel();
        let mut watcher = notify::recommended_watcher(move |event| {
            let _ = tx.send(event);
        })
        .map_err(|e| Error::internal("cannot start watching folders", e))?;
        for source in sources.iter().filter(|s| s.exists()) {
            let mode = if source.is_dir() {
                RecursiveMode::Recursive
            } else {
                RecursiveMode::NonRecursive
            };
            watcher.watch(source, mode).map_err(|e| {
                Error::user(format!("{}: cannot watch for changes: {e}", source.display()))
            })?;
        }
        Ok(Self { _watcher: watcher, events, ignore: ignore.to_vec() })
    }

    /// Waits up to `limit` for a change, then until `quiet` passes without another one, and
    /// returns every path that changed.
    pub fn wait(&self, limit: Duration, quiet: Duration, cancel: &CancelToken) -> WatchOutcome {
        let deadline = Instant::now() + limit;
        let mut changed: Vec<PathBuf> = Vec::new();
        let mut last_change: Option<Instant> = None;
        loop {
            if cancel.is_cancelled() {
                return WatchOutcome::Cancelled;
            }
            let now = Instant::now();
            if let Some(at) = last_change {
                if now.duration_since(at) >= quiet {
                    changed.sort();
                    changed.dedup();
                    return WatchOutcome::Changed(changed);
                }
            } else if now >= deadline {
                return WatchOutcome::Quiet;
            }
            match self.events.recv_timeout(TICK) {
                Ok(Ok(event)) if matters(&event.kind) => {
                    let paths: Vec<PathBuf> =
                        event.paths.into_iter().filter(|p| !self.ignored(p)).collect();
                    if !paths.is_empty() {
                        changed.extend(paths);
                        last_change = Some(Instant::now());
                    }
                }
                Ok(_) | Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return WatchOutcome::Cancelled,
            }
        }
    }

    fn ignored(&self, path: &Path) -> bool {
        // Hidden files (editor swap files, `.git`) are never indexed, so their churn is noise.
        self.ignore.iter().any(|i| path.starts_with(i))
            || path.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.'))
    }
}

/// Keeps watching the sources `sources()` names (asked again every `recheck`, so folders
/// added later are watched too) and calls `on_change` after each debounced burst of changes,
/// until `cancel` is set. When the sources change, `on_change` is also called once the new
/// watch is in place (with the new sources), since files may have changed between the run
/// that added them and the start of the watch; with `catch_up_on_start` also for the first
/// watch (files may have changed while nothing was running). Errors starting a watch are
/// passed to `on_error` and retried at the next recheck.
#[allow(clippy::too_many_arguments)] // Each is a distinct knob or callback of one loop.
pub fn keep_watching(
    mut sources: impl FnMut() -> Vec<PathBuf>,
    catch_up_on_start: bool,
    ignore: &[PathBuf],
    recheck: Duration,
    quiet: Duration,
    cancel: &CancelToken,
    mut on_change: impl FnMut(Vec<PathBuf>),
    mut on_error: impl FnMut(Error),
) {
    let mut watching: Option<(Vec<PathBuf>, SourceWatcher)> = None;
    while !cancel.is_cancelled() {
        let now = sources();
        if watching.as_ref().is_none_or(|(was, _)| *was != now) {
            let first = watching.is_none();
            watching = match SourceWatcher::new(&now, ignore) {
                Ok(w) => {
                    if (!first || catch_up_on_start) && !now.is_empty() {
                        on_change(now.clone());
                    }
                    Some((now, w))
                }
                Err(e) => {
                    on_error(e);
                    None
                }
            };
        }
        match &watching {
            Some((_, watcher)) => match watcher.wait(recheck, quiet, cancel) {
                WatchOutcome::Changed(paths) => on_change(paths),
                WatchOutcome::Quiet => {}
                WatchOutcome::Cancelled => return,
            },
            None => std::thread::sleep(recheck.min(Duration::from_secs(5))),
        }
    }
}

/// Whether an event can change what the library should hold (not mere reads or metadata
/// queries).
fn matters(kind: &EventKind) -> bool {
    matches!(
        kind,
        EventKind::Create(_) | EventKind::Modify(_) | EventKind::Remove(_) | EventKind::Any
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_changes_once_quiet_and_ignores_the_library() {
        let dir = tempfile::tempdir().unwrap();
        let library = dir.path().join("library");
        std::fs::create_dir_all(&library).unwrap();
        let watcher =
            SourceWatcher::new(&[dir.path().to_owned()], std::slice::from_ref(&library)).unwrap();
        let cancel = CancelToken::new();
        assert_eq!(
            watcher.wait(Duration::from_millis(300), Duration::from_millis(100), &cancel),
            WatchOutcome::Quiet
        );
        std::fs::write(library.join("chunks.lance"), "x").unwrap();
        std::fs::write(dir.path().join("note.txt"), "hello").unwrap();
        std::fs::write(dir.path().join("note.txt"), "hello again").unwrap();
        match watcher.wait(Duration::from_secs(10), Duration::from_millis(300), &cancel) {
            WatchOutcome::Changed(paths) => {
                assert!(paths.iter().any(|p| p.ends_with("note.txt")), "{paths:?}");
                assert!(!paths.iter().any(|p| p.starts_with(&library)), "{paths:?}");
            }
            other => panic!("expected a change, got {other:?}"),
        }
        cancel.cancel();
        assert_eq!(
            watcher.wait(Duration::from_secs(10), Duration::from_millis(100), &cancel),
            WatchOutcome::Cancelled
        );
    }
}
