//! Who holds a [`Mutex`](super::Mutex): the owner record of each acquisition, and the
//! takeover of a dead holder's lock.
//!
//! # Who holds it
//! `owner_pid` (offset 12) is the holder's *process* id, as the Python peer expects.
//! Ownership between threads of one process is the [`MutexGuard`], not the id: any thread
//! may hold the lock, and unlocking checks nothing but the guard. fastipc holders also
//! record, in the reserved area the Python peer never touches (see [`layout`](crate::sync::layout)),
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
//! [`MUTEX_UNLOCKED`]: crate::sync::layout::MUTEX_UNLOCKED
//! [`MUTEX_LOCKED`]: crate::sync::layout::MUTEX_LOCKED
//! [`MUTEX_CONTENDED`]: crate::sync::layout::MUTEX_CONTENDED
//! [`mutex_token_offset`]: crate::sync::layout::mutex_token_offset
//! [`MUTEX_TOKEN_PUBLISHED`]: crate::sync::layout::MUTEX_TOKEN_PUBLISHED
//! [`OFF_MUTEX_OWNER_ID_PID`]: crate::sync::layout::OFF_MUTEX_OWNER_ID_PID
//! [`OFF_MUTEX_OWNER_START`]: crate::sync::layout::OFF_MUTEX_OWNER_START
//! [`OFF_MUTEX_OWNER_NS`]: crate::sync::layout::OFF_MUTEX_OWNER_NS
//! [`MutexGuard`]: super::MutexGuard
//! [`OwnerDied`]: super::OwnerDied
//! [`Mutex::force_unlock`]: super::Mutex::force_unlock
//! [`OWNER_CHECK_INTERVAL`]: super::OWNER_CHECK_INTERVAL

use core::sync::atomic::AtomicU64;
use core::sync::atomic::Ordering::{AcqRel, Acquire, Relaxed, Release};

use super::{Mutex, MutexGuard, OwnerDied};
use crate::sync::layout::{
    MUTEX_CONTENDED, MUTEX_TOKEN_PUBLISHED, MUTEX_UNLOCKED, OFF_MUTEX_OWNER,
    OFF_MUTEX_OWNER_ID_PID, OFF_MUTEX_OWNER_NS, OFF_MUTEX_OWNER_START, OwnerIdentity,
};
use crate::sys::process::{self, ProcessId, StartTime};

impl<'a> Mutex<'a> {
    #[inline(always)]
    pub(super) fn owner(&self) -> &'a core::sync::atomic::AtomicU32 {
        self.hdr.word::<OFF_MUTEX_OWNER>()
    }

    #[inline(always)]
    pub(super) fn token(&self) -> &'a AtomicU64 {
        self.hdr.token()
    }

    #[inline(always)]
    pub(super) fn owner_id_pid(&self) -> &'a core::sync::atomic::AtomicU32 {
        self.hdr.word::<OFF_MUTEX_OWNER_ID_PID>()
    }

    #[inline(always)]
    pub(super) fn owner_ns(&self) -> &'a core::sync::atomic::AtomicU32 {
        self.hdr.word::<OFF_MUTEX_OWNER_NS>()
    }

    #[inline(always)]
    pub(super) fn owner_start(&self) -> &'a core::sync::atomic::AtomicU32 {
        self.hdr.word::<OFF_MUTEX_OWNER_START>()
    }

    /// Records this process as the holder of the acquisition it just made (it won the
    /// state). Returns `false` in one rare case: the token was still published by a
    /// holder that left without a fastipc unlock (a Python peer released its lock) and a
    /// waiter that judged that holder dead took the token over first — that waiter now
    /// holds the lock (it keeps the state held), and the caller must not use it.
    #[inline(always)]
    pub(super) fn mark_owner(&self) -> bool {
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
    pub(super) fn mark_owner_over_stale_token(&self, stale: u64) -> bool {
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
    pub(super) fn publish(&self, unpublished: u64, me: u64, ns: u32) {
        let pid = (me >> 32) as u32;
        self.owner_id_pid().store(pid, Release);
        self.owner_start().store(me as u32, Release);
        self.owner_ns().store(ns, Release);
        self.token().store(next_token(unpublished), Release);
        self.owner().store(pid, Relaxed);
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
    pub(super) fn recover_from_dead_owner(&self) -> Option<OwnerDied<MutexGuard<'a>>> {
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
            return Some(OwnerDied::new(MutexGuard { mutex: *self }, suspect.pid));
        }
        None
    }
}

/// The published token of the acquisition after the one `token` belongs to: the next
/// generation (bits 63..1), published (bit 0). Generations never repeat in practice
/// (2^63 acquisitions).
#[inline(always)]
pub(super) const fn next_token(token: u64) -> u64 {
    ((token >> 1).wrapping_add(1) << 1) | MUTEX_TOKEN_PUBLISHED
}

/// Points inside the takeover where a unit test can make other "processes" act, to
/// interleave deterministically what a real race does rarely. Nothing outside tests.
pub(super) mod test_hook {
    /// Where the takeover is.
    #[cfg_attr(not(test), allow(dead_code))]
    #[derive(Clone, Copy, Debug, PartialEq, Eq)]
    pub(in crate::sync::mutex) enum Step {
        /// The token and the holder's pid and start time are read; its pid namespace
        /// and `owner_pid` are not yet.
        SnapshotHalfRead,
        /// The holder was judged dead; the compare-and-swap is next.
        BeforeTakeover,
    }

    #[cfg(not(test))]
    #[inline(always)]
    pub(in crate::sync::mutex) fn call(_: Step) {}

    /// What a test runs at each step.
    #[cfg(test)]
    pub(in crate::sync::mutex) type Hook = Box<dyn FnMut(Step)>;

    #[cfg(test)]
    thread_local! {
        pub(in crate::sync::mutex) static HOOK: std::cell::RefCell<Option<Hook>> =
            const { std::cell::RefCell::new(None) };
    }

    #[cfg(test)]
    pub(in crate::sync::mutex) fn call(step: Step) {
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
    /// use fastipc::sync::OwnerIdentity;
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
