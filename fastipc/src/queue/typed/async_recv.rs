//! Async receives: [`Consumer::recv_async`], [`SharedConsumer::recv_async`] and, with
//! the `stream` feature, [`RecvStream`].
//!
//! A pending receive raises the queue's "waiters present" flag exactly as a blocking
//! consumer does before it sleeps (queue/raw.rs, "Wake protocol"), then registers the
//! queue's `wake_seq` word with the process-wide [`waiter`](crate::waiter) thread instead
//! of sleeping on it. Producers therefore make no syscall while no receive (blocking or
//! async) is pending, and wake the waiter thread otherwise.
//!
//! # When a pending receive re-polls
//!
//! C++ and Python producers never wake anyone and never register in the endpoint table,
//! so the table cannot tell whether one publishes. A pending receive looks again by
//! itself after
//! - [`WaitStrategy::poll`](crate::queue::WaitStrategy::poll) (1 ms by default), as a
//!   sleeping `recv()` does, when such a producer may publish: the queue has no endpoint
//!   table (a peer made it), no fastipc producer ever registered in it (whatever comes
//!   comes from a peer), or the consumer declared
//!   [`WaitStrategy::peer_producers`](crate::queue::WaitStrategy::peer_producers); also
//!   while a claim at its cursor is unpublished (a claimant that died is skipped only by
//!   looking again);
//! - otherwise `max(poll, ASYNC_IDLE_CHECK)` ([`ASYNC_IDLE_CHECK`] = 1 s): every
//!   producer is a fastipc one, which wakes the receive when it publishes and when it
//!   leaves (its dropped endpoint frees its table entry, then checks the waiters flag:
//!   the disconnect is seen at once). The look each second is only for a producer killed
//!   without leaving, judged dead (syscalls) at every fifth look: its disconnect shows
//!   within about 5 s. 1,000 such idle receives cost almost nothing (xbench, "Idle cost
//!   of pending async receives").
//!
//! A peer producer publishing *beside* fastipc producers on a queue fastipc made is the
//! case the table cannot see: its messages wait for the next fastipc message or look
//! (1 s) unless the consumer declares `peer_producers(true)`.

use core::future::Future;
use core::pin::Pin;
use core::sync::atomic::Ordering::{Acquire, SeqCst};
use core::task::{Context, Poll};

use super::blocking::Blocking;
use super::consumer::Consumer;
use super::shared_consumer::SharedConsumer;
use crate::error::{RecvError, TryRecvError};
use crate::message::IpcMessage;
#[cfg(doc)]
use crate::queue::ASYNC_IDLE_CHECK;
use crate::waiter::Registration;

impl<T: IpcMessage> Consumer<T> {
    /// Waits for the next message without blocking the thread: a future of what
    /// [`Consumer::recv`] returns, for any async runtime (it only uses the
    /// [`Waker`](core::task::Waker) it is polled with). No spinning: a poll that finds
    /// nothing registers with the process-wide [waiter thread](crate::waiter) and returns.
    ///
    /// # Cancel safety
    ///
    /// This method is cancel safe. A message is taken from the ring only inside a poll
    /// that returns it, so dropping the future (a losing `select!` branch, a timeout)
    /// loses no message: the next receive gets it. Dropping it also removes its
    /// registration.
    ///
    /// # Waking
    ///
    /// A fastipc producer wakes the pending future when it publishes or leaves. Where a
    /// producer that never wakes (C++, Python) may publish, the future also re-polls every
    /// [`WaitStrategy::poll`](crate::queue::WaitStrategy::poll); where every producer is a
    /// fastipc one, only every [`ASYNC_IDLE_CHECK`] (the rule is in the module docs of
    /// `async_recv`, and in the README's "Async" section). Declare peer producers beside
    /// fastipc ones with
    /// [`WaitStrategy::peer_producers`](crate::queue::WaitStrategy::peer_producers).
    ///
    /// ```
    /// # fn block_on<F: std::future::Future>(f: F) -> F::Output {
    /// #     let waker = std::task::Waker::noop();
    /// #     let mut cx = std::task::Context::from_waker(&waker);
    /// #     let mut f = std::pin::pin!(f);
    /// #     loop {
    /// #         if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v; }
    /// #         std::thread::yield_now();
    /// #     }
    /// # }
    /// use fastipc::SlickQueue;
    ///
    /// let q = SlickQueue::<u64>::local(64)?;
    /// let mut rx = q.consumer()?;
    /// q.producer()?.send(&7)?;
    /// assert_eq!(block_on(rx.recv_async())?, 7);
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn recv_async(&mut self) -> RecvFuture<'_, T> {
        RecvFuture {
            consumer: self,
            reg: Registration::new(),
        }
    }

    /// The messages of this consumer as a [`futures_core::Stream`] of the results of
    /// [`Consumer::recv_async`] (it never ends). Cancel safe as `recv_async`.
    #[cfg(feature = "stream")]
    pub fn stream(&mut self) -> RecvStream<'_, Consumer<T>> {
        RecvStream {
            consumer: self,
            reg: Registration::new(),
        }
    }
}

impl<T: IpcMessage> SharedConsumer<T> {
    /// Waits for the next message of the group without blocking the thread: a future of
    /// what [`SharedConsumer::recv`] returns (see [`Consumer::recv_async`]).
    ///
    /// # Cancel safety
    ///
    /// This method is cancel safe. A message is claimed from the shared cursor only inside
    /// a poll that returns it (the rest of a batch reservation stays in this consumer's
    /// [`pending`](SharedConsumer::pending) messages, delivered by the next receive), so
    /// dropping the future loses no message, and removes its registration.
    pub fn recv_async(&mut self) -> SharedRecvFuture<'_, T> {
        SharedRecvFuture {
            consumer: self,
            reg: Registration::new(),
        }
    }

    /// The messages of this consumer as a [`futures_core::Stream`] (it never ends).
    /// Cancel safe as [`SharedConsumer::recv_async`].
    #[cfg(feature = "stream")]
    pub fn stream(&mut self) -> RecvStream<'_, SharedConsumer<T>> {
        RecvStream {
            consumer: self,
            reg: Registration::new(),
        }
    }
}

/// The future of [`Consumer::recv_async`].
#[must_use = "futures do nothing unless polled"]
#[derive(Debug)]
pub struct RecvFuture<'a, T> {
    consumer: &'a mut Consumer<T>,
    reg: Registration,
}

impl<T> RecvFuture<'_, T> {
    /// Whether the future is registered with the waiter: a probe that outlives it.
    #[cfg(test)]
    pub(super) fn probe(&self) -> impl Fn() -> bool + 'static {
        self.reg.probe()
    }

    /// How long from now the pending future looks again by itself.
    #[cfg(test)]
    pub(super) fn repoll_in(&self) -> Option<core::time::Duration> {
        self.reg.repoll_in()
    }
}

impl<T: IpcMessage> Future for RecvFuture<'_, T> {
    type Output = Result<T, RecvError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        poll_recv(this.consumer, &mut this.reg, cx, Consumer::try_recv)
    }
}

/// The future of [`SharedConsumer::recv_async`].
#[must_use = "futures do nothing unless polled"]
#[derive(Debug)]
pub struct SharedRecvFuture<'a, T> {
    consumer: &'a mut SharedConsumer<T>,
    reg: Registration,
}

impl<T: IpcMessage> Future for SharedRecvFuture<'_, T> {
    type Output = Result<T, RecvError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        poll_recv(this.consumer, &mut this.reg, cx, SharedConsumer::try_recv)
    }
}

/// The stream of [`Consumer::stream`] or [`SharedConsumer::stream`]: every item is what
/// the consumer's `recv_async` would have returned. It never ends.
#[cfg(feature = "stream")]
#[must_use = "streams do nothing unless polled"]
#[derive(Debug)]
pub struct RecvStream<'a, C> {
    consumer: &'a mut C,
    reg: Registration,
}

#[cfg(feature = "stream")]
impl<T: IpcMessage> futures_core::Stream for RecvStream<'_, Consumer<T>> {
    type Item = Result<T, RecvError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        poll_recv(this.consumer, &mut this.reg, cx, Consumer::try_recv).map(Some)
    }
}

#[cfg(feature = "stream")]
impl<T: IpcMessage> futures_core::Stream for RecvStream<'_, SharedConsumer<T>> {
    type Item = Result<T, RecvError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        poll_recv(this.consumer, &mut this.reg, cx, SharedConsumer::try_recv).map(Some)
    }
}

/// One poll of an async receive: try; raise the "waiters present" flag as a blocking
/// consumer does before sleeping and try again; else register `wake_seq` with the value
/// read before the flag, and return `Pending`.
fn poll_recv<C: Blocking, R>(
    consumer: &mut C,
    reg: &mut Registration,
    cx: &mut Context<'_>,
    mut attempt: impl FnMut(&mut C) -> Result<R, TryRecvError>,
) -> Poll<Result<R, RecvError>> {
    match attempt(consumer) {
        Err(TryRecvError::Empty) => {}
        done => {
            reg.disarm();
            return Poll::Ready(done.map_err(final_error));
        }
    }
    let (raw, _, _) = consumer.waits();
    let header = raw.header();
    // The consumer's half of the handshake of queue/raw.rs, "Wake protocol", as in
    // wait.rs `sleep_once`: `wake_seq` read first (acquire: pairs with the producer's
    // increment, though only the value matters), the flag raised (SeqCst), then
    // `last_published` loaded (SeqCst). Either the re-check below sees a message
    // published before that load, or the producer that publishes it finds the flag set,
    // increments `wake_seq` past `seq` and wakes it: the waiter thread then either is
    // woken or finds `wake_seq != seq` when it starts waiting.
    let seq = header.wake_seq.load(Acquire);
    header.sleepers.store(1, SeqCst);
    let _ = header.last_published.load(SeqCst);
    consumer.check_reset();
    // The re-check, then (when still empty) the checks a blocking consumer makes before
    // each sleep: a disconnect, a dead producer's claim to skip (module `watch`).
    match attempt(consumer) {
        Err(TryRecvError::Empty) => match consumer.idle_empty() {
            TryRecvError::Empty => {}
            e => {
                reg.disarm();
                return Poll::Ready(Err(final_error(e)));
            }
        },
        done => {
            reg.disarm();
            return Poll::Ready(done.map_err(final_error));
        }
    }
    let repoll = consumer.async_repoll();
    if !reg.arm(&header.wake_seq, seq, raw.scope(), Some(repoll), cx.waker()) {
        // No waiter thread: poll again rather than never.
        cx.waker().wake_by_ref();
    }
    Poll::Pending
}

/// A receive error other than `Empty` as the blocking `recv` reports it.
fn final_error(e: TryRecvError) -> RecvError {
    match e.timed_out().untimed() {
        Some(e) => e,
        // `Empty` is handled by the callers before they get here.
        None => unreachable!("Empty is not final"),
    }
}
