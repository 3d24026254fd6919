//! Process-wide counters, read by the `stats` NIF so tests can prove that nothing leaks.

use std::sync::atomic::{AtomicI64, Ordering::Relaxed};

static LIVE_TASKS: AtomicI64 = AtomicI64::new(0);
static OPEN_STREAMS: AtomicI64 = AtomicI64::new(0);
static BUFFERED_BYTES: AtomicI64 = AtomicI64::new(0);
static BUFFERED_ITEMS: AtomicI64 = AtomicI64::new(0);

/// A snapshot of the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Stats {
    /// Native tasks that are running or waiting: streams and their segment readers and
    /// hand-offs, upload actors, downloads to files, one-shot requests (dropped ones are not
    /// counted).
    pub live_tasks: i64,
    /// Pull-stream handles not yet closed or garbage collected.
    pub open_streams: i64,
    /// Bytes held in stream buffers, not yet pulled.
    pub buffered_bytes: i64,
    /// Items (chunks, pages) held in stream buffers, not yet pulled.
    pub buffered_items: i64,
}

pub fn snapshot() -> Stats {
    Stats {
        live_tasks: LIVE_TASKS.load(Relaxed),
        open_streams: OPEN_STREAMS.load(Relaxed),
        buffered_bytes: BUFFERED_BYTES.load(Relaxed),
        buffered_items: BUFFERED_ITEMS.load(Relaxed),
    }
}

pub(crate) fn buffered(bytes: usize, items: usize, sign: i64) {
    BUFFERED_BYTES.fetch_add(sign * bytes as i64, Relaxed);
    BUFFERED_ITEMS.fetch_add(sign * items as i64, Relaxed);
}

/// Adds one to a counter for as long as it lives.
pub(crate) struct Counted(&'static AtomicI64);

impl Counted {
    /// A live task; held inside the task's future.
    pub(crate) fn live_task() -> Self {
        Counted::new(&LIVE_TASKS)
    }

    /// An open stream handle; released on close or drop.
    pub(crate) fn open_stream() -> Self {
        Counted::new(&OPEN_STREAMS)
    }

    fn new(counter: &'static AtomicI64) -> Self {
        counter.fetch_add(1, Relaxed);
        Counted(counter)
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Relaxed);
    }
}
