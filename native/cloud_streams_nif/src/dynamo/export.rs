//! The table export NIF (driven by `test/dynamo/export_test.exs`): spawns the job
//! (`cloud_streams_core::export`) and returns its task handle. The caller receives
//! `{tag, {:progress, progress}}` (at most every `progress_interval_ms` while anything changed,
//! a scanned page included, and after each finished data file; per-segment entries only for
//! the segments running or changed since the previous report), then `{tag, {:ok, %{export_id:, items:, bytes:, files:, manifest:}}}`
//! or `{tag, {:error, error}}`. When the handle is collected (the caller died) or released,
//! the job stops and its uploads in progress are aborted.

use super::{ConfigTerm, ReadTerm};
use crate::reply::Notifier;
use crate::store::StoreResource;
use crate::task::TaskResource;
use cloud_streams_core::dynamo::client::{self, ClientConfig};
use cloud_streams_core::export::layout::Format;
use cloud_streams_core::export::{self, ExportPlan, Progress, Resume};
use futures_util::FutureExt;
use rustler::{Atom, Encoder, Env, NifMap, NifResult, ResourceArc, Term};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Duration;

mod formats {
    rustler::atoms! { dynamodb_json, ndjson }
}

/// What `Dynamo.Table.Stream.Export` validated. `resume` is `false`, `true` or an export id.
#[derive(NifMap)]
pub struct ExportTerm<'a> {
    segments: i32,
    max_concurrency: usize,
    max_read_capacity: Option<f64>,
    prefix: String,
    format: Atom,
    max_file_bytes: u64,
    part_size: usize,
    resume: Term<'a>,
    overwrite: bool,
    progress_interval_ms: u64,
}

fn progress_term<'a>(env: Env<'a>, progress: &Progress) -> Term<'a> {
    let atom = |name: &str| Atom::from_str(env, name).unwrap();
    let segments = progress
        .segments
        .iter()
        .map(|(segment, s)| {
            let entry = rustler::term_map!(env, {
                atom("items") => s.items,
                atom("bytes") => s.bytes,
                atom("files") => s.files,
                atom("pages_scanned") => s.pages_scanned,
                atom("done") => s.done,
            });
            (segment.encode(env), entry)
        })
        .collect::<Vec<_>>();
    let segments = Term::map_from_pairs(env, &segments).unwrap_or_else(|_| Term::map_new(env));
    rustler::term_map!(env, {
        atom("items") => progress.items,
        atom("bytes") => progress.bytes,
        atom("files") => progress.files,
        atom("pages_scanned") => progress.pages_scanned,
        atom("segments") => segments,
    })
}

// Decoding a request and spawning its task: quick, but the scan request's values can be
// large, so it runs on a dirty CPU scheduler like the stream-opening NIFs.
#[rustler::nif(schedule = "DirtyCpu")]
fn dynamo_export<'a>(
    env: Env<'a>,
    config: ConfigTerm,
    read: ReadTerm<'a>,
    store: ResourceArc<StoreResource>,
    opts: ExportTerm<'a>,
    tag: Term<'a>,
) -> NifResult<ResourceArc<TaskResource>> {
    let config: ClientConfig = config.into();
    let format = if opts.format == formats::ndjson() {
        Format::Ndjson
    } else if opts.format == formats::dynamodb_json() {
        Format::DynamoDbJson
    } else {
        return Err(rustler::Error::BadArg);
    };
    let resume = if let Ok(id) = opts.resume.decode::<String>() {
        Resume::Id(id)
    } else if opts.resume.decode::<bool>()? {
        Resume::Latest
    } else {
        Resume::No
    };
    let plan = ExportPlan {
        read: read.decode()?,
        segments: opts.segments,
        max_concurrency: opts.max_concurrency,
        max_read_capacity: opts.max_read_capacity,
        prefix: opts.prefix,
        format,
        max_file_bytes: opts.max_file_bytes,
        part_size: opts.part_size,
        resume,
        overwrite: opts.overwrite,
        region: config.region.clone(),
        progress_interval: Duration::from_millis(opts.progress_interval_ms),
    };
    let store = store.0.clone();
    let notifier = Arc::new(Notifier::new(env, tag));
    let reporter = notifier.clone();
    let report: export::Reporter = Arc::new(move |progress: &Progress| {
        reporter.send(|env| {
            (
                Atom::from_str(env, "progress").unwrap(),
                progress_term(env, progress),
            )
                .encode(env)
        });
    });
    let task = cloud_streams_core::runtime::spawn(async move {
        let work = async move {
            let client = client::client(&config).await;
            export::run(client, store, plan, report).await
        };
        let result = AssertUnwindSafe(work)
            .catch_unwind()
            .await
            .unwrap_or_else(|panic| Err(cloud_streams_core::Error::from_panic(panic.as_ref())));
        notifier.finish(result, |env, done| {
            let atom = |name: &str| Atom::from_str(env, name).unwrap();
            rustler::term_map!(env, {
                atom("export_id") => done.export_id.as_str(),
                atom("items") => done.items,
                atom("bytes") => done.bytes,
                atom("files") => done.files,
                atom("manifest") => done.manifest.as_str(),
            })
        });
    });
    Ok(TaskResource::new(task.abort_handle()))
}
