//! The pull-stream core (architecture §2), written once for downloads, listings and scans.
//!
//! A producer task fills a bounded buffer through a [`Sink`]; when the buffer is full the task
//! waits, so it stops reading from the network. The consumer calls [`PullStream::pull`], which
//! never blocks: it returns the next event at once, or arms a one-shot [`Waiter`] and returns
//! [`Pulled::Pending`]. The next event (an item, the end, or an error) then goes straight to
//! that waiter from the producer's thread. Nothing is delivered that was not asked for.
//!
//! Dropping or closing the [`PullStream`] aborts the task and frees the buffer.

use crate::error::Error;
use crate::stats::{self, Counted};
use futures_util::FutureExt;
use std::collections::VecDeque;
use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio::sync::Notify;
use tokio::task::AbortHandle;

/// Anything a stream buffers: it says how many bytes it holds, for the byte bound and stats.
pub trait Weighed: Send + 'static {
    /// Called once per item sent (a page's weight walks all its values).
    fn weight(&self) -> usize;
}

impl Weighed for Vec<u8> {
    fn weight(&self) -> usize {
        self.len()
    }
}

/// How much a stream may buffer ahead of its consumer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Bound {
    /// At most this many bytes (downloads). One item is always allowed, however large.
    Bytes(usize),
    /// At most this many items (pages of listings and scans). `Items(0)` buffers nothing
    /// ahead: a producer using `Sink::reserve` fetches only while a consumer waits.
    Items(usize),
}

/// What a consumer receives, one at a time.
#[derive(Debug)]
pub enum Event<T> {
    Item(T),
    Done,
    Error(Error),
}

impl<T> Event<T> {
    fn from_outcome(outcome: &Result<(), Error>) -> Self {
        match outcome {
            Ok(()) => Event::Done,
            Err(e) => Event::Error(e.clone()),
        }
    }
}

/// The answer of a non-blocking pull.
#[derive(Debug)]
pub enum Pulled<T> {
    Ready(Event<T>),
    /// Nothing yet: the waiter is armed and will receive the next event.
    Pending,
}

/// Receives exactly one event, on a producer thread. Returns false when the consumer is gone
/// (a dead process), which stops the stream.
pub trait Waiter<T>: Send {
    fn wake(self: Box<Self>, event: Event<T>) -> bool;
}

struct State<T: Weighed> {
    /// Each item with its weight, computed once.
    queue: VecDeque<(T, usize)>,
    bytes: usize,
    /// Set once the producer has finished; reported after the queue is drained.
    outcome: Option<Result<(), Error>>,
    /// Armed only while the queue is empty and no outcome is set.
    waiter: Option<Box<dyn Waiter<T>>>,
    closed: bool,
}

impl<T: Weighed> State<T> {
    fn has_room_for(&self, bound: Bound, weight: usize) -> bool {
        self.queue.is_empty()
            || match bound {
                Bound::Bytes(max) => self.bytes + weight <= max,
                Bound::Items(max) => self.queue.len() < max,
            }
    }

    /// Whether an item produced now would be taken without waiting: a consumer is waiting,
    /// or the buffer is below its bound. With `Items(0)` only a waiting consumer counts.
    fn has_demand(&self, bound: Bound) -> bool {
        self.waiter.is_some()
            || match bound {
                Bound::Bytes(max) => self.bytes < max,
                Bound::Items(max) => self.queue.len() < max,
            }
    }

    fn push(&mut self, item: T, weight: usize) {
        self.bytes += weight;
        self.queue.push_back((item, weight));
        stats::buffered(weight, 1, 1);
    }

    fn pop(&mut self) -> Option<T> {
        let (item, weight) = self.queue.pop_front()?;
        self.bytes -= weight;
        stats::buffered(weight, 1, -1);
        Some(item)
    }

    fn take_queue(&mut self) -> VecDeque<(T, usize)> {
        stats::buffered(self.bytes, self.queue.len(), -1);
        self.bytes = 0;
        std::mem::take(&mut self.queue)
    }
}

impl<T: Weighed> Drop for State<T> {
    fn drop(&mut self) {
        stats::buffered(self.bytes, self.queue.len(), -1);
    }
}

struct Shared<T: Weighed> {
    state: Mutex<State<T>>,
    /// Signalled whenever room is made (a pull) or the stream closes.
    room: Notify,
    bound: Bound,
}

impl<T: Weighed> Shared<T> {
    fn lock(&self) -> MutexGuard<'_, State<T>> {
        // A panic never happens while the lock is held (no user code runs under it), but if
        // one did, the state is still consistent: keep going rather than poison every caller.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn close(&self) {
        let (queue, waiter) = {
            let mut st = self.lock();
            st.closed = true;
            (st.take_queue(), st.waiter.take())
        };
        // Dropped outside the lock: freeing items may call into the VM's allocator. Buffered
        // items are freed on the runtime: a few pages of a scan take milliseconds to free, too
        // long for the NIF call (or the garbage collection) that closes the stream.
        if !queue.is_empty() {
            crate::runtime::spawn(async move { drop(queue) });
        }
        drop(waiter);
        self.room.notify_waiters();
    }
}

/// The producer's end of a stream. Cheap to clone, for producers made of several futures.
pub struct Sink<T: Weighed> {
    shared: Arc<Shared<T>>,
}

impl<T: Weighed> Clone for Sink<T> {
    fn clone(&self) -> Self {
        Sink {
            shared: self.shared.clone(),
        }
    }
}

impl<T: Weighed> Sink<T> {
    /// Hands an item to the consumer: straight to an armed waiter, else into the buffer, waiting
    /// for room when it is full. Fails with a `Cancelled` error once the consumer has closed
    /// the stream, so `?` stops the producer.
    pub async fn send(&self, item: T) -> Result<(), Error>
    where
        T: Send + 'static,
    {
        let weight = item.weight();
        loop {
            let room = self.shared.room.notified();
            tokio::pin!(room);
            // Registered before the check, so room made between the check and the await still
            // wakes us.
            room.as_mut().enable();
            let waiter = {
                let mut st = self.shared.lock();
                if st.closed {
                    return Err(Error::cancelled());
                }
                match st.waiter.take() {
                    Some(waiter) => Some(waiter),
                    None if st.has_room_for(self.shared.bound, weight) => {
                        st.push(item, weight);
                        return Ok(());
                    }
                    None => None,
                }
            };
            match waiter {
                // An armed waiter means the queue is empty: the item skips the buffer. It is
                // handed over (turned into a term and sent) on another task, so the producer
                // goes on reading meanwhile: encoding a page of 500 items takes about as long
                // as a request. The consumer pulls again only after receiving it, so order
                // holds; a dead consumer closes the stream, and the next send sees it.
                Some(waiter) => {
                    let shared = self.shared.clone();
                    crate::runtime::spawn(async move {
                        if !waiter.wake(Event::Item(item)) {
                            shared.close();
                        }
                    });
                    return Ok(());
                }
                None => room.await,
            }
        }
    }

    fn deliver(&self, waiter: Box<dyn Waiter<T>>, event: Event<T>) -> Result<(), Error> {
        if waiter.wake(event) {
            Ok(())
        } else {
            self.shared.close();
            Err(Error::cancelled())
        }
    }

    /// Waits until an item produced now would be taken without waiting (see
    /// [`Bound::Items`]). Producers whose every item costs a request (list pages, scan pages)
    /// call it before fetching, so nothing is fetched that no consumer asked for.
    pub async fn reserve(&self) -> Result<(), Error> {
        loop {
            let room = self.shared.room.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            {
                let st = self.shared.lock();
                if st.closed {
                    return Err(Error::cancelled());
                }
                if st.has_demand(self.shared.bound) {
                    return Ok(());
                }
            }
            room.await;
        }
    }

    /// Records how the producer ended. Later items are never accepted.
    fn finish(&self, outcome: Result<(), Error>) {
        let waiter = {
            let mut st = self.shared.lock();
            if st.closed || st.outcome.is_some() {
                return;
            }
            let event = Event::from_outcome(&outcome);
            st.outcome = Some(outcome);
            st.waiter.take().map(|w| (w, event))
        };
        if let Some((waiter, event)) = waiter {
            let _ = self.deliver(waiter, event);
        }
    }

    /// False for `Bound::Items(0)`: the consumer asked that nothing be fetched ahead of it.
    pub fn reads_ahead(&self) -> bool {
        self.shared.bound != Bound::Items(0)
    }

    /// True once the consumer has closed the stream.
    pub fn is_closed(&self) -> bool {
        self.shared.lock().closed
    }
}

/// The consumer's end of a stream. Dropping it stops the producer and frees the buffer.
pub struct PullStream<T: Weighed> {
    shared: Arc<Shared<T>>,
    task: AbortHandle,
    /// Released on close, so "open" counts streams neither closed nor collected.
    open: Mutex<Option<Counted>>,
}

/// Starts `producer` on the shared runtime, feeding a new stream bounded by `bound`.
///
/// The producer's result ends the stream: `Ok(())` as `Done`, an error as `Error`. A panic in
/// the producer becomes an `Internal` error event, never a lost stream.
pub fn spawn<T, F, Fut>(bound: Bound, producer: F) -> PullStream<T>
where
    T: Weighed + Send + 'static,
    F: FnOnce(Sink<T>) -> Fut,
    Fut: Future<Output = Result<(), Error>> + Send + 'static,
{
    let shared = Arc::new(Shared {
        state: Mutex::new(State {
            queue: VecDeque::new(),
            bytes: 0,
            outcome: None,
            waiter: None,
            closed: false,
        }),
        room: Notify::new(),
        bound,
    });
    let sink = Sink {
        shared: shared.clone(),
    };
    let work = producer(sink.clone());
    // `runtime::spawn` counts the task from now, so a stream dropped at once is still seen.
    let task = crate::runtime::spawn(async move {
        let outcome = match AssertUnwindSafe(work).catch_unwind().await {
            Ok(outcome) => outcome,
            Err(panic) => Err(Error::from_panic(panic.as_ref())),
        };
        sink.finish(outcome);
    });
    PullStream {
        shared,
        task: task.abort_handle(),
        open: Mutex::new(Some(Counted::open_stream())),
    }
}

impl<T: Weighed> PullStream<T> {
    /// Returns the next event at once, or arms the waiter made by `arm` and returns
    /// `Pending`. `arm` is called only when needed. After the end, every pull returns the
    /// same end again.
    pub fn pull(&self, arm: impl FnOnce() -> Box<dyn Waiter<T>>) -> Pulled<T> {
        let mut st = self.shared.lock();
        if let Some(item) = st.pop() {
            drop(st);
            self.shared.room.notify_waiters();
            return Pulled::Ready(Event::Item(item));
        }
        if let Some(outcome) = &st.outcome {
            return Pulled::Ready(Event::from_outcome(outcome));
        }
        if st.closed {
            return Pulled::Ready(Event::Error(Error::cancelled()));
        }
        st.waiter = Some(arm());
        drop(st);
        // A producer may be waiting for demand (`Sink::reserve`).
        self.shared.room.notify_waiters();
        Pulled::Pending
    }

    /// Removes an armed waiter. True if one was removed, so no event will be delivered to it;
    /// false if none was armed, meaning an event was already handed to it (or none was asked).
    pub fn disarm(&self) -> bool {
        let waiter = self.shared.lock().waiter.take();
        waiter.is_some()
    }

    /// Stops the producer and frees the buffer. Idempotent.
    pub fn close(&self) {
        self.task.abort();
        self.shared.close();
        self.open.lock().unwrap_or_else(|e| e.into_inner()).take();
    }

    /// Waits for the next event: for Rust consumers (tests, raw baselines).
    pub async fn next(&self) -> Event<T>
    where
        T: Send + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel();
        match self.pull(|| Box::new(OneshotWaiter(tx))) {
            Pulled::Ready(event) => event,
            Pulled::Pending => rx.await.unwrap_or(Event::Error(Error::cancelled())),
        }
    }
}

impl<T: Weighed> Drop for PullStream<T> {
    fn drop(&mut self) {
        self.close();
    }
}

struct OneshotWaiter<T>(tokio::sync::oneshot::Sender<Event<T>>);

impl<T: Send> Waiter<T> for OneshotWaiter<T> {
    fn wake(self: Box<Self>, event: Event<T>) -> bool {
        self.0.send(event).is_ok()
    }
}
