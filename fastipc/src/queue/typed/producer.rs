//! [`Producer<T>`]: copies (`send`, `send_batch`) or zero-copy slots (`reserve`,
//! `reserve_batch`) that are filled in place and published.

use core::marker::PhantomData;
use core::ops::{Deref, DerefMut};
use std::sync::Arc;

use std::time::Duration;

use crate::error::{OpenError, SendError, SendTimeoutError, TrySendError};
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
/// that mapping may reach its slot a lap later.
///
/// ```
/// use fastipc::SlickQueue;
///
/// let q = SlickQueue::<[u32; 4]>::local(64)?;
/// let tx = q.producer()?;
/// let mut rx = q.consumer()?;
/// let mut slot = tx.reserve()?;      // zero-copy: fill the message in the ring
/// slot[0] = 1;
/// slot[3] = 4;
/// slot.commit();
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
        let index = self.claim_now(1)?;
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

    /// Reserves one slot to fill in place; [`SlotGuard::commit`] publishes it.
    ///
    /// The slot starts with whatever bytes it held (an old message). Dropping the guard
    /// without committing abandons the slot: consumers skip it (fastipc consumers report
    /// `Abandoned(1)`) rather than read those bytes. In a lossless queue, waits for room.
    ///
    /// While the guard lives, it holds a *lease* on its slot: any reservation made through
    /// the same mapping (every producer and clone of this queue handle) that would reach
    /// the slot a lap later is refused with [`SendError::GuardHeld`], and so is this
    /// reservation if it would reach another guard's slot. Hold guards briefly.
    ///
    /// Producers of other processes (or of another mapping of the same segment) do not
    /// see leases: they may lap the slot, and the guard's later writes then land in their
    /// newer message. A guard lapped that way is not published at commit; consumers
    /// report the lag. Writes from outside this mapping are outside the language's model,
    /// as for any shared memory; the `lease` module documentation states what is covered.
    ///
    /// ```
    /// use fastipc::SlickQueue;
    /// use fastipc::queue::SendError;
    ///
    /// let q = SlickQueue::<u64>::local(4)?;
    /// let tx = q.producer()?;
    /// let mut slot = tx.reserve()?;               // index 0
    /// *slot = 7;
    /// for i in 1..4 {
    ///     tx.send(&i)?;                           // indices 1..=3
    /// }
    /// // Index 4 would reuse the guard's slot: refused while the guard lives.
    /// assert!(matches!(tx.send(&4), Err(SendError::GuardHeld { held: 0, .. })));
    /// assert_eq!(slot.commit(), 0);
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

    /// Reserves `n` consecutive slots (`1 <= n <= capacity`) to fill in place, published
    /// together by [`BatchGuard::commit`] (or on drop), leased as [`Producer::reserve`]
    /// explains.
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

    /// Publishes a guard's reservation (unless another process lapped it) or, when it is
    /// dropped without commit, abandons it (readers skip it: raw.rs "Abandoned claims"),
    /// then ends its lease: no access through the guard follows.
    fn finish(&self, lease: &Lease, n: u64, commit: bool) {
        if commit {
            self.raw.publish(lease.start(), n);
        } else {
            self.raw.abandon(lease.start(), n, None);
        }
        self.ring.leases().release(lease);
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

/// One reserved slot of a [`Producer`], dereferencing to the message in the ring. It
/// holds a lease on the slot (see [`Producer::reserve`]) until committed or dropped.
pub struct SlotGuard<'a, T: IpcMessage> {
    producer: &'a Producer<T>,
    lease: Lease,
    published: bool,
}

impl<T: IpcMessage> SlotGuard<'_, T> {
    /// The absolute index of the slot.
    pub fn index(&self) -> u64 {
        self.lease.start()
    }

    /// Overwrites the whole message.
    pub fn write(&mut self, msg: T) {
        **self = msg;
    }

    /// Publishes the message (unless producers of other processes lapped it meanwhile:
    /// see [`Producer::reserve`]); returns its index.
    pub fn commit(mut self) -> u64 {
        self.published = true;
        self.producer.finish(&self.lease, 1, true);
        self.lease.start()
    }
}

impl<T: IpcMessage> Deref for SlotGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the slot is in bounds and aligned for T (see `Producer::send`), T is Pod
        // so its bytes are a valid T, and it is leased to this guard: no other
        // reservation through this mapping can reach it until the lease ends (lease.rs
        // states what stays outside: other processes and mappings, and the window of
        // raw.rs). Readers only read it, with atomic copies they discard (a race the
        // model does not cover: raw.rs, "What the model does not cover").
        unsafe { &*self.producer.slot_ptr(self.lease.start()) }
    }
}

impl<T: IpcMessage> DerefMut for SlotGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`; `&mut self` makes this the only reference through the
        // guard, and the lease makes the guard the only writer through this mapping.
        unsafe { &mut *self.producer.slot_ptr(self.lease.start()) }
    }
}

impl<T: IpcMessage> Drop for SlotGuard<'_, T> {
    fn drop(&mut self) {
        if !self.published {
            self.producer.finish(&self.lease, 1, false);
        }
    }
}

/// Consecutive reserved slots of a [`Producer`], dereferencing to `[T]` in the ring. It
/// holds a lease on them (see [`Producer::reserve`]) until committed or dropped.
///
/// ```
/// use fastipc::SlickQueue;
///
/// let q = SlickQueue::<u16>::local(8)?;
/// let tx = q.producer()?;
/// let mut rx = q.consumer()?;
/// let mut batch = tx.reserve_batch(3)?;
/// batch.copy_from_slice(&[1, 2, 3]);
/// batch.commit();
/// let mut out = [0u16; 8];
/// assert_eq!(rx.try_recv_into(&mut out)?, 3);
/// assert_eq!(&out[..3], &[1, 2, 3]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct BatchGuard<'a, T: IpcMessage> {
    producer: &'a Producer<T>,
    lease: Lease,
    n: u64,
    published: bool,
}

impl<T: IpcMessage> BatchGuard<'_, T> {
    /// The absolute index of the first slot.
    pub fn index(&self) -> u64 {
        self.lease.start()
    }

    /// Publishes the batch (unless lapped, as [`SlotGuard::commit`]); returns its first
    /// index.
    pub fn commit(mut self) -> u64 {
        self.published = true;
        self.producer.finish(&self.lease, self.n, true);
        self.lease.start()
    }
}

impl<T: IpcMessage> Deref for BatchGuard<'_, T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        let first = self.producer.slot_ptr(self.lease.start());
        // SAFETY: the reservation's `n` slots are contiguous (it never straddles the end),
        // in bounds, aligned for T, valid as T (Pod), and leased to this guard (see
        // `SlotGuard::deref`).
        unsafe { core::slice::from_raw_parts(first, self.n as usize) }
    }
}

impl<T: IpcMessage> DerefMut for BatchGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut [T] {
        let first = self.producer.slot_ptr(self.lease.start());
        // SAFETY: as in `deref`; `&mut self` makes this the only reference through the
        // guard, and the lease makes the guard the only writer through this mapping.
        unsafe { core::slice::from_raw_parts_mut(first, self.n as usize) }
    }
}

impl<T: IpcMessage> Drop for BatchGuard<'_, T> {
    fn drop(&mut self) {
        if !self.published {
            self.producer.finish(&self.lease, self.n, false);
        }
    }
}
