//! SDK errors to ours, in one place. The DynamoDB error code (`ConditionalCheckFailedException`,
//! ...) is kept in `Error::code`; the kind says what a program can do about it.

use crate::error::{Error, ErrorKind};
use aws_sdk_dynamodb::config::http::HttpResponse;
use aws_sdk_dynamodb::error::{ProvideErrorMetadata, SdkError};

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

/// The kind for a DynamoDB error code.
pub fn kind_of(code: &str) -> ErrorKind {
    match code {
        "ConditionalCheckFailedException" => ErrorKind::PreconditionFailed,
        // Another transaction holds the item: trying again later may succeed.
        "TransactionConflictException" | "LimitExceededException" => ErrorKind::Throttled,
        "ResourceNotFoundException" => ErrorKind::NotFound,
        "ResourceInUseException" => ErrorKind::AlreadyExists,
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
