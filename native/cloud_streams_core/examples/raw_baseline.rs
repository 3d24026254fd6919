//! Raw-Rust baselines for `make bench`: the same work as the Elixir side, with no BEAM.
//!
//!     cargo run --release -p cloud_streams_core --example raw_baseline -- synthetic CHUNKS CHUNK_SIZE
//!
//! prints `bytes=<n> seconds=<s>` for CHUNKS synthetic chunks produced through the same
//! pull-stream core (same bound, same producer task) and drained by a Rust consumer.

use cloud_streams_core::pull::{self, Bound, Event};
use cloud_streams_core::runtime;
use cloud_streams_core::synthetic::Synthetic;
use std::time::Instant;

const PREFETCH: usize = 8 * 1024 * 1024;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args
        .iter()
        .map(String::as_str)
        .collect::<Vec<_>>()
        .as_slice()
    {
        ["synthetic", chunks, chunk_size] => synthetic(
            chunks.parse().expect("CHUNKS"),
            chunk_size.parse().expect("CHUNK_SIZE"),
        ),
        _ => {
            eprintln!("usage: raw_baseline synthetic CHUNKS CHUNK_SIZE");
            std::process::exit(2);
        }
    }
}

fn synthetic(chunks: u64, chunk_size: usize) {
    let source = Synthetic {
        chunks,
        chunk_size,
        ..Default::default()
    };
    let started = Instant::now();
    let stream = pull::spawn::<Vec<u8>, _, _>(Bound::Bytes(PREFETCH), |sink| source.run(sink));
    let bytes = runtime::get().block_on(async {
        let mut bytes = 0usize;
        loop {
            match stream.next().await {
                Event::Item(chunk) => bytes += chunk.len(),
                Event::Done => break bytes,
                Event::Error(e) => panic!("{e}"),
            }
        }
    });
    println!("bytes={bytes} seconds={}", started.elapsed().as_secs_f64());
}
