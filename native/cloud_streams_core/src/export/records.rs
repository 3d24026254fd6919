//! The small JSON files of an export: manifest lines, the per-segment progress records that
//! make an export resumable, and the summary. Built as `serde_json::Value`s: these are a few
//! per data file, not per item.

use super::format::{self, Format};
use crate::dynamo::{AttributeValue, Item};
use crate::error::Error;
use aws_sdk_dynamodb::primitives::Blob;
use base64::Engine;
use serde_json::{json, Map, Value};

/// One finished data file: its `manifest-files.json` line.
#[derive(Debug, Clone, PartialEq)]
pub struct FileEntry {
    pub item_count: u64,
    /// Base64 MD5 of the file's bytes (DynamoDB's `md5Checksum`).
    pub md5: String,
    pub etag: Option<String>,
    /// The file's path from the store's root, `<prefix>/AWSDynamoDB/<id>/data/<name>`.
    pub key: String,
    /// Compressed bytes (ours; importers ignore unknown fields).
    pub byte_count: u64,
}

impl FileEntry {
    pub fn to_json(&self) -> Value {
        json!({
            "itemCount": self.item_count,
            "md5Checksum": self.md5,
            "etag": self.etag,
            "dataFileS3Key": self.key,
            "byteCount": self.byte_count,
        })
    }

    fn from_json(value: &Value) -> Option<Self> {
        Some(FileEntry {
            item_count: value.get("itemCount")?.as_u64()?,
            md5: value.get("md5Checksum")?.as_str()?.to_string(),
            etag: value.get("etag")?.as_str().map(str::to_string),
            key: value.get("dataFileS3Key")?.as_str()?.to_string(),
            byte_count: value.get("byteCount")?.as_u64()?,
        })
    }
}

/// Where a segment stands after its last finished file.
#[derive(Debug, Clone, PartialEq)]
pub enum Position {
    /// Nothing finished yet: from the beginning.
    Start,
    /// After this `last_evaluated_key`.
    After(Item),
    Done,
}

/// A multipart upload that was in progress when the record was written.
#[derive(Debug, Clone, PartialEq)]
pub struct InProgress {
    pub path: String,
    pub upload_id: Option<String>,
}

/// What must not change between an export and its resumption.
#[derive(Debug, Clone, PartialEq)]
pub struct Fixed {
    /// The table scanned: resuming another table's export would mix two tables' items.
    pub table: String,
    pub total_segments: i32,
    pub format: Format,
    pub filter_expression: Option<String>,
    pub projection_expression: Option<String>,
    /// `expression_attribute_names` and `expression_attribute_values` (DynamoDB JSON), as
    /// canonical JSON objects (keys sorted): they give the filter and projection their
    /// meaning.
    pub names: Value,
    pub values: Value,
}

impl Fixed {
    pub fn new(
        read: &crate::dynamo::ops::Read,
        total_segments: i32,
        format: Format,
    ) -> Result<Self, Error> {
        let names: Map<String, Value> = read
            .names
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        Ok(Fixed {
            table: read.table.clone(),
            total_segments,
            format,
            filter_expression: read.filter_expression.clone(),
            projection_expression: read.projection_expression.clone(),
            names: Value::Object(names),
            values: item_to_json(&read.values)?,
        })
    }
}

/// `_progress/segment-<n>.json`: rewritten (one plain put) after each finished data file,
/// and when a multipart upload starts.
#[derive(Debug, Clone, PartialEq)]
pub struct SegmentRecord {
    pub segment: i32,
    pub fixed: Fixed,
    pub files: Vec<FileEntry>,
    pub position: Position,
    pub in_progress: Option<InProgress>,
}

impl SegmentRecord {
    pub fn new(segment: i32, fixed: Fixed) -> Self {
        SegmentRecord {
            segment,
            fixed,
            files: Vec::new(),
            position: Position::Start,
            in_progress: None,
        }
    }

    pub fn to_bytes(&self) -> Result<Vec<u8>, Error> {
        let position = match &self.position {
            Position::Start => Value::Null,
            Position::Done => json!("done"),
            Position::After(key) => item_to_json(key)?,
        };
        let in_progress = self
            .in_progress
            .as_ref()
            .map(|p| json!({"path": p.path, "uploadId": p.upload_id}));
        let value = json!({
            "segment": self.segment,
            "table": self.fixed.table,
            "totalSegments": self.fixed.total_segments,
            "outputFormat": self.fixed.format.name(),
            "filterExpression": self.fixed.filter_expression,
            "projectionExpression": self.fixed.projection_expression,
            "expressionAttributeNames": self.fixed.names,
            "expressionAttributeValues": self.fixed.values,
            "files": self.files.iter().map(FileEntry::to_json).collect::<Vec<_>>(),
            "lastEvaluatedKey": position,
            "inProgress": in_progress,
        });
        serde_json::to_vec(&value).map_err(|e| {
            Error::new(
                crate::ErrorKind::Internal,
                format!("segment {}: its progress record: {e}", self.segment),
            )
        })
    }

    pub fn from_bytes(bytes: &[u8], path: &str) -> Result<Self, Error> {
        let bad = || {
            Error::new(
                crate::ErrorKind::Internal,
                format!("{path}: not a progress record of an export"),
            )
            .with_path(path)
        };
        let value: Value = serde_json::from_slice(bytes).map_err(|_| bad())?;
        let text = |name: &str| value.get(name).and_then(Value::as_str).map(str::to_string);
        // A record of an earlier version lacks the newer fields: it then differs from every
        // plan, and the resume is refused as "started with other options".
        let fixed = Fixed {
            table: text("table").unwrap_or_default(),
            total_segments: value
                .get("totalSegments")
                .and_then(Value::as_i64)
                .ok_or_else(bad)? as i32,
            format: text("outputFormat")
                .as_deref()
                .and_then(Format::from_name)
                .ok_or_else(bad)?,
            filter_expression: text("filterExpression"),
            projection_expression: text("projectionExpression"),
            names: value
                .get("expressionAttributeNames")
                .cloned()
                .unwrap_or(Value::Null),
            values: value
                .get("expressionAttributeValues")
                .cloned()
                .unwrap_or(Value::Null),
        };
        let files: Vec<FileEntry> = value
            .get("files")
            .and_then(Value::as_array)
            .ok_or_else(bad)?
            .iter()
            .map(|f| FileEntry::from_json(f).ok_or_else(bad))
            .collect::<Result<_, _>>()?;
        let position = match value.get("lastEvaluatedKey") {
            None | Some(Value::Null) => Position::Start,
            Some(Value::String(s)) if s == "done" => Position::Done,
            Some(key) => Position::After(item_from_json(key).ok_or_else(bad)?),
        };
        let in_progress = match value.get("inProgress") {
            Some(Value::Object(p)) => Some(InProgress {
                path: p
                    .get("path")
                    .and_then(Value::as_str)
                    .ok_or_else(bad)?
                    .to_string(),
                upload_id: p
                    .get("uploadId")
                    .and_then(Value::as_str)
                    .map(str::to_string),
            }),
            _ => None,
        };
        // Files are recorded with the position after them: files at the start position
        // would make the segment restart while keeping them (every item twice).
        if position == Position::Start && !files.is_empty() {
            return Err(bad());
        }
        Ok(SegmentRecord {
            segment: value
                .get("segment")
                .and_then(Value::as_i64)
                .ok_or_else(bad)? as i32,
            fixed,
            files,
            position,
            in_progress,
        })
    }
}

/// An item (a key) as DynamoDB JSON (a `Value`: its maps are sorted by key, so it is also the
/// canonical form the fixed options are compared in).
pub fn item_to_json(item: &Item) -> Result<Value, Error> {
    let mut out = Vec::new();
    out.push(b'{');
    for (i, (name, value)) in item.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        format::write_str(&mut out, name);
        out.push(b':');
        format::write_ddb(&mut out, value);
    }
    out.push(b'}');
    // The writer only writes valid JSON; were it not so, an error here is what keeps a
    // position from being saved as "from the start".
    serde_json::from_slice(&out).map_err(|e| {
        Error::new(
            crate::ErrorKind::Internal,
            format!("a key could not be written as DynamoDB JSON: {e}"),
        )
    })
}

pub fn item_from_json(value: &Value) -> Option<Item> {
    value
        .as_object()?
        .iter()
        .map(|(name, v)| Some((name.clone(), value_from_json(v)?)))
        .collect()
}

fn value_from_json(value: &Value) -> Option<AttributeValue> {
    let object: &Map<String, Value> = value.as_object()?;
    let (tag, inner) = object.iter().next()?;
    let strings = |v: &Value| -> Option<Vec<String>> {
        v.as_array()?
            .iter()
            .map(|s| s.as_str().map(str::to_string))
            .collect()
    };
    let blob = |v: &Value| -> Option<Blob> {
        base64::engine::general_purpose::STANDARD
            .decode(v.as_str()?)
            .ok()
            .map(Blob::new)
    };
    Some(match tag.as_str() {
        "S" => AttributeValue::S(inner.as_str()?.to_string()),
        "N" => AttributeValue::N(inner.as_str()?.to_string()),
        "B" => AttributeValue::B(blob(inner)?),
        "BOOL" => AttributeValue::Bool(inner.as_bool()?),
        "NULL" => AttributeValue::Null(true),
        "L" => AttributeValue::L(
            inner
                .as_array()?
                .iter()
                .map(value_from_json)
                .collect::<Option<_>>()?,
        ),
        "M" => AttributeValue::M(item_from_json(inner)?),
        "SS" => AttributeValue::Ss(strings(inner)?),
        "NS" => AttributeValue::Ns(strings(inner)?),
        "BS" => AttributeValue::Bs(inner.as_array()?.iter().map(blob).collect::<Option<_>>()?),
        _ => return None,
    })
}

/// `manifest-files.json`: one line per data file, segment by segment.
pub fn manifest_files(records: &[SegmentRecord]) -> Vec<u8> {
    let mut out = Vec::new();
    for file in records.iter().flat_map(|r| &r.files) {
        let _ = serde_json::to_writer(&mut out, &file.to_json());
        out.push(b'\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn records_round_trip() {
        let fixed = Fixed {
            table: "users".into(),
            total_segments: 4,
            format: Format::Ndjson,
            filter_expression: Some("#a = :a".into()),
            projection_expression: None,
            names: json!({"#a": "a"}),
            values: json!({":a": {"N": "1"}}),
        };
        let mut record = SegmentRecord::new(2, fixed);
        record.files.push(FileEntry {
            item_count: 3,
            md5: "abc=".into(),
            etag: None,
            key: "p/AWSDynamoDB/1-2/data/x.ndjson.gz".into(),
            byte_count: 99,
        });
        let key: Item = [
            ("id".to_string(), AttributeValue::S("u\"1".into())),
            ("n".to_string(), AttributeValue::N("12".into())),
            ("b".to_string(), AttributeValue::B(Blob::new(vec![0, 1]))),
        ]
        .into_iter()
        .collect();
        record.position = Position::After(key);
        record.in_progress = Some(InProgress {
            path: "p/x".into(),
            upload_id: Some("id-1".into()),
        });
        let bytes = record.to_bytes().unwrap();
        assert_eq!(SegmentRecord::from_bytes(&bytes, "r").unwrap(), record);
        record.position = Position::Done;
        record.in_progress = None;
        let bytes = record.to_bytes().unwrap();
        assert_eq!(SegmentRecord::from_bytes(&bytes, "r").unwrap(), record);
        assert!(SegmentRecord::from_bytes(b"{}", "r").is_err());
        // Files at the start position would restart the segment while keeping them.
        record.position = Position::Start;
        let bytes = record.to_bytes().unwrap();
        assert!(SegmentRecord::from_bytes(&bytes, "r").is_err());
    }
}
