//! A counting semaphore over a 64-byte header, shared by threads and processes.
//!
//! # The count word (offset 8) and the sleeper count (offset 24)
//! `count` is the number of tokens available; it is also the futex word waiters sleep on,
//! with `FUTEX_WAIT(count, 0)` (so they sleep only while no token is left). `sleepers`
//! (fastipc only, in the reserved area the Python peer never touches after creation)
//! counts fastipc waiters that registered to sleep.
//!
//! - **post(n)**: CAS `count += n`, refusing to pass `u32::MAX`
//!   ([`SyncError::Overflow`]). Then wake `n` sleepers if the count left 0 (which is
//!   when the Python peer wakes, so Python waiters are woken too), else
//!   `min(n, sleepers)` if fastipc waiters sleep. A post with nobody asleep and tokens
//!   left makes no syscall.
//! - **wait**: CAS `count -= 1` while `count > 0` — a waiter always takes an available
//!   token, before spinning and before sleeping, whatever the spin budget. Otherwise spin
//!   a bounded number of rounds, then: `sleepers += 1`, re-read `count`, sleep on
//!   `FUTEX_WAIT(count, 0)` if it is still 0, `sleepers -= 1`, retry.
//!
//! ## No lost wake-ups
//! The increment of `sleepers` and the re-read of `count` by a waiter, and the update of
//! `count` and the read of `sleepers` by a poster, are sequentially consistent. So either
//! the waiter sees the new tokens and does not sleep, or the poster sees the waiter and
//! wakes it (and the futex itself refuses to sleep once `count != 0`). The classic trap —
//! waiters A and B asleep at count 0; `post(1)` wakes A; `post(1)` from 1 to 2 wakes
//! nobody; A takes one token and B sleeps beside an available token — cannot happen
//! between fastipc processes: the second post sees `sleepers > 0` and wakes B.
//!
//! ## Orderings of the data handed over
//! Every way out of a wait with a token is `try_wait`'s successful CAS, which is acquire,
//! and every post adds with a sequentially consistent (so release) CAS: a waiter that took
//! a token reads the count's release sequence, so what a poster wrote before `post` is
//! visible to the waiter once its wait returns. (Which poster's writes: only those of the
//! posts before the value its CAS read — a semaphore counts, it does not pair.)
//!
//! A Python poster does not know about `sleepers` and wakes only when the count leaves 0.
//! To cover that, a fastipc waiter that takes a token and leaves more behind wakes one
//! more registered sleeper, and sleepers re-check the count every
//! [`SEMAPHORE_RECHECK_INTERVAL`] whatever happens. (Python waiters among themselves keep
//! the peer's own behaviour.)
//!
//! A fastipc waiter killed while registered leaves `sleepers` one too high; that only
//! costs later posts a spare `FUTEX_WAKE`.
//!
//! [`Semaphore::init`] also writes a creator mark, `"FIPC"` at offset 28
//! (`SEMAPHORE_MADE_BY_FASTIPC`): a semaphore fastipc made is complete before anyone
//! sees it, while one the Python package made may still be getting its count, which
//! [`NamedSemaphore`](crate::named::NamedSemaphore) waits for.
//!
//! `last_pid` is written by every successful wait; `last_acquired_ns` only by waits that
//! had to spin or sleep (reading the realtime clock costs more than the uncontended wait).

use core::fmt;
use core::hint::spin_loop;
use core::sync::atomic::AtomicU32;
use core::sync::atomic::Ordering::{Acquire, Relaxed, Release, SeqCst};
use std::time::Duration;

use super::SPIN_LIMIT;
use super::layout::{
    OFF_MAGIC, OFF_SEM_COUNT, OFF_SEM_LAST_PID, OFF_SEM_MADE_BY, OFF_SEM_SLEEPERS, RawHeader,
    SEMAPHORE_MADE_BY_FASTIPC, SEMAPHORE_MAGIC, SEMAPHORE_SIZE, SemaphoreInfo,
};
use crate::error::{SyncError, TimedOut};
use crate::mem::MemRef;
use crate::sys::clock::Deadline;
use crate::sys::futex::{self, Scope};
use crate::sys::process::current_pid;

/// The longest a sleeping waiter goes without re-reading the count (a safety net for
/// posters that do not wake, such as the Python peer when the count was not 0).
pub const SEMAPHORE_RECHECK_INTERVAL: Duration = Duration::from_millis(50);

/// The re-check slice in use. Unit tests disable the safety net, so that a lost wake-up
/// between fastipc waiters shows up as a hang (caught by the tests' deadlines) instead of
/// a 50 ms delay.
pub(super) const RECHECK: Duration = if cfg!(test) {
    Duration::from_secs(3600)
} else {
    SEMAPHORE_RECHECK_INTERVAL
};

const TIMED_OUT: TimedOut = TimedOut {
    object: "semaphore",
};

/// A counting semaphore over a 64-byte header in caller memory (LAYOUT.md §2).
///
/// ```
/// use std::time::Duration;
/// use fastipc::{MemRef, sync::Semaphore};
///
/// let mut buf = [0u64; 8]; // 64 bytes
/// let sem = Semaphore::init(MemRef::from_mut(bytemuck::cast_slice_mut(&mut buf)), 1)?;
/// assert!(sem.try_wait());
/// assert!(!sem.try_wait());
/// sem.post(2)?;
/// sem.wait();
/// assert!(sem.wait_timeout(Duration::from_millis(1)).is_ok());
/// assert!(sem.wait_timeout(Duration::ZERO).is_err()); // empty: timed out
/// sem.post(1)?;
/// assert!(sem.post(u32::MAX).is_err()); // 1 + u32::MAX overflows: nothing added
/// assert_eq!(sem.value(), 1);
/// # Ok::<(), fastipc::error::SyncError>(())
/// ```
#[derive(Clone, Copy)]
pub struct Semaphore<'a> {
    pub(super) hdr: RawHeader<'a, SEMAPHORE_SIZE>,
    pub(super) scope: Scope,
}

impl<'a> Semaphore<'a> {
    /// Writes a fresh semaphore header holding `initial` tokens at the start of `mem` (at
    /// least 64 bytes, 4-aligned) and returns a view of it. Only the creator calls this,
    /// before anyone else uses the memory.
    pub fn init(mem: MemRef<'a>, initial: u32) -> Result<Semaphore<'a>, SyncError> {
        let hdr = RawHeader::new(mem, "semaphore")?;
        // Everything 0, then the count and the creator mark, then the magic, released
        // last.
        hdr.zero_after_magic(false);
        hdr.word::<OFF_SEM_COUNT>().store(initial, Relaxed);
        hdr.word::<OFF_SEM_MADE_BY>()
            .store(SEMAPHORE_MADE_BY_FASTIPC, Relaxed);
        hdr.word::<OFF_MAGIC>().store(SEMAPHORE_MAGIC, Release);
        Ok(Semaphore {
            hdr,
            scope: Scope::Shared,
        })
    }

    /// Views an existing semaphore at the start of `mem` (at least 64 bytes, 4-aligned)
    /// without changing it. The magic must be `SEMA`, or 0 (a header a Python creator has
    /// not initialised yet); anything else is [`SyncError::ForeignHeader`].
    pub fn attach(mem: MemRef<'a>) -> Result<Semaphore<'a>, SyncError> {
        let hdr = RawHeader::new(mem, "semaphore")?;
        let magic = hdr.word::<OFF_MAGIC>().load(Acquire);
        if magic != SEMAPHORE_MAGIC && magic != 0 {
            return Err(SyncError::ForeignHeader {
                object: "semaphore",
                found: magic,
                expected: SEMAPHORE_MAGIC,
            });
        }
        Ok(Semaphore {
            hdr,
            scope: Scope::Shared,
        })
    }

    /// Uses private futex operations: only correct when every user is a thread of this
    /// process. The default is [`Scope::Shared`].
    pub fn with_scope(self, scope: Scope) -> Semaphore<'a> {
        Semaphore { scope, ..self }
    }

    /// Adds `n` tokens and wakes waiters for them. Fails with [`SyncError::Overflow`],
    /// adding nothing, if the count would pass `u32::MAX`. `post(0)` does nothing.
    pub fn post(&self, n: u32) -> Result<(), SyncError> {
        if n == 0 {
            return Ok(());
        }
        let count = self.count();
        let mut cur = count.load(Relaxed);
        let prev = loop {
            let new = cur.checked_add(n).ok_or(SyncError::Overflow {
                count: cur,
                added: n,
            })?;
            match count.compare_exchange_weak(cur, new, SeqCst, Relaxed) {
                Ok(_) => break cur,
                Err(actual) => cur = actual,
            }
        };
        let sleepers = self.sleepers().load(SeqCst);
        if prev == 0 {
            futex::wake(count, n, self.scope);
        } else if sleepers > 0 {
            futex::wake(count, n.min(sleepers), self.scope);
        }
        Ok(())
    }

    /// Takes a token if one is available; never waits.
    #[inline]
    pub fn try_wait(&self) -> bool {
        let count = self.count();
        let mut cur = count.load(Relaxed);
        while cur > 0 {
            match count.compare_exchange_weak(cur, cur - 1, Acquire, Relaxed) {
                Ok(_) => {
                    self.hdr
                        .word::<OFF_SEM_LAST_PID>()
                        .store(current_pid(), Relaxed);
                    if cur > 1 {
                        self.pass_on();
                    }
                    return true;
                }
                Err(actual) => cur = actual,
            }
        }
        false
    }

    /// Takes a token, waiting as long as it takes.
    pub fn wait(&self) {
        while self.wait_deadline(Deadline::NEVER).is_err() {}
    }

    /// Takes a token, waiting at most `timeout` in total. A zero timeout tries once; a
    /// huge one (`Duration::MAX`) waits forever.
    pub fn wait_timeout(&self, timeout: Duration) -> Result<(), TimedOut> {
        if self.try_wait() {
            return Ok(());
        }
        self.wait_slow(Deadline::after(timeout))
    }

    /// Takes a token, waiting until `deadline` at the latest (a [`Deadline`] or an
    /// [`Instant`](std::time::Instant)).
    pub fn wait_deadline(&self, deadline: impl Into<Deadline>) -> Result<(), TimedOut> {
        if self.try_wait() {
            return Ok(());
        }
        self.wait_slow(deadline.into())
    }

    /// Tokens available at this moment.
    pub fn value(&self) -> u32 {
        self.count().load(Acquire)
    }

    /// Process id of the last waiter that took a token (0 if none yet).
    pub fn last_pid(&self) -> u32 {
        self.hdr.word::<OFF_SEM_LAST_PID>().load(Relaxed)
    }

    /// `CLOCK_REALTIME` ns of the last wait that recorded it (see the module docs).
    pub fn last_acquired_ns(&self) -> u64 {
        self.hdr.last_acquired_ns()
    }

    /// The whole header, decoded.
    pub fn info(&self) -> SemaphoreInfo {
        SemaphoreInfo::of(&self.hdr)
    }

    #[inline(always)]
    pub(super) fn count(&self) -> &'a AtomicU32 {
        self.hdr.word::<OFF_SEM_COUNT>()
    }

    #[inline(always)]
    pub(super) fn sleepers(&self) -> &'a AtomicU32 {
        self.hdr.word::<OFF_SEM_SLEEPERS>()
    }

    /// After taking a token and leaving more: wake one more registered sleeper, in case
    /// a poster (a Python one) did not.
    #[inline]
    pub(super) fn pass_on(&self) {
        if self.sleepers().load(Relaxed) > 0 {
            futex::wake(self.count(), 1, self.scope);
        }
    }

    #[cold]
    fn wait_slow(&self, deadline: Deadline) -> Result<(), TimedOut> {
        let stamp = || self.hdr.stamp_last_acquired();
        if !deadline.has_passed() {
            for _ in 0..SPIN_LIMIT {
                if self.count().load(Relaxed) > 0 && self.try_wait() {
                    stamp();
                    return Ok(());
                }
                spin_loop();
            }
        }
        let sleepers = self.sleepers();
        loop {
            if self.try_wait() {
                stamp();
                return Ok(());
            }
            if deadline.has_passed() {
                return Err(TIMED_OUT);
            }
            sleepers.fetch_add(1, SeqCst);
            if self.count().load(SeqCst) == 0 {
                let slice = deadline.min(Deadline::after(RECHECK));
                futex::wait(self.count(), 0, slice, self.scope);
            }
            sleepers.fetch_sub(1, SeqCst);
        }
    }
}

impl fmt::Debug for Semaphore<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Semaphore")
            .field("count", &self.value())
            .field("sleepers", &self.sleepers().load(Relaxed))
            .field("scope", &self.scope)
            .finish()
    }
}

// SAFETY: a Semaphore is a view of memory reached only through atomics; nothing in it
// is tied to a thread.
unsafe impl Send for Semaphore<'_> {}
// SAFETY: as for Send.
unsafe impl Sync for Semaphore<'_> {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::region::Region;
    use std::sync::atomic::AtomicU64;
    use std::time::Instant;

    fn sem(initial: u32) -> Region {
        let r = Region::heap(SEMAPHORE_SIZE);
        Semaphore::init(r.mem(), initial).unwrap();
        r
    }

    #[test]
    fn tokens_are_counted() {
        let r = sem(2);
        let s = Semaphore::attach(r.mem()).unwrap();
        assert_eq!(s.value(), 2);
        assert!(s.try_wait() && s.try_wait() && !s.try_wait());
        assert_eq!(s.last_pid(), std::process::id());
        s.post(3).unwrap();
        s.post(0).unwrap();
        assert_eq!(s.value(), 3);
        let info = s.info();
        assert_eq!(
            (info.magic, info.count, info.sleepers),
            (SEMAPHORE_MAGIC, 3, 0)
        );
    }

    #[test]
    fn overflow_is_refused_and_adds_nothing() {
        let r = sem(5);
        let s = Semaphore::attach(r.mem()).unwrap();
        assert_eq!(
            s.post(u32::MAX),
            Err(SyncError::Overflow {
                count: 5,
                added: u32::MAX
            })
        );
        assert_eq!(s.value(), 5);
        s.post(u32::MAX - 5).unwrap();
        assert_eq!(s.value(), u32::MAX);
        assert!(s.post(1).is_err());
    }

    #[test]
    fn timeouts_are_total_and_zero_tries_once() {
        let r = sem(0);
        let s = Semaphore::attach(r.mem()).unwrap();
        assert_eq!(s.wait_timeout(Duration::ZERO), Err(TIMED_OUT));
        let start = Instant::now();
        assert!(s.wait_timeout(Duration::from_millis(120)).is_err());
        // The deadline ends it, not earlier.
        assert!(start.elapsed() >= Duration::from_millis(120));
        s.post(1).unwrap();
        assert!(s.wait_timeout(Duration::ZERO).is_ok());
        s.post(1).unwrap();
        assert!(s.wait_timeout(Duration::MAX).is_ok());
        assert_eq!(s.info().sleepers, 0);
    }

    #[test]
    fn attach_checks_magic_and_buffer() {
        let r = Region::heap(SEMAPHORE_SIZE);
        assert!(Semaphore::attach(r.mem()).is_ok());
        crate::sync::Mutex::init(r.mem()).unwrap();
        assert!(matches!(
            Semaphore::attach(r.mem()),
            Err(SyncError::ForeignHeader { .. })
        ));
        let mut buf = [0u32; 15];
        assert!(matches!(
            Semaphore::init(MemRef::from_mut(bytemuck::cast_slice_mut(&mut buf)), 0),
            Err(SyncError::Buffer { .. })
        ));
    }

    #[test]
    fn no_wake_up_is_lost_among_many_waiters_and_posters() {
        // Each of 4 waiters takes 2000 tokens that 2 posters hand out one by one.
        let r = sem(0);
        let s = Semaphore::attach(r.mem())
            .unwrap()
            .with_scope(Scope::Private);
        let taken = AtomicU64::new(0);
        std::thread::scope(|sc| {
            for _ in 0..4 {
                sc.spawn(|| {
                    for _ in 0..2000 {
                        s.wait_timeout(Duration::from_secs(30)).expect("token lost");
                        taken.fetch_add(1, Relaxed);
                    }
                });
            }
            for _ in 0..2 {
                sc.spawn(|| {
                    for i in 0..4000 {
                        s.post(1).unwrap();
                        if i % 64 == 0 {
                            std::thread::yield_now();
                        }
                    }
                });
            }
        });
        assert_eq!(taken.load(Relaxed), 8000);
        assert_eq!(s.value(), 0);
        assert_eq!(s.info().sleepers, 0);
    }

    #[test]
    fn the_classic_lost_wake_up_does_not_happen() {
        // Two waiters asleep at count 0, then two single posts with no pause. The waiters
        // wait without a deadline, and unit tests re-check the count only once an hour
        // (RECHECK), so only the posts' wake-ups can end their sleep; the watchdog's bound
        // is on the test's wait, not a claim about speed.
        // Shared with the watchdog thread, which may outlive the test if it fails.
        let r = std::sync::Arc::new(sem(0));
        let (tx, rx) = std::sync::mpsc::channel();
        let r2 = r.clone();
        let thread = std::thread::spawn(move || {
            let r = r2;
            let s = Semaphore::attach(r.mem()).unwrap();
            std::thread::scope(|sc| {
                let a = sc.spawn(|| s.wait());
                let b = sc.spawn(|| s.wait());
                let deadline = Instant::now() + Duration::from_secs(20);
                while s.info().sleepers < 2 {
                    assert!(Instant::now() < deadline, "the waiters never slept");
                    std::thread::sleep(Duration::from_millis(1));
                }
                s.post(1).unwrap();
                s.post(1).unwrap();
                a.join().unwrap();
                b.join().unwrap();
            });
            let _ = tx.send(());
        });
        rx.recv_timeout(Duration::from_secs(60))
            .expect("a waiter was never woken: lost wake-up");
        thread.join().unwrap();
        assert_eq!(Semaphore::attach(r.mem()).unwrap().value(), 0);
    }
}
