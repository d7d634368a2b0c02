//! Async waits of the named objects: [`NamedEvent::wait_async`] and
//! [`NamedSemaphore::wait_async`], the caller-memory primitives' futures over the named
//! segment.

use super::{NamedEvent, NamedSemaphore};
use crate::sync::{EventWait, SemaphoreWait};

impl NamedEvent {
    /// Waits until the event is set without blocking the thread; see
    /// [`Event::wait_async`](crate::sync::Event::wait_async).
    ///
    /// # Cancel safety
    ///
    /// This method is cancel safe: waiting takes nothing, and dropping the future removes
    /// its registration.
    pub fn wait_async(&self) -> EventWait<'_> {
        self.event().wait_async()
    }
}

impl NamedSemaphore {
    /// Takes a token without blocking the thread; see
    /// [`Semaphore::wait_async`](crate::sync::Semaphore::wait_async).
    ///
    /// # Cancel safety
    ///
    /// This method is cancel safe: a token is taken only inside a poll that returns
    /// `Ready`, so dropping the future takes none.
    pub fn wait_async(&self) -> SemaphoreWait<'_> {
        self.semaphore().wait_async()
    }
}
