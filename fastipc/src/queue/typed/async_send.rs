//! Async sends: [`Producer::send_async`], which waits for room in a lossless queue
//! without blocking the thread.
//!
//! A full lossless queue makes a pending send do what a blocked producer does before it
//! sleeps (queue/flow.rs): read the producers' wake word of the endpoint table, raise
//! their "waiters present" flag, scan the floor again. Instead of sleeping on the word,
//! it registers it with the process-wide [`waiter`](crate::waiter) thread. Consumers
//! check the flag each time they publish their position (every few messages, and when
//! they find the queue empty), and when they leave or are evicted, so that a consumer
//! that makes room wakes the send. A pending send is also re-polled every
//! [`PRODUCER_POLL`], and every [`DEAD_CHECK_EVERY`] evicts the consumer that holds the
//! queue full if its process is dead, as a blocked `send` does: a crashed consumer wakes
//! nobody.

use core::future::Future;
use core::pin::Pin;
use core::task::{Context, Poll};
use std::time::{Duration, Instant};

use super::producer::{Producer, ProducerKind, SendStep, with_claim};
use crate::error::SendError;
use crate::message::IpcMessage;
use crate::queue::{DEAD_CHECK_EVERY, PRODUCER_POLL};
use crate::waiter::Registration;

impl<T: IpcMessage> Producer<T> {
    /// Sends a copy of `msg` without blocking the thread: a future of what
    /// [`Producer::send`] returns, for any async runtime (it only uses the
    /// [`Waker`](core::task::Waker) it is polled with).
    ///
    /// In a lossless queue whose consumers are a ring behind, the future waits for room:
    /// a poll that finds none registers the producers' wake word with the process-wide
    /// [waiter thread](crate::waiter) and returns `Pending`; a consumer that reads on
    /// wakes it. In a lossy queue (and a queue made by a peer) a send never waits: the
    /// future is ready at its first poll, with the result of [`Producer::send`].
    ///
    /// # Cancel safety
    ///
    /// This method is cancel safe. The message is claimed, copied and published inside
    /// the one poll that returns `Ready`, so a future dropped before that (a losing
    /// `select!` branch, a timeout) has sent nothing, not even part of the message, and
    /// `msg` is still the caller's to send again; dropping it also removes its
    /// registration. The producers' "waiters present" flag it may have raised stays set
    /// until a consumer clears it (one needless wake-up at most).
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
    /// use fastipc::queue::Mode;
    /// use fastipc::SlickQueue;
    ///
    /// let q = SlickQueue::<u64>::local_with(2, Mode::Lossless)?;
    /// let tx = q.producer()?;
    /// let mut rx = q.consumer()?;
    /// block_on(tx.send_async(&1))?;
    /// block_on(tx.send_async(&2))?;
    /// // Full: a third send waits until the consumer reads.
    /// let reader = std::thread::spawn(move || (rx.recv(), rx.recv(), rx.recv()));
    /// assert_eq!(block_on(tx.send_async(&3))?, 2);
    /// assert_eq!(reader.join().unwrap(), (Ok(1), Ok(2), Ok(3)));
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn send_async<'a>(&'a self, msg: &'a T) -> SendFuture<'a, T> {
        SendFuture::new(self, msg)
    }
}

impl<'a, T: IpcMessage, P: ProducerKind<T>> SendFuture<'a, T, P> {
    /// The future of an async send of `msg` by `owner`.
    pub(super) fn new(owner: &'a P, msg: &'a T) -> Self {
        SendFuture {
            owner,
            msg: Some(msg),
            reg: Registration::new(),
            next_dead_check: None,
            repoll: PRODUCER_POLL,
        }
    }
}

/// The future of [`Producer::send_async`] (and of
/// [`SingleProducer::send_async`](super::SingleProducer::send_async), which is not `Send`:
/// it borrows its producer, which is not `Sync`).
///
/// # Panics
///
/// Polling it again after it returned `Ready` panics (as `async fn` futures do) rather
/// than send the message a second time.
#[must_use = "futures do nothing unless polled"]
#[derive(Debug)]
pub struct SendFuture<'a, T: IpcMessage, P: ProducerKind<T> = Producer<T>> {
    owner: &'a P,
    /// The message until it is sent (`None` after: a poll after completion would send it
    /// twice).
    msg: Option<&'a T>,
    reg: Registration,
    /// When the next poll that finds the queue full checks the holder's liveness (set at
    /// the first such poll).
    next_dead_check: Option<Instant>,
    /// The re-poll interval of the registration ([`PRODUCER_POLL`]; longer in tests that
    /// check that consumers wake the send).
    repoll: Duration,
}

impl<T: IpcMessage, P: ProducerKind<T>> SendFuture<'_, T, P> {
    /// Whether the future is registered with the waiter: a probe that outlives it.
    #[cfg(test)]
    pub(super) fn probe(&self) -> impl Fn() -> bool + 'static {
        self.reg.probe()
    }

    /// The same future re-polled only every `repoll`.
    #[cfg(test)]
    pub(super) fn with_repoll(mut self, repoll: Duration) -> Self {
        self.repoll = repoll;
        self
    }
}

impl<T: IpcMessage, P: ProducerKind<T>> Future for SendFuture<'_, T, P> {
    type Output = Result<u64, SendError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        // No clock read on the first poll (usually the only one).
        let check_dead = this.next_dead_check.is_some_and(|at| Instant::now() >= at);
        let msg = this
            .msg
            .expect("`SendFuture` polled after it completed (it would send twice)");
        let producer = this.owner.producer();
        let step = with_claim!(P, C => producer.send_step::<C>(msg, check_dead));
        let seq = match step {
            Ok(SendStep::Wait(seq)) => seq,
            Ok(SendStep::Again) => {
                cx.waker().wake_by_ref();
                return Poll::Pending;
            }
            Ok(SendStep::Sent(index)) => {
                this.msg = None;
                this.reg.disarm();
                return Poll::Ready(Ok(index));
            }
            Err(e) => {
                this.msg = None;
                this.reg.disarm();
                return Poll::Ready(Err(e));
            }
        };
        if check_dead || this.next_dead_check.is_none() {
            this.next_dead_check = Some(Instant::now() + DEAD_CHECK_EVERY);
        }
        // `Wait` comes only from a lossless queue, which has a table.
        let armed = producer.producers_word().is_some_and(|(word, scope)| {
            this.reg
                .arm(word, seq, scope, Some(this.repoll), cx.waker())
        });
        if !armed {
            // No waiter thread (or no word): poll again rather than never.
            cx.waker().wake_by_ref();
        }
        Poll::Pending
    }
}
