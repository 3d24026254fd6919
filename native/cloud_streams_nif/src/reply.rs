//! Operations that answer by message: the NIF spawns the work on the tokio runtime and
//! returns at once; the result reaches the calling process as `{tag, {:ok, value}}` or
//! `{tag, {:error, error_map}}`. No NIF call waits on the network (DESIGN §2).

use crate::{atoms, errors};
use cloud_streams_core::{runtime, Error};
use futures_util::FutureExt;
use rustler::{Atom, Encoder, Env, OwnedEnv, Term};
use std::future::Future;
use std::panic::{catch_unwind, AssertUnwindSafe};

/// Runs `work` on the runtime and sends its result, encoded by `encode`, to the caller. A
/// panic in the work or in the encoding becomes an `:internal` error reply: the caller is
/// always answered.
pub fn spawn<T, F, E>(env: Env<'_>, tag: Term<'_>, work: F, encode: E) -> Atom
where
    T: Send + 'static,
    F: Future<Output = Result<T, Error>> + Send + 'static,
    E: for<'a> FnOnce(Env<'a>, T) -> Term<'a> + Send + 'static,
{
    let pid = env.pid();
    let mut message_env = OwnedEnv::new();
    let saved_tag = message_env.save(tag);
    runtime::spawn(async move {
        let result = AssertUnwindSafe(work)
            .catch_unwind()
            .await
            .unwrap_or_else(|panic| Err(Error::from_panic(panic.as_ref())));
        let sent = catch_unwind(AssertUnwindSafe(|| {
            message_env.send_and_clear(&pid, |env| {
                let body = match result {
                    Ok(value) => (atoms::ok(), encode(env, value)).encode(env),
                    Err(error) => (atoms::error(), errors::encode(env, &error)).encode(env),
                };
                (saved_tag.load(env), body)
            })
        }));
        if let Err(panic) = sent {
            // The encoding panicked: answer with the panic, from a fresh env.
            let error = Error::from_panic(panic.as_ref());
            let mut fallback = OwnedEnv::new();
            let _ = fallback.send_and_clear(&pid, |env| {
                let tag = message_env.run(|own| saved_tag.load(own).in_env(env));
                (tag, (atoms::error(), errors::encode(env, &error)))
            });
        }
    });
    atoms::ok()
}
