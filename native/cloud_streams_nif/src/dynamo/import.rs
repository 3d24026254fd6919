//! Table import and reading an export (driven by `test/dynamo/import_test.exs`).
//!
//! `dynamo_import/5` runs the import as one task (the `store_download_file` pattern): it
//! sends `{tag, {:progress, %{items:, files:, bytes:, total_items:, total_files:}}}` each time
//! its progress record is written, then `{tag, {:ok, {:done, totals}}}` or `{tag, {:ok, {:failed, :object_store |
//! :dynamo, error}}}`; the task handle stops it when collected. `dynamo_export_stream/5` is a
//! pull stream of pages of an export's items, each item encoded as a scan's (plain tagged
//! items, or decoded into a schema's fields by `structs.rs`).

use super::structs::StructPlan;
use super::{codec, ConfigTerm};
use crate::reply::Notifier;
use crate::store::StoreResource;
use crate::stream::{EncodeItem, StreamResource};
use crate::task::TaskResource;
use cloud_streams_core::dynamo::client::{self, ClientConfig};
use cloud_streams_core::dynamo::Item;
use cloud_streams_core::import::job::{self, ImportRequest, Source, Totals};
use cloud_streams_core::pull::{self, Bound, Weighed};
use cloud_streams_core::{runtime, Error};
use futures_util::FutureExt;
use rustler::{Encoder, Env, NifMap, ResourceArc, Term};
use std::panic::AssertUnwindSafe;
use std::sync::Arc;

mod atoms {
    rustler::atoms! { done, failed, object_store, dynamo, progress, items, files, bytes, total_items, total_files }
}

/// What `Dynamo.Table.Stream.Import` asks for.
#[derive(NifMap)]
pub struct ImportTerm {
    prefix: String,
    export_id: Option<String>,
    table: String,
    max_concurrency: usize,
    max_write_capacity: Option<f64>,
    resume: bool,
    progress_record: bool,
}

fn totals(env: Env<'_>, totals: Totals) -> Term<'_> {
    rustler::term_map!(env, {
        atoms::items() => totals.items,
        atoms::files() => totals.files,
        atoms::bytes() => totals.bytes,
    })
}

#[rustler::nif]
fn dynamo_import<'a>(
    env: Env<'a>,
    config: ConfigTerm,
    store: ResourceArc<StoreResource>,
    request: ImportTerm,
    tag: Term<'a>,
) -> ResourceArc<TaskResource> {
    let config: ClientConfig = config.into();
    let store = store.0.clone();
    let request = ImportRequest {
        prefix: request.prefix,
        export_id: request.export_id,
        table: request.table,
        max_concurrency: request.max_concurrency,
        max_write_capacity: request.max_write_capacity,
        resume: request.resume,
        keep_record: request.progress_record,
    };
    let notifier = Arc::new(Notifier::new(env, tag));
    let reporter = notifier.clone();
    let progress = move |done: Totals| {
        reporter.send(|env| {
            let base = totals(env, done);
            let report = base
                .map_put(atoms::total_items(), done.total_items)
                .and_then(|map| map.map_put(atoms::total_files(), done.total_files))
                .unwrap_or(base);
            (atoms::progress(), report).encode(env)
        });
    };
    let task = runtime::spawn(async move {
        let work = async move {
            let client = client::client(&config).await;
            job::run(store, client, request, progress).await
        };
        // A panic is the native side failing, not the store: reported as a Dynamo error.
        let outcome = match AssertUnwindSafe(work).catch_unwind().await {
            Ok(outcome) => outcome,
            Err(panic) => Err((Source::Dynamo, Error::from_panic(panic.as_ref()))),
        };
        notifier.finish(Ok(outcome), |env, outcome| match outcome {
            Ok(done) => (atoms::done(), totals(env, done)).encode(env),
            Err((source, error)) => {
                let source = match source {
                    Source::Store => atoms::object_store(),
                    Source::Dynamo => atoms::dynamo(),
                };
                (atoms::failed(), source, crate::errors::encode(env, &error)).encode(env)
            }
        });
    });
    TaskResource::new(task.abort_handle())
}

/// A page of an export's items on its way to the BEAM, with the schema (if any) its items
/// are decoded into.
struct ExportPage {
    items: Vec<Item>,
    /// The size of the lines they were read from: an estimate of the memory they hold.
    weight: usize,
    plan: Option<Arc<StructPlan>>,
}

impl Weighed for ExportPage {
    fn weight(&self) -> usize {
        self.weight
    }
}

impl EncodeItem for ExportPage {
    fn encode<'a>(self, env: Env<'a>) -> Term<'a> {
        match &self.plan {
            Some(plan) => plan.encode_items(env, &self.items),
            None => codec::encode_items(env, &self.items),
        }
    }
}

/// `plan`: the schema's struct plan (`Dynamo.Schema.native_plan/1`, see `structs`), or `nil`
/// for plain tagged items.
// Opening a stream spawns its task and allocates its state: rare, and now and then past
// 1 ms on a normal scheduler (fresh pages), so it runs on a dirty CPU scheduler.
#[rustler::nif(schedule = "DirtyCpu")]
fn dynamo_export_stream(
    store: ResourceArc<StoreResource>,
    prefix: String,
    export_id: Option<String>,
    page_size: usize,
    prefetch_pages: usize,
    plan: Option<StructPlan>,
) -> ResourceArc<StreamResource> {
    let store = store.0.clone();
    let plan = plan.map(Arc::new);
    StreamResource::new(pull::spawn(Bound::Items(prefetch_pages), |sink| {
        cloud_streams_core::import::read_pages(
            store,
            prefix,
            export_id,
            page_size,
            sink,
            move |items, weight| ExportPage {
                items,
                weight,
                plan: plan.clone(),
            },
        )
    }))
}
