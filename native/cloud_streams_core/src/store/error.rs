//! object_store errors to ours, in one place: a kind a program can branch on, the HTTP status
//! when there was one, the path, and a message that says what happened.

use crate::error::{Error, ErrorKind};
use object_store::client::{HttpError, HttpErrorKind};

/// Maps an object_store error. `path`, the path as the caller gave it, wins over the path the
/// error names (which includes a store's prefix).
pub fn from_object_store(error: object_store::Error, path: Option<&str>) -> Error {
    use object_store::Error as E;
    let message = error.to_string();
    let (kind, error_path, status) = match &error {
        E::NotFound { path, .. } => (ErrorKind::NotFound, Some(path.clone()), Some(404)),
        E::AlreadyExists { path, .. } => (ErrorKind::AlreadyExists, Some(path.clone()), None),
        E::Precondition { path, .. } => (ErrorKind::PreconditionFailed, Some(path.clone()), None),
        E::NotModified { path, .. } => (ErrorKind::NotModified, Some(path.clone()), None),
        E::PermissionDenied { path, .. } => {
            (ErrorKind::PermissionDenied, Some(path.clone()), Some(403))
        }
        E::Unauthenticated { path, .. } => {
            (ErrorKind::Unauthenticated, Some(path.clone()), Some(401))
        }
        E::NotSupported { .. } | E::NotImplemented { .. } => (ErrorKind::NotSupported, None, None),
        E::InvalidPath { .. } | E::UnknownConfigurationKey { .. } => {
            (ErrorKind::InvalidArgument, None, None)
        }
        E::JoinError { .. } => (ErrorKind::Internal, None, None),
        _ => {
            let status = status_in(&message);
            (classify_generic(&error, status, &message), None, status)
        }
    };
    let mut mapped = Error::new(kind, message);
    if let Some(status) = status.or_else(|| status_in(&mapped.message)) {
        mapped = mapped.with_status(status);
    }
    match path.or(error_path.as_deref()) {
        Some(p) => mapped.with_path(p),
        None => mapped,
    }
}

/// Generic errors carry the transport failure or the HTTP status in their source chain.
fn classify_generic(error: &object_store::Error, status: Option<u16>, message: &str) -> ErrorKind {
    if let Some(http) = find_source::<HttpError>(error) {
        return match http.kind() {
            HttpErrorKind::Timeout => ErrorKind::Timeout,
            // Building the request failed (bad configuration): trying again cannot help.
            HttpErrorKind::Unknown => ErrorKind::Internal,
            _ => ErrorKind::Network,
        };
    }
    match status {
        Some(429) => ErrorKind::Throttled,
        Some(503) if message.contains("SlowDown") => ErrorKind::Throttled,
        Some(400) | Some(416) => ErrorKind::InvalidArgument,
        Some(s) if s >= 500 => ErrorKind::ServerError,
        _ if is_range_error(message) => ErrorKind::InvalidArgument,
        _ => ErrorKind::Internal,
    }
}

fn find_source<T: std::error::Error + 'static>(error: &object_store::Error) -> Option<&T> {
    let mut current: Option<&(dyn std::error::Error + 'static)> = Some(error);
    while let Some(e) = current {
        if let Some(found) = e.downcast_ref::<T>() {
            return Some(found);
        }
        current = e.source();
    }
    None
}

/// object_store's retry error is not nameable outside the crate; its message always reads
/// "... status code: NNN ..." when the server answered with an error status.
fn status_in(message: &str) -> Option<u16> {
    let rest = &message[message.find("status code: ")? + "status code: ".len()..];
    rest.get(..3)?.parse().ok()
}

fn is_range_error(message: &str) -> bool {
    message.to_ascii_lowercase().contains("range")
}
