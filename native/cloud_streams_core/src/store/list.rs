//! Streaming listings, a page at a time. object_store's listing fetches the next page only
//! when polled past the current one; `ready_chunks` hands over each page as it arrives, and
//! `Sink::reserve` holds the next fetch until a consumer asks (with no prefetch), so
//! `Enum.take(stream, 10)` costs one request.

use crate::error::Error;
use crate::pull::{Sink, Weighed};
use crate::store::ops::{parse_path, parse_prefix};
use crate::store::Store;
use futures_util::StreamExt;
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
    let prefix = parse_prefix(listing.prefix.as_deref())?;
    let stream = match listing.offset.as_deref() {
        Some(offset) => store
            .inner
            .list_with_offset(prefix.as_ref(), &parse_path(offset)?),
        None => store.inner.list(prefix.as_ref()),
    };
    let mut pages = stream.ready_chunks(listing.page_size);
    loop {
        sink.reserve().await?;
        let Some(page) = pages.next().await else {
            return Ok(());
        };
        let page = page
            .into_iter()
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| crate::store::error::from_object_store(e, None))?;
        sink.send(Page(page)).await?;
    }
}
