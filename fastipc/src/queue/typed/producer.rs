//! [`Producer<T>`]: copies (`send`, `send_batch`) or zero-copy slots (`reserve`,
//! `reserve_batch`) that are filled in place and published.

use core::marker::PhantomData;
use core::ops::{Deref, DerefMut};
use std::sync::Arc;

use crate::error::QueueError;
use crate::message::IpcMessage;
use crate::queue::lease::Lease;
use crate::queue::raw::RawRing;
use crate::queue::ring::Ring;

/// The sending end of a [`SlickQueue`](super::SlickQueue). Cheap to clone; `Send` and
/// `Sync`; never blocks (the ring overwrites what slow consumers have not read).
///
/// Sends fail only on bad input or with [`QueueError::GuardHeld`]: while a zero-copy guard
/// ([`Producer::reserve`]) made through the same mapping is alive, no reservation through
/// that mapping may reach its slot a lap later.
///
/// ```
/// use fastipc::SlickQueue;
///
/// let q = SlickQueue::<[u32; 4]>::local(64)?;
/// let tx = q.producer();
/// let mut rx = q.consumer();
/// let mut slot = tx.reserve()?;      // zero-copy: fill the message in the ring
/// slot[0] = 1;
/// slot[3] = 4;
/// slot.commit();
/// assert_eq!(rx.try_recv()?, [1, 0, 0, 4]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub struct Producer<T> {
    raw: RawRing,
    ring: Arc<Ring>,
    _marker: PhantomData<fn(T) -> T>,
}

impl<T> Clone for Producer<T> {
    fn clone(&self) -> Self {
        Producer {
            raw: self.raw,
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
    pub(crate) fn new(ring: Arc<Ring>) -> Self {
        Producer {
            raw: *ring.raw(),
            ring,
            _marker: PhantomData,
        }
    }

    fn slot_ptr(&self, index: u64) -> *mut T {
        self.raw.element_ptr(index).cast::<T>()
    }

    /// Claims `n` slots unless a guard of this mapping holds one a lap behind.
    #[inline]
    fn claim(&self, n: u64) -> Result<u64, QueueError> {
        let leases = self.ring.leases();
        self.raw
            .reserve(n, || leases.floor())
            .map_err(|held| self.ring.guard_held(held, n))
    }

    /// Sends a copy of `msg`; returns its absolute index.
    ///
    /// Fails only with [`QueueError::GuardHeld`] (nothing sent) when a zero-copy guard of
    /// this mapping still holds the slot a lap behind. A message that producers of other
    /// processes lap before it is published is dropped, as if it had been overwritten.
    #[inline]
    pub fn send(&self, msg: &T) -> Result<u64, QueueError> {
        let index = self.claim(1)?;
        // SAFETY: the element of `index` lies in the data area (masked position), is
        // aligned for T (the queue was checked for T on attach/create and its data area
        // is 16-aligned) and is this reservation's: the claim just made it so, no lease of
        // this mapping covers it (checked by the claim), and lapped readers that copy it
        // concurrently discard what they copied (raw.rs, which also states the window
        // that remains). `msg` is a different object, so the ranges do not overlap.
        unsafe { core::ptr::copy_nonoverlapping(msg, self.slot_ptr(index), 1) };
        self.raw.publish(index, 1);
        Ok(index)
    }

    /// Sends `msgs` as one reservation: consumers see them consecutively, and peers read
    /// them as one batch. Empty slices send nothing; more than the capacity is refused;
    /// [`QueueError::GuardHeld`] as for [`Producer::send`].
    pub fn send_batch(&self, msgs: &[T]) -> Result<(), QueueError> {
        if msgs.is_empty() {
            return Ok(());
        }
        let n = self.check_batch(msgs.len())?;
        let index = self.claim(n)?;
        // SAFETY: a reservation never straddles the end of the ring, so its `n` elements
        // are contiguous from `index`'s position inside the data area, aligned for T; they
        // are this reservation's (as in `send`).
        unsafe { core::ptr::copy_nonoverlapping(msgs.as_ptr(), self.slot_ptr(index), msgs.len()) };
        self.raw.publish(index, n);
        Ok(())
    }

    /// Reserves one slot to fill in place; [`SlotGuard::commit`] publishes it.
    ///
    /// The slot starts with whatever bytes it held (an old message). Dropping the guard
    /// without committing publishes it as it is, because an unpublished slot would stall
    /// every consumer at it.
    ///
    /// While the guard lives, it holds a *lease* on its slot: any reservation made through
    /// the same mapping (every producer and clone of this queue handle) that would reach
    /// the slot a lap later is refused with [`QueueError::GuardHeld`], and so is this
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
    /// use fastipc::queue::QueueError;
    ///
    /// let q = SlickQueue::<u64>::local(4)?;
    /// let tx = q.producer();
    /// let mut slot = tx.reserve()?;               // index 0
    /// *slot = 7;
    /// for i in 1..4 {
    ///     tx.send(&i)?;                           // indices 1..=3
    /// }
    /// // Index 4 would reuse the guard's slot: refused while the guard lives.
    /// assert!(matches!(tx.send(&4), Err(QueueError::GuardHeld { held: 0, .. })));
    /// assert_eq!(slot.commit(), 0);
    /// assert_eq!(tx.send(&4)?, 4);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn reserve(&self) -> Result<SlotGuard<'_, T>, QueueError> {
        Ok(SlotGuard {
            lease: self.lease(1)?,
            producer: self,
            published: false,
        })
    }

    /// Reserves `n` consecutive slots (`1 <= n <= capacity`) to fill in place, published
    /// together by [`BatchGuard::commit`] (or on drop), leased as [`Producer::reserve`]
    /// explains.
    pub fn reserve_batch(&self, n: usize) -> Result<BatchGuard<'_, T>, QueueError> {
        let n = self.check_batch(n)?;
        Ok(BatchGuard {
            lease: self.lease(n)?,
            n,
            producer: self,
            published: false,
        })
    }

    fn lease(&self, n: u64) -> Result<Lease, QueueError> {
        self.ring
            .leases()
            .reserve(&self.raw, n)
            .map_err(|held| self.ring.guard_held(held, n))
    }

    /// Publishes a guard's reservation (unless another process lapped it), then ends its
    /// lease: no access through the guard follows.
    fn finish(&self, lease: &Lease, n: u64) {
        self.raw.publish(lease.start(), n);
        self.ring.leases().release(lease);
    }

    fn check_batch(&self, len: usize) -> Result<u64, QueueError> {
        if len == 0 || len as u64 > self.raw.capacity() {
            return Err(QueueError::InvalidBatch {
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
        self.producer.finish(&self.lease, 1);
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
        // raw.rs). Readers only read it, with volatile copies they discard.
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
            self.producer.finish(&self.lease, 1);
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
/// let tx = q.producer();
/// let mut rx = q.consumer();
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
        self.producer.finish(&self.lease, self.n);
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
            self.producer.finish(&self.lease, self.n);
        }
    }
}
