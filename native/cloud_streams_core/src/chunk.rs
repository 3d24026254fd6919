//! Coalescing network frames (often 8-64 KiB) into chunks of a chosen size (default 1 MiB).
//!
//! Each byte is copied once, straight into the buffer the consumer will receive: for the BEAM
//! that buffer is a binary allocated by the VM, filled on a tokio thread (architecture §2).

use crate::error::Error;
use crate::pull::{Sink, Weighed};

/// Default chunk size handed to consumers.
pub const DEFAULT_CHUNK_SIZE: usize = 1024 * 1024;

/// A byte buffer the consumer side allocates; `Vec<u8>` in Rust, a VM binary in the NIF.
/// Append-only, so neither side pays for zeroing memory it is about to overwrite.
pub trait ChunkBuf: Weighed + Send + Sized + 'static {
    /// An empty buffer that can hold `capacity` bytes.
    fn with_capacity(capacity: usize) -> Self;
    /// Appends `data`; the caller never goes past the capacity.
    fn extend_from_slice(&mut self, data: &[u8]);
    /// Appends `count` copies of `byte`.
    fn extend_with(&mut self, byte: u8, count: usize);
    fn len(&self) -> usize;
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Reads from `reader` until the buffer holds `capacity` bytes or the reader ends.
    fn read_from(&mut self, reader: &mut dyn std::io::Read, capacity: usize)
        -> std::io::Result<()>;
}

impl ChunkBuf for Vec<u8> {
    fn with_capacity(capacity: usize) -> Self {
        Vec::with_capacity(capacity)
    }
    fn extend_from_slice(&mut self, data: &[u8]) {
        Vec::extend_from_slice(self, data)
    }
    fn extend_with(&mut self, byte: u8, count: usize) {
        self.resize(self.len() + count, byte)
    }
    fn len(&self) -> usize {
        Vec::len(self)
    }
    fn read_from(
        &mut self,
        reader: &mut dyn std::io::Read,
        capacity: usize,
    ) -> std::io::Result<()> {
        let wanted = capacity.saturating_sub(self.len()) as u64;
        use std::io::Read;
        Read::take(&mut *reader, wanted)
            .read_to_end(self)
            .map(|_| ())
    }
}

/// Gathers bytes into chunks of `chunk_size`, sending each full one to a [`Sink`].
///
/// A buffer is never larger than the bytes still expected, so a `chunk_size` far above the
/// object's size costs nothing: only what really arrives is allocated.
pub struct Coalescer<B: ChunkBuf> {
    chunk_size: usize,
    /// Bytes the source announced and has not delivered yet (`None`: unknown).
    expected: Option<u64>,
    /// The current buffer and the size it is sent at.
    current: Option<(B, usize)>,
}

/// The buffer size used when the source announces no size, or sends more than announced.
const UNKNOWN_SIZE_CHUNK: usize = DEFAULT_CHUNK_SIZE;

impl<B: ChunkBuf> Coalescer<B> {
    /// `expected` is the number of bytes the source will send, when it says so.
    pub fn new(chunk_size: usize, expected: Option<u64>) -> Self {
        assert!(chunk_size > 0, "chunk_size must be positive");
        Coalescer {
            chunk_size,
            expected,
            current: None,
        }
    }

    fn next_buffer_size(&self) -> usize {
        match self.expected {
            Some(remaining) if remaining > 0 => self
                .chunk_size
                .min(usize::try_from(remaining).unwrap_or(usize::MAX)),
            _ => self.chunk_size.min(UNKNOWN_SIZE_CHUNK),
        }
    }

    /// Copies `data` in, sending every chunk it completes.
    pub async fn write(&mut self, mut data: &[u8], sink: &Sink<B>) -> Result<(), Error> {
        while !data.is_empty() {
            if self.current.is_none() {
                let size = self.next_buffer_size();
                self.current = Some((B::with_capacity(size), size));
            }
            let (buf, size) = self.current.as_mut().expect("set above");
            let n = data.len().min(*size - buf.len());
            buf.extend_from_slice(&data[..n]);
            data = &data[n..];
            if let Some(remaining) = &mut self.expected {
                *remaining = remaining.saturating_sub(n as u64);
            }
            if buf.len() == *size {
                let (full, _) = self.current.take().expect("filled above");
                sink.send(full).await?;
            }
        }
        Ok(())
    }

    /// Sends the last, partial chunk, if any.
    pub async fn flush(&mut self, sink: &Sink<B>) -> Result<(), Error> {
        match self.current.take() {
            Some((buf, _)) if !buf.is_empty() => sink.send(buf).await,
            _ => Ok(()),
        }
    }
}
