//! [`Producer<T>`]: copies (`send`, `send_batch`) or zero-copy slots (`reserve`,
//! `reserve_batch`) that are filled in place and published.

use core::marker::PhantomData;
use std::sync::Arc;

use std::time::Duration;

use crate::error::{Lapped, OpenError, SendError, SendTimeoutError, TrySendError};
use crate::message::IpcMessage;
use crate::queue::endpoints::{Role, Table};
use crate::queue::flow::{Refused, Step};
use crate::queue::lease::Lease;
use crate::queue::raw::RawRing;
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
    raw: RawRing,
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
    pub(crate) fn new(ring: Arc<Ring>) -> Result<Self, OpenError> {
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

    fn slot_ptr(&self, index: u64) -> *mut T {
        self.raw.element_ptr(index).cast::<T>()
    }

    /// Claims `n` slots unless a guard of this mapping holds one a lap behind; in a
    /// lossless queue, waits for room until `deadline` (`Ok(None)` when it passed).
    #[inline]
    fn claim(&self, n: u64, deadline: Deadline) -> Result<Option<u64>, SendError> {
        match self.ring.claim(n, deadline, self.entry) {
            Ok(start) => Ok(Some(start)),
            Err(Refused::Full) => Ok(None),
            Err(Refused::Guard(held)) => Err(self.ring.guard_held(held, n)),
            Err(Refused::Exhausted) => Err(self.ring.index_exhausted(n)),
        }
    }

    /// [`Producer::claim`] without a deadline.
    #[inline]
    fn claim_now(&self, n: u64) -> Result<u64, SendError> {
        loop {
            // `None` (full at the deadline) cannot come without a deadline.
            if let Some(start) = self.claim(n, Deadline::NEVER)? {
                return Ok(start);
            }
        }
    }

    /// Copies `msg` into the claimed slot `index` and publishes it.
    #[inline(always)]
    fn fill(&self, index: u64, msg: &T) {
        // SAFETY: the element of `index` in a queue of T (checked on attach/create). It
        // is this reservation's: the claim just made it so, and no lease of this mapping
        // covers it (checked by the claim, whose acquire load of the floor orders the
        // last guard's writes before these). Lapped readers that copy it concurrently
        // discard what they copied (raw.rs, which also states the window that remains).
        unsafe { super::store_messages(core::slice::from_ref(msg), self.raw.element_ptr(index)) };
        self.raw.publish(index, 1);
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
        match self.claim(1, Deadline::after(Duration::ZERO)) {
            Ok(Some(index)) => {
                self.fill(index, msg);
                Ok(index)
            }
            Ok(None) => Err(TrySendError::Full(*msg)),
            Err(e) => Err(TrySendError::Failed(*msg, e)),
        }
    }

    /// Sends a copy of `msg`, waiting at most `timeout` for room in a lossless queue.
    pub fn send_timeout(&self, msg: &T, timeout: Duration) -> Result<u64, SendTimeoutError<T>> {
        self.send_deadline(msg, Deadline::after(timeout))
    }

    /// Sends a copy of `msg`, waiting until `deadline` (a [`Deadline`] or a
    /// [`std::time::Instant`]) for room in a lossless queue.
    pub fn send_deadline(
        &self,
        msg: &T,
        deadline: impl Into<Deadline>,
    ) -> Result<u64, SendTimeoutError<T>> {
        match self.claim(1, deadline.into()) {
            Ok(Some(index)) => {
                self.fill(index, msg);
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
    pub(super) fn send_step(&self, msg: &T, check_dead: bool) -> Result<SendStep, SendError> {
        match self.ring.claim_step(1, self.entry, check_dead) {
            Ok(Step::Done(index)) => {
                self.fill(index, msg);
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
        // The first attempt alone, without the waiting machinery; a refused one takes
        // the general path (which waits in a lossless queue, or reports why).
        let index = match self.ring.claim_first(1, self.entry) {
            Some(index) => index,
            None => self.claim_now(1)?,
        };
        self.fill(index, msg);
        Ok(index)
    }

    /// Sends `msgs` as one reservation: consumers see them consecutively, and peers read
    /// them as one batch. Empty slices send nothing; more than the capacity is refused;
    /// [`SendError::GuardHeld`] as for [`Producer::send`].
    pub fn send_batch(&self, msgs: &[T]) -> Result<u64, SendError> {
        if msgs.is_empty() {
            return Ok(self.raw.next_index());
        }
        let n = self.check_batch(msgs.len())?;
        let index = self.claim_now(n)?;
        // SAFETY: a reservation never straddles the end of the ring, so its `n` elements
        // are contiguous from `index`'s position inside the data area; they are this
        // reservation's (as in `send`).
        unsafe { super::store_messages(msgs, self.raw.element_ptr(index)) };
        self.raw.publish(index, n);
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
        Ok(SlotGuard {
            lease: self.lease(1)?,
            producer: self,
            published: false,
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
        let mut slot = self.reserve()?;
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
        let n = self.check_batch(n)?;
        Ok(BatchGuard {
            lease: self.lease(n)?,
            n,
            producer: self,
            published: false,
        })
    }

    fn lease(&self, n: u64) -> Result<Lease, SendError> {
        loop {
            match self.ring.claim_leased(n, Deadline::NEVER, self.entry) {
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
    fn finish(&self, lease: &Lease, n: u64, commit: bool) -> Result<u64, Lapped> {
        let published = if commit {
            self.raw.publish(lease.start(), n)
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
    fn write_leased(&self, index: u64, msgs: &[T]) {
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

    fn check_batch(&self, len: usize) -> Result<u64, SendError> {
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

/// One reserved slot of a [`Producer`], filled by [`SlotGuard::write`] and published by
/// [`SlotGuard::commit`]. It holds a lease on the slot (see [`Producer::reserve`]) until
/// committed or dropped; dropped without commit, the slot is abandoned (skipped by
/// consumers).
///
/// # Why write-only
/// The guard gives no `&T` or `&mut T` into the ring. A reference would promise the
/// compiler that nobody else touches those bytes while it lives, and that is not true of
/// a slot in a queue:
/// - a consumer of this process that was lapped may still be copying the *previous*
///   message of this position while the guard writes (it discards its copy afterwards);
/// - a producer of this process that claimed the position a lap earlier and was
///   descheduled between its lap check and its copy can still write it late (the window
///   raw.rs describes; leases refuse every *later* claim of this mapping, not that one);
/// - producers of other processes, and of other mappings of the segment, do not see
///   leases and may lap the slot and write it.
///
/// The first two are data races in the language's model if the guard writes with plain
/// stores (undefined behaviour reachable from safe code), and a `&mut T` whose bytes
/// change underneath may be miscompiled. So the guard writes whole messages with the
/// same relaxed atomic stores as [`Producer::send`] (every race above is then between
/// atomics, which the model defines), skips the write when its slot was lapped, and
/// leaves in-place construction to [`SlotGuard::as_mut_ptr`] under `unsafe`, where the
/// caller takes on the races above.
///
/// ```
/// use fastipc::SlickQueue;
///
/// let q = SlickQueue::<[u32; 4]>::local(64)?;
/// let tx = q.producer()?;
/// let mut rx = q.consumer()?;
/// let mut slot = tx.reserve()?;      // the slot holds stale bytes until written
/// slot.write([1, 0, 0, 4]);          // the whole message: no field left stale
/// assert_eq!(slot.commit(), Ok(0));  // Err(Lapped) if another process lapped it
/// assert_eq!(rx.try_recv()?, [1, 0, 0, 4]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct SlotGuard<'a, T: IpcMessage> {
    producer: &'a Producer<T>,
    lease: Lease,
    published: bool,
}

impl<T: IpcMessage> core::fmt::Debug for SlotGuard<'_, T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SlotGuard")
            .field("index", &self.index())
            .finish()
    }
}

impl<T: IpcMessage> SlotGuard<'_, T> {
    /// The absolute index of the slot.
    pub fn index(&self) -> u64 {
        self.lease.start()
    }

    /// Writes the whole message into the slot (again, if called twice: the last write
    /// is what [`SlotGuard::commit`] publishes). Skipped when the slot was lapped
    /// ([`SlotGuard::is_lapped`]): its bytes then belong to a newer message.
    pub fn write(&mut self, msg: T) {
        self.producer
            .write_leased(self.index(), core::slice::from_ref(&msg));
    }

    /// Whether producers of other processes claimed a whole lap since this slot was
    /// reserved: it then belongs to a newer message, writes are skipped, and
    /// [`SlotGuard::commit`] will report [`Lapped`].
    pub fn is_lapped(&self) -> bool {
        self.producer.raw.lapped(self.index())
    }

    /// The slot, for building a message in place (large messages) with `unsafe` code.
    ///
    /// The pointer is valid for writes of one `T`, aligned for `T`, until the guard is
    /// committed or dropped, and (`T` being `Pod`) any bytes written make a valid `T`.
    /// What the slot holds, and what may touch it meanwhile, is on [`SlotGuard`]: do not
    /// make a `&mut T` from it, and know that plain writes through it race, in the
    /// language's model, with a lapped reader of this process still copying the previous
    /// message there (the reader discards that copy) and with late writes of a lapped
    /// producer. Prefer [`SlotGuard::write`]; check [`SlotGuard::is_lapped`] before
    /// writing, so as not to tear a newer message of another process.
    pub fn as_mut_ptr(&mut self) -> *mut T {
        self.producer.slot_ptr(self.index())
    }

    /// Publishes the slot: `Ok(index)`, or `Err(Lapped)` when producers of other
    /// processes lapped it before the commit (see [`Producer::reserve`]) and the message
    /// was dropped instead.
    pub fn commit(mut self) -> Result<u64, Lapped> {
        self.published = true;
        self.producer.finish(&self.lease, 1, true)
    }

    /// The message in the slot, copied out atomically (tests only: the API is write-only).
    #[cfg(test)]
    pub(crate) fn peek(&self) -> T {
        // SAFETY: the element of the leased index in a queue of T; loads are atomic.
        unsafe { super::load_message(self.producer.raw.element_ptr(self.index())) }
    }
}

impl<T: IpcMessage> Drop for SlotGuard<'_, T> {
    fn drop(&mut self) {
        if !self.published {
            // Abandoning reports nothing.
            let _ = self.producer.finish(&self.lease, 1, false);
        }
    }
}

/// Consecutive reserved slots of a [`Producer`], filled by [`BatchGuard::write`] (all of
/// them) or [`BatchGuard::write_at`] (one), published together by
/// [`BatchGuard::commit`]. Write-only, for the reasons given on [`SlotGuard`]; each slot
/// holds stale bytes until written. It holds a lease on them (see [`Producer::reserve`])
/// until committed or dropped (dropped: abandoned).
///
/// ```
/// use fastipc::SlickQueue;
///
/// let q = SlickQueue::<u16>::local(8)?;
/// let tx = q.producer()?;
/// let mut rx = q.consumer()?;
/// let mut batch = tx.reserve_batch(3)?;
/// batch.write(&[1, 2, 3])?;          // exactly as many as reserved
/// batch.write_at(2, 30)?;            // or one slot
/// assert_eq!(batch.commit(), Ok(0));
/// let mut out = [0u16; 8];
/// assert_eq!(rx.try_recv_into(&mut out)?, 3);
/// assert_eq!(&out[..3], &[1, 2, 30]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct BatchGuard<'a, T: IpcMessage> {
    producer: &'a Producer<T>,
    lease: Lease,
    n: u64,
    published: bool,
}

impl<T: IpcMessage> core::fmt::Debug for BatchGuard<'_, T> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("BatchGuard")
            .field("index", &self.index())
            .field("len", &self.len())
            .finish()
    }
}

impl<T: IpcMessage> BatchGuard<'_, T> {
    /// The absolute index of the first slot.
    pub fn index(&self) -> u64 {
        self.lease.start()
    }

    /// Number of reserved slots.
    pub fn len(&self) -> usize {
        self.n as usize
    }

    /// Always false: a batch holds at least one slot.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Writes every slot: `msgs` must hold exactly [`BatchGuard::len`] messages
    /// ([`SendError::BatchWrite`] otherwise, nothing written). Skipped when lapped.
    pub fn write(&mut self, msgs: &[T]) -> Result<(), SendError> {
        if msgs.len() as u64 != self.n {
            return Err(self.out_of_bounds(0, msgs.len()));
        }
        self.producer.write_leased(self.index(), msgs);
        Ok(())
    }

    /// Writes slot `i` (`i < len`; [`SendError::BatchWrite`] otherwise). Slots never
    /// written are published with their stale bytes. Skipped when lapped.
    pub fn write_at(&mut self, i: usize, msg: T) -> Result<(), SendError> {
        if i as u64 >= self.n {
            return Err(self.out_of_bounds(i, 1));
        }
        self.producer
            .write_leased(self.index() + i as u64, core::slice::from_ref(&msg));
        Ok(())
    }

    fn out_of_bounds(&self, first: usize, len: usize) -> SendError {
        SendError::BatchWrite {
            first,
            len,
            reserved: self.len(),
        }
    }

    /// Whether producers of other processes lapped the batch (see
    /// [`SlotGuard::is_lapped`]).
    pub fn is_lapped(&self) -> bool {
        self.producer.raw.lapped(self.index())
    }

    /// The first slot, for building messages in place with `unsafe` code: valid for
    /// writes of [`BatchGuard::len`] consecutive `T`, with the caveats of
    /// [`SlotGuard::as_mut_ptr`].
    pub fn as_mut_ptr(&mut self) -> *mut T {
        self.producer.slot_ptr(self.index())
    }

    /// Publishes the batch: `Ok(first index)`, or `Err(Lapped)` as
    /// [`SlotGuard::commit`].
    pub fn commit(mut self) -> Result<u64, Lapped> {
        self.published = true;
        self.producer.finish(&self.lease, self.n, true)
    }

    /// The messages in the slots, copied out atomically (tests only).
    #[cfg(test)]
    pub(crate) fn peek(&self) -> Vec<T> {
        (0..self.n)
            // SAFETY: elements of the leased reservation in a queue of T; atomic loads.
            .map(|i| unsafe {
                super::load_message(self.producer.raw.element_ptr(self.index() + i))
            })
            .collect()
    }
}

impl<T: IpcMessage> Drop for BatchGuard<'_, T> {
    fn drop(&mut self) {
        if !self.published {
            // Abandoning reports nothing.
            let _ = self.producer.finish(&self.lease, self.n, false);
        }
    }
}
