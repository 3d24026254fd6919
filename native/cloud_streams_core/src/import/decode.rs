//! One line of an export's data file into an item.
//!
//! - `DYNAMODB_JSON` (DynamoDB's own export): `{"Item":{"name":{"S":"..."},...}}`, values in
//!   DynamoDB JSON (numbers are strings there, so nothing is lost by parsing into
//!   `serde_json::Value`).
//! - `NDJSON` (ours): one plain JSON object per line, under the rules documented in
//!   `Dynamo.Table.Stream.Export`: numbers are JSON numbers kept with their exact digits (read
//!   as raw text, never through f64), `{"$b64":..}` binaries, `{"$ss"|"$ns"|"$bs":[..]}` sets,
//!   `{"$m":{..}}` a map whose only key starts with `$`.

use crate::dynamo::{AttributeValue, Item};
use aws_sdk_dynamodb::primitives::Blob;
use base64::engine::general_purpose::STANDARD as BASE64;
use base64::Engine;
use serde_json::value::RawValue;
use serde_json::{Map, Value};
use std::collections::HashMap;

pub use crate::export::layout::Format;

/// Decodes one line (without its newline). The error says what is wrong, not where: the
/// reader adds the file and the line number.
pub fn decode_line(line: &str, format: Format) -> Result<Item, String> {
    match format {
        Format::DynamoDbJson => dynamodb_json_line(line),
        Format::Ndjson => ndjson_line(line),
    }
}

fn dynamodb_json_line(line: &str) -> Result<Item, String> {
    let value: Value = serde_json::from_str(line).map_err(|e| format!("invalid JSON: {e}"))?;
    let Value::Object(mut line) = value else {
        return Err("expected an object {\"Item\": {...}}".to_string());
    };
    match line.remove("Item") {
        Some(Value::Object(item)) => json_item(item),
        Some(_) => Err("\"Item\" is not an object".to_string()),
        None => Err("no \"Item\" in the line".to_string()),
    }
}

fn json_item(item: Map<String, Value>) -> Result<Item, String> {
    item.into_iter()
        .map(|(name, value)| {
            json_value(value)
                .map(|v| (name.clone(), v))
                .map_err(|e| format!("attribute {name:?}: {e}"))
        })
        .collect()
}

/// One DynamoDB JSON value: an object with exactly one type key.
fn json_value(value: Value) -> Result<AttributeValue, String> {
    let Value::Object(map) = value else {
        return Err("a DynamoDB JSON value is an object with one type key".to_string());
    };
    if map.len() != 1 {
        return Err(format!(
            "a DynamoDB JSON value has exactly one type key, got {}",
            map.len()
        ));
    }
    let (kind, inner) = map.into_iter().next().expect("one entry");
    let strings = |inner: Value| -> Result<Vec<String>, String> {
        match inner {
            Value::Array(list) => list
                .into_iter()
                .map(|v| match v {
                    Value::String(s) => Ok(s),
                    _ => Err(format!("{kind} holds strings only")),
                })
                .collect(),
            _ => Err(format!("{kind} is a list")),
        }
    };
    Ok(match (kind.as_str(), inner) {
        ("S", Value::String(s)) => AttributeValue::S(s),
        ("N", Value::String(n)) => AttributeValue::N(number(n)?),
        ("B", Value::String(b)) => AttributeValue::B(binary(&b)?),
        ("BOOL", Value::Bool(b)) => AttributeValue::Bool(b),
        ("NULL", Value::Bool(true)) => AttributeValue::Null(true),
        ("L", Value::Array(list)) => AttributeValue::L(
            list.into_iter()
                .enumerate()
                .map(|(i, v)| json_value(v).map_err(|e| format!("element {i}: {e}")))
                .collect::<Result<_, _>>()?,
        ),
        ("M", Value::Object(map)) => AttributeValue::M(json_item(map)?),
        ("SS", inner) => AttributeValue::Ss(strings(inner)?),
        ("NS", inner) => AttributeValue::Ns(
            strings(inner)?
                .into_iter()
                .map(number)
                .collect::<Result<_, _>>()?,
        ),
        ("BS", inner) => AttributeValue::Bs(
            strings(inner)?
                .iter()
                .map(|b| binary(b))
                .collect::<Result<_, _>>()?,
        ),
        (kind, inner) => return Err(format!("invalid DynamoDB JSON value {{{kind:?}: {inner}}}")),
    })
}

/// DynamoDB numbers are decimal digits, with an optional sign, point and exponent.
fn number(text: String) -> Result<String, String> {
    let valid = !text.is_empty()
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || matches!(b, b'-' | b'+' | b'.' | b'e' | b'E'))
        && text.bytes().any(|b| b.is_ascii_digit());
    if valid {
        Ok(text)
    } else {
        Err(format!("{text:?} is not a number"))
    }
}

fn binary(b64: &str) -> Result<Blob, String> {
    BASE64
        .decode(b64)
        .map(Blob::new)
        .map_err(|e| format!("invalid base64 {b64:?}: {e}"))
}

fn ndjson_line(line: &str) -> Result<Item, String> {
    let object: HashMap<String, &RawValue> =
        serde_json::from_str(line).map_err(|e| format!("invalid JSON object: {e}"))?;
    raw_object(object)
}

fn raw_object(object: HashMap<String, &RawValue>) -> Result<Item, String> {
    object
        .into_iter()
        .map(|(name, raw)| {
            plain_value(raw)
                .map(|v| (name.clone(), v))
                .map_err(|e| format!("attribute {name:?}: {e}"))
        })
        .collect()
}

/// One plain JSON value, kept as raw text until its kind is known, so numbers keep their
/// exact digits.
fn plain_value(raw: &RawValue) -> Result<AttributeValue, String> {
    let text = raw.get().trim();
    let parse_error = |e: serde_json::Error| format!("invalid JSON: {e}");
    Ok(match text.as_bytes().first() {
        Some(b'"') => AttributeValue::S(serde_json::from_str(text).map_err(parse_error)?),
        Some(b't') => AttributeValue::Bool(true),
        Some(b'f') => AttributeValue::Bool(false),
        Some(b'n') => AttributeValue::Null(true),
        Some(b'[') => {
            let list: Vec<&RawValue> = serde_json::from_str(text).map_err(parse_error)?;
            AttributeValue::L(
                list.into_iter()
                    .enumerate()
                    .map(|(i, v)| plain_value(v).map_err(|e| format!("element {i}: {e}")))
                    .collect::<Result<_, _>>()?,
            )
        }
        Some(b'{') => {
            let object: HashMap<String, &RawValue> =
                serde_json::from_str(text).map_err(parse_error)?;
            tagged_or_map(object)?
        }
        // serde_json has checked the text is a JSON number: its digits are DynamoDB's.
        Some(_) => AttributeValue::N(text.to_string()),
        None => return Err("an empty value".to_string()),
    })
}

/// An object: one of the `$` tags when it is exactly one known tag, a map otherwise.
fn tagged_or_map(mut object: HashMap<String, &RawValue>) -> Result<AttributeValue, String> {
    let tag = match object.keys().next() {
        Some(key) if object.len() == 1 && key.starts_with('$') => key.clone(),
        _ => return raw_object(object).map(AttributeValue::M),
    };
    let inner = object.remove(&tag).expect("the one key");
    let parse_error = |e: serde_json::Error| format!("{tag}: {e}");
    Ok(match tag.as_str() {
        "$b64" => AttributeValue::B(binary(
            &serde_json::from_str::<String>(inner.get()).map_err(parse_error)?,
        )?),
        "$ss" => AttributeValue::Ss(serde_json::from_str(inner.get()).map_err(parse_error)?),
        "$bs" => AttributeValue::Bs(
            serde_json::from_str::<Vec<String>>(inner.get())
                .map_err(parse_error)?
                .iter()
                .map(|b| binary(b))
                .collect::<Result<_, _>>()?,
        ),
        "$ns" => AttributeValue::Ns(
            serde_json::from_str::<Vec<&RawValue>>(inner.get())
                .map_err(parse_error)?
                .into_iter()
                .map(|n| {
                    let digits = n.get().trim();
                    if digits.starts_with(['-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9']) {
                        Ok(digits.to_string())
                    } else {
                        Err(format!("$ns holds numbers only, got {digits}"))
                    }
                })
                .collect::<Result<_, _>>()?,
        ),
        "$m" => AttributeValue::M(raw_object(
            serde_json::from_str(inner.get()).map_err(parse_error)?,
        )?),
        other => {
            return Err(format!(
                "unknown tag {other:?} (a map with a `$` key is written {{\"$m\": {{...}}}})"
            ))
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(v: &str) -> AttributeValue {
        AttributeValue::S(v.to_string())
    }
    fn n(v: &str) -> AttributeValue {
        AttributeValue::N(v.to_string())
    }
    fn b(v: &[u8]) -> AttributeValue {
        AttributeValue::B(Blob::new(v))
    }

    #[test]
    fn dynamodb_json_every_type() {
        let line = r#"{"Item":{"id":{"S":"u1"},"empty":{"S":""},"big":{"N":"123456789012345678901234567890"},"dec":{"N":"-0.12345678901234567890123456789012345678"},"bin":{"B":"AAEC/w=="},"yes":{"BOOL":true},"nothing":{"NULL":true},"tags":{"SS":["a","b"]},"nums":{"NS":["1","2.5"]},"bins":{"BS":["AQ==","Ag=="]},"list":{"L":[{"S":"x"},{"N":"1"},{"L":[]}]},"map":{"M":{"inner":{"M":{"deep":{"BOOL":false}}}}}}}"#;
        let item = decode_line(line, Format::DynamoDbJson).unwrap();
        assert_eq!(item["id"], s("u1"));
        assert_eq!(item["empty"], s(""));
        assert_eq!(item["big"], n("123456789012345678901234567890"));
        assert_eq!(item["dec"], n("-0.12345678901234567890123456789012345678"));
        assert_eq!(item["bin"], b(&[0, 1, 2, 255]));
        assert_eq!(item["yes"], AttributeValue::Bool(true));
        assert_eq!(item["nothing"], AttributeValue::Null(true));
        assert_eq!(
            item["tags"],
            AttributeValue::Ss(vec!["a".into(), "b".into()])
        );
        assert_eq!(
            item["nums"],
            AttributeValue::Ns(vec!["1".into(), "2.5".into()])
        );
        assert_eq!(
            item["bins"],
            AttributeValue::Bs(vec![Blob::new(vec![1]), Blob::new(vec![2])])
        );
        assert_eq!(
            item["list"],
            AttributeValue::L(vec![s("x"), n("1"), AttributeValue::L(vec![])])
        );
        let deep = HashMap::from([("deep".to_string(), AttributeValue::Bool(false))]);
        let inner = HashMap::from([("inner".to_string(), AttributeValue::M(deep))]);
        assert_eq!(item["map"], AttributeValue::M(inner));
        assert_eq!(item.len(), 12);
    }

    #[test]
    fn dynamodb_json_escapes() {
        let line = r#"{"Item":{"q\"uote":{"S":"line\nbreak \u00e9 \ud83d\ude00 tab\t"}}}"#;
        let item = decode_line(line, Format::DynamoDbJson).unwrap();
        assert_eq!(item["q\"uote"], s("line\nbreak é 😀 tab\t"));
    }

    #[test]
    fn dynamodb_json_malformed() {
        for (line, expected) in [
            ("{\"Item\":{\"a\":{\"S\":\"x\"}}", "invalid JSON"),
            ("[1]", "expected an object"),
            ("{\"Other\":{}}", "no \"Item\""),
            ("{\"Item\":{\"a\":{\"S\":1}}}", "attribute \"a\""),
            ("{\"Item\":{\"a\":{\"N\":\"12abc\"}}}", "is not a number"),
            ("{\"Item\":{\"a\":{\"B\":\"***\"}}}", "invalid base64"),
            (
                "{\"Item\":{\"a\":{\"S\":\"x\",\"N\":\"1\"}}}",
                "exactly one type key",
            ),
            (
                "{\"Item\":{\"a\":{\"XX\":\"x\"}}}",
                "invalid DynamoDB JSON value",
            ),
            ("{\"Item\":{\"a\":{\"SS\":[1]}}}", "SS holds strings only"),
        ] {
            let error = decode_line(line, Format::DynamoDbJson).unwrap_err();
            assert!(error.contains(expected), "{line}: {error}");
        }
    }

    #[test]
    fn ndjson_every_type_keeps_digits() {
        let line = r#"{"id":"u1","empty":"","big":123456789012345678901234567890,"dec":-0.12345678901234567890123456789012345678,"exp":1E+3,"bin":{"$b64":"AAEC/w=="},"yes":true,"no":false,"nothing":null,"tags":{"$ss":["a"]},"nums":{"$ns":[1, 2.50]},"bins":{"$bs":["AQ=="]},"list":["x",1,[]],"map":{"a":{"b":1}},"dollar":{"$m":{"$ss":"not a set"}},"two":{"$a":1,"$b":2}}"#;
        let item = decode_line(line, Format::Ndjson).unwrap();
        assert_eq!(item["id"], s("u1"));
        assert_eq!(item["empty"], s(""));
        assert_eq!(item["big"], n("123456789012345678901234567890"));
        assert_eq!(item["dec"], n("-0.12345678901234567890123456789012345678"));
        assert_eq!(item["exp"], n("1E+3"));
        assert_eq!(item["bin"], b(&[0, 1, 2, 255]));
        assert_eq!(item["yes"], AttributeValue::Bool(true));
        assert_eq!(item["no"], AttributeValue::Bool(false));
        assert_eq!(item["nothing"], AttributeValue::Null(true));
        assert_eq!(item["tags"], AttributeValue::Ss(vec!["a".into()]));
        assert_eq!(
            item["nums"],
            AttributeValue::Ns(vec!["1".into(), "2.50".into()])
        );
        assert_eq!(item["bins"], AttributeValue::Bs(vec![Blob::new(vec![1])]));
        assert_eq!(
            item["list"],
            AttributeValue::L(vec![s("x"), n("1"), AttributeValue::L(vec![])])
        );
        let b1 = HashMap::from([("b".to_string(), n("1"))]);
        assert_eq!(
            item["map"],
            AttributeValue::M(HashMap::from([("a".to_string(), AttributeValue::M(b1))]))
        );
        assert_eq!(
            item["dollar"],
            AttributeValue::M(HashMap::from([("$ss".to_string(), s("not a set"))]))
        );
        // Two `$` keys cannot be a tag: a plain map.
        assert_eq!(
            item["two"],
            AttributeValue::M(HashMap::from([
                ("$a".to_string(), n("1")),
                ("$b".to_string(), n("2"))
            ]))
        );
    }

    #[test]
    fn ndjson_escapes_and_malformed() {
        let item = decode_line(r#"{"k\u0041":"a\"b\\c"}"#, Format::Ndjson).unwrap();
        assert_eq!(item["kA"], s("a\"b\\c"));
        for (line, expected) in [
            ("{\"a\":1", "invalid JSON object"),
            ("[1,2]", "invalid JSON object"),
            ("{\"a\":{\"$b64\":\"***\"}}", "invalid base64"),
            ("{\"a\":{\"$ns\":[\"1\"]}}", "$ns holds numbers only"),
            ("{\"a\":{\"$zz\":1}}", "unknown tag"),
            ("{\"a\":01}", "invalid JSON object"),
        ] {
            let error = decode_line(line, Format::Ndjson).unwrap_err();
            assert!(error.contains(expected), "{line}: {error}");
        }
    }
}
