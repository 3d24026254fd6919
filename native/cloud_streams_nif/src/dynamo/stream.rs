//! Scans and queries as pull streams (driven by `test/dynamo/stream_test.exs`). Each stream
//! item is one page of one segment: `{segment, items, last_evaluated_key | nil, request}`
//! (`request`: `%{retries:, throttles:, consumed_capacity:, capacity_wait_us:}`), `items` the
//! page's structs of the schema (`structs.rs`), encoded as the page arrives;
//! `Dynamo.Table.Stream` keeps each segment's position.

use super::structs::StructPlan;
use super::{codec, optional_item, ConfigTerm, ReadTerm};
use crate::stream::{Encoded, StreamResource};
use cloud_streams_core::dynamo::client::{self, ClientConfig};
use cloud_streams_core::dynamo::ops::Read;
use cloud_streams_core::dynamo::stream::{self, ReadPlan, SegmentPage, Segments};
use cloud_streams_core::pull::{self, Bound, Weighed};
use rustler::{Atom, Encoder, Env, NifResult, ResourceArc, Term};
use std::sync::Arc;

/// A scan's or query's page, encoded on its segment's task as it arrives (see `Encoded`):
/// `{segment, items, last_evaluated_key | nil, request}`.
fn encode_page(page: SegmentPage, plan: &StructPlan) -> Encoded {
    Encoded::new(page.weight(), |env| {
        let (items, request) = page_terms(env, &page, plan);
        let last_key = optional_item(env, &page.page.last_evaluated_key);
        (page.segment, items, last_key, request).encode(env)
    })
}

/// A page's items as `StructPlan::encode_items` gives them, and its `request` map: what the
/// scans' pages and the statements' pages both hand over.
pub(crate) fn page_terms<'a>(
    env: Env<'a>,
    page: &SegmentPage,
    plan: &StructPlan,
) -> (Term<'a>, Term<'a>) {
    let items = plan.encode_items(env, &page.page.items);
    let request = rustler::term_map!(env, {
        Atom::from_str(env, "retries").unwrap() => page.attempts.retries,
        Atom::from_str(env, "throttles").unwrap() => page.attempts.throttles,
        Atom::from_str(env, "consumed_capacity").unwrap() => page.page.consumed_capacity,
        Atom::from_str(env, "capacity_wait_us").unwrap() => page.capacity_wait.as_micros() as u64,
    });
    (items, request)
}

/// `operation` is `:scan` or `:query`; `segments` is `{:all, count, start_key | nil}` (every
/// segment, the first after `start_key`) or `[{segment, start_key | nil}]`; `struct_plan` is the
/// schema's struct plan (`Dynamo.Schema.native_plan/1`, see `structs`).
// Opening a stream spawns its task and allocates its state: rare, and now and then past
// 1 ms on a normal scheduler (fresh pages), so it runs on a dirty CPU scheduler.
#[rustler::nif(schedule = "DirtyCpu")]
#[allow(clippy::too_many_arguments)]
fn dynamo_read_stream<'a>(
    env: Env<'a>,
    config: ConfigTerm,
    operation: Atom,
    read: ReadTerm<'a>,
    total_segments: Option<i32>,
    segments: Term<'a>,
    max_concurrency: usize,
    prefetch_pages: usize,
    max_read_capacity: Option<f64>,
    struct_plan: StructPlan,
) -> NifResult<ResourceArc<StreamResource>> {
    let struct_plan = Arc::new(struct_plan);
    let operation = super::operation(env, operation)?;
    let config: ClientConfig = config.into();
    let segments = match segments.decode::<(Atom, i32, Term<'a>)>() {
        Ok((tag, count, start)) if tag == crate::atoms::all() => Segments::All {
            count,
            first_start: codec::decode_optional_item(start)?,
        },
        _ => Segments::Listed(
            segments
                .decode::<Vec<(i32, Term<'a>)>>()?
                .into_iter()
                .map(|(segment, start)| Ok((segment, codec::decode_optional_item(start)?)))
                .collect::<NifResult<_>>()?,
        ),
    };
    let plan = ReadPlan {
        operation,
        read: Read {
            report_capacity: max_read_capacity.is_some(),
            ..read.decode()?
        },
        total_segments,
        segments,
        max_concurrency,
        max_read_capacity,
    };
    Ok(StreamResource::new(pull::spawn(
        Bound::Items(prefetch_pages),
        |sink| async move {
            let client = client::client(&config).await;
            stream::run(client, plan, sink, move |page| {
                encode_page(page, &struct_plan)
            })
            .await
        },
    )))
}
