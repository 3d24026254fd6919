//! Scans and queries as pull streams (driven by `test/dynamo/stream_test.exs`). Each stream
//! item is one page of one segment: `{segment, [item], last_evaluated_key | nil}`;
//! `Dynamo.Table.Stream` decodes the items and keeps each segment's position.

use super::{codec, optional_item, ConfigTerm, ReadTerm};
use crate::stream::{EncodeItem, StreamResource};
use cloud_streams_core::dynamo::client::{self, ClientConfig};
use cloud_streams_core::dynamo::stream::{self, Operation, ReadPlan, SegmentPage};
use cloud_streams_core::pull::{self, Bound};
use rustler::{Atom, Encoder, Env, NifResult, ResourceArc, Term};

impl EncodeItem for SegmentPage {
    fn encode<'a>(self, env: Env<'a>) -> Term<'a> {
        let items: Vec<Term> = self
            .page
            .items
            .iter()
            .map(|i| codec::encode_item(env, i))
            .collect();
        (
            self.segment,
            items,
            optional_item(env, &self.page.last_evaluated_key),
        )
            .encode(env)
    }
}

/// `operation` is `:scan` or `:query`; `segments` is `[{segment, start_key | nil}]`.
#[rustler::nif]
#[allow(clippy::too_many_arguments)]
fn dynamo_read_stream<'a>(
    env: Env<'a>,
    config: ConfigTerm,
    operation: Atom,
    read: ReadTerm<'a>,
    total_segments: Option<i32>,
    segments: Vec<(i32, Term<'a>)>,
    max_concurrency: usize,
    prefetch_pages: usize,
    max_read_capacity: Option<f64>,
) -> NifResult<ResourceArc<StreamResource>> {
    let operation = if operation == Atom::from_str(env, "scan")? {
        Operation::Scan
    } else {
        Operation::Query
    };
    let config: ClientConfig = config.into();
    let segments = segments
        .into_iter()
        .map(|(segment, start)| {
            let start = if start.is_atom() {
                None
            } else {
                Some(codec::decode_item(start)?)
            };
            Ok((segment, start))
        })
        .collect::<NifResult<_>>()?;
    let plan = ReadPlan {
        operation,
        read: read.decode()?,
        total_segments,
        segments,
        max_concurrency,
        max_read_capacity,
    };
    Ok(StreamResource::new(pull::spawn(
        Bound::Items(prefetch_pages),
        |sink| async move { stream::run(client::client(&config).await, plan, sink).await },
    )))
}
