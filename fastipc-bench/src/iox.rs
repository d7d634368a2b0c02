//! The iceoryx2 comparator: publish/subscribe ping-pong between two processes over two
//! services (`<base>/ping`, `<base>/pong`), 8-byte `u64` payloads, busy polling (no
//! listener, no waitset), `send_copy` as a user would for small messages.

use std::time::{Duration, Instant};

use iceoryx2::prelude::*;

use crate::clock;
use crate::floors::{STALL, Watchdog};

type Error = Box<dyn std::error::Error>;

/// One side's ports.
struct Ports {
    _node: Node<ipc::Service>,
    tx: iceoryx2::port::publisher::Publisher<ipc::Service, u64, ()>,
    rx: iceoryx2::port::subscriber::Subscriber<ipc::Service, u64, ()>,
}

fn ports(base: &str, send_on: &str, recv_on: &str) -> Result<Ports, Error> {
    set_log_level(LogLevel::Error);
    let node = NodeBuilder::new().create::<ipc::Service>()?;
    let service = |suffix: &str| -> Result<_, Error> {
        let name: ServiceName = format!("{base}/{suffix}").as_str().try_into()?;
        Ok(node
            .service_builder(&name)
            .publish_subscribe::<u64>()
            .max_publishers(1)
            .max_subscribers(1)
            .history_size(0)
            .subscriber_max_buffer_size(2)
            .open_or_create()?)
    };
    let (out, inn) = (service(send_on)?, service(recv_on)?);
    let tx = out.publisher_builder().create()?;
    let rx = inn.subscriber_builder().create()?;
    Ok(Ports {
        _node: node,
        tx,
        rx,
    })
}

impl Ports {
    /// Sends `v`, repeating (for the first message only) until a subscriber is connected.
    fn send_connected(&self, v: u64) -> Result<(), Error> {
        let start = Instant::now();
        while self.tx.send_copy(v)? == 0 {
            if start.elapsed() > STALL {
                return Err("iceoryx2: the peer's subscriber never connected".into());
            }
            std::thread::sleep(Duration::from_millis(1));
        }
        Ok(())
    }

    /// Busy-polls until a sample arrives; returns its value.
    #[inline]
    fn recv_spin(&self) -> Result<u64, Error> {
        let mut dog = Watchdog::new();
        loop {
            if let Some(s) = self.rx.receive()? {
                return Ok(*s);
            }
            dog.spin("iceoryx2 receive")?;
        }
    }
}

/// The ping process's side, prepared before the pong process starts (so its subscriber
/// exists when the pong side connects).
pub struct Pinger(Ports);

impl Pinger {
    /// Creates the services and this side's ports.
    pub fn new(base: &str) -> Result<Pinger, Error> {
        Ok(Pinger(ports(base, "ping", "pong")?))
    }

    /// `warmup` untimed then `n` timed round trips; round trips in clock ticks.
    pub fn run(&self, warmup: usize, n: usize) -> Result<Vec<u64>, Error> {
        let p = &self.0;
        // The first exchange waits for both directions to be connected.
        p.send_connected(0)?;
        if p.recv_spin()? != 0 {
            return Err("iceoryx2: unexpected first reply".into());
        }
        let mut rtts = Vec::with_capacity(n);
        for i in 1..=(warmup + n) as u64 {
            let t0 = clock::now();
            p.tx.send_copy(i)?;
            let v = p.recv_spin()?;
            let t1 = clock::now();
            if v != i {
                return Err(format!("iceoryx2: reply {v} to ping {i}").into());
            }
            if i as usize > warmup {
                rtts.push(t1 - t0);
            }
        }
        Ok(rtts)
    }
}

/// The pong process: answers the first (connection) ping and `rounds` more.
pub fn pong(base: &str, rounds: usize, ready: impl FnOnce()) -> Result<(), Error> {
    let p = ports(base, "pong", "ping")?;
    ready();
    let first = p.recv_spin()?;
    p.send_connected(first)?;
    for _ in 0..rounds {
        let v = p.recv_spin()?;
        p.tx.send_copy(v)?;
    }
    Ok(())
}
