//! An export's layout on a store, shared by the export and the import (one rule each for
//! paths, ids, formats, finding the exports under a prefix and reading their manifests):
//!
//! ```text
//! <prefix>/AWSDynamoDB/<export_id>/_started
//! <prefix>/AWSDynamoDB/<export_id>/data/...
//! <prefix>/AWSDynamoDB/<export_id>/manifest-files.json
//! <prefix>/AWSDynamoDB/<export_id>/manifest-summary.json   written last: complete
//! ```

use crate::error::{Error, ErrorKind};
use crate::store::{ops, Store};
use serde_json::Value;

/// The line format of an export's data files.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    DynamoDbJson,
    Ndjson,
}

impl Format {
    /// The summary's `outputFormat`.
    pub fn name(self) -> &'static str {
        match self {
            Format::DynamoDbJson => "DYNAMODB_JSON",
            Format::Ndjson => "NDJSON",
        }
    }

    pub fn from_name(name: &str) -> Option<Self> {
        match name {
            "DYNAMODB_JSON" => Some(Format::DynamoDbJson),
            "NDJSON" => Some(Format::Ndjson),
            _ => None,
        }
    }

    /// The data files' extension.
    pub fn extension(self) -> &'static str {
        match self {
            Format::DynamoDbJson => "json.gz",
            Format::Ndjson => "ndjson.gz",
        }
    }
}

/// `prefix/rest`, or `rest` under the store's root. Store paths have no leading or trailing
/// `/`, so both are trimmed from the prefix.
pub fn join(prefix: &str, rest: &str) -> String {
    match prefix.trim_matches('/') {
        "" => rest.to_string(),
        prefix => format!("{prefix}/{rest}"),
    }
}

/// `<prefix>/AWSDynamoDB`, where the exports of a prefix live.
pub fn exports_root(prefix: &str) -> String {
    join(prefix, "AWSDynamoDB")
}

pub fn summary_path(dir: &str) -> String {
    join(dir, "manifest-summary.json")
}

pub fn files_manifest_path(dir: &str) -> String {
    join(dir, "manifest-files.json")
}

/// A store error always names a path: that is how the caller tells it from a table error.
pub fn on_store(error: Error, path: &str) -> Error {
    if error.path.is_some() {
        error
    } else {
        error.with_path(path)
    }
}

/// Ours, `<13-digit unix ms>-<8 lowercase hex>`.
pub fn new_export_id() -> String {
    use std::hash::{BuildHasher, Hasher};
    let ms = chrono::Utc::now().timestamp_millis();
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_i64(ms);
    format!("{ms:013}-{:08x}", hasher.finish() as u32)
}

/// An export's folder name: ours (13 digits, the creation time in ms) or DynamoDB's (14
/// digits, e.g. `01234567890123-a1b2c3d4`), then `-` and 8 lowercase hex digits.
pub fn is_export_id(id: &str) -> bool {
    let Some((number, hex)) = id.split_once('-') else {
        return false;
    };
    matches!(number.len(), 13 | 14)
        && number.bytes().all(|b| b.is_ascii_digit())
        && hex.len() == 8
        && hex
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Whether the export in `dir` is complete (its summary, written last, exists).
pub async fn is_complete(store: &Store, dir: &str) -> Result<bool, Error> {
    let summary = summary_path(dir);
    match ops::head(store, &summary).await {
        Ok(_) => Ok(true),
        Err(e) if e.kind == ErrorKind::NotFound => Ok(false),
        Err(e) => Err(on_store(e, &summary)),
    }
}

/// The exports under `root` (`<prefix>/AWSDynamoDB`), oldest first (by the number before
/// the `-`, so DynamoDB's 14 digits and our 13 compare as numbers), each with whether it is
/// complete. Folders that are not export ids are not exports.
pub async fn list_exports(store: &Store, root: &str) -> Result<Vec<(String, bool)>, Error> {
    let listed = ops::list_with_delimiter(store, Some(root))
        .await
        .map_err(|e| on_store(e, root))?;
    let mut ids: Vec<String> = listed
        .common_prefixes
        .iter()
        .filter_map(|dir| dir.filename().filter(|id| is_export_id(id)))
        .map(str::to_string)
        .collect();
    ids.sort_by_key(|id| {
        let number = id.split('-').next().and_then(|t| t.parse::<u128>().ok());
        (number, id.clone())
    });
    let mut found = Vec::with_capacity(ids.len());
    for id in ids {
        let complete = is_complete(store, &join(root, &id)).await?;
        found.push((id, complete));
    }
    Ok(found)
}

/// One data file, as `manifest-files.json` lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataFile {
    /// `dataFileS3Key` as written in the manifest: what the import's progress record names.
    pub key: String,
    /// Its path in the store.
    pub path: String,
    pub item_count: Option<u64>,
    /// Base64 MD5 of the file's bytes.
    pub md5: Option<String>,
    /// Compressed bytes (ours; DynamoDB's manifests have no such field).
    pub byte_count: Option<u64>,
}

/// A complete export, from its manifests.
#[derive(Debug, Clone)]
pub struct Manifests {
    pub id: String,
    /// `<prefix>/AWSDynamoDB/<id>`, in the store.
    pub dir: String,
    pub summary_path: String,
    pub format: Format,
    pub item_count: Option<u64>,
    pub files: Vec<DataFile>,
}

fn invalid(path: &str, message: String) -> Error {
    Error::invalid_argument(message).with_path(path)
}

async fn get(store: &Store, path: &str) -> Result<bytes::Bytes, Error> {
    ops::get(store, path, Default::default())
        .await
        .map(|(bytes, _)| bytes)
        .map_err(|e| on_store(e, path))
}

/// Reads the manifests of the complete export `id` in `dir`.
pub async fn read_manifests(store: &Store, dir: &str, id: &str) -> Result<Manifests, Error> {
    let summary_path = summary_path(dir);
    let summary = match serde_json::from_slice(&get(store, &summary_path).await?) {
        Ok(Value::Object(map)) => map,
        Ok(_) => {
            return Err(invalid(
                &summary_path,
                format!("{summary_path} is not a JSON object"),
            ))
        }
        Err(e) => {
            return Err(invalid(
                &summary_path,
                format!("{summary_path} is not valid JSON: {e}"),
            ))
        }
    };
    let format_name = summary
        .get("outputFormat")
        .and_then(Value::as_str)
        .unwrap_or("DYNAMODB_JSON");
    let format = Format::from_name(format_name).ok_or_else(|| {
        Error::new(
            ErrorKind::NotSupported,
            format!(
                "{summary_path}: outputFormat {format_name:?} cannot be imported \
                 (DYNAMODB_JSON or NDJSON)"
            ),
        )
        .with_path(&summary_path)
    })?;
    let manifest_path = match summary.get("manifestFilesS3Key").and_then(Value::as_str) {
        Some(key) => resolve_key(dir, id, key).map_err(|e| invalid(&summary_path, e))?,
        None => files_manifest_path(dir),
    };
    let text = get(store, &manifest_path).await?;
    let text = std::str::from_utf8(&text)
        .map_err(|_| invalid(&manifest_path, format!("{manifest_path} is not UTF-8")))?;
    let files = text
        .lines()
        .enumerate()
        .filter(|(_, line)| !line.trim().is_empty())
        .map(|(n, line)| {
            data_file(dir, id, line).map_err(|e| {
                invalid(
                    &manifest_path,
                    format!("{manifest_path} line {}: {e}", n + 1),
                )
            })
        })
        .collect::<Result<_, _>>()?;
    Ok(Manifests {
        item_count: summary.get("itemCount").and_then(Value::as_u64),
        id: id.to_string(),
        dir: dir.to_string(),
        summary_path,
        format,
        files,
    })
}

/// A key of the manifests, relative to the bucket with the export's prefix (DynamoDB's) or
/// without it, into a path of this store: whatever precedes `AWSDynamoDB/<id>/` is the
/// bucket's layout, not ours, so the store may be rooted anywhere above the export.
pub fn resolve_key(dir: &str, id: &str, key: &str) -> Result<String, String> {
    let marker = format!("AWSDynamoDB/{id}/");
    let at = key
        .match_indices(&marker)
        .map(|(at, _)| at)
        .find(|&at| at == 0 || key.as_bytes()[at - 1] == b'/')
        .ok_or_else(|| format!("the key {key:?} is not inside the export {marker:?}"))?;
    Ok(join(dir, &key[at + marker.len()..]))
}

fn data_file(dir: &str, id: &str, line: &str) -> Result<DataFile, String> {
    let entry: Value = serde_json::from_str(line).map_err(|e| format!("invalid JSON: {e}"))?;
    let key = entry
        .get("dataFileS3Key")
        .and_then(Value::as_str)
        .ok_or("no dataFileS3Key")?;
    Ok(DataFile {
        path: resolve_key(dir, id, key)?,
        key: key.to_string(),
        item_count: entry.get("itemCount").and_then(Value::as_u64),
        md5: entry
            .get("md5Checksum")
            .and_then(Value::as_str)
            .map(str::to_string),
        byte_count: entry.get("byteCount").and_then(Value::as_u64),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn export_ids_are_ours_and_dynamodbs() {
        let id = new_export_id();
        assert!(is_export_id(&id), "{id}");
        assert!(is_export_id("01234567890123-a1b2c3d4"));
        assert!(!is_export_id("1234567890123-ABCDEF12"));
        assert!(!is_export_id("123456789012-abcdef12"));
        assert!(!is_export_id("1234567890123-abcdef1"));
        assert!(!is_export_id("data"));
    }

    #[test]
    fn paths_join_under_the_prefix() {
        assert_eq!(join("", "AWSDynamoDB"), "AWSDynamoDB");
        assert_eq!(join("backups/", "AWSDynamoDB"), "backups/AWSDynamoDB");
        assert_eq!(join("/a/b", "x"), "a/b/x");
    }
}
