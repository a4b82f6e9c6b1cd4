//! Progress events pushed out of long operations, and the token that cancels them.
//! The engine never draws progress itself: the CLI turns events into a terminal bar, the shell
//! into IPC messages.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};

use crate::api::{DocumentState, IndexProgress, IndexReport};

/// A cloneable flag that asks a running operation to stop at its next checkpoint.
#[derive(Debug, Clone, Default)]
pub struct CancelToken {
    own: Arc<AtomicBool>,
    /// The token this one was derived from: cancelling it cancels this one too.
    parent: Option<Arc<CancelToken>>,
}

impl CancelToken {
    /// A token that is not cancelled.
    pub fn new() -> Self {
        Self::default()
    }

    /// A token that is cancelled when `self` is, and can also be cancelled on its own without
    /// cancelling `self` (the answer pipeline stops a looping generation this way while the
    /// user's Stop button still reaches the model).
    pub fn child(&self) -> Self {
        Self { own: Arc::default(), parent: Some(Arc::new(self.clone())) }
    }

    /// Asks the operation to stop.
    pub fn cancel(&self) {
        self.own.store(true, Ordering::SeqCst);
    }

    /// Whether cancellation was asked for (of this token or the one it was derived from).
    pub fn is_cancelled(&self) -> bool {
        self.own.load(Ordering::SeqCst) || self.parent.as_ref().is_some_and(|p| p.is_cancelled())
    }
}

/// What happens while a library is being indexed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum IngestEvent {
    /// The walk finished: `total` files need extracting, `unchanged` are up to date.
    Planned {
        /// Files to extract and index.
        total: u64,
        /// Files already up to date.
        unchanged: u64,
        /// Documents to remove because their file is gone.
        removed: u64,
    },
    /// One file is done, whatever its outcome.
    FileDone {
        /// The file.
        path: String,
        /// Its new state.
        state: DocumentState,
        /// Pages extracted.
        pages: u32,
        /// Chunks produced.
        chunks: u32,
        /// The failure reason, if any.
        error: Option<String>,
        /// Warnings found while extracting.
        warnings: Vec<String>,
    },
    /// A batch of documents is committed to both indexes.
    Committed {
        /// Files finished so far in this run.
        done: u64,
        /// Files to do in this run.
        total: u64,
    },
    /// The run ended.
    Finished {
        /// What it did.
        report: IndexReport,
    },
}

/// Receives [`IngestEvent`]s. Implemented for every `FnMut(IngestEvent) + Send`.
pub trait ProgressSink: Send {
    /// Called once per event, in order.
    fn event(&mut self, event: IngestEvent);
}

impl<F: FnMut(IngestEvent) + Send> ProgressSink for F {
    fn event(&mut self, event: IngestEvent) {
        self(event)
    }
}

impl IndexProgress {
    /// A snapshot for a run that just started.
    pub fn started() -> Self {
        Self { running: true, ..Self::default() }
    }

    /// Folds one event of a run that has been going for `elapsed_secs` into the snapshot:
    /// counts, the current file, the rate and the time left at that rate.
    pub fn apply(&mut self, event: IngestEvent, elapsed_secs: f64) {
        match event {
            IngestEvent::Planned { total, unchanged, .. } => {
                self.total = total;
                self.unchanged = unchanged;
            }
            IngestEvent::FileDone { path, error, .. } => {
                self.done += 1;
                self.failed += u64::from(error.is_some());
                self.current = Some(path);
            }
            IngestEvent::Committed { .. } => {}
            IngestEvent::Finished { report } => self.report = Some(report),
        }
        self.rate_per_s = self.done as f64 / elapsed_secs.max(1e-3);
        self.eta_s = (self.rate_per_s > 0.0 && self.total >= self.done)
            .then(|| (self.total - self.done) as f64 / self.rate_per_s);
    }

    /// Closes the snapshot with the run's outcome: a report, a pause (cancelled; the next run
    /// resumes), or an error.
    pub fn finish(&mut self, outcome: std::result::Result<IndexReport, crate::error::Error>) {
        self.running = false;
        self.eta_s = None;
        self.current = None;
        match outcome {
            Ok(report) => {
                self.paused = false;
                self.report = Some(report);
            }
            Err(crate::error::Error::Cancelled) => self.paused = true,
            Err(err) => self.error = Some(err.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_token_sees_its_parent_but_not_the_reverse() {
        let parent = CancelToken::new();
        let child = parent.child();
        let grandchild = child.child();
        child.cancel();
        assert!(child.is_cancelled() && grandchild.is_cancelled());
        assert!(!parent.is_cancelled());
        let other = parent.child();
        parent.cancel();
        assert!(other.is_cancelled());
    }

    #[test]
    fn progress_counts_rate_and_eta() {
        let mut p = IndexProgress::started();
        p.apply(IngestEvent::Planned { total: 10, unchanged: 3, removed: 0 }, 0.5);
        for i in 0..4 {
            p.apply(
                IngestEvent::FileDone {
                    path: format!("/d/{i}.txt"),
                    state: DocumentState::Indexed,
                    pages: 1,
                    chunks: 1,
                    error: (i == 2).then(|| "broken".to_owned()),
                    warnings: vec![],
                },
                2.0,
            );
        }
        assert_eq!((p.total, p.done, p.failed, p.unchanged), (10, 4, 1, 3));
        assert_eq!(p.rate_per_s, 2.0);
        assert_eq!(p.eta_s, Some(3.0));
        assert_eq!(p.current.as_deref(), Some("/d/3.txt"));
        p.finish(Err(crate::error::Error::Cancelled));
        assert!(!p.running && p.paused && p.eta_s.is_none());
    }
}
