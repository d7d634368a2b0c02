//! The zero-copy guards of a producer ([`Producer::reserve`], [`Producer::reserve_batch`],
//! and the same of [`SingleProducer`](super::SingleProducer)): [`SlotGuard`] and
//! [`BatchGuard`], write-only views of reserved slots, published on commit and abandoned
//! when dropped. Each borrows the producer it came from (its type parameter `P`): a
//! single producer's guards are therefore not `Send`, so that its publishes stay on one
//! thread at a time (queue/raw.rs, "Single-producer mode").

use crate::error::{Lapped, SendError};
use crate::message::IpcMessage;
use crate::queue::lease::Lease;

use super::producer::{Producer, ProducerKind};

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
pub struct SlotGuard<'a, T: IpcMessage, P: ProducerKind<T> = Producer<T>> {
    pub(super) owner: &'a P,
    pub(super) lease: Lease,
    pub(super) published: bool,
    pub(super) _marker: core::marker::PhantomData<fn(T) -> T>,
}

impl<T: IpcMessage, P: ProducerKind<T>> core::fmt::Debug for SlotGuard<'_, T, P> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("SlotGuard")
            .field("index", &self.index())
            .finish()
    }
}

impl<T: IpcMessage, P: ProducerKind<T>> SlotGuard<'_, T, P> {
    fn producer(&self) -> &Producer<T> {
        self.owner.producer()
    }

    /// The absolute index of the slot.
    pub fn index(&self) -> u64 {
        self.lease.start()
    }

    /// Writes the whole message into the slot (again, if called twice: the last write
    /// is what [`SlotGuard::commit`] publishes). Skipped when the slot was lapped
    /// ([`SlotGuard::is_lapped`]): its bytes then belong to a newer message.
    pub fn write(&mut self, msg: T) {
        self.producer()
            .write_leased(self.index(), core::slice::from_ref(&msg));
    }

    /// Whether producers of other processes claimed a whole lap since this slot was
    /// reserved: it then belongs to a newer message, writes are skipped, and
    /// [`SlotGuard::commit`] will report [`Lapped`].
    pub fn is_lapped(&self) -> bool {
        self.producer().raw.lapped(self.index())
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
        self.producer().slot_ptr(self.index())
    }

    /// Publishes the slot: `Ok(index)`, or `Err(Lapped)` when producers of other
    /// processes lapped it before the commit (see [`Producer::reserve`]) and the message
    /// was dropped instead.
    pub fn commit(mut self) -> Result<u64, Lapped> {
        self.published = true;
        self.producer().finish_as::<P>(&self.lease, 1, true)
    }

    /// The message in the slot, copied out atomically (tests only: the API is write-only).
    #[cfg(test)]
    pub(crate) fn peek(&self) -> T {
        // SAFETY: the element of the leased index in a queue of T; loads are atomic.
        unsafe { super::load_message(self.producer().raw.element_ptr(self.index())) }
    }
}

impl<T: IpcMessage, P: ProducerKind<T>> Drop for SlotGuard<'_, T, P> {
    fn drop(&mut self) {
        if !self.published {
            // Abandoning reports nothing.
            let _ = self.producer().finish_as::<P>(&self.lease, 1, false);
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
pub struct BatchGuard<'a, T: IpcMessage, P: ProducerKind<T> = Producer<T>> {
    pub(super) owner: &'a P,
    pub(super) lease: Lease,
    pub(super) n: u64,
    pub(super) published: bool,
    pub(super) _marker: core::marker::PhantomData<fn(T) -> T>,
}

impl<T: IpcMessage, P: ProducerKind<T>> core::fmt::Debug for BatchGuard<'_, T, P> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.debug_struct("BatchGuard")
            .field("index", &self.index())
            .field("len", &self.len())
            .finish()
    }
}

impl<T: IpcMessage, P: ProducerKind<T>> BatchGuard<'_, T, P> {
    fn producer(&self) -> &Producer<T> {
        self.owner.producer()
    }

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
        self.producer().write_leased(self.index(), msgs);
        Ok(())
    }

    /// Writes slot `i` (`i < len`; [`SendError::BatchWrite`] otherwise). Slots never
    /// written are published with their stale bytes. Skipped when lapped.
    pub fn write_at(&mut self, i: usize, msg: T) -> Result<(), SendError> {
        if i as u64 >= self.n {
            return Err(self.out_of_bounds(i, 1));
        }
        self.producer()
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
        self.producer().raw.lapped(self.index())
    }

    /// The first slot, for building messages in place with `unsafe` code: valid for
    /// writes of [`BatchGuard::len`] consecutive `T`, with the caveats of
    /// [`SlotGuard::as_mut_ptr`].
    pub fn as_mut_ptr(&mut self) -> *mut T {
        self.producer().slot_ptr(self.index())
    }

    /// Publishes the batch: `Ok(first index)`, or `Err(Lapped)` as
    /// [`SlotGuard::commit`].
    pub fn commit(mut self) -> Result<u64, Lapped> {
        self.published = true;
        self.producer().finish_as::<P>(&self.lease, self.n, true)
    }

    /// The messages in the slots, copied out atomically (tests only).
    #[cfg(test)]
    pub(crate) fn peek(&self) -> Vec<T> {
        (0..self.n)
            // SAFETY: elements of the leased reservation in a queue of T; atomic loads.
            .map(|i| unsafe {
                super::load_message(self.producer().raw.element_ptr(self.index() + i))
            })
            .collect()
    }
}

impl<T: IpcMessage, P: ProducerKind<T>> Drop for BatchGuard<'_, T, P> {
    fn drop(&mut self) {
        if !self.published {
            // Abandoning reports nothing.
            let _ = self.producer().finish_as::<P>(&self.lease, self.n, false);
        }
    }
}
