//! AttributeValue <-> term, lossless. A value is a tagged term: `{:s, binary}`,
//! `{:n, "digits"}` (numbers stay strings here, exactly as DynamoDB sends them), `{:b, binary}`,
//! `{:bool, boolean}`, `:null`, `{:l, list}`, `{:m, %{name => value}}`, and the sets
//! `{:ss, [binary]}`, `{:ns, ["digits"]}`, `{:bs, [binary]}`. An item is `%{name => value}`.
//! `Dynamo.Codec` turns these into schema types and plain Elixir values.
//!
//! Decoding stops at DynamoDB's nesting limit ([`MAX_DEPTH`] lists or maps inside one
//! another, as in `Dynamo.Codec`): a term nested
//! thousands of levels deep is a `badarg`, never a recursion deep enough to overflow a
//! scheduler's stack.

use aws_sdk_dynamodb::primitives::Blob;
use cloud_streams_core::dynamo::{AttributeValue, Item};
use rustler::types::map::MapIterator;
use rustler::{Atom, Binary, Encoder, Env, Error, NifResult, Term};

mod tags {
    rustler::atoms! { s, n, b, bool, null, l, m, ss, ns, bs }
}

/// DynamoDB allows 32 levels, the attribute itself included: at most 31 lists or maps.
pub const MAX_DEPTH: usize = 31;

pub fn decode_value(term: Term<'_>) -> NifResult<AttributeValue> {
    decode_nested(term, 0)
}

/// `depth` is the number of lists and maps around `term`.
fn decode_nested(term: Term<'_>, depth: usize) -> NifResult<AttributeValue> {
    if term.is_atom() {
        return if term.decode::<Atom>()? == tags::null() {
            Ok(AttributeValue::Null(true))
        } else {
            Err(Error::BadArg)
        };
    }
    let (tag, value): (Atom, Term) = term.decode()?;
    Ok(if tag == tags::s() {
        AttributeValue::S(value.decode()?)
    } else if tag == tags::n() {
        AttributeValue::N(value.decode()?)
    } else if tag == tags::b() {
        AttributeValue::B(Blob::new(value.decode::<Binary>()?.as_slice()))
    } else if tag == tags::bool() {
        AttributeValue::Bool(value.decode()?)
    } else if tag == tags::l() {
        let depth = deeper(depth)?;
        AttributeValue::L(
            value
                .decode::<Vec<Term>>()?
                .into_iter()
                .map(|v| decode_nested(v, depth))
                .collect::<NifResult<_>>()?,
        )
    } else if tag == tags::m() {
        AttributeValue::M(decode_attributes(value, deeper(depth)?)?)
    } else if tag == tags::ss() {
        AttributeValue::Ss(value.decode()?)
    } else if tag == tags::ns() {
        AttributeValue::Ns(value.decode()?)
    } else if tag == tags::bs() {
        AttributeValue::Bs(
            value
                .decode::<Vec<Binary>>()?
                .iter()
                .map(|b| Blob::new(b.as_slice()))
                .collect(),
        )
    } else {
        return Err(Error::BadArg);
    })
}

fn deeper(depth: usize) -> NifResult<usize> {
    if depth < MAX_DEPTH {
        Ok(depth + 1)
    } else {
        Err(Error::BadArg)
    }
}

pub fn decode_item(term: Term<'_>) -> NifResult<Item> {
    decode_attributes(term, 0)
}

fn decode_attributes(term: Term<'_>, depth: usize) -> NifResult<Item> {
    MapIterator::new(term)
        .ok_or(Error::BadArg)?
        .map(|(key, value)| Ok((key.decode::<String>()?, decode_nested(value, depth)?)))
        .collect()
}

/// Items from a list of item terms.
pub fn decode_items(terms: Vec<Term<'_>>) -> NifResult<Vec<Item>> {
    terms.into_iter().map(decode_item).collect()
}

/// An item, or `None` for an atom (`nil`).
pub fn decode_optional_item(term: Term<'_>) -> NifResult<Option<Item>> {
    if term.is_atom() {
        Ok(None)
    } else {
        decode_item(term).map(Some)
    }
}

pub fn encode_value<'a>(env: Env<'a>, value: &AttributeValue) -> Term<'a> {
    let tagged = |tag: Atom, inner: Term<'a>| (tag, inner).encode(env);
    match value {
        AttributeValue::S(s) => tagged(tags::s(), s.encode(env)),
        AttributeValue::N(n) => tagged(tags::n(), n.encode(env)),
        AttributeValue::B(b) => tagged(tags::b(), crate::binary::to_term(env, b.as_ref())),
        AttributeValue::Bool(b) => tagged(tags::bool(), b.encode(env)),
        AttributeValue::Null(_) => tags::null().encode(env),
        AttributeValue::L(list) => {
            let items: Vec<Term> = list.iter().map(|v| encode_value(env, v)).collect();
            tagged(tags::l(), items.encode(env))
        }
        AttributeValue::M(map) => tagged(tags::m(), encode_item(env, map)),
        AttributeValue::Ss(set) => tagged(tags::ss(), set.encode(env)),
        AttributeValue::Ns(set) => tagged(tags::ns(), set.encode(env)),
        AttributeValue::Bs(set) => {
            let items: Vec<Term> = set
                .iter()
                .map(|b| crate::binary::to_term(env, b.as_ref()))
                .collect();
            tagged(tags::bs(), items.encode(env))
        }
        // A type newer than this SDK: say so rather than drop it.
        _ => (
            Atom::from_str(env, "unknown").expect("atom"),
            format!("{value:?}"),
        )
            .encode(env),
    }
}

pub fn encode_item<'a>(env: Env<'a>, item: &Item) -> Term<'a> {
    let (keys, values): (Vec<Term>, Vec<Term>) = item
        .iter()
        .map(|(k, v)| (k.encode(env), encode_value(env, v)))
        .unzip();
    Term::map_from_term_arrays(env, &keys, &values).expect("attribute names are unique")
}

pub fn encode_items<'a>(env: Env<'a>, items: &[Item]) -> Term<'a> {
    items
        .iter()
        .map(|i| encode_item(env, i))
        .collect::<Vec<Term>>()
        .encode(env)
}
