//! What the blocking receives of both consumers are made of ([`Blocking`]: the wait
//! loop with its reset, disconnect and dead-claimant checks before each sleep), and the
//! iterators over a consumer's messages ([`Iter`], [`TryIter`]).

use core::marker::PhantomData;
use std::time::Duration;

#[cfg(doc)]
use super::{Consumer, SharedConsumer};
use crate::error::{RecvError, RecvTimeoutError, TryRecvError};
use crate::queue::raw::RawRing;
use crate::queue::wait::{Pace, WaitStrategy, wait_for};
use crate::sys::clock::Deadline;

/// What the blocking receives of both consumers are made of.
pub(super) trait Blocking: Sized {
    /// The ring and how to wait on it.
    fn waits(&self) -> (RawRing, WaitStrategy, Pace);

    /// Keeps what a blocking receive learnt about yielding (see [`Pace`]).
    fn keep_pace(&mut self, pace: Pace);

    /// A cursor beyond the head means the queue was reset under this consumer; start
    /// over with the new generation, as the peers' reset check does. Called before each
    /// sleep, and by `try_recv` every [`RESET_CHECK_INTERVAL`]th `Empty`.
    fn check_reset(&mut self);

    /// Called when the re-check before a sleep found nothing: the watch's checks without
    /// rate limit on the empty count (`Empty` or `Disconnected`).
    fn idle_empty(&mut self) -> TryRecvError;

    /// After an `idle_empty` that found nothing: how long a pending async receive may
    /// wait before it looks again by itself (`Watch::async_repoll`).
    fn async_repoll(&self) -> Duration;

    /// Calls `attempt` until it finds something or `deadline` passes, waiting between
    /// attempts as the consumer's strategy says ([`wait_for`]); checks for a reset, a
    /// disconnect and a dead claimant before each sleep.
    fn block<R>(
        &mut self,
        deadline: Deadline,
        mut attempt: impl FnMut(&mut Self) -> Result<R, TryRecvError>,
    ) -> Result<R, RecvTimeoutError> {
        let (raw, wait, mut pace) = self.waits();
        let got = wait_for(&raw, &wait, deadline, &mut pace, |idle| {
            if idle {
                self.check_reset();
            }
            match attempt(self) {
                Err(TryRecvError::Empty) if idle => Err(self.idle_empty()),
                other => other,
            }
        });
        self.keep_pace(pace);
        got
    }
}

/// `f` with no deadline: `Timeout` cannot happen, so it is asked again rather than
/// reported.
pub(super) fn untimed<R>(
    mut f: impl FnMut() -> Result<R, RecvTimeoutError>,
) -> Result<R, RecvError> {
    loop {
        match f() {
            Ok(r) => return Ok(r),
            Err(e) => {
                if let Some(e) = e.untimed() {
                    return Err(e);
                }
            }
        }
    }
}

/// What [`Iter`] and [`TryIter`] need of a consumer.
pub trait Receive<T> {
    /// The next message, waiting without a time limit.
    fn recv_next(&mut self) -> Result<T, RecvError>;
    /// The next message if one is published.
    fn try_recv_next(&mut self) -> Result<T, TryRecvError>;
}

/// A blocking iterator over a consumer's messages ([`Consumer::iter`],
/// [`SharedConsumer::iter`]). It ends at a disconnect, or at the first other error, which
/// [`Iter::error`] then returns.
///
/// ```
/// use fastipc::SlickQueue;
///
/// let q = SlickQueue::<u32>::local(16)?;
/// let mut rx = q.consumer()?;
/// let tx = q.producer()?;
/// for i in 0..3 {
///     tx.send(&i)?;
/// }
/// drop(tx); // the only producer leaves: the iterator ends after the last message
/// let got: Vec<u32> = rx.iter().collect();
/// assert_eq!(got, [0, 1, 2]);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Debug)]
pub struct Iter<'a, C, T> {
    rx: &'a mut C,
    error: Option<RecvError>,
    _marker: PhantomData<fn() -> T>,
}

impl<'a, C, T> Iter<'a, C, T> {
    /// An iterator over `rx`'s messages.
    pub(super) fn new(rx: &'a mut C) -> Self {
        Iter {
            rx,
            error: None,
            _marker: PhantomData,
        }
    }

    /// The error that ended the iteration, if it was not a disconnect.
    pub fn error(&self) -> Option<RecvError> {
        self.error
    }
}

impl<C: Receive<T>, T> Iterator for Iter<'_, C, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        if self.error.is_some() {
            return None;
        }
        match self.rx.recv_next() {
            Ok(v) => Some(v),
            Err(RecvError::Disconnected) => None,
            Err(e) => {
                self.error = Some(e);
                None
            }
        }
    }
}

/// A non-blocking iterator over the messages published now ([`Consumer::try_iter`],
/// [`SharedConsumer::try_iter`]): ends when the queue is empty, at a disconnect, or at the
/// first other error, which [`TryIter::error`] then returns.
#[derive(Debug)]
pub struct TryIter<'a, C, T> {
    rx: &'a mut C,
    error: Option<TryRecvError>,
    _marker: PhantomData<fn() -> T>,
}

impl<'a, C, T> TryIter<'a, C, T> {
    /// An iterator over `rx`'s messages.
    pub(super) fn new(rx: &'a mut C) -> Self {
        TryIter {
            rx,
            error: None,
            _marker: PhantomData,
        }
    }

    /// The error that ended the iteration, if it was not `Empty` or a disconnect.
    pub fn error(&self) -> Option<TryRecvError> {
        self.error
    }
}

impl<C: Receive<T>, T> Iterator for TryIter<'_, C, T> {
    type Item = T;
    fn next(&mut self) -> Option<T> {
        if self.error.is_some() {
            return None;
        }
        match self.rx.try_recv_next() {
            Ok(v) => Some(v),
            Err(TryRecvError::Empty | TryRecvError::Disconnected) => None,
            Err(e) => {
                self.error = Some(e);
                None
            }
        }
    }
}
