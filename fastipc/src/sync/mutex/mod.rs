//! A three-state futex mutex over a 64-byte header, shared by threads and processes, with
//! dead-owner recovery.
//!
//! # The state word (offset 8)
//! | value | meaning |
//! |---|---|
//! | 0 ([`MUTEX_UNLOCKED`]) | free |
//! | 1 ([`MUTEX_LOCKED`]) | held; nobody announced that it sleeps, so unlock wakes nobody |
//! | 2 ([`MUTEX_CONTENDED`]) | held; waiters may sleep on the word, so unlock wakes one |
//!
//! - **lock**: CAS 0→1 (acquire). That is the whole uncontended path, followed by a
//!   load and five plain stores of the owner fields (see below). On failure: spin (see below), taking
//!   the lock with CAS 0→1 whenever a plain load reads 0; then loop on `swap(2)`: a swap
//!   that returns 0 took the lock (leaving 2, because other waiters may sleep), else
//!   sleep with `FUTEX_WAIT(state, 2)`. Every way to the lock (the CAS of `try_lock`,
//!   the spin's CAS, the swap, the takeover's swap) is an acquire read-modify-write of
//!   the state that reads the previous unlock's release swap (or a later value in its
//!   release sequence), so whatever the previous holder wrote is visible to the next.
//! - **unlock**: clear `owner_pid` and the owner identity, then `swap(0)` (release);
//!   `FUTEX_WAKE(1)` only if the old state was 2. The owner fields are cleared *before*
//!   the state is released, so they never erase the next holder's.
//!
//! This is the protocol of the Python package, which sleeps with `FUTEX_WAIT(state, 2)`
//! too, so fastipc and Python processes can share one mutex.
//!
//! # Spinning
//! A waiter that has not slept yet spins before it announces itself with 2, so that a
//! holder that releases soon is followed without any futex call, and its unlock stays a
//! plain `swap(0)`. The spin reads the state with plain loads, each after a wait that
//! touches nothing shared: 64 and then 128 `spin_loop` rounds (exponential back-off,
//! ~0.6 and ~1.3 µs on the reference machine), then up to 8
//! `sched_yield`s. Every load of a waiter takes the cache line from the holder, whose next
//! lock or unlock then waits for it to come back: fewer, later polls let a holder that
//! re-locks at once run on undisturbed. The yields hand the core to a holder that was
//! preempted on the waiter's own core (more threads than cores); on an idle core a yield
//! returns after ~0.2 µs and serves as one more back-off. The spin ignores whether the
//! state is 1 or 2: taking it 0→1 while others sleep is sound, because the unlock that
//! stored 0 woke one sleeper, and that sleeper's next `swap(2)` marks the word again
//! before it sleeps (or takes the lock with 2). A spin ends early once the deadline
//! is near (checked before each yield): with less than
//! 5 ms left (`Deadline::allows_yield`), a yield could give the core to
//! another task for a whole scheduler slice and overshoot a short timeout by
//! milliseconds, so the waiter goes to sleep on the futex with its absolute deadline.
//!
//! # `last_acquired_ns`
//! Reading `CLOCK_REALTIME` costs about 18 ns even through the vDSO on the reference
//! machine, more than a whole uncontended lock+unlock, so fastipc records
//! `last_acquired_ns` only on acquisitions that spun, slept or recovered the lock; the
//! uncontended path leaves the field alone. (The Python peer writes it on every
//! acquisition.) The field is informative only.
//!
//! The record of who holds the lock and the takeover of a dead holder's lock are in
//! `owner`; the errors of a lock in `died`.
//!
//! [`MUTEX_UNLOCKED`]: super::layout::MUTEX_UNLOCKED
//! [`MUTEX_LOCKED`]: super::layout::MUTEX_LOCKED
//! [`MUTEX_CONTENDED`]: super::layout::MUTEX_CONTENDED

mod died;
mod owner;

#[cfg(test)]
use crate::sync::layout::OwnerIdentity;
pub use died::{LockError, OwnerDied};
#[cfg(test)]
use owner::{next_token, test_hook};

use core::fmt;
use core::hint::spin_loop;
use core::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::time::Duration;

use super::layout::{
    MUTEX_CONTENDED, MUTEX_LOCKED, MUTEX_MAGIC, MUTEX_SIZE, MUTEX_TOKEN_PUBLISHED, MUTEX_UNLOCKED,
    MutexInfo, OFF_MAGIC, OFF_MUTEX_STATE, RawHeader,
};
use crate::error::SyncError;
use crate::mem::MemRef;
use crate::sys::clock::Deadline;
use crate::sys::futex::{self, Scope};

/// How long a waiter sleeps before it checks whether the holder is still alive; this
/// bounds how long a dead holder blocks the others (plus the check itself).
pub const OWNER_CHECK_INTERVAL: Duration = Duration::from_millis(20);

/// The waits, in `spin_loop` rounds, before each poll of the spin phase of a contended
/// lock (see the module docs): exponential back-off.
const SPIN_BACKOFF: [u32; 2] = [64, 128];

/// How many times a contended lock yields the CPU (polling after each yield) once the
/// back-off is over, before it announces itself with 2 and sleeps.
const SPIN_YIELDS: u32 = 8;

/// The owner-check slice in use: [`OWNER_CHECK_INTERVAL`].
#[cfg(not(test))]
#[inline(always)]
fn owner_check_interval() -> Duration {
    OWNER_CHECK_INTERVAL
}

/// The owner-check slice in use. In unit tests it is an hour unless the calling thread
/// asked for [`test_knob::short_owner_checks`]: the periodic check would otherwise also
/// wake a waiter whose wake-up was lost, and hide the bug behind a 20 ms delay. Tests of
/// wake-ups run with the long slice (a lost wake-up then hangs, caught by their
/// watchdogs); tests of dead owners ask for the real one.
#[cfg(test)]
fn owner_check_interval() -> Duration {
    test_knob::OWNER_CHECK.with(std::cell::Cell::get)
}

#[cfg(test)]
pub(crate) mod test_knob {
    use std::cell::Cell;
    use std::time::Duration;

    thread_local! {
        pub(super) static OWNER_CHECK: Cell<Duration> =
            const { Cell::new(Duration::from_secs(3600)) };
    }

    /// Makes this thread's waiters check the holder every
    /// [`OWNER_CHECK_INTERVAL`](super::OWNER_CHECK_INTERVAL), as outside the unit tests.
    pub(crate) fn short_owner_checks() {
        OWNER_CHECK.with(|c| c.set(super::OWNER_CHECK_INTERVAL));
    }
}

/// A mutex over a 64-byte header in caller memory (LAYOUT.md §2).
///
/// `Mutex` is a cheap, copyable view; the lock lives in the memory. It works between
/// threads of one process and between processes that map the same memory, including
/// processes using the Python package `fastipc`.
///
/// ```
/// use fastipc::{MemRef, sync::Mutex};
///
/// let mut buf = [0u64; 8]; // 64 bytes
/// let mutex = Mutex::init(MemRef::from_mut(bytemuck::cast_slice_mut(&mut buf)))?;
/// {
///     let _guard = mutex.lock().unwrap_or_else(|died| died.into_guard());
///     assert!(mutex.is_locked());
///     assert!(mutex.try_lock().is_none());
/// } // unlocked here
/// assert!(mutex.try_lock().is_some());
/// # Ok::<(), fastipc::error::SyncError>(())
/// ```
#[derive(Clone, Copy)]
pub struct Mutex<'a> {
    hdr: RawHeader<'a, MUTEX_SIZE>,
    scope: Scope,
}

impl<'a> Mutex<'a> {
    /// Writes a fresh, unlocked mutex header (magic `MUTX`, everything else 0) at the
    /// start of `mem` (at least 64 bytes, 4-aligned) and returns a view of it.
    ///
    /// Only the creator calls this, before anyone else uses the memory.
    pub fn init(mem: MemRef<'a>) -> Result<Mutex<'a>, SyncError> {
        let hdr = RawHeader::new(mem, "mutex")?;
        // Everything 0 (state unlocked, no owner), the token as the u64 it always is,
        // then the magic, released last.
        hdr.zero_after_magic(true);
        hdr.token().store(0, Relaxed);
        hdr.word::<OFF_MAGIC>().store(MUTEX_MAGIC, Release);
        Ok(Mutex {
            hdr,
            scope: Scope::Shared,
        })
    }

    /// Views an existing mutex at the start of `mem` (at least 64 bytes, 4-aligned)
    /// without changing it. The magic must be `MUTX` or 0 (the Python `NamedMutex`
    /// zero-fills the header it creates); anything else is
    /// [`SyncError::ForeignHeader`].
    pub fn attach(mem: MemRef<'a>) -> Result<Mutex<'a>, SyncError> {
        let hdr = RawHeader::new(mem, "mutex")?;
        let magic = hdr.word::<OFF_MAGIC>().load(Acquire);
        if magic != MUTEX_MAGIC && magic != 0 {
            return Err(SyncError::ForeignHeader {
                object: "mutex",
                found: magic,
                expected: MUTEX_MAGIC,
            });
        }
        Ok(Mutex {
            hdr,
            scope: Scope::Shared,
        })
    }

    /// Uses private futex operations (`FUTEX_PRIVATE_FLAG`): a little cheaper, and only
    /// correct when every user of the memory is a thread of this process. The default is
    /// [`Scope::Shared`].
    pub fn with_scope(self, scope: Scope) -> Mutex<'a> {
        Mutex { scope, ..self }
    }

    /// Locks, waiting as long as it takes.
    ///
    /// Returns `Err(OwnerDied)` — which carries the guard: the caller holds the lock —
    /// when the previous holder died holding it. Locking twice from one thread without
    /// unlocking deadlocks, as with `std::sync::Mutex`.
    #[inline]
    pub fn lock(&self) -> Result<MutexGuard<'a>, OwnerDied<MutexGuard<'a>>> {
        if let Some(guard) = self.try_lock() {
            return Ok(guard);
        }
        loop {
            match self.lock_contended(Deadline::NEVER) {
                Ok(guard) => return Ok(guard),
                Err(LockError::OwnerDied(died)) => return Err(died),
                // A deadline of NEVER does not pass; should it anyway, keep waiting.
                Err(LockError::TimedOut) => continue,
            }
        }
    }

    /// Takes the lock if it is free right now; never waits, never checks the holder's
    /// liveness (use [`Mutex::lock_timeout`] with a zero timeout for that).
    #[inline]
    pub fn try_lock(&self) -> Option<MutexGuard<'a>> {
        if self
            .state()
            .compare_exchange(MUTEX_UNLOCKED, MUTEX_LOCKED, Acquire, Relaxed)
            .is_ok()
        {
            // `false`: a waiter took this acquisition over (see `mark_owner`) and holds
            // the lock now; we never held it.
            self.mark_owner().then_some(MutexGuard { mutex: *self })
        } else {
            None
        }
    }

    /// Locks, waiting at most `timeout` in total. A zero timeout tries once (and checks
    /// the holder's liveness once); a huge one (`Duration::MAX`) waits forever.
    pub fn lock_timeout(
        &self,
        timeout: Duration,
    ) -> Result<MutexGuard<'a>, LockError<MutexGuard<'a>>> {
        if let Some(guard) = self.try_lock() {
            return Ok(guard);
        }
        self.lock_contended(Deadline::after(timeout))
    }

    /// Locks, waiting until `deadline` at the latest (a [`Deadline`] or an
    /// [`Instant`](std::time::Instant)).
    pub fn lock_deadline(
        &self,
        deadline: impl Into<Deadline>,
    ) -> Result<MutexGuard<'a>, LockError<MutexGuard<'a>>> {
        if let Some(guard) = self.try_lock() {
            return Ok(guard);
        }
        self.lock_contended(deadline.into())
    }

    /// Whether the lock is held (by anyone) at this moment.
    pub fn is_locked(&self) -> bool {
        self.state().load(Relaxed) != MUTEX_UNLOCKED
    }

    /// The recorded holder's process id, if any. Informative only: neither `Some` nor
    /// `None` proves who holds the lock (use [`is_locked`](Self::is_locked), and a guard
    /// to know that this process holds it).
    ///
    /// It can read `None` while the lock is held, even by the holder inside its own
    /// critical section, when Python processes share the lock: the Python package's
    /// unlock clears `owner_pid` *after* it releases the lock, so a Python process that
    /// just unlocked can erase the pid the next holder had already recorded (observed 33
    /// times in 20,000 acquisitions in a mixed Rust and Python run). Every holder also
    /// records its pid just after taking the lock, so a reader in between sees `None` or
    /// the previous pid. Between fastipc processes alone, a holder always reads its own
    /// pid.
    pub fn owner_pid(&self) -> Option<u32> {
        match self.owner().load(Acquire) {
            0 => None,
            pid => Some(pid),
        }
    }

    /// `CLOCK_REALTIME` ns of the last acquisition that recorded it (see the module docs).
    pub fn last_acquired_ns(&self) -> u64 {
        self.hdr.last_acquired_ns()
    }

    /// The whole header, decoded.
    pub fn info(&self) -> MutexInfo {
        MutexInfo::of(&self.hdr)
    }

    /// Releases the lock whoever holds it, and wakes one waiter if some may sleep. For
    /// recovery by hand (a tool, or a holder known to be dead that automatic recovery
    /// cannot identify).
    ///
    /// # Safety
    /// If a live thread or process still holds the lock, it keeps using what the lock
    /// protects while another one takes the lock: the caller must know that the holder,
    /// if any, will never touch the protected data again.
    pub unsafe fn force_unlock(&self) {
        self.release();
    }

    #[inline(always)]
    fn state(&self) -> &'a core::sync::atomic::AtomicU32 {
        self.hdr.word::<OFF_MUTEX_STATE>()
    }

    /// Unlock: `owner_pid` and the token's published bit first, then the state
    /// (release), then a wake if needed.
    #[inline(always)]
    fn release(&self) {
        self.owner().store(0, Relaxed);
        // Relaxed: ordered before the state's release swap, which every next holder
        // acquires; the generation stays, so the next one is new.
        let t = self.token().load(Relaxed);
        self.token().store(t & !MUTEX_TOKEN_PUBLISHED, Relaxed);
        if self.state().swap(MUTEX_UNLOCKED, Release) == MUTEX_CONTENDED {
            self.wake_one();
        }
    }

    #[cold]
    fn wake_one(&self) {
        futex::wake(self.state(), 1, self.scope);
    }

    /// Marks the holder and stamps `last_acquired_ns` after a slow acquisition; `None`
    /// when a waiter took the acquisition over (see `mark_owner`).
    fn acquired_slowly(&self) -> Option<MutexGuard<'a>> {
        if !self.mark_owner() {
            return None;
        }
        self.hdr.stamp_last_acquired();
        Some(MutexGuard { mutex: *self })
    }

    #[cold]
    fn lock_contended(
        &self,
        deadline: Deadline,
    ) -> Result<MutexGuard<'a>, LockError<MutexGuard<'a>>> {
        let state = self.state();
        // A zero timeout (a deadline already passed) tries once, without spinning.
        if !deadline.has_passed()
            && self.spin(deadline)
            && let Some(guard) = self.acquired_slowly()
        {
            return Ok(guard);
        }
        let mut next_check = Deadline::after(owner_check_interval());
        loop {
            if state.swap(MUTEX_CONTENDED, Acquire) == MUTEX_UNLOCKED
                && let Some(guard) = self.acquired_slowly()
            {
                return Ok(guard);
            }
            let final_round = deadline.has_passed();
            if final_round || next_check.has_passed() {
                if let Some(died) = self.recover_from_dead_owner() {
                    return Err(LockError::OwnerDied(died));
                }
                if final_round {
                    return Err(LockError::TimedOut);
                }
                next_check = Deadline::after(owner_check_interval());
            }
            futex::wait(state, MUTEX_CONTENDED, deadline.min(next_check), self.scope);
        }
    }

    /// The spin phase of a contended lock (see the module docs): polls the state with
    /// plain loads after each back-off wait and each yield, and takes the lock with CAS
    /// 0→1 when it reads 0. Returns whether it took the lock; gives up after the last
    /// yield, or before a yield once `deadline` has passed.
    #[inline(always)]
    fn spin(&self, deadline: Deadline) -> bool {
        let state = self.state();
        let rounds = SPIN_BACKOFF.len() as u32 + SPIN_YIELDS;
        for round in 0..rounds {
            match SPIN_BACKOFF.get(round as usize) {
                Some(&wait) => (0..wait).for_each(|_| spin_loop()),
                // Near the deadline a yield may not come back in time under load:
                // sleep on the futex for the rest instead (lock_contended).
                None if !deadline.allows_yield() => return false,
                None => std::thread::yield_now(),
            }
            if state.load(Relaxed) == MUTEX_UNLOCKED
                && state
                    .compare_exchange(MUTEX_UNLOCKED, MUTEX_LOCKED, Acquire, Relaxed)
                    .is_ok()
            {
                return true;
            }
        }
        false
    }
}

impl fmt::Debug for Mutex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mutex")
            .field("state", &self.state().load(Relaxed))
            .field("owner_pid", &self.owner().load(Relaxed))
            .field("scope", &self.scope)
            .finish()
    }
}

// SAFETY: a Mutex is a view of memory reached only through atomics (RawHeader keeps the
// address of memory a MemRef vouched for, and MemRef is Send + Sync for that reason);
// nothing in it is tied to a thread.
unsafe impl Send for Mutex<'_> {}
// SAFETY: as for Send.
unsafe impl Sync for Mutex<'_> {}

/// Proof of holding a [`Mutex`]; dropping it unlocks.
///
/// The guard is the ownership: it may be sent to and dropped on another thread of the
/// same process.
#[must_use = "dropping the guard unlocks the mutex at once"]
pub struct MutexGuard<'a> {
    mutex: Mutex<'a>,
}

impl<'a> MutexGuard<'a> {
    /// The mutex this guard holds.
    pub fn mutex(&self) -> Mutex<'a> {
        self.mutex
    }

    /// Unlocks (the same as dropping the guard).
    pub fn unlock(self) {
        drop(self)
    }
}

impl Drop for MutexGuard<'_> {
    #[inline]
    fn drop(&mut self) {
        self.mutex.release();
    }
}

impl fmt::Debug for MutexGuard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("MutexGuard")
            .field("mutex", &self.mutex)
            .finish()
    }
}

/// Helpers for tests elsewhere in the crate that fake a holder.
#[cfg(test)]
pub(crate) mod test_util {
    use super::*;

    /// Makes `m` look held by a fastipc process: state 1, a new published token with
    /// `identity` and pid namespace `ns` in its side words, then `owner_pid` (which a
    /// Python peer may have erased: pass 0 for that).
    pub(crate) fn fake_holder(m: &Mutex<'_>, owner_pid: u32, identity: OwnerIdentity, ns: u32) {
        m.state().store(MUTEX_LOCKED, Relaxed);
        let t = m.token().load(Relaxed) & !MUTEX_TOKEN_PUBLISHED;
        m.publish(t, identity.to_word(), ns);
        m.owner().store(owner_pid, Relaxed);
    }
}

#[cfg(test)]
mod tests;
