//! The engine's error type: user mistakes, internal faults, I/O and cancellation kept apart,
//! so the CLI can choose an exit code and the UI can tell "your file is encrypted" from "a bug".

use std::path::PathBuf;

/// Result with the engine's [`Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Every error the engine returns.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Something the user can fix: a missing path, a library built with other settings.
    #[error("{0}")]
    User(String),
    /// A bug or a corrupted index; the message says which part failed.
    #[error("internal error: {message}")]
    Internal {
        /// What was being done.
        message: String,
        /// The underlying cause.
        #[source]
        source: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// Reading or writing a file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or folder involved.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The operation was cancelled through its [`crate::progress::CancelToken`].
    #[error("cancelled")]
    Cancelled,
    /// The operation cannot start while another one runs (one indexing run at a time).
    #[error("{0}")]
    Busy(String),
    /// The operation needs the user to confirm it first (the message says what and why).
    #[error("{0}")]
    NeedsConfirmation(String),
}

impl Error {
    /// A user error with the given message.
    pub fn user(message: impl Into<String>) -> Self {
        Error::User(message.into())
    }

    /// An internal error wrapping its cause.
    pub fn internal(
        message: impl Into<String>,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        Error::Internal { message: message.into(), source: Some(source.into()) }
    }

    /// An internal error without an underlying cause.
    pub fn invariant(message: impl Into<String>) -> Self {
        Error::Internal { message: message.into(), source: None }
    }

    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io { path: path.into(), source }
    }

    /// A short name of the error's kind, for UIs: `user`, `io`, `cancelled`, `busy`,
    /// `confirm` or `internal`.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::User(_) => "user",
            Error::Io { .. } => "io",
            Error::Cancelled => "cancelled",
            Error::Busy(_) => "busy",
            Error::NeedsConfirmation(_) => "confirm",
            Error::Internal { .. } => "internal",
        }
    }

    /// Whether the user can act on this error (exit code 1 rather than 2).
    pub fn is_user_error(&self) -> bool {
        matches!(
            self,
            Error::User(_)
                | Error::Io { .. }
                | Error::Cancelled
                | Error::Busy(_)
                | Error::NeedsConfirmation(_)
        )
    }

    /// A copy of this error for another caller (a failed model load is remembered and
    /// reported to each caller): the same kind and message, the causes kept as text.
    pub fn duplicate(&self) -> Error {
        match self {
            Error::User(m) => Error::User(m.clone()),
            Error::Busy(m) => Error::Busy(m.clone()),
            Error::NeedsConfirmation(m) => Error::NeedsConfirmation(m.clone()),
            Error::Cancelled => Error::Cancelled,
            Error::Io { path, source } => Error::Io {
                path: path.clone(),
                source: std::io::Error::new(source.kind(), CauseText::of(source)),
            },
            Error::Internal { message, source } => Error::Internal {
                message: message.clone(),
                source: source.as_deref().map(|s| Box::new(CauseText::of(s)) as _),
            },
        }
    }

    /// The error's message followed by its chain of causes (`a: b: c`), for edges that show one
    /// line, so the reason a model failed to load is not lost on the way.
    pub fn chain(&self) -> String {
        let mut text = self.to_string();
        let mut source = std::error::Error::source(self);
        while let Some(cause) = source {
            let cause_text = cause.to_string();
            if !text.contains(&cause_text) {
                text.push_str(": ");
                text.push_str(&cause_text);
            }
            source = cause.source();
        }
        text
    }
}

/// An error's text and the chain of causes below it, copied (for [`Error::duplicate`]).
#[derive(Debug)]
struct CauseText {
    text: String,
    source: Option<Box<CauseText>>,
}

impl CauseText {
    fn of(err: &(dyn std::error::Error + 'static)) -> Self {
        Self { text: err.to_string(), source: err.source().map(|s| Box::new(Self::of(s))) }
    }
}

impl std::fmt::Display for CauseText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl std::error::Error for CauseText {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source.as_deref().map(|s| s as _)
    }
}

/// Why text could not be extracted from one file. Recorded on the document as its error.
#[derive(Debug, Clone, thiserror::Error, serde::Serialize, serde::Deserialize, PartialEq, Eq)]
pub enum ExtractError {
    /// The file is encrypted and no password was given.
    #[error("encrypted: {0}")]
    Encrypted(String),
    /// The file is not what its name says, or is too damaged to read.
    #[error("{0}")]
    Malformed(String),
    /// The file type is not supported.
    #[error("unsupported file type: {0}")]
    Unsupported(String),
    /// Reading the file failed.
    #[error("read failed: {0}")]
    Io(String),
    /// The isolated extractor process crashed or exceeded its time limit.
    #[error("extractor {0}")]
    Crashed(String),
}
