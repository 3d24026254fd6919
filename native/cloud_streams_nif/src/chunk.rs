//! Byte chunks as VM binaries, allocated and filled on tokio threads, so that a pull NIF only
//! hands over a finished binary (DESIGN §2).

use cloud_streams_core::chunk::ChunkBuf;
use cloud_streams_core::pull::Weighed;
use rustler::{Binary, Encoder, Env, OwnedBinary, Term};

use crate::stream::EncodeItem;

pub struct BeamChunk(OwnedBinary);

impl Weighed for BeamChunk {
    fn weight(&self) -> usize {
        self.0.len()
    }
}

impl ChunkBuf for BeamChunk {
    fn with_len(len: usize) -> Self {
        BeamChunk(OwnedBinary::new(len))
    }

    fn as_mut_slice(&mut self) -> &mut [u8] {
        self.0.as_mut_slice()
    }

    fn truncate(&mut self, len: usize) {
        if len < self.0.len() {
            self.0.realloc_or_copy(len);
        }
    }
}

impl EncodeItem for BeamChunk {
    fn encode<'a>(self, env: Env<'a>) -> Term<'a> {
        Binary::from_owned(self.0, env).encode(env)
    }
}
