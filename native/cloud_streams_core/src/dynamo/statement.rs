//! PartiQL: one statement page at a time ([`execute`]), many statements in one request
//! ([`batch_execute`]), and a statement's pages as a pull stream ([`run`]) that follows
//! `NextToken`, calling [`Sink::reserve`] before each request as the scans do (`stream.rs`), so
//! pages are fetched only while the buffer has room.

use crate::dynamo::attempts::counted;
use crate::dynamo::error::{from_sdk, reason_kind};
use crate::dynamo::ops::Page;
use crate::dynamo::stream::SegmentPage;
use crate::dynamo::{AttributeValue, Item};
use crate::error::Error;
use crate::pull::{Sink, Weighed};
use aws_sdk_dynamodb::types::BatchStatementRequest;
use aws_sdk_dynamodb::Client;
use std::time::Duration;

/// A statement with its `?` parameters, in order.
#[derive(Debug, Clone, Default)]
pub struct Statement {
    pub statement: String,
    pub parameters: Vec<AttributeValue>,
    pub consistent_read: bool,
    /// DynamoDB's `Limit`: items evaluated per page.
    pub limit: Option<i32>,
    pub next_token: Option<String>,
}

/// One page of a statement's results. `next_token` is `None` on the last page.
#[derive(Debug, Clone, Default)]
pub struct StatementPage {
    pub items: Vec<Item>,
    pub next_token: Option<String>,
}

/// One page of a statement.
pub async fn execute(client: &Client, statement: &Statement) -> Result<StatementPage, Error> {
    let output = client
        .execute_statement()
        .statement(&statement.statement)
        .set_parameters((!statement.parameters.is_empty()).then(|| statement.parameters.clone()))
        .consistent_read(statement.consistent_read)
        .set_limit(statement.limit)
        .set_next_token(statement.next_token.clone())
        .send()
        .await
        .map_err(from_sdk)?;
    Ok(StatementPage {
        items: output.items.unwrap_or_default(),
        next_token: output.next_token.filter(|token| !token.is_empty()),
    })
}

/// Up to 25 statements in one request. Each statement succeeds or fails on its own: its
/// result is the item it read (`None` for writes and missing items) or its error, whose
/// `code` is DynamoDB's (`ConditionalCheckFailed`, `DuplicateItem`, ...).
pub async fn batch_execute(
    client: &Client,
    statements: Vec<Statement>,
) -> Result<Vec<Result<Option<Item>, Error>>, Error> {
    let requests = statements
        .into_iter()
        .map(|s| {
            BatchStatementRequest::builder()
                .statement(s.statement)
                .set_parameters((!s.parameters.is_empty()).then_some(s.parameters))
                .consistent_read(s.consistent_read)
                .build()
                .map_err(|e| Error::invalid_argument(e.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let output = client
        .batch_execute_statement()
        .set_statements(Some(requests))
        .send()
        .await
        .map_err(from_sdk)?;
    Ok(output
        .responses
        .unwrap_or_default()
        .into_iter()
        .map(|response| match response.error {
            Some(error) => {
                let code = error
                    .code
                    .as_ref()
                    .map_or("Unknown", |c| c.as_str())
                    .to_string();
                let mut mapped = Error::new(
                    reason_kind(&code),
                    error.message.unwrap_or_else(|| code.clone()),
                );
                mapped.code = Some(code);
                Err(mapped)
            }
            None => Ok(response.item.filter(|item| !item.is_empty())),
        })
        .collect())
}

/// Every page of `statement` into `sink`, following `NextToken`. Pages travel as the scans'
/// [`SegmentPage`] (segment 0), so they are weighed and encoded the same way.
pub async fn run<T, W>(
    client: Client,
    mut statement: Statement,
    sink: Sink<T>,
    wrap: W,
) -> Result<(), Error>
where
    T: Weighed + Send + 'static,
    W: Fn(SegmentPage) -> T + Send + Sync + 'static,
{
    loop {
        sink.reserve().await?;
        let (page, attempts) = counted(execute(&client, &statement)).await;
        let page = page?;
        let count = page.items.len() as i32;
        let next = page.next_token;
        let page = Page {
            items: page.items,
            count,
            scanned_count: count,
            ..Page::default()
        };
        let page = SegmentPage {
            segment: 0,
            page,
            attempts,
            capacity_wait: Duration::ZERO,
        };
        sink.send(wrap(page)).await?;
        match next {
            Some(token) => statement.next_token = Some(token),
            None => return Ok(()),
        }
    }
}
