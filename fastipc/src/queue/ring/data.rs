//! The data path of the byte-level queue: [`Reservation`] (reserve, write, publish,
//! abandon on drop) and the reads (`read`, `read_shared`, their waiting forms,
//! `read_last`), every read made of the one read primitive (`queue::read`).

use super::Ring;
use crate::error::{Lapped, RecvTimeoutError, SendError, TryRecvError};
use crate::queue::cursor::SharedCursor;
use crate::queue::flow::Refused;
use crate::queue::payload;
use crate::queue::raw::Shared;
use crate::queue::read;
use crate::queue::wait::{Pace, WaitStrategy, wait_for};
use crate::sys::clock::Deadline;

/// One element range read from the queue.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ReadInfo {
    /// Absolute index of the first element read.
    pub index: u64,
    /// Number of elements read (a batch reservation is read whole).
    pub count: usize,
}

impl Ring {
    /// Reserves `n` consecutive elements (`1 <= n <= capacity`) to fill and publish. In a
    /// lossless queue, waits for room.
    ///
    /// A reservation that is dropped without [`Reservation::publish`] is abandoned:
    /// readers skip it (fastipc readers report `Abandoned(n)`). Fails with
    /// [`SendError::GuardHeld`] when it would reach a message a zero-copy guard made
    /// through this `Ring` still holds, with [`SendError::IndexExhausted`] when it
    /// would end past `2^48 - capacity` (reset the queue), and with
    /// [`SendError::SingleProducerQueue`] on a single-producer queue.
    pub fn reserve(&self, n: usize) -> Result<Reservation<'_>, SendError> {
        loop {
            // `None` (full at the deadline) cannot come with no deadline.
            if let Some(r) = self.reserve_deadline(n, Deadline::NEVER)? {
                return Ok(r);
            }
        }
    }

    /// [`Ring::reserve`] that gives up at `deadline` while a lossless queue stays full:
    /// `Ok(None)`.
    pub fn reserve_deadline(
        &self,
        n: usize,
        deadline: impl Into<Deadline>,
    ) -> Result<Option<Reservation<'_>>, SendError> {
        if self.is_single_producer() {
            return Err(self.single_producer_send());
        }
        if n == 0 || n > self.capacity() {
            return Err(SendError::InvalidBatch {
                len: n,
                capacity: self.capacity(),
            });
        }
        let deadline = deadline.into();
        loop {
            return match self.claim::<Shared>(n as u64, deadline, None) {
                Ok(start) => Ok(Some(Reservation {
                    ring: self,
                    start,
                    n: n as u64,
                    published: false,
                })),
                Err(Refused::Full) if deadline.is_never() => continue,
                Err(Refused::Full) => Ok(None),
                Err(Refused::Guard(held)) => Err(self.guard_held(held, n as u64)),
                Err(Refused::Exhausted) => Err(self.index_exhausted(n as u64)),
            };
        }
    }

    /// Sends `bytes` (a non-zero multiple of the element size, at most a capacity's
    /// worth) as one reservation; returns its index. In a lossless queue, waits for room.
    pub fn send_bytes(&self, bytes: &[u8]) -> Result<u64, SendError> {
        let es = self.element_size();
        if !bytes.len().is_multiple_of(es) {
            return Err(SendError::NotWholeElements {
                len: bytes.len(),
                element_size: es,
            });
        }
        let mut r = self.reserve(bytes.len() / es)?;
        r.write(0, bytes)?;
        // Like `Producer::send`: a message lapped before its publish is dropped as if
        // overwritten (readers report the lag), and the call still returns its index.
        Ok(r.publish().unwrap_or_else(|lapped| lapped.index))
    }

    /// Reads the reservation at `*cursor` into `out` (replacing its contents) and
    /// advances the cursor past it. `Err(Empty)` when nothing new is published;
    /// `Err(Lagged(n))` when producers overwrote what this reader had not read (`n`
    /// positions, see [`TryRecvError::Lagged`]; the cursor then points at the oldest
    /// reservation still available); `Err(Corrupt)` for a slot no producer can have
    /// written (skipped). A cursor of any value is safe.
    pub fn read(&self, cursor: &mut u64, out: &mut Vec<u8>) -> Result<ReadInfo, TryRecvError> {
        out.clear();
        let run = match read::locate(&self.raw, *cursor, 1) {
            Ok(run) => run,
            Err((next, error)) => {
                *cursor = next;
                return Err(error);
            }
        };
        let (_, taken) = read::take(&self.raw, &run, run.start, u64::MAX, |src, k| {
            self.copy_out(src, k, out);
        });
        match taken.lost {
            None => {
                *cursor = run.end;
                Ok(info(run.start, run.end))
            }
            Some((next, error)) => {
                out.clear();
                *cursor = next;
                Err(error)
            }
        }
    }

    /// Work stealing: claims the reservation at the shared cursor, so that each one goes
    /// to exactly one of the readers sharing `cursor` (in this or other processes, Rust
    /// or Python). The bytes are copied and validated *before* the claim, so a claim
    /// never takes a copy the validation rejected. A lag is reported to the reader whose
    /// claim skipped it.
    pub fn read_shared(
        &self,
        cursor: &SharedCursor,
        out: &mut Vec<u8>,
    ) -> Result<ReadInfo, TryRecvError> {
        let claimed = cursor.claim(&self.raw, 1, |_, src, k| {
            out.clear();
            self.copy_out(src, k, out);
        });
        match claimed {
            Ok(run) => Ok(info(run.start, run.end)),
            Err(e) => {
                out.clear();
                Err(e)
            }
        }
    }

    /// [`Ring::read`] that waits, as `strategy` says (spin, yield, then sleep on the
    /// header's wake word, re-checking at least every poll interval because peers'
    /// producers never wake anyone), until a reservation is published at the cursor or
    /// `deadline` passes (`Err(Timeout)`). `Lagged` and `Corrupt` are returned at once.
    ///
    /// ```
    /// use std::time::Duration;
    /// use fastipc::Deadline;
    /// use fastipc::queue::{RecvTimeoutError, Ring, RingSpec, WaitStrategy};
    ///
    /// let ring = Ring::local(&RingSpec::new(8, 8))?;
    /// let (mut cursor, mut buf) = (0, Vec::new());
    /// let soon = Deadline::after(Duration::from_millis(5));
    /// let waited = ring.read_deadline(&mut cursor, &mut buf, &WaitStrategy::default(), soon);
    /// assert_eq!(waited, Err(RecvTimeoutError::Timeout));
    /// ring.send_bytes(&7u64.to_le_bytes())?;
    /// let info = ring.read_deadline(&mut cursor, &mut buf, &WaitStrategy::default(), Deadline::NEVER)?;
    /// assert_eq!((info.index, buf.as_slice()), (0, &7u64.to_le_bytes()[..]));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn read_deadline(
        &self,
        cursor: &mut u64,
        out: &mut Vec<u8>,
        strategy: &WaitStrategy,
        deadline: impl Into<Deadline>,
    ) -> Result<ReadInfo, RecvTimeoutError> {
        // A byte-level read keeps no state between calls: each wait starts at the default pace.
        wait_for(
            &self.raw,
            strategy,
            deadline.into(),
            &mut Pace::default(),
            |_| self.read(cursor, out),
        )
    }

    /// [`Ring::read_shared`] that waits as [`Ring::read_deadline`] does.
    pub fn read_shared_deadline(
        &self,
        cursor: &SharedCursor,
        out: &mut Vec<u8>,
        strategy: &WaitStrategy,
        deadline: impl Into<Deadline>,
    ) -> Result<ReadInfo, RecvTimeoutError> {
        // A byte-level read keeps no state between calls: each wait starts at the default pace.
        wait_for(
            &self.raw,
            strategy,
            deadline.into(),
            &mut Pace::default(),
            |_| self.read_shared(cursor, out),
        )
    }

    /// Copies the last published reservation into `out` (replacing its contents), if any.
    pub fn read_last(&self, out: &mut Vec<u8>) -> Option<ReadInfo> {
        for _ in 0..64 {
            out.clear();
            let (start, end) = self.raw.locate_last()?;
            let run = self.raw.extend_run(start, end, 1);
            let (_, taken) = read::take(&self.raw, &run, start, u64::MAX, |src, k| {
                self.copy_out(src, k, out);
            });
            if taken.lost.is_none() {
                return Some(info(start, end));
            }
        }
        out.clear();
        None
    }

    /// Appends the `k` elements at `src` to `out`: the copy step of every read here
    /// (`src` and `k` as [`read::take`] gives them).
    fn copy_out(&self, src: *const u8, k: usize, out: &mut Vec<u8>) {
        let bytes = k * self.element_size();
        out.reserve(bytes);
        let len = out.len();
        let dst = out.as_mut_ptr().wrapping_add(len);
        // SAFETY: `read::take` gives `k` elements contiguous from `src` inside the data
        // area, aligned to the queue's word, and `bytes` is a multiple of it; `out` has
        // room for `bytes` more bytes (reserved above) and is private memory. Every access
        // to payload bytes is through `payload`.
        unsafe { payload::load(src, dst, bytes, self.raw.word()) };
        // SAFETY: the `bytes` bytes after the first `len` were just written (capacity
        // reserved above).
        unsafe { out.set_len(len + bytes) };
    }
}

fn info(start: u64, end: u64) -> ReadInfo {
    ReadInfo {
        index: start,
        count: (end - start) as usize,
    }
}

/// Elements reserved by [`Ring::reserve`]: fill them with [`Reservation::write`], then
/// [`Reservation::publish`]. Dropping it publishes it too.
#[derive(Debug)]
pub struct Reservation<'a> {
    ring: &'a Ring,
    start: u64,
    n: u64,
    published: bool,
}

impl Reservation<'_> {
    /// Absolute index of the first reserved element.
    pub fn index(&self) -> u64 {
        self.start
    }

    /// Number of reserved elements.
    pub fn len(&self) -> usize {
        self.n as usize
    }

    /// Always false: a reservation holds at least one element.
    pub fn is_empty(&self) -> bool {
        false
    }

    /// Bytes the reservation holds.
    pub fn byte_len(&self) -> usize {
        self.len() * self.ring.element_size()
    }

    /// Whether producers claimed a whole lap since this reservation: its positions then
    /// belong to a newer message, so writes are skipped and it will not be published
    /// (its message is lost, as if it had been overwritten; readers report the lag).
    pub fn is_lapped(&self) -> bool {
        self.ring.raw.lapped(self.start)
    }

    /// Copies `bytes` into the reservation at byte `offset`. When the reservation was
    /// lapped ([`Reservation::is_lapped`]) nothing is written (that would tear the newer
    /// message) and this still returns `Ok`.
    pub fn write(&mut self, offset: usize, bytes: &[u8]) -> Result<(), SendError> {
        let reserved = self.byte_len();
        if offset
            .checked_add(bytes.len())
            .is_none_or(|end| end > reserved)
        {
            return Err(SendError::WriteOutOfBounds {
                offset,
                len: bytes.len(),
                reserved,
            });
        }
        if self.is_lapped() {
            return Ok(());
        }
        let raw = &self.ring.raw;
        // SAFETY: `offset + bytes.len() <= byte_len`, and the reservation's bytes are
        // contiguous inside the data area from `start`'s position (it never straddles
        // the end), which is aligned to the queue's word; the words they touch are whole
        // elements of the reservation. Writes are relaxed atomics of the queue's width,
        // like every payload access; a lapped reader copying them discards its copy.
        unsafe { payload::store_at(raw.element_ptr(self.start), offset, bytes, raw.word()) };
        Ok(())
    }

    /// Publishes the reservation: `Ok(index)`, or `Err(Lapped)` when it was lapped
    /// ([`Reservation::is_lapped`]) and its message was dropped instead.
    pub fn publish(mut self) -> Result<u64, Lapped> {
        self.published = true;
        match self.ring.raw.publish(self.start, self.n) {
            true => Ok(self.start),
            false => Err(Lapped {
                index: self.start,
                len: self.n as usize,
            }),
        }
    }
}

impl Drop for Reservation<'_> {
    /// Abandons an unpublished reservation: readers skip it (a skip marker, raw.rs
    /// "Abandoned claims") instead of reading whatever bytes it holds.
    fn drop(&mut self) {
        if !self.published {
            self.ring.raw.abandon(self.start, self.n, None);
        }
    }
}
