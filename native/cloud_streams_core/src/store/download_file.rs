//! Parallel ranged download of one object to a local file, resumable.
//!
//! The object is fetched in parts of `part_size` bytes, `max_concurrency` at a time, each
//! written in place into `<dest>.partial`. `<dest>.partial.state` records the object's
//! identity (etag and size) and every finished part, so a download stopped by a crash or an
//! error continues where it was, provided the object has not changed. When every part is in,
//! the partial file is renamed to `dest`.

use crate::error::{Error, ErrorKind};
use crate::store::ops::mapper;
use crate::store::Store;
use futures_util::{stream, StreamExt, TryStreamExt};
use object_store::{GetOptions, GetRange, ObjectStoreExt};
use std::collections::HashSet;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::FileExt;
use std::path::{Path as FsPath, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

#[derive(Debug, Clone)]
pub struct FileDownload {
    pub path: String,
    pub dest: PathBuf,
    pub part_size: u64,
    pub max_concurrency: usize,
    /// Continue from a previous attempt's state, when it matches the object.
    pub resume: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Downloaded {
    pub bytes: u64,
    /// Bytes a previous attempt had already fetched.
    pub resumed_bytes: u64,
}

fn io(path: &FsPath) -> impl Fn(std::io::Error) -> Error + '_ {
    move |e| Error::new(ErrorKind::Internal, format!("{}: {e}", path.display()))
}

fn sidecar(dest: &FsPath, suffix: &str) -> PathBuf {
    let mut name = dest.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Runs the download; `progress(done, total)` is called as parts complete.
pub async fn run(
    store: Arc<Store>,
    request: FileDownload,
    progress: impl Fn(u64, u64) + Send + Sync + 'static,
) -> Result<Downloaded, Error> {
    if request.part_size == 0 || request.max_concurrency == 0 {
        return Err(Error::invalid_argument(
            "part_size and max_concurrency must be positive",
        ));
    }
    let location = store.location(&request.path)?;
    crate::store::ops::refuse_special_file(&store, &location, &request.path)?;
    let meta = store
        .inner
        .head(&location)
        .await
        .map_err(mapper(&request.path))?;
    let (size, etag) = (meta.size, meta.e_tag.clone());
    let identity = format!(
        "{} {} {}",
        etag.as_deref().unwrap_or("-"),
        size,
        request.part_size
    );
    let partial = sidecar(&request.dest, ".partial");
    let state_path = sidecar(&request.dest, ".partial.state");
    let parts = size.div_ceil(request.part_size);

    let (file, state, done) = {
        let (partial, state_path, identity) =
            (partial.clone(), state_path.clone(), identity.clone());
        let resume = request.resume;
        tokio::task::spawn_blocking(move || open(&partial, &state_path, &identity, size, resume))
            .await
            .map_err(|e| Error::new(ErrorKind::Internal, e.to_string()))??
    };
    let resumed_bytes: u64 = done
        .iter()
        .map(|&i| part_range(i, request.part_size, size).1)
        .sum();
    let fetched = Arc::new(AtomicU64::new(resumed_bytes));
    let (file, state) = (Arc::new(file), Arc::new(Mutex::new(state)));
    let progress = Arc::new(progress);
    if resumed_bytes > 0 {
        progress(resumed_bytes, size);
    }

    stream::iter((0..parts).filter(|i| !done.contains(i)))
        .map(|index| {
            let (store, location, etag) = (store.clone(), location.clone(), etag.clone());
            let (file, state, fetched, progress) = (
                file.clone(),
                state.clone(),
                fetched.clone(),
                progress.clone(),
            );
            let (path, partial) = (request.path.clone(), partial.clone());
            let (offset, len) = part_range(index, request.part_size, size);
            async move {
                // The etag pins every part to the same version of the object.
                let options = GetOptions::new()
                    .with_range(Some(GetRange::Bounded(offset..offset + len)))
                    .with_if_match(etag);
                let result = store
                    .inner
                    .get_opts(&location, options)
                    .await
                    .map_err(mapper(&path))?;
                let bytes = result.bytes().await.map_err(mapper(&path))?;
                if bytes.len() as u64 != len {
                    return Err(Error::new(
                        ErrorKind::Internal,
                        format!(
                            "part {index} of {path}: {} bytes instead of {len}",
                            bytes.len()
                        ),
                    )
                    .with_path(&path));
                }
                tokio::task::spawn_blocking(move || -> Result<(), Error> {
                    file.write_all_at(&bytes, offset).map_err(io(&partial))?;
                    let mut state = state.lock().unwrap_or_else(|e| e.into_inner());
                    writeln!(state, "{index}").map_err(io(&partial))
                })
                .await
                .map_err(|e| Error::new(ErrorKind::Internal, e.to_string()))??;
                let total = fetched.fetch_add(len, Ordering::Relaxed) + len;
                progress(total, size);
                Ok::<_, Error>(())
            }
        })
        .buffer_unordered(request.max_concurrency)
        .try_collect::<()>()
        .await?;

    let dest = request.dest.clone();
    tokio::task::spawn_blocking(move || -> Result<(), Error> {
        file.sync_all().map_err(io(&partial))?;
        std::fs::rename(&partial, &dest).map_err(io(&dest))?;
        std::fs::remove_file(&state_path).map_err(io(&state_path))
    })
    .await
    .map_err(|e| Error::new(ErrorKind::Internal, e.to_string()))??;
    Ok(Downloaded {
        bytes: size,
        resumed_bytes,
    })
}

/// Offset and length of part `index`.
fn part_range(index: u64, part_size: u64, size: u64) -> (u64, u64) {
    let offset = index * part_size;
    (offset, part_size.min(size - offset))
}

/// Opens the partial file and its state, keeping finished parts when the state describes this
/// same object (`identity`), starting afresh otherwise.
fn open(
    partial: &FsPath,
    state_path: &FsPath,
    identity: &str,
    size: u64,
    resume: bool,
) -> Result<(File, File, HashSet<u64>), Error> {
    let previous = if resume {
        std::fs::read_to_string(state_path).ok()
    } else {
        None
    };
    let done: Option<HashSet<u64>> = previous.and_then(|text| {
        let mut lines = text.lines();
        (lines.next() == Some(identity) && partial.exists())
            .then(|| lines.filter_map(|l| l.trim().parse().ok()).collect())
    });
    let fresh = done.is_none();
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(fresh)
        .open(partial)
        .map_err(io(partial))?;
    file.set_len(size).map_err(io(partial))?;
    let mut state = OpenOptions::new()
        .append(true)
        .create(true)
        .truncate(false)
        .open(state_path)
        .map_err(io(state_path))?;
    if fresh {
        state.set_len(0).map_err(io(state_path))?;
        writeln!(state, "{identity}").map_err(io(state_path))?;
    }
    Ok((file, state, done.unwrap_or_default()))
}
