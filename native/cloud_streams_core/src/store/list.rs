//! Streaming listings, a page at a time. object_store's listing fetches the next page only
//! when polled past the current one; `ready_chunks` hands over each page as it arrives, and
//! `Sink::reserve` holds the next fetch until a consumer asks (with no prefetch), so
//! `Enum.take(stream, 10)` costs one request. A transient failure mid-listing resumes after
//! the last key handed over, a bounded number of times.

use crate::error::Error;
use crate::pull::{Sink, Weighed};
use crate::store::ops::{parse_path, parse_prefix};
use crate::store::Store;
use futures_util::StreamExt;
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
    let prefix = parse_prefix(listing.prefix.as_deref())?;
    let mut after = listing.offset.as_deref().map(parse_path).transpose()?;
    let mut failures = 0;
    'listing: loop {
        // Every store lists in key order, so the last key handed over is the continuation.
        let stream = match &after {
            Some(offset) => store.inner.list_with_offset(prefix.as_ref(), offset),
            None => store.inner.list(prefix.as_ref()),
        };
        let mut pages = stream.ready_chunks(listing.page_size);
        loop {
            sink.reserve().await?;
            let Some(page) = pages.next().await else {
                return Ok(());
            };
            let mut metas = Vec::with_capacity(page.len());
            let mut failed = None;
            for entry in page {
                match entry {
                    Ok(meta) => metas.push(meta),
                    Err(e) => {
                        failed = Some(crate::store::error::from_object_store(e, None));
                        break;
                    }
                }
            }
            if let Some(last) = metas.last() {
                after = Some(last.location.clone());
                failures = 0;
            }
            if !metas.is_empty() {
                sink.send(Page(metas)).await?;
            }
            if let Some(error) = failed {
                if !error.retryable || failures >= RESUME_ATTEMPTS {
                    return Err(error);
                }
                tokio::time::sleep(RESUME_BACKOFF * 2u32.pow(failures)).await;
                failures += 1;
                continue 'listing;
            }
        }
    }
}
