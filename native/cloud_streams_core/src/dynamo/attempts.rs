//! Retries and throttles of aws-sdk-dynamodb requests, counted by an interceptor (the SDK's
//! hook into each attempt; it has no retry callback) into the task that sent the request.
//!
//! Every attempt after the first of one operation is a retry; an attempt answered with one
//! of DynamoDB's throttling errors is also a throttle. Counts go to the innermost
//! [`counted`] future of the calling task; requests sent outside one are not counted. The
//! operations of one task run one after the other (ours do), so "the first attempt" is
//! tracked per task.

use aws_sdk_dynamodb::config::interceptors::{
    BeforeSerializationInterceptorContextRef, BeforeTransmitInterceptorContextRef,
    FinalizerInterceptorContextRef,
};
use aws_sdk_dynamodb::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_dynamodb::error::BoxError;
use std::cell::Cell;
use std::future::Future;

/// What the requests of one [`counted`] future went through.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Attempts {
    /// Attempts beyond the first of each operation.
    pub retries: u32,
    /// Attempts DynamoDB answered with a throttling error.
    pub throttles: u32,
}

#[derive(Clone, Copy, Default)]
struct Counts {
    total: Attempts,
    /// Attempts of the operation in progress.
    current: u32,
}

tokio::task_local! {
    static COUNTS: Cell<Counts>;
}

/// Runs `future`, counting the retries and throttles of the SDK requests it sends.
pub async fn counted<F: Future>(future: F) -> (F::Output, Attempts) {
    COUNTS
        .scope(Cell::new(Counts::default()), async move {
            let output = future.await;
            (output, COUNTS.with(|cell| cell.get().total))
        })
        .await
}

fn update(change: impl FnOnce(&mut Counts)) {
    let _ = COUNTS.try_with(|cell| {
        let mut counts = cell.get();
        change(&mut counts);
        cell.set(counts);
    });
}

/// The error codes DynamoDB throttles with (HTTP 400, in the JSON body's `__type`).
const THROTTLING: [&str; 4] = [
    "ProvisionedThroughputExceededException",
    "ThrottlingException",
    "RequestLimitExceeded",
    "LimitExceededException",
];

/// Registered on every client (`client.rs`).
#[derive(Debug)]
pub struct CountAttempts;

impl Intercept for CountAttempts {
    fn name(&self) -> &'static str {
        "cloud_streams::CountAttempts"
    }

    fn read_before_execution(
        &self,
        _context: &BeforeSerializationInterceptorContextRef<'_>,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        update(|counts| counts.current = 0);
        Ok(())
    }

    fn read_before_attempt(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        update(|counts| {
            counts.current += 1;
            if counts.current > 1 {
                counts.total.retries += 1;
            }
        });
        Ok(())
    }

    fn read_after_attempt(
        &self,
        context: &FinalizerInterceptorContextRef<'_>,
        _components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let throttled = context.response().is_some_and(|response| {
            response.status().as_u16() == 400
                && response.body().bytes().is_some_and(|body| {
                    let body = String::from_utf8_lossy(body);
                    THROTTLING.iter().any(|code| body.contains(code))
                })
        });
        if throttled {
            update(|counts| counts.total.throttles += 1);
        }
        Ok(())
    }
}
