//! Async waits: [`Event::wait_async`] and [`Semaphore::wait_async`], woken by the
//! process-wide [`waiter`](crate::waiter) thread instead of sleeping on the futex word.

use core::future::Future;
use core::pin::Pin;
use core::sync::atomic::Ordering::SeqCst;
use core::task::{Context, Poll};

use super::semaphore::RECHECK;
use super::{Event, Semaphore};
use crate::sys::futex;
use crate::waiter::Registration;

impl<'a> Event<'a> {
    /// Waits until the event is set without blocking the thread: ready at once if it is
    /// set, else woken (through the [waiter thread](crate::waiter)) by the `set` of any
    /// thread or process, the Python peer's included. Works in any async runtime.
    ///
    /// # Cancel safety
    ///
    /// This method is cancel safe: waiting takes nothing, and dropping the future removes
    /// its registration.
    pub fn wait_async(&self) -> EventWait<'a> {
        EventWait {
            event: *self,
            reg: Registration::new(),
        }
    }
}

/// The future of [`Event::wait_async`] (and
/// [`NamedEvent::wait_async`](crate::NamedEvent::wait_async)).
#[must_use = "futures do nothing unless polled"]
#[derive(Debug)]
pub struct EventWait<'a> {
    event: Event<'a>,
    reg: Registration,
}

impl Future for EventWait<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        // Nothing to announce: a setter that moves the word from 0 always wakes every
        // waiter (fastipc's and the Python peer's), so registering the value 0 seen here
        // is enough; if the word left 0 since, the waiter thread's futex_waitv returns at
        // once.
        if this.event.is_set() {
            this.reg.disarm();
            return Poll::Ready(());
        }
        if !this
            .reg
            .arm(this.event.word(), 0, this.event.scope, None, cx.waker())
        {
            cx.waker().wake_by_ref();
        }
        Poll::Pending
    }
}

impl<'a> Semaphore<'a> {
    /// Takes a token without blocking the thread: ready at once if one is available, else
    /// woken (through the [waiter thread](crate::waiter)) by posts. Works in any async
    /// runtime.
    ///
    /// While pending, the future counts as a registered sleeper of the semaphore (module
    /// docs of [`semaphore`](super::semaphore)), so every post wakes; it also re-checks
    /// every [`SEMAPHORE_RECHECK_INTERVAL`](super::SEMAPHORE_RECHECK_INTERVAL), for
    /// posters that do not wake (the Python peer when the count was not 0).
    ///
    /// # Cancel safety
    ///
    /// This method is cancel safe: a token is taken only inside a poll that returns
    /// `Ready`, so dropping the future takes none. Dropping a pending future that was
    /// woken for a token passes that wake-up on to another sleeper, as a blocking waiter
    /// that takes a token and leaves more does.
    pub fn wait_async(&self) -> SemaphoreWait<'a> {
        SemaphoreWait {
            sem: *self,
            registered: false,
            reg: Registration::new(),
        }
    }
}

/// The future of [`Semaphore::wait_async`] (and
/// [`NamedSemaphore::wait_async`](crate::NamedSemaphore::wait_async)).
#[must_use = "futures do nothing unless polled"]
#[derive(Debug)]
pub struct SemaphoreWait<'a> {
    sem: Semaphore<'a>,
    /// Whether this future counts itself in the semaphore's `sleepers`.
    registered: bool,
    reg: Registration,
}

impl SemaphoreWait<'_> {
    /// Leaves the semaphore's `sleepers` count, if this future is in it.
    fn unregister(&mut self) {
        if self.registered {
            self.registered = false;
            self.sem.sleepers().fetch_sub(1, SeqCst);
        }
    }
}

impl Future for SemaphoreWait<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let waited = this.registered;
        loop {
            if this.sem.try_wait() {
                this.unregister();
                this.reg.disarm();
                if waited {
                    this.sem.hdr.stamp_last_acquired();
                }
                return Poll::Ready(());
            }
            if !this.registered {
                // The blocking waiter's registration (semaphore.rs, "No lost wake-ups"):
                // `sleepers += 1` and the re-read of `count` are SeqCst, as the poster's
                // update of `count` and its read of `sleepers`: either the re-read sees
                // the token, or the poster sees this sleeper and wakes the count word.
                this.sem.sleepers().fetch_add(1, SeqCst);
                this.registered = true;
            }
            if this.sem.count().load(SeqCst) == 0 {
                break;
            }
            // A token appeared (or was taken again): try again.
        }
        if !this.reg.arm(
            this.sem.count(),
            0,
            this.sem.scope,
            Some(RECHECK),
            cx.waker(),
        ) {
            cx.waker().wake_by_ref();
        }
        Poll::Pending
    }
}

impl Drop for SemaphoreWait<'_> {
    fn drop(&mut self) {
        if self.registered {
            self.unregister();
            // This future may have been woken by a post and dropped before taking the
            // token: wake another sleeper so that the token does not sit unnoticed.
            if self.sem.count().load(SeqCst) > 0 && self.sem.sleepers().load(SeqCst) > 0 {
                futex::wake(self.sem.count(), 1, self.sem.scope);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::region::Region;
    use crate::test_util::{block_on, poll_once};
    use std::time::Duration;

    const LIMIT: Duration = Duration::from_secs(30);

    #[cfg_attr(
        miri,
        ignore = "waits through the waiter thread, whose futex_waitv Miri does not implement"
    )]
    #[test]
    fn an_event_future_is_woken_by_set_from_another_thread() {
        let r = Region::heap(4);
        let e = Event::init(r.mem()).unwrap();
        let mut f = e.wait_async();
        assert_eq!(poll_once(&mut f), Poll::Pending);
        std::thread::scope(|s| {
            s.spawn(|| {
                std::thread::sleep(Duration::from_millis(20));
                e.set();
            });
            block_on(f, LIMIT);
        });
        // Already set: ready at once, registers nothing.
        let mut f = e.wait_async();
        assert_eq!(poll_once(&mut f), Poll::Ready(()));
        assert!(!f.reg.is_armed());
    }

    #[cfg_attr(
        miri,
        ignore = "waits through the waiter thread, whose futex_waitv Miri does not implement"
    )]
    #[test]
    fn a_dropped_event_future_leaves_no_registration() {
        let r = Region::heap(4);
        let e = Event::init(r.mem()).unwrap();
        let mut f = e.wait_async();
        assert_eq!(poll_once(&mut f), Poll::Pending);
        let armed = f.reg.probe();
        assert!(armed());
        drop(f);
        assert!(!armed());
    }

    #[cfg_attr(
        miri,
        ignore = "waits through the waiter thread, whose futex_waitv Miri does not implement"
    )]
    #[test]
    fn semaphore_futures_take_one_token_each_and_leave_the_sleeper_count() {
        let r = Region::heap(64);
        let sem = Semaphore::init(r.mem(), 0).unwrap();
        let mut a = sem.wait_async();
        let mut b = sem.wait_async();
        assert_eq!(poll_once(&mut a), Poll::Pending);
        assert_eq!(poll_once(&mut b), Poll::Pending);
        assert_eq!(sem.sleepers().load(SeqCst), 2);
        std::thread::scope(|s| {
            s.spawn(|| {
                std::thread::sleep(Duration::from_millis(20));
                sem.post(1).unwrap();
                std::thread::sleep(Duration::from_millis(20));
                sem.post(1).unwrap();
            });
            block_on(a, LIMIT);
            block_on(b, LIMIT);
        });
        assert_eq!(sem.value(), 0);
        assert_eq!(sem.sleepers().load(SeqCst), 0);
        // Dropping a pending future takes no token and leaves the count.
        let mut c = sem.wait_async();
        assert_eq!(poll_once(&mut c), Poll::Pending);
        drop(c);
        assert_eq!(sem.sleepers().load(SeqCst), 0);
        sem.post(1).unwrap();
        assert_eq!(sem.value(), 1);
        let mut d = sem.wait_async();
        assert_eq!(poll_once(&mut d), Poll::Ready(()));
        assert_eq!(sem.value(), 0);
    }
}
