//! SDK errors to ours, in one place. The DynamoDB error code (`ConditionalCheckFailedException`,
//! ...) is kept in `Error::code`; the kind says what a program can do about it.

use crate::error::{CancellationReason, Error, ErrorKind};
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_dynamodb::types;

pub fn from_sdk<E>(error: SdkError<E, HttpResponse>) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    match &error {
        SdkError::TimeoutError(_) => Error::new(ErrorKind::Timeout, "the request timed out"),
        SdkError::DispatchFailure(failure) => {
            let detail = chain(&error);
            // Loading credentials fails inside dispatch too: not a network problem, and trying
            // again will not help.
            let kind = if failure.is_timeout() {
                ErrorKind::Timeout
            } else if detail.contains("credential") {
                ErrorKind::Unauthenticated
            } else {
                ErrorKind::Network
            };
            Error::new(kind, format!("the request could not be sent: {detail}"))
        }
        SdkError::ConstructionFailure(_) => Error::new(
            ErrorKind::InvalidArgument,
            format!("the request could not be built: {}", chain(&error)),
        ),
        SdkError::ResponseError(_) => Error::new(
            ErrorKind::Network,
            format!("the response could not be read: {}", chain(&error)),
        ),
        SdkError::ServiceError(context) => {
            let service = context.err();
            let code = service.code().unwrap_or("Unknown").to_string();
            let message = service.message().unwrap_or("(no message)").to_string();
            let status = context.raw().status().as_u16();
            // A 5xx the table below does not name is still the server failing: retryable.
            let kind = match kind_of(&code) {
                ErrorKind::Internal if status >= 500 => ErrorKind::ServerError,
                kind => kind,
            };
            let mut mapped = Error::new(kind, message).with_status(status);
            mapped.code = Some(code);
            mapped
        }
        _ => Error::new(ErrorKind::Internal, chain(&error)),
    }
}

/// A transaction's SDK error. `reasons` finds the cancellation reasons in the service error
/// (a `TransactionCanceledException`), whose type differs by operation.
pub fn from_transaction<E>(
    error: SdkError<E, HttpResponse>,
    reasons: impl FnOnce(&E) -> Option<&[types::CancellationReason]>,
) -> Error
where
    E: ProvideErrorMetadata + std::error::Error + Send + Sync + 'static,
{
    let reasons = error
        .as_service_error()
        .and_then(reasons)
        .map(<[_]>::to_vec);
    let mapped = from_sdk(error);
    match reasons {
        Some(reasons) => cancelled(mapped, &reasons),
        None => mapped,
    }
}

/// A transaction DynamoDB cancelled, with the reason for each action (`cancellation_reasons`
/// of `TransactionCanceledException`). Its kind is the kind of the first action that failed.
pub fn cancelled(mut error: Error, reasons: &[types::CancellationReason]) -> Error {
    let reasons: Vec<CancellationReason> = reasons
        .iter()
        .map(|reason| {
            let code = reason.code().unwrap_or("None").to_string();
            CancellationReason {
                kind: reason_kind(&code),
                message: reason.message().map(str::to_string),
                code,
            }
        })
        .collect();
    if let Some(first) = reasons.iter().find(|r| r.code != "None") {
        error.kind = first.kind;
        error.retryable = first.kind.is_transient();
    }
    error.cancellation_reasons = Some(reasons);
    error
}

/// The kind for a cancellation reason's code, or a PartiQL batch statement's error code
/// (the same names, without `Exception`).
pub fn reason_kind(code: &str) -> ErrorKind {
    match code {
        // This action was fine: another one cancelled the transaction.
        "None" => ErrorKind::Cancelled,
        "ConditionalCheckFailed" => ErrorKind::PreconditionFailed,
        "DuplicateItem" => ErrorKind::AlreadyExists,
        "ResourceNotFound" => ErrorKind::NotFound,
        "TransactionConflict"
        | "ProvisionedThroughputExceeded"
        | "ThrottlingError"
        | "RequestLimitExceeded" => ErrorKind::Throttled,
        "ValidationError" | "ItemCollectionSizeLimitExceeded" => ErrorKind::InvalidArgument,
        "AccessDenied" => ErrorKind::PermissionDenied,
        "InternalServerError" => ErrorKind::ServerError,
        _ => ErrorKind::Internal,
    }
}

/// The kind for a DynamoDB error code.
pub fn kind_of(code: &str) -> ErrorKind {
    match code {
        "ConditionalCheckFailedException" => ErrorKind::PreconditionFailed,
        // Another transaction holds the item, or one with the same client request token is
        // still running: trying again later may succeed.
        "TransactionConflictException"
        | "TransactionInProgressException"
        | "ReplicatedWriteConflictException"
        | "LimitExceededException" => ErrorKind::Throttled,
        "ResourceNotFoundException" => ErrorKind::NotFound,
        // DynamoDB Local answers a PartiQL INSERT of an existing item with "DuplicateItem".
        "ResourceInUseException" | "DuplicateItemException" | "DuplicateItem" => {
            ErrorKind::AlreadyExists
        }
        // A client request token reused for different actions.
        "IdempotentParameterMismatchException" => ErrorKind::InvalidArgument,
        "ProvisionedThroughputExceededException"
        | "ThrottlingException"
        | "RequestLimitExceeded" => ErrorKind::Throttled,
        "ValidationException"
        | "SerializationException"
        | "ItemCollectionSizeLimitExceededException" => ErrorKind::InvalidArgument,
        "AccessDeniedException" => ErrorKind::PermissionDenied,
        "UnrecognizedClientException"
        | "MissingAuthenticationTokenException"
        | "InvalidSignatureException"
        | "ExpiredTokenException" => ErrorKind::Unauthenticated,
        "InternalServerError" | "ServiceUnavailable" => ErrorKind::ServerError,
        _ => ErrorKind::Internal,
    }
}

fn chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// The rules above against what aws-sdk-dynamodb 1.136.0 and its runtime produce: error codes
/// are the names of the SDK's error types (`src/types/error/*.rs` of aws-sdk-dynamodb
/// 1.136.0); credential failures are the messages of `CredentialsError`'s Display
/// (aws-credential-types 1.3.1, `src/provider/error.rs`), which reach us as a dispatch
/// failure (aws-smithy-runtime-api 1.20.0, `src/client/orchestrator.rs`,
/// `OrchestratorError::into_sdk_error`: an error before transmission is
/// `dispatch_failure(ConnectorError::other(..))`); `SdkError`'s and `ConnectorError`'s own
/// Display are "dispatch failure", "other", "io error" (`src/client/result.rs`).
#[cfg(test)]
mod tests {
    use super::*;
    use aws_credential_types::provider::error::CredentialsError;
    use aws_sdk_dynamodb::error::{ConnectorError, ErrorMetadata};
    use aws_sdk_dynamodb::operation::put_item::PutItemError;
    use aws_smithy_runtime_api::http::{Response, StatusCode};
    use aws_smithy_types::body::SdkBody;
    use std::time::Duration;

    type PutError = SdkError<PutItemError, HttpResponse>;

    fn service(code: &str, message: &str, status: u16) -> Error {
        let meta = ErrorMetadata::builder().code(code).message(message).build();
        let response = Response::new(StatusCode::try_from(status).unwrap(), SdkBody::empty());
        from_sdk(PutError::service_error(
            PutItemError::generic(meta),
            response,
        ))
    }

    #[test]
    fn every_sdk_error_code_has_its_kind() {
        use ErrorKind::*;
        let table = [
            ("ConditionalCheckFailedException", PreconditionFailed),
            ("TransactionConflictException", Throttled),
            ("TransactionInProgressException", Throttled),
            ("ReplicatedWriteConflictException", Throttled),
            ("LimitExceededException", Throttled),
            ("ProvisionedThroughputExceededException", Throttled),
            ("ThrottlingException", Throttled),
            ("RequestLimitExceeded", Throttled),
            ("ResourceNotFoundException", NotFound),
            ("ResourceInUseException", AlreadyExists),
            ("DuplicateItemException", AlreadyExists),
            ("IdempotentParameterMismatchException", InvalidArgument),
            ("ItemCollectionSizeLimitExceededException", InvalidArgument),
            ("ValidationException", InvalidArgument),
            ("SerializationException", InvalidArgument),
            ("AccessDeniedException", PermissionDenied),
            ("UnrecognizedClientException", Unauthenticated),
            ("InternalServerError", ServerError),
            // Cancelled transactions take the kind of their first failed action.
            ("TransactionCanceledException", Internal),
        ];
        for (code, kind) in table {
            let error = service(code, "recorded", 400);
            assert_eq!(error.kind, kind, "{code}");
            assert_eq!(error.code.as_deref(), Some(code));
            assert_eq!(error.status, Some(400));
            assert_eq!(error.message, "recorded");
        }
    }

    #[test]
    fn an_unnamed_5xx_is_a_retryable_server_error() {
        let error = service("SomethingNew", "boom", 503);
        assert_eq!(error.kind, ErrorKind::ServerError);
        assert!(error.retryable);
        assert_eq!(
            service("SomethingNew", "boom", 400).kind,
            ErrorKind::Internal
        );
    }

    #[test]
    fn credential_failures_in_dispatch_are_unauthenticated() {
        let failures = [
            CredentialsError::not_loaded_no_source(),
            CredentialsError::provider_error("no profile named cloudstreamsprofile"),
            CredentialsError::provider_timed_out(Duration::from_secs(5)),
            CredentialsError::invalid_configuration("bad"),
            CredentialsError::unhandled("unexpected"),
        ];
        for failure in failures {
            let shown = failure.to_string();
            let error = from_sdk(PutError::dispatch_failure(ConnectorError::other(
                Box::new(failure),
                None,
            )));
            assert_eq!(error.kind, ErrorKind::Unauthenticated, "{shown}");
            assert!(!error.retryable);
            assert!(
                error
                    .message
                    .starts_with("the request could not be sent: dispatch failure"),
                "{}",
                error.message
            );
        }
    }

    #[test]
    fn transport_failures_in_dispatch() {
        let io = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused");
        let error = from_sdk(PutError::dispatch_failure(ConnectorError::io(Box::new(io))));
        assert_eq!(error.kind, ErrorKind::Network);
        assert!(error.retryable);
        assert!(
            error.message.contains("io error: connection refused"),
            "{}",
            error.message
        );

        let slow = std::io::Error::new(std::io::ErrorKind::TimedOut, "slow");
        let error = from_sdk(PutError::dispatch_failure(ConnectorError::timeout(
            Box::new(slow),
        )));
        assert_eq!(error.kind, ErrorKind::Timeout);

        let error = from_sdk(PutError::timeout_error("operation timeout"));
        assert_eq!((error.kind, error.retryable), (ErrorKind::Timeout, true));
    }

    fn reason(code: Option<&str>, message: Option<&str>) -> types::CancellationReason {
        types::CancellationReason::builder()
            .set_code(code.map(str::to_string))
            .set_message(message.map(str::to_string))
            .build()
    }

    #[test]
    fn a_cancelled_transaction_takes_the_kind_of_its_first_failed_action() {
        let base = service("TransactionCanceledException", "Transaction cancelled", 400);
        let error = cancelled(
            base.clone(),
            &[
                reason(Some("None"), None),
                reason(
                    Some("ConditionalCheckFailed"),
                    Some("The conditional request failed"),
                ),
                reason(
                    Some("TransactionConflict"),
                    Some("Transaction is ongoing for the item"),
                ),
            ],
        );
        assert_eq!(error.kind, ErrorKind::PreconditionFailed);
        assert!(!error.retryable);
        let reasons = error.cancellation_reasons.unwrap();
        let codes: Vec<_> = reasons.iter().map(|r| (r.code.as_str(), r.kind)).collect();
        assert_eq!(
            codes,
            [
                ("None", ErrorKind::Cancelled),
                ("ConditionalCheckFailed", ErrorKind::PreconditionFailed),
                ("TransactionConflict", ErrorKind::Throttled),
            ]
        );
        assert_eq!(
            reasons[1].message.as_deref(),
            Some("The conditional request failed")
        );

        // A conflict is worth retrying.
        let error = cancelled(
            base,
            &[
                reason(None, None),
                reason(Some("TransactionConflict"), None),
            ],
        );
        assert_eq!((error.kind, error.retryable), (ErrorKind::Throttled, true));
        assert_eq!(error.cancellation_reasons.unwrap()[0].code, "None");
    }

    #[test]
    fn reason_and_batch_statement_codes() {
        // The values of aws-sdk-dynamodb 1.136.0's BatchStatementErrorCodeEnum and of
        // CancellationReason codes in the TransactWriteItems reference.
        use ErrorKind::*;
        for (code, kind) in [
            ("ConditionalCheckFailed", PreconditionFailed),
            ("DuplicateItem", AlreadyExists),
            ("ResourceNotFound", NotFound),
            ("TransactionConflict", Throttled),
            ("ProvisionedThroughputExceeded", Throttled),
            ("ThrottlingError", Throttled),
            ("RequestLimitExceeded", Throttled),
            ("ValidationError", InvalidArgument),
            ("ItemCollectionSizeLimitExceeded", InvalidArgument),
            ("AccessDenied", PermissionDenied),
            ("InternalServerError", ServerError),
            ("None", Cancelled),
        ] {
            assert_eq!(reason_kind(code), kind, "{code}");
            // Every code but "None" is one the SDK knows.
            let known = types::BatchStatementErrorCodeEnum::values().contains(&code);
            assert_eq!(known, code != "None", "{code}");
        }
    }
}
