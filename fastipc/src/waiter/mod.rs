//! The process-wide async waiter: how a future learns that a futex word changed.
//!
//! A futex cannot be registered with epoll, so the futures of fastipc
//! ([`Consumer::recv_async`](crate::queue::Consumer::recv_async),
//! [`Event::wait_async`](crate::sync::Event::wait_async), ...) hand their word to
//! *waiter threads*: each sleeps in `futex_waitv(2)` (the crate-internal `sys/waitv.rs`)
//! on up to [`GROUP_WORDS`] registered words plus a private "bell" word of its own, and
//! wakes the registered [`Waker`]s when a word is woken or no longer
//! holds the value its future saw. There is no thread and no timer per future: one thread
//! serves up to 127 pending futures, and the threads are started lazily, when the
//! registrations outgrow the ones running (a process that never awaits has none). A
//! waiter thread with nothing registered sleeps without a timeout: idle, it costs nothing.
//!
//! # A registration
//!
//! A future that finds nothing to do *arms* its registration (`Registration`, crate-internal): (word, expected value,
//! futex scope, waker, optional re-poll interval). The waiter thread fires it — removes
//! it and wakes its waker — when
//! - the kernel wakes the thread through the word, or through another registration of the
//!   group with the same word and expected value (all such registrations fire together);
//! - the call fails with `EAGAIN` because some word of the group differed from its
//!   expected value (the kernel does not say which, and the thread never reads the words
//!   itself, below): every registration of the group fires, and the futures that find
//!   nothing new simply arm again;
//! - its re-poll interval has passed since it was armed (the thread's wait has a timeout
//!   equal to the earliest such moment of its group). An interval of 100 ms or more is
//!   rounded up by at most an eighth, to a grid common to the process, so that idle
//!   futures armed close together fire in one round of their thread.
//!
//! A fired future is polled by its executor, re-checks its condition, and either
//! completes or arms again. Dropping a future disarms it (a lock and a removal, no
//! syscall), so a cancelled wait leaves no registration behind.
//!
//! # Why no wake-up is lost
//!
//! The future reads the word's value *before* its final check of the condition (for a
//! queue: `wake_seq` before raising the "waiters present" flag, the blocking consumer's
//! protocol in `queue/raw.rs`, "Wake protocol"), and registers that value. A waker that
//! changes the condition afterwards changes the word and issues `FUTEX_WAKE` (the
//! queue's producers do so because they find the flag set). Either the waiter thread is
//! already asleep on the word in the kernel, and the wake reaches it; or it enters
//! `futex_waitv` later, and the kernel then finds the word different from the registered
//! value and returns `EAGAIN` at once. The kernel checks the values and queues the
//! thread atomically with respect to `FUTEX_WAKE` (its hash-bucket lock), exactly as for
//! a blocking `FUTEX_WAIT`.
//!
//! New registrations reach a thread that is already asleep through its bell: every arm
//! (and every change of a registration's word or value) happens under the table's mutex,
//! increments the bell of the registration's group, and, if the group's thread announced
//! (under the same mutex) that it is about to sleep, clears that announcement and wakes
//! the bell. The thread reads the bell under the mutex together with the registrations it
//! gathers and passes that value to `futex_waitv` as the bell's expected value, so an
//! arm made after the gathering either finds the thread's announcement and wakes it, or
//! changes the bell before the kernel compares it: the call returns at once and the
//! thread gathers again. Only the first arm after the thread announced its sleep makes a
//! syscall.
//!
//! # Memory safety: the thread never reads the words
//!
//! The thread hands each word's *address* to the kernel and never dereferences it. A
//! future that is leaked (`mem::forget`) instead of dropped leaves its registration in
//! the table after the memory holding the word may have been unmapped or reused. The
//! kernel then fails the call with `EFAULT` (the thread fires every registration of the
//! group, which removes the stale one), compares unrelated bytes (a spurious `EAGAIN`),
//! or sleeps on an unrelated futex key (a spurious wake-up or a re-poll timeout). None of
//! this is undefined behaviour, and none of it writes memory: a futex wait only reads
//! the word. This is why the registrations hold no `Arc` of the mapping, and why the
//! caller-memory [`Event`](crate::sync::Event) and [`Semaphore`](crate::sync::Semaphore)
//! can have futures too.
//!
//! # Re-polling: peers that never wake
//!
//! C++ and Python queue producers publish without waking anyone, and register nowhere.
//! A queue receive therefore arms with a re-poll interval chosen by its consumer
//! (`Watch::async_repoll` in queue/typed/watch.rs, documented on
//! [`Consumer::recv_async`](crate::queue::Consumer::recv_async)): the consumer's
//! [`WaitStrategy::poll`](crate::queue::WaitStrategy::poll) (1 ms by default) wherever
//! such a producer may publish (a queue without endpoint table, or where no fastipc
//! producer ever registered, or a consumer that declared
//! [`WaitStrategy::peer_producers`](crate::queue::WaitStrategy::peer_producers)), and
//! [`ASYNC_IDLE_CHECK`](crate::queue::ASYNC_IDLE_CHECK) (1 s) where every producer is a
//! fastipc one, only to notice a producer that died without leaving. A lossless send
//! re-polls every [`PRODUCER_POLL`](crate::queue::PRODUCER_POLL) to evict a consumer that
//! died holding it back. A semaphore future re-checks every
//! [`SEMAPHORE_RECHECK_INTERVAL`](crate::sync::semaphore::SEMAPHORE_RECHECK_INTERVAL)
//! (Python posters wake only when the count leaves 0). An event future needs none
//! (every setter wakes). [`WaiterStats::repolls`] counts the registrations that fired by
//! their interval.
//!
//! # Fallback: kernels before 5.16
//!
//! When `futex_waitv` is missing (`ENOSYS`), forbidden (`EPERM`, a seccomp filter) or
//! refuses its arguments (`EINVAL`, which valid words never cause), or
//! when the environment variable `FASTIPC_WAITER=poll` is set when the first waiter
//! thread starts (or [`force_fallback`] was called), the threads switch for good to
//! polling: each sleeps on its bell alone (`FUTEX_WAIT`) for at most [`FALLBACK_POLL`]
//! and then fires every registration of its group. Every pending future is re-polled
//! every millisecond: correct, with up to a millisecond of added latency and a CPU cost
//! that grows with the number of pending futures.
//!
//! # `fork()` without `exec`
//!
//! A child made by `fork()` inherits the table but not the threads: its async waits would
//! never be woken. Fork before the first async wait, or exec (`std::process::Command`
//! always does).
//!
//! # Any futex word
//!
//! `Registration::arm` (crate-internal) takes any `&AtomicU32` and an expected value:
//! queue receives register the queue's `wake_seq`, lossless sends the endpoint table's
//! `prod_wake_seq` ([`Producer::send_async`](crate::queue::Producer::send_async)), events
//! and semaphores their own words. The one rule: whoever changes the condition also
//! changes the word and wakes it (`FUTEX_WAKE`) after checking a "waiters present" state
//! that the future raised before its final check.

mod group;
#[cfg(test)]
mod tests;

use core::sync::atomic::AtomicU32;
use std::task::Waker;
use std::time::Duration;

pub use group::FALLBACK_POLL;
use group::Token;

use crate::sys::futex::Scope;

/// Registrations one waiter thread serves: `futex_waitv` takes 128 words, one of which is
/// the thread's bell.
pub const GROUP_WORDS: usize = crate::sys::waitv::MAX_WORDS - 1;

/// A snapshot of the waiter threads and their registrations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct WaiterStats {
    /// Waiter threads started so far (they never exit).
    pub threads: usize,
    /// Registrations armed now: pending futures waiting to be woken.
    pub registrations: usize,
    /// Registrations fired so far because their re-poll interval passed (rather than
    /// because their word was woken or changed): how often pending futures looked again
    /// by themselves.
    pub repolls: u64,
    /// Whether the threads poll instead of using `futex_waitv` (see the module docs).
    pub fallback: bool,
}

/// The waiter threads and their registrations at this moment.
pub fn stats() -> WaiterStats {
    group::stats()
}

/// Makes every waiter thread poll instead of sleeping in `futex_waitv` from now on, as on
/// a kernel without it. For tests of the fallback; not undone.
#[doc(hidden)]
pub fn force_fallback() {
    group::force_fallback();
}

/// A future's entry in the waiter table: armed when the future returns `Pending`,
/// disarmed when it completes or is dropped.
#[derive(Debug, Default)]
pub(crate) struct Registration {
    token: Option<Token>,
}

impl Registration {
    /// A registration that is not armed.
    pub(crate) const fn new() -> Registration {
        Registration { token: None }
    }

    /// Arms (or re-arms) the registration: `waker` is woken once `word` is woken or no
    /// longer holds `expected`, or `repoll` after the registration was first armed (see
    /// the module docs for the exact rules; spurious wake-ups happen). Re-arming with the
    /// same word and value only replaces the waker, and keeps the re-poll moment.
    ///
    /// Returns `false` when no waiter thread could be started (the OS refused a thread):
    /// the caller must then wake its task itself, so that it polls again.
    pub(crate) fn arm(
        &mut self,
        word: &AtomicU32,
        expected: u32,
        scope: Scope,
        repoll: Option<Duration>,
        waker: &Waker,
    ) -> bool {
        group::arm(&mut self.token, word, expected, scope, repoll, waker)
    }

    /// Removes the registration if it is armed (it may have fired already).
    pub(crate) fn disarm(&mut self) {
        if let Some(token) = self.token.take() {
            group::disarm(token);
        }
    }

    /// Whether the registration is armed and has not fired yet.
    #[cfg(test)]
    pub(crate) fn is_armed(&self) -> bool {
        self.token.is_some_and(group::is_armed)
    }

    /// How long from now the armed registration fires by itself, if it is armed and has
    /// a re-poll interval.
    #[cfg(test)]
    pub(crate) fn repoll_in(&self) -> Option<Duration> {
        let at = group::repoll_at(self.token?)?;
        Some(at.saturating_duration_since(std::time::Instant::now()))
    }

    /// Whether this registration, as armed now, is still in the table: a probe that
    /// outlives the registration (to check that dropping it disarmed it).
    #[cfg(test)]
    pub(crate) fn probe(&self) -> impl Fn() -> bool + 'static {
        let token = self.token;
        move || token.is_some_and(group::is_armed)
    }
}

impl Drop for Registration {
    fn drop(&mut self) {
        self.disarm();
    }
}
