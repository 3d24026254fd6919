//! Building a store from a backend, object_store configuration keys, client and retry
//! settings, an optional URL and an optional prefix.
//!
//! The Elixir side names options the Elixir way and translates them to object_store's own
//! configuration keys (`aws_bucket`, `azure_storage_account_name`, ...), so every key
//! object_store knows is reachable and each is parsed by object_store itself.

use crate::error::{Error, ErrorKind};
use crate::store::error::from_object_store;
use crate::store::ops::parse_path;
use object_store::aws::AmazonS3Builder;
use object_store::azure::MicrosoftAzureBuilder;
use object_store::gcp::GoogleCloudStorageBuilder;
use object_store::http::HttpBuilder;
use object_store::local::LocalFileSystem;
use object_store::memory::InMemory;
use object_store::multipart::MultipartStore;
use object_store::path::Path;
use object_store::prefix::PrefixStore;
use object_store::signer::Signer;
use object_store::{BackoffConfig, ClientConfigKey, ClientOptions, ObjectStore, RetryConfig};
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Memory,
    Local,
    S3,
    Gcs,
    Azure,
    Http,
}

impl Backend {
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name {
            "memory" => Backend::Memory,
            "local" => Backend::Local,
            "s3" => Backend::S3,
            "gcs" => Backend::Gcs,
            "azure" => Backend::Azure,
            "http" => Backend::Http,
            _ => return None,
        })
    }
}

/// Retry policy for transient failures (object_store's `RetryConfig`).
#[derive(Debug, Clone)]
pub struct Retry {
    pub max_retries: usize,
    pub retry_timeout: Duration,
    pub init_backoff: Duration,
    pub max_backoff: Duration,
}

#[derive(Debug, Clone)]
pub struct StoreConfig {
    pub backend: Backend,
    /// object_store configuration keys of the backend's builder, with their values.
    pub options: Vec<(String, String)>,
    /// object_store `ClientConfigKey` names (`timeout`, `connect_timeout`, ...).
    pub client: Vec<(String, String)>,
    pub retry: Option<Retry>,
    /// Start from the backend's `from_env` builder (AWS_*, GOOGLE_*, AZURE_* variables).
    pub from_env: bool,
    /// A store URL (`s3://bucket`, `az://container`, `https://host/...`).
    pub url: Option<String>,
    /// The local store's root directory.
    pub root: Option<String>,
    /// Local stores: refuse every path whose resolved target (symlinks followed) is outside
    /// the root.
    pub confine_to_root: bool,
    /// Every path is taken relative to this prefix.
    pub prefix: Option<String>,
}

/// A built store, shared by every operation and stream on it.
pub struct Store {
    pub inner: Arc<dyn ObjectStore>,
    /// The same store with no whole-request timeout, for downloads paced by their consumer
    /// (architecture §4): a stream's own `timeout` bounds each wait instead.
    pub streaming: Arc<dyn ObjectStore>,
    /// Presigned URLs: S3, GCS and Azure only.
    pub signer: Option<Arc<dyn Signer>>,
    pub backend: Backend,
    /// The local store, for direct reads of a few MiB at a time (architecture §4).
    pub local: Option<Arc<LocalFileSystem>>,
    /// The prefix every path is relative to (already applied by `inner`, not by `signer`).
    pub prefix: Option<Path>,
    /// The canonical root of a local store built with `confine_to_root`.
    pub confined_root: Option<PathBuf>,
    /// Multipart uploads by id (S3, GCS, Azure), without the prefix: an export's resume
    /// aborts, by its recorded id, an upload that a crash left behind.
    pub multipart: Option<Arc<dyn MultipartStore>>,
}

impl Store {
    /// Parses a caller's path into a location of this store, refusing it on a store confined
    /// to its root when it resolves outside (see [`Store::check_confined`]).
    pub fn location(&self, path: &str) -> Result<Path, Error> {
        let location = parse_path(path)?;
        self.check_confined(&location)?;
        Ok(location)
    }

    /// On a local store confined to its root, a location whose file (or, for one not yet
    /// there, whose nearest existing directory) resolves outside the root, through symlinks,
    /// is `:permission_denied`. Other stores accept every location.
    pub fn check_confined(&self, location: &Path) -> Result<(), Error> {
        let (Some(root), Some(local)) = (&self.confined_root, &self.local) else {
            return Ok(());
        };
        let file = local
            .path_to_filesystem(&self.full_path(location))
            .map_err(|e| from_object_store(e, Some(location.as_ref())))?;
        if resolves_within(root, &file) {
            Ok(())
        } else {
            Err(Error::new(
                ErrorKind::PermissionDenied,
                format!("{location} resolves outside the store's root (confine_to_root: true)"),
            )
            .with_path(location.as_ref()))
        }
    }
    /// `path` with the store's prefix in front: the path inside the bucket or root.
    pub fn full_path(&self, path: &Path) -> Path {
        match &self.prefix {
            Some(prefix) => prefix.parts().chain(path.parts()).collect(),
            None => path.clone(),
        }
    }
}

/// Whether `target`, with every symlink resolved, lies inside `root` (itself canonical). A
/// path not there yet is judged by its nearest existing ancestor, which is where a write
/// would create it; a dangling symlink on the way is refused, since a write would follow it.
fn resolves_within(root: &std::path::Path, target: &std::path::Path) -> bool {
    let mut probe = target;
    loop {
        match std::fs::canonicalize(probe) {
            Ok(resolved) => return resolved.starts_with(root),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                let is_link = std::fs::symlink_metadata(probe).is_ok_and(|m| m.is_symlink());
                match probe.parent() {
                    Some(parent) if !is_link => probe = parent,
                    _ => return false,
                }
            }
            Err(_) => return false,
        }
    }
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Store({:?})", self.backend)
    }
}

fn client_options(config: &StoreConfig) -> Result<ClientOptions, Error> {
    config
        .client
        .iter()
        .try_fold(ClientOptions::new(), |options, (key, value)| {
            if key == "timeout" && value == "infinity" {
                return Ok(options.with_timeout_disabled());
            }
            let key = ClientConfigKey::from_str(key).map_err(|e| from_object_store(e, None))?;
            Ok(options.with_config(key, value))
        })
}

fn retry_config(config: &StoreConfig) -> RetryConfig {
    match &config.retry {
        None => RetryConfig::default(),
        Some(retry) => RetryConfig {
            backoff: BackoffConfig {
                init_backoff: retry.init_backoff,
                max_backoff: retry.max_backoff,
                base: 2.0,
            },
            max_retries: retry.max_retries,
            retry_timeout: retry.retry_timeout,
        },
    }
}

fn streaming_client_options(config: &StoreConfig) -> Result<ClientOptions, Error> {
    Ok(client_options(config)?.with_timeout_disabled())
}

/// Starts a builder (from the environment when asked), applies object_store configuration
/// keys, each parsed by object_store, and builds it twice: for operations, and for streams
/// (no whole-request timeout).
macro_rules! build_twice {
    ($builder:ty, $key_type:ty, $config:expr) => {{
        let mut builder = if $config.from_env {
            <$builder>::from_env()
        } else {
            <$builder>::new()
        };
        for (key, value) in &$config.options {
            let key = <$key_type>::from_str(key).map_err(|e| from_object_store(e, None))?;
            builder = builder.with_config(key, value);
        }
        if let Some(url) = &$config.url {
            builder = builder.with_url(url);
        }
        let builder = builder.with_retry(retry_config($config));
        let streaming = builder
            .clone()
            .with_client_options(streaming_client_options($config)?)
            .build()
            .map_err(|e| from_object_store(e, None))?;
        let inner = builder
            .with_client_options(client_options($config)?)
            .build()
            .map_err(|e| from_object_store(e, None))?;
        (Arc::new(inner), Arc::new(streaming))
    }};
}

pub fn build(config: &StoreConfig) -> Result<Store, Error> {
    let map = |e| from_object_store(e, None);
    let mut local = None;
    let mut confined_root = None;
    let mut signer: Option<Arc<dyn Signer>> = None;
    let mut multipart: Option<Arc<dyn MultipartStore>> = None;
    let (inner, streaming): (Arc<dyn ObjectStore>, Arc<dyn ObjectStore>) = match config.backend {
        Backend::Memory => {
            let store = Arc::new(InMemory::new());
            (store.clone(), store)
        }
        Backend::Local => {
            let root = config
                .root
                .as_deref()
                .ok_or_else(|| Error::invalid_argument("a local store needs a root directory"))?;
            let root = std::fs::canonicalize(root)
                .map_err(|e| Error::invalid_argument(format!("local store root {root:?}: {e}")))?;
            if !root.is_dir() {
                return Err(Error::invalid_argument(format!(
                    "local store root {root:?} is not a directory"
                )));
            }
            let store = Arc::new(
                LocalFileSystem::new_with_prefix(&root)
                    .map_err(map)?
                    .with_automatic_cleanup(true),
            );
            local = Some(store.clone());
            confined_root = config.confine_to_root.then(|| root.clone());
            (store.clone(), store)
        }
        Backend::S3 => {
            let (inner, streaming) = build_twice!(
                AmazonS3Builder,
                object_store::aws::AmazonS3ConfigKey,
                config
            );
            signer = Some(inner.clone());
            multipart = Some(inner.clone());
            (inner, streaming)
        }
        Backend::Gcs => {
            let (inner, streaming) = build_twice!(
                GoogleCloudStorageBuilder,
                object_store::gcp::GoogleConfigKey,
                config
            );
            signer = Some(inner.clone());
            multipart = Some(inner.clone());
            (inner, streaming)
        }
        Backend::Azure => {
            let (inner, streaming) = build_twice!(
                MicrosoftAzureBuilder,
                object_store::azure::AzureConfigKey,
                config
            );
            signer = Some(inner.clone());
            multipart = Some(inner.clone());
            (inner, streaming)
        }
        Backend::Http => {
            let url = config
                .url
                .as_deref()
                .ok_or_else(|| Error::invalid_argument("an http store needs a url"))?;
            let builder = HttpBuilder::new()
                .with_url(url)
                .with_retry(retry_config(config));
            let streaming = builder
                .clone()
                .with_client_options(streaming_client_options(config)?)
                .build()
                .map_err(map)?;
            let inner = builder
                .with_client_options(client_options(config)?)
                .build()
                .map_err(map)?;
            (Arc::new(inner), Arc::new(streaming))
        }
    };
    let prefix = match config.prefix.as_deref().filter(|p| !p.is_empty()) {
        None => None,
        Some(prefix) => Some(
            Path::parse(prefix)
                .map_err(|e| Error::invalid_argument(format!("invalid prefix {prefix:?}: {e}")))?,
        ),
    };
    let with_prefix = |store: Arc<dyn ObjectStore>| -> Arc<dyn ObjectStore> {
        match &prefix {
            None => store,
            Some(prefix) => Arc::new(PrefixStore::new(store, prefix.clone())),
        }
    };
    Ok(Store {
        inner: with_prefix(inner),
        streaming: with_prefix(streaming),
        signer,
        backend: config.backend,
        local,
        prefix,
        confined_root,
        multipart,
    })
}
