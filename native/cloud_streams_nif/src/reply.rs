//! Answers by message: the result of an operation reaches the calling process as
//! `{tag, {:ok, value}}` or `{tag, {:error, error_map}}`. No NIF call waits on the network
//! (DESIGN §2): the NIF spawns the work, or hands a [`Replier`] to a task, and returns.

use crate::{atoms, errors};
use cloud_streams_core::{runtime, Error};
use futures_util::FutureExt;
use rustler::env::SavedTerm;
use rustler::{Atom, Encoder, Env, LocalPid, OwnedEnv, Term};
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Sends one answer to the process that made the NIF call. Use on tokio threads only
/// (`send_and_clear` panics on a scheduler thread).
pub struct Replier {
    pid: LocalPid,
    env: OwnedEnv,
    tag: SavedTerm,
}

impl Replier {
    pub fn new(env: Env<'_>, tag: Term<'_>) -> Self {
        let owned = OwnedEnv::new();
        let tag = owned.save(tag);
        Replier {
            pid: env.pid(),
            env: owned,
            tag,
        }
    }

    /// Sends the result. A panic while encoding becomes an `:internal` error answer: the
    /// caller is always answered.
    pub fn send<T, E>(mut self, result: Result<T, Error>, encode: E)
    where
        E: for<'a> FnOnce(Env<'a>, T) -> Term<'a>,
    {
        let (pid, tag) = (self.pid, self.tag.clone());
        let sent = catch_unwind(AssertUnwindSafe(|| {
            self.env.send_and_clear(&pid, |env| {
                let body = match result {
                    Ok(value) => (atoms::ok(), encode(env, value)).encode(env),
                    Err(error) => (atoms::error(), errors::encode(env, &error)).encode(env),
                };
                (tag.load(env), body)
            })
        }));
        if let Err(panic) = sent {
            let error = Error::from_panic(panic.as_ref());
            let mut fallback = OwnedEnv::new();
            let _ = fallback.send_and_clear(&pid, |env| {
                let tag = self.env.run(|own| self.tag.load(own).in_env(env));
                (tag, (atoms::error(), errors::encode(env, &error)))
            });
        }
    }

    /// This replier as a boxed callback, for tasks that answer from their own thread.
    pub fn into_callback<T, E>(self, encode: E) -> Box<dyn FnOnce(Result<T, Error>) + Send>
    where
        T: 'static,
        E: for<'a> FnOnce(Env<'a>, T) -> Term<'a> + Send + 'static,
    {
        Box::new(move |result| self.send(result, encode))
    }
}

/// Encodes the `()` of an operation that returns nothing as `:ok`.
pub fn unit(env: Env<'_>, _: ()) -> Term<'_> {
    atoms::ok().encode(env)
}

/// Runs `work` on the runtime and answers with its result, encoded by `encode`. A panic in
/// the work becomes an `:internal` error answer.
pub fn spawn<T, F, E>(env: Env<'_>, tag: Term<'_>, work: F, encode: E) -> Atom
where
    T: Send + 'static,
    F: Future<Output = Result<T, Error>> + Send + 'static,
    E: for<'a> FnOnce(Env<'a>, T) -> Term<'a> + Send + 'static,
{
    let replier = Replier::new(env, tag);
    runtime::spawn(async move {
        let result = AssertUnwindSafe(work)
            .catch_unwind()
            .await
            .unwrap_or_else(|panic| Err(Error::from_panic(panic.as_ref())));
        replier.send(result, encode);
    });
    atoms::ok()
}

/// Sends several messages `{tag, term}` to one process: progress reports, then the answer.
/// The tag lives in its own env, since each send clears the message env (DESIGN §4); the
/// lock keeps messages in the order they were sent.
pub struct Notifier {
    pid: LocalPid,
    tag: std::sync::Mutex<(OwnedEnv, SavedTerm)>,
}

impl Notifier {
    pub fn new(env: Env<'_>, tag: Term<'_>) -> Self {
        let tag_env = OwnedEnv::new();
        let saved = tag_env.save(tag);
        Notifier {
            pid: env.pid(),
            tag: std::sync::Mutex::new((tag_env, saved)),
        }
    }

    /// Sends `{tag, build(env)}`. Tokio threads only.
    pub fn send<F>(&self, build: F)
    where
        F: for<'a> FnOnce(Env<'a>) -> Term<'a>,
    {
        let guard = self.tag.lock().unwrap_or_else(|e| e.into_inner());
        let (tag_env, saved) = &*guard;
        let mut message = OwnedEnv::new();
        let _ = message.send_and_clear(&self.pid, |env| {
            let tag = tag_env.run(|own| saved.load(own).in_env(env));
            (tag, build(env))
        });
    }

    /// Sends the final answer, `{tag, {:ok, value}}` or `{tag, {:error, map}}`.
    pub fn finish<T, E>(&self, result: Result<T, Error>, encode: E)
    where
        E: for<'a> FnOnce(Env<'a>, T) -> Term<'a>,
    {
        self.send(|env| match result {
            Ok(value) => (atoms::ok(), encode(env, value)).encode(env),
            Err(error) => (atoms::error(), errors::encode(env, &error)).encode(env),
        })
    }
}
