//! Streaming listings, a page at a time. object_store's listing fetches the next page only
//! when polled past the current one; each page handed over holds what has arrived (at most
//! `page_size`), and `Sink::reserve` holds the next fetch until a consumer asks (with no
//! prefetch), so `Enum.take(stream, 10)` costs one request.

use crate::error::Error;
use crate::pull::{Sink, Weighed};
use crate::store::ops::entries;
use crate::store::Store;
use futures_util::stream::FusedStream;
use futures_util::{FutureExt, StreamExt};
use object_store::ObjectMeta;
use std::sync::Arc;

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

pub async fn run(store: Arc<Store>, listing: Listing, sink: Sink<Page>) -> Result<(), Error> {
    // Fused: a page that ends at the end of the listing must not poll it again.
    let mut entries = entries(&store, listing.prefix.as_deref(), listing.offset.as_deref())?.fuse();
    loop {
        sink.reserve().await?;
        let page = next_page(&mut entries, listing.page_size)
            .await
            .map_err(|e| crate::store::error::from_object_store(e, None))?;
        if page.is_empty() {
            return Ok(());
        }
        sink.send(Page(page)).await?;
    }
}

/// Waits for one entry, then takes the entries already there, up to `page_size`. Unlike
/// `ready_chunks`, nothing is allocated for `page_size` up front: a page holds what arrived.
async fn next_page<S>(entries: &mut S, page_size: usize) -> object_store::Result<Vec<ObjectMeta>>
where
    S: FusedStream<Item = object_store::Result<ObjectMeta>> + Unpin,
{
    let mut page = Vec::new();
    let Some(first) = entries.next().await else {
        return Ok(page);
    };
    page.push(first?);
    while page.len() < page_size {
        match entries.next().now_or_never() {
            Some(Some(entry)) => page.push(entry?),
            _ => break,
        }
    }
    Ok(page)
}
