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
//! - **lock**: CAS 0→1 (acquire). That is the whole uncontended path, followed by two
//!   plain stores of the owner fields. On failure: spin a bounded number of rounds while
//!   the state is 1 (CAS again whenever it reads 0), then loop on `swap(2)`: a swap that
//!   returns 0 took the lock (leaving 2, because other waiters may sleep), else sleep with
//!   `FUTEX_WAIT(state, 2)`.
//! - **unlock**: clear `owner_pid` and the owner identity, then `swap(0)` (release);
//!   `FUTEX_WAKE(1)` only if the old state was 2. The owner fields are cleared *before*
//!   the state is released, so they never erase the next holder's.
//!
//! This is the protocol of the Python package, which sleeps with `FUTEX_WAIT(state, 2)`
//! too, so fastipc and Python processes can share one mutex.
//!
//! # Who holds it
//! `owner_pid` (offset 12) is the holder's *process* id, as the Python peer expects.
//! Ownership between threads of one process is the [`MutexGuard`], not the id: any thread
//! may hold the lock, and unlocking checks nothing but the guard. fastipc holders also
//! write their identity, `pid << 32 | (start_time as u32)`, into the reserved area (see
//! [`mutex_identity_offset`]) and clear it on unlock; a process id plus start time names
//! one process even after the id is reused.
//!
//! # Dead owners
//! A waiter sleeps at most [`OWNER_CHECK_INTERVAL`] at a time. Whenever the lock has
//! stayed held for that long while it waited (and once more before a timed lock gives
//! up), it checks whether the holder is still alive:
//! - `owner_pid != 0`: the holder is that process; its start time is compared too when the
//!   identity word names the same process id (a fastipc holder), which catches a reused
//!   id. An identity word naming another, dead process is stale and is cleared.
//! - `owner_pid == 0` but an identity is recorded: a fastipc holder whose `owner_pid` was
//!   erased by a Python peer's late store (the Python unlock clears `owner_pid` after
//!   releasing the state); the identity is checked instead.
//! - neither: the holder is between its CAS and its first store (a few instructions), or
//!   a Python creator is still zero-filling the header. It is treated as alive: a process
//!   killed inside that window leaves a lock that is never recovered automatically
//!   (use [`Mutex::force_unlock`] once you know it is dead).
//!
//! A holder that has exited, including a zombie not yet reaped, is dead. If it is dead,
//! waiters race to take over with one compare-and-swap on a word whose old value can never
//! come back (the dead holder's identity, or its process id when only that is known), so
//! exactly one wins, takes over the still-locked state, and gets [`OwnerDied`] carrying
//! a usable guard (the data the lock protects may be half-updated). Everyone else keeps
//! waiting on the new holder. So a killed holder delays the others by at most about
//! [`OWNER_CHECK_INTERVAL`] plus the cost of the check (reading `/proc/PID/stat`), well
//! under 100 ms. All processes must share one process-id namespace.
//!
//! Known limits: (1) the Python peer's `force_release()` on a lock whose fastipc
//! holder died leaves that holder's identity recorded (fastipc's own
//! [`Mutex::force_unlock`] clears it); until a waiter sees a non-zero `owner_pid` and
//! clears it, a later Python holder whose `owner_pid` a Python peer erased could be taken
//! for that dead holder. (2) A process id reused, between a waiter's liveness check and
//! its compare-and-swap (microseconds), by a new process that takes this very lock is not
//! told apart.
//!
//! # `last_acquired_ns`
//! Reading `CLOCK_REALTIME` costs about 18 ns even through the vDSO on the reference
//! machine, more than a whole uncontended lock+unlock, so fastipc records
//! `last_acquired_ns` only on acquisitions that spun, slept or recovered the lock; the
//! uncontended path leaves the field alone. (The Python peer writes it on every
//! acquisition.) The field is informative only.
//!
//! [`MUTEX_UNLOCKED`]: super::layout::MUTEX_UNLOCKED
//! [`MUTEX_LOCKED`]: super::layout::MUTEX_LOCKED
//! [`MUTEX_CONTENDED`]: super::layout::MUTEX_CONTENDED
//! [`mutex_identity_offset`]: super::layout::mutex_identity_offset

use core::fmt;
use core::hint::spin_loop;
use core::sync::atomic::AtomicU64;
use core::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release};
use std::time::Duration;

use super::layout::{
    MUTEX_CONTENDED, MUTEX_LOCKED, MUTEX_MAGIC, MUTEX_SIZE, MUTEX_UNLOCKED, MutexInfo, OFF_FLAGS,
    OFF_LAST_NS, OFF_MAGIC, OFF_MUTEX_OWNER, OFF_MUTEX_STATE, OFF_RESERVED, OwnerIdentity,
    RawHeader, mutex_identity_offset,
};
use super::{SPIN_LIMIT, write_ns};
use crate::error::SyncError;
use crate::mem::MemRef;
use crate::sys::clock::Deadline;
use crate::sys::futex::{self, Scope};
use crate::sys::process::{self, ProcessId};

/// How long a waiter sleeps before it checks whether the holder is still alive; this
/// bounds how long a dead holder blocks the others (plus the check itself).
pub const OWNER_CHECK_INTERVAL: Duration = Duration::from_millis(20);

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
        let identity_off = mutex_identity_offset(hdr.addr());
        for off in (OFF_RESERVED..MUTEX_SIZE).step_by(4) {
            let outside_identity = off < identity_off || off >= identity_off + 8;
            if let (true, Some(w)) = (outside_identity, hdr.word_at(off)) {
                w.store(0, Relaxed);
            }
        }
        hdr.identity().store(0, Relaxed);
        hdr.word::<OFF_LAST_NS>().store(0, Relaxed);
        hdr.word::<{ OFF_LAST_NS + 4 }>().store(0, Relaxed);
        hdr.word::<OFF_MUTEX_OWNER>().store(0, Relaxed);
        hdr.word::<OFF_MUTEX_STATE>().store(MUTEX_UNLOCKED, Relaxed);
        hdr.word::<OFF_FLAGS>().store(0, Relaxed);
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
            self.mark_owner();
            Some(MutexGuard { mutex: *self })
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

    /// Locks, waiting until `deadline` at the latest.
    pub fn lock_deadline(
        &self,
        deadline: Deadline,
    ) -> Result<MutexGuard<'a>, LockError<MutexGuard<'a>>> {
        if let Some(guard) = self.try_lock() {
            return Ok(guard);
        }
        self.lock_contended(deadline)
    }

    /// Whether the lock is held (by anyone) at this moment.
    pub fn is_locked(&self) -> bool {
        self.state().load(Relaxed) != MUTEX_UNLOCKED
    }

    /// The recorded holder's process id, if any.
    pub fn owner_pid(&self) -> Option<u32> {
        match self.owner().load(Acquire) {
            0 => None,
            pid => Some(pid),
        }
    }

    /// `CLOCK_REALTIME` ns of the last acquisition that recorded it (see the module docs).
    pub fn last_acquired_ns(&self) -> u64 {
        let lo = self.hdr.word::<OFF_LAST_NS>().load(Relaxed);
        let hi = self.hdr.word::<{ OFF_LAST_NS + 4 }>().load(Relaxed);
        u64::from(lo) | (u64::from(hi) << 32)
    }

    /// The whole header, decoded.
    pub fn info(&self) -> MutexInfo {
        MutexInfo {
            magic: self.hdr.word::<OFF_MAGIC>().load(Acquire),
            flags: self.hdr.word::<OFF_FLAGS>().load(Acquire),
            state: self.state().load(Acquire),
            owner_pid: self.owner().load(Acquire),
            last_acquired_ns: self.last_acquired_ns(),
            owner_identity: OwnerIdentity::from_word(self.identity().load(Acquire)),
        }
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

    #[inline(always)]
    fn owner(&self) -> &'a core::sync::atomic::AtomicU32 {
        self.hdr.word::<OFF_MUTEX_OWNER>()
    }

    #[inline(always)]
    fn identity(&self) -> &'a AtomicU64 {
        self.hdr.identity()
    }

    /// Records this process as the holder: `owner_pid` first, then the identity (the
    /// order the liveness check relies on; see the module docs).
    #[inline(always)]
    fn mark_owner(&self) {
        let me = current_identity();
        self.owner().store((me >> 32) as u32, Relaxed);
        self.identity().store(me, Relaxed);
    }

    /// Unlock: owner fields first, then the state (release), then a wake if needed.
    #[inline(always)]
    fn release(&self) {
        self.owner().store(0, Relaxed);
        self.identity().store(0, Relaxed);
        if self.state().swap(MUTEX_UNLOCKED, Release) == MUTEX_CONTENDED {
            self.wake_one();
        }
    }

    #[cold]
    fn wake_one(&self) {
        futex::wake(self.state(), 1, self.scope);
    }

    /// Marks the holder and stamps `last_acquired_ns` after a slow acquisition.
    fn acquired_slowly(&self) -> MutexGuard<'a> {
        self.mark_owner();
        write_ns(
            self.hdr.word::<OFF_LAST_NS>(),
            self.hdr.word::<{ OFF_LAST_NS + 4 }>(),
        );
        MutexGuard { mutex: *self }
    }

    #[cold]
    fn lock_contended(
        &self,
        deadline: Deadline,
    ) -> Result<MutexGuard<'a>, LockError<MutexGuard<'a>>> {
        let state = self.state();
        // Spin while the holder runs and nobody sleeps; stop early once waiters sleep
        // (queue behind them) or the lock frees up.
        let spins = if deadline.has_passed() { 0 } else { SPIN_LIMIT };
        for _ in 0..spins {
            match state.load(Relaxed) {
                MUTEX_UNLOCKED => {
                    if state
                        .compare_exchange(MUTEX_UNLOCKED, MUTEX_LOCKED, Acquire, Relaxed)
                        .is_ok()
                    {
                        return Ok(self.acquired_slowly());
                    }
                }
                MUTEX_LOCKED => {}
                _ => break,
            }
            spin_loop();
        }
        let mut next_check = Deadline::after(OWNER_CHECK_INTERVAL);
        loop {
            if state.swap(MUTEX_CONTENDED, Acquire) == MUTEX_UNLOCKED {
                return Ok(self.acquired_slowly());
            }
            let final_round = deadline.has_passed();
            if final_round || next_check.has_passed() {
                if let Some(died) = self.recover_from_dead_owner() {
                    return Err(LockError::OwnerDied(died));
                }
                if final_round {
                    return Err(LockError::TimedOut);
                }
                next_check = Deadline::after(OWNER_CHECK_INTERVAL);
            }
            futex::wait(state, MUTEX_CONTENDED, deadline.min(next_check), self.scope);
        }
    }

    /// Checks the holder; if it is dead, tries to take over. Returns the takeover's
    /// `OwnerDied` when this caller won the race.
    ///
    /// Which word arbitrates the takeover depends on what names the holder, and is
    /// always a value that can never come back once changed, so no waiter can win
    /// against a holder that took the lock after the dead one:
    /// - a fastipc holder (identity recorded; `owner_pid` equal to its pid, or erased to
    ///   0 by a Python peer): CAS the identity word from the dead identity to ours, then
    ///   store our `owner_pid`;
    /// - a holder known only by `owner_pid` (a Python process; identity 0): CAS
    ///   `owner_pid` from the dead id to ours, then store our identity;
    /// - an identity that names neither (left behind by a fastipc holder that died and
    ///   was force-released by someone else): cleared if its process is dead (never while
    ///   it may belong to a live waiter that is taking over), and the check starts again.
    #[cold]
    fn recover_from_dead_owner(&self) -> Option<OwnerDied<MutexGuard<'a>>> {
        let my_pid = process::current_pid();
        for _ in 0..2 {
            if self.state().load(Acquire) == MUTEX_UNLOCKED {
                return None;
            }
            let owner = self.owner().load(Acquire);
            let ident_word = self.identity().load(Acquire);
            let (suspect, by_identity) = match (owner, OwnerIdentity::from_word(ident_word)) {
                // Anonymous holder: assumed alive (module docs).
                (0, None) => return None,
                (0, Some(id)) => (id, true),
                (pid, Some(id)) if id.pid == pid => (id, true),
                (pid, None) => (
                    OwnerIdentity {
                        pid,
                        start_time_low: 0,
                    },
                    false,
                ),
                (_, Some(stale)) => {
                    if stale.pid != my_pid && is_dead(stale) {
                        let _ = self
                            .identity()
                            .compare_exchange(ident_word, 0, AcqRel, Relaxed);
                        continue;
                    }
                    return None;
                }
            };
            if suspect.pid == my_pid || !is_dead(suspect) {
                return None;
            }
            let me = current_identity();
            let won = if by_identity {
                self.identity()
                    .compare_exchange(ident_word, me, AcqRel, Acquire)
                    .is_ok()
            } else {
                self.owner()
                    .compare_exchange(owner, my_pid, AcqRel, Acquire)
                    .is_ok()
            };
            if !won {
                return None;
            }
            self.owner().store(my_pid, Release);
            self.identity().store(me, Release);
            // The dead holder's state is 1 or 2: keep it held, and mark it contended so
            // that our unlock wakes whoever sleeps.
            self.state().swap(MUTEX_CONTENDED, Acquire);
            write_ns(
                self.hdr.word::<OFF_LAST_NS>(),
                self.hdr.word::<{ OFF_LAST_NS + 4 }>(),
            );
            return Some(OwnerDied {
                guard: MutexGuard { mutex: *self },
                pid: suspect.pid,
            });
        }
        None
    }
}

impl OwnerIdentity {
    /// Whether the process this identity names is alive: it exists, is not a zombie, and
    /// (when the start time is known) started when the identity says, so a reused
    /// process id does not count. The test a locker makes before taking over a mutex,
    /// for tools that show a holder's liveness.
    ///
    /// ```
    /// use fastipc::sync::layout::OwnerIdentity;
    /// use fastipc::sys::process::ProcessId;
    /// let me = ProcessId::current();
    /// let id = OwnerIdentity { pid: me.pid, start_time_low: me.start_time as u32 };
    /// assert!(id.is_alive());
    /// let reused = OwnerIdentity { start_time_low: id.start_time_low.wrapping_add(1).max(1), ..id };
    /// assert!(!reused.is_alive());
    /// ```
    pub fn is_alive(self) -> bool {
        !is_dead(self)
    }
}

/// Whether the process named by `id` is gone: exited (zombies included), or its id now
/// belongs to a process that started at another time. A process whose `/proc` entry
/// cannot be read while it answers signals counts as alive.
fn is_dead(id: OwnerIdentity) -> bool {
    if !process::is_alive(id.pid) {
        return true;
    }
    if id.start_time_low == 0 {
        return false;
    }
    match ProcessId::of(id.pid) {
        Some(p) => p.start_time as u32 != id.start_time_low,
        None => false,
    }
}

/// This process's identity word, `pid << 32 | (start_time as u32)`, cached; recomputed
/// when [`process::current_pid`] changes (after `refresh_pid` in a forked child).
#[inline(always)]
fn current_identity() -> u64 {
    static IDENTITY: AtomicU64 = AtomicU64::new(0);
    let pid = process::current_pid();
    let cached = IDENTITY.load(Relaxed);
    if (cached >> 32) as u32 == pid {
        cached
    } else {
        let start = ProcessId::of(pid).map_or(0, |p| p.start_time as u32);
        let word = OwnerIdentity {
            pid,
            start_time_low: start,
        }
        .to_word();
        IDENTITY.store(word, Relaxed);
        word
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

/// The previous holder of a mutex died while holding it; the caller now holds the lock.
///
/// Like `std::sync::PoisonError` (and `EOWNERDEAD`): the guard inside is valid and the
/// mutex works normally from here on, but the data the lock protects may have been left
/// half-updated. It is reported once, to the one locker that took the lock over.
///
/// ```no_run
/// # fn demo(mutex: fastipc::sync::Mutex<'_>) {
/// let guard = match mutex.lock() {
///     Ok(guard) => guard,
///     Err(died) => {
///         eprintln!("process {} died holding the lock; repairing", died.dead_pid());
///         died.into_guard()
///     }
/// };
/// # drop(guard); }
/// ```
pub struct OwnerDied<G> {
    guard: G,
    pid: u32,
}

impl<G> OwnerDied<G> {
    /// Wraps a guard taken over from dead process `pid` (for types built on a mutex that
    /// report the takeover with their own guard; see [`OwnerDied::map`]).
    pub fn new(guard: G, pid: u32) -> OwnerDied<G> {
        OwnerDied { guard, pid }
    }

    /// The guard: the caller holds the lock.
    pub fn into_guard(self) -> G {
        self.guard
    }

    /// A reference to the guard.
    pub fn guard(&self) -> &G {
        &self.guard
    }

    /// A mutable reference to the guard.
    pub fn guard_mut(&mut self) -> &mut G {
        &mut self.guard
    }

    /// The process id of the holder that died.
    pub fn dead_pid(&self) -> u32 {
        self.pid
    }

    /// Converts the guard (e.g. into a guard of a type that wraps the mutex).
    pub fn map<H>(self, f: impl FnOnce(G) -> H) -> OwnerDied<H> {
        OwnerDied {
            guard: f(self.guard),
            pid: self.pid,
        }
    }
}

impl<G> fmt::Debug for OwnerDied<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnerDied")
            .field("dead_pid", &self.pid)
            .finish_non_exhaustive()
    }
}

impl<G> fmt::Display for OwnerDied<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the previous holder of the mutex (process {}) died while holding it; the lock \
             is now held by the caller and the data it protects may be inconsistent",
            self.pid
        )
    }
}

impl<G> std::error::Error for OwnerDied<G> {}

/// Why a timed lock did not return a plain guard.
pub enum LockError<G> {
    /// The previous holder died holding the lock; the caller holds it now (see
    /// [`OwnerDied`]).
    OwnerDied(OwnerDied<G>),
    /// The deadline passed while the lock stayed held by a live holder.
    TimedOut,
}

impl<G> LockError<G> {
    /// The guard, when the caller holds the lock (after [`LockError::OwnerDied`]).
    pub fn into_guard(self) -> Option<G> {
        match self {
            LockError::OwnerDied(died) => Some(died.into_guard()),
            LockError::TimedOut => None,
        }
    }

    /// Whether this is [`LockError::TimedOut`].
    pub fn is_timeout(&self) -> bool {
        matches!(self, LockError::TimedOut)
    }

    /// Converts the guard inside, if any.
    pub fn map<H>(self, f: impl FnOnce(G) -> H) -> LockError<H> {
        match self {
            LockError::OwnerDied(died) => LockError::OwnerDied(died.map(f)),
            LockError::TimedOut => LockError::TimedOut,
        }
    }
}

impl<G> From<OwnerDied<G>> for LockError<G> {
    fn from(died: OwnerDied<G>) -> Self {
        LockError::OwnerDied(died)
    }
}

impl<G> fmt::Debug for LockError<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockError::OwnerDied(died) => f.debug_tuple("OwnerDied").field(died).finish(),
            LockError::TimedOut => f.write_str("TimedOut"),
        }
    }
}

impl<G> fmt::Display for LockError<G> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LockError::OwnerDied(died) => died.fmt(f),
            LockError::TimedOut => f.write_str("timed out waiting for the mutex"),
        }
    }
}

impl<G> std::error::Error for LockError<G> {}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mem::Region;
    use std::sync::atomic::Ordering;
    use std::time::Instant;

    fn region() -> Region {
        let r = Region::heap(MUTEX_SIZE);
        Mutex::init(r.mem()).unwrap();
        r
    }

    #[test]
    fn lock_unlock_records_and_clears_the_owner() {
        let r = region();
        let m = Mutex::attach(r.mem()).unwrap();
        assert_eq!(m.owner_pid(), None);
        let g = m.lock().unwrap();
        let info = m.info();
        assert_eq!(info.state, MUTEX_LOCKED);
        assert_eq!(info.owner_pid, std::process::id());
        assert_eq!(info.owner_identity.unwrap().pid, std::process::id());
        assert_eq!(info.magic, MUTEX_MAGIC);
        drop(g);
        let info = m.info();
        assert_eq!(info.state, MUTEX_UNLOCKED);
        assert_eq!(info.owner_pid, 0);
        assert_eq!(info.owner_identity, None);
    }

    #[test]
    fn try_lock_and_timeouts_when_held() {
        let r = region();
        let m = Mutex::attach(r.mem()).unwrap();
        let g = m.try_lock().unwrap();
        assert!(m.try_lock().is_none());
        assert!(m.lock_timeout(Duration::ZERO).unwrap_err().is_timeout());
        let start = Instant::now();
        assert!(matches!(
            m.lock_timeout(Duration::from_millis(30)),
            Err(LockError::TimedOut)
        ));
        assert!(start.elapsed() >= Duration::from_millis(30));
        g.unlock();
        drop(m.lock_timeout(Duration::ZERO).unwrap());
        drop(m.lock_timeout(Duration::MAX).unwrap());
    }

    #[test]
    fn attach_accepts_python_zero_magic_and_refuses_foreign_headers() {
        let r = Region::heap(MUTEX_SIZE);
        assert!(
            Mutex::attach(r.mem()).is_ok(),
            "zero-filled (Python-made) header"
        );
        r.mem()
            .atomic_u32(0)
            .unwrap()
            .store(0x1234_5678, Ordering::Relaxed);
        assert!(matches!(
            Mutex::attach(r.mem()),
            Err(SyncError::ForeignHeader {
                found: 0x1234_5678,
                ..
            })
        ));
        // init overwrites whatever was there.
        r.mem().atomic_u32(8).unwrap().store(2, Ordering::Relaxed);
        let m = Mutex::init(r.mem()).unwrap();
        assert!(!m.is_locked());
    }

    #[test]
    fn short_and_misaligned_buffers_are_errors() {
        let mut buf = [0u64; 9];
        let bytes: &mut [u8] = bytemuck::cast_slice_mut(&mut buf);
        assert!(matches!(
            Mutex::init(MemRef::from_mut(&mut bytes[..63])),
            Err(SyncError::Buffer {
                object: "mutex",
                ..
            })
        ));
        assert!(matches!(
            Mutex::attach(MemRef::from_mut(&mut bytes[1..])),
            Err(SyncError::Buffer { .. })
        ));
        // 4-aligned, not 8-aligned: fine, the identity moves to offset 28.
        let m = Mutex::init(MemRef::from_mut(&mut bytes[4..68])).unwrap();
        let _g = m.lock().unwrap();
        assert_eq!(m.info().owner_identity.unwrap().pid, std::process::id());
    }

    #[test]
    fn unlock_wakes_a_sleeping_thread() {
        let r = region();
        let m = Mutex::attach(r.mem()).unwrap();
        let g = m.lock().unwrap();
        std::thread::scope(|s| {
            let t = s.spawn(|| m.lock_timeout(Duration::from_secs(20)).is_ok());
            // Let the thread go to sleep (state 2) before unlocking.
            let deadline = Instant::now() + Duration::from_secs(10);
            while m.info().state != MUTEX_CONTENDED && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(1));
            }
            drop(g);
            assert!(t.join().unwrap());
        });
    }

    #[test]
    fn private_scope_works_between_threads() {
        let r = region();
        let m = Mutex::attach(r.mem()).unwrap().with_scope(Scope::Private);
        let cell = std::sync::atomic::AtomicU64::new(0);
        std::thread::scope(|s| {
            for _ in 0..3 {
                s.spawn(|| {
                    for _ in 0..2000 {
                        let _g = m.lock().unwrap();
                        let v = cell.load(Ordering::Relaxed);
                        cell.store(v + 1, Ordering::Relaxed);
                    }
                });
            }
        });
        assert_eq!(cell.load(Ordering::Relaxed), 6000);
    }

    /// The id of a process that is certainly dead: an exited and reaped child.
    fn dead_pid() -> u32 {
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        pid
    }

    #[test]
    fn a_dead_fastipc_holder_is_recovered_by_exactly_one_of_several_waiters() {
        let r = region();
        let m = Mutex::attach(r.mem()).unwrap();
        let dead = dead_pid();
        m.state().store(MUTEX_LOCKED, Ordering::Relaxed);
        // A fastipc holder whose owner_pid a Python peer erased: only the identity names it.
        m.owner().store(0, Ordering::Relaxed);
        m.identity().store(
            OwnerIdentity {
                pid: dead,
                start_time_low: 12345,
            }
            .to_word(),
            Ordering::Relaxed,
        );
        let results: Vec<bool> = std::thread::scope(|s| {
            let threads: Vec<_> = (0..4)
                .map(|_| {
                    s.spawn(|| match m.lock_timeout(Duration::from_secs(20)) {
                        Ok(_guard) => false,
                        Err(LockError::OwnerDied(died)) => {
                            assert_eq!(died.dead_pid(), dead);
                            // Hold it a little so the others really wait on us.
                            std::thread::sleep(Duration::from_millis(30));
                            true
                        }
                        Err(LockError::TimedOut) => panic!("timed out"),
                    })
                })
                .collect();
            threads.into_iter().map(|t| t.join().unwrap()).collect()
        });
        assert_eq!(
            results.iter().filter(|&&died| died).count(),
            1,
            "{results:?}"
        );
        assert!(!m.is_locked());
        assert_eq!(m.info().owner_identity, None);
    }

    #[test]
    fn a_dead_owner_is_recovered_once() {
        let r = region();
        let m = Mutex::attach(r.mem()).unwrap();
        // A holder known only by its process id (as a Python holder is).
        let dead = dead_pid();
        m.state().store(MUTEX_LOCKED, Ordering::Relaxed);
        m.owner().store(dead, Ordering::Relaxed);
        let err = m.lock_timeout(Duration::from_secs(10)).unwrap_err();
        let LockError::OwnerDied(died) = err else {
            panic!("expected OwnerDied, got {err:?}")
        };
        assert_eq!(died.dead_pid(), dead);
        assert_eq!(m.owner_pid(), Some(std::process::id()));
        drop(died.into_guard());
        assert!(!m.is_locked());
        drop(m.lock().unwrap());
    }

    #[test]
    fn a_reused_pid_with_another_start_time_is_dead() {
        let r = region();
        let m = Mutex::attach(r.mem()).unwrap();
        // A holder whose pid is alive (our parent) but whose recorded start time differs.
        let parent = std::os::unix::process::parent_id();
        let real = ProcessId::of(parent).unwrap().start_time as u32;
        m.state().store(MUTEX_LOCKED, Ordering::Relaxed);
        m.owner().store(parent, Ordering::Relaxed);
        m.identity().store(
            OwnerIdentity {
                pid: parent,
                start_time_low: real.wrapping_add(1).max(1),
            }
            .to_word(),
            Ordering::Relaxed,
        );
        let err = m.lock_timeout(Duration::from_secs(10)).unwrap_err();
        assert!(matches!(err, LockError::OwnerDied(ref d) if d.dead_pid() == parent));
    }

    #[test]
    fn a_live_owner_and_an_anonymous_holder_are_not_taken_over() {
        let r = region();
        let m = Mutex::attach(r.mem()).unwrap();
        let parent = std::os::unix::process::parent_id();
        // Live holder (our parent), no identity: wait, then time out.
        m.state().store(MUTEX_LOCKED, Ordering::Relaxed);
        m.owner().store(parent, Ordering::Relaxed);
        assert!(matches!(
            m.lock_timeout(Duration::from_millis(60)),
            Err(LockError::TimedOut)
        ));
        // Anonymous holder (owner 0, no identity): assumed alive.
        m.owner().store(0, Ordering::Relaxed);
        assert!(matches!(
            m.lock_timeout(Duration::from_millis(60)),
            Err(LockError::TimedOut)
        ));
        // Owner erased by a Python peer, identity of a live process: alive.
        m.identity().store(
            OwnerIdentity {
                pid: parent,
                start_time_low: ProcessId::of(parent).unwrap().start_time as u32,
            }
            .to_word(),
            Ordering::Relaxed,
        );
        assert!(matches!(
            m.lock_timeout(Duration::ZERO),
            Err(LockError::TimedOut)
        ));
        // A stale identity (another pid than the owner) is cleared by the check.
        m.owner().store(parent, Ordering::Relaxed);
        m.identity().store(
            OwnerIdentity {
                pid: 1,
                start_time_low: 5,
            }
            .to_word(),
            Ordering::Relaxed,
        );
        assert!(m.lock_timeout(Duration::ZERO).unwrap_err().is_timeout());
        assert_eq!(m.identity().load(Ordering::Relaxed), 0);
        // SAFETY: the fake holder never touches anything.
        unsafe { m.force_unlock() };
        assert!(m.try_lock().is_some());
    }

    #[test]
    fn owner_died_and_lock_error_helpers() {
        let died = OwnerDied::new(5u8, 77);
        assert_eq!(died.dead_pid(), 77);
        assert_eq!(*died.guard(), 5);
        assert!(died.to_string().contains("77"));
        let e: LockError<u8> = died.into();
        let e = e.map(u16::from);
        assert!(!e.is_timeout());
        assert_eq!(e.into_guard(), Some(5u16));
        assert_eq!(LockError::<u8>::TimedOut.into_guard(), None);
        assert_eq!(
            LockError::<u8>::TimedOut.to_string(),
            "timed out waiting for the mutex"
        );
    }
}
