//! Streaming uploads: an actor task per upload receives the caller's chunks, cuts them into
//! equal parts of `part_size` (R2 requires equal parts), keeps up to `max_concurrency` parts in
//! flight, and acknowledges each write only once its data is accepted, so the caller is
//! paced and memory stays near `part_size * (max_concurrency + 1)`.
//!
//! A total below one part becomes a single put. The multipart upload is aborted on every
//! failure path: a failed part, a failed completion, an explicit abort (the caller's input
//! raised), a cancel (the caller stopped waiting), and the handle being dropped before
//! `finish` (the caller died). When the abort cannot reach the store, the error names the
//! multipart upload left behind (its upload id and path), so it can be cleaned up.

use crate::error::Error;
use crate::store::error::from_object_store;
use crate::store::Store;
use bytes::Bytes;
use futures_util::stream::FuturesUnordered;
use futures_util::StreamExt;
use object_store::path::Path;
use object_store::{
    MultipartUpload, PutMultipartOptions, PutOptions, PutPayload, PutResult, UploadPart,
};
use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, Notify};

const ABORT_ATTEMPTS: u32 = 4;
/// Each abort attempt is bounded on its own: a store that does not answer must not keep the
/// actor (and the caller waiting for it) beyond a known time, whatever its retry budget.
/// Four attempts, their pauses included, take at most about 10 s.
const ABORT_ATTEMPT_TIMEOUT: Duration = Duration::from_secs(2);

/// How an upload ended, for the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Uploaded {
    pub bytes: u64,
    pub parts: usize,
    pub e_tag: Option<String>,
    pub version: Option<String>,
}

/// Answers one command, on the actor's thread.
pub type Reply<T> = Box<dyn FnOnce(Result<T, Error>) + Send>;

/// What a write's acknowledgement reports: bytes accepted so far, and parts the store has
/// confirmed so far (parts complete in the background; the caller hears of them here).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Accepted {
    pub bytes: u64,
    pub parts_completed: usize,
}

enum Command {
    Begin(Reply<Option<String>>),
    Write(Bytes, Reply<Accepted>),
    Finish(Reply<Uploaded>),
    Abort(Reply<()>),
}

#[derive(Debug, Clone)]
pub struct UploadConfig {
    pub part_size: usize,
    pub max_concurrency: usize,
    pub options: PutMultipartOptions,
}

/// The caller's end of an upload. Dropping it before `finish` aborts the upload.
pub struct UploadHandle {
    commands: mpsc::UnboundedSender<Command>,
    cancel: Arc<Notify>,
}

impl UploadHandle {
    /// Starts the multipart upload now, before any part is sent (otherwise the first part
    /// starts it); `reply` gets its id where the store has one. A resumable writer records
    /// the id before sending data, so no crash can leave an upload it does not know of.
    pub fn begin(&self, reply: Reply<Option<String>>) {
        self.send(Command::Begin(reply));
    }

    /// Appends data; `reply` gets the total accepted so far once there is room for it.
    pub fn write(&self, data: Bytes, reply: Reply<Accepted>) {
        self.send(Command::Write(data, reply));
    }

    /// Uploads what remains and completes the upload.
    pub fn finish(&self, reply: Reply<Uploaded>) {
        self.send(Command::Finish(reply));
    }

    /// Aborts the multipart upload, if one was started; the reply is an error naming the
    /// upload left behind if the abort could not reach the store.
    pub fn abort(&self, reply: Reply<()>) {
        self.send(Command::Abort(reply));
    }

    /// Stops whatever the actor is doing (a write waiting on a stalled part, a completion),
    /// without waiting for it: the operation in progress answers with a `Cancelled` error,
    /// the multipart upload is aborted and the actor ends. Later commands answer at once.
    pub fn cancel(&self) {
        self.cancel.notify_one();
    }

    fn send(&self, command: Command) {
        if let Err(mpsc::error::SendError(command)) = self.commands.send(command) {
            let closed = || Error::new(crate::ErrorKind::Cancelled, "the upload has ended");
            match command {
                Command::Begin(reply) => reply(Err(closed())),
                Command::Write(_, reply) => reply(Err(closed())),
                Command::Finish(reply) => reply(Err(closed())),
                Command::Abort(reply) => reply(Ok(())),
            }
        }
    }
}

pub fn start(store: Arc<Store>, path: &str, config: UploadConfig) -> Result<UploadHandle, Error> {
    let location = store.location(path)?;
    if config.part_size == 0 || config.max_concurrency == 0 {
        return Err(Error::invalid_argument(
            "part_size and max_concurrency must be positive",
        ));
    }
    let (commands, receiver) = mpsc::unbounded_channel();
    let cancel = Arc::new(Notify::new());
    let actor = Actor {
        store,
        location,
        path: path.to_string(),
        config,
        pending: VecDeque::new(),
        pending_bytes: 0,
        total: 0,
        upload: None,
        upload_id: None,
        parts: 0,
        parts_completed: 0,
        in_flight: FuturesUnordered::new(),
        failed: None,
    };
    crate::runtime::spawn(actor.run(receiver, cancel.clone()));
    Ok(UploadHandle { commands, cancel })
}

struct Actor {
    store: Arc<Store>,
    location: Path,
    path: String,
    config: UploadConfig,
    /// Data not yet cut into a part.
    pending: VecDeque<Bytes>,
    pending_bytes: usize,
    total: u64,
    upload: Option<Box<dyn MultipartUpload>>,
    /// The store's id of the multipart upload, where it exposes one (S3, GCS).
    upload_id: Option<String>,
    parts: usize,
    parts_completed: usize,
    in_flight: FuturesUnordered<UploadPart>,
    failed: Option<Error>,
}

impl Actor {
    async fn run(mut self, mut commands: mpsc::UnboundedReceiver<Command>, cancel: Arc<Notify>) {
        loop {
            let command = tokio::select! {
                command = commands.recv() => command,
                () = cancel.notified() => {
                    let _ = self.cancel().await;
                    return;
                }
                Some(result) = self.in_flight.next(), if !self.in_flight.is_empty() => {
                    self.part_done(result).await;
                    continue;
                }
            };
            match command {
                // The handle was dropped before finishing: nobody will complete this upload.
                None => {
                    let _ = self.abort().await;
                    return;
                }
                Some(Command::Begin(reply)) => {
                    let begun = tokio::select! {
                        result = self.begin() => Some(result),
                        () = cancel.notified() => None,
                    };
                    match begun {
                        Some(result) => reply(result),
                        None => return reply(Err(self.cancel().await)),
                    }
                }
                Some(Command::Write(data, reply)) => {
                    let written = tokio::select! {
                        result = self.write(data) => Some(result),
                        () = cancel.notified() => None,
                    };
                    match written {
                        Some(result) => reply(result),
                        None => return reply(Err(self.cancel().await)),
                    }
                }
                Some(Command::Finish(reply)) => {
                    let finished = tokio::select! {
                        result = self.finish() => Some(result),
                        () = cancel.notified() => None,
                    };
                    return match finished {
                        Some(result) => reply(result),
                        None => reply(Err(self.cancel().await)),
                    };
                }
                Some(Command::Abort(reply)) => return reply(self.abort().await),
            }
        }
    }

    /// Aborts after a cancel; the error answers the operation that was cut short.
    async fn cancel(&mut self) -> Error {
        let cancelled = Error::new(crate::ErrorKind::Cancelled, "the upload was cancelled")
            .with_path(self.path.clone());
        match self.abort().await {
            Ok(()) => cancelled,
            Err(left_behind) => left_behind,
        }
    }

    fn map(&self, error: object_store::Error) -> Error {
        from_object_store(error, Some(&self.path))
    }

    async fn fail(&mut self, error: object_store::Error) {
        let mut error = self.map(error);
        if let Err(left_behind) = self.abort().await {
            error.message = format!("{}; {}", error.message, left_behind.message);
        }
        self.failed.get_or_insert(error);
    }

    async fn part_done(&mut self, result: Result<(), object_store::Error>) {
        match result {
            Ok(()) => self.parts_completed += 1,
            Err(e) => self.fail(e).await,
        }
    }

    async fn write(&mut self, data: Bytes) -> Result<Accepted, Error> {
        if let Some(error) = &self.failed {
            return Err(error.clone());
        }
        self.total += data.len() as u64;
        self.pending_bytes += data.len();
        self.pending.push_back(data);
        while self.pending_bytes >= self.config.part_size && self.failed.is_none() {
            let part = self.cut(self.config.part_size);
            self.dispatch(part).await;
        }
        match &self.failed {
            Some(error) => Err(error.clone()),
            None => Ok(Accepted {
                bytes: self.total,
                parts_completed: self.parts_completed,
            }),
        }
    }

    /// Takes the first `size` pending bytes as one part, without copying.
    fn cut(&mut self, size: usize) -> PutPayload {
        let mut part = Vec::new();
        let mut needed = size;
        while needed > 0 {
            let Some(mut front) = self.pending.pop_front() else {
                break;
            };
            if front.len() > needed {
                self.pending.push_front(front.split_off(needed));
            }
            needed -= front.len();
            part.push(front);
        }
        self.pending_bytes -= size - needed;
        part.into_iter().collect()
    }

    /// Starts the multipart upload, unless it has started.
    async fn begin(&mut self) -> Result<Option<String>, Error> {
        if let Some(error) = &self.failed {
            return Err(error.clone());
        }
        if self.upload.is_none() {
            let upload = self
                .store
                .inner
                .put_multipart_opts(&self.location, self.config.options.clone())
                .await
                .map_err(|e| self.map(e))?;
            self.upload_id = upload_id(upload.as_ref());
            self.upload = Some(upload);
        }
        Ok(self.upload_id.clone())
    }

    /// Sends a part once a slot is free, starting the multipart upload on the first part.
    async fn dispatch(&mut self, part: PutPayload) {
        if let Err(error) = self.begin().await {
            self.failed = Some(error);
            return;
        }
        while self.in_flight.len() >= self.config.max_concurrency {
            if let Some(result) = self.in_flight.next().await {
                self.part_done(result).await;
                if self.failed.is_some() {
                    return;
                }
            }
        }
        let upload = self.upload.as_mut().expect("started above");
        self.in_flight.push(upload.put_part(part));
        self.parts += 1;
    }

    async fn finish(&mut self) -> Result<Uploaded, Error> {
        if let Some(error) = &self.failed {
            return Err(error.clone());
        }
        if self.upload.is_none() {
            // Less than one part in all: a single put.
            let payload = self.cut(self.pending_bytes);
            let put = PutOptions {
                tags: self.config.options.tags.clone(),
                attributes: self.config.options.attributes.clone(),
                ..Default::default()
            };
            let result = self
                .store
                .inner
                .put_opts(&self.location, payload, put)
                .await
                .map_err(|e| self.map(e))?;
            return Ok(self.uploaded(result));
        }
        if self.pending_bytes > 0 {
            let last = self.cut(self.pending_bytes);
            self.dispatch(last).await;
        }
        while let Some(result) = self.in_flight.next().await {
            self.part_done(result).await;
        }
        if let Some(error) = &self.failed {
            return Err(error.clone());
        }
        let upload = self.upload.as_mut().expect("started");
        match upload.complete().await {
            Ok(result) => {
                self.upload = None;
                Ok(self.uploaded(result))
            }
            Err(e) => {
                let mut error = self.map(e);
                if let Err(left_behind) = self.abort().await {
                    error.message = format!("{}; {}", error.message, left_behind.message);
                }
                Err(error)
            }
        }
    }

    fn uploaded(&self, result: PutResult) -> Uploaded {
        Uploaded {
            bytes: self.total,
            parts: self.parts.max(1),
            e_tag: result.e_tag,
            version: result.version,
        }
    }

    /// Stops the parts in flight and aborts the multipart upload, if any. The abort is what
    /// keeps orphaned parts from piling up (and being billed), so it is tried a few times on
    /// its own, whatever the store's retry budget: a pooled connection the failure just broke
    /// can fail the first attempt. Each attempt is bounded. When every attempt fails, the
    /// error says which multipart upload was left behind.
    async fn abort(&mut self) -> Result<(), Error> {
        self.in_flight.clear();
        self.pending.clear();
        self.pending_bytes = 0;
        let Some(mut upload) = self.upload.take() else {
            return Ok(());
        };
        let mut last = String::new();
        for attempt in 0..ABORT_ATTEMPTS {
            match tokio::time::timeout(ABORT_ATTEMPT_TIMEOUT, upload.abort()).await {
                Ok(Ok(())) => return Ok(()),
                Ok(Err(e)) => last = e.to_string(),
                Err(_) => last = format!("no answer within {ABORT_ATTEMPT_TIMEOUT:?}"),
            }
            tokio::time::sleep(Duration::from_millis(100 << attempt)).await;
        }
        let id = self
            .upload_id
            .as_deref()
            .unwrap_or("(id not known for this store)");
        Err(Error::new(
            crate::ErrorKind::Network,
            format!(
                "multipart upload {id} of {} was left behind: its abort failed ({last})",
                self.path
            ),
        )
        .with_path(self.path.clone()))
    }
}

/// The store's id of a multipart upload. object_store keeps it private; its `Debug` form
/// shows it as `upload_id: "..."` (S3) or `multipart_id: "..."` (GCS). Azure's blocks have
/// no upload id (uncommitted blocks expire on their own). Only the id is taken from that
/// text: it also holds the client, which is never shown.
fn upload_id(upload: &dyn MultipartUpload) -> Option<String> {
    let debug = format!("{upload:?}");
    ["upload_id: \"", "multipart_id: \""]
        .iter()
        .find_map(|field| {
            let start = debug.find(field)? + field.len();
            let len = debug[start..].find('"')?;
            Some(debug[start..start + len].to_string())
        })
}
