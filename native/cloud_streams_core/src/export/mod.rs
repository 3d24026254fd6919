//! Table export (issue 16): a parallel scan whose pages are encoded ([`format`]), gzipped and
//! written by multipart uploads on the same runtime, in DynamoDB's own export layout:
//!
//! ```text
//! <prefix>/AWSDynamoDB/<export_id>/_started                     empty, written first
//! <prefix>/AWSDynamoDB/<export_id>/data/<segment>-<n>.json.gz   the data files
//! <prefix>/AWSDynamoDB/<export_id>/_progress/segment-<n>.json   resume state (ours)
//! <prefix>/AWSDynamoDB/<export_id>/manifest-files.json          one line per data file
//! <prefix>/AWSDynamoDB/<export_id>/manifest-files.checksum
//! <prefix>/AWSDynamoDB/<export_id>/manifest-summary.json        written last: complete
//! <prefix>/AWSDynamoDB/<export_id>/manifest-summary.checksum
//! ```
//!
//! The scan is `dynamo::stream::run`, the one segment reader: each segment's pages are
//! encoded on that segment's task (the stream's `wrap`), then handed to the segment's writer
//! task through a channel of one page, so the uploads' acknowledgements pace the scan and
//! memory does not depend on the table. A data file ends on a page boundary once its
//! compressed size reaches `max_file_bytes`; the segment's record is then rewritten with the
//! file and the page's `last_evaluated_key`, so a resumed export restarts each segment exactly
//! after its last finished file and rewrites (under the same name) only the file that was in
//! progress.

pub mod format;
pub mod layout;
pub mod records;

use crate::dynamo::ops::{Operation, Read};
use crate::dynamo::stream::{self, ReadPlan, SegmentPage, Segments};
use crate::dynamo::Item;
use crate::error::{Error, ErrorKind};
use crate::pull::{self, Bound, Event, Weighed};
use crate::store::upload::{self, Reply, UploadConfig, UploadHandle};
use crate::store::{ops, Store};
use aws_sdk_dynamodb::Client;
use base64::Engine;
use bytes::Bytes;
use flate2::write::GzEncoder;
use flate2::Compression;
use layout::{join, on_store, Format};
use md5::{Digest, Md5};
use records::{FileEntry, Fixed, InProgress, Position, SegmentRecord};
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::Write;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::JoinSet;

/// Compressed output is handed to the upload in pieces of about this size.
const FLUSH_BYTES: usize = 1 << 20;
/// gzip level 1: measured (NOTES.md, issue 16) about 5x faster than the default level 6 on
/// DynamoDB JSON lines, for files about 1.5x larger. Any level is valid gzip for every reader.
const GZIP_LEVEL: u32 = 1;
/// Pages buffered between the scan and the writers, besides one page in hand per segment (two when one segment runs at a time).
const PREFETCH_PAGES: usize = 2;

/// Which export a run continues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Resume {
    /// A new export; refused when the prefix already holds one, unless `overwrite`.
    No,
    /// The newest export in progress under the prefix (or, when every one is complete, the
    /// newest complete one, whose result is returned as it is).
    Latest,
    Id(String),
}

#[derive(Debug, Clone)]
pub struct ExportPlan {
    /// The scan request shared by every segment (table, filter, projection, names, values,
    /// consistent read, page size as `limit`).
    pub read: Read,
    pub segments: i32,
    pub max_concurrency: usize,
    pub max_read_capacity: Option<f64>,
    /// The store path the export lives under ("" for the store's root).
    pub prefix: String,
    pub format: Format,
    pub max_file_bytes: u64,
    pub part_size: usize,
    pub resume: Resume,
    pub overwrite: bool,
    /// For the summary's ARNs.
    pub region: Option<String>,
    /// Progress is reported at most this often (and after each finished data file).
    pub progress_interval: Duration,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SegmentProgress {
    pub items: u64,
    pub bytes: u64,
    pub files: u64,
    /// Pages scanned by this run, empty ones included: a selective filter scans many pages
    /// that change nothing else, and each report is what tells the caller the export lives.
    pub pages_scanned: u64,
    pub done: bool,
}

/// Totals of the whole export (files finished by an earlier run included), and the segments
/// running or changed since the previous report (never all of them: there can be a million).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Progress {
    pub items: u64,
    pub bytes: u64,
    pub files: u64,
    pub pages_scanned: u64,
    pub segments: BTreeMap<i32, SegmentProgress>,
}

/// A finished export. `bytes` are the compressed bytes of its data files.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exported {
    pub export_id: String,
    pub items: u64,
    pub bytes: u64,
    pub files: u64,
    /// The path of `manifest-summary.json`.
    pub manifest: String,
}

pub type Reporter = Arc<dyn Fn(&Progress) + Send + Sync>;

fn iso_time(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms)
        .unwrap_or_default()
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// Runs an export to its end: `Ok` once `manifest-summary.json` is written. On an error the
/// uploads in progress are aborted and the progress records kept, so it can be resumed.
pub async fn run(
    client: Client,
    store: Arc<Store>,
    plan: ExportPlan,
    report: Reporter,
) -> Result<Exported, Error> {
    let root = layout::exports_root(&plan.prefix);
    let existing = layout::list_exports(&store, &root).await?;
    let fixed = Fixed::new(&plan.read, plan.segments, plan.format)?;
    let (export_id, records) = match &plan.resume {
        Resume::No => {
            if let Some((id, complete)) = existing.last() {
                if !plan.overwrite {
                    let state = if *complete {
                        "a complete"
                    } else {
                        "an unfinished"
                    };
                    return Err(Error::new(
                        ErrorKind::AlreadyExists,
                        format!(
                            "{root} already holds {state} export ({id}): pass resume: true to \
                             continue it, or overwrite: true to delete it first"
                        ),
                    )
                    .with_path(join(&root, id)));
                }
                for (id, _) in &existing {
                    remove_export(&store, &join(&root, id)).await?;
                }
            }
            let id = layout::new_export_id();
            let started = join(&root, &format!("{id}/_started"));
            ops::put(&store, &started, Bytes::new(), Default::default())
                .await
                .map_err(|e| on_store(e, &started))?;
            (id, BTreeMap::new())
        }
        Resume::Latest | Resume::Id(_) => {
            let chosen = match &plan.resume {
                Resume::Id(id) => existing.iter().find(|(e, _)| e == id),
                _ => existing
                    .iter()
                    .rfind(|(_, complete)| !complete)
                    .or(existing.last()),
            };
            let Some((id, complete)) = chosen.cloned() else {
                return Err(Error::new(
                    ErrorKind::NotFound,
                    format!("no export to resume under {root}"),
                )
                .with_path(root));
            };
            let dir = join(&root, &id);
            if complete {
                return completed(&store, &dir, &id).await;
            }
            let records = read_records(&store, &dir).await?;
            for record in records.values() {
                if record.fixed != fixed {
                    return Err(Error::invalid_argument(format!(
                        "export {id} was started with other options (table, segments, \
                         format, filter, projection or their expression attribute names \
                         and values): resume it with the same ones, or start a new export \
                         with overwrite: true"
                    ))
                    .with_path(dir));
                }
                if let Some(in_progress) = &record.in_progress {
                    clean_up(&store, in_progress).await?;
                }
            }
            remove_unrecorded_files(&store, &dir, &records).await?;
            (id, records)
        }
    };
    let dir = join(&root, &export_id);
    let progress = Arc::new(ProgressState::new(&records, report));
    let ticker = progress.clone();
    let interval = plan.progress_interval.max(Duration::from_millis(1));
    let work = export_segments(client, store.clone(), &plan, &dir, fixed, records, progress);
    let records = tokio::select! {
        records = work => records?,
        () = tick(ticker, interval) => unreachable!("the ticker never ends"),
    };
    finish(&store, &plan, &dir, &export_id, &records).await
}

/// Reports progress every `interval` while it changes; never ends.
async fn tick(progress: Arc<ProgressState>, interval: Duration) {
    loop {
        tokio::time::sleep(interval).await;
        progress.report_if_changed();
    }
}

async fn read_records(store: &Store, dir: &str) -> Result<BTreeMap<i32, SegmentRecord>, Error> {
    let progress = join(dir, "_progress");
    let listed = ops::list(store, Some(&progress), None)
        .await
        .map_err(|e| on_store(e, &progress))?;
    let mut records = BTreeMap::new();
    for meta in listed {
        let path = meta.location.to_string();
        let (bytes, _) = ops::get(store, &path, Default::default())
            .await
            .map_err(|e| on_store(e, &path))?;
        let record = SegmentRecord::from_bytes(&bytes, &path)?;
        records.insert(record.segment, record);
    }
    Ok(records)
}

/// Aborts a multipart upload a stopped run left behind: by its id where the store has one
/// (S3, GCS), else by deleting the local store's staging files (`<file>#<n>`, which
/// object_store leaves next to the file). Azure's uncommitted blocks expire on their own.
async fn clean_up(store: &Store, in_progress: &InProgress) -> Result<(), Error> {
    let location = store.location(&in_progress.path)?;
    if let (Some(multipart), Some(id)) = (&store.multipart, &in_progress.upload_id) {
        let full = store.full_path(&location);
        match multipart.abort_multipart(&full, &id.clone()).await {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => {
                let e = crate::store::error::from_object_store(e, Some(&in_progress.path));
                // An upload already completed or aborted is gone: nothing to clean.
                if e.kind != ErrorKind::NotFound {
                    return Err(e);
                }
            }
        }
    }
    remove_staging_files(store, &location, Some(&in_progress.path))
}

/// Deletes the local store's staging files (`<file>#<n>`) of the file at `path`, or of every
/// file in the folder `path` when `file` is `None`. Other stores have none.
fn remove_staging_files(
    store: &Store,
    location: &object_store::path::Path,
    file: Option<&str>,
) -> Result<(), Error> {
    let Some(local) = &store.local else {
        return Ok(());
    };
    let shown = file.unwrap_or(location.as_ref());
    let path = local
        .path_to_filesystem(&store.full_path(location))
        .map_err(|e| crate::store::error::from_object_store(e, Some(shown)))?;
    let (folder, name) = match file {
        Some(_) => match (path.parent(), path.file_name()) {
            (Some(parent), Some(name)) => (parent.to_path_buf(), Some(name.to_string_lossy())),
            _ => return Ok(()),
        },
        None => (path, None),
    };
    let Ok(entries) = std::fs::read_dir(&folder) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        let entry_name = entry.file_name().to_string_lossy().into_owned();
        let Some((base, suffix)) = entry_name.rsplit_once('#') else {
            continue;
        };
        let staging = !suffix.is_empty() && suffix.bytes().all(|b| b.is_ascii_digit());
        if staging && name.as_deref().is_none_or(|name| name == base) {
            let _ = std::fs::remove_file(entry.path());
        }
    }
    Ok(())
}

/// Before a resumed run writes, `data/` is made to hold exactly the files the records name.
/// A file completed by a stopped run but not yet recorded (the run died between the two)
/// would otherwise stay there when the resumed run cuts its files differently, and
/// DynamoDB's `ImportTable` reads every object under `data/`. The local store's staging files
/// are removed too, recorded or not: a run can die after creating one and before recording
/// it.
async fn remove_unrecorded_files(
    store: &Store,
    dir: &str,
    records: &BTreeMap<i32, SegmentRecord>,
) -> Result<(), Error> {
    let data = join(dir, "data");
    let recorded: std::collections::HashSet<&str> = records
        .values()
        .flat_map(|r| &r.files)
        .map(|f| f.key.as_str())
        .collect();
    let listed = ops::list(store, Some(&data), None)
        .await
        .map_err(|e| on_store(e, &data))?;
    let stray: Vec<String> = listed
        .into_iter()
        .map(|m| m.location.to_string())
        .filter(|path| !recorded.contains(path.as_str()))
        .collect();
    let (_, failed) = ops::delete_many(store, stray).await;
    if let Some((path, error)) = failed.into_iter().next() {
        return Err(on_store(error, &path));
    }
    remove_staging_files(store, &store.location(&data)?, None)
}

/// Deletes an export (`overwrite: true`), its left-behind uploads aborted first.
async fn remove_export(store: &Store, dir: &str) -> Result<(), Error> {
    if let Ok(records) = read_records(store, dir).await {
        for in_progress in records.values().filter_map(|r| r.in_progress.as_ref()) {
            clean_up(store, in_progress).await?;
        }
    }
    let listed = ops::list(store, Some(dir), None)
        .await
        .map_err(|e| on_store(e, dir))?;
    let paths = listed.into_iter().map(|m| m.location.to_string()).collect();
    let (_, failed) = ops::delete_many(store, paths).await;
    if let Some((path, error)) = failed.into_iter().next() {
        return Err(on_store(error, &path));
    }
    // Staging files are not listed, recorded or not.
    remove_staging_files(store, &store.location(&join(dir, "data"))?, None)
}

/// The result of an export that is already complete, from its manifests.
async fn completed(store: &Store, dir: &str, id: &str) -> Result<Exported, Error> {
    let manifests = layout::read_manifests(store, dir, id).await?;
    Ok(Exported {
        export_id: id.to_string(),
        items: manifests.item_count.unwrap_or(0),
        bytes: manifests.files.iter().filter_map(|f| f.byte_count).sum(),
        files: manifests.files.len() as u64,
        manifest: manifests.summary_path,
    })
}

/// Writes the manifests (files, then the summary: its presence means complete) with their
/// checksum files, then removes the resume state.
async fn finish(
    store: &Store,
    plan: &ExportPlan,
    dir: &str,
    export_id: &str,
    records: &BTreeMap<i32, SegmentRecord>,
) -> Result<Exported, Error> {
    let records: Vec<SegmentRecord> = records.values().cloned().collect();
    let files = records::manifest_files(&records);
    let items: u64 = records
        .iter()
        .flat_map(|r| &r.files)
        .map(|f| f.item_count)
        .sum();
    let bytes: u64 = records
        .iter()
        .flat_map(|r| &r.files)
        .map(|f| f.byte_count)
        .sum();
    let count = records.iter().map(|r| r.files.len() as u64).sum();
    let files_path = layout::files_manifest_path(dir);
    put_with_checksum(store, &files_path, files).await?;
    let start_ms = export_id[..13].parse::<i64>().unwrap_or(0);
    let table_arn = format!(
        "arn:aws:dynamodb:{}::table/{}",
        plan.region.as_deref().unwrap_or(""),
        plan.read.table
    );
    let prefix = plan.prefix.trim_matches('/');
    let summary = json!({
        "version": "2020-06-30",
        "exportArn": format!("{table_arn}/export/{export_id}"),
        "startTime": iso_time(start_ms),
        "endTime": iso_time(chrono::Utc::now().timestamp_millis()),
        "exportTime": iso_time(start_ms),
        "tableArn": table_arn,
        "tableId": Value::Null,
        "s3Bucket": Value::Null,
        "s3Prefix": if prefix.is_empty() { Value::Null } else { json!(prefix) },
        "s3SseAlgorithm": Value::Null,
        "s3SseKmsKeyId": Value::Null,
        "manifestFilesS3Key": files_path,
        "billedSizeBytes": 0,
        "itemCount": items,
        "outputFormat": plan.format.name(),
        "exportType": "FULL_EXPORT",
    });
    let summary_path = layout::summary_path(dir);
    put_with_checksum(
        store,
        &summary_path,
        serde_json::to_vec(&summary).unwrap_or_default(),
    )
    .await?;
    let progress = join(dir, "_progress");
    if let Ok(listed) = ops::list(store, Some(&progress), None).await {
        let paths = listed.into_iter().map(|m| m.location.to_string()).collect();
        // The export is complete either way: a record left behind is harmless.
        let _ = ops::delete_many(store, paths).await;
    }
    Ok(Exported {
        export_id: export_id.to_string(),
        items,
        bytes,
        files: count,
        manifest: summary_path,
    })
}

/// `path`, then `<name>.checksum` next to it holding the base64 MD5 of its bytes.
async fn put_with_checksum(store: &Store, path: &str, data: Vec<u8>) -> Result<(), Error> {
    let md5 = base64::engine::general_purpose::STANDARD.encode(Md5::digest(&data));
    ops::put(store, path, Bytes::from(data), Default::default())
        .await
        .map_err(|e| on_store(e, path))?;
    let checksum = format!("{}.checksum", path.trim_end_matches(".json"));
    ops::put(store, &checksum, Bytes::from(md5), Default::default())
        .await
        .map_err(|e| on_store(e, &checksum))?;
    Ok(())
}

/// A page of one segment, already encoded (on the segment's own task).
struct EncodedPage {
    segment: i32,
    lines: Vec<u8>,
    items: u64,
    last_key: Option<Item>,
}

impl Weighed for EncodedPage {
    fn weight(&self) -> usize {
        self.lines.len()
    }
}

impl EncodedPage {
    fn encode(page: SegmentPage, format: Format) -> Self {
        let mut lines = Vec::with_capacity(page.weight() + 16 * page.page.items.len());
        for item in &page.page.items {
            format.write_line(&mut lines, item);
        }
        EncodedPage {
            segment: page.segment,
            lines,
            items: page.page.items.len() as u64,
            last_key: page.page.last_evaluated_key,
        }
    }
}

struct ProgressState {
    tally: Mutex<Tally>,
    changed: AtomicBool,
    report: Reporter,
}

#[derive(Default)]
struct Tally {
    /// The totals; its `segments` stay empty (see `all`).
    totals: Progress,
    /// Every segment started, by this run or an earlier one.
    all: BTreeMap<i32, SegmentProgress>,
    /// Started and not done.
    running: BTreeSet<i32>,
    /// Changed since the last report.
    changed: BTreeSet<i32>,
}

impl ProgressState {
    fn new(records: &BTreeMap<i32, SegmentRecord>, report: Reporter) -> Self {
        let mut tally = Tally::default();
        for (segment, record) in records {
            let entry = tally.all.entry(*segment).or_default();
            for file in &record.files {
                entry.items += file.item_count;
                entry.bytes += file.byte_count;
                entry.files += 1;
            }
            entry.done = record.position == Position::Done;
            tally.totals.items += entry.items;
            tally.totals.bytes += entry.bytes;
            tally.totals.files += entry.files;
        }
        ProgressState {
            tally: Mutex::new(tally),
            changed: AtomicBool::new(true),
            report,
        }
    }

    fn add(&self, segment: i32, change: SegmentProgress) {
        let mut tally = self.tally.lock().unwrap_or_else(|e| e.into_inner());
        let Tally {
            totals,
            all,
            running,
            changed,
        } = &mut *tally;
        totals.items += change.items;
        totals.bytes += change.bytes;
        totals.files += change.files;
        totals.pages_scanned += change.pages_scanned;
        let entry = all.entry(segment).or_default();
        entry.items += change.items;
        entry.bytes += change.bytes;
        entry.files += change.files;
        entry.pages_scanned += change.pages_scanned;
        entry.done |= change.done;
        if entry.done {
            running.remove(&segment);
        } else {
            running.insert(segment);
        }
        changed.insert(segment);
        self.changed.store(true, Ordering::Release);
    }

    fn report_if_changed(&self) {
        if self.changed.swap(false, Ordering::AcqRel) {
            let snapshot = {
                let mut tally = self.tally.lock().unwrap_or_else(|e| e.into_inner());
                let changed = std::mem::take(&mut tally.changed);
                let segments = tally
                    .running
                    .iter()
                    .chain(&changed)
                    .filter_map(|s| Some((*s, tally.all.get(s)?.clone())))
                    .collect();
                Progress {
                    segments,
                    ..tally.totals.clone()
                }
            };
            (self.report)(&snapshot);
        }
    }
}

/// Runs the scan and one writer per segment; returns every segment's final record.
async fn export_segments(
    client: Client,
    store: Arc<Store>,
    plan: &ExportPlan,
    dir: &str,
    fixed: Fixed,
    mut records: BTreeMap<i32, SegmentRecord>,
    progress: Arc<ProgressState>,
) -> Result<BTreeMap<i32, SegmentRecord>, Error> {
    let segments = if records.is_empty() {
        Segments::All {
            count: plan.segments,
            first_start: None,
        }
    } else {
        Segments::Listed(
            (0..plan.segments)
                .filter_map(|s| match records.get(&s).map(|r| &r.position) {
                    Some(Position::Done) => None,
                    Some(Position::After(key)) => Some((s, Some(key.clone()))),
                    _ => Some((s, None)),
                })
                .collect(),
        )
    };
    let read_plan = ReadPlan {
        operation: Operation::Scan,
        read: Read {
            report_capacity: plan.max_read_capacity.is_some(),
            ..plan.read.clone()
        },
        // Always sent, even for one segment, so every error names its segment.
        total_segments: Some(plan.segments),
        segments,
        max_concurrency: plan.max_concurrency,
        max_read_capacity: plan.max_read_capacity,
    };
    let format = plan.format;
    let scan = pull::spawn(Bound::Items(PREFETCH_PAGES), move |sink| {
        stream::run(client, read_plan, sink, move |page| {
            EncodedPage::encode(page, format)
        })
    });
    let shared = Arc::new(Writers {
        store,
        dir: dir.to_string(),
        format,
        max_file_bytes: plan.max_file_bytes,
        part_size: plan.part_size,
        progress,
    });
    let (cancel, cancelled) = watch::channel(false);
    let mut writers: JoinSet<Result<SegmentRecord, Error>> = JoinSet::new();
    let mut senders: HashMap<i32, mpsc::Sender<EncodedPage>> = HashMap::new();
    // The pull is kept across iterations: dropping it would close the stream.
    let mut next = Box::pin(scan.next());
    let outcome: Result<(), Error> = loop {
        tokio::select! {
            Some(done) = writers.join_next(), if !writers.is_empty() => {
                match joined(done) {
                    Ok(record) => { records.insert(record.segment, record); }
                    Err(error) => break Err(error),
                }
            }
            event = &mut next => {
                match event {
                    Event::Item(page) => {
                        let segment = page.segment;
                        let last = page.last_key.is_none();
                        let sender = senders.entry(segment).or_insert_with(|| {
                            let (sender, pages) = mpsc::channel(1);
                            let record = records
                                .remove(&segment)
                                .unwrap_or_else(|| SegmentRecord::new(segment, fixed.clone()));
                            let shared = shared.clone();
                            let cancelled = cancelled.clone();
                            let live = crate::stats::Counted::live_task();
                            writers.spawn(async move {
                                let _live = live;
                                write_segment(shared, record, pages, cancelled).await
                            });
                            sender
                        });
                        // A writer that ended early (it failed) drops its end: its error
                        // comes from `join_next`.
                        let _ = sender.send(page).await;
                        if last {
                            senders.remove(&segment);
                        }
                        next.set(scan.next());
                    }
                    Event::Done => break Ok(()),
                    Event::Error(error) => break Err(error),
                }
            }
        }
    };
    drop(next);
    drop(senders);
    if outcome.is_err() {
        scan.close();
        let _ = cancel.send(true);
    }
    let mut outcome = outcome;
    while let Some(done) = writers.join_next().await {
        match joined(done) {
            Ok(record) => {
                records.insert(record.segment, record);
            }
            Err(error) => {
                if outcome.is_ok() {
                    let _ = cancel.send(true);
                    outcome = Err(error);
                }
            }
        }
    }
    outcome.map(|()| records)
}

fn joined<T>(done: Result<Result<T, Error>, tokio::task::JoinError>) -> Result<T, Error> {
    match done {
        Ok(result) => result,
        Err(join) if join.is_panic() => Err(Error::from_panic(&*join.into_panic())),
        Err(_) => Err(Error::cancelled()),
    }
}

/// What every segment writer shares.
struct Writers {
    store: Arc<Store>,
    dir: String,
    format: Format,
    max_file_bytes: u64,
    part_size: usize,
    progress: Arc<ProgressState>,
}

impl Writers {
    fn record_path(&self, segment: i32) -> String {
        join(&self.dir, &format!("_progress/segment-{segment}.json"))
    }

    async fn save(&self, record: &SegmentRecord) -> Result<(), Error> {
        let path = self.record_path(record.segment);
        let bytes = record
            .to_bytes()
            .map_err(|e| in_file(e, record.segment, &path))?;
        ops::put(&self.store, &path, Bytes::from(bytes), Default::default())
            .await
            .map(|_| ())
            .map_err(|e| in_file(on_store(e, &path), record.segment, &path))
    }
}

/// Names the segment and the file in a store error's message.
fn in_file(mut error: Error, segment: i32, path: &str) -> Error {
    error.message = format!("segment {segment}, file {path}: {}", error.message);
    on_store(error, path)
}

/// A data file being written.
struct OpenFile {
    path: String,
    upload: UploadHandle,
    gzip: GzEncoder<Vec<u8>>,
    md5: Md5,
    sent: u64,
    items: u64,
    /// Whether the record names this file's multipart upload.
    recorded: bool,
}

/// Calls an upload command and waits for its answer. A command the actor dropped unanswered
/// (it ended) counts as cancelled.
async fn answer<T: Send + 'static>(command: impl FnOnce(Reply<T>)) -> Result<T, Error> {
    let (tx, rx) = oneshot::channel();
    command(Box::new(move |result| {
        let _ = tx.send(result);
    }));
    rx.await.unwrap_or_else(|_| Err(Error::cancelled()))
}

impl OpenFile {
    fn open(shared: &Writers, segment: i32, index: usize) -> Result<Self, Error> {
        let path = join(
            &shared.dir,
            &format!("data/{segment:06}-{index:06}.{}", shared.format.extension()),
        );
        let upload = upload::start(
            shared.store.clone(),
            &path,
            UploadConfig {
                part_size: shared.part_size,
                // The segments are the parallelism: one part in flight per file keeps memory
                // at about two parts per running segment.
                max_concurrency: 1,
                options: Default::default(),
            },
        )
        .map_err(|e| in_file(e, segment, &path))?;
        Ok(OpenFile {
            path,
            upload,
            gzip: GzEncoder::new(Vec::new(), Compression::new(GZIP_LEVEL)),
            md5: Md5::new(),
            sent: 0,
            items: 0,
            recorded: false,
        })
    }

    /// Compressed bytes so far (sent, and waiting in the encoder's output).
    fn compressed(&self) -> u64 {
        self.sent + self.gzip.get_ref().len() as u64
    }

    async fn send(
        &mut self,
        data: Vec<u8>,
        shared: &Writers,
        record: &mut SegmentRecord,
    ) -> Result<(), Error> {
        if data.is_empty() {
            return Ok(());
        }
        let len = data.len() as u64;
        if !self.recorded && self.sent + len >= shared.part_size as u64 {
            // This write sends the first part, which would start the multipart upload: start
            // it empty and record its id first, so that a run stopped from here on leaves no
            // upload a resume does not know of (the local store's staging file, which has no
            // id, is found by its name).
            self.recorded = true;
            let upload = &self.upload;
            let upload_id = answer(|reply| upload.begin(reply))
                .await
                .map_err(|e| in_file(e, record.segment, &self.path))?;
            record.in_progress = Some(InProgress {
                path: self.path.clone(),
                upload_id,
            });
            shared.save(record).await?;
        }
        self.md5.update(&data);
        self.sent += len;
        let bytes = Bytes::from(data);
        let upload = &self.upload;
        answer(|reply| upload.write(bytes, reply))
            .await
            .map_err(|e| in_file(e, record.segment, &self.path))?;
        let sent = SegmentProgress {
            bytes: len,
            ..Default::default()
        };
        shared.progress.add(record.segment, sent);
        Ok(())
    }

    async fn add(
        &mut self,
        page: &EncodedPage,
        shared: &Writers,
        record: &mut SegmentRecord,
    ) -> Result<(), Error> {
        let io = |e: std::io::Error| {
            in_file(
                Error::new(ErrorKind::Internal, e.to_string()),
                record.segment,
                &self.path,
            )
        };
        self.gzip.write_all(&page.lines).map_err(io)?;
        // A sync flush per page makes the compressed size exact at page boundaries, where
        // files end (it costs a few bytes per page).
        self.gzip.flush().map_err(io)?;
        self.items += page.items;
        if self.gzip.get_ref().len() >= FLUSH_BYTES {
            let data = std::mem::take(self.gzip.get_mut());
            self.send(data, shared, record).await?;
        }
        Ok(())
    }

    async fn finish(
        mut self,
        shared: &Writers,
        record: &mut SegmentRecord,
    ) -> Result<FileEntry, Error> {
        let segment = record.segment;
        let rest = std::mem::replace(
            &mut self.gzip,
            GzEncoder::new(Vec::new(), Compression::none()),
        )
        .finish()
        .map_err(|e| {
            in_file(
                Error::new(ErrorKind::Internal, e.to_string()),
                segment,
                &self.path,
            )
        })?;
        self.send(rest, shared, record).await?;
        let upload = &self.upload;
        let uploaded = answer(|reply| upload.finish(reply))
            .await
            .map_err(|e| in_file(e, segment, &self.path))?;
        Ok(FileEntry {
            item_count: self.items,
            md5: base64::engine::general_purpose::STANDARD
                .encode(std::mem::replace(&mut self.md5, Md5::new()).finalize()),
            etag: uploaded.e_tag,
            key: std::mem::take(&mut self.path),
            byte_count: self.sent,
        })
    }

    /// Aborts the multipart upload and waits until it is gone (or the abort gave up).
    async fn abort(self) {
        self.upload.cancel();
        let upload = &self.upload;
        let _ = answer(|reply| upload.abort(reply)).await;
    }
}

/// A file dropped unfinished (its job was aborted: the caller died or stopped waiting) stops
/// its upload at once, whatever the actor is doing (a put stalled on the store included),
/// and the actor aborts the multipart upload. After `finish` the actor has ended: a no-op.
impl Drop for OpenFile {
    fn drop(&mut self) {
        self.upload.cancel();
    }
}

async fn write_segment(
    shared: Arc<Writers>,
    mut record: SegmentRecord,
    mut pages: mpsc::Receiver<EncodedPage>,
    mut cancelled: watch::Receiver<bool>,
) -> Result<SegmentRecord, Error> {
    let mut file: Option<OpenFile> = None;
    let outcome = tokio::select! {
        outcome = write_pages(&shared, &mut record, &mut pages, &mut file) => outcome,
        _ = cancelled.wait_for(|cancel| *cancel) => Err(Error::cancelled()),
    };
    if outcome.is_err() {
        if let Some(file) = file.take() {
            file.abort().await;
        }
    }
    outcome.map(|()| record)
}

async fn write_pages(
    shared: &Writers,
    record: &mut SegmentRecord,
    pages: &mut mpsc::Receiver<EncodedPage>,
    file: &mut Option<OpenFile>,
) -> Result<(), Error> {
    let segment = record.segment;
    while let Some(page) = pages.recv().await {
        if page.items > 0 {
            if file.is_none() {
                *file = Some(OpenFile::open(shared, segment, record.files.len())?);
            }
            let open = file.as_mut().expect("opened above");
            open.add(&page, shared, record).await?;
        }
        let scanned = SegmentProgress {
            items: page.items,
            pages_scanned: 1,
            ..Default::default()
        };
        shared.progress.add(segment, scanned);
        let full = file
            .as_ref()
            .is_some_and(|f| f.compressed() >= shared.max_file_bytes);
        if page.last_key.is_none() || full {
            let mut files = 0;
            if let Some(open) = file.take() {
                let entry = open.finish(shared, record).await?;
                record.files.push(entry);
                files = 1;
            }
            record.position = match page.last_key {
                Some(key) => Position::After(key),
                None => Position::Done,
            };
            record.in_progress = None;
            shared.save(record).await?;
            let done = record.position == Position::Done;
            let ended = SegmentProgress {
                files,
                done,
                ..Default::default()
            };
            shared.progress.add(segment, ended);
            shared.progress.report_if_changed();
            if done {
                return Ok(());
            }
        }
    }
    // The scan stopped before this segment's last page: the export is failing elsewhere.
    Err(Error::cancelled())
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::dynamo::AttributeValue;
    use crate::store::config::{self, Backend, StoreConfig};
    use std::io::Read as _;

    fn memory_store() -> Arc<Store> {
        Arc::new(
            config::build(&StoreConfig {
                backend: Backend::Memory,
                options: vec![],
                client: vec![],
                retry: None,
                from_env: false,
                url: None,
                root: None,
                confine_to_root: false,
                prefix: None,
            })
            .unwrap(),
        )
    }

    fn page(segment: i32, from: u64, count: u64, last: bool) -> EncodedPage {
        let mut lines = Vec::new();
        for i in from..from + count {
            let item: Item = [("id".to_string(), AttributeValue::N(i.to_string()))]
                .into_iter()
                .collect();
            Format::DynamoDbJson.write_line(&mut lines, &item);
        }
        let key: Item = [(
            "id".to_string(),
            AttributeValue::N((from + count).to_string()),
        )]
        .into_iter()
        .collect();
        EncodedPage {
            segment,
            lines,
            items: count,
            last_key: (!last).then_some(key),
        }
    }

    /// A segment writer fed pages by hand: files end at page boundaries past
    /// `max_file_bytes`, each recorded with its item count, size and MD5, the record after
    /// each file holds the position after it, and the last page marks the segment done.
    #[test]
    fn a_segment_writer_cuts_files_on_page_boundaries() {
        let store = memory_store();
        let fixed = Fixed {
            table: "T".into(),
            total_segments: 2,
            format: Format::DynamoDbJson,
            filter_expression: None,
            projection_expression: None,
            names: json!({}),
            values: json!({}),
        };
        let shared = Arc::new(Writers {
            store: store.clone(),
            dir: "p/AWSDynamoDB/1700000000000-0000abcd".into(),
            format: Format::DynamoDbJson,
            max_file_bytes: 100,
            part_size: 5 << 20,
            progress: Arc::new(ProgressState::new(
                &BTreeMap::new(),
                Arc::new(|_: &Progress| {}),
            )),
        });
        let record = crate::runtime::get().block_on(async {
            let (sender, pages) = mpsc::channel(1);
            let (_cancel, cancelled) = watch::channel(false);
            let writer = tokio::spawn(write_segment(
                shared.clone(),
                SegmentRecord::new(1, fixed),
                pages,
                cancelled,
            ));
            // Small pages share a file until it passes 100 bytes; empty pages write nothing.
            for (from, count, last) in [
                (0, 1, false),
                (1, 0, false),
                (1, 40, false),
                (41, 2, false),
                (43, 0, true),
            ] {
                sender.send(page(1, from, count, last)).await.unwrap();
            }
            writer.await.unwrap().unwrap()
        });
        assert_eq!(record.position, Position::Done);
        assert_eq!(record.in_progress, None);
        let counts: Vec<u64> = record.files.iter().map(|f| f.item_count).collect();
        assert_eq!(counts, vec![41, 2]);
        assert_eq!(
            record.files[0].key,
            "p/AWSDynamoDB/1700000000000-0000abcd/data/000001-000000.json.gz"
        );
        let mut seen = Vec::new();
        for file in &record.files {
            let (bytes, _) = crate::runtime::get()
                .block_on(ops::get(&store, &file.key, Default::default()))
                .unwrap();
            assert_eq!(bytes.len() as u64, file.byte_count);
            assert_eq!(
                file.md5,
                base64::engine::general_purpose::STANDARD.encode(Md5::digest(&bytes))
            );
            let mut text = String::new();
            flate2::read::GzDecoder::new(&bytes[..])
                .read_to_string(&mut text)
                .unwrap();
            seen.extend(text.lines().map(str::to_string));
        }
        let expected: Vec<String> = (0..43)
            .map(|i| format!("{{\"Item\":{{\"id\":{{\"N\":\"{i}\"}}}}}}"))
            .collect();
        assert_eq!(seen, expected);
        // The record on the store is the final one.
        let (saved, _) = crate::runtime::get()
            .block_on(ops::get(
                &store,
                "p/AWSDynamoDB/1700000000000-0000abcd/_progress/segment-1.json",
                Default::default(),
            ))
            .unwrap();
        assert_eq!(SegmentRecord::from_bytes(&saved, "r").unwrap(), record);
    }
}
