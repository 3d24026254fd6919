//! A PartiQL statement's pages as a pull stream (`Dynamo.Table.Stream.execute_statement/3`).
//! Each stream item is one page, its items decoded into the schema's fields (`structs.rs`)
//! exactly as the scans' pages are.

use super::structs::StructPlan;
use super::{ConfigTerm, StatementTerm};
use crate::stream::{EncodeItem, StreamResource};
use cloud_streams_core::dynamo::client::{self, ClientConfig};
use cloud_streams_core::dynamo::statement;
use cloud_streams_core::dynamo::stream::SegmentPage;
use cloud_streams_core::pull::{self, Bound, Weighed};
use rustler::{Encoder, Env, NifResult, ResourceArc, Term};
use std::sync::Arc;

struct StatementPage {
    page: SegmentPage,
    plan: Arc<StructPlan>,
}

impl Weighed for StatementPage {
    fn weight(&self) -> usize {
        self.page.weight()
    }
}

impl EncodeItem for StatementPage {
    /// `{[item], request}`, as in the scans' pages (`stream.rs`); a statement is never held
    /// back by `max_read_capacity`, so its `capacity_wait_us` is 0.
    fn encode<'a>(self, env: Env<'a>) -> Term<'a> {
        super::stream::page_terms(env, &self.page, &self.plan).encode(env)
    }
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
            statement::run(client, statement, sink, move |page| StatementPage {
                page,
                plan: plan.clone(),
            })
            .await
        },
    )))
}
