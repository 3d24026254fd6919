//! The DynamoDB NIFs (driven by `test/dynamo/*_test.exs`). Every operation runs on the runtime
//! and answers `{tag, {:ok, value}}` or `{tag, {:error, error}}` (see `crate::reply`); terms
//! are decoded on the caller's scheduler before the work is spawned.

pub mod codec;
mod export;
mod import;
mod statement_stream;
mod stream;
mod structs;

use crate::reply;
use cloud_streams_core::dynamo::attempts::{self, Attempts};
use cloud_streams_core::dynamo::client::{self, ClientConfig};
use cloud_streams_core::dynamo::ops::{
    self, Expressions, GetAction, Index, KeyAttribute, Operation, Page, Read, WriteAction,
};
use cloud_streams_core::dynamo::statement::{self, Statement};
use cloud_streams_core::Error;
use rustler::{Atom, Encoder, Env, NifMap, NifResult, Term};
use std::collections::HashMap;
use std::future::Future;

#[derive(NifMap)]
pub struct ConfigTerm {
    region: Option<String>,
    endpoint: Option<String>,
    access_key_id: Option<String>,
    secret_access_key: Option<String>,
    session_token: Option<String>,
    profile: Option<String>,
    max_attempts: u32,
    initial_backoff_ms: u64,
    max_backoff_ms: u64,
    connect_timeout_ms: Option<u64>,
    operation_timeout_ms: Option<u64>,
}

impl From<ConfigTerm> for ClientConfig {
    fn from(c: ConfigTerm) -> Self {
        ClientConfig {
            region: c.region,
            endpoint: c.endpoint,
            access_key_id: c.access_key_id,
            secret_access_key: c.secret_access_key,
            session_token: c.session_token,
            profile: c.profile,
            max_attempts: c.max_attempts,
            initial_backoff_ms: c.initial_backoff_ms,
            max_backoff_ms: c.max_backoff_ms,
            connect_timeout_ms: c.connect_timeout_ms,
            operation_timeout_ms: c.operation_timeout_ms,
        }
    }
}

/// Condition, names and values: `%{condition: str | nil, names: %{}, values: item}`.
#[derive(NifMap)]
pub struct ExpressionsTerm<'a> {
    condition: Option<String>,
    names: HashMap<String, String>,
    values: Term<'a>,
}

impl ExpressionsTerm<'_> {
    fn decode(self) -> NifResult<Expressions> {
        Ok(Expressions {
            condition: self.condition,
            names: self.names,
            values: codec::decode_item(self.values)?,
        })
    }
}

/// A scan or a query, as `Dynamo.Table` builds it.
#[derive(NifMap)]
pub struct ReadTerm<'a> {
    table: String,
    index_name: Option<String>,
    key_condition_expression: Option<String>,
    filter_expression: Option<String>,
    projection_expression: Option<String>,
    names: HashMap<String, String>,
    values: Term<'a>,
    consistent_read: bool,
    limit: Option<i32>,
    exclusive_start_key: Option<Term<'a>>,
    segment: Option<(i32, i32)>,
    select_count: bool,
    forward: bool,
}

impl ReadTerm<'_> {
    pub fn decode(self) -> NifResult<Read> {
        let start = match self.exclusive_start_key {
            Some(term) => codec::decode_optional_item(term)?,
            None => None,
        };
        Ok(Read {
            table: self.table,
            index_name: self.index_name,
            key_condition_expression: self.key_condition_expression,
            filter_expression: self.filter_expression,
            projection_expression: self.projection_expression,
            names: self.names,
            values: codec::decode_item(self.values)?,
            consistent_read: self.consistent_read,
            limit: self.limit,
            exclusive_start_key: start,
            segment: self.segment,
            select_count: self.select_count,
            forward: self.forward,
            report_capacity: true,
        })
    }
}

pub(crate) fn optional_item<'a>(
    env: Env<'a>,
    item: &Option<cloud_streams_core::dynamo::Item>,
) -> Term<'a> {
    match item {
        Some(item) => codec::encode_item(env, item),
        None => rustler::types::atom::nil().encode(env),
    }
}

/// `%{items: [item], last_evaluated_key: item | nil, count:, scanned_count:, consumed_capacity:}`.
pub fn encode_page<'a>(env: Env<'a>, page: &Page) -> Term<'a> {
    rustler::term_map!(env, {
        Atom::from_str(env, "items").unwrap() => codec::encode_items(env, &page.items),
        Atom::from_str(env, "last_evaluated_key").unwrap() => optional_item(env, &page.last_evaluated_key),
        Atom::from_str(env, "count").unwrap() => page.count,
        Atom::from_str(env, "scanned_count").unwrap() => page.scanned_count,
        Atom::from_str(env, "consumed_capacity").unwrap() => page.consumed_capacity,
    })
}

/// Like `reply::spawn`, for an operation that reaches DynamoDB: answers
/// `{tag, {:ok, {value, %{retries:, throttles:}}}}`, with what the SDK's retries went through
/// (see `attempts`), or `{tag, {:error, error}}`.
fn spawn_counted<T, F, E>(env: Env<'_>, tag: Term<'_>, work: F, encode: E) -> reply::Spawned
where
    T: Send + 'static,
    F: Future<Output = Result<T, Error>> + Send + 'static,
    E: for<'a> FnOnce(Env<'a>, T) -> Term<'a> + Send + 'static,
{
    reply::spawn(
        env,
        tag,
        async move {
            let (result, attempts) = attempts::counted(work).await;
            result.map(|value| (value, attempts))
        },
        move |env, (value, attempts): (T, Attempts)| {
            let attempts = rustler::term_map!(env, {
                Atom::from_str(env, "retries").unwrap() => attempts.retries,
                Atom::from_str(env, "throttles").unwrap() => attempts.throttles,
            });
            (encode(env, value), attempts).encode(env)
        },
    )
}

#[rustler::nif]
fn dynamo_put_item<'a>(
    env: Env<'a>,
    config: ConfigTerm,
    table: String,
    item: Term<'a>,
    expressions: ExpressionsTerm<'a>,
    tag: Term<'a>,
) -> NifResult<reply::Spawned> {
    let (config, item, expressions) = (
        config.into(),
        codec::decode_item(item)?,
        expressions.decode()?,
    );
    Ok(spawn_counted(
        env,
        tag,
        async move { ops::put_item(&client::client(&config).await, &table, item, expressions).await },
        reply::unit,
    ))
}

#[rustler::nif]
#[allow(clippy::too_many_arguments)]
fn dynamo_get_item<'a>(
    env: Env<'a>,
    config: ConfigTerm,
    table: String,
    key: Term<'a>,
    consistent_read: bool,
    projection: Option<String>,
    names: HashMap<String, String>,
    tag: Term<'a>,
) -> NifResult<reply::Spawned> {
    let (config, key): (ClientConfig, _) = (config.into(), codec::decode_item(key)?);
    Ok(spawn_counted(
        env,
        tag,
        async move {
            let client = client::client(&config).await;
            ops::get_item(&client, &table, key, consistent_read, projection, names).await
        },
        |env, item| optional_item(env, &item),
    ))
}

#[rustler::nif]
fn dynamo_delete_item<'a>(
    env: Env<'a>,
    config: ConfigTerm,
    table: String,
    key: Term<'a>,
    expressions: ExpressionsTerm<'a>,
    tag: Term<'a>,
) -> NifResult<reply::Spawned> {
    let (config, key, expressions): (ClientConfig, _, _) = (
        config.into(),
        codec::decode_item(key)?,
        expressions.decode()?,
    );
    Ok(spawn_counted(
        env,
        tag,
        async move { ops::delete_item(&client::client(&config).await, &table, key, expressions).await },
        |env, old| optional_item(env, &old),
    ))
}

#[rustler::nif]
fn dynamo_update_item<'a>(
    env: Env<'a>,
    config: ConfigTerm,
    table: String,
    key: Term<'a>,
    update_expression: String,
    expressions: ExpressionsTerm<'a>,
    tag: Term<'a>,
) -> NifResult<reply::Spawned> {
    let (config, key, expressions): (ClientConfig, _, _) = (
        config.into(),
        codec::decode_item(key)?,
        expressions.decode()?,
    );
    Ok(spawn_counted(
        env,
        tag,
        async move {
            let client = client::client(&config).await;
            ops::update_item(&client, &table, key, update_expression, expressions).await
        },
        |env, item| codec::encode_item(env, &item),
    ))
}

/// `:scan` or `:query`.
pub(crate) fn operation(env: Env<'_>, atom: Atom) -> NifResult<Operation> {
    Ok(if atom == Atom::from_str(env, "scan")? {
        Operation::Scan
    } else {
        Operation::Query
    })
}

/// `operation` is `:scan` or `:query`; answers one page.
#[rustler::nif]
fn dynamo_read_page<'a>(
    env: Env<'a>,
    config: ConfigTerm,
    operation: Atom,
    read: ReadTerm<'a>,
    tag: Term<'a>,
) -> NifResult<reply::Spawned> {
    let operation = self::operation(env, operation)?;
    let (config, read): (ClientConfig, Read) = (config.into(), read.decode()?);
    Ok(spawn_counted(
        env,
        tag,
        async move { ops::read_page(&client::client(&config).await, operation, &read).await },
        |env, page| encode_page(env, &page),
    ))
}

#[rustler::nif]
fn dynamo_batch_write<'a>(
    env: Env<'a>,
    config: ConfigTerm,
    table: String,
    puts: Vec<Term<'a>>,
    deletes: Vec<Term<'a>>,
    tag: Term<'a>,
) -> NifResult<reply::Spawned> {
    let config: ClientConfig = config.into();
    let (puts, deletes) = (codec::decode_items(puts)?, codec::decode_items(deletes)?);
    Ok(spawn_counted(
        env,
        tag,
        async move { ops::batch_write(&client::client(&config).await, &table, puts, deletes).await },
        |env, written| written.encode(env),
    ))
}

#[rustler::nif]
fn dynamo_batch_get<'a>(
    env: Env<'a>,
    config: ConfigTerm,
    table: String,
    keys: Vec<Term<'a>>,
    consistent_read: bool,
    tag: Term<'a>,
) -> NifResult<reply::Spawned> {
    let config: ClientConfig = config.into();
    let keys = codec::decode_items(keys)?;
    Ok(spawn_counted(
        env,
        tag,
        async move {
            ops::batch_get(
                &client::client(&config).await,
                &table,
                keys,
                consistent_read,
            )
            .await
        },
        |env, items| codec::encode_items(env, &items),
    ))
}

type KeyTerm = (String, String);

/// Keys are `{name, "S" | "N" | "B"}`; `sort` may be `nil`; `indexes` are
/// `{name, partition, sort | nil}`.
#[rustler::nif]
fn dynamo_create_table<'a>(
    env: Env<'a>,
    config: ConfigTerm,
    table: String,
    partition: KeyTerm,
    sort: Option<KeyTerm>,
    indexes: Vec<(String, KeyTerm, Option<KeyTerm>)>,
    tag: Term<'a>,
) -> reply::Spawned {
    let config: ClientConfig = config.into();
    let key = |(name, kind): KeyTerm| KeyAttribute { name, kind };
    let (partition, sort) = (key(partition), sort.map(key));
    let indexes = indexes
        .into_iter()
        .map(|(name, partition, sort)| Index {
            name,
            partition: key(partition),
            sort: sort.map(key),
        })
        .collect();
    spawn_counted(
        env,
        tag,
        async move {
            let client = client::client(&config).await;
            ops::create_table(&client, &table, partition, sort, indexes).await
        },
        reply::unit,
    )
}

#[rustler::nif]
fn dynamo_delete_table<'a>(
    env: Env<'a>,
    config: ConfigTerm,
    table: String,
    tag: Term<'a>,
) -> reply::Spawned {
    let config: ClientConfig = config.into();
    spawn_counted(
        env,
        tag,
        async move { ops::delete_table(&client::client(&config).await, &table).await },
        reply::unit,
    )
}

/// A transaction's action: `{:put, table, item, expressions}`,
/// `{:update, table, key, update_expression, expressions}`, `{:delete, table, key,
/// expressions}` or `{:condition_check, table, key, expressions}`.
fn decode_write_action(term: Term<'_>) -> NifResult<WriteAction> {
    let parts = rustler::types::tuple::get_tuple(term)?;
    let (kind, table): (Atom, String) = match parts.as_slice() {
        [kind, table, ..] => (kind.decode()?, table.decode()?),
        _ => return Err(rustler::Error::BadArg),
    };
    let name = kind.to_term(term.get_env()).atom_to_string()?;
    Ok(match (name.as_str(), parts.as_slice()) {
        ("put", [_, _, item, expressions]) => WriteAction::Put {
            table,
            item: codec::decode_item(*item)?,
            expressions: expressions.decode::<ExpressionsTerm>()?.decode()?,
        },
        ("update", [_, _, key, update_expression, expressions]) => WriteAction::Update {
            table,
            key: codec::decode_item(*key)?,
            update_expression: update_expression.decode()?,
            expressions: expressions.decode::<ExpressionsTerm>()?.decode()?,
        },
        ("delete", [_, _, key, expressions]) => WriteAction::Delete {
            table,
            key: codec::decode_item(*key)?,
            expressions: expressions.decode::<ExpressionsTerm>()?.decode()?,
        },
        ("condition_check", [_, _, key, expressions]) => WriteAction::ConditionCheck {
            table,
            key: codec::decode_item(*key)?,
            expressions: expressions.decode::<ExpressionsTerm>()?.decode()?,
        },
        _ => return Err(rustler::Error::BadArg),
    })
}

#[rustler::nif]
fn dynamo_transact_write<'a>(
    env: Env<'a>,
    config: ConfigTerm,
    actions: Vec<Term<'a>>,
    client_request_token: Option<String>,
    tag: Term<'a>,
) -> NifResult<reply::Spawned> {
    let config: ClientConfig = config.into();
    let actions = actions
        .into_iter()
        .map(decode_write_action)
        .collect::<NifResult<Vec<_>>>()?;
    Ok(spawn_counted(
        env,
        tag,
        async move {
            let client = client::client(&config).await;
            ops::transact_write(&client, actions, client_request_token).await
        },
        reply::unit,
    ))
}

/// A read of a transaction: `{table, key, projection | nil, names}`.
type GetTerm<'a> = (String, Term<'a>, Option<String>, HashMap<String, String>);

/// Answers `[item | nil]` in the order of `gets`.
#[rustler::nif]
fn dynamo_transact_get<'a>(
    env: Env<'a>,
    config: ConfigTerm,
    gets: Vec<GetTerm<'a>>,
    tag: Term<'a>,
) -> NifResult<reply::Spawned> {
    let config: ClientConfig = config.into();
    let gets = gets
        .into_iter()
        .map(|(table, key, projection, names)| {
            Ok(GetAction {
                table,
                key: codec::decode_item(key)?,
                projection,
                names,
            })
        })
        .collect::<NifResult<Vec<_>>>()?;
    Ok(spawn_counted(
        env,
        tag,
        async move { ops::transact_get(&client::client(&config).await, gets).await },
        |env, items| {
            items
                .iter()
                .map(|item| optional_item(env, item))
                .collect::<Vec<Term>>()
                .encode(env)
        },
    ))
}

/// A PartiQL statement, as `Dynamo.Table` builds it: parameters are tagged values.
#[derive(NifMap)]
pub struct StatementTerm<'a> {
    statement: String,
    parameters: Vec<Term<'a>>,
    consistent_read: bool,
    limit: Option<i32>,
    next_token: Option<String>,
}

impl StatementTerm<'_> {
    pub fn decode(self) -> NifResult<Statement> {
        Ok(Statement {
            statement: self.statement,
            parameters: self
                .parameters
                .into_iter()
                .map(codec::decode_value)
                .collect::<NifResult<_>>()?,
            consistent_read: self.consistent_read,
            limit: self.limit,
            next_token: self.next_token,
        })
    }
}

/// Answers `%{items: [item], next_token: token | nil}`.
#[rustler::nif]
fn dynamo_execute_statement<'a>(
    env: Env<'a>,
    config: ConfigTerm,
    statement: StatementTerm<'a>,
    tag: Term<'a>,
) -> NifResult<reply::Spawned> {
    let (config, statement): (ClientConfig, _) = (config.into(), statement.decode()?);
    Ok(spawn_counted(
        env,
        tag,
        async move { statement::execute(&client::client(&config).await, &statement).await },
        |env, page| {
            rustler::term_map!(env, {
                Atom::from_str(env, "items").unwrap() => codec::encode_items(env, &page.items),
                Atom::from_str(env, "next_token").unwrap() => page.next_token,
            })
        },
    ))
}

/// Answers one `{:ok, item | nil}` or `{:error, error_map}` per statement, in their order.
#[rustler::nif]
fn dynamo_batch_execute_statement<'a>(
    env: Env<'a>,
    config: ConfigTerm,
    statements: Vec<StatementTerm<'a>>,
    tag: Term<'a>,
) -> NifResult<reply::Spawned> {
    let config: ClientConfig = config.into();
    let statements = statements
        .into_iter()
        .map(StatementTerm::decode)
        .collect::<NifResult<Vec<_>>>()?;
    Ok(spawn_counted(
        env,
        tag,
        async move { statement::batch_execute(&client::client(&config).await, statements).await },
        |env, results| {
            results
                .iter()
                .map(|result| match result {
                    Ok(item) => (crate::atoms::ok(), optional_item(env, item)).encode(env),
                    Err(error) => {
                        (crate::atoms::error(), crate::errors::encode(env, error)).encode(env)
                    }
                })
                .collect::<Vec<Term>>()
                .encode(env)
        },
    ))
}
