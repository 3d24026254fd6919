//! A PartiQL statement's pages as a pull stream (`Dynamo.Table.Stream.execute_statement/3`).
//! Each stream item is one page, its items decoded into the schema's fields (`structs.rs`)
//! exactly as the scans' pages are.

use super::structs::StructPlan;
use super::{ConfigTerm, StatementTerm};
use crate::stream::{Encoded, StreamResource};
use cloud_streams_core::dynamo::client::{self, ClientConfig};
use cloud_streams_core::dynamo::statement;
use cloud_streams_core::dynamo::stream::SegmentPage;
use cloud_streams_core::pull::{self, Bound, Weighed};
use rustler::{Encoder, NifResult, ResourceArc};
use std::sync::Arc;

/// `{items, request}`, as in the scans' pages (`stream.rs`), encoded as it arrives; a
/// statement is never held back by `max_read_capacity`, so its `capacity_wait_us` is 0.
fn encode_page(page: SegmentPage, plan: &StructPlan) -> Encoded {
    Encoded::new(page.weight(), |env| {
        super::stream::page_terms(env, &page, plan).encode(env)
    })
}

/// `struct_plan` is the schema's (`Dynamo.Schema.native_plan/1`, see `structs`).
// Opening a stream spawns its task and allocates its state: rare, and now and then past
// 1 ms on a normal scheduler (fresh pages), so it runs on a dirty CPU scheduler.
#[rustler::nif(schedule = "DirtyCpu")]
fn dynamo_statement_stream<'a>(
    config: ConfigTerm,
    statement: StatementTerm<'a>,
    prefetch_pages: usize,
    struct_plan: StructPlan,
) -> NifResult<ResourceArc<StreamResource>> {
    let plan = Arc::new(struct_plan);
    let config: ClientConfig = config.into();
    let statement = statement.decode()?;
    Ok(StreamResource::new(pull::spawn(
        Bound::Items(prefetch_pages),
        |sink| async move {
            let client = client::client(&config).await;
            statement::run(client, statement, sink, move |page| {
                encode_page(page, &plan)
            })
            .await
        },
    )))
}
