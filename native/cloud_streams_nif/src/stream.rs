//! The pull-stream resource: one per open stream, whatever it streams (chunks, pages).
//!
//! `stream_pull/2` returns `{:item, x}`, `:done`, `{:error, e}` or `:pending`. On `:pending`
//! the next event is sent once to the calling process as `{tag, event}`, from a tokio thread.
//! Pages always come that way (see [`EncodeItem::ENCODES_IN_PULL`]); chunks come either way.

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
    /// milliseconds) are encoded and sent from a tokio thread, which keeps every pull NIF
    /// call short.
    const ENCODES_IN_PULL: bool = false;
    fn encode<'a>(self, env: Env<'a>) -> Term<'a>;
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
                let waiter = Box::new(ProcessWaiter::new(env, tag));
                runtime::spawn(async move { Waiter::wake(waiter, Event::Item(item)) });
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
