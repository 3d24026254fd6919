//! The object-store NIFs (driven by `test/object_store_x/*_test.exs`). `store_new/1` builds a
//! store resource; every operation answers by message through `crate::reply`.

mod streams;
mod terms;

use crate::{binary, errors, reply};
use cloud_streams_core::store::config::{self, Backend, Retry, StoreConfig};
use cloud_streams_core::store::{ops, Store};
use cloud_streams_core::Error;
use rustler::{Atom, Encoder, Env, NifMap, NifResult, Resource, ResourceArc, Term};
use std::sync::Arc;
use std::time::Duration;

pub struct StoreResource(pub Arc<Store>);

#[rustler::resource_impl]
impl Resource for StoreResource {}

#[derive(NifMap)]
struct ConfigTerm {
    backend: String,
    options: Vec<(String, String)>,
    client: Vec<(String, String)>,
    /// `{max_retries, retry_timeout_ms, init_backoff_ms, max_backoff_ms}`.
    retry: Option<(usize, u64, u64, u64)>,
    from_env: bool,
    url: Option<String>,
    root: Option<String>,
    confine_to_root: bool,
    prefix: Option<String>,
}

/// Builds a store. No network I/O happens here (builders only validate).
#[rustler::nif]
fn store_new(env: Env<'_>, config: ConfigTerm) -> Term<'_> {
    let result = Backend::from_name(&config.backend)
        .ok_or_else(|| Error::invalid_argument(format!("unknown backend {}", config.backend)))
        .and_then(|backend| {
            config::build(&StoreConfig {
                backend,
                options: config.options,
                client: config.client,
                retry: config.retry.map(|(max, timeout, init, max_backoff)| Retry {
                    max_retries: max,
                    retry_timeout: Duration::from_millis(timeout),
                    init_backoff: Duration::from_millis(init),
                    max_backoff: Duration::from_millis(max_backoff),
                }),
                from_env: config.from_env,
                url: config.url,
                root: config.root,
                confine_to_root: config.confine_to_root,
                prefix: config.prefix,
            })
        });
    match result {
        Ok(store) => (
            crate::atoms::ok(),
            ResourceArc::new(StoreResource(Arc::new(store))),
        )
            .encode(env),
        Err(e) => (crate::atoms::error(), errors::encode(env, &e)).encode(env),
    }
}

fn store(resource: &ResourceArc<StoreResource>) -> Arc<Store> {
    resource.0.clone()
}

#[rustler::nif]
fn store_get<'a>(
    env: Env<'a>,
    resource: ResourceArc<StoreResource>,
    path: String,
    opts: terms::GetOpts<'a>,
    tag: Term<'a>,
) -> reply::Spawned {
    let (store, options) = (store(&resource), opts.into_options());
    reply::spawn(
        env,
        tag,
        async move { ops::get(&store, &path, options?).await },
        |env, (data, meta)| (binary::to_term(env, &data), terms::meta(env, &meta)).encode(env),
    )
}

#[rustler::nif]
fn store_head<'a>(
    env: Env<'a>,
    resource: ResourceArc<StoreResource>,
    path: String,
    tag: Term<'a>,
) -> reply::Spawned {
    let store = store(&resource);
    reply::spawn(
        env,
        tag,
        async move { ops::head(&store, &path).await },
        |env, meta| terms::meta(env, &meta),
    )
}

#[rustler::nif]
fn store_put<'a>(
    env: Env<'a>,
    resource: ResourceArc<StoreResource>,
    path: String,
    data: Term<'a>,
    opts: terms::PutOpts<'a>,
    tag: Term<'a>,
) -> NifResult<reply::Spawned> {
    let (store, options, payload) = (
        store(&resource),
        opts.into_options(),
        binary::to_bytes(env, data)?,
    );
    Ok(reply::spawn(
        env,
        tag,
        async move { ops::put(&store, &path, payload, options?).await },
        |env, result| {
            rustler::term_map!(env, {
                Atom::from_str(env, "etag").unwrap() => result.e_tag,
                Atom::from_str(env, "version").unwrap() => result.version,
            })
        },
    ))
}

#[rustler::nif]
fn store_delete<'a>(
    env: Env<'a>,
    resource: ResourceArc<StoreResource>,
    path: String,
    tag: Term<'a>,
) -> reply::Spawned {
    let store = store(&resource);
    reply::spawn(
        env,
        tag,
        async move { ops::delete(&store, &path).await },
        reply::unit,
    )
}

#[rustler::nif]
fn store_delete_many<'a>(
    env: Env<'a>,
    resource: ResourceArc<StoreResource>,
    paths: Vec<String>,
    tag: Term<'a>,
) -> reply::Spawned {
    let store = store(&resource);
    reply::spawn(
        env,
        tag,
        async move { Ok(ops::delete_many(&store, paths).await) },
        |env, (deleted, failed)| {
            let failed: Vec<Term> = failed
                .iter()
                .map(|(path, error)| (path.as_str(), errors::encode(env, error)).encode(env))
                .collect();
            (deleted, failed).encode(env)
        },
    )
}

/// `operation` is `:copy` or `:rename`.
#[rustler::nif]
fn store_transfer<'a>(
    env: Env<'a>,
    resource: ResourceArc<StoreResource>,
    operation: Atom,
    from: String,
    to: String,
    if_not_exists: bool,
    tag: Term<'a>,
) -> NifResult<reply::Spawned> {
    let transfer = if operation == crate::atoms::copy() {
        ops::Transfer::Copy
    } else if operation == crate::atoms::rename() {
        ops::Transfer::Rename
    } else {
        return Err(rustler::Error::BadArg);
    };
    let store = store(&resource);
    Ok(reply::spawn(
        env,
        tag,
        async move { ops::transfer(&store, transfer, &from, &to, if_not_exists).await },
        reply::unit,
    ))
}

#[rustler::nif]
fn store_list<'a>(
    env: Env<'a>,
    resource: ResourceArc<StoreResource>,
    prefix: Option<String>,
    offset: Option<String>,
    tag: Term<'a>,
) -> reply::Spawned {
    let store = store(&resource);
    reply::spawn(
        env,
        tag,
        async move { ops::list(&store, prefix.as_deref(), offset.as_deref()).await },
        |env, metas| terms::metas(env, &metas),
    )
}

#[rustler::nif]
fn store_list_with_delimiter<'a>(
    env: Env<'a>,
    resource: ResourceArc<StoreResource>,
    prefix: Option<String>,
    tag: Term<'a>,
) -> reply::Spawned {
    let store = store(&resource);
    reply::spawn(
        env,
        tag,
        async move { ops::list_with_delimiter(&store, prefix.as_deref()).await },
        |env, result| {
            let prefixes: Vec<&str> = result.common_prefixes.iter().map(|p| p.as_ref()).collect();
            rustler::term_map!(env, {
                Atom::from_str(env, "objects").unwrap() => terms::metas(env, &result.objects),
                Atom::from_str(env, "common_prefixes").unwrap() => prefixes,
            })
        },
    )
}

#[rustler::nif]
fn store_get_ranges<'a>(
    env: Env<'a>,
    resource: ResourceArc<StoreResource>,
    path: String,
    ranges: Vec<Term<'a>>,
    tag: Term<'a>,
) -> reply::Spawned {
    let store = store(&resource);
    let ranges: Result<Vec<_>, Error> = ranges.into_iter().map(terms::decode_range).collect();
    reply::spawn(
        env,
        tag,
        async move { ops::get_ranges(&store, &path, &ranges?).await },
        |env, parts| {
            parts
                .iter()
                .map(|part| binary::to_term(env, part))
                .collect::<Vec<Term>>()
                .encode(env)
        },
    )
}

#[rustler::nif]
fn store_signed_url<'a>(
    env: Env<'a>,
    resource: ResourceArc<StoreResource>,
    method: String,
    path: String,
    expires_in_secs: u64,
    tag: Term<'a>,
) -> reply::Spawned {
    let store = store(&resource);
    reply::spawn(
        env,
        tag,
        async move {
            ops::signed_url(&store, &method, &path, Duration::from_secs(expires_in_secs)).await
        },
        |env, url| url.encode(env),
    )
}
