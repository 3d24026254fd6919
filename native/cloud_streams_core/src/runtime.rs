//! The one tokio runtime shared by every stream and operation.
//!
//! Built on first use so that loading the NIF stays cheap. Its worker threads are not BEAM
//! schedulers, which is what allows them to send messages to processes (architecture §4).

use crate::stats::Counted;
use std::future::Future;
use std::sync::OnceLock;
use tokio::runtime::{Builder, Runtime};
use tokio::task::JoinHandle;

static RUNTIME: OnceLock<Runtime> = OnceLock::new();

thread_local! {
    static ON_RUNTIME_THREAD: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// True on the runtime's own threads (workers and blocking pool), where messages may be sent
/// to processes; false on BEAM schedulers, even inside a runtime context (`enter`).
pub fn on_runtime_thread() -> bool {
    ON_RUNTIME_THREAD.with(|on| on.get())
}

/// The shared runtime, built on first call.
pub fn get() -> &'static Runtime {
    RUNTIME.get_or_init(|| {
        let threads = std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
            .max(2);
        Builder::new_multi_thread()
            .worker_threads(threads)
            .thread_name("cloud-streams")
            .on_thread_start(|| ON_RUNTIME_THREAD.with(|on| on.set(true)))
            .enable_all()
            .build()
            .expect("cloud_streams: cannot start the tokio runtime")
    })
}

/// Spawns a future on the shared runtime. Every task spawned here is counted in
/// `stats::snapshot().live_tasks` from this call until its future is dropped (finished or
/// aborted), so a task aborted before its first poll is still seen.
pub fn spawn<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let live = Counted::live_task();
    get().spawn(async move {
        let _live = live;
        future.await
    })
}
