//! The floor in the harness: a producer process's part of a throughput run, and a
//! spinning ping-pong over two rings.

use std::sync::Arc;

use super::{FloorConsumer, FloorProducer, FloorRing};
use crate::queues::{self, Credited, Credits, Got, Item};
use crate::shared::Ctl;

/// A producer process's part of a cross-process floor run: attaches to ring `name`
/// (`capacity` elements of `T`), calls `ready`, waits for the go word of `ctl`, then
/// sends `n` items (producer id 0), under the credit window of `ctl` when `credit`.
pub fn produce_shared<T: Item>(
    ctl: Arc<Ctl>,
    name: &str,
    capacity: usize,
    n: u64,
    credit: bool,
    ready: impl FnOnce(),
) -> std::io::Result<()> {
    let ring = Arc::new(FloorRing::open(name, capacity, size_of::<T>())?);
    let tx = FloorProducer::<T>::new(ring)?;
    ready();
    queues::wait_go(&ctl)?;
    if credit {
        let mut tx = Credited {
            inner: tx,
            credits: Credits::new(ctl, capacity),
        };
        queues::produce(&mut tx, 0, n)
    } else {
        let mut tx = tx;
        queues::produce_timed(&mut tx, 0, n, &ctl)
    }
}

/// The names of the two rings of a ping-pong over the floor.
fn pingpong_names(base: &str) -> [String; 2] {
    [format!("{base}-ping"), format!("{base}-pong")]
}

/// One side of a spinning ping-pong over two floor rings of 8-byte messages.
#[derive(Debug)]
pub struct FloorPingPong {
    tx: FloorProducer<[u64; 1]>,
    rx: FloorConsumer<[u64; 1]>,
}

impl FloorPingPong {
    /// The ping side creates `<base>-ping` and `<base>-pong` (unlinked when it drops);
    /// the pong side opens them.
    pub fn new(base: &str, ping_side: bool, capacity: usize) -> std::io::Result<FloorPingPong> {
        let [ping, pong] = pingpong_names(base);
        let get = |n: &str| -> std::io::Result<Arc<FloorRing>> {
            Ok(Arc::new(if ping_side {
                FloorRing::create(n, capacity, 8)?
            } else {
                FloorRing::open(n, capacity, 8)?
            }))
        };
        let (ping, pong) = (get(&ping)?, get(&pong)?);
        let (out, inn) = if ping_side {
            (ping, pong)
        } else {
            (pong, ping)
        };
        Ok(FloorPingPong {
            tx: FloorProducer::new(out)?,
            rx: FloorConsumer::new(inn)?,
        })
    }

    #[inline]
    fn recv(&mut self) -> std::io::Result<u64> {
        let mut dog = crate::floors::Watchdog::new();
        loop {
            match self.rx.poll()? {
                Got::Item(v) => return Ok(v[0]),
                Got::Empty => dog.spin("layout floor ping-pong")?,
                Got::Lagged(n) => {
                    return Err(std::io::Error::other(format!(
                        "layout floor ping-pong: lost {n}"
                    )));
                }
            }
        }
    }

    /// Ping: `warmup` untimed then `n` timed round trips; round trips in ticks.
    pub fn ping(&mut self, warmup: usize, n: usize) -> std::io::Result<Vec<u64>> {
        let mut rtts = Vec::with_capacity(n);
        for i in 0..(warmup + n) as u64 {
            let t0 = crate::clock::now();
            self.tx.push(&[i]);
            let v = self.recv()?;
            let t1 = crate::clock::now();
            if v != i {
                return Err(std::io::Error::other(format!(
                    "layout floor ping-pong: reply {v} to {i}"
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
        for _ in 0..rounds {
            let v = self.recv()?;
            self.tx.push(&[v]);
        }
        Ok(())
    }
}
