//! Streaming downloads: an object's bytes, in chunks of `chunk_size`, into a pull stream.
//!
//! Cloud stores stream the response body through the coalescer (one copy, into the buffer the
//! consumer receives), using the store's streaming client so that a download paced by a slow
//! consumer is not cut by a whole-request timeout. Local files are read directly, a chunk per
//! read: object_store's own local stream reads 8 KiB at a time (architecture §4).

use crate::chunk::{ChunkBuf, Coalescer};
use crate::error::{Error, ErrorKind};
use crate::pull::Sink;
use crate::store::ops::{mapper, ByteRange};
use crate::store::Store;
use futures_util::StreamExt;
use object_store::GetOptions;
use std::fs::File;
use std::io::{Seek, SeekFrom};
use std::sync::Arc;

#[derive(Debug, Clone)]
pub struct Download {
    pub path: String,
    pub range: Option<ByteRange>,
    pub chunk_size: usize,
}

pub async fn run<B: ChunkBuf>(
    store: Arc<Store>,
    download: Download,
    sink: Sink<B>,
) -> Result<(), Error> {
    let location = store.location(&download.path)?;
    crate::store::ops::refuse_special_file(&store, &location, &download.path)?;
    if let Some(local) = &store.local {
        let file_path = local
            .path_to_filesystem(&store.full_path(&location))
            .map_err(mapper(&download.path))?;
        return read_local(file_path, download, sink).await;
    }
    let range = download.range.map(ByteRange::to_get_range).transpose()?;
    let result = store
        .streaming
        .get_opts(&location, GetOptions::new().with_range(range))
        .await
        .map_err(mapper(&download.path))?;
    // Buffers are sized by the bytes the store says it sends, never by chunk_size alone.
    let expected = result.range.end.saturating_sub(result.range.start);
    let mut body = result.into_stream();
    let mut coalescer = Coalescer::new(download.chunk_size, Some(expected));
    while let Some(frame) = body.next().await {
        let frame = frame.map_err(mapper(&download.path))?;
        coalescer.write(&frame, &sink).await?;
    }
    coalescer.flush(&sink).await
}

fn blocking<T>(joined: Result<T, tokio::task::JoinError>) -> Result<T, Error> {
    joined.map_err(|e| Error::new(ErrorKind::Internal, format!("blocking read failed: {e}")))
}

async fn read_local<B: ChunkBuf>(
    file_path: std::path::PathBuf,
    download: Download,
    sink: Sink<B>,
) -> Result<(), Error> {
    let path = download.path.clone();
    let io_error = move |e: std::io::Error| {
        let kind = match e.kind() {
            std::io::ErrorKind::NotFound => ErrorKind::NotFound,
            std::io::ErrorKind::PermissionDenied => ErrorKind::PermissionDenied,
            _ => ErrorKind::Internal,
        };
        Error::new(
            kind,
            format!("Object at location {path} could not be read: {e}"),
        )
        .with_path(&path)
    };
    let opened = {
        let (file_path, range, io_error) = (file_path.clone(), download.range, io_error.clone());
        tokio::task::spawn_blocking(move || -> Result<(File, u64, u64), Error> {
            let mut file = File::open(&file_path).map_err(io_error.clone())?;
            let size = file.metadata().map_err(io_error.clone())?.len();
            let span = match range {
                None => 0..size,
                Some(range) => range.within(size)?,
            };
            file.seek(SeekFrom::Start(span.start)).map_err(io_error)?;
            Ok((file, span.start, span.end))
        })
        .await
    };
    let (mut file, mut position, end) = blocking(opened)??;

    while position < end {
        let want = (end - position).min(download.chunk_size as u64) as usize;
        let io_error = io_error.clone();
        let read = tokio::task::spawn_blocking(move || -> Result<(File, B), Error> {
            let mut chunk = B::with_capacity(want);
            chunk.read_from(&mut file, want).map_err(io_error)?;
            Ok((file, chunk))
        })
        .await;
        let (returned, chunk) = blocking(read)??;
        file = returned;
        if chunk.is_empty() {
            // The file shrank while being read: report it rather than end short.
            return Err(Error::new(
                ErrorKind::Internal,
                format!("{} ended at byte {position}, before {end}", download.path),
            )
            .with_path(&download.path));
        }
        position += chunk.len() as u64;
        sink.send(chunk).await?;
    }
    Ok(())
}
