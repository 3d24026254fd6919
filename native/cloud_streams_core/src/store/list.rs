//! Streaming listings, a page at a time. object_store's listing fetches the next page only
//! when polled past the current one; each page handed over holds what has arrived (at most
//! `page_size`), and `Sink::reserve` holds the next fetch until a consumer asks (with no
//! prefetch), so `Enum.take(stream, 10)` costs one request. A transient failure mid-listing
//! resumes after the last key handed over, a bounded number of times.

use crate::error::Error;
use crate::pull::{Sink, Weighed};
use crate::store::ops::entries;
use crate::store::Store;
use futures_util::stream::FusedStream;
use futures_util::{FutureExt, StreamExt};
use object_store::ObjectMeta;
use std::sync::Arc;
use std::time::Duration;

/// Objects of one listing page (at most `page_size`).
pub struct Page(pub Vec<ObjectMeta>);

impl Weighed for Page {
    /// An estimate of the memory held: the paths plus a fixed cost per entry.
    fn weight(&self) -> usize {
        self.0.iter().map(|m| m.location.as_ref().len() + 96).sum()
    }
}

#[derive(Debug, Clone)]
pub struct Listing {
    pub prefix: Option<String>,
    pub offset: Option<String>,
    pub page_size: usize,
}

/// How often a listing resumes after transient failures in a row, and the first pause
/// (doubled each time): a mid-body connection reset must not restart a listing of millions
/// of keys, and a store that stays down must still end the stream with its error.
const RESUME_ATTEMPTS: u32 = 5;
const RESUME_BACKOFF: Duration = Duration::from_millis(200);

pub async fn run(store: Arc<Store>, listing: Listing, sink: Sink<Page>) -> Result<(), Error> {
    let mut after = listing.offset.clone();
    let mut failures = 0;
    'listing: loop {
        // Every store lists in key order, so the last key handed over is the continuation.
        // Fused: a page that ends at the end of the listing must not poll it again.
        let mut entries = entries(&store, listing.prefix.as_deref(), after.as_deref())?.fuse();
        loop {
            sink.reserve().await?;
            let (page, failed) = next_page(&mut entries, listing.page_size).await;
            if let Some(last) = page.last() {
                after = Some(last.location.to_string());
                failures = 0;
            }
            let empty = page.is_empty();
            if !empty {
                sink.send(Page(page)).await?;
            }
            match failed {
                Some(e) => {
                    let error = crate::store::error::from_object_store(e, None);
                    if !error.retryable || failures >= RESUME_ATTEMPTS {
                        return Err(error);
                    }
                    tokio::time::sleep(RESUME_BACKOFF * 2u32.pow(failures)).await;
                    failures += 1;
                    continue 'listing;
                }
                None if empty => return Ok(()),
                None => {}
            }
        }
    }
}

/// Waits for one entry, then takes the entries already there, up to `page_size`, and the
/// error that ended the page early, if any. Unlike `ready_chunks`, nothing is allocated for
/// `page_size` up front: a page holds what arrived.
async fn next_page<S>(
    entries: &mut S,
    page_size: usize,
) -> (Vec<ObjectMeta>, Option<object_store::Error>)
where
    S: FusedStream<Item = object_store::Result<ObjectMeta>> + Unpin,
{
    let mut page = Vec::new();
    let mut next = match entries.next().await {
        Some(entry) => Some(entry),
        None => return (page, None),
    };
    while let Some(entry) = next {
        match entry {
            Ok(meta) => page.push(meta),
            Err(e) => return (page, Some(e)),
        }
        if page.len() >= page_size {
            break;
        }
        next = entries.next().now_or_never().flatten();
    }
    (page, None)
}
