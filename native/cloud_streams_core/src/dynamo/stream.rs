//! Scans and queries as pull streams (architecture §2): one task per stream, running its segments
//! at the same time (at most `max_concurrency`), each paginating on its own and handing every
//! page to the one shared [`Sink`].
//!
//! Each segment calls [`Sink::reserve`] before a request, so pages are fetched only while the
//! buffer (bounded in pages) has room: memory is bounded by `prefetch + segments` pages, never
//! by the table. Every segment hands over its last page too (even empty), whose missing
//! `last_evaluated_key` tells the consumer the segment is done: that is what makes a stopped
//! parallel scan resumable from per-segment positions.

use crate::dynamo::attempts::{counted, Attempts};
use crate::dynamo::ops::{self, Operation, Page, Read};
use crate::dynamo::Item;
use crate::error::Error;
use crate::pull::{Sink, Weighed};
use aws_sdk_dynamodb::types::AttributeValue;
use aws_sdk_dynamodb::Client;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

/// What to read: the request, and where each segment starts.
#[derive(Debug, Clone)]
pub struct ReadPlan {
    pub operation: Operation,
    /// The request shared by every segment (its own `segment` and start key are ignored).
    pub read: Read,
    /// `Some(n)` sends `Segment`/`TotalSegments`; `None` reads the table as one segment.
    pub total_segments: Option<i32>,
    /// The segments to read and where each starts.
    pub segments: Segments,
    pub max_concurrency: usize,
    /// Read capacity units per second the whole stream may consume.
    pub max_read_capacity: Option<f64>,
}

/// The segments a plan reads.
#[derive(Debug, Clone)]
pub enum Segments {
    /// Segments `0..count` from the beginning, segment 0 after `first_start` when given. Made
    /// one at a time as they start: a million segments cost nothing up front.
    All {
        count: i32,
        first_start: Option<Item>,
    },
    /// These segments, each after its key (`None`: from the beginning): a resumed scan.
    Listed(Vec<(i32, Option<Item>)>),
}

impl Segments {
    fn into_starts(self) -> Box<dyn Iterator<Item = (i32, Option<Item>)> + Send> {
        match self {
            Segments::All { count, first_start } => {
                let mut first_start = first_start;
                Box::new((0..count).map(move |segment| (segment, first_start.take())))
            }
            Segments::Listed(listed) => Box::new(listed.into_iter()),
        }
    }
}

/// One page of one segment.
pub struct SegmentPage {
    pub segment: i32,
    pub page: Page,
    /// Retries and throttles of the request that fetched it.
    pub attempts: Attempts,
    /// How long `max_read_capacity` held the request back.
    pub capacity_wait: Duration,
}

impl Weighed for SegmentPage {
    /// An estimate of the memory held: string and binary sizes plus a fixed cost per value.
    fn weight(&self) -> usize {
        self.page.items.iter().map(item_weight).sum()
    }
}

fn item_weight(item: &Item) -> usize {
    item.iter()
        .map(|(name, value)| name.len() + value_weight(value))
        .sum()
}

fn value_weight(value: &AttributeValue) -> usize {
    32 + match value {
        AttributeValue::S(s) | AttributeValue::N(s) => s.len(),
        AttributeValue::B(b) => b.as_ref().len(),
        AttributeValue::L(l) => l.iter().map(value_weight).sum(),
        AttributeValue::M(m) => item_weight(m),
        AttributeValue::Ss(l) | AttributeValue::Ns(l) => l.iter().map(String::len).sum(),
        AttributeValue::Bs(l) => l.iter().map(|b| b.as_ref().len()).sum(),
        _ => 0,
    }
}

/// Paces requests so the capacity they consume stays under a rate: after a request that used
/// `c` units, the next request of any task sharing the limiter waits until `c / rate` seconds
/// have passed. Scans pace read units with it, imports write units.
pub struct CapacityLimiter {
    units_per_second: f64,
    next_request: Mutex<Instant>,
}

impl CapacityLimiter {
    pub fn new(units_per_second: f64) -> Self {
        CapacityLimiter {
            units_per_second,
            next_request: Mutex::new(Instant::now()),
        }
    }

    /// Waits until the next request may be sent.
    pub async fn wait(&self) {
        let at = *self.next_request.lock().unwrap_or_else(|e| e.into_inner());
        tokio::time::sleep_until(at.into()).await;
    }

    /// Waits for the next request's turn, holding `expected` units for it at once: requests
    /// sent at the same time are paced too, not only those after an answer. `consumed` then
    /// adds what the request used beyond them.
    pub async fn wait_reserving(&self, expected: f64) {
        let at = {
            let mut next = self.next_request.lock().unwrap_or_else(|e| e.into_inner());
            let start = (*next).max(Instant::now());
            *next = start + Duration::from_secs_f64(expected.max(0.0) / self.units_per_second);
            start
        };
        tokio::time::sleep_until(at.into()).await;
    }

    /// Records the units a request consumed.
    pub fn consumed(&self, units: f64) {
        let mut next = self.next_request.lock().unwrap_or_else(|e| e.into_inner());
        let start = (*next).max(Instant::now());
        *next = start + Duration::from_secs_f64(units.max(0.0) / self.units_per_second);
    }
}

/// Reads the plan into `sink`. `wrap` turns each page into the stream's item type (the NIF
/// layer attaches how to encode it).
pub async fn run<T, W>(
    client: Client,
    mut plan: ReadPlan,
    sink: Sink<T>,
    wrap: W,
) -> Result<(), Error>
where
    T: Weighed + Send + 'static,
    W: Fn(SegmentPage) -> T + Send + Sync + 'static,
{
    let mut waiting =
        std::mem::replace(&mut plan.segments, Segments::Listed(Vec::new())).into_starts();
    let limiter = Arc::new(plan.max_read_capacity.map(CapacityLimiter::new));
    let wrap = Arc::new(wrap);
    let plan = Arc::new(plan);
    // One task per segment, so segments deserialize their pages on every worker thread at
    // once. Dropping the set (this task aborted: the stream was closed) aborts them all.
    let mut running = JoinSet::new();
    let spawn = |running: &mut JoinSet<_>, (segment, start)| {
        let (client, plan, sink) = (client.clone(), plan.clone(), sink.clone());
        let (limiter, wrap) = (limiter.clone(), wrap.clone());
        // Counted like every task of the runtime, so `stats/0` sees each running segment.
        let live = crate::stats::Counted::live_task();
        running.spawn(async move {
            let _live = live;
            read_segment(&client, &plan, segment, start, &sink, &limiter, &wrap).await
        });
    };
    for next in waiting.by_ref().take(plan.max_concurrency.max(1)) {
        spawn(&mut running, next);
    }
    while let Some(done) = running.join_next().await {
        match done {
            Ok(Ok(())) => {}
            Ok(Err(error)) => return Err(error),
            Err(join) if join.is_panic() => return Err(Error::from_panic(&*join.into_panic())),
            Err(_) => return Err(Error::cancelled()),
        }
        if let Some(next) = waiting.next() {
            spawn(&mut running, next);
        }
    }
    Ok(())
}

async fn read_segment<T, W>(
    client: &Client,
    plan: &ReadPlan,
    segment: i32,
    start: Option<Item>,
    sink: &Sink<T>,
    limiter: &Option<CapacityLimiter>,
    wrap: &Arc<W>,
) -> Result<(), Error>
where
    T: Weighed + Send + 'static,
    W: Fn(SegmentPage) -> T + Send + Sync + 'static,
{
    let mut read = plan.read.clone();
    read.segment = plan.total_segments.map(|total| (segment, total));
    read.exclusive_start_key = start;
    // The previous page, being wrapped (encoded into terms, or into an export's lines) and
    // handed to the sink while the next request is in flight: wrapping a page takes about
    // as long as a request, and a segment's pages must reach the sink in order, so one is
    // wrapped at a time, overlapping the next request. Only when segments run one at a time
    // (scans, queries, `max_concurrency: 1`): with several, the others' requests already
    // overlap it, and measured, the extra hand-over did not pay. Nor when nothing may be
    // fetched ahead (`Bound::Items(0)`): the next request then waits for the page to be taken.
    let overlap = plan.max_concurrency <= 1 && sink.reads_ahead();
    let mut handing: Option<Handing> = None;
    loop {
        sink.reserve().await?;
        let waited = Instant::now();
        if let Some(limiter) = limiter {
            limiter.wait().await;
        }
        let capacity_wait = waited.elapsed();
        let (page, attempts) = counted(ops::read_page(client, plan.operation, &read)).await;
        let page = match page {
            Ok(page) => page,
            Err(error) => {
                // The page before the failed request still reaches the consumer first.
                if let Some(previous) = handing.take() {
                    previous.finish().await?;
                }
                return Err(in_segment(error, segment, plan.total_segments));
            }
        };
        if let (Some(limiter), Some(units)) = (limiter, page.consumed_capacity) {
            limiter.consumed(units);
        }
        let next = page.last_evaluated_key.clone();
        let page = SegmentPage {
            segment,
            page,
            attempts,
            capacity_wait,
        };
        if let Some(previous) = handing.take() {
            previous.finish().await?;
        }
        let hand = if overlap {
            Some(Handing::spawn(sink.clone(), wrap.clone(), page))
        } else {
            sink.send(wrap(page)).await?;
            None
        };
        match next {
            Some(key) => {
                read.exclusive_start_key = Some(key);
                handing = hand;
            }
            None => match hand {
                Some(hand) => return hand.finish().await,
                None => return Ok(()),
            },
        }
    }
}

/// A page being wrapped and sent on a task of its own; dropping it (the segment stopped)
/// aborts that task.
struct Handing(tokio::task::JoinHandle<Result<(), Error>>);

impl Handing {
    fn spawn<T, W>(sink: Sink<T>, wrap: Arc<W>, page: SegmentPage) -> Self
    where
        T: Weighed + Send + 'static,
        W: Fn(SegmentPage) -> T + Send + Sync + 'static,
    {
        let live = crate::stats::Counted::live_task();
        Handing(tokio::spawn(async move {
            let _live = live;
            sink.send(wrap(page)).await
        }))
    }

    async fn finish(mut self) -> Result<(), Error> {
        match (&mut self.0).await {
            Ok(sent) => sent,
            Err(join) if join.is_panic() => Err(Error::from_panic(&*join.into_panic())),
            Err(_) => Err(Error::cancelled()),
        }
    }
}

impl Drop for Handing {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Names the failed segment in the message, so a parallel scan's error says which one.
fn in_segment(mut error: Error, segment: i32, total: Option<i32>) -> Error {
    if let Some(total) = total {
        error.message = format!("segment {segment} of {total}: {}", error.message);
    }
    error
}
