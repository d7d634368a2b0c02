//! [`Producer<T>`]: copies (`send`, `send_batch`) or zero-copy slots (`reserve`,
//! `reserve_batch`) that are filled in place and published.

use core::marker::PhantomData;
use core::ops::{Deref, DerefMut};
use std::sync::Arc;

use crate::error::QueueError;
use crate::message::IpcMessage;
use crate::queue::raw::RawRing;
use crate::queue::ring::Ring;

/// The sending end of a [`SlickQueue`](super::SlickQueue). Cheap to clone; `Send` and
/// `Sync`; never blocks (the ring overwrites what slow consumers have not read).
///
/// ```
/// use fastipc::SlickQueue;
///
/// let q = SlickQueue::<[u32; 4]>::local(64)?;
/// let tx = q.producer();
/// let mut rx = q.consumer();
/// let mut slot = tx.reserve();       // zero-copy: fill the message in the ring
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

    /// Sends a copy of `msg`.
    #[inline]
    pub fn send(&self, msg: &T) {
        let index = self.raw.reserve(1);
        // SAFETY: the element of `index` lies in the data area (masked position), is
        // aligned for T (the queue was checked for T on attach/create and its data area
        // is 16-aligned), and belongs to this reservation until it is published (lapped
        // readers may read it concurrently with volatile reads and discard what they get,
        // see raw.rs). `msg` is a different object, so the ranges do not overlap.
        unsafe { core::ptr::copy_nonoverlapping(msg, self.slot_ptr(index), 1) };
        self.raw.publish(index, 1);
    }

    /// Sends `msgs` as one reservation: consumers see them consecutively, and peers read
    /// them as one batch. Empty slices send nothing; more than the capacity is refused.
    pub fn send_batch(&self, msgs: &[T]) -> Result<(), QueueError> {
        if msgs.is_empty() {
            return Ok(());
        }
        let n = self.check_batch(msgs.len())?;
        let index = self.raw.reserve(n);
        // SAFETY: a reservation never straddles the end of the ring, so its `n` elements
        // are contiguous from `index`'s position inside the data area, aligned for T; they
        // belong to this reservation until published (as in `send`).
        unsafe { core::ptr::copy_nonoverlapping(msgs.as_ptr(), self.slot_ptr(index), msgs.len()) };
        self.raw.publish(index, n);
        Ok(())
    }

    /// Reserves one slot to fill in place; [`SlotGuard::commit`] publishes it.
    ///
    /// The slot starts with whatever bytes it held (an old message). Dropping the guard
    /// without committing publishes it as it is, because an unpublished slot would stall
    /// every consumer at it. Keep the guard briefly: if other producers send a whole
    /// ring's worth meanwhile, they reuse this slot.
    pub fn reserve(&self) -> SlotGuard<'_, T> {
        SlotGuard {
            index: self.raw.reserve(1),
            producer: self,
            published: false,
        }
    }

    /// Reserves `n` consecutive slots (`1 <= n <= capacity`) to fill in place, published
    /// together by [`BatchGuard::commit`] (or on drop, as [`Producer::reserve`]).
    pub fn reserve_batch(&self, n: usize) -> Result<BatchGuard<'_, T>, QueueError> {
        let n = self.check_batch(n)?;
        Ok(BatchGuard {
            index: self.raw.reserve(n),
            n,
            producer: self,
            published: false,
        })
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

/// One reserved slot of a [`Producer`], dereferencing to the message in the ring.
pub struct SlotGuard<'a, T: IpcMessage> {
    producer: &'a Producer<T>,
    index: u64,
    published: bool,
}

impl<T: IpcMessage> SlotGuard<'_, T> {
    /// The absolute index of the slot.
    pub fn index(&self) -> u64 {
        self.index
    }

    /// Overwrites the whole message.
    pub fn write(&mut self, msg: T) {
        **self = msg;
    }

    /// Publishes the message; returns its index.
    pub fn commit(mut self) -> u64 {
        self.published = true;
        self.producer.raw.publish(self.index, 1);
        self.index
    }
}

impl<T: IpcMessage> Deref for SlotGuard<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        // SAFETY: the slot is in bounds and aligned for T (see `Producer::send`), T is
        // Pod so its bytes are a valid T, and the slot belongs to this reservation until
        // published (the guard's documented limit: no other producer writes it unless a
        // whole ring is sent meanwhile; readers only read it).
        unsafe { &*self.producer.slot_ptr(self.index) }
    }
}

impl<T: IpcMessage> DerefMut for SlotGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        // SAFETY: as in `deref`; `&mut self` makes this the only reference through the
        // guard.
        unsafe { &mut *self.producer.slot_ptr(self.index) }
    }
}

impl<T: IpcMessage> Drop for SlotGuard<'_, T> {
    fn drop(&mut self) {
        if !self.published {
            self.producer.raw.publish(self.index, 1);
        }
    }
}

/// Consecutive reserved slots of a [`Producer`], dereferencing to `[T]` in the ring.
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
    index: u64,
    n: u64,
    published: bool,
}

impl<T: IpcMessage> BatchGuard<'_, T> {
    /// The absolute index of the first slot.
    pub fn index(&self) -> u64 {
        self.index
    }

    /// Publishes the batch; returns its first index.
    pub fn commit(mut self) -> u64 {
        self.published = true;
        self.producer.raw.publish(self.index, self.n);
        self.index
    }
}

impl<T: IpcMessage> Deref for BatchGuard<'_, T> {
    type Target = [T];
    fn deref(&self) -> &[T] {
        // SAFETY: the reservation's `n` slots are contiguous (it never straddles the end),
        // in bounds, aligned for T, valid as T (Pod), and belong to this reservation (see
        // `SlotGuard::deref`).
        unsafe { core::slice::from_raw_parts(self.producer.slot_ptr(self.index), self.n as usize) }
    }
}

impl<T: IpcMessage> DerefMut for BatchGuard<'_, T> {
    fn deref_mut(&mut self) -> &mut [T] {
        // SAFETY: as in `deref`, and `&mut self` makes this the only reference.
        unsafe {
            core::slice::from_raw_parts_mut(self.producer.slot_ptr(self.index), self.n as usize)
        }
    }
}

impl<T: IpcMessage> Drop for BatchGuard<'_, T> {
    fn drop(&mut self) {
        if !self.published {
            self.producer.raw.publish(self.index, self.n);
        }
    }
}
