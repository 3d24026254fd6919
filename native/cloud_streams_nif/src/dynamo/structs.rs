//! Items decoded into a schema's fields on tokio threads, so a scan's consumer only merges
//! each item into the schema's default struct (`Dynamo.Table.Stream`).
//!
//! An item becomes `%{field => value}` holding its declared attributes, already in their
//! Elixir form, when every value has a fast form here: strings, integers that fit 64 bits,
//! floats, booleans, binaries, `nil`, UTC datetimes as `to_iso8601` writes them, and maps and
//! lists of those. Otherwise it becomes `{fields, [{field, tagged}], [{name, tagged}]}`: the
//! declared values left to `Dynamo.Schema`, then the undeclared attributes (for `__extra__`),
//! both in the codec's tagged form. Both paths give the struct `Dynamo.Schema.from_item/2`
//! gives (`test/dynamo/codec_roundtrip_test.exs` compares them on random items).

use super::codec;
use cloud_streams_core::dynamo::{AttributeValue, Item};
use rustler::{Atom, Encoder, Env, Term};

mod atoms {
    rustler::atoms! {
        string, integer, float, number, boolean, binary, map, list, datetime,
        calendar, day, hour, microsecond, minute, month, second, std_offset, time_zone,
        utc_offset, year, zone_abbr,
        __struct__,
        elixir_datetime = "Elixir.DateTime",
        elixir_calendar_iso = "Elixir.Calendar.ISO",
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum FieldType {
    String,
    Integer,
    Float,
    Number,
    Boolean,
    Binary,
    Map,
    List,
    Datetime,
    /// Sets and `:any`: left to `Dynamo.Schema`, except `nil`.
    Other,
}

/// The declared fields of a schema: (attribute name, field atom, type). A schema has a few
/// fields: a scan over them beats hashing every attribute name of every item.
pub struct StructPlan {
    fields: Vec<(String, Atom, FieldType)>,
}

impl StructPlan {
    /// From `[{attribute_name, field, type}]`.
    pub fn new(fields: Vec<(String, Atom, Atom)>) -> Self {
        let types = [
            (atoms::string(), FieldType::String),
            (atoms::integer(), FieldType::Integer),
            (atoms::float(), FieldType::Float),
            (atoms::number(), FieldType::Number),
            (atoms::boolean(), FieldType::Boolean),
            (atoms::binary(), FieldType::Binary),
            (atoms::map(), FieldType::Map),
            (atoms::list(), FieldType::List),
            (atoms::datetime(), FieldType::Datetime),
        ];
        let type_of = |atom: Atom| {
            types
                .iter()
                .find(|(a, _)| *a == atom)
                .map_or(FieldType::Other, |(_, t)| *t)
        };
        StructPlan {
            fields: fields
                .into_iter()
                .map(|(name, field, ty)| (name, field, type_of(ty)))
                .collect(),
        }
    }

    pub fn encode<'a>(&self, env: Env<'a>, item: &Item) -> Term<'a> {
        let mut keys = Vec::with_capacity(item.len());
        let mut values = Vec::with_capacity(item.len());
        let mut pending = Vec::new();
        let mut extra = Vec::new();
        for (name, value) in item {
            match self.fields.iter().find(|(n, _, _)| n == name) {
                Some((_, field, ty)) => match fast(env, *ty, value) {
                    Some(term) => {
                        keys.push(field.encode(env));
                        values.push(term);
                    }
                    None => pending.push((*field, codec::encode_value(env, value)).encode(env)),
                },
                None => extra.push((name, codec::encode_value(env, value)).encode(env)),
            }
        }
        let fields = Term::map_from_term_arrays(env, &keys, &values).expect("unique fields");
        if pending.is_empty() && extra.is_empty() {
            fields
        } else {
            (fields, pending, extra).encode(env)
        }
    }
}

/// The Elixir form of a value of a declared type, when it has a fast form.
fn fast<'a>(env: Env<'a>, ty: FieldType, value: &AttributeValue) -> Option<Term<'a>> {
    match (ty, value) {
        (_, AttributeValue::Null(_)) => Some(rustler::types::atom::nil().encode(env)),
        (FieldType::String, AttributeValue::S(s)) => Some(s.encode(env)),
        (FieldType::Integer | FieldType::Number, AttributeValue::N(n)) => {
            n.parse::<i64>().ok().map(|i| i.encode(env))
        }
        (FieldType::Float, AttributeValue::N(n)) => float(n).map(|f| f.encode(env)),
        (FieldType::Boolean, AttributeValue::Bool(b)) => Some(b.encode(env)),
        (FieldType::Binary, AttributeValue::B(b)) => Some(crate::binary::to_term(env, b.as_ref())),
        (FieldType::Datetime, AttributeValue::S(s)) => datetime(env, s),
        (FieldType::Map, AttributeValue::M(_)) | (FieldType::List, AttributeValue::L(_)) => {
            natural(env, value)
        }
        _ => None,
    }
}

/// `Dynamo.Codec.decode/1`'s form of a value, for those without sets or big integers.
fn natural<'a>(env: Env<'a>, value: &AttributeValue) -> Option<Term<'a>> {
    Some(match value {
        AttributeValue::S(s) => s.encode(env),
        AttributeValue::N(n) => match n.parse::<i64>() {
            Ok(i) => i.encode(env),
            // Codec.number/1: an integer when it has no fraction or exponent.
            Err(_) if n.contains(['.', 'e', 'E']) => float(n)?.encode(env),
            Err(_) => return None,
        },
        AttributeValue::B(b) => crate::binary::to_term(env, b.as_ref()),
        AttributeValue::Bool(b) => b.encode(env),
        AttributeValue::Null(_) => rustler::types::atom::nil().encode(env),
        AttributeValue::L(list) => list
            .iter()
            .map(|v| natural(env, v))
            .collect::<Option<Vec<_>>>()?
            .encode(env),
        AttributeValue::M(map) => {
            let mut keys = Vec::with_capacity(map.len());
            let mut values = Vec::with_capacity(map.len());
            for (k, v) in map {
                keys.push(k.encode(env));
                values.push(natural(env, v)?);
            }
            Term::map_from_term_arrays(env, &keys, &values).ok()?
        }
        _ => return None,
    })
}

/// Both Rust and `Float.parse/1` round correctly; non-finite results are left to Elixir.
fn float(n: &str) -> Option<f64> {
    n.parse::<f64>().ok().filter(|f| f.is_finite())
}

/// `YYYY-MM-DDTHH:MM:SS[.f{1,6}]Z` as `%DateTime{}` in UTC, exactly as
/// `DateTime.from_iso8601/1` gives it; any other shape is left to Elixir.
fn datetime<'a>(env: Env<'a>, s: &str) -> Option<Term<'a>> {
    let b = s.as_bytes();
    if b.len() < 20 || b[b.len() - 1] != b'Z' {
        return None;
    }
    let digits = |range: std::ops::Range<usize>| -> Option<u32> {
        let part = b.get(range)?;
        part.iter().all(u8::is_ascii_digit).then(|| {
            part.iter()
                .fold(0u32, |acc, d| acc * 10 + u32::from(d - b'0'))
        })
    };
    let separators = [(4, b'-'), (7, b'-'), (10, b'T'), (13, b':'), (16, b':')];
    if separators.iter().any(|&(i, c)| b[i] != c) {
        return None;
    }
    let (year, month, day) = (digits(0..4)?, digits(5..7)?, digits(8..10)?);
    let (hour, minute, second) = (digits(11..13)?, digits(14..16)?, digits(17..19)?);
    let (micro, precision) = match &b[19..b.len() - 1] {
        [] => (0, 0),
        [b'.', fraction @ ..] if (1..=6).contains(&fraction.len()) => {
            let value = digits(20..20 + fraction.len())?;
            (value * 10u32.pow(6 - fraction.len() as u32), fraction.len())
        }
        _ => return None,
    };
    chrono::NaiveDate::from_ymd_opt(year as i32, month, day)?;
    if hour > 23 || minute > 59 || second > 59 {
        return None;
    }
    let keys = [
        atoms::__struct__().encode(env),
        atoms::calendar().encode(env),
        atoms::year().encode(env),
        atoms::month().encode(env),
        atoms::day().encode(env),
        atoms::hour().encode(env),
        atoms::minute().encode(env),
        atoms::second().encode(env),
        atoms::microsecond().encode(env),
        atoms::std_offset().encode(env),
        atoms::utc_offset().encode(env),
        atoms::time_zone().encode(env),
        atoms::zone_abbr().encode(env),
    ];
    let values = [
        atoms::elixir_datetime().encode(env),
        atoms::elixir_calendar_iso().encode(env),
        year.encode(env),
        month.encode(env),
        day.encode(env),
        hour.encode(env),
        minute.encode(env),
        second.encode(env),
        (micro, precision).encode(env),
        0.encode(env),
        0.encode(env),
        "Etc/UTC".encode(env),
        "UTC".encode(env),
    ];
    Term::map_from_term_arrays(env, &keys, &values).ok()
}
