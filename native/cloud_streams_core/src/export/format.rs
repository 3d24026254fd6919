//! Items as export lines, written straight into a byte buffer (no JSON tree per item: this is
//! the hot path of an export).
//!
//! - [`Format::DynamoDbJson`]: DynamoDB's own export line, `{"Item":{"name":{"S":"x"},...}}`,
//!   every value in DynamoDB JSON (`S N B BOOL NULL L M SS NS BS`), binaries in base64.
//! - [`Format::Ndjson`]: one plain JSON object per line, attribute -> plain value, lossless:
//!   numbers are JSON numbers with DynamoDB's exact digits (never through a float), binaries
//!   `{"$b64":"..."}`, sets `{"$ss":[...]}`, `{"$ns":[digits...]}`, `{"$bs":["b64",...]}`,
//!   NULL `null`, BOOL `true`/`false`, L an array, M an object; an M whose only key starts
//!   with `$` is written `{"$m":{...}}` so it is never read back as one of these tags. The
//!   line itself (the item) is never wrapped.

use crate::dynamo::{AttributeValue, Item};
use base64::Engine;

pub use super::layout::Format;

impl Format {
    /// Appends one line (ending in `\n`) for `item`.
    pub fn write_line(self, out: &mut Vec<u8>, item: &Item) {
        match self {
            Format::DynamoDbJson => {
                out.extend_from_slice(b"{\"Item\":");
                write_ddb_map(out, item);
                out.extend_from_slice(b"}\n");
            }
            Format::Ndjson => {
                write_plain_map(out, item);
                out.push(b'\n');
            }
        }
    }
}

/// A JSON string with its quotes; serde_json's escaping writes into the buffer directly.
pub fn write_str(out: &mut Vec<u8>, s: &str) {
    // Writing into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

fn write_b64(out: &mut Vec<u8>, bytes: &[u8]) {
    out.push(b'"');
    // Base64 needs no JSON escaping.
    let start = out.len();
    let encoded_len = base64::encoded_len(bytes.len(), true).unwrap_or(0);
    out.resize(start + encoded_len, 0);
    let written = base64::engine::general_purpose::STANDARD
        .encode_slice(bytes, &mut out[start..])
        .unwrap_or(0);
    out.truncate(start + written);
    out.push(b'"');
}

fn write_list<T>(out: &mut Vec<u8>, list: &[T], mut each: impl FnMut(&mut Vec<u8>, &T)) {
    out.push(b'[');
    for (i, value) in list.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        each(out, value);
    }
    out.push(b']');
}

/// `{"name":<value>,...}`, each value written by `each` (DynamoDB JSON or plain).
fn write_map(out: &mut Vec<u8>, map: &Item, each: fn(&mut Vec<u8>, &AttributeValue)) {
    out.push(b'{');
    for (i, (name, value)) in map.iter().enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_str(out, name);
        out.push(b':');
        each(out, value);
    }
    out.push(b'}');
}

fn write_ddb_map(out: &mut Vec<u8>, map: &Item) {
    write_map(out, map, write_ddb)
}

/// `value` in DynamoDB JSON: `{"S":"x"}`, `{"N":"12.5"}` (digits as a string, as DynamoDB).
pub fn write_ddb(out: &mut Vec<u8>, value: &AttributeValue) {
    let tag = |out: &mut Vec<u8>, tag: &[u8]| {
        out.extend_from_slice(b"{\"");
        out.extend_from_slice(tag);
        out.extend_from_slice(b"\":");
    };
    match value {
        AttributeValue::S(s) => {
            tag(out, b"S");
            write_str(out, s);
        }
        AttributeValue::N(n) => {
            tag(out, b"N");
            write_str(out, n);
        }
        AttributeValue::B(b) => {
            tag(out, b"B");
            write_b64(out, b.as_ref());
        }
        AttributeValue::Bool(b) => {
            tag(out, b"BOOL");
            out.extend_from_slice(if *b { b"true" } else { b"false" });
        }
        AttributeValue::Null(_) => {
            tag(out, b"NULL");
            out.extend_from_slice(b"true");
        }
        AttributeValue::L(l) => {
            tag(out, b"L");
            write_list(out, l, write_ddb);
        }
        AttributeValue::M(m) => {
            tag(out, b"M");
            write_ddb_map(out, m);
        }
        AttributeValue::Ss(l) => {
            tag(out, b"SS");
            write_list(out, l, |out, s| write_str(out, s));
        }
        AttributeValue::Ns(l) => {
            tag(out, b"NS");
            write_list(out, l, |out, s| write_str(out, s));
        }
        AttributeValue::Bs(l) => {
            tag(out, b"BS");
            write_list(out, l, |out, b| write_b64(out, b.as_ref()));
        }
        // A type newer than this SDK: kept visible rather than dropped.
        _ => {
            tag(out, b"NULL");
            out.extend_from_slice(b"true");
        }
    }
    out.push(b'}');
}

fn write_plain_map(out: &mut Vec<u8>, map: &Item) {
    write_map(out, map, write_plain)
}

fn tagged(out: &mut Vec<u8>, tag: &str, value: impl FnOnce(&mut Vec<u8>)) {
    out.extend_from_slice(b"{\"");
    out.extend_from_slice(tag.as_bytes());
    out.extend_from_slice(b"\":");
    value(out);
    out.push(b'}');
}

/// `value` as plain JSON (the NDJSON rules in the module doc).
pub fn write_plain(out: &mut Vec<u8>, value: &AttributeValue) {
    match value {
        AttributeValue::S(s) => write_str(out, s),
        // DynamoDB's digits are valid JSON numbers (it normalises them: no leading `+`,
        // no leading zeros, no bare `.5`), so they are written as they are.
        AttributeValue::N(n) => out.extend_from_slice(n.as_bytes()),
        AttributeValue::B(b) => tagged(out, "$b64", |out| write_b64(out, b.as_ref())),
        AttributeValue::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        AttributeValue::Null(_) => out.extend_from_slice(b"null"),
        AttributeValue::L(l) => write_list(out, l, write_plain),
        AttributeValue::M(m) => {
            if m.len() == 1 && m.keys().all(|k| k.starts_with('$')) {
                tagged(out, "$m", |out| write_plain_map(out, m));
            } else {
                write_plain_map(out, m);
            }
        }
        AttributeValue::Ss(l) => tagged(out, "$ss", |out| {
            write_list(out, l, |out, s| write_str(out, s))
        }),
        AttributeValue::Ns(l) => tagged(out, "$ns", |out| {
            write_list(out, l, |out, n| out.extend_from_slice(n.as_bytes()))
        }),
        AttributeValue::Bs(l) => tagged(out, "$bs", |out| {
            write_list(out, l, |out, b| write_b64(out, b.as_ref()))
        }),
        _ => out.extend_from_slice(b"null"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_sdk_dynamodb::primitives::Blob;

    fn ddb(value: AttributeValue) -> String {
        let mut out = Vec::new();
        write_ddb(&mut out, &value);
        String::from_utf8(out).unwrap()
    }

    fn plain(value: AttributeValue) -> String {
        let mut out = Vec::new();
        write_plain(&mut out, &value);
        String::from_utf8(out).unwrap()
    }

    fn item(pairs: &[(&str, AttributeValue)]) -> Item {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.clone()))
            .collect()
    }

    #[test]
    fn dynamodb_json_scalars() {
        assert_eq!(ddb(AttributeValue::S("x".into())), r#"{"S":"x"}"#);
        assert_eq!(ddb(AttributeValue::S(String::new())), r#"{"S":""}"#);
        assert_eq!(
            ddb(AttributeValue::S("a\"b\\c\nd\u{1}é😀".into())),
            r#"{"S":"a\"b\\c\nd\u0001é😀"}"#
        );
        assert_eq!(ddb(AttributeValue::N("12.5".into())), r#"{"N":"12.5"}"#);
        assert_eq!(
            ddb(AttributeValue::N(
                "123456789012345678901234567890123456789".into()
            )),
            r#"{"N":"123456789012345678901234567890123456789"}"#
        );
        assert_eq!(
            ddb(AttributeValue::B(Blob::new(vec![0, 255, 1]))),
            r#"{"B":"AP8B"}"#
        );
        assert_eq!(ddb(AttributeValue::B(Blob::new(vec![]))), r#"{"B":""}"#);
        assert_eq!(ddb(AttributeValue::Bool(true)), r#"{"BOOL":true}"#);
        assert_eq!(ddb(AttributeValue::Bool(false)), r#"{"BOOL":false}"#);
        assert_eq!(ddb(AttributeValue::Null(true)), r#"{"NULL":true}"#);
    }

    #[test]
    fn dynamodb_json_collections() {
        assert_eq!(
            ddb(AttributeValue::Ss(vec!["a".into(), "".into()])),
            r#"{"SS":["a",""]}"#
        );
        assert_eq!(
            ddb(AttributeValue::Ns(vec!["1".into(), "-2.5".into()])),
            r#"{"NS":["1","-2.5"]}"#
        );
        assert_eq!(
            ddb(AttributeValue::Bs(vec![
                Blob::new(vec![1]),
                Blob::new(vec![2, 3])
            ])),
            r#"{"BS":["AQ==","AgM="]}"#
        );
        assert_eq!(
            ddb(AttributeValue::L(vec![
                AttributeValue::N("1".into()),
                AttributeValue::L(vec![])
            ])),
            r#"{"L":[{"N":"1"},{"L":[]}]}"#
        );
        assert_eq!(
            ddb(AttributeValue::M(item(&[(
                "k\"",
                AttributeValue::M(Default::default())
            )]))),
            r#"{"M":{"k\"":{"M":{}}}}"#
        );
    }

    #[test]
    fn dynamodb_json_line() {
        let mut out = Vec::new();
        Format::DynamoDbJson.write_line(&mut out, &item(&[("id", AttributeValue::S("u1".into()))]));
        assert_eq!(out, b"{\"Item\":{\"id\":{\"S\":\"u1\"}}}\n");
        let mut out = Vec::new();
        Format::Ndjson.write_line(&mut out, &item(&[("$b64", AttributeValue::N("7".into()))]));
        // The item itself is never wrapped, even with one `$` key.
        assert_eq!(out, b"{\"$b64\":7}\n");
    }

    #[test]
    fn ndjson_values() {
        assert_eq!(plain(AttributeValue::S("".into())), r#""""#);
        assert_eq!(plain(AttributeValue::S("ü\t".into())), r#""ü\t""#);
        assert_eq!(
            plain(AttributeValue::N(
                "-123456789012345678901234567890.12345678".into()
            )),
            "-123456789012345678901234567890.12345678"
        );
        assert_eq!(plain(AttributeValue::N("1E-130".into())), "1E-130");
        assert_eq!(
            plain(AttributeValue::B(Blob::new(b"hi".to_vec()))),
            r#"{"$b64":"aGk="}"#
        );
        assert_eq!(plain(AttributeValue::Null(true)), "null");
        assert_eq!(plain(AttributeValue::Bool(false)), "false");
        assert_eq!(
            plain(AttributeValue::Ss(vec!["a".into(), "b".into()])),
            r#"{"$ss":["a","b"]}"#
        );
        assert_eq!(
            plain(AttributeValue::Ns(vec![
                "1".into(),
                "99999999999999999999".into()
            ])),
            r#"{"$ns":[1,99999999999999999999]}"#
        );
        assert_eq!(
            plain(AttributeValue::Bs(vec![Blob::new(vec![255])])),
            r#"{"$bs":["/w=="]}"#
        );
        assert_eq!(
            plain(AttributeValue::L(vec![
                AttributeValue::S("x".into()),
                AttributeValue::Null(true)
            ])),
            r#"["x",null]"#
        );
    }

    #[test]
    fn ndjson_maps_that_look_like_tags_are_wrapped() {
        assert_eq!(
            plain(AttributeValue::M(item(&[(
                "$ss",
                AttributeValue::S("x".into())
            )]))),
            r#"{"$m":{"$ss":"x"}}"#
        );
        assert_eq!(
            plain(AttributeValue::M(item(&[(
                "$m",
                AttributeValue::M(Default::default())
            )]))),
            r#"{"$m":{"$m":{}}}"#
        );
        assert_eq!(
            plain(AttributeValue::M(item(&[(
                "plain",
                AttributeValue::Bool(true)
            )]))),
            r#"{"plain":true}"#
        );
        assert_eq!(plain(AttributeValue::M(Default::default())), "{}");
    }

    #[test]
    fn every_line_parses_as_json() {
        let it = item(&[
            ("s", AttributeValue::S("a\u{0}b".into())),
            ("n", AttributeValue::N("3".into())),
            (
                "l",
                AttributeValue::L(vec![AttributeValue::Bs(vec![Blob::new(vec![9])])]),
            ),
            (
                "m",
                AttributeValue::M(item(&[("$x", AttributeValue::Null(true))])),
            ),
        ]);
        for format in [Format::DynamoDbJson, Format::Ndjson] {
            let mut out = Vec::new();
            format.write_line(&mut out, &it);
            let parsed: serde_json::Value = serde_json::from_slice(&out).unwrap();
            assert!(parsed.is_object(), "{format:?}");
        }
    }
}
