//! A handle on a spawned task: collecting it (the caller died) or releasing it aborts the task.

use rustler::{Atom, Resource, ResourceArc};
use tokio::task::AbortHandle;

pub struct TaskResource(AbortHandle);

#[rustler::resource_impl]
impl Resource for TaskResource {}

impl TaskResource {
    pub fn new(handle: AbortHandle) -> ResourceArc<TaskResource> {
        ResourceArc::new(TaskResource(handle))
    }
}

impl Drop for TaskResource {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// Aborts the task if it still runs. The caller holds the handle until it has its answer, so
/// the handle stays alive exactly as long as someone waits.
#[rustler::nif]
fn task_release(task: ResourceArc<TaskResource>) -> Atom {
    task.0.abort();
    crate::atoms::ok()
}
