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
