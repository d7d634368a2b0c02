//! The one read primitive every reader of the queue is made of (the byte-level
//! [`Ring`](super::Ring) reads, the typed consumers, the work-stealing
//! [`SharedCursor`](super::SharedCursor), `read_last`): **locate** what is published at a
//! cursor as a [`Run`], **copy** part of it with the caller's atomic copy, **validate**
//! the copy once, and **recover** after a lap (where to continue, and the exact
//! `Lagged(n)`). raw.rs holds the steps and the argument for each; this module is their
//! only composition.
//!
//! [`take`] is the copy-validate-recover step over a located run; [`Reader`] is a
//! private reader's position (a cursor plus the run being delivered), which adds the
//! locate step and remembers a lag found after an intact prefix so that no count is lost.

use super::raw::{Locate, Peek, RawRing, Run};
use crate::error::TryRecvError;

/// What [`take`] kept of a copy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Taken {
    /// Elements kept, from the first one copied (the rest of the copy must be discarded).
    pub(crate) kept: u64,
    /// When fewer than asked were kept: where the reader continues and what it reports
    /// ([`RawRing::lost`] at the first element not kept).
    pub(crate) lost: Option<(u64, TryRecvError)>,
}

/// Locates the run at `cursor`: the reservation there (following wrap markers, skipping
/// abandoned claims), extended over following one-element reservations up to `limit`
/// elements ([`RawRing::extend_run`]). `Err((cursor, error))` when there is nothing to
/// copy: the reader continues at `cursor` and reports `error` (`Empty` when nothing is
/// published yet).
#[inline]
pub(crate) fn locate(raw: &RawRing, cursor: u64, limit: u64) -> Result<Run, (u64, TryRecvError)> {
    match raw.locate(cursor) {
        Locate::Found { start, end } => Ok(raw.extend_run(start, end, limit)),
        Locate::Empty { cursor } => Err((cursor, TryRecvError::Empty)),
        Locate::Skip { cursor, error } => Err((cursor, error)),
    }
}

/// Copies elements `first..first + k` of `run` (`run.start <= first < run.end`, `k`
/// the most `max` allows) by calling `copy(src, k)`, then validates the copy
/// ([`RawRing::intact_prefix`]) and, when part of it was overwritten, computes where the
/// reader continues. Returns `k` and what was kept.
///
/// `copy` is given the address of element `first` and a count `k >= 1` of elements that
/// are contiguous from it inside the data area (a run never passes the end of the ring),
/// aligned to the queue's payload word ([`RawRing::word`]); it must copy them only with
/// `payload::load` (other processes may be writing them).
#[inline]
pub(crate) fn take(
    raw: &RawRing,
    run: &Run,
    first: u64,
    max: u64,
    copy: impl FnOnce(*const u8, usize),
) -> (u64, Taken) {
    debug_assert!(run.start <= first && first < run.end && max >= 1);
    let k = (run.end - first).min(max);
    copy(raw.element_ptr(first), k as usize);
    let kept = raw.intact_prefix(run, first, k);
    let lost = (kept < k).then(|| raw.lost(first + kept));
    (k, Taken { kept, lost })
}

/// A private reader's position: the next element to deliver and the run it belongs to
/// (`next == run.end`: at a boundary, the next read locates a new run).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Reader {
    next: u64,
    run: Run,
    /// A lag or corruption found after an intact prefix was delivered: reported by the
    /// next read, so no count is lost.
    deferred: Option<TryRecvError>,
}

impl Reader {
    /// A reader at `cursor` (a boundary).
    pub(crate) fn new(cursor: u64) -> Reader {
        Reader {
            next: cursor,
            run: Run {
                start: cursor,
                end: cursor,
                singles: true,
            },
            deferred: None,
        }
    }

    /// The next element to deliver.
    pub(crate) fn next(&self) -> u64 {
        self.next
    }

    /// The end of the run being delivered (the cursor at a boundary).
    pub(crate) fn end(&self) -> u64 {
        self.run.end
    }

    /// Where a reader stopping now resumes without skipping anything: the start of the
    /// reservation being delivered (a reservation boundary).
    pub(crate) fn boundary(&self) -> u64 {
        if self.next == self.run.end || self.run.singles {
            self.next
        } else {
            self.run.start
        }
    }

    /// The fast path of [`Reader::read`] for one message, when the reader is at a
    /// boundary with nothing deferred: what [`RawRing::peek`] says of the slot at its
    /// cursor. On [`Peek::Single`] the caller copies the message at [`Reader::next`]
    /// (with `payload::load`, as `read`'s `copy`) and passes it to
    /// [`Reader::take_single`]; on [`Peek::Empty`] it reports `Empty` as `read` would
    /// (the reader is where `read` would leave it); on [`Peek::Other`] (also when the
    /// reader is inside a run or has a deferred report) it takes `read`.
    #[inline(always)]
    pub(crate) fn peek(&self, raw: &RawRing) -> Peek {
        if self.next == self.run.end && self.deferred.is_none() {
            raw.peek(self.next)
        } else {
            Peek::Other
        }
    }

    /// After copying the message at `c` for which [`Reader::peek`] said [`Peek::Single`]: validates the copy
    /// as `read` validates a one-element reservation ([`RawRing::intact`]: the slot still
    /// names `c`) and, if it is intact, moves past it and returns the reservation
    /// boundary after it (what `read` passes to `found`). `None` when the copy must be
    /// discarded, the reader unchanged: the caller takes `read`, which locates the slot
    /// again and reports the lap.
    #[inline(always)]
    pub(crate) fn take_single(&mut self, raw: &RawRing, c: u64) -> Option<u64> {
        if !raw.intact(c, c, c + 1) {
            return None;
        }
        self.next = c + 1;
        self.run = Run {
            start: c,
            end: c + 1,
            singles: true,
        };
        Some(c + 1)
    }

    /// Keeps `error` to report on the next read at a boundary (a caller that delivered
    /// messages before finding it).
    pub(crate) fn defer(&mut self, error: TryRecvError) {
        self.deferred = Some(error);
    }

    /// Moves to `cursor` (a boundary), forgetting the run and any deferred report.
    pub(crate) fn restart(&mut self, cursor: u64) {
        *self = Reader::new(cursor);
    }

    /// The read step of a private reader: at a boundary, reports a deferred error or
    /// locates the run at the cursor (extended up to `limit` elements); then copies at
    /// most `max` elements of it ([`take`], which says what `copy` is given and may do),
    /// keeps the intact prefix and moves past it. Returns the index of the first element
    /// kept and how many were kept (`>= 1`), the first `kept` elements of the copy; or
    /// the error to report, the reader having moved where it continues. A lag found after
    /// a kept prefix is reported by the next call.
    ///
    /// After a delivery, `found(boundary)` is called with [`Reader::boundary`]: the
    /// reservation boundary every message before which was delivered (what a lossless
    /// consumer publishes, every few messages: once per call, not per message).
    #[inline]
    pub(crate) fn read(
        &mut self,
        raw: &RawRing,
        max: u64,
        limit: u64,
        found: impl FnOnce(u64),
        copy: impl FnOnce(*const u8, usize),
    ) -> Result<(u64, u64), TryRecvError> {
        if self.next == self.run.end {
            if let Some(e) = self.deferred.take() {
                return Err(e);
            }
            match locate(raw, self.next, limit.max(max)) {
                Ok(run) => {
                    self.run = run;
                    self.next = run.start;
                }
                Err((cursor, error)) => {
                    self.restart(cursor);
                    return Err(error);
                }
            }
        }
        let first = self.next;
        let (_, taken) = take(raw, &self.run, first, max, copy);
        match taken.lost {
            None => self.next = first + taken.kept,
            Some((cursor, error)) => {
                self.restart(cursor);
                if taken.kept == 0 {
                    return Err(error);
                }
                if error != TryRecvError::Empty {
                    self.deferred = Some(error);
                }
            }
        }
        found(self.boundary());
        Ok((first, taken.kept))
    }
}
