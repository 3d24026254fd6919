//! DynamoDB operations. Each takes a client and plain Rust values; the NIF layer decodes terms
//! into these and encodes the results.

use crate::dynamo::error::{self, from_sdk};
use crate::dynamo::stream::CapacityLimiter;
use crate::dynamo::Item;
use crate::error::{Error, ErrorKind};
use aws_sdk_dynamodb::operation::transact_get_items::TransactGetItemsError;
use aws_sdk_dynamodb::operation::transact_write_items::TransactWriteItemsError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, ConditionCheck, Delete, DeleteRequest, Get,
    GlobalSecondaryIndex, KeySchemaElement, KeyType, KeysAndAttributes, Projection, ProjectionType,
    Put, PutRequest, ReturnConsumedCapacity, ReturnValue, ScalarAttributeType, Select,
    TransactGetItem, TransactWriteItem, Update, WriteRequest,
};
use aws_sdk_dynamodb::Client;
use std::collections::HashMap;
use std::time::Duration;

/// Expression names and values shared by every expression of one request.
#[derive(Debug, Clone, Default)]
pub struct Expressions {
    pub condition: Option<String>,
    pub names: HashMap<String, String>,
    pub values: Item,
}

fn non_empty<K, V>(map: &HashMap<K, V>) -> Option<HashMap<K, V>>
where
    K: Clone + Eq + std::hash::Hash,
    V: Clone,
{
    (!map.is_empty()).then(|| map.clone())
}

pub async fn put_item(
    client: &Client,
    table: &str,
    item: Item,
    expressions: Expressions,
) -> Result<(), Error> {
    client
        .put_item()
        .table_name(table)
        .set_item(Some(item))
        .set_condition_expression(expressions.condition)
        .set_expression_attribute_names(non_empty(&expressions.names))
        .set_expression_attribute_values(non_empty(&expressions.values))
        .send()
        .await
        .map(|_| ())
        .map_err(from_sdk)
}

pub async fn get_item(
    client: &Client,
    table: &str,
    key: Item,
    consistent_read: bool,
    projection: Option<String>,
    names: HashMap<String, String>,
) -> Result<Option<Item>, Error> {
    client
        .get_item()
        .table_name(table)
        .set_key(Some(key))
        .consistent_read(consistent_read)
        .set_projection_expression(projection)
        .set_expression_attribute_names(non_empty(&names))
        .send()
        .await
        .map(|output| output.item)
        .map_err(from_sdk)
}

/// Deletes an item; returns the item as it was, if there was one.
pub async fn delete_item(
    client: &Client,
    table: &str,
    key: Item,
    expressions: Expressions,
) -> Result<Option<Item>, Error> {
    client
        .delete_item()
        .table_name(table)
        .set_key(Some(key))
        .set_condition_expression(expressions.condition)
        .set_expression_attribute_names(non_empty(&expressions.names))
        .set_expression_attribute_values(non_empty(&expressions.values))
        .return_values(ReturnValue::AllOld)
        .send()
        .await
        .map(|output| output.attributes)
        .map_err(from_sdk)
}

/// Updates an item; returns it as it is after the update.
pub async fn update_item(
    client: &Client,
    table: &str,
    key: Item,
    update_expression: String,
    expressions: Expressions,
) -> Result<Item, Error> {
    client
        .update_item()
        .table_name(table)
        .set_key(Some(key))
        .update_expression(update_expression)
        .set_condition_expression(expressions.condition)
        .set_expression_attribute_names(non_empty(&expressions.names))
        .set_expression_attribute_values(non_empty(&expressions.values))
        .return_values(ReturnValue::AllNew)
        .send()
        .await
        .map(|output| output.attributes.unwrap_or_default())
        .map_err(from_sdk)
}

/// A scan or a query: what to read, one page at a time.
#[derive(Debug, Clone, Default)]
pub struct Read {
    pub table: String,
    pub index_name: Option<String>,
    /// Queries only.
    pub key_condition_expression: Option<String>,
    pub filter_expression: Option<String>,
    pub projection_expression: Option<String>,
    pub names: HashMap<String, String>,
    pub values: Item,
    pub consistent_read: bool,
    /// DynamoDB's `Limit`: items evaluated per page.
    pub limit: Option<i32>,
    pub exclusive_start_key: Option<Item>,
    /// Scans only: `(segment, total_segments)`, always sent together.
    pub segment: Option<(i32, i32)>,
    pub select_count: bool,
    /// Queries only: ascending sort key order (DynamoDB's `ScanIndexForward`).
    pub forward: bool,
    /// Ask for `ConsumedCapacity` (it costs the service work: streams ask only to pace).
    pub report_capacity: bool,
}

/// One page. Only a missing `last_evaluated_key` ends a scan; empty pages are normal.
#[derive(Debug, Clone, Default)]
pub struct Page {
    pub items: Vec<Item>,
    pub last_evaluated_key: Option<Item>,
    pub count: i32,
    pub scanned_count: i32,
    /// Read capacity units this page consumed, when the service says.
    pub consumed_capacity: Option<f64>,
}

/// A page from a scan or query output (two types with the same fields).
macro_rules! page {
    ($output:expr) => {{
        let output = $output;
        Page {
            items: output.items.unwrap_or_default(),
            last_evaluated_key: output.last_evaluated_key.filter(|key| !key.is_empty()),
            count: output.count,
            scanned_count: output.scanned_count,
            consumed_capacity: output.consumed_capacity.and_then(|c| c.capacity_units),
        }
    }};
}

pub async fn scan_page(client: &Client, read: &Read) -> Result<Page, Error> {
    let output = client
        .scan()
        .table_name(&read.table)
        .set_index_name(read.index_name.clone())
        .set_filter_expression(read.filter_expression.clone())
        .set_projection_expression(read.projection_expression.clone())
        .set_expression_attribute_names(non_empty(&read.names))
        .set_expression_attribute_values(non_empty(&read.values))
        .consistent_read(read.consistent_read)
        .set_limit(read.limit)
        .set_exclusive_start_key(read.exclusive_start_key.clone())
        .set_segment(read.segment.map(|(segment, _)| segment))
        .set_total_segments(read.segment.map(|(_, total)| total))
        .set_select(read.select_count.then_some(Select::Count))
        .set_return_consumed_capacity(
            read.report_capacity
                .then_some(ReturnConsumedCapacity::Total),
        )
        .send()
        .await
        .map_err(from_sdk)?;
    Ok(page!(output))
}

pub async fn query_page(client: &Client, read: &Read) -> Result<Page, Error> {
    let output = client
        .query()
        .table_name(&read.table)
        .set_index_name(read.index_name.clone())
        .set_key_condition_expression(read.key_condition_expression.clone())
        .set_filter_expression(read.filter_expression.clone())
        .set_projection_expression(read.projection_expression.clone())
        .set_expression_attribute_names(non_empty(&read.names))
        .set_expression_attribute_values(non_empty(&read.values))
        .consistent_read(read.consistent_read)
        .set_limit(read.limit)
        .set_exclusive_start_key(read.exclusive_start_key.clone())
        .set_select(read.select_count.then_some(Select::Count))
        .scan_index_forward(read.forward)
        .set_return_consumed_capacity(
            read.report_capacity
                .then_some(ReturnConsumedCapacity::Total),
        )
        .send()
        .await
        .map_err(from_sdk)?;
    Ok(page!(output))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    Scan,
    Query,
}

/// One page of a scan or a query.
pub async fn read_page(client: &Client, operation: Operation, read: &Read) -> Result<Page, Error> {
    match operation {
        Operation::Scan => scan_page(client, read).await,
        Operation::Query => query_page(client, read).await,
    }
}

/// Attempts at items DynamoDB left unprocessed, before giving up with `:throttled`.
pub(crate) const UNPROCESSED_ATTEMPTS: u32 = 10;

/// Backoff before retry `attempt` (from 0): exponential from 50 ms, capped at 5 s, with jitter.
pub(crate) fn backoff(attempt: u32) -> Duration {
    let base = 50u64.saturating_mul(1 << attempt.min(7)).min(5_000);
    let jitter = u64::from(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .subsec_nanos(),
    ) % base.max(1);
    Duration::from_millis(base / 2 + jitter / 2)
}

/// Writes and deletes items, 25 per request; unprocessed items are retried with backoff until
/// done. Returns how many requests were applied; an error says in `applied` how many were
/// applied before it.
pub async fn batch_write(
    client: &Client,
    table: &str,
    puts: Vec<Item>,
    deletes: Vec<Item>,
) -> Result<usize, Error> {
    let mut requests = put_requests(puts)?;
    requests.extend(
        deletes
            .into_iter()
            .map(|key| {
                DeleteRequest::builder()
                    .set_key(Some(key))
                    .build()
                    .map(|d| WriteRequest::builder().delete_request(d).build())
            })
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| Error::invalid_argument(e.to_string()))?,
    );
    let total = requests.len();
    let mut applied = 0;
    for batch in requests.chunks(25) {
        write_batch(client, table, batch.to_vec(), None, &mut applied)
            .await
            .map_err(|mut error| {
                error.applied = Some(applied as u64);
                error
            })?;
    }
    Ok(total)
}

/// `items` as the put requests of a `BatchWriteItem`.
pub(crate) fn put_requests(items: Vec<Item>) -> Result<Vec<WriteRequest>, Error> {
    items
        .into_iter()
        .map(|item| {
            PutRequest::builder()
                .set_item(Some(item))
                .build()
                .map(|p| WriteRequest::builder().put_request(p).build())
        })
        .collect::<Result<_, _>>()
        .map_err(|e| Error::invalid_argument(e.to_string()))
}

/// Sends one `BatchWriteItem` of at most 25 requests until DynamoDB has processed all of it:
/// what it leaves unprocessed is sent again with backoff, at most [`UNPROCESSED_ATTEMPTS`]
/// times. `applied` counts the requests processed, also when it fails. With `limiter`,
/// requests are paced by the capacity they consume.
pub(crate) async fn write_batch(
    client: &Client,
    table: &str,
    mut pending: Vec<WriteRequest>,
    limiter: Option<&CapacityLimiter>,
    applied: &mut usize,
) -> Result<(), Error> {
    let mut attempt = 0;
    loop {
        // A put consumes at least one write unit per item: held before sending, so the
        // requests in flight at once are paced too.
        let expected = pending.len() as f64;
        if let Some(limiter) = limiter {
            limiter.wait_reserving(expected).await;
        }
        let sent = pending.len();
        let output = client
            .batch_write_item()
            .request_items(table, pending)
            // Asked for only when paced: on DynamoDB Local, asking for it cut an import's
            // rate by about a fifth (`make bench`, table transfer rows).
            .set_return_consumed_capacity(limiter.map(|_| ReturnConsumedCapacity::Total))
            .send()
            .await
            .map_err(from_sdk)?;
        if let Some(limiter) = limiter {
            let units = output
                .consumed_capacity()
                .iter()
                .filter_map(|c| c.capacity_units)
                .sum::<f64>();
            limiter.consumed(units - expected);
        }
        pending = output
            .unprocessed_items
            .and_then(|mut unprocessed| unprocessed.remove(table))
            .unwrap_or_default();
        *applied += sent - pending.len();
        if pending.is_empty() {
            return Ok(());
        }
        if attempt == UNPROCESSED_ATTEMPTS {
            return Err(unprocessed_error(pending.len()));
        }
        tokio::time::sleep(backoff(attempt)).await;
        attempt += 1;
    }
}

/// Reads items by key, 100 per request; unprocessed keys are retried with backoff. Missing
/// items are simply absent from the result.
pub async fn batch_get(
    client: &Client,
    table: &str,
    keys: Vec<Item>,
    consistent_read: bool,
) -> Result<Vec<Item>, Error> {
    let mut found = Vec::with_capacity(keys.len());
    for batch in keys.chunks(100) {
        let mut pending = Some(
            KeysAndAttributes::builder()
                .set_keys(Some(batch.to_vec()))
                .consistent_read(consistent_read)
                .build()
                .map_err(|e| Error::invalid_argument(e.to_string()))?,
        );
        let mut attempt = 0;
        while let Some(request) = pending.take() {
            let output = client
                .batch_get_item()
                .request_items(table, request)
                .send()
                .await
                .map_err(from_sdk)?;
            found.extend(
                output
                    .responses
                    .and_then(|mut responses| responses.remove(table))
                    .unwrap_or_default(),
            );
            pending = output
                .unprocessed_keys
                .and_then(|mut unprocessed| unprocessed.remove(table))
                .filter(|rest| !rest.keys.is_empty());
            if let Some(rest) = &pending {
                if attempt == UNPROCESSED_ATTEMPTS {
                    return Err(unprocessed_error(rest.keys.len()));
                }
                tokio::time::sleep(backoff(attempt)).await;
                attempt += 1;
            }
        }
    }
    Ok(found)
}

pub(crate) fn unprocessed_error(left: usize) -> Error {
    Error::new(
        ErrorKind::Throttled,
        format!("{left} items were still unprocessed after {UNPROCESSED_ATTEMPTS} retries"),
    )
}

/// A key attribute: its name and scalar type (`S`, `N` or `B`).
#[derive(Debug, Clone)]
pub struct KeyAttribute {
    pub name: String,
    pub kind: String,
}

/// A global secondary index: its name and keys; it projects every attribute.
#[derive(Debug, Clone)]
pub struct Index {
    pub name: String,
    pub partition: KeyAttribute,
    pub sort: Option<KeyAttribute>,
}

fn key_schema(
    partition: &KeyAttribute,
    sort: &Option<KeyAttribute>,
) -> Result<Vec<KeySchemaElement>, Error> {
    std::iter::once((partition, KeyType::Hash))
        .chain(sort.iter().map(|s| (s, KeyType::Range)))
        .map(|(key, key_type)| {
            KeySchemaElement::builder()
                .attribute_name(&key.name)
                .key_type(key_type)
                .build()
                .map_err(|e| Error::invalid_argument(e.to_string()))
        })
        .collect()
}

/// Creates an on-demand table with the given keys and global secondary indexes.
pub async fn create_table(
    client: &Client,
    table: &str,
    partition: KeyAttribute,
    sort: Option<KeyAttribute>,
    indexes: Vec<Index>,
) -> Result<(), Error> {
    // Every key attribute of the table and its indexes is defined once.
    let mut defined: Vec<&KeyAttribute> = Vec::new();
    let keys = std::iter::once(&partition).chain(sort.iter()).chain(
        indexes
            .iter()
            .flat_map(|i| std::iter::once(&i.partition).chain(i.sort.iter())),
    );
    for key in keys {
        if !defined.iter().any(|d| d.name == key.name) {
            defined.push(key);
        }
    }
    let definitions = defined
        .into_iter()
        .map(|key| {
            AttributeDefinition::builder()
                .attribute_name(&key.name)
                .attribute_type(ScalarAttributeType::from(key.kind.as_str()))
                .build()
                .map_err(|e| Error::invalid_argument(e.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let indexes = indexes
        .iter()
        .map(|index| {
            GlobalSecondaryIndex::builder()
                .index_name(&index.name)
                .set_key_schema(Some(key_schema(&index.partition, &index.sort)?))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::All)
                        .build(),
                )
                .build()
                .map_err(|e| Error::invalid_argument(e.to_string()))
        })
        .collect::<Result<Vec<_>, _>>()?;
    client
        .create_table()
        .table_name(table)
        .billing_mode(BillingMode::PayPerRequest)
        .set_attribute_definitions(Some(definitions))
        .set_key_schema(Some(key_schema(&partition, &sort)?))
        .set_global_secondary_indexes((!indexes.is_empty()).then_some(indexes))
        .send()
        .await
        .map(|_| ())
        .map_err(from_sdk)
}

pub async fn delete_table(client: &Client, table: &str) -> Result<(), Error> {
    client
        .delete_table()
        .table_name(table)
        .send()
        .await
        .map(|_| ())
        .map_err(from_sdk)
}

/// One action of a write transaction. A condition in `expressions` guards the action;
/// `ConditionCheck` needs one and writes nothing.
#[derive(Debug, Clone)]
pub enum WriteAction {
    Put {
        table: String,
        item: Item,
        expressions: Expressions,
    },
    Update {
        table: String,
        key: Item,
        update_expression: String,
        expressions: Expressions,
    },
    Delete {
        table: String,
        key: Item,
        expressions: Expressions,
    },
    ConditionCheck {
        table: String,
        key: Item,
        expressions: Expressions,
    },
}

fn build_error(error: impl std::fmt::Display) -> Error {
    Error::invalid_argument(error.to_string())
}

fn transact_write_item(action: WriteAction) -> Result<TransactWriteItem, Error> {
    let item = TransactWriteItem::builder();
    Ok(match action {
        WriteAction::Put {
            table,
            item: attributes,
            expressions: e,
        } => item.put(
            Put::builder()
                .table_name(table)
                .set_item(Some(attributes))
                .set_condition_expression(e.condition)
                .set_expression_attribute_names(non_empty(&e.names))
                .set_expression_attribute_values(non_empty(&e.values))
                .build()
                .map_err(build_error)?,
        ),
        WriteAction::Update {
            table,
            key,
            update_expression,
            expressions: e,
        } => item.update(
            Update::builder()
                .table_name(table)
                .set_key(Some(key))
                .update_expression(update_expression)
                .set_condition_expression(e.condition)
                .set_expression_attribute_names(non_empty(&e.names))
                .set_expression_attribute_values(non_empty(&e.values))
                .build()
                .map_err(build_error)?,
        ),
        WriteAction::Delete {
            table,
            key,
            expressions: e,
        } => item.delete(
            Delete::builder()
                .table_name(table)
                .set_key(Some(key))
                .set_condition_expression(e.condition)
                .set_expression_attribute_names(non_empty(&e.names))
                .set_expression_attribute_values(non_empty(&e.values))
                .build()
                .map_err(build_error)?,
        ),
        WriteAction::ConditionCheck {
            table,
            key,
            expressions: e,
        } => item.condition_check(
            ConditionCheck::builder()
                .table_name(table)
                .set_key(Some(key))
                .set_condition_expression(e.condition)
                .set_expression_attribute_names(non_empty(&e.names))
                .set_expression_attribute_values(non_empty(&e.values))
                .build()
                .map_err(build_error)?,
        ),
    }
    .build())
}

/// Applies every action or none. A cancelled transaction is an error whose
/// `cancellation_reasons` say, action by action, why (see [`error::cancelled`]).
pub async fn transact_write(
    client: &Client,
    actions: Vec<WriteAction>,
    client_request_token: Option<String>,
) -> Result<(), Error> {
    let items = actions
        .into_iter()
        .map(transact_write_item)
        .collect::<Result<Vec<_>, _>>()?;
    client
        .transact_write_items()
        .set_transact_items(Some(items))
        .set_client_request_token(client_request_token)
        .send()
        .await
        .map(|_| ())
        .map_err(|e| {
            error::from_transaction(e, |e| match e {
                TransactWriteItemsError::TransactionCanceledException(c) => {
                    c.cancellation_reasons.as_deref()
                }
                _ => None,
            })
        })
}

/// One read of a read transaction.
#[derive(Debug, Clone)]
pub struct GetAction {
    pub table: String,
    pub key: Item,
    pub projection: Option<String>,
    pub names: HashMap<String, String>,
}

/// Reads items as one snapshot; `None` for a key with no item, in the order of the gets.
pub async fn transact_get(
    client: &Client,
    gets: Vec<GetAction>,
) -> Result<Vec<Option<Item>>, Error> {
    let items = gets
        .into_iter()
        .map(|get| {
            Get::builder()
                .table_name(get.table)
                .set_key(Some(get.key))
                .set_projection_expression(get.projection)
                .set_expression_attribute_names(non_empty(&get.names))
                .build()
                .map(|get| TransactGetItem::builder().get(get).build())
                .map_err(build_error)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let output = client
        .transact_get_items()
        .set_transact_items(Some(items))
        .send()
        .await
        .map_err(|e| {
            error::from_transaction(e, |e| match e {
                TransactGetItemsError::TransactionCanceledException(c) => {
                    c.cancellation_reasons.as_deref()
                }
                _ => None,
            })
        })?;
    Ok(output
        .responses
        .unwrap_or_default()
        .into_iter()
        .map(|response| response.item.filter(|item| !item.is_empty()))
        .collect())
}
