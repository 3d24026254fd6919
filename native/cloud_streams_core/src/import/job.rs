//! The import: items of an export's data files written to a table with `BatchWriteItem`.
//!
//! Files are read one after the other, in the manifest's order, into batches of 25 items (one
//! request each); up to `max_concurrency` requests are in flight, across files. Items DynamoDB
//! leaves unprocessed are retried with jittered exponential backoff, a bounded number of
//! times. `max_write_capacity` paces requests by the `ConsumedCapacity` each answer reports
//! (the scans' [`CapacityLimiter`]), holding one unit per item for each request before it is
//! sent, so that requests in flight together do not burst past the rate.
//!
//! Resume: a progress record of ours, `<export>/_import/<table>.json` on the export's store,
//! names for each file the prefix of its lines whose items are all written (requests finish
//! out of order, so only a contiguous prefix counts), and whether the file is done. It is
//! rewritten when a file is done and at most every [`SAVE_EVERY`] within one. A resumed import
//! skips done files and the acknowledged lines; what it writes again (the requests in flight
//! when it stopped) are puts of the same items, idempotent by key.

use crate::dynamo::ops::{put_requests, write_batch};
use crate::dynamo::stream::CapacityLimiter;
use crate::dynamo::Item;
use crate::error::{Error, ErrorKind};
use crate::import::reader::{self, Export, FileReader};
use crate::store::ops;
use crate::store::Store;
use aws_sdk_dynamodb::Client;
use bytes::Bytes;
use object_store::PutOptions;
use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinSet;

/// Items per `BatchWriteItem`: DynamoDB's maximum.
pub const BATCH_SIZE: usize = 25;

/// The longest time acknowledged lines go unrecorded while a file is being imported.
pub const SAVE_EVERY: Duration = Duration::from_secs(1);

#[derive(Debug, Clone)]
pub struct ImportRequest {
    pub prefix: String,
    pub export_id: Option<String>,
    pub table: String,
    pub max_concurrency: usize,
    /// Write capacity units per second the import may consume.
    pub max_write_capacity: Option<f64>,
    /// Continue from the progress record, when there is one.
    pub resume: bool,
    /// Write the progress record into the export's store (false: a store the import may
    /// only read; the import then cannot be resumed).
    pub keep_record: bool,
}

/// Items written, files done and their compressed bytes, since the import began (a resumed
/// import counts what was done before it stopped).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Totals {
    pub items: u64,
    pub files: u64,
    pub bytes: u64,
    /// The export's own counts, for a progress bar: its summary's itemCount (else the sum of
    /// its files' counts, when every file has one) and its number of data files.
    pub total_items: Option<u64>,
    pub total_files: u64,
}

/// Which side failed: the store (the export's files, the progress record) or DynamoDB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    Store,
    Dynamo,
}

pub type Failure = (Source, Error);

fn store_failure(error: Error) -> Failure {
    (Source::Store, error)
}

/// Where one file stands.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
struct FileState {
    /// Lines 1..=lines have all their items written.
    lines: u64,
    items: u64,
    bytes: u64,
    done: bool,
    /// Written batches past the prefix: first line -> (last line, items).
    written: BTreeMap<u64, (u64, u64)>,
    /// Known once the file has been read to its end.
    total_lines: Option<u64>,
}

impl FileState {
    /// Lines `first..=last` are written; true if that finished the file.
    fn written(&mut self, first: u64, last: u64, items: u64) -> bool {
        self.written.insert(first, (last, items));
        while let Some((last, items)) = self.written.remove(&(self.lines + 1)) {
            self.lines = last;
            self.items += items;
        }
        let finished = !self.done && self.total_lines == Some(self.lines);
        self.done |= finished;
        finished
    }
}

/// One batch: its file, its lines, and what became of it.
type Written = (usize, u64, u64, u64, Result<(), Error>);

struct Job {
    store: Arc<Store>,
    export: Export,
    record_path: String,
    keep_record: bool,
    table: String,
    files: Vec<FileState>,
    running: JoinSet<Written>,
    saved_at: Instant,
    unsaved: bool,
}

/// Runs the import; `progress` hears the totals each time the progress record is written.
pub async fn run(
    store: Arc<Store>,
    client: Client,
    request: ImportRequest,
    progress: impl Fn(Totals) + Send + Sync,
) -> Result<Totals, Failure> {
    if request.max_concurrency == 0 {
        return Err(store_failure(Error::invalid_argument(
            "max_concurrency must be positive",
        )));
    }
    let export = reader::open(&store, &request.prefix, request.export_id.as_deref())
        .await
        .map_err(store_failure)?;
    let record_path = format!("{}/_import/{}.json", export.dir, request.table);
    let files = if request.resume {
        load(&store, &record_path, &export).await?
    } else {
        vec![FileState::default(); export.files.len()]
    };
    let mut job = Job {
        store,
        export,
        record_path,
        keep_record: request.keep_record,
        table: request.table.clone(),
        files,
        running: JoinSet::new(),
        saved_at: Instant::now(),
        unsaved: false,
    };
    let limiter = request
        .max_write_capacity
        .map(|rate| Arc::new(CapacityLimiter::new(rate)));
    for index in 0..job.export.files.len() {
        if job.files[index].done {
            continue;
        }
        let file = job.export.files[index].clone();
        let mut reader = FileReader::open(&job.store, file, job.export.format)
            .await
            .map_err(store_failure)?;
        reader.skip_through(job.files[index].lines);
        let mut last = job.files[index].lines;
        loop {
            while job.running.len() >= request.max_concurrency {
                let joined = job.running.join_next().await.expect("a running batch");
                job.finished(joined, &progress).await?;
            }
            while let Some(joined) = job.running.try_join_next() {
                job.finished(joined, &progress).await?;
            }
            if job.unsaved && job.saved_at.elapsed() >= SAVE_EVERY {
                job.save(&progress).await?;
            }
            let batch = reader.next_batch(BATCH_SIZE).await.map_err(store_failure)?;
            let Some(&(to, _)) = batch.items.last() else {
                break;
            };
            let items: Vec<Item> = batch.items.into_iter().map(|(_, item)| item).collect();
            let (client, table, limiter) = (client.clone(), request.table.clone(), limiter.clone());
            let (from, count) = (last + 1, items.len() as u64);
            // Counted like every task of the runtime, so `stats/0` sees each request.
            let live = crate::stats::Counted::live_task();
            job.running.spawn(async move {
                let _live = live;
                let result = async {
                    let requests = put_requests(items)?;
                    write_batch(&client, &table, requests, limiter.as_deref(), &mut 0).await
                }
                .await;
                (index, from, to, count, result)
            });
            last = to;
        }
        // The lines after the last item (empty ones) count as written.
        let state = &mut job.files[index];
        state.bytes = reader.compressed_bytes();
        state.total_lines = Some(reader.lines());
        let finished = state.written(last + 1, reader.lines(), 0);
        if finished {
            job.save(&progress).await?;
        }
    }
    while let Some(joined) = job.running.join_next().await {
        job.finished(joined, &progress).await?;
        // Reports go on while the last requests finish: paced ones can take long.
        if job.unsaved && job.saved_at.elapsed() >= SAVE_EVERY {
            job.save(&progress).await?;
        }
    }
    job.save(&progress).await?;
    Ok(job.totals())
}

impl Job {
    async fn finished(
        &mut self,
        joined: Result<Written, tokio::task::JoinError>,
        progress: &(impl Fn(Totals) + Send + Sync),
    ) -> Result<(), Failure> {
        let (index, from, to, count, result) = match joined {
            Ok(written) => written,
            Err(join) if join.is_panic() => {
                return Err((Source::Dynamo, Error::from_panic(&*join.into_panic())))
            }
            Err(_) => return Err((Source::Dynamo, Error::cancelled())),
        };
        if let Err(mut error) = result {
            let file = &self.export.files[index];
            error.message = format!(
                "writing the items of lines {from}-{to} of {} to {}: {}",
                file.path, self.table, error.message
            );
            return Err((Source::Dynamo, error));
        }
        self.unsaved = true;
        if self.files[index].written(from, to, count) {
            self.save(progress).await?;
        }
        Ok(())
    }

    fn totals(&self) -> Totals {
        let files = &self.export.files;
        let listed: Option<u64> = files.iter().map(|f| f.item_count).sum();
        let totals = Totals {
            total_items: self.export.item_count.or(listed),
            total_files: files.len() as u64,
            ..Totals::default()
        };
        self.files.iter().fold(totals, |t, f| Totals {
            items: t.items + f.items,
            files: t.files + u64::from(f.done),
            bytes: t.bytes + if f.done { f.bytes } else { 0 },
            ..t
        })
    }

    /// Rewrites the progress record (a plain put: atomic on every store).
    async fn save(&mut self, progress: &(impl Fn(Totals) + Send + Sync)) -> Result<(), Failure> {
        let files: serde_json::Map<String, Value> = self
            .export
            .files
            .iter()
            .zip(&self.files)
            .filter(|(_, state)| state.lines > 0 || state.done)
            .map(|(file, state)| {
                let entry = json!({
                    "lines": state.lines,
                    "items": state.items,
                    "bytes": state.bytes,
                    "done": state.done,
                });
                (file.key.clone(), entry)
            })
            .collect();
        let record = json!({
            "version": 1,
            "exportId": self.export.id,
            "table": self.table,
            "files": files,
        });
        if self.keep_record {
            let body = Bytes::from(record.to_string());
            ops::put(&self.store, &self.record_path, body, PutOptions::default())
                .await
                .map_err(store_failure)?;
        }
        self.saved_at = Instant::now();
        self.unsaved = false;
        progress(self.totals());
        Ok(())
    }
}

/// The files' states from the progress record; none when there is no record.
async fn load(store: &Store, path: &str, export: &Export) -> Result<Vec<FileState>, Failure> {
    let mut files = vec![FileState::default(); export.files.len()];
    let bytes = match ops::get(store, path, Default::default()).await {
        Ok((bytes, _)) => bytes,
        Err(e) if e.kind == ErrorKind::NotFound => return Ok(files),
        Err(e) => return Err(store_failure(e)),
    };
    let invalid = |detail: &str| {
        store_failure(
            Error::invalid_argument(format!("{path}: not an import progress record ({detail})"))
                .with_path(path),
        )
    };
    let record: Value = serde_json::from_slice(&bytes).map_err(|_| invalid("invalid JSON"))?;
    if record.get("exportId").and_then(Value::as_str) != Some(export.id.as_str()) {
        return Err(invalid("another export's"));
    }
    let recorded = record
        .get("files")
        .and_then(Value::as_object)
        .ok_or_else(|| invalid("no files"))?;
    for (file, state) in export.files.iter().zip(files.iter_mut()) {
        if let Some(entry) = recorded.get(&file.key) {
            let number = |name: &str| entry.get(name).and_then(Value::as_u64);
            let (Some(lines), Some(items)) = (number("lines"), number("items")) else {
                return Err(invalid("a file without lines or items"));
            };
            state.lines = lines;
            state.items = items;
            state.bytes = number("bytes").unwrap_or(0);
            state.done = entry.get("done").and_then(Value::as_bool).unwrap_or(false);
        }
    }
    Ok(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_contiguous_prefix_of_lines_counts() {
        let mut state = FileState::default();
        assert!(!state.written(26, 50, 25));
        assert_eq!((state.lines, state.items), (0, 0));
        assert!(!state.written(1, 25, 25));
        assert_eq!((state.lines, state.items), (50, 50));
        state.total_lines = Some(52);
        assert!(state.written(51, 52, 1));
        assert!(state.done);
        assert_eq!((state.lines, state.items), (52, 51));
    }
}
