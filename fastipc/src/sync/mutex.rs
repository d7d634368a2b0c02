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
//! # Who holds it
//! `owner_pid` (offset 12) is the holder's *process* id, as the Python peer expects.
//! Ownership between threads of one process is the [`MutexGuard`], not the id: any thread
//! may hold the lock, and unlocking checks nothing but the guard. fastipc holders also
//! record, in the reserved area the Python peer never touches (see [`layout`](super::layout)),
//! one *owner token* per acquisition and three side words describing it:
//! - the side words, each a u32 stored with release: the holder's process id
//!   ([`OFF_MUTEX_OWNER_ID_PID`]), the low 32 bits of its start time
//!   ([`OFF_MUTEX_OWNER_START`]) and its pid namespace ([`OFF_MUTEX_OWNER_NS`]);
//! - then the token (a u64 at [`mutex_token_offset`]): a generation counter (bits 63..1)
//!   one higher than the last acquisition's, with bit 0 ([`MUTEX_TOKEN_PUBLISHED`]) set,
//!   stored with release after the side words;
//! - then `owner_pid`.
//!
//! Unlock clears `owner_pid` and bit 0 of the token (the generation stays, so the next
//! acquisition's token is new), then releases the state. The side words stay, meaningless
//! while the token is unpublished. A process id plus start time names one process even
//! after the id is reused; the namespace says in which pid namespace that id means
//! something. Every byte range is accessed at one width only (the token as a u64, the
//! side words as u32s), so no atomic access overlaps one of another size.
//!
//! # Dead owners
//! A waiter sleeps at most [`OWNER_CHECK_INTERVAL`] at a time. Whenever the lock has
//! stayed held for that long while it waited (and once more before a timed lock gives
//! up), it reads the token (acquire), then the side words and `owner_pid` (acquire):
//! - the token is unpublished: no fastipc holder is recorded. The holder is a Python
//!   process (it records only `owner_pid`, not its pid namespace), or a fastipc holder
//!   between its state CAS and its token (a few instructions), or a Python creator is
//!   still zero-filling the header. Its namespace is unknown, so it is never judged dead:
//!   a Python holder killed while holding the lock leaves it held, as it would for Python
//!   peers (use [`Mutex::force_unlock`] once you know it is dead);
//! - the token is published and `owner_pid` is the side words' process id (a fastipc
//!   holder) or 0 (a fastipc holder whose `owner_pid` a Python peer's late store erased:
//!   the Python unlock clears `owner_pid` after releasing the state): that process is
//!   checked;
//! - the token is published but `owner_pid` names another process: the token is stale
//!   (left by a fastipc holder that died and whose lock a Python peer force-released).
//!   It is unpublished (compare-and-swap to the same generation, bit 0 clear) if its
//!   process is dead, and the check starts again.
//!
//! A checked holder is dead when its pid namespace is known and is the waiter's own, and
//! its process has exited (a zombie not yet reaped included; a process whose main thread
//! exited while other threads run on is alive) or its id now names a process that started
//! at another time: see `sys::process::has_exited`. A holder
//! in another pid namespace (containers sharing `/dev/shm`), or one whose namespace could
//! not be read, is never judged dead: its process id means nothing here.
//!
//! If it is dead, waiters race to take over with one compare-and-swap of the token, from
//! the value they read to the next generation (unpublished while the winner writes its
//! side words, then published). The winner takes over the still-locked state and gets
//! [`OwnerDied`] carrying a usable guard (the data the lock protects may be
//! half-updated). Everyone else keeps waiting on the new holder. So a killed fastipc
//! holder delays the others by at most about [`OWNER_CHECK_INTERVAL`] plus the cost of
//! the check (reading `/proc/PID/stat`), well under 100 ms.
//!
//! ## Why a successful takeover only takes a dead holder's lock
//! The three words a waiter judges are read one by one, and the holder may change
//! between the reads; the token makes that harmless:
//! 1. *A token value never comes back.* Every acquisition (lock or takeover) stores a
//!    token with a generation one higher than the token it found, and the only other
//!    writes clear bit 0 of the current value. So if the compare-and-swap finds the
//!    value the waiter read first, the token has not changed in between: no unlock, no
//!    acquisition, no other takeover happened since (an identity alone does not give
//!    this: a live process that unlocks and relocks writes the same identity again).
//! 2. *The side words the waiter read are that acquisition's.* Its acquire load of the
//!    token reads the holder's release store, which follows the holder's side words, so
//!    it reads those or later ones. A later side word is stored by a later acquisition,
//!    after the unlock cleared bit 0 (the unlock's release of the state is acquired by
//!    the next locker's CAS before its side stores) or after a takeover's
//!    compare-and-swap. The waiter reads that side word with acquire, so the token's
//!    change happens before the waiter's compare-and-swap, which then cannot find the
//!    old value (coherence). So a compare-and-swap that succeeds judged the pid, start
//!    time and namespace of the very acquisition it replaces.
//! 3. *Exactly one waiter wins*, since a success changes the token for good (1).
//!
//! Together: the waiter takes over only a holder that was, at its check, dead by the
//! words of its own acquisition, and nobody acquired the lock since. (The earlier
//! design compared the identity word only and read the namespace separately; a live
//! holder of another pid namespace that unlocked and relocked while a holder of the
//! waiter's namespace came between could have its lock taken:
//! `a_relock_by_the_same_live_holder_is_not_taken_over` replays that interleaving.)
//!
//! Known limits: (1) a Python peer's `force_release()` of a lock whose fastipc holder
//! died leaves that holder's token published (fastipc's own [`Mutex::force_unlock`]
//! clears it). A fastipc locker that then wins the state claims the stale token with a
//! compare-and-swap, and if a waiter's takeover won that race the locker leaves the
//! lock to the waiter and waits; but a locker that finds the token already taken over
//! (it reads the waiter's unpublished value) cannot tell, and both would hold. This
//! needs a Python force-release to race an automatic takeover of the same dead holder.
//! (2) Until a waiter sees a non-zero `owner_pid` and clears a stale token, a later
//! Python holder whose `owner_pid` a Python peer erased could be taken for that dead
//! holder.
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
//! [`mutex_token_offset`]: super::layout::mutex_token_offset
//! [`MUTEX_TOKEN_PUBLISHED`]: super::layout::MUTEX_TOKEN_PUBLISHED
//! [`OFF_MUTEX_OWNER_ID_PID`]: super::layout::OFF_MUTEX_OWNER_ID_PID
//! [`OFF_MUTEX_OWNER_START`]: super::layout::OFF_MUTEX_OWNER_START
//! [`OFF_MUTEX_OWNER_NS`]: super::layout::OFF_MUTEX_OWNER_NS

use core::fmt;
use core::hint::spin_loop;
use core::sync::atomic::AtomicU64;
use core::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release};
use std::time::Duration;

use super::layout::{
    MUTEX_CONTENDED, MUTEX_LOCKED, MUTEX_MAGIC, MUTEX_SIZE, MUTEX_TOKEN_PUBLISHED, MUTEX_UNLOCKED,
    MutexInfo, OFF_MAGIC, OFF_MUTEX_OWNER, OFF_MUTEX_OWNER_ID_PID, OFF_MUTEX_OWNER_NS,
    OFF_MUTEX_OWNER_START, OFF_MUTEX_STATE, OwnerIdentity, RawHeader,
};
use crate::error::SyncError;
use crate::mem::MemRef;
use crate::sys::clock::Deadline;
use crate::sys::futex::{self, Scope};
use crate::sys::process::{self, ProcessId, StartTime};

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

    #[inline(always)]
    fn owner(&self) -> &'a core::sync::atomic::AtomicU32 {
        self.hdr.word::<OFF_MUTEX_OWNER>()
    }

    #[inline(always)]
    fn token(&self) -> &'a AtomicU64 {
        self.hdr.token()
    }

    #[inline(always)]
    fn owner_id_pid(&self) -> &'a core::sync::atomic::AtomicU32 {
        self.hdr.word::<OFF_MUTEX_OWNER_ID_PID>()
    }

    #[inline(always)]
    fn owner_ns(&self) -> &'a core::sync::atomic::AtomicU32 {
        self.hdr.word::<OFF_MUTEX_OWNER_NS>()
    }

    #[inline(always)]
    fn owner_start(&self) -> &'a core::sync::atomic::AtomicU32 {
        self.hdr.word::<OFF_MUTEX_OWNER_START>()
    }

    /// Records this process as the holder of the acquisition it just made (it won the
    /// state). Returns `false` in one rare case: the token was still published by a
    /// holder that left without a fastipc unlock (a Python peer released its lock) and a
    /// waiter that judged that holder dead took the token over first — that waiter now
    /// holds the lock (it keeps the state held), and the caller must not use it.
    #[inline(always)]
    fn mark_owner(&self) -> bool {
        // Relaxed: we hold the state, and a fastipc unlock unpublishes the token before
        // it releases the state, so we read that (or our own earlier) value; no one else
        // writes an unpublished token (waiters compare-and-swap published ones only).
        let t = self.token().load(Relaxed);
        if t & MUTEX_TOKEN_PUBLISHED != 0 {
            return self.mark_owner_over_stale_token(t);
        }
        self.publish(t, current_identity(), process::pid_namespace_word());
        true
    }

    /// `mark_owner` when the token is published although we won the state: claim it
    /// with a compare-and-swap, racing any waiter that takes it over.
    #[cold]
    fn mark_owner_over_stale_token(&self, stale: u64) -> bool {
        let unpublished = stale & !MUTEX_TOKEN_PUBLISHED;
        match self
            .token()
            .compare_exchange(stale, unpublished, AcqRel, Relaxed)
        {
            Ok(_) => {}
            // A waiter cleared the stale token without taking anything over (see
            // `recover_from_dead_owner`): the acquisition is ours.
            Err(actual) if actual == unpublished => {}
            // A waiter took the token over: it holds the lock.
            Err(_) => return false,
        }
        self.publish(
            unpublished,
            current_identity(),
            process::pid_namespace_word(),
        );
        true
    }

    /// Publishes a new acquisition by the holder `me` (an identity word, see
    /// [`OwnerIdentity::to_word`]) of pid namespace `ns`, over the unpublished token
    /// `unpublished`: the side words first (release), then the token with the next
    /// generation (release), then `owner_pid`. A waiter that reads this token (acquire)
    /// reads these side words or later ones; later ones make its takeover fail (see the
    /// module docs).
    #[inline(always)]
    fn publish(&self, unpublished: u64, me: u64, ns: u32) {
        let pid = (me >> 32) as u32;
        self.owner_id_pid().store(pid, Release);
        self.owner_start().store(me as u32, Release);
        self.owner_ns().store(ns, Release);
        self.token().store(next_token(unpublished), Release);
        self.owner().store(pid, Relaxed);
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

    /// Checks the holder; if it is dead, tries to take over. Returns the takeover's
    /// `OwnerDied` when this caller won the race.
    ///
    /// Reads the token (acquire), then the side words and `owner_pid` (acquire), judges
    /// the holder they name, and takes over with one compare-and-swap from the token it
    /// read: see the module docs for why a success means that no acquisition happened
    /// since that token was published and that the side words were that acquisition's.
    /// A stale token (its holder is not `owner_pid`'s process) is unpublished if its
    /// process is dead, and the check starts again.
    #[cold]
    fn recover_from_dead_owner(&self) -> Option<OwnerDied<MutexGuard<'a>>> {
        let my_pid = process::current_pid();
        for _ in 0..2 {
            if self.state().load(Acquire) == MUTEX_UNLOCKED {
                return None;
            }
            let token = self.token().load(Acquire);
            if token & MUTEX_TOKEN_PUBLISHED == 0 {
                // No fastipc holder recorded: a Python holder (namespace unknown), an
                // anonymous one, or a fastipc holder before it publishes.
                return None;
            }
            let suspect = OwnerIdentity {
                pid: self.owner_id_pid().load(Acquire),
                start_time_low: self.owner_start().load(Acquire),
            };
            test_hook::call(test_hook::Step::SnapshotHalfRead);
            let ns = self.owner_ns().load(Acquire);
            let owner = self.owner().load(Acquire);
            let unpublished = token & !MUTEX_TOKEN_PUBLISHED;
            if owner != 0 && owner != suspect.pid {
                // Stale: a fastipc holder's token that a non-fastipc release left
                // published, while `owner_pid`'s process (a Python one) holds the lock.
                if suspect.pid != my_pid && is_dead(suspect, ns) {
                    let _ = self
                        .token()
                        .compare_exchange(token, unpublished, AcqRel, Relaxed);
                    continue;
                }
                return None;
            }
            if suspect.pid == my_pid || !is_dead(suspect, ns) {
                return None;
            }
            test_hook::call(test_hook::Step::BeforeTakeover);
            // The takeover: from the token judged, to the next generation (unpublished:
            // not the value a stale-token clear writes, so a locker racing us can tell
            // the two apart, see `mark_owner_over_stale_token`).
            let taken = next_token(unpublished) & !MUTEX_TOKEN_PUBLISHED;
            if self
                .token()
                .compare_exchange(token, taken, AcqRel, Acquire)
                .is_err()
            {
                return None;
            }
            self.publish(taken, current_identity(), process::pid_namespace_word());
            // The dead holder's state is 1 or 2: keep it held, and mark it contended so
            // that our unlock wakes whoever sleeps.
            self.state().swap(MUTEX_CONTENDED, Acquire);
            self.hdr.stamp_last_acquired();
            return Some(OwnerDied {
                guard: MutexGuard { mutex: *self },
                pid: suspect.pid,
            });
        }
        None
    }
}

/// The published token of the acquisition after the one `token` belongs to: the next
/// generation (bits 63..1), published (bit 0). Generations never repeat in practice
/// (2^63 acquisitions).
#[inline(always)]
const fn next_token(token: u64) -> u64 {
    ((token >> 1).wrapping_add(1) << 1) | MUTEX_TOKEN_PUBLISHED
}

/// Points inside the takeover where a unit test can make other "processes" act, to
/// interleave deterministically what a real race does rarely. Nothing outside tests.
mod test_hook {
    /// Where the takeover is.
    #[cfg_attr(not(test), allow(dead_code))]
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub(super) enum Step {
        /// The token and the holder's pid and start time are read; its pid namespace
        /// and `owner_pid` are not yet.
        SnapshotHalfRead,
        /// The holder was judged dead; the compare-and-swap is next.
        BeforeTakeover,
    }

    #[cfg(not(test))]
    #[inline(always)]
    pub(super) fn call(_: Step) {}

    /// What a test runs at each step.
    #[cfg(test)]
    pub(super) type Hook = Box<dyn FnMut(Step)>;

    #[cfg(test)]
    thread_local! {
        pub(super) static HOOK: std::cell::RefCell<Option<Hook>> =
            const { std::cell::RefCell::new(None) };
    }

    #[cfg(test)]
    pub(super) fn call(step: Step) {
        HOOK.with(|h| {
            if let Some(f) = h.borrow_mut().as_mut() {
                f(step)
            }
        })
    }
}

impl OwnerIdentity {
    /// Whether the process this identity names may still be alive, given the pid
    /// namespace recorded with it (`MutexInfo::owner_pid_namespace`): `false` only when
    /// it is certainly dead — the namespace is the caller's own, and the process has
    /// exited (zombies included) or its id now names a process that started at another
    /// time. The test a locker makes before taking over a mutex, for tools that show a
    /// holder's liveness.
    ///
    /// ```
    /// use fastipc::MemRef;
    /// use fastipc::sync::Mutex;
    /// use fastipc::sync::layout::OwnerIdentity;
    /// let mut buf = [0u64; 8];
    /// let m = Mutex::init(MemRef::from_mut(bytemuck::cast_slice_mut(&mut buf)))?;
    /// let _g = m.lock().unwrap();
    /// let info = m.info();
    /// let id = info.owner_identity.expect("a fastipc holder records its identity");
    /// let ns = info.owner_pid_namespace;
    /// assert!(id.is_alive(ns)); // this very process
    /// let reused = OwnerIdentity::new(id.pid, id.start_time_low.wrapping_add(1).max(1));
    /// assert!(!reused.is_alive(ns)); // the same id, started at another time
    /// // Recorded in another pid namespace: never judged dead from here.
    /// assert!(reused.is_alive(ns ^ 1));
    /// # Ok::<(), fastipc::error::SyncError>(())
    /// ```
    pub fn is_alive(self, pid_namespace: u32) -> bool {
        !is_dead(self, pid_namespace)
    }
}

/// Whether the fastipc holder `id`, recorded with pid namespace `ns`, is certainly gone
/// (see [`process::has_exited`]): never when `ns` is not this process's namespace.
fn is_dead(id: OwnerIdentity, ns: u32) -> bool {
    let start = match id.start_time_low {
        0 => StartTime::Unknown,
        low => StartTime::Low32(low),
    };
    process::has_exited(id.pid, ns, start)
}

/// This process's identity word, `pid << 32 | (start_time as u32)`, cached; recomputed
/// when [`process::current_pid`] changes (in a forked child).
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
#[non_exhaustive]
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
mod tests {
    use super::*;
    use crate::region::Region;
    use crate::sys::process::test_util::Zombie;
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

    /// Runs `f` on a thread of its own and returns its result; fails the test if `f`
    /// has not returned within `limit`. Unit tests check owners only once an hour (see
    /// `owner_check_interval`), so a lost wake-up leaves a waiter asleep and this turns
    /// the hang into a failure. A bound on a wait, not a speed claim: the work itself
    /// takes milliseconds.
    fn within<T: Send + 'static>(limit: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
        let (tx, rx) = std::sync::mpsc::channel();
        let thread = std::thread::spawn(move || {
            let _ = tx.send(f());
        });
        match rx.recv_timeout(limit) {
            Ok(v) => {
                thread.join().unwrap();
                v
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                panic!("not done within {limit:?}: a waiter was never woken (lost wake-up?)")
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => panic!("the test panicked"),
        }
    }

    /// Whether thread `tid` of this process is asleep (state `S`).
    fn thread_sleeps(tid: i32) -> bool {
        std::fs::read_to_string(format!("/proc/self/task/{tid}/stat"))
            .ok()
            .and_then(|s| Some(s[s.rfind(')')? + 1..].trim_start().starts_with('S')))
            .unwrap_or(false)
    }

    #[test]
    #[cfg_attr(miri, ignore = "reads /proc/self/task: not under Miri")]
    fn unlock_wakes_a_sleeping_thread() {
        // Owned by the closure (not borrowed), so that the watchdog may outlive the test.
        let r = region();
        within(Duration::from_secs(60), move || {
            let m = Mutex::attach(r.mem()).unwrap();
            let g = m.lock().unwrap();
            let (tx, rx) = std::sync::mpsc::channel();
            std::thread::scope(|s| {
                let t = s.spawn(move || {
                    tx.send(rustix::thread::gettid().as_raw_nonzero().get())
                        .unwrap();
                    drop(m.lock().unwrap()); // no deadline: only a wake-up ends it
                });
                // Unlock only once the waiter sleeps in FUTEX_WAIT (state 2, thread
                // asleep), so that nothing but the unlock's wake can end its sleep.
                let tid = rx.recv().unwrap();
                let deadline = Instant::now() + Duration::from_secs(20);
                while !(m.info().state == MUTEX_CONTENDED && thread_sleeps(tid)) {
                    assert!(Instant::now() < deadline, "the waiter never slept");
                    std::thread::sleep(Duration::from_millis(1));
                }
                drop(g);
                t.join().unwrap();
            });
        });
    }

    #[test]
    fn private_scope_works_between_threads() {
        // Owned by the closure (not borrowed), so that the watchdog may outlive the test.
        let r = region();
        let total = within(Duration::from_secs(120), move || {
            let m = Mutex::attach(r.mem()).unwrap().with_scope(Scope::Private);
            let cell = std::sync::atomic::AtomicU64::new(0);
            std::thread::scope(|s| {
                for _ in 0..3 {
                    s.spawn(|| {
                        for i in 0..if cfg!(miri) { 40 } else { 2000 } {
                            let _g = m.lock().unwrap();
                            let v = cell.load(Ordering::Relaxed);
                            if i % 50 == 0 {
                                // Hold the lock across a yield now and then, so that the
                                // others spin out and sleep on the state word.
                                std::thread::yield_now();
                            }
                            cell.store(v + 1, Ordering::Relaxed);
                        }
                    });
                }
            });
            cell.load(Ordering::Relaxed)
        });
        assert_eq!(total, if cfg!(miri) { 120 } else { 6000 });
    }

    /// This process's pid namespace (readable wherever these tests run).
    fn my_ns() -> u32 {
        process::pid_namespace()
            .expect("/proc/self/ns/pid is readable")
            .get()
    }

    /// Makes `m` look held by a fastipc process: state 1, `owner_pid`, identity and pid
    /// namespace as given.
    fn fake_holder(m: &Mutex<'_>, owner_pid: u32, identity: OwnerIdentity, ns: u32) {
        test_util::fake_holder(m, owner_pid, identity, ns);
    }

    /// Makes `m` look held by no recorded fastipc holder (token unpublished).
    fn unpublish(m: &Mutex<'_>) {
        let t = m.token().load(Ordering::Relaxed);
        m.token()
            .store(t & !MUTEX_TOKEN_PUBLISHED, Ordering::Relaxed);
    }

    /// The identity of an exited, unreaped child: dead, and its id not reusable while
    /// `zombie` lives.
    fn identity_of(zombie: &Zombie) -> OwnerIdentity {
        let id = ProcessId::of(zombie.pid()).unwrap();
        OwnerIdentity {
            pid: id.pid,
            start_time_low: id.start_time as u32,
        }
    }

    #[test]
    #[cfg_attr(miri, ignore = "makes a zombie process: not under Miri")]
    fn a_dead_fastipc_holder_is_recovered_by_exactly_one_of_several_waiters() {
        let r = region();
        let m = Mutex::attach(r.mem()).unwrap();
        let dead = Zombie::new();
        // A fastipc holder whose owner_pid a Python peer erased: only the identity names it.
        fake_holder(&m, 0, identity_of(&dead), my_ns());
        let results: Vec<bool> = std::thread::scope(|s| {
            let threads: Vec<_> = (0..4)
                .map(|_| {
                    s.spawn(|| {
                        test_knob::short_owner_checks();
                        match m.lock_timeout(Duration::from_secs(20)) {
                            Ok(_guard) => false,
                            Err(LockError::OwnerDied(died)) => {
                                assert_eq!(died.dead_pid(), dead.pid());
                                // Hold it a little so the others really wait on us.
                                std::thread::sleep(Duration::from_millis(30));
                                true
                            }
                            Err(LockError::TimedOut) => panic!("timed out"),
                        }
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
    #[cfg_attr(miri, ignore = "makes a zombie process: not under Miri")]
    fn a_dead_owner_is_recovered_once_and_records_the_new_holder() {
        test_knob::short_owner_checks();
        let r = region();
        let m = Mutex::attach(r.mem()).unwrap();
        let dead = Zombie::new();
        fake_holder(&m, dead.pid(), identity_of(&dead), my_ns());
        let err = m.lock_timeout(Duration::from_secs(10)).unwrap_err();
        let LockError::OwnerDied(died) = err else {
            panic!("expected OwnerDied, got {err:?}")
        };
        assert_eq!(died.dead_pid(), dead.pid());
        let info = m.info();
        assert_eq!(info.owner_pid, std::process::id());
        assert_eq!(info.owner_identity.unwrap().pid, std::process::id());
        assert_eq!(info.owner_pid_namespace, my_ns());
        drop(died.into_guard());
        assert!(!m.is_locked());
        drop(m.lock().unwrap());
    }

    #[test]
    #[cfg_attr(miri, ignore = "makes a zombie process: not under Miri")]
    fn a_holder_known_only_by_its_process_id_is_never_taken_over() {
        // As a Python holder is: `owner_pid` alone, no namespace. Even a dead id (a
        // zombie here) may name a live process of another pid namespace.
        let r = region();
        let m = Mutex::attach(r.mem()).unwrap();
        let dead = Zombie::new();
        m.state().store(MUTEX_LOCKED, Ordering::Relaxed);
        m.owner().store(dead.pid(), Ordering::Relaxed);
        assert!(m.lock_timeout(Duration::ZERO).unwrap_err().is_timeout());
        assert_eq!(m.owner_pid(), Some(dead.pid()));
    }

    #[test]
    #[cfg_attr(miri, ignore = "makes a zombie process: not under Miri")]
    fn a_holder_of_another_or_an_unknown_pid_namespace_is_never_taken_over() {
        let r = region();
        let m = Mutex::attach(r.mem()).unwrap();
        let dead = Zombie::new();
        for ns in [0, my_ns() ^ 1] {
            // The id names an exited process *here*; in its own namespace it may run.
            fake_holder(&m, dead.pid(), identity_of(&dead), ns);
            assert!(
                m.lock_timeout(Duration::ZERO).unwrap_err().is_timeout(),
                "namespace {ns}"
            );
            // A stale identity of that namespace is not cleared either.
            m.owner()
                .store(std::os::unix::process::parent_id(), Ordering::Relaxed);
            assert!(m.lock_timeout(Duration::ZERO).unwrap_err().is_timeout());
            assert_eq!(m.info().owner_identity, Some(identity_of(&dead)));
        }
        // The same holder in our own namespace is dead.
        fake_holder(&m, dead.pid(), identity_of(&dead), my_ns());
        assert!(matches!(
            m.lock_timeout(Duration::ZERO),
            Err(LockError::OwnerDied(_))
        ));
    }

    /// Finding 4 of issue 10, interleaved deterministically. A live fastipc holder H of
    /// another pid namespace holds the lock (its pid, here that of a zombie, names an
    /// exited process in ours). A waiter W reads H's token and pid; H unlocks, and H2,
    /// of W's namespace (its `owner_pid` erased by a Python peer), locks; W reads H2's
    /// namespace and so judges H's pid in its own namespace: dead. Before W's
    /// compare-and-swap, H2 unlocks and H relocks. The old takeover compared the identity
    /// word, which H's relock wrote again, and took H's live lock; the token's generation
    /// makes the relock a new value, so the takeover fails.
    #[test]
    #[cfg_attr(miri, ignore = "makes a zombie process: not under Miri")]
    fn a_relock_by_the_same_live_holder_is_not_taken_over() {
        // 'static: the hook is a boxed closure that uses the mutex.
        let r: &'static Region = Box::leak(Box::new(region()));
        let m = Mutex::attach(r.mem()).unwrap();
        let zombie = Zombie::new();
        let h = identity_of(&zombie);
        let other_ns = my_ns() ^ 1;
        let parent = std::os::unix::process::parent_id();
        let h2 = OwnerIdentity {
            pid: parent,
            start_time_low: ProcessId::of(parent).unwrap().start_time as u32,
        };
        fake_holder(&m, h.pid, h, other_ns);
        let steps = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
        let seen = steps.clone();
        test_hook::HOOK.with(|hook| {
            *hook.borrow_mut() = Some(Box::new(move |step| {
                seen.borrow_mut().push(step);
                match step {
                    test_hook::Step::SnapshotHalfRead => {
                        m.release(); // H unlocks
                        fake_holder(&m, 0, h2, my_ns()); // H2 locks
                    }
                    test_hook::Step::BeforeTakeover => {
                        m.release(); // H2 unlocks
                        fake_holder(&m, h.pid, h, other_ns); // H relocks
                    }
                }
            }));
        });
        let result = m.lock_timeout(Duration::ZERO);
        test_hook::HOOK.with(|hook| hook.borrow_mut().take());
        assert_eq!(
            *steps.borrow(),
            [
                test_hook::Step::SnapshotHalfRead,
                test_hook::Step::BeforeTakeover
            ],
            "the waiter judged H dead, as the interleaving intends"
        );
        assert!(
            result.as_ref().is_err_and(LockError::is_timeout),
            "the live holder's lock was taken over: {result:?}"
        );
        let info = m.info();
        assert_eq!(info.owner_identity, Some(h));
        assert_eq!(info.owner_pid_namespace, other_ns);
        assert_eq!(info.owner_pid, h.pid);
    }

    /// A token left published by a holder that never ran a fastipc unlock (a Python
    /// peer force-released its lock): the next fastipc locker claims it and records
    /// itself; if a waiter cleared it meanwhile the lock is still the locker's; if a
    /// waiter took it over first, the locker leaves the lock to that waiter.
    #[test]
    fn a_stale_token_is_claimed_or_left_to_the_waiter_that_took_it_over() {
        let r = region();
        let m = Mutex::attach(r.mem()).unwrap();
        let me = std::process::id();
        let gone = OwnerIdentity {
            pid: me.wrapping_add(1),
            start_time_low: 7,
        };
        let stale_lock = |m: &Mutex<'_>| {
            fake_holder(m, 0, gone, my_ns());
            m.state().store(MUTEX_UNLOCKED, Ordering::Relaxed);
            m.token().load(Ordering::Relaxed)
        };
        // No race: the locker claims the stale token and records itself.
        let stale = stale_lock(&m);
        let g = m.try_lock().expect("free");
        assert_eq!(m.info().owner_identity.map(|id| id.pid), Some(me));
        assert!(m.token().load(Ordering::Relaxed) > stale);
        drop(g);
        // A waiter cleared the stale token (same generation, unpublished) between the
        // locker's load and its compare-and-swap: the acquisition is still the locker's.
        let stale = stale_lock(&m);
        m.state().store(MUTEX_LOCKED, Ordering::Relaxed); // the locker won the state
        m.token()
            .store(stale & !MUTEX_TOKEN_PUBLISHED, Ordering::Relaxed);
        assert!(m.mark_owner_over_stale_token(stale));
        assert_eq!(m.info().owner_identity.map(|id| id.pid), Some(me));
        m.release();
        // A waiter took the stale token over first (next generation, then its own
        // publish): the locker must not use the lock, which stays held for the waiter.
        let stale = stale_lock(&m);
        m.state().store(MUTEX_LOCKED, Ordering::Relaxed);
        let waiter = OwnerIdentity {
            pid: me.wrapping_add(2),
            start_time_low: 9,
        };
        let taken = next_token(stale & !MUTEX_TOKEN_PUBLISHED) & !MUTEX_TOKEN_PUBLISHED;
        m.token().store(taken, Ordering::Relaxed);
        m.publish(taken, waiter.to_word(), my_ns());
        assert!(!m.mark_owner_over_stale_token(stale));
        assert!(m.is_locked());
        assert_eq!(m.info().owner_identity, Some(waiter));
        m.release();
    }

    #[test]
    #[cfg_attr(miri, ignore = "reads /proc: not under Miri")]
    fn a_reused_pid_with_another_start_time_is_dead() {
        test_knob::short_owner_checks();
        let r = region();
        let m = Mutex::attach(r.mem()).unwrap();
        // A holder whose pid is alive (our parent) but whose recorded start time differs.
        let parent = std::os::unix::process::parent_id();
        let real = ProcessId::of(parent).unwrap().start_time as u32;
        let recorded = OwnerIdentity {
            pid: parent,
            start_time_low: real.wrapping_add(1).max(1),
        };
        fake_holder(&m, parent, recorded, my_ns());
        let err = m.lock_timeout(Duration::from_secs(10)).unwrap_err();
        assert!(matches!(err, LockError::OwnerDied(ref d) if d.dead_pid() == parent));
    }

    #[test]
    #[cfg_attr(miri, ignore = "reads /proc: not under Miri")]
    fn a_live_owner_and_an_anonymous_holder_are_not_taken_over() {
        let r = region();
        let m = Mutex::attach(r.mem()).unwrap();
        let parent = std::os::unix::process::parent_id();
        let parent_id = OwnerIdentity {
            pid: parent,
            start_time_low: ProcessId::of(parent).unwrap().start_time as u32,
        };
        // Live fastipc holder (our parent): wait, then time out.
        fake_holder(&m, parent, parent_id, my_ns());
        assert!(matches!(
            m.lock_timeout(Duration::from_millis(60)),
            Err(LockError::TimedOut)
        ));
        // Anonymous holder (owner 0, no identity): assumed alive.
        m.owner().store(0, Ordering::Relaxed);
        unpublish(&m);
        assert!(matches!(
            m.lock_timeout(Duration::from_millis(60)),
            Err(LockError::TimedOut)
        ));
        // Owner erased by a Python peer, identity of a live process: alive.
        fake_holder(&m, 0, parent_id, my_ns());
        assert!(matches!(
            m.lock_timeout(Duration::ZERO),
            Err(LockError::TimedOut)
        ));
        // A stale identity (another pid than the owner) of a dead process is cleared by
        // the check.
        let dead = Zombie::new();
        fake_holder(&m, parent, identity_of(&dead), my_ns());
        assert!(m.lock_timeout(Duration::ZERO).unwrap_err().is_timeout());
        assert_eq!(m.info().owner_identity, None);
        // SAFETY: the fake holder never touches anything.
        unsafe { m.force_unlock() };
        assert!(m.try_lock().is_some());
    }

    /// A segment holding an unlocked mutex, unlinked on drop.
    struct MutexSegment(crate::sys::shm::Segment);

    impl MutexSegment {
        fn new(tag: &str) -> MutexSegment {
            static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
            let name = format!(
                "fastipc-unit-mutex-{tag}-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::Relaxed)
            );
            let seg = crate::sys::shm::Segment::create(&name, MUTEX_SIZE, |mem| {
                Mutex::init(mem).unwrap();
            })
            .unwrap();
            MutexSegment(seg)
        }
    }

    impl Drop for MutexSegment {
        fn drop(&mut self) {
            let _ = crate::sys::shm::Segment::unlink(self.0.name());
        }
    }

    #[test]
    #[cfg_attr(miri, ignore = "runs Python: not under Miri")]
    fn a_holder_whose_main_thread_exited_while_another_runs_keeps_the_lock() {
        let seg = MutexSegment::new("leader");
        let m = Mutex::attach(seg.0.mem()).unwrap();
        // A fastipc-style holder (owner pid and identity) whose main thread then exits
        // while its other thread, the one "holding" the lock, runs on.
        let holder = crate::sys::process::test_util::LeaderExited::spawn(&format!(
            "m = mmap.mmap(os.open('/dev/shm/{}', os.O_RDWR), 64)\n\
             start = int(open('/proc/self/stat').read().rsplit(')', 1)[1].split()[19])\n\
             struct.pack_into('<II', m, 8, 1, os.getpid())\n\
             struct.pack_into('<III', m, 36, os.getpid(), os.stat('/proc/self/ns/pid').st_ino, start & 0xFFFFFFFF)\n\
             struct.pack_into('<Q', m, 24, 3)",
            seg.0.name()
        ));
        assert_eq!(m.owner_pid(), Some(holder.pid()));
        assert_eq!(m.info().owner_identity.unwrap().pid, holder.pid());
        assert_eq!(m.info().owner_pid_namespace, my_ns());
        // The deadline's final check judges the holder: alive, so no takeover.
        let r = m.lock_timeout(Duration::from_secs(1));
        assert!(holder.still_runs());
        assert!(
            r.as_ref().is_err_and(|e| e.is_timeout()),
            "the lock of a live holder was taken over: {r:?}"
        );
    }

    /// Forks; the child runs `child` and exits with its result (0 when it returns true,
    /// 1 when false, 2 when it panicked) without unwinding into the test harness. Returns
    /// the child's pid and its exit status, waited for at most 20 s (then it is killed
    /// and the test fails).
    fn fork_and_wait(child: impl FnOnce() -> bool) -> (u32, i32) {
        // SAFETY: fork is sound to call; the child only runs `child` (fastipc calls:
        // atomics, futex, reading /proc with the allocator, which glibc makes fork-safe)
        // and leaves with `_exit`, never returning into the parent's code.
        let pid = unsafe { libc::fork() };
        assert!(pid >= 0, "fork failed");
        if pid == 0 {
            let ok = std::panic::catch_unwind(std::panic::AssertUnwindSafe(child));
            let code = match ok {
                Ok(true) => 0,
                Ok(false) => 1,
                Err(_) => 2,
            };
            // SAFETY: ends the child at once, running no atexit handler of the parent.
            unsafe { libc::_exit(code) };
        }
        let deadline = Instant::now() + Duration::from_secs(20);
        let mut status = 0;
        loop {
            // SAFETY: `pid` is our child; `status` is a valid out-pointer.
            let r = unsafe { libc::waitpid(pid, &mut status, libc::WNOHANG) };
            if r == pid {
                break;
            }
            if Instant::now() > deadline {
                // SAFETY: kills our own child.
                unsafe { libc::kill(pid, libc::SIGKILL) };
                // SAFETY: reaps it; `status` is a valid out-pointer.
                unsafe { libc::waitpid(pid, &mut status, 0) };
                panic!("the forked child did not finish within 20 s");
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        assert!(libc::WIFEXITED(status), "child status {status:#x}");
        (pid as u32, libc::WEXITSTATUS(status))
    }

    /// Finding 8 of issue 10: a child made by `fork()` records its own pid when it
    /// locks, with no `refresh_pid` call (the parent's cache was filled before the fork).
    #[test]
    #[cfg_attr(miri, ignore = "forks: not under Miri")]
    fn a_forked_child_locks_under_its_own_process_id() {
        let seg = MutexSegment::new("fork");
        let m = Mutex::attach(seg.0.mem()).unwrap();
        drop(m.lock().unwrap()); // fills this process's caches
        assert_eq!(process::current_pid(), std::process::id());
        let (child, code) = fork_and_wait(|| {
            let me = std::process::id();
            let g = m.lock().unwrap();
            let info = m.info();
            drop(g);
            info.owner_pid == me && info.owner_identity.is_some_and(|id| id.pid == me)
        });
        assert_ne!(child, std::process::id());
        assert_eq!(
            code, 0,
            "the child's lock recorded another pid than its own"
        );
    }

    /// A child of a waiter that locks and dies holding the lock is the dead holder, not
    /// the parent: the parent (a waiter) takes the lock over from the child's pid. With
    /// the parent's pid recorded, the parent would take the holder for itself, alive.
    #[test]
    #[cfg_attr(miri, ignore = "forks: not under Miri")]
    fn a_forked_child_that_dies_holding_the_lock_is_recovered_from() {
        test_knob::short_owner_checks();
        let seg = MutexSegment::new("fork-dies");
        let m = Mutex::attach(seg.0.mem()).unwrap();
        drop(m.lock().unwrap());
        let (child, code) = fork_and_wait(|| {
            core::mem::forget(m.lock().unwrap()); // exits holding it
            true
        });
        assert_eq!(code, 0);
        assert_eq!(m.owner_pid(), Some(child));
        let r = m.lock_timeout(Duration::from_secs(10));
        match r {
            Err(LockError::OwnerDied(died)) => assert_eq!(died.dead_pid(), child),
            other => panic!("expected OwnerDied from the child {child}, got {other:?}"),
        }
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
