//! [`Producer<T>`]: copies (`send`, `send_batch`) or zero-copy slots (`reserve`,
//! `reserve_batch`) that are filled in place and published.

use core::marker::PhantomData;
use std::sync::Arc;

use std::time::Duration;

use super::guard::{BatchGuard, SlotGuard};
use crate::error::{Lapped, OpenError, SendError, SendTimeoutError, TrySendError};
use crate::message::IpcMessage;
use crate::queue::endpoints::{Role, Table};
use crate::queue::flow::{Refused, Step};
use crate::queue::lease::Lease;
use crate::queue::raw::{Claim, RawRing, Shared};
use crate::queue::ring::Ring;
use crate::sys::clock::Deadline;
use crate::sys::futex::Scope;

/// What one step of an async send came to (`Producer::send_step`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum SendStep {
    /// Sent at this index.
    Sent(u64),
    /// The lossless queue is full: the producers' wake word held this value before their
    /// "waiters present" flag was raised and the floor scanned again.
    Wait(u32),
    /// Nothing decided: poll again.
    Again,
}

/// Which producer a zero-copy guard or an async send belongs to: [`Producer`] or
/// [`SingleProducer`](super::SingleProducer) (sealed: implemented by those two only).
/// Guards and futures of a single producer borrow it, and it is not `Sync`, so they are
/// not `Send`.
pub trait ProducerKind<T: IpcMessage>: sealed::Sealed {
    /// Whether it is a single producer (it claims with plain stores).
    #[doc(hidden)]
    const SINGLE: bool;
    /// The producer underneath.
    #[doc(hidden)]
    fn producer(&self) -> &Producer<T>;
}

pub(super) mod sealed {
    /// Seals [`ProducerKind`](super::ProducerKind).
    pub trait Sealed {}
}

impl<T> sealed::Sealed for Producer<T> {}

impl<T: IpcMessage> ProducerKind<T> for Producer<T> {
    const SINGLE: bool = false;
    fn producer(&self) -> &Producer<T> {
        self
    }
}

/// `$body` with `$c` the claim type of producer kind `$p` ([`Single`] for a single
/// producer, [`Shared`] otherwise); `$p::SINGLE` is a constant, so only one arm remains.
macro_rules! with_claim {
    ($p:ident, $c:ident => $body:expr) => {
        if $p::SINGLE {
            type $c = $crate::queue::raw::Single;
            $body
        } else {
            type $c = $crate::queue::raw::Shared;
            $body
        }
    };
}
pub(super) use with_claim;

/// A producer's entry in the endpoint table, shared by its clones; deregistered when the
/// last one is dropped.
#[derive(Debug)]
struct Entry {
    table: Table,
    index: usize,
    // Keeps the table's memory mapped while `table` points into it.
    _ring: Arc<Ring>,
}

impl Drop for Entry {
    fn drop(&mut self) {
        self.table.deregister(self.index, None);
        // A receive pending without re-polling (typed/async_recv.rs, "When a pending
        // receive re-polls") learns now that this producer left: the handshake of
        // queue/raw.rs "Wake protocol", with the entry's state (stored SeqCst by
        // `deregister`) in place of a published message.
        self._ring.raw().wake_sleepers();
    }
}

/// The sending end of a [`SlickQueue`](super::SlickQueue). Cheap to clone; `Send` and
/// `Sync`; never blocks (the ring overwrites what slow consumers have not read).
///
/// Sends fail only on bad input or with [`SendError::GuardHeld`]: while a zero-copy guard
/// ([`Producer::reserve`]) made through the same mapping is alive, no reservation through
/// that mapping may reach its slot a lap later. A guard's commit (and
/// [`Producer::reserve_with`]) also reports a message dropped because producers of other
/// processes lapped it ([`Lapped`]).
///
/// ```
/// use fastipc::SlickQueue;
///
/// let q = SlickQueue::<[u32; 4]>::local(64)?;
/// let tx = q.producer()?;
/// let mut rx = q.consumer()?;
/// let mut slot = tx.reserve()?;      // zero-copy: write the message into the ring
/// slot.write([1, 0, 0, 4]);
/// slot.commit()?;
/// assert_eq!(rx.try_recv()?, [1, 0, 0, 4]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Producer<T> {
    pub(super) raw: RawRing,
    /// The endpoint entry (`None` in a queue made by a peer), and its index.
    entry: Option<usize>,
    registration: Option<Arc<Entry>>,
    ring: Arc<Ring>,
    _marker: PhantomData<fn(T) -> T>,
}

impl<T> Clone for Producer<T> {
    /// Another handle on the same producer: clones share one endpoint entry.
    fn clone(&self) -> Self {
        Producer {
            raw: self.raw,
            entry: self.entry,
            registration: self.registration.clone(),
            ring: Arc::clone(&self.ring),
            _marker: PhantomData,
        }
    }
}

impl<T> core::fmt::Debug for Producer<T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("Producer")
            .field("queue", &self.ring.name())
            .finish()
    }
}

impl<T: IpcMessage> Producer<T> {
    /// An ordinary producer (refused on a single-producer queue).
    pub(crate) fn new(ring: Arc<Ring>) -> Result<Self, OpenError> {
        if ring.is_single_producer() {
            return Err(ring.single_producer_only());
        }
        let registration = match ring.table() {
            Some(t) => {
                let index = t
                    .register(Role::Producer, 0)
                    .ok_or_else(|| ring.endpoints_full())?;
                Some(Arc::new(Entry {
                    table: *t,
                    index,
                    _ring: Arc::clone(&ring),
                }))
            }
            None => None,
        };
        Ok(Producer {
            raw: *ring.raw(),
            entry: registration.as_ref().map(|e| e.index),
            registration,
            ring,
            _marker: PhantomData,
        })
    }

    /// The single producer of a single-producer queue ([`Ring::register_single_producer`]
    /// refuses every other while it lives). Only [`SingleProducer`](super::SingleProducer)
    /// holds one, and claims through it with [`Single`].
    pub(super) fn new_single(ring: Arc<Ring>) -> Result<Self, OpenError> {
        let (table, index) = ring.register_single_producer()?;
        let registration = Arc::new(Entry {
            table,
            index,
            _ring: Arc::clone(&ring),
        });
        Ok(Producer {
            raw: *ring.raw(),
            entry: Some(index),
            registration: Some(registration),
            ring,
            _marker: PhantomData,
        })
    }

    pub(super) fn slot_ptr(&self, index: u64) -> *mut T {
        self.raw.element_ptr(index).cast::<T>()
    }

    /// Claims `n` slots unless a guard of this mapping holds one a lap behind; in a
    /// lossless queue, waits for room until `deadline` (`Ok(None)` when it passed).
    #[inline]
    fn claim<C: Claim>(&self, n: u64, deadline: Deadline) -> Result<Option<u64>, SendError> {
        match self.ring.claim::<C>(n, deadline, self.entry) {
            Ok(start) => Ok(Some(start)),
            Err(Refused::Full) => Ok(None),
            Err(Refused::Guard(held)) => Err(self.ring.guard_held(held, n)),
            Err(Refused::Exhausted) => Err(self.ring.index_exhausted(n)),
        }
    }

    /// [`Producer::claim`] without a deadline.
    #[inline]
    fn claim_now<C: Claim>(&self, n: u64) -> Result<u64, SendError> {
        loop {
            // `None` (full at the deadline) cannot come without a deadline.
            if let Some(start) = self.claim::<C>(n, Deadline::NEVER)? {
                return Ok(start);
            }
        }
    }

    /// Copies `msg` into the claimed slot `index` and publishes it.
    #[inline(always)]
    fn fill<C: Claim>(&self, index: u64, msg: &T) {
        // SAFETY: the element of `index` in a queue of T (checked on attach/create). It
        // is this reservation's: the claim just made it so, and no lease of this mapping
        // covers it (checked by the claim, whose acquire load of the floor orders the
        // last guard's writes before these). Lapped readers that copy it concurrently
        // discard what they copied (raw.rs, which also states the window that remains).
        unsafe { super::store_messages(core::slice::from_ref(msg), self.raw.element_ptr(index)) };
        self.raw.publish_as::<C>(index, 1);
    }

    /// Sends a copy of `msg` unless a lossless queue is full: then hands the message
    /// back in [`TrySendError::Full`] at once. In a lossy queue the same as
    /// [`Producer::send`].
    ///
    /// ```
    /// use fastipc::queue::{Mode, TrySendError};
    /// use fastipc::SlickQueue;
    ///
    /// let q = SlickQueue::<u32>::local_with(2, Mode::Lossless)?;
    /// let tx = q.producer()?;
    /// tx.try_send(&1)?;
    /// tx.try_send(&2)?;
    /// // No consumer yet: the two wait for the first one, and a third finds no room.
    /// assert_eq!(tx.try_send(&3), Err(TrySendError::Full(3)));
    /// let mut rx = q.consumer()?;                  // starts at the oldest unread
    /// assert_eq!(rx.try_recv()?, 1);
    /// assert_eq!(rx.try_recv()?, 2);
    /// assert_eq!(tx.try_send(&3)?, 2);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn try_send(&self, msg: &T) -> Result<u64, TrySendError<T>> {
        self.try_send_as::<Shared>(msg)
    }

    /// [`Producer::try_send`], claiming as `C`.
    pub(super) fn try_send_as<C: Claim>(&self, msg: &T) -> Result<u64, TrySendError<T>> {
        match self.claim::<C>(1, Deadline::after(Duration::ZERO)) {
            Ok(Some(index)) => {
                self.fill::<C>(index, msg);
                Ok(index)
            }
            Ok(None) => Err(TrySendError::Full(*msg)),
            Err(e) => Err(TrySendError::Failed(*msg, e)),
        }
    }

    /// Sends a copy of `msg`, waiting at most `timeout` for room in a lossless queue.
    pub fn send_timeout(&self, msg: &T, timeout: Duration) -> Result<u64, SendTimeoutError<T>> {
        self.send_deadline_as::<Shared>(msg, Deadline::after(timeout))
    }

    /// Sends a copy of `msg`, waiting until `deadline` (a [`Deadline`] or a
    /// [`std::time::Instant`]) for room in a lossless queue.
    pub fn send_deadline(
        &self,
        msg: &T,
        deadline: impl Into<Deadline>,
    ) -> Result<u64, SendTimeoutError<T>> {
        self.send_deadline_as::<Shared>(msg, deadline.into())
    }

    /// [`Producer::send_deadline`], claiming as `C`.
    pub(super) fn send_deadline_as<C: Claim>(
        &self,
        msg: &T,
        deadline: Deadline,
    ) -> Result<u64, SendTimeoutError<T>> {
        match self.claim::<C>(1, deadline) {
            Ok(Some(index)) => {
                self.fill::<C>(index, msg);
                Ok(index)
            }
            Ok(None) => Err(SendTimeoutError::Timeout(*msg)),
            Err(e) => Err(SendTimeoutError::Failed(*msg, e)),
        }
    }

    /// One poll's worth of [`Producer::send`] that never waits (for
    /// [`Producer::send_async`]): sends `msg` if there is room; in a full lossless queue,
    /// raises the producers' waiters flag and says what to register (`check_dead`: evict
    /// the consumer holding the floor if it is dead, first).
    pub(super) fn send_step<C: Claim>(
        &self,
        msg: &T,
        check_dead: bool,
    ) -> Result<SendStep, SendError> {
        match self.ring.claim_step::<C>(1, self.entry, check_dead) {
            Ok(Step::Done(index)) => {
                self.fill::<C>(index, msg);
                Ok(SendStep::Sent(index))
            }
            Ok(Step::Wait(seq)) => Ok(SendStep::Wait(seq)),
            // `claim_step` reports a full queue as `Wait`; were it not to, polling again
            // is harmless.
            Err(Refused::Full) => Ok(SendStep::Again),
            Err(Refused::Guard(held)) => Err(self.ring.guard_held(held, 1)),
            Err(Refused::Exhausted) => Err(self.ring.index_exhausted(1)),
        }
    }

    /// The producers' wake word of the queue's endpoint table and its scope (`None` in a
    /// queue made by a peer, which is never lossless).
    pub(super) fn producers_word(&self) -> Option<(&core::sync::atomic::AtomicU32, Scope)> {
        self.ring.table().map(Table::producers_word)
    }

    /// Registered producers (clones count once) whose processes may still run; 0 in a
    /// queue made by a peer.
    pub fn producer_count(&self) -> usize {
        self.ring.producer_count()
    }

    /// Sends a copy of `msg`; returns its absolute index.
    ///
    /// Fails only with [`SendError::GuardHeld`] (nothing sent) when a zero-copy guard of
    /// this mapping still holds the slot a lap behind, or with
    /// [`SendError::IndexExhausted`] after `2^48 - capacity` messages (until a reset). A
    /// message that producers of other processes lap before it is published is dropped,
    /// as if it had been overwritten.
    #[inline]
    pub fn send(&self, msg: &T) -> Result<u64, SendError> {
        self.send_as::<Shared>(msg)
    }

    /// [`Producer::send`], claiming as `C`.
    #[inline(always)]
    pub(super) fn send_as<C: Claim>(&self, msg: &T) -> Result<u64, SendError> {
        // The first attempt alone, without the waiting machinery; a refused one takes
        // the general path (which waits in a lossless queue, or reports why).
        let index = match self.ring.claim_first::<C>(1, self.entry) {
            Some(index) => index,
            None => self.claim_now::<C>(1)?,
        };
        self.fill::<C>(index, msg);
        Ok(index)
    }

    /// Sends `msgs` as one reservation: consumers see them consecutively, and peers read
    /// them as one batch. Empty slices send nothing; more than the capacity is refused;
    /// [`SendError::GuardHeld`] as for [`Producer::send`].
    pub fn send_batch(&self, msgs: &[T]) -> Result<u64, SendError> {
        self.send_batch_as::<Shared>(msgs)
    }

    /// [`Producer::send_batch`], claiming as `C`.
    pub(super) fn send_batch_as<C: Claim>(&self, msgs: &[T]) -> Result<u64, SendError> {
        if msgs.is_empty() {
            return Ok(self.raw.next_index());
        }
        let n = self.check_batch(msgs.len())?;
        let index = self.claim_now::<C>(n)?;
        // SAFETY: a reservation never straddles the end of the ring, so its `n` elements
        // are contiguous from `index`'s position inside the data area; they are this
        // reservation's (as in `send`).
        unsafe { super::store_messages(msgs, self.raw.element_ptr(index)) };
        self.raw.publish_as::<C>(index, n);
        Ok(index)
    }

    /// Reserves one slot to fill in place; [`SlotGuard::write`] fills it and
    /// [`SlotGuard::commit`] publishes it. In a lossless queue, waits for room.
    ///
    /// **What the slot holds when reserved:** whatever bytes its position held, i.e. an
    /// older message (zeros in a fresh queue). Nothing clears it, so a slot committed
    /// without [`SlotGuard::write`] publishes those stale bytes; write the whole message
    /// (or use [`Producer::reserve_with`], which starts from a zeroed message). Dropping
    /// the guard without committing abandons the slot: consumers skip it (fastipc
    /// consumers report `Abandoned(1)`) rather than read those bytes.
    ///
    /// While the guard lives, it holds a *lease* on its slot: any reservation made through
    /// the same mapping (every producer and clone of this queue handle) that would reach
    /// the slot a lap later is refused with [`SendError::GuardHeld`], and so is this
    /// reservation if it would reach another guard's slot. Hold guards briefly.
    ///
    /// Producers of other processes (or of another mapping of the same segment) do not
    /// see leases: they may lap the slot. The guard then stops writing it (a write checks
    /// first) and its commit reports [`Lapped`]; consumers report the lag. Why the guard
    /// is write-only is explained on [`SlotGuard`].
    ///
    /// ```
    /// use fastipc::SlickQueue;
    /// use fastipc::queue::SendError;
    ///
    /// let q = SlickQueue::<u64>::local(4)?;
    /// let tx = q.producer()?;
    /// let mut slot = tx.reserve()?;               // index 0
    /// slot.write(7);
    /// for i in 1..4 {
    ///     tx.send(&i)?;                           // indices 1..=3
    /// }
    /// // Index 4 would reuse the guard's slot: refused while the guard lives.
    /// assert!(matches!(tx.send(&4), Err(SendError::GuardHeld { held: 0, .. })));
    /// assert_eq!(slot.commit(), Ok(0));
    /// assert_eq!(tx.send(&4)?, 4);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn reserve(&self) -> Result<SlotGuard<'_, T>, SendError> {
        Self::reserve_by(self)
    }

    /// [`Producer::reserve`] for the producer `owner` (of either kind).
    pub(super) fn reserve_by<P: ProducerKind<T>>(
        owner: &P,
    ) -> Result<SlotGuard<'_, T, P>, SendError> {
        let lease = with_claim!(P, C => owner.producer().lease::<C>(1))?;
        Ok(SlotGuard {
            owner,
            lease,
            published: false,
            _marker: PhantomData,
        })
    }

    /// Reserves a slot, lets `fill` build the message, then writes and publishes it;
    /// returns its index. The message `fill` gets starts zeroed (every byte 0), never with
    /// the slot's stale bytes, so a field `fill` does not set is 0.
    ///
    /// `fill` works on a private message that is then copied into the slot in one go
    /// (like [`Producer::send`]), not on the slot itself: see [`SlotGuard`] for why no
    /// `&mut T` into the ring is handed out. Because the slot is reserved first, the
    /// message can carry its own index: `fill` gets it.
    ///
    /// Errors as [`Producer::reserve`], and [`SendError::Lapped`] when producers of
    /// another process lapped the slot while `fill` ran (the message was dropped).
    ///
    /// ```
    /// use fastipc::SlickQueue;
    ///
    /// let q = SlickQueue::<[u64; 3]>::local(8)?;
    /// let tx = q.producer()?;
    /// let mut rx = q.consumer()?;
    /// tx.send(&[9, 9, 9])?;
    /// let index = tx.reserve_with(|index, msg| {
    ///     msg[0] = index;                         // msg[1] is left alone: it is 0
    ///     msg[2] = 42;
    /// })?;
    /// assert_eq!(index, 1);
    /// assert_eq!(rx.try_recv()?, [9, 9, 9]);
    /// assert_eq!(rx.try_recv()?, [1, 0, 42]);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn reserve_with(&self, fill: impl FnOnce(u64, &mut T)) -> Result<u64, SendError> {
        Self::reserve_with_by(self, fill)
    }

    /// [`Producer::reserve_with`] for the producer `owner` (of either kind).
    pub(super) fn reserve_with_by<P: ProducerKind<T>>(
        owner: &P,
        fill: impl FnOnce(u64, &mut T),
    ) -> Result<u64, SendError> {
        let mut slot = Self::reserve_by(owner)?;
        let mut msg: T = bytemuck::Zeroable::zeroed();
        fill(slot.index(), &mut msg);
        slot.write(msg);
        Ok(slot.commit()?)
    }

    /// Reserves `n` consecutive slots (`1 <= n <= capacity`) to fill in place
    /// ([`BatchGuard::write`], [`BatchGuard::write_at`]), published together by
    /// [`BatchGuard::commit`]; dropped without commit, they are abandoned. They hold
    /// stale bytes when reserved and are leased, as [`Producer::reserve`] explains.
    pub fn reserve_batch(&self, n: usize) -> Result<BatchGuard<'_, T>, SendError> {
        Self::reserve_batch_by(self, n)
    }

    /// [`Producer::reserve_batch`] for the producer `owner` (of either kind).
    pub(super) fn reserve_batch_by<P: ProducerKind<T>>(
        owner: &P,
        n: usize,
    ) -> Result<BatchGuard<'_, T, P>, SendError> {
        let n = owner.producer().check_batch(n)?;
        let lease = with_claim!(P, C => owner.producer().lease::<C>(n))?;
        Ok(BatchGuard {
            owner,
            lease,
            n,
            published: false,
            _marker: PhantomData,
        })
    }

    fn lease<C: Claim>(&self, n: u64) -> Result<Lease, SendError> {
        loop {
            match self.ring.claim_leased::<C>(n, Deadline::NEVER, self.entry) {
                Ok(lease) => return Ok(lease),
                // Cannot come without a deadline.
                Err(Refused::Full) => {}
                Err(Refused::Guard(held)) => return Err(self.ring.guard_held(held, n)),
                Err(Refused::Exhausted) => return Err(self.ring.index_exhausted(n)),
            }
        }
    }

    /// Publishes a guard's reservation (unless another process lapped it: `Err(Lapped)`)
    /// or, when it is dropped without commit, abandons it (readers skip it: raw.rs
    /// "Abandoned claims"), then ends its lease: no access through the guard follows.
    pub(super) fn finish_as<P: ProducerKind<T>>(
        &self,
        lease: &Lease,
        n: u64,
        commit: bool,
    ) -> Result<u64, Lapped> {
        let published = if commit {
            with_claim!(P, C => self.raw.publish_as::<C>(lease.start(), n))
        } else {
            self.raw.abandon(lease.start(), n, None);
            false
        };
        self.ring.leases().release(lease);
        match published || !commit {
            true => Ok(lease.start()),
            false => Err(Lapped {
                index: lease.start(),
                len: n as usize,
            }),
        }
    }

    /// Copies `msgs` into the leased slots from `index` unless producers lapped them
    /// (writing then would tear the newer message that owns them).
    pub(super) fn write_leased(&self, index: u64, msgs: &[T]) {
        if self.raw.lapped(index) {
            return;
        }
        // SAFETY: `msgs.len()` elements from `index`'s position are part of one leased
        // reservation of a queue of T (the callers check the range against the lease),
        // contiguous (a reservation never straddles the end) and in the data area. The
        // stores are relaxed atomics of the queue's width like every payload access, so
        // a lapped reader of this process copying these bytes, or a producer of this
        // process inside raw.rs's window, races with atomics only (defined; the reader
        // discards its copy). The lease keeps every later claim of this mapping away.
        unsafe { super::store_messages(msgs, self.raw.element_ptr(index)) };
    }

    pub(super) fn check_batch(&self, len: usize) -> Result<u64, SendError> {
        if len == 0 || len as u64 > self.raw.capacity() {
            return Err(SendError::InvalidBatch {
                len,
                capacity: self.raw.capacity() as usize,
            });
        }
        Ok(len as u64)
    }

    /// Capacity of the queue in messages.
    pub fn capacity(&self) -> usize {
        self.raw.capacity() as usize
    }
}
