//! Streaming NIFs over a store: downloads and listings as pull streams, uploads as an actor
//! answering each write (driven by `test/object_store_x/stream_*_test.exs`).

use super::{terms, StoreResource};
use crate::chunk::BeamChunk;
use crate::reply::Replier;
use crate::stream::{EncodeItem, StreamResource};
use crate::{atoms, errors};
use cloud_streams_core::pull::{self, Bound};
use cloud_streams_core::store::download::{self, Download};
use cloud_streams_core::store::list::{self, Listing, Page};
use cloud_streams_core::store::upload::{self, UploadConfig, UploadHandle};
use object_store::PutMultipartOptions;
use rustler::{Atom, Encoder, Env, NifResult, Resource, ResourceArc, Term};

impl EncodeItem for Page {
    fn encode<'a>(self, env: Env<'a>) -> Term<'a> {
        terms::metas(env, &self.0)
    }
}

// Opening a stream spawns its task and allocates its state: rare, and now and then past
// 1 ms on a normal scheduler (fresh pages), so it runs on a dirty CPU scheduler.
#[rustler::nif(schedule = "DirtyCpu")]
fn store_download_stream<'a>(
    resource: ResourceArc<StoreResource>,
    path: String,
    range: Option<Term<'a>>,
    chunk_size: usize,
    prefetch: usize,
) -> Result<ResourceArc<StreamResource>, rustler::Error> {
    // Ranges are validated by ObjectStoreX.Stream; anything else is a caller bug.
    let range = terms::optional_range(range).map_err(|_| rustler::Error::BadArg)?;
    let store = resource.0.clone();
    let request = Download {
        path,
        range,
        chunk_size,
    };
    Ok(StreamResource::new(pull::spawn::<BeamChunk, _, _>(
        Bound::Bytes(prefetch),
        |sink| download::run(store, request, sink),
    )))
}

// Opening a stream spawns its task and allocates its state: rare, and now and then past
// 1 ms on a normal scheduler (fresh pages), so it runs on a dirty CPU scheduler.
#[rustler::nif(schedule = "DirtyCpu")]
fn store_list_stream(
    resource: ResourceArc<StoreResource>,
    prefix: Option<String>,
    offset: Option<String>,
    page_size: usize,
    prefetch_pages: usize,
) -> ResourceArc<StreamResource> {
    let store = resource.0.clone();
    let listing = Listing {
        prefix,
        offset,
        page_size,
    };
    StreamResource::new(pull::spawn(Bound::Items(prefetch_pages), |sink| {
        list::run(store, listing, sink)
    }))
}

pub struct UploadResource(UploadHandle);

#[rustler::resource_impl]
impl Resource for UploadResource {}

// Opening a stream spawns its task and allocates its state: rare, and now and then past
// 1 ms on a normal scheduler (fresh pages), so it runs on a dirty CPU scheduler.
#[rustler::nif(schedule = "DirtyCpu")]
fn store_upload_start<'a>(
    env: Env<'a>,
    resource: ResourceArc<StoreResource>,
    path: String,
    part_size: usize,
    max_concurrency: usize,
    opts: terms::PutOpts<'a>,
) -> Term<'a> {
    let result = opts.into_options().and_then(|put| {
        let options = PutMultipartOptions {
            tags: put.tags,
            attributes: put.attributes,
            ..Default::default()
        };
        upload::start(
            resource.0.clone(),
            &path,
            UploadConfig {
                part_size,
                max_concurrency,
                options,
            },
        )
    });
    match result {
        Ok(handle) => (atoms::ok(), ResourceArc::new(UploadResource(handle))).encode(env),
        Err(e) => (atoms::error(), errors::encode(env, &e)).encode(env),
    }
}

/// Answers `{tag, {:ok, {bytes_accepted_so_far, parts_completed_so_far}}}` once the data is
/// accepted.
#[rustler::nif]
fn store_upload_write<'a>(
    env: Env<'a>,
    upload: ResourceArc<UploadResource>,
    data: Term<'a>,
    tag: Term<'a>,
) -> NifResult<Atom> {
    let bytes = crate::binary::to_bytes(env, data)?;
    let reply = Replier::new(env, tag).into_callback(|env, accepted: upload::Accepted| {
        (accepted.bytes, accepted.parts_completed).encode(env)
    });
    upload.0.write(bytes, reply);
    Ok(atoms::ok())
}

/// Answers `{tag, {:ok, %{bytes:, parts:, etag:, version:}}}` once the upload is complete.
#[rustler::nif]
fn store_upload_finish<'a>(
    env: Env<'a>,
    upload: ResourceArc<UploadResource>,
    tag: Term<'a>,
) -> Atom {
    let reply = Replier::new(env, tag).into_callback(|env, done: upload::Uploaded| {
        rustler::term_map!(env, {
            Atom::from_str(env, "bytes").unwrap() => done.bytes,
            Atom::from_str(env, "parts").unwrap() => done.parts,
            Atom::from_str(env, "etag").unwrap() => done.e_tag,
            Atom::from_str(env, "version").unwrap() => done.version,
        })
    });
    upload.0.finish(reply);
    atoms::ok()
}

/// Answers `{tag, {:ok, :ok}}` once the multipart upload (if any) is aborted, or
/// `{tag, {:error, error}}` when it could not be (its parts are left in the store).
#[rustler::nif]
fn store_upload_abort<'a>(
    env: Env<'a>,
    upload: ResourceArc<UploadResource>,
    tag: Term<'a>,
) -> Atom {
    let reply = Replier::new(env, tag).into_callback(|env, ()| atoms::ok().encode(env));
    upload.0.abort(reply);
    atoms::ok()
}

/// Cuts short what the upload is doing and aborts it (the caller stopped waiting); the
/// operation in progress answers with an error. Returns at once.
#[rustler::nif]
fn store_upload_cancel(upload: ResourceArc<UploadResource>) -> Atom {
    upload.0.cancel();
    atoms::ok()
}

/// Downloads an object to a file with parallel ranged GETs. Sends
/// `{tag, {:progress, done, total}}` as parts complete (when `report_progress`), then
/// `{tag, {:ok, %{bytes:, resumed_bytes:}}}` or `{tag, {:error, error}}`. Returns a task
/// handle: when it is collected (the caller died), the download stops.
#[rustler::nif]
#[allow(clippy::too_many_arguments)]
fn store_download_file<'a>(
    env: Env<'a>,
    resource: ResourceArc<StoreResource>,
    path: String,
    dest: String,
    part_size: u64,
    max_concurrency: usize,
    resume: bool,
    report_progress: bool,
    tag: Term<'a>,
) -> ResourceArc<crate::task::TaskResource> {
    use cloud_streams_core::store::download_file::{self, FileDownload};
    use futures_util::FutureExt;
    use std::panic::AssertUnwindSafe;
    use std::sync::Arc;

    let notifier = Arc::new(crate::reply::Notifier::new(env, tag));
    let store = resource.0.clone();
    let request = FileDownload {
        path,
        dest: dest.into(),
        part_size,
        max_concurrency,
        resume,
    };
    let reporter = notifier.clone();
    let progress = move |done: u64, total: u64| {
        if report_progress {
            reporter
                .send(|env| (Atom::from_str(env, "progress").unwrap(), done, total).encode(env));
        }
    };
    let task = cloud_streams_core::runtime::spawn(async move {
        let result = AssertUnwindSafe(download_file::run(store, request, progress))
            .catch_unwind()
            .await
            .unwrap_or_else(|panic| Err(cloud_streams_core::Error::from_panic(panic.as_ref())));
        notifier.finish(result, |env, done| {
            rustler::term_map!(env, {
                Atom::from_str(env, "bytes").unwrap() => done.bytes,
                Atom::from_str(env, "resumed_bytes").unwrap() => done.resumed_bytes,
            })
        });
    });
    crate::task::TaskResource::new(task.abort_handle())
}
