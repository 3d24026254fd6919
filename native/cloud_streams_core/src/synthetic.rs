//! A byte source with no network: N chunks of S bytes, optionally slow, failing or panicking.
//!
//! It drives the pull-stream tests, the first benchmark and the tour. Chunk `i` is filled with
//! the byte [`pattern_byte`]`(i)`, so a consumer can check order and content cheaply.

use crate::chunk::ChunkBuf;
use crate::error::{Error, ErrorKind};
use crate::pull::Sink;
use std::time::Duration;

#[derive(Debug, Clone, Default)]
pub struct Synthetic {
    pub chunks: u64,
    pub chunk_size: usize,
    /// Sleep before producing each chunk.
    pub delay: Duration,
    /// Fail with a `Network` error after this many chunks.
    pub fail_after: Option<u64>,
    /// Panic after this many chunks.
    pub panic_after: Option<u64>,
}

/// The byte chunk `index` is filled with.
pub fn pattern_byte(index: u64) -> u8 {
    (index % 251) as u8
}

impl Synthetic {
    pub async fn run<B: ChunkBuf>(self, sink: Sink<B>) -> Result<(), Error> {
        for index in 0..self.chunks {
            if self.fail_after == Some(index) {
                return Err(Error::new(
                    ErrorKind::Network,
                    format!("synthetic failure after {index} chunks"),
                ));
            }
            if self.panic_after == Some(index) {
                panic!("synthetic panic after {index} chunks");
            }
            if !self.delay.is_zero() {
                tokio::time::sleep(self.delay).await;
            }
            let mut chunk = B::with_capacity(self.chunk_size);
            chunk.extend_with(pattern_byte(index), self.chunk_size);
            sink.send(chunk).await?;
        }
        Ok(())
    }
}
