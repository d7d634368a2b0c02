//! The fastipc queue as the throughput and ping-pong loops see it.

use std::sync::Arc;

use fastipc::queue::{Consumer, Mode, Producer, SingleProducer, TryRecvError, WaitStrategy};
use fastipc::{IpcMessage, SlickQueue};

use crate::floors::Watchdog;
use crate::queues::{
    self, Credited, Credits, Got, Item, LossyReceiver, Placement, Receiver, Sender,
};
use crate::shared::Ctl;

impl<T: Item + IpcMessage> Sender for Producer<T> {
    type Item = T;
    #[inline]
    fn send(&mut self, item: T) -> std::io::Result<()> {
        Producer::send(self, &item)
            .map(|_| ())
            .map_err(|e| std::io::Error::other(format!("fastipc send: {e}")))
    }
}

impl<T: Item + IpcMessage> Sender for SingleProducer<T> {
    type Item = T;
    #[inline]
    fn send(&mut self, item: T) -> std::io::Result<()> {
        SingleProducer::send(self, &item)
            .map(|_| ())
            .map_err(|e| std::io::Error::other(format!("fastipc send: {e}")))
    }
}

impl<T: Item + IpcMessage> Receiver for Consumer<T> {
    type Item = T;
    #[inline]
    fn try_recv(&mut self) -> std::io::Result<Option<T>> {
        match Consumer::try_recv(self) {
            Ok(v) => Ok(Some(v)),
            Err(TryRecvError::Empty) => Ok(None),
            Err(e) => Err(std::io::Error::other(format!("fastipc consumer: {e}"))),
        }
    }
}

impl<T: Item + IpcMessage> LossyReceiver for Consumer<T> {
    type Item = T;
    #[inline]
    fn poll(&mut self) -> std::io::Result<Got<T>> {
        match Consumer::try_recv(self) {
            Ok(v) => Ok(Got::Item(v)),
            Err(TryRecvError::Empty) => Ok(Got::Empty),
            Err(TryRecvError::Lagged(n)) => Ok(Got::Lagged(n)),
            Err(e) => Err(std::io::Error::other(format!("fastipc consumer: {e}"))),
        }
    }
}

/// How a producer process sends in a cross-process run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// One `send` per item; in a lossy queue under the credit window (a lossless queue
    /// holds the producer back itself).
    Credit,
    /// One `send` per item and nothing else, whatever the consumer does (lossy, raw).
    Raw,
    /// `send_batch` of this many items (the last batch may be shorter).
    Batch(usize),
}

impl Shape {
    /// Its spelling on a child's command line.
    pub fn arg(self) -> String {
        match self {
            Shape::Credit => "credit".into(),
            Shape::Raw => "raw".into(),
            Shape::Batch(n) => format!("batch{n}"),
        }
    }

    /// Reads [`Shape::arg`]'s spelling.
    pub fn parse(s: &str) -> std::io::Result<Shape> {
        match s {
            "credit" => Ok(Shape::Credit),
            "raw" => Ok(Shape::Raw),
            _ => s
                .strip_prefix("batch")
                .and_then(|n| n.parse().ok())
                .filter(|&n| n > 0)
                .map(Shape::Batch)
                .ok_or_else(|| std::io::Error::other(format!("unknown send shape `{s}`"))),
        }
    }
}

/// Sends `n` items tagged with producer `id` in batches of `batch` (`send_batch`).
#[inline(never)]
pub fn produce_batches<T: Item + IpcMessage>(
    tx: &Producer<T>,
    id: u64,
    n: u64,
    batch: usize,
) -> std::io::Result<()> {
    let mut buf = vec![T::make(0); batch];
    let mut seq = 0;
    while seq < n {
        let k = (n - seq).min(batch as u64) as usize;
        for (j, slot) in buf[..k].iter_mut().enumerate() {
            *slot = T::make(id << 40 | (seq + j as u64));
        }
        tx.send_batch(&buf[..k])
            .map_err(|e| std::io::Error::other(format!("fastipc send_batch: {e}")))?;
        seq += k as u64;
    }
    Ok(())
}

/// Receives one producer's (id 0) `total` items with `try_recv_into` into a buffer of
/// `batch`, checking that every item arrives in order; any error (a lag) fails the run.
#[inline(never)]
pub fn consume_batches<T: Item + IpcMessage>(
    rx: &mut Consumer<T>,
    total: u64,
    batch: usize,
) -> std::io::Result<()> {
    let mut buf = vec![T::make(0); batch];
    let mut next = 0u64;
    let mut dog = Watchdog::new();
    while next < total {
        match rx.try_recv_into(&mut buf) {
            Ok(k) => {
                for item in &buf[..k] {
                    if item.tag() != next {
                        return Err(std::io::Error::other(format!(
                            "item {} arrived at index {next}",
                            item.tag()
                        )));
                    }
                    next += 1;
                }
                dog = Watchdog::new();
            }
            Err(TryRecvError::Empty) => dog.spin("batch consumer waiting for items")?,
            Err(e) => return Err(std::io::Error::other(format!("fastipc consumer: {e}"))),
        }
    }
    Ok(())
}

/// The fastipc queue in local mode (heap, threads), under the credit window.
pub fn local_throughput<T: Item + IpcMessage>(
    capacity: usize,
    per_producer: u64,
    place: &Placement,
) -> std::io::Result<f64> {
    let q = SlickQueue::<T>::local(capacity).map_err(std::io::Error::other)?;
    let ctl = Arc::new(Ctl::local());
    let rx = q.consumer().map_err(std::io::Error::other)?;
    let senders = (0..place.producers.len())
        .map(|_| {
            Ok(Credited {
                inner: q.producer().map_err(std::io::Error::other)?,
                credits: Credits::new(Arc::clone(&ctl), capacity),
            })
        })
        .collect::<std::io::Result<_>>()?;
    queues::run_threads(senders, rx, per_producer, place, Some(ctl))
}

/// A producer process's part of a shared-mode run: attaches to queue `name`, waits for
/// the go word, sends `n` items tagged with producer `id` as `shape` says (under the
/// credit window in `ctl` for [`Shape::Credit`] in a lossy queue).
pub fn produce_shared<T: Item + IpcMessage>(
    ctl: Arc<Ctl>,
    name: &str,
    id: u64,
    n: u64,
    shape: Shape,
    ready: impl FnOnce(),
) -> std::io::Result<()> {
    let q = SlickQueue::<T>::open(name).map_err(std::io::Error::other)?;
    let capacity = q.capacity();
    if q.is_single_producer() {
        // The single-producer row: raw sends only (a queue declared single-producer
        // refuses `producer()`).
        let mut tx = q.single_producer().map_err(std::io::Error::other)?;
        ready();
        queues::wait_go(&ctl)?;
        return match shape {
            Shape::Raw => queues::produce_timed(&mut tx, id, n, &ctl),
            s => Err(std::io::Error::other(format!(
                "a single-producer queue is only measured raw, not {s:?}"
            ))),
        };
    }
    let mut tx = q.producer().map_err(std::io::Error::other)?;
    ready();
    queues::wait_go(&ctl)?;
    match shape {
        Shape::Batch(b) => return produce_batches(&tx, id, n, b),
        Shape::Raw => return queues::produce_timed(&mut tx, id, n, &ctl),
        Shape::Credit => {}
    }
    if q.mode() == Mode::Lossless {
        // The queue itself holds the producer back: no credit window.
        return queues::produce(&mut tx, id, n);
    }
    let mut tx = Credited {
        inner: tx,
        credits: Credits::new(Arc::clone(&ctl), capacity),
    };
    queues::produce(&mut tx, id, n)
}

/// One side of a ping-pong over two queues: `rx` receives with `wait`, `tx` sends.
pub struct PingPong<T> {
    tx: Producer<T>,
    rx: Consumer<T>,
    /// `None`: spin on `try_recv`; else block in `recv_timeout` with this strategy.
    wait: Option<WaitStrategy>,
    _queues: (SlickQueue<T>, SlickQueue<T>),
}

impl<T: Item + IpcMessage> PingPong<T> {
    /// Opens or creates `<base>-ping` and `<base>-pong`; the ping side sends on the first,
    /// the pong side on the second. Consumers start at the current head. With `wait`
    /// `None` the receiving side spins on `try_recv` (a busy-polling user); otherwise it
    /// blocks in `recv_timeout` with that strategy.
    pub fn new(
        base: &str,
        ping_side: bool,
        capacity: usize,
        wait: Option<WaitStrategy>,
    ) -> std::io::Result<PingPong<T>> {
        let open = |suffix: &str| {
            SlickQueue::<T>::open_or_create(&format!("{base}-{suffix}"), capacity)
                .map_err(std::io::Error::other)
        };
        let (ping, pong) = (open("ping")?, open("pong")?);
        let (out, inn) = if ping_side {
            (&ping, &pong)
        } else {
            (&pong, &ping)
        };
        let (tx, rx) = (
            out.producer().map_err(std::io::Error::other)?,
            inn.consumer()
                .map_err(std::io::Error::other)?
                .with_wait_strategy(wait.unwrap_or_default()),
        );
        Ok(PingPong {
            tx,
            rx,
            wait,
            _queues: (ping, pong),
        })
    }

    /// Removes both queues' names.
    pub fn remove(base: &str) {
        for suffix in ["ping", "pong"] {
            let _ = fastipc::queue::remove(&format!("{base}-{suffix}"));
        }
    }

    #[inline]
    fn recv(&mut self, deadline: fastipc::Deadline) -> std::io::Result<T> {
        if self.wait.is_some() {
            return self
                .rx
                .recv_deadline(deadline)
                .map_err(|e| std::io::Error::other(format!("fastipc ping-pong: {e}")));
        }
        let mut dog = crate::floors::Watchdog::new();
        loop {
            if let Some(v) = Receiver::try_recv(&mut self.rx)? {
                return Ok(v);
            }
            dog.spin("fastipc ping-pong")?;
        }
    }

    /// Ping: `warmup` untimed then `n` timed round trips; round trips in ticks.
    pub fn ping(&mut self, warmup: usize, n: usize) -> std::io::Result<Vec<u64>> {
        // One deadline for the whole run, as the floors have (no clock read per message).
        let deadline = fastipc::Deadline::after(crate::floors::STALL);
        let mut rtts = Vec::with_capacity(n);
        for i in 0..(warmup + n) as u64 {
            let t0 = crate::clock::now();
            self.tx.send(&T::make(i)).map_err(std::io::Error::other)?;
            let v = self.recv(deadline)?;
            let t1 = crate::clock::now();
            if v.tag() != i {
                return Err(std::io::Error::other(format!(
                    "fastipc ping-pong: reply {} to {i}",
                    v.tag()
                )));
            }
            if i as usize >= warmup {
                rtts.push(t1 - t0);
            }
        }
        Ok(rtts)
    }

    /// Pong: echoes `rounds` messages.
    pub fn pong(&mut self, rounds: usize) -> std::io::Result<()> {
        let deadline = fastipc::Deadline::after(crate::floors::STALL);
        for _ in 0..rounds {
            let v = self.recv(deadline)?;
            self.tx.send(&v).map_err(std::io::Error::other)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::queues::consume_lossy;

    #[test]
    fn shapes_read_back() {
        for s in [Shape::Credit, Shape::Raw, Shape::Batch(16), Shape::Batch(1)] {
            assert_eq!(Shape::parse(&s.arg()).unwrap(), s);
        }
        for bad in ["", "batch", "batch0", "batchx", "lossy"] {
            assert!(Shape::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn batches_arrive_whole_and_in_order() {
        let q = SlickQueue::<[u64; 1]>::local(1024).unwrap();
        let mut rx = q.consumer().unwrap();
        let tx = q.producer().unwrap();
        // 100 = 6 batches of 16 and one of 4.
        produce_batches(&tx, 0, 100, 16).unwrap();
        consume_batches(&mut rx, 100, 16).unwrap();
        assert_eq!(rx.try_recv(), Err(TryRecvError::Empty));
        // A producer other than 0 is not what the consumer expects.
        produce_batches(&tx, 1, 3, 16).unwrap();
        assert!(consume_batches(&mut rx, 3, 16).is_err());
    }

    #[test]
    fn raw_fastipc_counts_its_lags() {
        let q = SlickQueue::<[u64; 1]>::local(16).unwrap();
        let mut rx = q.consumer().unwrap();
        let mut tx = q.producer().unwrap();
        queues::produce(&mut tx, 0, 40).unwrap();
        let d = consume_lossy(&mut rx, 40, false).unwrap();
        assert_eq!(d.delivered + d.lost, 40);
        assert!(d.lost >= 24 && d.stale == 0, "{d:?}");
    }
}
