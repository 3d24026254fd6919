//! Object stores over the `object_store` crate: configuration ([`config`]), single-shot
//! operations ([`ops`]) and the mapping of its errors to ours ([`error`]).

pub mod config;
pub mod error;
pub mod ops;

pub use config::{Backend, Store, StoreConfig};
pub mod download;
pub mod download_file;
pub mod list;
pub mod upload;
