//! The single producer's claim and publish ([`RawRing::reserve_single`],
//! [`RawRing::publish_single`]) and the [`Claim`] types that choose between them and the
//! multi-producer ones at compile time. The argument is raw.rs's, section
//! "Single-producer mode".

use core::sync::atomic::Ordering::{Acquire, Relaxed, Release, SeqCst};
use core::sync::atomic::fence;

use super::{RawRing, Refused};
use crate::queue::layout::{INVALID_INDEX, pack_reserved, reserved_index};

/// How a producer claims and publishes: [`Shared`] (compare-and-swap, among any number
/// of producers) or [`Single`] (plain stores, the one producer of a single-producer
/// queue: raw.rs "Single-producer mode"). A type, so that each path is compiled on its
/// own and the shared one carries no test of the other.
pub(crate) trait Claim {
    /// Whether claims use [`RawRing::reserve_single`] and [`RawRing::publish_single`].
    const SINGLE: bool;
}

/// The claims of [`RawRing::reserve`] and [`RawRing::publish`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct Shared;

impl Claim for Shared {
    const SINGLE: bool = false;
}

/// The claims of [`RawRing::reserve_single`] and [`RawRing::publish_single`]: only for
/// the holder of a single-producer registration.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Single;

impl Claim for Single {
    const SINGLE: bool = true;
}

impl RawRing {
    /// [`RawRing::reserve`] for the one producer of a single-producer queue (module
    /// documentation, "Single-producer mode"): the same checks, `floor` and `intent` in
    /// the same places, but the claim is a load of `reserved` and a release store of the
    /// new value instead of a compare-and-swap, so it never retries.
    ///
    /// Only for the holder of the queue's single-producer registration
    /// (`SingleProducer`): its claims are ordered by happens-before (one thread at a
    /// time: the handle is not `Sync`) and every other fastipc claimant is refused. A
    /// concurrent claimant would be handed the same positions: messages lost or torn,
    /// never undefined behaviour (payload and control words are atomics).
    #[inline(always)]
    pub(crate) fn reserve_single(
        &self,
        n: u64,
        floor: impl Fn() -> u64,
        intent: impl Fn(u64),
    ) -> Result<u64, Refused> {
        debug_assert!(n >= 1 && n <= self.capacity);
        let reserved = &self.header().reserved;
        // Acquire, as the CAS path's load. This producer's earlier claims are ordered by
        // program order, a previous holder's by the registration (module documentation).
        let index = reserved_index(reserved.load(Acquire));
        let pos = index & self.mask;
        let wraps = pos + n > self.capacity;
        let start = if wraps {
            index + (self.capacity - pos)
        } else {
            index
        };
        // `start < 2^48 + capacity`: no overflow.
        if start + n > self.index_limit() {
            return Err(Refused::Exhausted);
        }
        let held = floor();
        if start + n > held.saturating_add(self.capacity) {
            return Err(Refused::Held(held));
        }
        intent(start);
        // Release: whoever reads this head (acquire) also reads the intent above and
        // everything this producer published before, as after the CAS (module docs).
        reserved.store(pack_reserved(start + n, n), Release);
        // The seqlock writer side, exactly as after the CAS: marks, then the release fence
        // that orders the claim and the marks before every write that follows.
        self.slot(start).data_index.store(INVALID_INDEX, Relaxed);
        for k in 1..n {
            self.slot(start + k).data_index.store(start, Relaxed);
        }
        fence(Release);
        self.prefetch_ahead(start);
        if wraps {
            let marker = self.slot(index);
            marker.size.store(n as u32, Relaxed);
            marker.data_index.store(start, Release);
        }
        Ok(start)
    }

    /// [`RawRing::publish`] for the one producer of a single-producer queue: the same
    /// slot stores, then `last_published` raised with a load and a SeqCst store (of the
    /// value it already holds when that is higher) instead of the compare-and-swap loop.
    /// The SeqCst store followed by the SeqCst load of `sleepers` is the producer's half
    /// of the sleeper handshake (module documentation, "Wake protocol").
    ///
    /// Only for the holder of the single-producer registration, as
    /// [`RawRing::reserve_single`]: its publishes are ordered by happens-before (one
    /// thread at a time), and no other producer stores `last_published`.
    #[inline]
    pub(crate) fn publish_single(&self, start: u64, n: u64) -> bool {
        if self.lapped(start) {
            return false;
        }
        let slot = self.slot(start);
        slot.size.store(n as u32, Relaxed);
        slot.data_index.store(start, Release);
        let header = self.header();
        let last = &header.last_published;
        // Relaxed: in this mode only this producer stores the word (a reader's `abandon`
        // writes back the value it read; a reset is a quiet queue's), so this reads its
        // own last store, or a previous holder's (module documentation).
        let current = last.load(Relaxed);
        let new = if current == INVALID_INDEX || current < start {
            start
        } else {
            current
        };
        last.store(new, SeqCst);
        if header.sleepers.load(SeqCst) != 0 {
            self.wake_sleepers();
        }
        true
    }
}
