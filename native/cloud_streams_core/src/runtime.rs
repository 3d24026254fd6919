//! The one tokio runtime shared by every stream and operation.
//!
//! Built on first use so that loading the NIF stays cheap. Its worker threads are not BEAM
//! schedulers, which is what allows them to send messages to processes (DESIGN §4).

use std::future::Future;
use std::sync::OnceLock;
use tokio::runtime::{Builder, Runtime};
use tokio::task::JoinHandle;

static RUNTIME: OnceLock<Runtime> = OnceLock::new();

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
            .enable_all()
            .build()
            .expect("cloud_streams: cannot start the tokio runtime")
    })
}

/// Spawns a future on the shared runtime. Every task is counted in `stats` (`live_tasks`)
/// from now until it ends or is dropped, so a task dropped before its first poll is seen.
pub fn spawn<F>(future: F) -> JoinHandle<F::Output>
where
    F: Future + Send + 'static,
    F::Output: Send + 'static,
{
    let live = crate::stats::Counted::live_task();
    get().spawn(async move {
        let _live = live;
        future.await
    })
}
