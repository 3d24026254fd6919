//! The plain-Rust core of cloud_streams.
//!
//! Nothing here knows about the BEAM: the NIF crate (`cloud_streams_nif`) plugs in how items
//! become terms and how a waiting process is woken. That keeps this crate testable with
//! `cargo test` (a NIF crate's test binary cannot link: the `enif_*` symbols exist only inside
//! the VM).
//!
//! - [`runtime`]: the one shared tokio runtime.
//! - [`pull`]: the bounded pull-stream buffer every download, listing and scan goes through.
//! - [`chunk`]: coalescing small network frames into chunks of a chosen size.
//! - [`synthetic`]: a byte source for tests, benchmarks and the tour.
//! - [`stats`]: live counters that let tests prove nothing leaks.
//! - [`import`]: reading table exports and importing them into DynamoDB.

pub mod chunk;
pub mod error;
pub mod pull;
pub mod runtime;
pub mod stats;
pub mod synthetic;

pub use error::{Error, ErrorKind};
pub mod dynamo;
pub mod export;
pub mod import;
pub mod store;
