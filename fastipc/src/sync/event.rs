//! A manual-reset event: one u32 futex word, 0 clear, non-zero set.
//!
//! - **set**: swap in 1; if the word was 0, wake every sleeper (a sleeper only sleeps
//!   while the word is 0, so whoever moves it from 0 wakes everyone who slept).
//! - **clear**: store 0.
//! - **wait**: return at once when the word is non-zero; else spin briefly, then sleep on
//!   `FUTEX_WAIT(word, 0)` until set or the deadline passes.
//!
//! Every return of a wait (the first check, each spin poll, each check after a sleep,
//! the last check at the deadline) is an acquire load that reads a non-zero word; `set`
//! is a release (acq-rel) swap. So whatever a thread wrote before `set` is visible to a
//! thread whose wait returned: "write data; set() — wait(); read data" is race-free.
//!
//! The Python peer stores 1 and always wakes everyone, and sleeps with
//! `FUTEX_WAIT(word, 0)` too, so fastipc and Python processes can share an event.

use core::fmt;
use core::hint::spin_loop;
use core::sync::atomic::AtomicU32;
use core::sync::atomic::Ordering::{AcqRel, Acquire, Release};
use std::time::Duration;

use super::SPIN_LIMIT;
use super::layout::{EVENT_SIZE, RawHeader};
use crate::error::{SyncError, TimedOut};
use crate::mem::MemRef;
use crate::sys::clock::Deadline;
use crate::sys::futex::{self, Scope};

const TIMED_OUT: TimedOut = TimedOut { object: "event" };

/// A manual-reset event over a 4-byte word in caller memory (LAYOUT.md §2).
///
/// ```
/// use std::time::Duration;
/// use fastipc::{MemRef, sync::Event};
///
/// let mut word = [0u32; 1];
/// let event = Event::init(MemRef::from_mut(bytemuck::cast_slice_mut(&mut word)))?;
/// assert!(event.wait_timeout(Duration::from_millis(1)).is_err());
/// event.set();
/// event.wait(); // returns at once: already set
/// assert!(event.is_set());
/// event.clear();
/// assert!(!event.is_set());
/// # Ok::<(), fastipc::error::SyncError>(())
/// ```
#[derive(Clone, Copy)]
pub struct Event<'a> {
    hdr: RawHeader<'a, EVENT_SIZE>,
    pub(super) scope: Scope,
}

impl<'a> Event<'a> {
    /// Writes a clear event at the start of `mem` (at least 4 bytes, 4-aligned).
    pub fn init(mem: MemRef<'a>) -> Result<Event<'a>, SyncError> {
        let event = Event::attach(mem)?;
        event.word().store(0, Release);
        Ok(event)
    }

    /// Views an existing event at the start of `mem` (at least 4 bytes, 4-aligned)
    /// without changing it. (An event has no magic number to check.)
    pub fn attach(mem: MemRef<'a>) -> Result<Event<'a>, SyncError> {
        Ok(Event {
            hdr: RawHeader::new(mem, "event")?,
            scope: Scope::Shared,
        })
    }

    /// Uses private futex operations: only correct when every user is a thread of this
    /// process. The default is [`Scope::Shared`].
    pub fn with_scope(self, scope: Scope) -> Event<'a> {
        Event { scope, ..self }
    }

    /// Sets the event and wakes every waiter.
    pub fn set(&self) {
        if self.word().swap(1, AcqRel) == 0 {
            futex::wake_all(self.word(), self.scope);
        }
    }

    /// Clears the event.
    pub fn clear(&self) {
        self.word().store(0, Release);
    }

    /// Whether the event is set.
    pub fn is_set(&self) -> bool {
        self.word().load(Acquire) != 0
    }

    /// Waits until the event is set; returns at once if it already is.
    pub fn wait(&self) {
        while self.wait_deadline(Deadline::NEVER).is_err() {}
    }

    /// Waits at most `timeout` in total for the event to be set; returns at once if it
    /// already is. A zero timeout only checks; a huge one waits forever.
    pub fn wait_timeout(&self, timeout: Duration) -> Result<(), TimedOut> {
        if self.is_set() {
            return Ok(());
        }
        self.wait_slow(Deadline::after(timeout))
    }

    /// Waits until `deadline` at the latest (a [`Deadline`] or an
    /// [`Instant`](std::time::Instant)) for the event to be set.
    pub fn wait_deadline(&self, deadline: impl Into<Deadline>) -> Result<(), TimedOut> {
        if self.is_set() {
            return Ok(());
        }
        self.wait_slow(deadline.into())
    }

    #[inline(always)]
    pub(super) fn word(&self) -> &'a AtomicU32 {
        self.hdr.word::<0>()
    }

    #[cold]
    fn wait_slow(&self, deadline: Deadline) -> Result<(), TimedOut> {
        if !deadline.has_passed() {
            for _ in 0..SPIN_LIMIT {
                // Every return is an acquire load that reads the set (or a later one),
                // so the caller sees whatever was written before `set` (its swap is
                // release). A relaxed load here would return without that guarantee.
                if self.is_set() {
                    return Ok(());
                }
                spin_loop();
            }
        }
        loop {
            if self.is_set() {
                return Ok(());
            }
            if futex::wait(self.word(), 0, deadline, self.scope) == futex::WaitOutcome::TimedOut {
                return if self.is_set() {
                    Ok(())
                } else {
                    Err(TIMED_OUT)
                };
            }
        }
    }
}

impl fmt::Debug for Event<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Event")
            .field("set", &self.is_set())
            .field("scope", &self.scope)
            .finish()
    }
}

// SAFETY: an Event is a view of memory reached only through atomics; nothing in it is
// tied to a thread.
unsafe impl Send for Event<'_> {}
// SAFETY: as for Send.
unsafe impl Sync for Event<'_> {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::region::Region;
    use std::time::Instant;

    #[test]
    fn set_clear_and_immediate_wait() {
        let r = Region::heap(4);
        let e = Event::init(r.mem()).unwrap();
        assert!(!e.is_set());
        assert_eq!(e.wait_timeout(Duration::ZERO), Err(TIMED_OUT));
        e.set();
        e.set();
        assert!(e.is_set());
        let start = Instant::now();
        e.wait();
        assert!(e.wait_timeout(Duration::ZERO).is_ok());
        assert!(e.wait_deadline(Deadline::NEVER).is_ok());
        assert!(start.elapsed() < Duration::from_secs(5));
        e.clear();
        assert!(!e.is_set());
        // Python's set value is 1; any non-zero counts as set.
        r.mem()
            .atomic_u32(0)
            .unwrap()
            .store(7, core::sync::atomic::Ordering::Relaxed);
        assert!(e.is_set());
    }

    /// A plain (non-atomic) cell handed between threads; the test's point is whether
    /// the event orders the accesses (Miri reports a data race when it does not).
    struct Unsync(std::cell::UnsafeCell<u64>);
    // SAFETY: the test accesses the cell from two threads only in the order the event
    // is meant to impose (write, set; wait, read), which is what it checks.
    unsafe impl Sync for Unsync {}

    impl Unsync {
        fn ptr(&self) -> *mut u64 {
            self.0.get()
        }
    }

    /// "write data; set()" on one thread, "wait(); read data" on another: every return
    /// of a wait must acquire the set, on the spin path as on the sleep path. Under Miri
    /// the waiter is scheduled to meet the set on every path, and a relaxed return is
    /// reported as a data race on the cell.
    #[test]
    fn wait_acquires_the_writes_before_set() {
        for _ in 0..if cfg!(miri) { 8 } else { 200 } {
            let r = Region::heap(4);
            let e = Event::init(r.mem()).unwrap().with_scope(Scope::Private);
            let data = Unsync(std::cell::UnsafeCell::new(0));
            std::thread::scope(|s| {
                s.spawn(|| {
                    // SAFETY: only this thread writes, before `set`; the reader reads
                    // only after its `wait` returned (what the test checks).
                    unsafe { *data.ptr() = 42 };
                    e.set();
                });
                e.wait();
                // SAFETY: `wait` returned, so the write before `set` happened before.
                assert_eq!(unsafe { *data.ptr() }, 42);
            });
        }
    }

    #[test]
    fn set_wakes_every_waiter() {
        let r = Region::heap(4);
        let e = Event::init(r.mem()).unwrap();
        std::thread::scope(|s| {
            let waiters: Vec<_> = (0..4)
                .map(|_| s.spawn(|| e.wait_timeout(Duration::from_secs(20)).is_ok()))
                .collect();
            std::thread::sleep(Duration::from_millis(20));
            e.set();
            for w in waiters {
                assert!(w.join().unwrap());
            }
        });
    }

    #[test]
    fn timeout_is_total_and_buffers_are_checked() {
        let r = Region::heap(4);
        let e = Event::init(r.mem()).unwrap().with_scope(Scope::Private);
        let start = Instant::now();
        assert!(e.wait_timeout(Duration::from_millis(30)).is_err());
        assert!(start.elapsed() >= Duration::from_millis(30));
        let mut buf = [0u32; 2];
        let bytes: &mut [u8] = bytemuck::cast_slice_mut(&mut buf);
        assert!(matches!(
            Event::attach(MemRef::from_mut(&mut bytes[..3])),
            Err(SyncError::Buffer {
                object: "event",
                ..
            })
        ));
        assert!(matches!(
            Event::init(MemRef::from_mut(&mut bytes[2..])),
            Err(SyncError::Buffer { .. })
        ));
    }
}
