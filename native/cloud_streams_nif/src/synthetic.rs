//! The synthetic byte source as a NIF (driven by `test/cloud_streams/pull_stream_test.exs`).

use crate::chunk::BeamChunk;
use crate::stream::StreamResource;
use cloud_streams_core::pull::{self, Bound};
use cloud_streams_core::synthetic::Synthetic;
use rustler::{NifMap, ResourceArc};
use std::time::Duration;

/// Options, validated on the Elixir side by `CloudStreams.Synthetic`.
#[derive(NifMap)]
struct SyntheticOpts {
    chunks: u64,
    chunk_size: usize,
    delay_ms: u64,
    fail_after: Option<u64>,
    panic_after: Option<u64>,
    prefetch: usize,
}

#[rustler::nif]
fn synthetic_stream(opts: SyntheticOpts) -> ResourceArc<StreamResource> {
    let source = Synthetic {
        chunks: opts.chunks,
        chunk_size: opts.chunk_size,
        delay: Duration::from_millis(opts.delay_ms),
        fail_after: opts.fail_after,
        panic_after: opts.panic_after,
    };
    StreamResource::new(pull::spawn::<BeamChunk, _, _>(
        Bound::Bytes(opts.prefetch),
        |sink| source.run(sink),
    ))
}

/// Panics inside a NIF call, to prove the VM survives it and the caller gets an exception.
#[rustler::nif]
fn synthetic_nif_panic() -> rustler::Atom {
    panic!("synthetic panic inside a NIF call")
}
