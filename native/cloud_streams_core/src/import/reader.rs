//! Reading an export on a store: finding it under its prefix, its manifests, and each data
//! file as a stream of items, gunzipped and decoded as the bytes arrive.
//!
//! An export lives under `<prefix>/AWSDynamoDB/<export_id>/` (DynamoDB's layout). It is
//! complete once `manifest-summary.json` exists (written last); `manifest-files.json` lists
//! its data files, one JSON object per line. Memory per open file is one network frame, the
//! output of one [`FEED`] slice of it and a partial line, whatever the file's size.

use crate::dynamo::Item;
use crate::error::{Error, ErrorKind};
use crate::export::layout::{self, DataFile, Format};
use crate::import::decode::decode_line;
use crate::store::ops::{self, mapper};
use crate::store::Store;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use bytes::{Buf, Bytes};
use flate2::write::MultiGzDecoder;
use futures_util::stream::BoxStream;
use futures_util::StreamExt;
use md5::{Digest, Md5};
use object_store::GetOptions;
use std::io::Write;

/// Compressed bytes fed to the decoder at a time: bounds its output (a gzip bomb of one
/// frame cannot fill memory) and the work between two checks for a full batch.
const FEED: usize = 16 * 1024;

/// The longest line accepted. DynamoDB items are at most 400 KB; in DynamoDB JSON (base64
/// binaries, type tags, escapes) a line can be a few times that. Without a bound a corrupt
/// file with no newline would be held whole, decompressed, in memory.
pub const MAX_LINE_BYTES: usize = 4 << 20;

/// A complete export (its manifests, read by the one layout module shared with the export).
pub type Export = layout::Manifests;

fn invalid(path: &str, message: String) -> Error {
    Error::invalid_argument(message).with_path(path)
}

/// Finds the export under `prefix`: `export_id`, or the newest complete one, and reads its
/// manifests. An export without its summary is in progress (or was stopped) and is refused.
pub async fn open(store: &Store, prefix: &str, export_id: Option<&str>) -> Result<Export, Error> {
    let root = layout::exports_root(prefix);
    let id = match export_id {
        Some(id) => {
            if !layout::is_complete(store, &layout::join(&root, id)).await? {
                return Err(missing_or_incomplete(store, &root, id).await?);
            }
            id.to_string()
        }
        None => newest_complete(store, &root).await?,
    };
    layout::read_manifests(store, &layout::join(&root, &id), &id).await
}

async fn missing_or_incomplete(store: &Store, root: &str, id: &str) -> Result<Error, Error> {
    let dir = layout::join(root, id);
    let listed = ops::list_with_delimiter(store, Some(&dir)).await?;
    Ok(
        if listed.objects.is_empty() && listed.common_prefixes.is_empty() {
            Error::new(ErrorKind::NotFound, format!("no export {id} under {root}")).with_path(&dir)
        } else {
            incomplete(&dir)
        },
    )
}

fn incomplete(dir: &str) -> Error {
    Error::new(
        ErrorKind::PreconditionFailed,
        format!(
            "the export {dir} is incomplete (no manifest-summary.json): it is in progress or \
             was stopped; finish it (export with resume:) before reading it"
        ),
    )
    .with_path(dir)
}

/// The newest complete export (ids ordered as [`layout::list_exports`] orders them).
async fn newest_complete(store: &Store, root: &str) -> Result<String, Error> {
    let exports = layout::list_exports(store, root).await?;
    if let Some((id, _)) = exports.iter().rfind(|(_, complete)| *complete) {
        return Ok(id.clone());
    }
    Err(match exports.last() {
        Some((id, _)) => incomplete(&layout::join(root, id)),
        None => Error::new(ErrorKind::NotFound, format!("no export under {root}")).with_path(root),
    })
}

/// Items read from a file, each with its line number (from 1), and the size of their lines.
#[derive(Debug, Default)]
pub struct Batch {
    pub items: Vec<(u64, Item)>,
    pub text_bytes: usize,
}

/// One data file read as items, a batch at a time.
pub struct FileReader {
    file: DataFile,
    format: Format,
    body: BoxStream<'static, object_store::Result<Bytes>>,
    /// What is left of the current network frame, not yet fed to the decoder.
    frame: Bytes,
    /// Decompressed bytes accumulate in its inner vector; `start` is where the unread ones
    /// begin.
    gunzip: MultiGzDecoder<Vec<u8>>,
    start: usize,
    md5: Md5,
    /// Lines seen so far, and the item lines among them.
    lines: u64,
    item_lines: u64,
    /// Lines up to this one are counted but not decoded (acknowledged by a previous import).
    skip_through: u64,
    compressed_bytes: u64,
    ended: bool,
}

impl FileReader {
    pub async fn open(store: &Store, file: DataFile, format: Format) -> Result<Self, Error> {
        let location = store.location(&file.path)?;
        let body = store
            .streaming
            .get_opts(&location, GetOptions::default())
            .await
            .map_err(mapper(&file.path))?
            .into_stream();
        Ok(FileReader {
            file,
            format,
            body,
            frame: Bytes::new(),
            gunzip: MultiGzDecoder::new(Vec::new()),
            start: 0,
            md5: Md5::new(),
            lines: 0,
            item_lines: 0,
            skip_through: 0,
            compressed_bytes: 0,
            ended: false,
        })
    }

    pub fn file(&self) -> &DataFile {
        &self.file
    }

    /// Lines up to `line` are skipped: not decoded, nor returned.
    pub fn skip_through(&mut self, line: u64) {
        self.skip_through = line;
    }

    /// Lines read so far (the total once [`FileReader::next_batch`] has returned an empty batch).
    pub fn lines(&self) -> u64 {
        self.lines
    }

    pub fn compressed_bytes(&self) -> u64 {
        self.compressed_bytes
    }

    /// Up to `max` items; an empty batch at the end of the file, once its checksum and item
    /// count have been checked against the manifest.
    pub async fn next_batch(&mut self, max: usize) -> Result<Batch, Error> {
        let mut batch = Batch::default();
        loop {
            while batch.items.len() < max {
                match self.next_line(self.ended)? {
                    Some(Some((line, item, size))) => {
                        batch.items.push((line, item));
                        batch.text_bytes += size;
                    }
                    Some(None) => {}
                    None => break,
                }
            }
            if batch.items.len() == max || self.ended {
                return Ok(batch);
            }
            self.feed().await?;
        }
    }

    /// Feeds the decoder one slice of compressed bytes, fetching a frame when needed; at the
    /// end of the body, finishes the file.
    async fn feed(&mut self) -> Result<(), Error> {
        if self.frame.is_empty() {
            match self.body.next().await {
                Some(frame) => {
                    self.frame = frame.map_err(mapper(&self.file.path))?;
                    self.md5.update(&self.frame);
                    self.compressed_bytes += self.frame.len() as u64;
                    return Ok(());
                }
                None => return self.finish(),
            }
        }
        let n = self.frame.len().min(FEED);
        self.gunzip
            .write_all(&self.frame[..n])
            .map_err(|e| self.corrupt(format!("not valid gzip: {e}")))?;
        self.frame.advance(n);
        Ok(())
    }

    fn finish(&mut self) -> Result<(), Error> {
        // An empty object holds no items: DynamoDB writes one for each empty partition.
        if self.compressed_bytes > 0 {
            self.gunzip
                .try_finish()
                .map_err(|e| self.corrupt(format!("not valid gzip (truncated?): {e}")))?;
        }
        self.ended = true;
        if let Some(expected) = &self.file.md5 {
            let actual = BASE64.encode(std::mem::take(&mut self.md5).finalize());
            if &actual != expected {
                return Err(self.corrupt(format!(
                    "MD5 {actual} differs from the manifest's md5Checksum {expected}"
                )));
            }
        }
        Ok(())
    }

    /// The next line: `None` when no complete line is buffered (at the end of the file, the
    /// rest is the last line); `Some(None)` for a line skipped (empty, or acknowledged).
    #[allow(clippy::type_complexity)]
    fn next_line(&mut self, at_end: bool) -> Result<Option<Option<(u64, Item, usize)>>, Error> {
        let length = self.gunzip.get_ref().len();
        let (text_end, next) = match memchr(&self.gunzip.get_ref()[self.start..]) {
            Some(at) => (self.start + at, self.start + at + 1),
            None if at_end && self.start < length => (length, length),
            None => {
                if at_end {
                    self.check_count()?;
                } else if length - self.start > MAX_LINE_BYTES {
                    // Checked before the line is complete: memory holds at most this much
                    // of it (and one feed's output).
                    self.lines += 1;
                    return Err(self.too_long());
                }
                // Keep only the partial line.
                let start = std::mem::take(&mut self.start);
                self.gunzip.get_mut().drain(..start);
                return Ok(None);
            }
        };
        let text_start = std::mem::replace(&mut self.start, next);
        self.lines += 1;
        if text_end - text_start > MAX_LINE_BYTES {
            return Err(self.too_long());
        }
        let text = &self.gunzip.get_ref()[text_start..text_end];
        let text = std::str::from_utf8(text).map_err(|_| self.corrupt_line("not UTF-8".into()))?;
        let text = text.trim();
        if text.is_empty() {
            return Ok(Some(None));
        }
        self.item_lines += 1;
        if self.lines <= self.skip_through {
            return Ok(Some(None));
        }
        let item = decode_line(text, self.format).map_err(|e| self.corrupt_line(e))?;
        Ok(Some(Some((self.lines, item, text.len()))))
    }

    fn check_count(&self) -> Result<(), Error> {
        match self.file.item_count {
            Some(count) if count != self.item_lines => Err(self.corrupt(format!(
                "{} items, but the manifest's itemCount is {count}",
                self.item_lines
            ))),
            _ => Ok(()),
        }
    }

    fn corrupt(&self, message: String) -> Error {
        invalid(&self.file.path, format!("{}: {message}", self.file.path))
    }

    fn too_long(&self) -> Error {
        self.corrupt_line(format!(
            "longer than {MAX_LINE_BYTES} bytes (DynamoDB items are at most 400 KB): not a \
             line of an export"
        ))
    }

    fn corrupt_line(&self, message: String) -> Error {
        invalid(
            &self.file.path,
            format!("{} line {}: {message}", self.file.path, self.lines),
        )
    }
}

fn memchr(bytes: &[u8]) -> Option<usize> {
    bytes.iter().position(|&b| b == b'\n')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::export::layout::resolve_key;
    use crate::runtime;
    use crate::store::config::{self, Backend, StoreConfig};
    use flate2::write::GzEncoder;
    use flate2::Compression;

    fn gzip(text: &str) -> Vec<u8> {
        let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
        encoder.write_all(text.as_bytes()).unwrap();
        encoder.finish().unwrap()
    }

    fn md5_of(bytes: &[u8]) -> String {
        BASE64.encode(Md5::digest(bytes))
    }

    fn local_store(dir: &std::path::Path) -> Store {
        config::build(&StoreConfig {
            backend: Backend::Local,
            options: vec![],
            client: vec![],
            retry: None,
            from_env: false,
            url: None,
            root: Some(dir.to_string_lossy().into_owned()),
            confine_to_root: false,
            prefix: None,
        })
        .unwrap()
    }

    fn temp_dir(name: &str) -> std::path::PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "cloud_streams_import_{name}_{}",
            std::process::id()
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    /// Writes an export as DynamoDB does: files, then the files manifest, the summary last.
    fn write_export(
        root: &std::path::Path,
        prefix: &str,
        id: &str,
        files: &[(&str, Vec<u8>, u64)],
        complete: bool,
    ) {
        let dir = root.join(prefix).join("AWSDynamoDB").join(id);
        std::fs::create_dir_all(dir.join("data")).unwrap();
        std::fs::write(dir.join("_started"), b"").unwrap();
        let mut manifest = String::new();
        for (name, bytes, count) in files {
            std::fs::write(dir.join("data").join(name), bytes).unwrap();
            manifest.push_str(&format!(
                "{{\"itemCount\":{count},\"md5Checksum\":\"{}\",\"etag\":null,\"dataFileS3Key\":\"{prefix}/AWSDynamoDB/{id}/data/{name}\"}}\n",
                md5_of(bytes)
            ));
        }
        std::fs::write(dir.join("manifest-files.json"), manifest).unwrap();
        if complete {
            std::fs::write(
                dir.join("manifest-summary.json"),
                format!("{{\"version\":\"2020-06-30\",\"manifestFilesS3Key\":\"{prefix}/AWSDynamoDB/{id}/manifest-files.json\",\"itemCount\":3,\"outputFormat\":\"DYNAMODB_JSON\"}}"),
            )
            .unwrap();
        }
    }

    async fn read_all(store: &Store, export: &Export) -> Result<Vec<Item>, Error> {
        let mut items = Vec::new();
        for file in &export.files {
            let mut reader = FileReader::open(store, file.clone(), export.format).await?;
            loop {
                let batch = reader.next_batch(2).await?;
                if batch.items.is_empty() {
                    break;
                }
                items.extend(batch.items.into_iter().map(|(_, item)| item));
            }
        }
        Ok(items)
    }

    fn line(id: u32) -> String {
        format!("{{\"Item\":{{\"id\":{{\"S\":\"u{id}\"}}}}}}\n")
    }

    #[test]
    fn finds_the_newest_complete_export_and_reads_every_file() {
        let root = temp_dir("newest");
        let store = local_store(&root);
        // Two gzip members in one file, as concatenated gzip files are.
        let mut two_members = gzip(&line(1));
        two_members.extend(gzip(&format!("\n{}", line(2))));
        write_export(
            &root,
            "exports",
            "1700000000000-aaaaaaaa",
            &[("a.json.gz", gzip(&line(9)), 1)],
            true,
        );
        write_export(
            &root,
            "exports",
            "1700000000001-bbbbbbbb",
            &[
                ("a.json.gz", two_members, 2),
                ("b.json.gz", gzip(&line(3)), 1),
                ("empty.json.gz", Vec::new(), 0),
            ],
            true,
        );
        // Newer, but still in progress: never chosen.
        write_export(&root, "exports", "1700000000002-cccccccc", &[], false);
        let rt = runtime::get();
        let export = rt.block_on(open(&store, "exports", None)).unwrap();
        assert_eq!(export.id, "1700000000001-bbbbbbbb");
        assert_eq!(export.files.len(), 3);
        assert_eq!(
            export.files[0].path,
            "exports/AWSDynamoDB/1700000000001-bbbbbbbb/data/a.json.gz"
        );
        let items = rt.block_on(read_all(&store, &export)).unwrap();
        let ids: Vec<_> = items
            .iter()
            .map(|i| i["id"].as_s().unwrap().clone())
            .collect();
        assert_eq!(ids, ["u1", "u2", "u3"]);

        let error = rt
            .block_on(open(&store, "exports", Some("1700000000002-cccccccc")))
            .unwrap_err();
        assert_eq!(error.kind, ErrorKind::PreconditionFailed, "{error}");
        let error = rt
            .block_on(open(&store, "exports", Some("1700000000009-dddddddd")))
            .unwrap_err();
        assert_eq!(error.kind, ErrorKind::NotFound, "{error}");
        let error = rt.block_on(open(&store, "nothing", None)).unwrap_err();
        assert_eq!(error.kind, ErrorKind::NotFound, "{error}");
    }

    // A DynamoDB-shaped id (14 digits): found under the prefix like ours.
    #[test]
    fn unknown_formats_and_bad_manifests_are_refused() {
        let root = temp_dir("formats");
        let store = local_store(&root);
        let rt = runtime::get();
        write_export(&root, "p", "01234567890123-a1b2c3d4", &[], true);
        let summary = root.join("p/AWSDynamoDB/01234567890123-a1b2c3d4/manifest-summary.json");
        std::fs::write(&summary, r#"{"outputFormat":"ION"}"#).unwrap();
        let error = rt.block_on(open(&store, "p", None)).unwrap_err();
        assert_eq!(error.kind, ErrorKind::NotSupported, "{error}");
        assert!(error.message.contains("\"ION\""), "{error}");

        std::fs::write(&summary, r#"{"outputFormat":"DYNAMODB_JSON"}"#).unwrap();
        let manifest = root.join("p/AWSDynamoDB/01234567890123-a1b2c3d4/manifest-files.json");
        std::fs::write(
            &manifest,
            "{\"dataFileS3Key\":\"AWSDynamoDB/01234567890123-a1b2c3d4/data/a\"}\n{oops\n",
        )
        .unwrap();
        let error = rt.block_on(open(&store, "p", None)).unwrap_err();
        assert!(
            error
                .message
                .contains("manifest-files.json line 2: invalid JSON"),
            "{error}"
        );
        std::fs::write(&manifest, "{\"itemCount\":1}\n").unwrap();
        let error = rt.block_on(open(&store, "p", None)).unwrap_err();
        assert!(
            error.message.contains("line 1: no dataFileS3Key"),
            "{error}"
        );
        std::fs::write(&summary, "[]").unwrap();
        let error = rt.block_on(open(&store, "p", None)).unwrap_err();
        assert!(error.message.contains("is not a JSON object"), "{error}");
    }

    #[test]
    fn keys_without_the_prefix_resolve_too() {
        assert_eq!(
            resolve_key("p/AWSDynamoDB/1-a", "1-a", "AWSDynamoDB/1-a/data/x.json.gz").unwrap(),
            "p/AWSDynamoDB/1-a/data/x.json.gz"
        );
        assert_eq!(
            resolve_key(
                "AWSDynamoDB/1-a",
                "1-a",
                "bucket/p/AWSDynamoDB/1-a/data/x.json.gz"
            )
            .unwrap(),
            "AWSDynamoDB/1-a/data/x.json.gz"
        );
        assert!(resolve_key("AWSDynamoDB/1-a", "1-a", "XAWSDynamoDB/1-a/data/x").is_err());
        assert!(resolve_key("AWSDynamoDB/1-a", "1-a", "AWSDynamoDB/2-b/data/x").is_err());
    }

    #[test]
    fn corrupt_files_are_errors_naming_the_file_and_line() {
        let rt = runtime::get();
        // Name, bytes, md5Checksum, itemCount, what the error says.
        type Case = (&'static str, Vec<u8>, Option<String>, u64, &'static str);
        let cases: Vec<Case> = vec![
            (
                "md5",
                gzip(&line(1)),
                Some("AAAAAAAAAAAAAAAAAAAAAA==".into()),
                1,
                "differs from the manifest",
            ),
            (
                "gzip",
                b"not gzip at all".to_vec(),
                None,
                1,
                "not valid gzip",
            ),
            (
                "truncated",
                {
                    let g = gzip(&line(1).repeat(50));
                    g[..g.len() - 12].to_vec()
                },
                None,
                50,
                "not valid gzip",
            ),
            (
                "json",
                gzip(&format!("{}{{\"Item\":oops}}\n", line(1))),
                None,
                2,
                "line 2: invalid JSON",
            ),
            ("count", gzip(&line(1)), None, 2, "itemCount is 2"),
            // No newline at all: refused once the partial line passes the bound, not read
            // whole into memory.
            (
                "endless",
                gzip(&"x".repeat(MAX_LINE_BYTES + 1)),
                None,
                1,
                "line 1: longer than 4194304 bytes",
            ),
            (
                "long",
                gzip(&format!("{}{}\n", line(1), "y".repeat(MAX_LINE_BYTES + 1))),
                None,
                2,
                "line 2: longer than 4194304 bytes",
            ),
        ];
        for (name, bytes, md5, count, expected) in cases {
            let root = temp_dir(&format!("corrupt_{name}"));
            let store = local_store(&root);
            std::fs::write(root.join("f.json.gz"), &bytes).unwrap();
            let file = DataFile {
                key: "f.json.gz".into(),
                path: "f.json.gz".into(),
                item_count: Some(count),
                md5,
                byte_count: None,
            };
            let export = Export {
                id: "x".into(),
                dir: String::new(),
                summary_path: String::new(),
                format: Format::DynamoDbJson,
                item_count: None,
                files: vec![file],
            };
            let error = rt.block_on(read_all(&store, &export)).unwrap_err();
            assert!(
                error.message.contains(expected) && error.message.contains("f.json.gz"),
                "{name}: {error}"
            );
            assert_eq!(error.path.as_deref(), Some("f.json.gz"));
        }
    }

    #[test]
    fn skipped_lines_are_counted_but_not_returned() {
        let root = temp_dir("skip");
        let store = local_store(&root);
        let text: String = (1..=5).map(line).collect();
        std::fs::write(root.join("f.json.gz"), gzip(&text)).unwrap();
        let file = DataFile {
            key: "f".into(),
            path: "f.json.gz".into(),
            item_count: Some(5),
            md5: None,
            byte_count: None,
        };
        let rt = runtime::get();
        let lines = rt.block_on(async {
            let mut reader = FileReader::open(&store, file, Format::DynamoDbJson)
                .await
                .unwrap();
            reader.skip_through(3);
            let batch = reader.next_batch(10).await.unwrap();
            assert!(reader.next_batch(10).await.unwrap().items.is_empty());
            batch.items.into_iter().map(|(n, _)| n).collect::<Vec<_>>()
        });
        assert_eq!(lines, [4, 5]);
    }
}
