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

/// Every message-parsing rule above, against messages as object_store 0.14.2 writes them, so
/// an upgrade that changes one fails here. Sources (in the crate, version 0.14.2):
/// `src/client/retry.rs` (`RetryError`'s Display: "Error performing {method} {uri} in
/// {elapsed:?}[, after {n} retries, max_retries: {m}, retry_timeout: {t:?} ] - {inner}";
/// `RequestError::Status`: "Server returned non-2xx status code: {status}: {body}";
/// `RequestError::Response`: "Server returned error response: {body}"; the S3 SlowDown body
/// of its tests), `src/lib.rs` (`Error::Generic`: "Generic {store} error: {source}"),
/// `src/local.rs` (`InvalidRange`: "Requested range was invalid"), `src/memory.rs`
/// ("Invalid range: {source}") and `src/util.rs` (`InvalidGetRange`).
#[cfg(test)]
mod tests {
    use super::*;

    /// A source error whose message is a recorded one.
    #[derive(Debug)]
    struct Recorded(&'static str);

    impl std::fmt::Display for Recorded {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str(self.0)
        }
    }

    impl std::error::Error for Recorded {}

    fn generic(store: &'static str, message: &'static str) -> object_store::Error {
        object_store::Error::Generic {
            store,
            source: Box::new(Recorded(message)),
        }
    }

    fn mapped(store: &'static str, message: &'static str) -> Error {
        from_object_store(generic(store, message), Some("a/b.bin"))
    }

    #[test]
    fn status_codes_are_read_from_retry_errors() {
        let cases = [
            (
                "Error performing GET http://127.0.0.1:9000/bucket/a/b.bin in 1.2ms - Server returned non-2xx status code: 500 Internal Server Error: <Error><Code>InternalError</Code></Error>",
                500,
                ErrorKind::ServerError,
            ),
            (
                "Error performing PUT http://127.0.0.1:9000/bucket/a/b.bin in 25.1s, after 10 retries, max_retries: 10, retry_timeout: 180s  - Server returned non-2xx status code: 503 Service Unavailable: <?xml version=\"1.0\" encoding=\"UTF-8\"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message><RequestId>123</RequestId><HostId>456</HostId></Error>",
                503,
                ErrorKind::Throttled,
            ),
            (
                "Error performing GET http://127.0.0.1:9000/bucket/a/b.bin in 3ms - Server returned non-2xx status code: 429 Too Many Requests: ",
                429,
                ErrorKind::Throttled,
            ),
            (
                "Error performing GET REDACTED in 3ms - Server returned non-2xx status code: 400 Bad Request: cupcakes",
                400,
                ErrorKind::InvalidArgument,
            ),
            (
                "Error performing GET http://127.0.0.1:9000/bucket/a/b.bin in 3ms - Server returned non-2xx status code: 416 Range Not Satisfiable: ",
                416,
                ErrorKind::InvalidArgument,
            ),
            (
                "Error performing GET http://127.0.0.1:9000/bucket/a/b.bin in 2ms, after 2 retries, max_retries: 2, retry_timeout: 1000s  - Server returned non-2xx status code: 502 Bad Gateway: ignored",
                502,
                ErrorKind::ServerError,
            ),
        ];
        for (message, status, kind) in cases {
            let error = mapped("S3", message);
            assert_eq!(error.status, Some(status), "{message}");
            assert_eq!(error.kind, kind, "{message}");
            assert_eq!(error.retryable, kind.is_transient(), "{message}");
            assert_eq!(error.path.as_deref(), Some("a/b.bin"));
            assert!(error
                .message
                .starts_with("Generic S3 error: Error performing"));
        }
    }

    #[test]
    fn an_error_response_without_a_status_is_internal() {
        let error = mapped(
            "S3",
            "Error performing POST http://127.0.0.1:9000/bucket/a/b.bin?uploadId=1 in 4ms - Server returned error response: <Error><Code>InternalError</Code></Error>",
        );
        assert_eq!((error.kind, error.status), (ErrorKind::Internal, None));
        assert!(!error.retryable);
    }

    #[test]
    fn range_errors_are_invalid_arguments() {
        for (store, message) in [
            ("LocalFileSystem", "Requested range was invalid"),
            (
                "Memory",
                "Invalid range: Wanted range starting at 10, but object was only 5 bytes long",
            ),
            ("Memory", "Invalid range: Range started at 7 and ended at 3"),
        ] {
            let error = mapped(store, message);
            assert_eq!(error.kind, ErrorKind::InvalidArgument, "{message}");
            assert_eq!(error.status, None);
        }
    }

    #[test]
    fn transport_failures_are_read_from_http_error_kinds() {
        for (kind, expected) in [
            (HttpErrorKind::Timeout, ErrorKind::Timeout),
            (HttpErrorKind::Connect, ErrorKind::Network),
            (HttpErrorKind::Request, ErrorKind::Network),
            (HttpErrorKind::Interrupted, ErrorKind::Network),
            (HttpErrorKind::Decode, ErrorKind::Network),
            (HttpErrorKind::Unknown, ErrorKind::Internal),
        ] {
            let error = from_object_store(
                object_store::Error::Generic {
                    store: "S3",
                    source: Box::new(HttpError::new(kind, Recorded("connection refused"))),
                },
                None,
            );
            assert_eq!(error.kind, expected, "{kind:?}");
            assert_eq!(error.retryable, expected.is_transient());
        }
    }

    #[test]
    fn named_variants_keep_their_kind_and_the_callers_path() {
        let error = from_object_store(
            object_store::Error::NotFound {
                path: "prefix/a/b.bin".into(),
                source: Box::new(Recorded("No such file or directory (os error 2)")),
            },
            Some("a/b.bin"),
        );
        assert_eq!(
            (error.kind, error.status, error.path.as_deref()),
            (ErrorKind::NotFound, Some(404), Some("a/b.bin"))
        );
        let error = from_object_store(
            object_store::Error::Precondition {
                path: "a/b.bin".into(),
                source: Box::new(Recorded("etag mismatch")),
            },
            None,
        );
        assert_eq!(error.kind, ErrorKind::PreconditionFailed);
        assert_eq!(error.path.as_deref(), Some("a/b.bin"));
    }
}
