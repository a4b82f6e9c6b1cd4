//! Progress events pushed out of long operations, and the token that cancels them.
//! The engine never draws progress itself: the CLI turns events into a terminal bar, the shell
//! into IPC messages.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use serde::{Deserialize, Serialize};

use crate::api::{DocumentState, IndexReport};

/// A cloneable flag that asks a running operation to stop at its next checkpoint.
#[derive(Debug, Clone, Default)]
pub struct CancelToken(Arc<AtomicBool>);

impl CancelToken {
    /// A token that is not cancelled.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks the operation to stop.
    pub fn cancel(&self) {
        self.0.store(true, Ordering::SeqCst);
    }

    /// Whether cancellation was asked for.
    pub fn is_cancelled(&self) -> bool {
        self.0.load(Ordering::SeqCst)
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
