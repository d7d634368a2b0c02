//! Queue throughput loops over any queue.
//!
//! Every producer sends `per_producer` items tagged `producer_id << 40 | sequence`; the
//! consumer checks that each producer's items arrive complete and in order (nothing lost,
//! nothing twice) and the run's figure is items per second at the consumer.
//!
//! The comparators (`crossbeam_queue::ArrayQueue`, `rtrb`) push back when full. A
//! SlickQueue never does: a producer overwrites what a slow reader has not read. So that
//! every queue moves the same items, the lossy ones run under a credit window
//! ([`Credits`]): producers take credits 64 at a time from a shared counter and wait
//! until the consumer has taken enough items that the whole chunk fits in the ring. The
//! consumer publishes its count every 64 items and whenever it finds the queue empty.
//! That costs the lossy queue one extra cache-line read per 64 items; it is counted
//! against it, never for it.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Barrier};
use std::time::Instant;

use crossbeam_queue::ArrayQueue;

use crate::affinity;
use crate::floors::Watchdog;
use crate::shared::{Ctl, Slot};

/// Credits are taken and progress published in chunks of this many items.
pub const CHUNK: u64 = 64;

/// A fixed-size message for the throughput runs, tagged with its producer and sequence.
pub trait Item: Copy + Send + 'static {
    /// A message carrying `tag` (every word is written, as a real sender fills a message).
    fn make(tag: u64) -> Self;
    /// The tag [`Item::make`] stored.
    fn tag(&self) -> u64;
    /// The message as 8-byte words (for queues that copy word by word).
    fn words(&self) -> &[u64];
    /// A message whose word `k` is `word(k)`.
    fn from_words(word: impl FnMut(usize) -> u64) -> Self;
}

impl Item for [u64; 1] {
    #[inline(always)]
    fn words(&self) -> &[u64] {
        self
    }
    #[inline(always)]
    fn from_words(word: impl FnMut(usize) -> u64) -> Self {
        std::array::from_fn(word)
    }
    #[inline(always)]
    fn make(tag: u64) -> Self {
        [tag]
    }
    #[inline(always)]
    fn tag(&self) -> u64 {
        self[0]
    }
}

impl Item for [u64; 8] {
    #[inline(always)]
    fn words(&self) -> &[u64] {
        self
    }
    #[inline(always)]
    fn from_words(word: impl FnMut(usize) -> u64) -> Self {
        std::array::from_fn(word)
    }
    #[inline(always)]
    fn make(tag: u64) -> Self {
        [tag; 8]
    }
    #[inline(always)]
    fn tag(&self) -> u64 {
        self[0]
    }
}

/// The sending end of a queue under test.
pub trait Sender: Send {
    /// The message type.
    type Item: Item;
    /// Sends one item, waiting (spinning) while the queue is full.
    fn send(&mut self, item: Self::Item) -> std::io::Result<()>;
}

/// The receiving end of a queue under test.
pub trait Receiver: Send {
    /// The message type.
    type Item: Item;
    /// Takes one item if there is one. An error means items were lost.
    fn try_recv(&mut self) -> std::io::Result<Option<Self::Item>>;
}

/// A `crossbeam_queue::ArrayQueue` end (the same type sends and receives).
#[derive(Debug)]
pub struct ArrayEnd<T>(pub Arc<ArrayQueue<T>>);

impl<T: Item> Sender for ArrayEnd<T> {
    type Item = T;
    #[inline]
    fn send(&mut self, item: T) -> std::io::Result<()> {
        let mut item = item;
        let mut dog = Watchdog::new();
        while let Err(back) = self.0.push(item) {
            item = back;
            dog.spin("ArrayQueue push")?;
        }
        Ok(())
    }
}

impl<T: Item> Receiver for ArrayEnd<T> {
    type Item = T;
    #[inline]
    fn try_recv(&mut self) -> std::io::Result<Option<T>> {
        Ok(self.0.pop())
    }
}

impl<T: Item> Sender for rtrb::Producer<T> {
    type Item = T;
    #[inline]
    fn send(&mut self, item: T) -> std::io::Result<()> {
        let mut item = item;
        let mut dog = Watchdog::new();
        while let Err(rtrb::PushError::Full(back)) = self.push(item) {
            item = back;
            dog.spin("rtrb push")?;
        }
        Ok(())
    }
}

impl<T: Item> Receiver for rtrb::Consumer<T> {
    type Item = T;
    #[inline]
    fn try_recv(&mut self) -> std::io::Result<Option<T>> {
        Ok(self.pop().ok())
    }
}

/// The producer side of the credit window of a lossy queue of `capacity` items.
#[derive(Debug)]
pub struct Credits {
    ctl: Arc<Ctl>,
    window: u64,
    left: u64,
}

impl Credits {
    /// Credits against the counters in `ctl` ([`Slot::Issued`], [`Slot::Consumed`]).
    pub fn new(ctl: Arc<Ctl>, capacity: usize) -> Credits {
        assert!(
            capacity as u64 >= 4 * CHUNK,
            "the credit window needs room for 4 chunks"
        );
        Credits {
            ctl,
            window: capacity as u64,
            left: 0,
        }
    }

    /// Takes the credit for one item, waiting until the consumer has made room.
    #[inline]
    pub fn take(&mut self) -> std::io::Result<()> {
        if self.left == 0 {
            let start = self
                .ctl
                .u64(Slot::Issued)
                .fetch_add(CHUNK, Ordering::Relaxed);
            let consumed = self.ctl.u64(Slot::Consumed);
            let mut dog = Watchdog::new();
            while start + CHUNK > consumed.load(Ordering::Acquire) + self.window {
                dog.spin("waiting for credits")?;
            }
            self.left = CHUNK;
        }
        self.left -= 1;
        Ok(())
    }
}

/// A lossy queue's sender wrapped in a credit window.
#[derive(Debug)]
pub struct Credited<S> {
    /// The raw sender (never waits).
    pub inner: S,
    /// Its credits.
    pub credits: Credits,
}

impl<S: Sender> Sender for Credited<S> {
    type Item = S::Item;
    #[inline]
    fn send(&mut self, item: S::Item) -> std::io::Result<()> {
        self.credits.take()?;
        self.inner.send(item)
    }
}

/// Sends `n` items tagged with producer `id`.
#[inline(never)]
pub fn produce<S: Sender>(tx: &mut S, id: u64, n: u64) -> std::io::Result<()> {
    for seq in 0..n {
        tx.send(S::Item::make(id << 40 | seq))?;
    }
    Ok(())
}

/// Receives `producers * per_producer` items, checking each producer's sequence, and
/// publishes progress to `consumed` (the credit window's counter) when given.
#[inline(never)]
pub fn consume<R: Receiver>(
    rx: &mut R,
    producers: usize,
    per_producer: u64,
    consumed: Option<&std::sync::atomic::AtomicU64>,
) -> std::io::Result<()> {
    let mut next = vec![0u64; producers];
    let total = producers as u64 * per_producer;
    let (mut got, mut published) = (0u64, 0u64);
    let mut dog = Watchdog::new();
    while got < total {
        match rx.try_recv()? {
            Some(item) => {
                let tag = item.tag();
                let (p, seq) = ((tag >> 40) as usize, tag & ((1 << 40) - 1));
                if p >= producers || seq != next[p] {
                    return Err(std::io::Error::other(format!(
                        "item {seq} of producer {p} arrived out of order (expected {:?})",
                        next.get(p)
                    )));
                }
                next[p] += 1;
                got += 1;
                dog = Watchdog::new();
                if got % CHUNK == 0
                    && let Some(c) = consumed
                {
                    c.store(got, Ordering::Release);
                    published = got;
                }
            }
            None => {
                if let Some(c) = consumed
                    && published != got
                {
                    c.store(got, Ordering::Release);
                    published = got;
                }
                dog.spin("consumer waiting for items")?;
            }
        }
    }
    Ok(())
}

/// What one look at a lossy queue found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Got<T> {
    /// Nothing new.
    Empty,
    /// This many messages were overwritten before they were read.
    Lagged(u64),
    /// The next message.
    Item(T),
}

/// The receiving end of a lossy queue read raw (no credit window): it reports lags.
pub trait LossyReceiver: Send {
    /// The message type.
    type Item: Item;
    /// The next message, a lag, or nothing.
    fn poll(&mut self) -> std::io::Result<Got<Self::Item>>;
}

/// What a raw run of one producer's `total` items delivered: `delivered + lost + stale
/// == total`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Delivery {
    /// Items received intact and in order.
    pub delivered: u64,
    /// Items reported overwritten before they were read (the sum of the lags).
    pub lost: u64,
    /// Items handed out with another item's contents (overwritten while they were
    /// copied, by a reader that does not check its copy): lost too.
    pub stale: u64,
}

impl Delivery {
    /// The fraction of the items that did not arrive.
    pub fn loss(&self) -> f64 {
        let total = self.delivered + self.lost + self.stale;
        if total == 0 {
            0.0
        } else {
            (self.lost + self.stale) as f64 / total as f64
        }
    }
}

/// Receives one producer's (id 0) `total` items raw: counts what arrives in order, the
/// lags, and (only if `stale_ok`; else it is an error) items whose contents are not
/// exactly the message of the index they were read at (another message, or a torn mix). Returns once every index is accounted for.
#[inline(never)]
pub fn consume_lossy<R: LossyReceiver>(
    rx: &mut R,
    total: u64,
    stale_ok: bool,
) -> std::io::Result<Delivery> {
    let mut d = Delivery::default();
    let mut next = 0u64;
    let mut dog = Watchdog::new();
    while next < total {
        match rx.poll()? {
            Got::Item(item) => {
                // Every word, not only the tag: a torn copy of a longer message counts.
                if item.words() == R::Item::make(next).words() {
                    d.delivered += 1;
                } else if stale_ok {
                    d.stale += 1;
                } else {
                    return Err(std::io::Error::other(format!(
                        "item {} arrived at index {next}",
                        item.tag()
                    )));
                }
                next += 1;
                dog = Watchdog::new();
            }
            Got::Lagged(n) => {
                d.lost += n;
                next += n;
            }
            Got::Empty => dog.spin("raw consumer waiting for items")?,
        }
    }
    if next != total {
        return Err(std::io::Error::other(format!(
            "the consumer accounted for {next} indices of {total}"
        )));
    }
    Ok(d)
}

/// Sends `n` items tagged with producer `id` and stores the time it took (ns, at least
/// 1) in [`Slot::Done`] of `ctl` (a raw run's producer side).
pub fn produce_timed<S: Sender>(tx: &mut S, id: u64, n: u64, ctl: &Ctl) -> std::io::Result<()> {
    let start = Instant::now();
    produce(tx, id, n)?;
    let ns = (start.elapsed().as_nanos() as u64).max(1);
    // Release: the parent reads it (acquire) after this process exited.
    ctl.u64(Slot::Done).store(ns, Ordering::Release);
    Ok(())
}

/// Waits for the go word of `ctl` (a producer process before its measured part).
pub fn wait_go(ctl: &Ctl) -> std::io::Result<()> {
    let mut dog = Watchdog::new();
    while ctl.u64(Slot::Go).load(Ordering::Acquire) == 0 {
        dog.spin("producer waiting for go")?;
    }
    Ok(())
}

/// Where the threads of a throughput run go.
#[derive(Clone, Debug)]
pub struct Placement {
    /// The consumer's CPU.
    pub consumer: usize,
    /// Each producer's CPU (their number is the number of producers).
    pub producers: Vec<usize>,
}

/// Runs one throughput measurement in threads: `senders` (one thread each, pinned as
/// `place` says) against `receiver`; `consumed` is the credit counter when the queue
/// needs one. Returns items per second at the consumer.
pub fn run_threads<S, R>(
    senders: Vec<S>,
    mut receiver: R,
    per_producer: u64,
    place: &Placement,
    credit_ctl: Option<Arc<Ctl>>,
) -> std::io::Result<f64>
where
    S: Sender + 'static,
    R: Receiver<Item = S::Item> + 'static,
{
    let producers = senders.len();
    let barrier = Arc::new(Barrier::new(producers + 1));
    let handles: Vec<_> = senders
        .into_iter()
        .enumerate()
        .map(|(id, mut tx)| {
            let barrier = Arc::clone(&barrier);
            let cpu = place.producers[id % place.producers.len()];
            std::thread::spawn(move || {
                affinity::pin_to(cpu)?;
                barrier.wait();
                produce(&mut tx, id as u64, per_producer)
            })
        })
        .collect();
    let consumer_cpu = place.consumer;
    let consumer = std::thread::spawn(move || -> std::io::Result<f64> {
        affinity::pin_to(consumer_cpu)?;
        barrier.wait();
        let start = Instant::now();
        let consumed = credit_ctl.as_ref().map(|c| c.u64(Slot::Consumed));
        consume(&mut receiver, producers, per_producer, consumed)?;
        Ok((producers as u64 * per_producer) as f64 / start.elapsed().as_secs_f64())
    });
    for h in handles {
        h.join()
            .map_err(|_| std::io::Error::other("a producer panicked"))??;
    }
    consumer
        .join()
        .map_err(|_| std::io::Error::other("the consumer panicked"))?
}

/// `ArrayQueue` throughput in threads.
pub fn array_queue<T: Item>(
    capacity: usize,
    per_producer: u64,
    place: &Placement,
) -> std::io::Result<f64> {
    let q = Arc::new(ArrayQueue::<T>::new(capacity));
    let senders = (0..place.producers.len())
        .map(|_| ArrayEnd(Arc::clone(&q)))
        .collect();
    run_threads(senders, ArrayEnd(q), per_producer, place, None)
}

/// `rtrb` throughput in threads (single producer only).
pub fn rtrb<T: Item>(
    capacity: usize,
    per_producer: u64,
    place: &Placement,
) -> std::io::Result<f64> {
    assert_eq!(place.producers.len(), 1, "rtrb is single-producer");
    let (tx, rx) = rtrb::RingBuffer::<T>::new(capacity);
    run_threads(vec![tx], rx, per_producer, place, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comparators_move_every_item() {
        let spsc = Placement {
            consumer: 0,
            producers: vec![affinity::allowed_cpus().last().copied().unwrap_or(0)],
        };
        let mpsc = Placement {
            producers: vec![spsc.producers[0]; 2],
            ..spsc.clone()
        };
        assert!(array_queue::<[u64; 1]>(64, 10_000, &spsc).unwrap() > 0.0);
        assert!(array_queue::<[u64; 8]>(64, 10_000, &mpsc).unwrap() > 0.0);
        assert!(rtrb::<[u64; 1]>(64, 10_000, &spsc).unwrap() > 0.0);
    }
}
