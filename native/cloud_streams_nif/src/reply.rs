//! Answers by message: the result of an operation reaches the calling process as
//! `{tag, {:ok, value}}` or `{tag, {:error, error_map}}`. No NIF call waits on the network
//! (architecture §2): the NIF spawns the work, or hands a [`Replier`] to a task, and returns.

use crate::task::TaskResource;
use crate::{atoms, errors};
use cloud_streams_core::{runtime, Error, ErrorKind};
use futures_util::FutureExt;
use rustler::env::SavedTerm;
use rustler::{Encoder, Env, LocalPid, OwnedEnv, ResourceArc, Term};
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Sends one answer to the process that made the NIF call, from any thread: an answer given
/// on a scheduler thread (where `send_and_clear` panics) is sent from the runtime.
///
/// A replier dropped without answering (its task was aborted, panicked past our guards, or
/// its owner forgot it) answers with an `:internal` error on drop, so a caller never waits
/// for an answer that cannot come.
pub struct Replier(Option<Addressee>);

/// Where an answer goes: the pid and the caller's tag, in an env of its own.
struct Addressee {
    pid: LocalPid,
    env: OwnedEnv,
    tag: SavedTerm,
}

impl Addressee {
    fn new(env: Env<'_>, tag: Term<'_>) -> Self {
        let owned = OwnedEnv::new();
        let tag = owned.save(tag);
        Addressee {
            pid: env.pid(),
            env: owned,
            tag,
        }
    }

    /// Sends `{tag, build(env)}`. A panic while building becomes an `:internal` error
    /// answer. Each message has an env of its own: sending clears it, and the tag's env must
    /// outlive every send.
    fn send<F>(&self, build: F)
    where
        F: for<'a> FnOnce(Env<'a>) -> Term<'a>,
    {
        let mut message = OwnedEnv::new();
        let sent = catch_unwind(AssertUnwindSafe(|| {
            message.send_and_clear(&self.pid, |env| (self.tag_in(env), build(env)))
        }));
        if let Err(panic) = sent {
            self.send_error(&Error::from_panic(panic.as_ref()));
        }
    }

    /// Sends `{tag, {:error, map}}`.
    fn send_error(&self, error: &Error) {
        let mut message = OwnedEnv::new();
        let _ = catch_unwind(AssertUnwindSafe(|| {
            message.send_and_clear(&self.pid, |env| {
                (
                    self.tag_in(env),
                    (atoms::error(), errors::encode(env, error)),
                )
            })
        }));
    }

    fn tag_in<'a>(&self, env: Env<'a>) -> Term<'a> {
        self.env.run(|own| self.tag.load(own).in_env(env))
    }
}

fn result_term<'a, T, E>(env: Env<'a>, result: Result<T, Error>, encode: E) -> Term<'a>
where
    E: FnOnce(Env<'a>, T) -> Term<'a>,
{
    match result {
        Ok(value) => (atoms::ok(), encode(env, value)).encode(env),
        Err(error) => (atoms::error(), errors::encode(env, &error)).encode(env),
    }
}

/// Runs `send` now on a runtime thread, else from a task on the runtime: answers can be
/// given (an upload that has ended answers at once) or dropped on a scheduler thread, where
/// sending panics.
fn on_runtime(send: impl FnOnce() + Send + 'static) {
    if runtime::on_runtime_thread() {
        send();
    } else {
        runtime::spawn(async move { send() });
    }
}

fn answer_on_runtime(addressee: Addressee, error: Error) {
    on_runtime(move || addressee.send_error(&error));
}

fn unanswered() -> Error {
    Error::new(
        ErrorKind::Internal,
        "the native operation ended without answering",
    )
}

impl Replier {
    pub fn new(env: Env<'_>, tag: Term<'_>) -> Self {
        Replier(Some(Addressee::new(env, tag)))
    }

    /// Sends the result. A panic while encoding becomes an `:internal` error answer: the
    /// caller is always answered.
    pub fn send<T, E>(mut self, result: Result<T, Error>, encode: E)
    where
        T: Send + 'static,
        E: for<'a> FnOnce(Env<'a>, T) -> Term<'a> + Send + 'static,
    {
        if let Some(addressee) = self.0.take() {
            on_runtime(move || addressee.send(|env| result_term(env, result, encode)));
        }
    }

    /// This replier as a boxed callback, for tasks that answer from their own thread.
    pub fn into_callback<T, E>(self, encode: E) -> Box<dyn FnOnce(Result<T, Error>) + Send>
    where
        T: Send + 'static,
        E: for<'a> FnOnce(Env<'a>, T) -> Term<'a> + Send + 'static,
    {
        Box::new(move |result| self.send(result, encode))
    }
}

impl Drop for Replier {
    fn drop(&mut self) {
        if let Some(addressee) = self.0.take() {
            answer_on_runtime(addressee, unanswered());
        }
    }
}

/// Encodes the `()` of an operation that returns nothing as `:ok`.
pub fn unit(env: Env<'_>, _: ()) -> Term<'_> {
    atoms::ok().encode(env)
}

/// Runs `work` on the runtime and answers with its result, encoded by `encode`. A panic in
/// the work becomes an `:internal` error answer. The caller owns the returned task handle:
/// releasing it or letting it be collected (the caller died) aborts the work, and the
/// aborted work still answers (with an `:internal` error, from the replier's drop).
pub fn spawn<T, F, E>(env: Env<'_>, tag: Term<'_>, work: F, encode: E) -> Spawned
where
    T: Send + 'static,
    F: Future<Output = Result<T, Error>> + Send + 'static,
    E: for<'a> FnOnce(Env<'a>, T) -> Term<'a> + Send + 'static,
{
    let replier = Replier::new(env, tag);
    let task = runtime::spawn(async move {
        let result = AssertUnwindSafe(work)
            .catch_unwind()
            .await
            .unwrap_or_else(|panic| Err(Error::from_panic(panic.as_ref())));
        replier.send(result, encode);
    });
    TaskResource::new(task.abort_handle())
}

/// What a NIF that spawns its work returns: the handle of that work.
pub type Spawned = ResourceArc<TaskResource>;

/// Sends several messages `{tag, term}` to one process: progress reports, then the answer.
/// Each send uses a fresh message env, since sending clears it; the lock keeps
/// messages in the order they were sent. Dropped before its answer (its task was aborted),
/// it answers with an `:internal` error, as a [`Replier`] does.
pub struct Notifier(std::sync::Mutex<Option<Addressee>>);

impl Notifier {
    pub fn new(env: Env<'_>, tag: Term<'_>) -> Self {
        Notifier(std::sync::Mutex::new(Some(Addressee::new(env, tag))))
    }

    /// Sends `{tag, build(env)}`, unless the answer was sent. Tokio threads only.
    pub fn send<F>(&self, build: F)
    where
        F: for<'a> FnOnce(Env<'a>) -> Term<'a>,
    {
        let guard = self.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(addressee) = guard.as_ref() {
            addressee.send(build);
        }
    }

    /// Sends the final answer, `{tag, {:ok, value}}` or `{tag, {:error, map}}`; nothing is
    /// sent after it.
    pub fn finish<T, E>(&self, result: Result<T, Error>, encode: E)
    where
        E: for<'a> FnOnce(Env<'a>, T) -> Term<'a>,
    {
        let taken = self.0.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(addressee) = taken {
            addressee.send(|env| result_term(env, result, encode));
        }
    }
}

impl Drop for Notifier {
    fn drop(&mut self) {
        let taken = self.0.get_mut().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(addressee) = taken {
            answer_on_runtime(addressee, unanswered());
        }
    }
}
