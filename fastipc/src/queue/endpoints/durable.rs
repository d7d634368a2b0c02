//! Durable consumers: entries that outlive their registrant (the parent module's table
//! and entry layout).
//!
//! A durable consumer's entry (role 4) outlives its registrant: it is never reclaimed or
//! evicted for a dead registrant, so its position keeps holding the producers of a
//! lossless queue back while no process reads for it, and a later registrant with the
//! same `key` takes it over and resumes at its position ([`Ring::register_durable`](crate::queue::Ring::register_durable)).
//! Its `intent` says who holds it: [`NO_INTENT`] dormant (its holder let go),
//! [`HOLD_LOCKED`] being taken over (identity being rewritten), [`held`]`(pid)` held by
//! the registrant the identity fields name (its pid in the value, so that a taker that
//! judged an earlier holder dead cannot take the entry from a live later one). Takers CAS it (acquire) from dormant, or from held
//! when the holder is certainly dead, to locked; write their identity; then store held
//! (release: whoever reads held reads the identity). Only [`Ring::release_durable`](crate::queue::Ring::release_durable) frees
//! the entry. A process killed between its locking CAS and its held store leaves the
//! entry locked for good (refused as in use), as with the claiming state.

use core::sync::atomic::Ordering::{Acquire, Relaxed, Release, SeqCst};

use super::{NO_INTENT, Role, Table, state};
use crate::sys::process::ProcessId;

/// A durable consumer's `intent` while a registrant takes it over.
pub const HOLD_LOCKED: u64 = u64::MAX - 1;
/// Bit 62 (bit 63 clear) marks a held durable consumer's `intent`: [`held`].
pub const HOLD_TAG: u64 = 1 << 62;

/// A durable consumer's `intent` while the registrant its identity names, of process
/// `pid`, holds it.
pub const fn held(pid: u32) -> u64 {
    HOLD_TAG | pid as u64
}

/// Whether a durable consumer's `intent` says "held".
pub(super) const fn is_held(intent: u64) -> bool {
    intent >> 62 == 1
}

impl Table {
    /// Registers the durable consumer `key` (module docs, "Durable consumers"): takes over
    /// its entry if one exists, dormant or held by a dead registrant, and returns it with
    /// its kept position; else registers a new one as [`Table::register_consumer`] does.
    /// `Err(Some(pid))` when a live registrant holds it (`pid` 0: being taken over),
    /// `Err(None)` when the table is full.
    pub(crate) fn register_durable(
        &self,
        key: u64,
        position: u64,
        lossless: bool,
        head: impl Fn() -> u64,
    ) -> Result<(usize, u64), Option<u32>> {
        if let Some(i) = self.find_durable(key) {
            self.take_hold(i, key)?;
            let me = ProcessId::current();
            let e = self.entry(i);
            e.pid.store(me.pid, Relaxed);
            e.pid_ns.store(me.pid_namespace, Relaxed);
            e.start_time.store(me.start_time, Relaxed);
            // Release: a taker that reads "held" (acquire) judges this identity.
            e.intent.store(held(me.pid), Release);
            return Ok((i, e.position.load(SeqCst)));
        }
        self.register_consumer_keyed(Role::DurableConsumer, position, lossless, head, key)
            .ok_or(None)
    }

    /// The active durable-consumer entry of `key`, if any.
    fn find_durable(&self, key: u64) -> Option<usize> {
        (0..self.scan_len()).find(|&i| {
            let e = self.entry(i);
            e.state.load(Acquire) == state::ACTIVE
                && e.role.load(Relaxed) == Role::DurableConsumer.code()
                && e.key.load(Relaxed) == key
        })
    }

    /// Locks durable entry `i` (of `key`) for its taker: from dormant, or from held by a
    /// certainly dead registrant. `Err(pid)` when a live registrant holds it (0: locked by
    /// another taker, or no longer this key's).
    fn take_hold(&self, i: usize, key: u64) -> Result<(), Option<u32>> {
        let e = self.entry(i);
        // Acquire: pairs with the release store of "held", after the identity.
        let hold = e.intent.load(Acquire);
        let from = match hold {
            NO_INTENT => NO_INTENT,
            h if is_held(h) && self.identity(e).is_dead() => h,
            h if is_held(h) => return Err(Some(e.pid.load(Relaxed))),
            _ => return Err(Some(0)),
        };
        e.intent
            .compare_exchange(from, HOLD_LOCKED, Acquire, Relaxed)
            .map_err(|_| Some(0))?;
        // Released (and maybe reused) between the find and the lock: not ours to take.
        if e.state.load(SeqCst) != state::ACTIVE
            || e.role.load(Relaxed) != Role::DurableConsumer.code()
            || e.key.load(Relaxed) != key
        {
            e.intent.store(hold, Release);
            return Err(Some(0));
        }
        Ok(())
    }

    /// Lets go of durable entry `i` (ours), leaving it dormant at `position`: it keeps
    /// holding a lossless queue's producers back until taken over or released.
    pub(crate) fn park(&self, i: usize, position: u64) {
        let e = self.entry(i);
        e.position.fetch_max(position, SeqCst);
        // Release: a taker that reads "dormant" (acquire) reads the position above.
        e.intent.store(NO_INTENT, Release);
    }

    /// Frees the durable consumer `key` when dormant or held by a dead registrant:
    /// `Ok(true)` freed, `Ok(false)` none, `Err(pid)` held by a live registrant.
    pub(crate) fn release_durable(&self, key: u64) -> Result<bool, u32> {
        let Some(i) = self.find_durable(key) else {
            return Ok(false);
        };
        self.take_hold(i, key).map_err(|pid| pid.unwrap_or(0))?;
        let e = self.entry(i);
        e.key.store(0, Relaxed);
        // Left locked: the next registrant writes every field before "active", and a
        // taker that locked a free entry lets go of it (`take_hold`).
        e.state.store(state::FREE, Release);
        self.wake_producers();
        Ok(true)
    }
}
