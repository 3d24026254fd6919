//! Byte chunks as VM binaries, allocated and filled on tokio threads, so that a pull NIF only
//! hands over a finished binary (architecture §2).

use cloud_streams_core::chunk::ChunkBuf;
use cloud_streams_core::pull::Weighed;
use rustler::{Binary, Encoder, Env, OwnedBinary, Term};

use crate::stream::EncodeItem;

/// A VM binary allocated at full capacity and filled from the front.
pub struct BeamChunk {
    binary: OwnedBinary,
    len: usize,
}

impl Weighed for BeamChunk {
    /// The memory held, which is what the prefetch bound limits.
    fn weight(&self) -> usize {
        self.binary.len()
    }
}

impl ChunkBuf for BeamChunk {
    fn with_capacity(capacity: usize) -> Self {
        BeamChunk {
            binary: OwnedBinary::new(capacity),
            len: 0,
        }
    }

    fn extend_from_slice(&mut self, data: &[u8]) {
        self.binary.as_mut_slice()[self.len..self.len + data.len()].copy_from_slice(data);
        self.len += data.len();
    }

    fn extend_with(&mut self, byte: u8, count: usize) {
        self.binary.as_mut_slice()[self.len..self.len + count].fill(byte);
        self.len += count;
    }

    fn len(&self) -> usize {
        self.len
    }

    fn read_from(
        &mut self,
        reader: &mut dyn std::io::Read,
        capacity: usize,
    ) -> std::io::Result<()> {
        let end = capacity.min(self.binary.len());
        while self.len < end {
            match reader.read(&mut self.binary.as_mut_slice()[self.len..end]) {
                Ok(0) => break,
                Ok(n) => self.len += n,
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }
}

impl EncodeItem for BeamChunk {
    const ENCODES_IN_PULL: bool = true;

    fn encode<'a>(mut self, env: Env<'a>) -> Term<'a> {
        if self.len < self.binary.len() {
            self.binary.realloc_or_copy(self.len);
        }
        Binary::from_owned(self.binary, env).encode(env)
    }
}
