//! The pull-stream resource: one per open stream, whatever it streams (chunks, pages).
//!
//! `stream_pull/2` returns `{:item, x}`, `:done`, `{:error, e}` or `:pending`. On `:pending`
//! the next event is sent once to the calling process as `{tag, event}`, from a tokio thread,
//! or, for an item encoded ahead ([`Encoded`]) that was ready, by the pull itself. Pages always
//! come that way (see [`EncodeItem::ENCODES_IN_PULL`]); chunks come either way.

use crate::{atoms, errors};
use cloud_streams_core::pull::{Event, PullStream, Pulled, Waiter, Weighed};
use cloud_streams_core::{runtime, stats};
use rustler::env::SavedTerm;
use rustler::{Encoder, Env, LocalPid, OwnedEnv, Resource, ResourceArc, Term};
use std::panic::{catch_unwind, AssertUnwindSafe};

/// An item that can become a term: a chunk, a page of items.
pub trait EncodeItem: Weighed + Send + 'static {
    /// True when encoding takes constant time (a finished binary), so a pull NIF may return
    /// the item itself. Other items (pages of up to thousands of entries, whose encoding takes
    /// milliseconds) are encoded on a tokio thread, ahead ([`Encoded`]) or when sent, which
    /// keeps every pull NIF call short.
    const ENCODES_IN_PULL: bool = false;
    fn encode<'a>(self, env: Env<'a>) -> Term<'a>;

    /// The item itself when it is already encoded ([`Encoded`]): then it is sent in its own
    /// env, from the pull that finds it ready or from the tokio thread that makes it.
    fn into_encoded(self) -> Result<Encoded, Self>
    where
        Self: Sized,
    {
        Err(self)
    }
}

/// An item encoded where it is made (its stream's tokio task), into an env of its own. A pull
/// that finds it ready sends that env as the message (`enif_send` moves its heap to the
/// receiver: no copy, however large the term), without a hop to a tokio thread, so the
/// consumer never waits for an encoding; the memory the term came from (a page's decoded
/// items) is freed by the thread that allocated it, at once.
pub struct Encoded {
    env: OwnedEnv,
    term: SavedTerm,
    weight: usize,
}

impl Encoded {
    /// `weight` is that of what was encoded (what the stream's buffer bound counts).
    pub fn new(weight: usize, encode: impl for<'a> FnOnce(Env<'a>) -> Term<'a>) -> Self {
        let env = OwnedEnv::new();
        let term = env.run(|own| env.save(encode(own)));
        Encoded { env, term, weight }
    }

    /// Sends `{tag, {:item, term}}` to `pid` (the tag is copied in: a reference, a few words).
    /// `caller` is the env of the NIF call sending, which `enif_send` requires on a scheduler
    /// thread; `None` on a tokio thread.
    fn send(self, caller: Option<Env<'_>>, pid: &LocalPid, tag: Term<'_>) -> bool {
        let (msg_env, message) = self.env.run(|own| {
            let message = (tag.in_env(own), (atoms::item(), self.term.load(own)));
            (own.as_c_arg(), message.encode(own).as_c_arg())
        });
        let caller = caller.map_or(std::ptr::null_mut(), |env| env.as_c_arg());
        // SAFETY: `message` is a term of `msg_env`, a process-independent env; a successful
        // send leaves it empty, and `self.env` frees it when dropped here either way.
        unsafe { rustler::sys::enif_send(caller, pid.as_c_arg(), msg_env, message) == 1 }
    }
}

impl Weighed for Encoded {
    fn weight(&self) -> usize {
        self.weight
    }
}

impl EncodeItem for Encoded {
    fn encode<'a>(self, env: Env<'a>) -> Term<'a> {
        self.env.run(|own| self.term.load(own).in_env(env))
    }

    fn into_encoded(self) -> Result<Encoded, Self> {
        Ok(self)
    }
}

/// The type-erased face of a `PullStream<T>`, so one resource type serves every item type.
trait ErasedStream: Send + Sync + std::panic::RefUnwindSafe {
    fn pull<'a>(&self, env: Env<'a>, tag: Term<'a>) -> Term<'a>;
    fn disarm(&self) -> bool;
    fn close(&self);
}

impl<T: EncodeItem> ErasedStream for PullStream<T> {
    fn pull<'a>(&self, env: Env<'a>, tag: Term<'a>) -> Term<'a> {
        match PullStream::pull(self, || Box::new(ProcessWaiter::new(env, tag))) {
            // Handed over as if a waiter had been armed: `:pending`, then one message. Nothing
            // is armed, so a `disarm` after a timeout reports the item as on its way, which it
            // is. A dead process drops the message; its handle is collected with it.
            Pulled::Ready(Event::Item(item)) if !T::ENCODES_IN_PULL => {
                match item.into_encoded() {
                    // To the caller itself, which is alive: the send cannot fail.
                    Ok(encoded) => {
                        encoded.send(Some(env), &env.pid(), tag);
                    }
                    Err(item) => {
                        let waiter = Box::new(ProcessWaiter::new(env, tag));
                        runtime::spawn(async move { Waiter::wake(waiter, Event::Item(item)) });
                    }
                }
                atoms::pending().encode(env)
            }
            Pulled::Ready(event) => encode_event(env, event),
            Pulled::Pending => atoms::pending().encode(env),
        }
    }

    fn disarm(&self) -> bool {
        PullStream::disarm(self)
    }

    fn close(&self) {
        PullStream::close(self)
    }
}

pub struct StreamResource(Box<dyn ErasedStream>);

#[rustler::resource_impl]
impl Resource for StreamResource {}

impl StreamResource {
    pub fn new<T: EncodeItem>(stream: PullStream<T>) -> ResourceArc<StreamResource> {
        ResourceArc::new(StreamResource(Box::new(stream)))
    }
}

fn encode_event<'a, T: EncodeItem>(env: Env<'a>, event: Event<T>) -> Term<'a> {
    match event {
        Event::Item(item) => (atoms::item(), item.encode(env)).encode(env),
        Event::Done => atoms::done().encode(env),
        Event::Error(error) => (atoms::error(), errors::encode(env, &error)).encode(env),
    }
}

/// Waits for one event on behalf of a process. The tag lives in the waiter's own env and is
/// loaded into the message in that same env, just before it is sent (and the env cleared).
struct ProcessWaiter {
    pid: LocalPid,
    env: OwnedEnv,
    tag: SavedTerm,
}

impl ProcessWaiter {
    fn new(env: Env<'_>, tag: Term<'_>) -> Self {
        let owned = OwnedEnv::new();
        let tag = owned.save(tag);
        ProcessWaiter {
            pid: env.pid(),
            env: owned,
            tag,
        }
    }
}

impl<T: EncodeItem> Waiter<T> for ProcessWaiter {
    // Called on tokio threads only: `send_and_clear` panics on a scheduler thread. A panic
    // while encoding the event becomes an error event: the consumer, whose wait was handed
    // this delivery, must get a message.
    fn wake(mut self: Box<Self>, event: Event<T>) -> bool {
        let pid = self.pid;
        let sent = catch_unwind(AssertUnwindSafe(|| {
            let event = match event {
                Event::Item(item) => match item.into_encoded() {
                    Ok(encoded) => {
                        return self
                            .env
                            .run(|own| encoded.send(None, &pid, self.tag.load(own)))
                    }
                    Err(item) => Event::Item(item),
                },
                other => other,
            };
            let tag = &self.tag;
            self.env
                .send_and_clear(&pid, |env| (tag.load(env), encode_event(env, event)))
                .is_ok()
        }));
        sent.unwrap_or_else(|panic| {
            let error = cloud_streams_core::Error::from_panic(panic.as_ref());
            let mut message = OwnedEnv::new();
            message
                .send_and_clear(&pid, |env| {
                    let tag = self.env.run(|own| self.tag.load(own).in_env(env));
                    (tag, (atoms::error(), errors::encode(env, &error)))
                })
                .is_ok()
        })
    }
}

#[rustler::nif]
fn stream_pull<'a>(env: Env<'a>, stream: ResourceArc<StreamResource>, tag: Term<'a>) -> Term<'a> {
    stream.0.pull(env, tag)
}

#[rustler::nif]
fn stream_disarm(stream: ResourceArc<StreamResource>) -> bool {
    stream.0.disarm()
}

#[rustler::nif]
fn stream_close(stream: ResourceArc<StreamResource>) -> rustler::Atom {
    stream.0.close();
    atoms::ok()
}

#[rustler::nif]
fn stats(env: Env<'_>) -> Term<'_> {
    let s = stats::snapshot();
    rustler::term_map!(env, {
        rustler::Atom::from_str(env, "live_tasks").unwrap() => s.live_tasks,
        rustler::Atom::from_str(env, "open_streams").unwrap() => s.open_streams,
        rustler::Atom::from_str(env, "buffered_bytes").unwrap() => s.buffered_bytes,
        rustler::Atom::from_str(env, "buffered_items").unwrap() => s.buffered_items,
    })
}
