//! Coalescing network frames (often 8-64 KiB) into chunks of a chosen size (default 1 MiB).
//!
//! Each byte is copied once, straight into the buffer the consumer will receive: for the BEAM
//! that buffer is a binary allocated by the VM, filled on a tokio thread (DESIGN §2).

use crate::error::Error;
use crate::pull::{Sink, Weighed};

/// Default chunk size handed to consumers.
pub const DEFAULT_CHUNK_SIZE: usize = 1024 * 1024;

/// A byte buffer the consumer side allocates; `Vec<u8>` in Rust, a VM binary in the NIF.
pub trait ChunkBuf: Weighed + Send + Sized + 'static {
    /// A buffer of exactly `len` bytes (contents unspecified).
    fn with_len(len: usize) -> Self;
    fn as_mut_slice(&mut self) -> &mut [u8];
    /// Shrinks the buffer to its first `len` bytes.
    fn truncate(&mut self, len: usize);
}

impl ChunkBuf for Vec<u8> {
    fn with_len(len: usize) -> Self {
        vec![0; len]
    }
    fn as_mut_slice(&mut self) -> &mut [u8] {
        self
    }
    fn truncate(&mut self, len: usize) {
        Vec::truncate(self, len)
    }
}

/// Gathers bytes into chunks of `chunk_size`, sending each full one to a [`Sink`].
pub struct Coalescer<B: ChunkBuf> {
    chunk_size: usize,
    current: Option<B>,
    filled: usize,
}

impl<B: ChunkBuf> Coalescer<B> {
    pub fn new(chunk_size: usize) -> Self {
        assert!(chunk_size > 0, "chunk_size must be positive");
        Coalescer {
            chunk_size,
            current: None,
            filled: 0,
        }
    }

    /// Copies `data` in, sending every chunk it completes.
    pub async fn write(&mut self, mut data: &[u8], sink: &Sink<B>) -> Result<(), Error> {
        while !data.is_empty() {
            let size = self.chunk_size;
            let buf = self.current.get_or_insert_with(|| B::with_len(size));
            let n = data.len().min(size - self.filled);
            buf.as_mut_slice()[self.filled..self.filled + n].copy_from_slice(&data[..n]);
            self.filled += n;
            data = &data[n..];
            if self.filled == size {
                self.filled = 0;
                sink.send(self.current.take().expect("filled above"))
                    .await?;
            }
        }
        Ok(())
    }

    /// Sends the last, partial chunk, if any.
    pub async fn flush(&mut self, sink: &Sink<B>) -> Result<(), Error> {
        if let Some(mut buf) = self.current.take() {
            buf.truncate(self.filled);
            self.filled = 0;
            sink.send(buf).await?;
        }
        Ok(())
    }
}
