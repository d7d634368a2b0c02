//! A bridge's thread and its stop flag, shared by the export and import handles.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;

use crate::error::BridgeError;

/// A thread that runs until its stop flag is set; stopped and joined by
/// [`Worker::finish`] or when dropped.
#[derive(Debug)]
pub(crate) struct Worker {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<Result<(), BridgeError>>>,
}

impl Worker {
    /// Starts `body` on a thread named `name`, with the stop flag it must poll.
    pub(crate) fn spawn(
        name: &str,
        body: impl FnOnce(&AtomicBool) -> Result<(), BridgeError> + Send + 'static,
    ) -> Result<Worker, BridgeError> {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = Arc::clone(&stop);
        let thread = std::thread::Builder::new()
            .name(name.into())
            .spawn(move || body(&flag))
            .map_err(|e| BridgeError::Zenoh(format!("cannot start the {name} thread: {e}")))?;
        Ok(Worker {
            stop,
            thread: Some(thread),
        })
    }

    /// Whether the thread has ended (on its own, or after [`Worker::finish`]).
    pub(crate) fn is_finished(&self) -> bool {
        self.thread.as_ref().is_none_or(|t| t.is_finished())
    }

    /// Sets the stop flag, joins the thread and returns its result (once; `Ok` after).
    pub(crate) fn finish(&mut self) -> Result<(), BridgeError> {
        // Relaxed: the flag carries no data; the join below is what orders the thread's
        // work before the caller's next step.
        self.stop.store(true, Ordering::Relaxed);
        match self.thread.take() {
            Some(t) => t.join().map_err(|_| BridgeError::Panicked)?,
            None => Ok(()),
        }
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let _ = self.finish();
    }
}
