//! Object-store values to and from terms: `%ObjectStoreX.Meta{}` (with a UTC `DateTime`),
//! ranges, get and put options.

use chrono::{DateTime, Datelike, TimeZone, Timelike, Utc};
use cloud_streams_core::store::ops::ByteRange;
use cloud_streams_core::Error;
use object_store::{
    Attribute, AttributeValue, Attributes, GetOptions, ObjectMeta, PutMode, PutOptions, TagSet,
    UpdateVersion,
};
use rustler::{Atom, Encoder, Env, NifMap, Term};

fn atom(env: Env<'_>, name: &str) -> Atom {
    Atom::from_str(env, name).expect("valid atom")
}

fn struct_map<'a>(env: Env<'a>, module: &str, fields: &[(&str, Term<'a>)]) -> Term<'a> {
    let keys: Vec<Term> = std::iter::once(atom(env, "__struct__").encode(env))
        .chain(fields.iter().map(|(k, _)| atom(env, k).encode(env)))
        .collect();
    let values: Vec<Term> = std::iter::once(atom(env, module).encode(env))
        .chain(fields.iter().map(|(_, v)| *v))
        .collect();
    Term::map_from_term_arrays(env, &keys, &values).expect("unique keys")
}

fn optional<'a, T: Encoder>(env: Env<'a>, value: &Option<T>) -> Term<'a> {
    match value {
        Some(v) => v.encode(env),
        None => rustler::types::atom::nil().encode(env),
    }
}

/// An Elixir `DateTime` in UTC with microsecond precision.
pub fn datetime<'a>(env: Env<'a>, at: &DateTime<Utc>) -> Term<'a> {
    struct_map(
        env,
        "Elixir.DateTime",
        &[
            ("calendar", atom(env, "Elixir.Calendar.ISO").encode(env)),
            ("year", at.year().encode(env)),
            ("month", at.month().encode(env)),
            ("day", at.day().encode(env)),
            ("hour", at.hour().encode(env)),
            ("minute", at.minute().encode(env)),
            ("second", at.second().encode(env)),
            ("microsecond", (at.timestamp_subsec_micros(), 6).encode(env)),
            ("time_zone", "Etc/UTC".encode(env)),
            ("zone_abbr", "UTC".encode(env)),
            ("utc_offset", 0.encode(env)),
            ("std_offset", 0.encode(env)),
        ],
    )
}

pub fn meta<'a>(env: Env<'a>, meta: &ObjectMeta) -> Term<'a> {
    struct_map(
        env,
        "Elixir.ObjectStoreX.Meta",
        &[
            ("location", meta.location.as_ref().encode(env)),
            ("size", meta.size.encode(env)),
            ("last_modified", datetime(env, &meta.last_modified)),
            ("etag", optional(env, &meta.e_tag)),
            ("version", optional(env, &meta.version)),
        ],
    )
}

pub fn metas<'a>(env: Env<'a>, metas: &[ObjectMeta]) -> Term<'a> {
    metas
        .iter()
        .map(|m| meta(env, m))
        .collect::<Vec<_>>()
        .encode(env)
}

/// `{:bounded, start, end_exclusive}`, `{:offset, n}` or `{:suffix, n}` (normalised by Elixir).
pub fn decode_range(term: Term<'_>) -> Result<ByteRange, Error> {
    let bad = || Error::invalid_argument(format!("invalid range {term:?}"));
    if let Ok((tag, start, end)) = term.decode::<(Atom, u64, u64)>() {
        if tag == atom(term.get_env(), "bounded") {
            return Ok(ByteRange::Bounded(start, end));
        }
    }
    let (tag, n) = term.decode::<(Atom, u64)>().map_err(|_| bad())?;
    let env = term.get_env();
    if tag == atom(env, "offset") {
        Ok(ByteRange::Offset(n))
    } else if tag == atom(env, "suffix") {
        Ok(ByteRange::Suffix(n))
    } else {
        Err(bad())
    }
}

/// A range that may be `nil`: `Option<Term>` decodes `nil` as `Some(nil)`.
pub fn optional_range(term: Option<Term<'_>>) -> Result<Option<ByteRange>, Error> {
    term.filter(|t| !t.is_atom()).map(decode_range).transpose()
}

#[derive(NifMap)]
pub struct GetOpts<'a> {
    range: Option<Term<'a>>,
    if_match: Option<String>,
    if_none_match: Option<String>,
    /// Unix microseconds.
    if_modified_since: Option<i64>,
    if_unmodified_since: Option<i64>,
    version: Option<String>,
}

fn from_micros(micros: i64) -> Result<DateTime<Utc>, Error> {
    Utc.timestamp_micros(micros)
        .single()
        .ok_or_else(|| Error::invalid_argument(format!("invalid timestamp {micros}")))
}

impl GetOpts<'_> {
    pub fn into_options(self) -> Result<GetOptions, Error> {
        let range = optional_range(self.range)?
            .map(ByteRange::to_get_range)
            .transpose()?;
        Ok(GetOptions::new()
            .with_range(range)
            .with_if_match(self.if_match)
            .with_if_none_match(self.if_none_match)
            .with_if_modified_since(self.if_modified_since.map(from_micros).transpose()?)
            .with_if_unmodified_since(self.if_unmodified_since.map(from_micros).transpose()?)
            .with_version(self.version))
    }
}

#[derive(NifMap)]
pub struct PutOpts<'a> {
    /// `:overwrite`, `:create` or `{:update, etag | nil, version | nil}`.
    mode: Term<'a>,
    /// `[{name, value}]`: content_type, content_disposition, content_encoding,
    /// content_language, cache_control, or `metadata:<key>` for user metadata.
    attributes: Vec<(String, String)>,
    tags: Vec<(String, String)>,
}

impl PutOpts<'_> {
    pub fn into_options(self) -> Result<PutOptions, Error> {
        let env = self.mode.get_env();
        let mode_atom = self.mode.decode::<Atom>().ok();
        let mode = if mode_atom == Some(atom(env, "overwrite")) {
            PutMode::Overwrite
        } else if mode_atom == Some(atom(env, "create")) {
            PutMode::Create
        } else {
            let (_, e_tag, version) = self
                .mode
                .decode::<(Atom, Option<String>, Option<String>)>()
                .map_err(|_| Error::invalid_argument("invalid put mode"))?;
            PutMode::Update(UpdateVersion { e_tag, version })
        };
        let mut attributes = Attributes::new();
        for (name, value) in self.attributes {
            let key = match name.as_str() {
                "content_type" => Attribute::ContentType,
                "content_disposition" => Attribute::ContentDisposition,
                "content_encoding" => Attribute::ContentEncoding,
                "content_language" => Attribute::ContentLanguage,
                "cache_control" => Attribute::CacheControl,
                other => match other.strip_prefix("metadata:") {
                    Some(key) => Attribute::Metadata(key.to_string().into()),
                    None => {
                        return Err(Error::invalid_argument(format!(
                            "unknown attribute {other}"
                        )))
                    }
                },
            };
            attributes.insert(key, AttributeValue::from(value));
        }
        let mut tags = TagSet::default();
        for (key, value) in &self.tags {
            tags.push(key, value);
        }
        Ok(PutOptions {
            mode,
            tags,
            attributes,
            ..Default::default()
        })
    }
}
