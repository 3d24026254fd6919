//! Items decoded into complete structs of a schema on tokio threads, so a scan's consumer
//! hands them on as they come (`Dynamo.Table.Stream`).
//!
//! An item becomes the struct itself, `__struct__`, `__extra__` and every declared field
//! (its default when the item lacks it), when every value has a fast form here: strings,
//! integers that fit 64 bits, floats, booleans, binaries, `nil`, UTC datetimes as
//! `to_iso8601` writes them, and maps and lists of those (`:map`, `:list`, `:any` fields and
//! undeclared attributes). Otherwise it becomes `{struct, [{field, tagged}], [{name,
//! tagged}]}`: the struct with what has a fast form, then the declared values and the
//! undeclared attributes left to `Dynamo.Schema.finish/2`, in the codec's tagged form. Both
//! paths give the struct `Dynamo.Schema.from_item/2` gives
//! (`test/dynamo/codec_roundtrip_test.exs` compares them on random items).
//!
//! Per stream, the plan holds the struct's keys in the VM's term order, so
//! `enif_make_map_from_arrays` finds them sorted (its insertion sort then makes one
//! comparison per key instead of one per pair), the defaults in that order, kept in an env
//! of their own and copied once per page, and an index from attribute name to key position.

use super::codec;
use cloud_streams_core::dynamo::{AttributeValue, Item};
use rustc_hash::FxHashMap;
use rustler::sys::ErlNifTerm;
use rustler::types::map::MapIterator;
use rustler::types::tuple;
use rustler::{Atom, Decoder, Encoder, Env, Error, NifResult, OwnedEnv, Term};
use std::sync::{Mutex, PoisonError};

mod atoms {
    rustler::atoms! {
        string, integer, float, number, boolean, binary, map, list, datetime, any,
        calendar, day, hour, microsecond, minute, month, second, std_offset, time_zone,
        utc_offset, year, zone_abbr,
        __struct__, __extra__, unfinished,
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
    Any,
    /// Sets: left to `Dynamo.Schema`, except `nil`.
    Other,
}

/// How the items of one stream become structs of its schema (`Dynamo.Schema.native_plan/1`
/// makes the term it is decoded from: `{[{attribute_name, field, type}], default_struct}`).
pub struct StructPlan {
    /// The struct's keys (`__struct__`, `__extra__` and every field) in the VM's order.
    keys: Vec<Atom>,
    /// Declared attribute name -> (position in `keys`, type).
    index: FxHashMap<String, (usize, FieldType)>,
    extra_at: usize,
    /// The default struct's values in `keys` order, as one tuple. An env is not `Sync`: the
    /// lock is taken once per page, to copy the tuple into the page's env.
    defaults: Mutex<(OwnedEnv, rustler::env::SavedTerm)>,
}

impl<'a> Decoder<'a> for StructPlan {
    fn decode(term: Term<'a>) -> NifResult<Self> {
        let (fields, default): (Vec<(String, Atom, Atom)>, Term<'a>) = term.decode()?;
        let mut pairs: Vec<(Term<'a>, Term<'a>)> =
            MapIterator::new(default).ok_or(Error::BadArg)?.collect();
        // Term order (a small map iterates in it already; a large one does not).
        pairs.sort_by(|a, b| a.0.cmp(&b.0));
        let keys = pairs
            .iter()
            .map(|(key, _)| key.decode::<Atom>())
            .collect::<NifResult<Vec<_>>>()?;
        let position = |atom: Atom| keys.iter().position(|k| *k == atom).ok_or(Error::BadArg);
        if !keys.contains(&atoms::__struct__()) {
            return Err(Error::BadArg);
        }
        let extra_at = position(atoms::__extra__())?;
        let index = fields
            .into_iter()
            .map(|(name, field, ty)| Ok((name, (position(field)?, type_of(ty)))))
            .collect::<NifResult<_>>()?;
        let values: Vec<Term<'a>> = pairs.iter().map(|(_, value)| *value).collect();
        let owned = OwnedEnv::new();
        let saved = owned.save(tuple::make_tuple(term.get_env(), &values));
        Ok(StructPlan {
            keys,
            index,
            extra_at,
            defaults: Mutex::new((owned, saved)),
        })
    }
}

fn type_of(atom: Atom) -> FieldType {
    [
        (atoms::string(), FieldType::String),
        (atoms::integer(), FieldType::Integer),
        (atoms::float(), FieldType::Float),
        (atoms::number(), FieldType::Number),
        (atoms::boolean(), FieldType::Boolean),
        (atoms::binary(), FieldType::Binary),
        (atoms::map(), FieldType::Map),
        (atoms::list(), FieldType::List),
        (atoms::datetime(), FieldType::Datetime),
        (atoms::any(), FieldType::Any),
    ]
    .iter()
    .find(|(a, _)| *a == atom)
    .map_or(FieldType::Other, |(_, t)| *t)
}

impl StructPlan {
    /// The items of a page (or of any batch of items): the list of their structs, or
    /// `{:unfinished, list}` when some of them are tuples `Dynamo.Schema.finish/2` completes,
    /// so that a page of complete structs is handed on without a pass over it.
    pub fn encode_items<'a>(&self, env: Env<'a>, items: &[Item]) -> Term<'a> {
        let keys: Vec<ErlNifTerm> = self.keys.iter().map(|k| k.as_c_arg()).collect();
        let defaults = self.defaults_in(env);
        // One buffer for every item's values: the map copies them.
        let mut values = defaults.clone();
        let mut complete = true;
        let structs: Vec<Term<'a>> = items
            .iter()
            .map(|item| {
                values.copy_from_slice(&defaults);
                let (term, finished) = self.encode(env, item, &keys, &mut values);
                complete &= finished;
                term
            })
            .collect();
        if complete {
            structs.encode(env)
        } else {
            (atoms::unfinished(), structs).encode(env)
        }
    }

    /// The defaults in `env`: one copy per page, whose items then share them.
    fn defaults_in(&self, env: Env<'_>) -> Vec<ErlNifTerm> {
        let defaults = self.defaults.lock().unwrap_or_else(PoisonError::into_inner);
        let (owned, saved) = &*defaults;
        owned.run(|owned_env| {
            let copied = saved.load(owned_env).in_env(env);
            tuple::get_tuple(copied)
                .expect("saved as a tuple")
                .iter()
                .map(Term::as_c_arg)
                .collect()
        })
    }

    fn encode<'a>(
        &self,
        env: Env<'a>,
        item: &Item,
        keys: &[ErlNifTerm],
        values: &mut [ErlNifTerm],
    ) -> (Term<'a>, bool) {
        let mut pending = Vec::new();
        let mut extra_names = Vec::new();
        let mut extra_values = Vec::new();
        let mut extra_pending = Vec::new();
        for (name, value) in item {
            match self.index.get(name.as_str()) {
                Some(&(at, ty)) => match fast(env, ty, value) {
                    Some(term) => values[at] = term.as_c_arg(),
                    None => {
                        pending.push((self.keys[at], codec::encode_value(env, value)).encode(env))
                    }
                },
                None => match natural(env, value) {
                    Some(term) => {
                        extra_names.push(name.encode(env));
                        extra_values.push(term);
                    }
                    None => extra_pending.push((name, codec::encode_value(env, value)).encode(env)),
                },
            }
        }
        if !extra_names.is_empty() {
            values[self.extra_at] = Term::map_from_term_arrays(env, &extra_names, &extra_values)
                .expect("attribute names are unique")
                .as_c_arg();
        }
        let map = sorted_map(env, keys, values);
        if pending.is_empty() && extra_pending.is_empty() {
            (map, true)
        } else {
            ((map, pending, extra_pending).encode(env), false)
        }
    }
}

/// A map from keys in term order and their values, without rustler's copies of both arrays.
fn sorted_map<'a>(env: Env<'a>, keys: &[ErlNifTerm], values: &[ErlNifTerm]) -> Term<'a> {
    debug_assert_eq!(keys.len(), values.len());
    let mut map = std::mem::MaybeUninit::uninit();
    // SAFETY: both arrays hold `keys.len()` terms of `env` (atoms are valid in every env).
    let made = unsafe {
        rustler::sys::enif_make_map_from_arrays(
            env.as_c_arg(),
            keys.as_ptr(),
            values.as_ptr(),
            keys.len(),
            map.as_mut_ptr(),
        )
    };
    assert!(made != 0, "the struct's keys are unique");
    // SAFETY: made above, in `env`.
    unsafe { Term::new(env, map.assume_init()) }
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
        (FieldType::Map, AttributeValue::M(_))
        | (FieldType::List, AttributeValue::L(_))
        | (FieldType::Any, _) => natural(env, value),
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
