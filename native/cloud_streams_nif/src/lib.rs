//! The rustler glue of cloud_streams: resources, term conversion and errors. The work itself
//! lives in `cloud_streams_core`.
//!
//! - [`stream`]: the pull-stream resource and its NIFs (pull, disarm, close, stats).
//! - [`chunk`]: VM binaries filled on tokio threads.
//! - [`errors`]: core errors to terms, in one place.
//! - [`reply`]: operations that run on tokio and answer by message.
//! - [`binary`]: BEAM binaries read in place, without a copy.
//! - [`store`]: the object-store NIFs.
//! - [`dynamo`]: the DynamoDB NIFs and the AttributeValue codec.
//! - [`synthetic`]: the synthetic byte source, for tests, benchmarks and the tour.

mod atoms;
mod binary;
mod chunk;
mod dynamo;
mod errors;
mod reply;
mod store;
mod stream;
mod synthetic;
mod task;

rustler::init!("Elixir.CloudStreams.Native");
