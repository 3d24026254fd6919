//! Single-shot operations on a store. Each is an async function run on the shared runtime;
//! the NIF layer only decodes arguments and encodes the answer.

use crate::error::Error;
use crate::store::error::from_object_store;
use crate::store::{Backend, Store};
use bytes::Bytes;
use futures_util::stream::BoxStream;
use futures_util::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{
    GetOptions, GetRange, ListResult, ObjectMeta, ObjectStoreExt, PutOptions, PutPayload, PutResult,
};
use std::ops::Range;
use std::time::Duration;

/// A byte range as Elixir users write it, already normalised to half-open form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ByteRange {
    /// `start..end` (end exclusive).
    Bounded(u64, u64),
    /// From an offset to the end.
    Offset(u64),
    /// The last n bytes.
    Suffix(u64),
}

impl ByteRange {
    pub fn to_get_range(self) -> Result<GetRange, Error> {
        match self {
            ByteRange::Bounded(start, end) if end <= start => Err(Error::invalid_argument(
                format!("empty or inverted range {start}..{end}"),
            )),
            ByteRange::Bounded(start, end) => Ok(GetRange::Bounded(start..end)),
            ByteRange::Offset(n) => Ok(GetRange::Offset(n)),
            ByteRange::Suffix(0) => Err(Error::invalid_argument("a suffix range needs n > 0")),
            ByteRange::Suffix(n) => Ok(GetRange::Suffix(n)),
        }
    }

    /// The range within an object of `size` bytes; past the end is cut to the end, a start
    /// past the end is an error.
    pub fn within(self, size: u64) -> Result<Range<u64>, Error> {
        let range = match self {
            ByteRange::Bounded(start, end) => start..end.min(size),
            ByteRange::Offset(n) => n..size,
            ByteRange::Suffix(n) => size.saturating_sub(n)..size,
        };
        self.to_get_range()?;
        if range.start >= size && !(size == 0 && matches!(self, ByteRange::Suffix(_))) {
            return Err(Error::invalid_argument(format!(
                "range starts at byte {} of an object of {size} bytes",
                range.start
            )));
        }
        Ok(range)
    }
}

/// Parses an object path: no empty path, no `.` or `..` segment, no empty segment.
pub fn parse_path(path: &str) -> Result<Path, Error> {
    if path.is_empty() {
        return Err(Error::invalid_argument("the path is empty"));
    }
    Path::parse(path)
        .map_err(|e| Error::invalid_argument(format!("invalid path {path:?}: {e}")).with_path(path))
}

/// Parses an optional prefix (`None` or `""` is the whole store).
pub fn parse_prefix(prefix: Option<&str>) -> Result<Option<Path>, Error> {
    match prefix {
        None | Some("") => Ok(None),
        Some(p) => Path::parse(p)
            .map(Some)
            .map_err(|e| Error::invalid_argument(format!("invalid prefix {p:?}: {e}"))),
    }
}

pub(crate) fn mapper(path: &str) -> impl Fn(object_store::Error) -> Error + '_ {
    move |e| from_object_store(e, Some(path))
}

pub async fn get(
    store: &Store,
    path: &str,
    mut options: GetOptions,
) -> Result<(Bytes, ObjectMeta), Error> {
    let location = store.location(path)?;
    refuse_special_file(store, &location, path)?;
    if let (Backend::Azure, Some(GetRange::Suffix(n))) = (store.backend, &options.range) {
        // Azure has no suffix ranges: resolve the range against the object's size.
        let size = size_of(store, &location, path).await?;
        options.range = Some(ByteRange::Suffix(*n).within(size)?.into());
    }
    let result = store
        .inner
        .get_opts(&location, options)
        .await
        .map_err(mapper(path))?;
    let meta = result.meta.clone();
    let data = result.bytes().await.map_err(mapper(path))?;
    Ok((data, meta))
}

/// On a local store, refuses a path that names anything but a regular file (a FIFO, a
/// device, a socket): opening one can block a thread forever, and no cancel reaches a
/// blocking `open`. Missing paths pass, and fail as usual when read.
pub(crate) fn refuse_special_file(store: &Store, location: &Path, path: &str) -> Result<(), Error> {
    let Some(local) = &store.local else {
        return Ok(());
    };
    let Ok(file) = local.path_to_filesystem(&store.full_path(location)) else {
        return Ok(());
    };
    match std::fs::metadata(file) {
        Ok(meta) if !meta.is_file() && !meta.is_dir() => Err(Error::invalid_argument(format!(
            "{path} is not a regular file (a FIFO, device or socket): refused"
        ))
        .with_path(path)),
        _ => Ok(()),
    }
}

/// The object's size, from a HEAD.
async fn size_of(store: &Store, location: &Path, path: &str) -> Result<u64, Error> {
    Ok(store.inner.head(location).await.map_err(mapper(path))?.size)
}

pub async fn head(store: &Store, path: &str) -> Result<ObjectMeta, Error> {
    let location = store.location(path)?;
    store.inner.head(&location).await.map_err(mapper(path))
}

pub async fn put(
    store: &Store,
    path: &str,
    payload: Bytes,
    options: PutOptions,
) -> Result<PutResult, Error> {
    let location = store.location(path)?;
    store
        .inner
        .put_opts(&location, PutPayload::from_bytes(payload), options)
        .await
        .map_err(mapper(path))
}

/// Deleting what is not there succeeds, on every backend (as S3 does).
pub async fn delete(store: &Store, path: &str) -> Result<(), Error> {
    let location = store.location(path)?;
    match store.inner.delete(&location).await {
        Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
        Err(e) => Err(mapper(path)(e)),
    }
}

/// Deletes many objects with the store's bulk delete. Returns how many were deleted (missing
/// ones count as deleted) and the failures, each with its path.
pub async fn delete_many(store: &Store, paths: Vec<String>) -> (usize, Vec<(String, Error)>) {
    let mut failed = Vec::new();
    let mut locations = Vec::with_capacity(paths.len());
    for path in paths {
        match store.location(&path) {
            Ok(location) => locations.push(Ok(location)),
            Err(e) => failed.push((path, e)),
        }
    }
    let requested = locations.len();
    let results: Vec<_> = store
        .inner
        .delete_stream(futures_util::stream::iter(locations).boxed())
        .collect()
        .await;
    let mut deleted = requested;
    for result in results {
        match result {
            Ok(_) | Err(object_store::Error::NotFound { .. }) => {}
            Err(e) => {
                deleted -= 1;
                let mut mapped = from_object_store(e, None);
                let path = relative(store, mapped.path.take().unwrap_or_default());
                failed.push((path.clone(), mapped.with_path(path)));
            }
        }
    }
    (deleted, failed)
}

/// A path as the caller sees it: without the store's prefix.
fn relative(store: &Store, path: String) -> String {
    match &store.prefix {
        Some(prefix) => path
            .strip_prefix(prefix.as_ref())
            .and_then(|rest| rest.strip_prefix(object_store::path::DELIMITER))
            .map(str::to_string)
            .unwrap_or(path),
        None => path,
    }
}

/// Copying or moving an object within a store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transfer {
    Copy,
    Rename,
}

/// Copies or renames `from` to `to`, replacing the target unless `if_not_exists`.
pub async fn transfer(
    store: &Store,
    transfer: Transfer,
    from: &str,
    to: &str,
    if_not_exists: bool,
) -> Result<(), Error> {
    let (source, target) = (store.location(from)?, store.location(to)?);
    if transfer == Transfer::Copy {
        refuse_special_file(store, &source, from)?;
    }
    let (store, source, target) = (&store.inner, &source, &target);
    let result = match (transfer, if_not_exists) {
        (Transfer::Copy, false) => store.copy(source, target).await,
        (Transfer::Copy, true) => store.copy_if_not_exists(source, target).await,
        (Transfer::Rename, false) => store.rename(source, target).await,
        (Transfer::Rename, true) => store.rename_if_not_exists(source, target).await,
    };
    result.map_err(mapper(from))
}

/// Every object under `prefix` (recursively), after `offset` when given, as listed by the
/// store; a store confined to its root leaves out what resolves outside it.
pub fn entries<'a>(
    store: &'a Store,
    prefix: Option<&str>,
    offset: Option<&str>,
) -> Result<BoxStream<'a, object_store::Result<ObjectMeta>>, Error> {
    let prefix = parse_prefix(prefix)?;
    let stream = match offset {
        Some(offset) => store
            .inner
            .list_with_offset(prefix.as_ref(), &parse_path(offset)?),
        None => store.inner.list(prefix.as_ref()),
    };
    Ok(stream
        .filter(move |entry| {
            std::future::ready(match entry {
                Ok(meta) => store.check_confined(&meta.location).is_ok(),
                Err(_) => true,
            })
        })
        .boxed())
}

/// Every object under `prefix` (recursively), after `offset` when given, in one list.
pub async fn list(
    store: &Store,
    prefix: Option<&str>,
    offset: Option<&str>,
) -> Result<Vec<ObjectMeta>, Error> {
    entries(store, prefix, offset)?
        .try_collect()
        .await
        .map_err(|e| from_object_store(e, None))
}

pub async fn list_with_delimiter(store: &Store, prefix: Option<&str>) -> Result<ListResult, Error> {
    let prefix = parse_prefix(prefix)?;
    let mut listed = store
        .inner
        .list_with_delimiter(prefix.as_ref())
        .await
        .map_err(|e| from_object_store(e, None))?;
    if store.confined_root.is_some() {
        listed
            .objects
            .retain(|meta| store.check_confined(&meta.location).is_ok());
        listed
            .common_prefixes
            .retain(|dir| store.check_confined(dir).is_ok());
    }
    Ok(listed)
}

/// Reads several ranges of one object, coalescing nearby ranges into few requests. Ranges that
/// run past the end are cut to it.
pub async fn get_ranges(
    store: &Store,
    path: &str,
    ranges: &[ByteRange],
) -> Result<Vec<Bytes>, Error> {
    let location = store.location(path)?;
    refuse_special_file(store, &location, path)?;
    for range in ranges {
        range.to_get_range()?;
    }
    // One HEAD gives the size every range is resolved against.
    let size = size_of(store, &location, path).await?;
    let resolved = ranges
        .iter()
        .map(|r| r.within(size))
        .collect::<Result<Vec<_>, _>>()?;
    store
        .inner
        .get_ranges(&location, &resolved)
        .await
        .map_err(mapper(path))
}

/// A presigned URL for `method` (GET, PUT, DELETE, HEAD) valid for `expires_in`.
pub async fn signed_url(
    store: &Store,
    method: &str,
    path: &str,
    expires_in: Duration,
) -> Result<String, Error> {
    let signer = store.signer.as_ref().ok_or_else(|| {
        Error::new(
            crate::ErrorKind::NotSupported,
            format!("{:?} stores cannot sign URLs", store.backend),
        )
    })?;
    let location = store.full_path(&store.location(path)?);
    let method = http::Method::from_bytes(method.as_bytes())
        .map_err(|_| Error::invalid_argument(format!("invalid HTTP method {method:?}")))?;
    signer
        .signed_url(method, &location, expires_in)
        .await
        .map(|url| url.to_string())
        .map_err(mapper(path))
}
