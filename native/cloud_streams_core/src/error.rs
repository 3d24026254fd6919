//! The one error type every operation of the core returns.

use std::fmt;

/// What went wrong, in a form a program can branch on. The NIF crate turns it into an atom.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    NotFound,
    AlreadyExists,
    PreconditionFailed,
    NotModified,
    PermissionDenied,
    Unauthenticated,
    Timeout,
    Network,
    Throttled,
    /// The server failed (HTTP 5xx).
    ServerError,
    InvalidArgument,
    NotSupported,
    /// The consumer closed the stream; producers see this and stop.
    Cancelled,
    Internal,
}

impl ErrorKind {
    /// The atom name used on the Elixir side.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::NotFound => "not_found",
            ErrorKind::AlreadyExists => "already_exists",
            ErrorKind::PreconditionFailed => "precondition_failed",
            ErrorKind::NotModified => "not_modified",
            ErrorKind::PermissionDenied => "permission_denied",
            ErrorKind::Unauthenticated => "unauthenticated",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Network => "network",
            ErrorKind::Throttled => "throttled",
            ErrorKind::ServerError => "server_error",
            ErrorKind::InvalidArgument => "invalid_argument",
            ErrorKind::NotSupported => "not_supported",
            ErrorKind::Cancelled => "cancelled",
            ErrorKind::Internal => "internal",
        }
    }

    /// Transient failures: worth trying again as they are (architecture §3).
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            ErrorKind::Timeout | ErrorKind::Network | ErrorKind::Throttled | ErrorKind::ServerError
        )
    }
}

/// An error with a kind, a readable message and, where known, the HTTP status and the path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Error {
    pub kind: ErrorKind,
    pub message: String,
    /// True exactly for transient failures (timeouts, connection failures, throttling, 5xx).
    pub retryable: bool,
    pub status: Option<u16>,
    pub path: Option<String>,
    /// The service's own error code, when it gave one (DynamoDB's `ValidationException`, ...).
    pub code: Option<String>,
    /// A cancelled DynamoDB transaction: why each action failed, in the order of the actions.
    pub cancellation_reasons: Option<Vec<CancellationReason>>,
    /// A batch that failed part-way: how many of its requests were applied.
    pub applied: Option<u64>,
}

/// DynamoDB's reason for one action of a cancelled transaction (`"None"` when the action
/// itself was fine).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CancellationReason {
    pub code: String,
    pub kind: ErrorKind,
    pub message: Option<String>,
}

impl Error {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Error {
            kind,
            message: message.into(),
            retryable: kind.is_transient(),
            status: None,
            path: None,
            code: None,
            cancellation_reasons: None,
            applied: None,
        }
    }

    pub fn invalid_argument(message: impl Into<String>) -> Self {
        Error::new(ErrorKind::InvalidArgument, message)
    }

    pub fn cancelled() -> Self {
        Error::new(
            ErrorKind::Cancelled,
            "the stream was closed by its consumer",
        )
    }

    /// The error a panic inside a stream task becomes.
    pub fn from_panic(payload: &(dyn std::any::Any + Send)) -> Self {
        let detail = payload
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "(no message)".to_string());
        Error::new(ErrorKind::Internal, format!("native panic: {detail}"))
    }

    pub fn with_status(mut self, status: u16) -> Self {
        self.status = Some(status);
        self.retryable = self.retryable || status >= 500 || status == 429;
        self
    }

    pub fn with_path(mut self, path: impl Into<String>) -> Self {
        self.path = Some(path.into());
        self
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind.as_str(), self.message)
    }
}

impl std::error::Error for Error {}
