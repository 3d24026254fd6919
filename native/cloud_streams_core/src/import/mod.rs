//! Table import: a DynamoDB export (DynamoDB's own `DYNAMODB_JSON` export, or our NDJSON) on a
//! store, read and decoded here and written with batch writes, the items never crossing into
//! the BEAM.
//!
//! - [`decode`]: one line into an item.
//! - [`reader`]: finding an export and reading its data files as items.
//! - [`job`]: the import itself (batch writes, capacity pacing, its progress record).
//! - [`read_pages`]: an export's items as pages of a pull stream, for `read_export`.

pub mod decode;
pub mod job;
pub mod reader;

use crate::dynamo::Item;
use crate::error::Error;
use crate::pull::{Sink, Weighed};
use crate::store::Store;
use reader::FileReader;
use std::sync::Arc;

/// Every item of the export, file after file, in pages of up to `page_size` items. A page is
/// read only when the stream has room for it (`Sink::reserve`).
pub async fn read_pages<T, W>(
    store: Arc<Store>,
    prefix: String,
    export_id: Option<String>,
    page_size: usize,
    sink: Sink<T>,
    wrap: W,
) -> Result<(), Error>
where
    T: Weighed + Send + 'static,
    W: Fn(Vec<Item>, usize) -> T,
{
    let export = reader::open(&store, &prefix, export_id.as_deref()).await?;
    for file in export.files {
        let mut reader = FileReader::open(&store, file, export.format).await?;
        loop {
            sink.reserve().await?;
            let batch = reader.next_batch(page_size.max(1)).await?;
            if batch.items.is_empty() {
                break;
            }
            let items = batch.items.into_iter().map(|(_, item)| item).collect();
            sink.send(wrap(items, batch.text_bytes)).await?;
        }
    }
    Ok(())
}
