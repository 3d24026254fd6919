//! Coalescing network frames (often 8-64 KiB) into chunks of a chosen size (default 1 MiB).
//!
//! Each byte is copied once, straight into the buffer the consumer will receive: for the BEAM
//! that buffer is a binary allocated by the VM, filled on a tokio thread (DESIGN §2).

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
pub struct Coalescer<B: ChunkBuf> {
    chunk_size: usize,
    current: Option<B>,
}

impl<B: ChunkBuf> Coalescer<B> {
    pub fn new(chunk_size: usize) -> Self {
        assert!(chunk_size > 0, "chunk_size must be positive");
        Coalescer {
            chunk_size,
            current: None,
        }
    }

    /// Copies `data` in, sending every chunk it completes.
    pub async fn write(&mut self, mut data: &[u8], sink: &Sink<B>) -> Result<(), Error> {
        while !data.is_empty() {
            let size = self.chunk_size;
            let buf = self.current.get_or_insert_with(|| B::with_capacity(size));
            let n = data.len().min(size - buf.len());
            buf.extend_from_slice(&data[..n]);
            data = &data[n..];
            if buf.len() == size {
                sink.send(self.current.take().expect("filled above"))
                    .await?;
            }
        }
        Ok(())
    }

    /// Sends the last, partial chunk, if any.
    pub async fn flush(&mut self, sink: &Sink<B>) -> Result<(), Error> {
        match self.current.take() {
            Some(buf) if !buf.is_empty() => sink.send(buf).await,
            _ => Ok(()),
        }
    }
}
