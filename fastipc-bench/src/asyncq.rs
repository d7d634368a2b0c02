//! Async fastipc in the benchmarks: a ping-pong whose two sides await
//! `Consumer::recv_async` on a tokio current-thread runtime, and the idle cost of pending
//! receives (CPU time of the process, waiter threads).

use std::time::{Duration, Instant};

use fastipc::queue::{Consumer, Producer, WaitStrategy};
use fastipc::{IpcMessage, SlickQueue};

use crate::queues::Item;

fn other(e: impl ToString) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

fn runtime() -> std::io::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
}

/// One side of an async ping-pong over the queues `BASE-ping` and `BASE-pong`.
pub struct AsyncPingPong<T> {
    tx: Producer<T>,
    rx: Consumer<T>,
    rt: tokio::runtime::Runtime,
    _queues: (SlickQueue<T>, SlickQueue<T>),
}

impl<T: Item + IpcMessage> AsyncPingPong<T> {
    /// Opens (or creates) both queues; `ping_side` sends on `ping` and receives on `pong`.
    pub fn new(base: &str, ping_side: bool, capacity: usize) -> std::io::Result<Self> {
        let open = |suffix: &str| {
            SlickQueue::<T>::open_or_create(&format!("{base}-{suffix}"), capacity).map_err(other)
        };
        let (ping, pong) = (open("ping")?, open("pong")?);
        let (out, inn) = if ping_side {
            (&ping, &pong)
        } else {
            (&pong, &ping)
        };
        Ok(AsyncPingPong {
            tx: out.producer().map_err(other)?,
            rx: inn.consumer().map_err(other)?,
            rt: runtime()?,
            _queues: (ping, pong),
        })
    }

    /// Ping: `warmup + n` round trips, each awaiting the reply; the last `n` round-trip
    /// times in ns.
    pub fn ping(&mut self, warmup: usize, n: usize) -> std::io::Result<Vec<u64>> {
        let (tx, rx) = (&self.tx, &mut self.rx);
        self.rt.block_on(async move {
            let mut rtts = Vec::with_capacity(n);
            for i in 0..(warmup + n) as u64 {
                let t0 = crate::clock::now();
                tx.send(&T::make(i)).map_err(other)?;
                let v = tokio::time::timeout(crate::floors::STALL, rx.recv_async())
                    .await
                    .map_err(|_| other("async ping-pong: no reply"))?
                    .map_err(other)?;
                let t1 = crate::clock::now();
                if v.tag() != i {
                    return Err(other(format!("async ping-pong: reply {} to {i}", v.tag())));
                }
                if i as usize >= warmup {
                    rtts.push(t1 - t0);
                }
            }
            Ok(rtts)
        })
    }

    /// Pong: echoes `rounds` messages, awaiting each.
    pub fn pong(&mut self, rounds: usize) -> std::io::Result<()> {
        let (tx, rx) = (&self.tx, &mut self.rx);
        self.rt.block_on(async move {
            for _ in 0..rounds {
                let v = tokio::time::timeout(crate::floors::STALL, rx.recv_async())
                    .await
                    .map_err(|_| other("async ping-pong: no ping"))?
                    .map_err(other)?;
                tx.send(&v).map_err(other)?;
            }
            Ok(())
        })
    }
}

/// What [`idle`] measured.
#[derive(Clone, Copy, Debug)]
pub struct IdleCost {
    /// CPU time of the whole process (every thread) while the receives were pending.
    pub cpu: Duration,
    /// How long they were pending.
    pub wall: Duration,
    /// Waiter threads the process started.
    pub threads: usize,
    /// Receives still pending at the end (all of them, with no traffic).
    pub pending: usize,
}

/// `futures` receives pending on as many queues, with no traffic, for `span`; the
/// consumers' strategy polls every `poll`. With `producers`, each queue has a fastipc
/// producer (registered, idle), so the receives need no re-poll but the one every
/// `ASYNC_IDLE_CHECK`; without, no producer ever registers, and they re-poll every
/// `poll` as on a queue peers may feed. Run it in a fresh process: the CPU time is the
/// process's.
pub fn idle(
    futures: usize,
    span: Duration,
    poll: Duration,
    producers: bool,
) -> std::io::Result<IdleCost> {
    let rt = runtime()?;
    let queues = (0..futures)
        .map(|_| SlickQueue::<u64>::local(16).map_err(other))
        .collect::<std::io::Result<Vec<_>>>()?;
    let _producers = if producers {
        queues
            .iter()
            .map(|q| q.producer().map_err(other))
            .collect::<std::io::Result<Vec<_>>>()?
    } else {
        Vec::new()
    };
    rt.block_on(async {
        let strategy = WaitStrategy::default().poll_interval(poll);
        let tasks: Vec<_> = queues
            .iter()
            .map(|q| {
                let mut rx = q.consumer().map_err(other)?.with_wait_strategy(strategy);
                Ok(tokio::spawn(async move { rx.recv_async().await }))
            })
            .collect::<std::io::Result<_>>()?;
        // Let every task register.
        let settle = Instant::now() + Duration::from_secs(10);
        while fastipc::waiter::stats().registrations < futures && Instant::now() < settle {
            tokio::time::sleep(Duration::from_millis(1)).await;
        }
        let cpu0 = process_cpu()?;
        let start = Instant::now();
        tokio::time::sleep(span).await;
        let wall = start.elapsed();
        let cpu = process_cpu()?.saturating_sub(cpu0);
        let pending = tasks.iter().filter(|t| !t.is_finished()).count();
        for t in tasks {
            t.abort();
        }
        Ok(IdleCost {
            cpu,
            wall,
            threads: fastipc::waiter::stats().threads,
            pending,
        })
    })
}

/// User + system CPU time of this process, every thread, from `/proc/self/stat` (in
/// `USER_HZ` = 100 ticks per second, the proc ABI's fixed unit).
fn process_cpu() -> std::io::Result<Duration> {
    let stat = std::fs::read_to_string("/proc/self/stat")?;
    // Fields after the command name (which ends at the last ')'): state is field 3,
    // utime field 14, stime field 15.
    let rest = stat
        .rsplit_once(')')
        .map(|(_, r)| r)
        .ok_or_else(|| other("unreadable /proc/self/stat"))?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let tick = |i: usize| -> std::io::Result<u64> {
        fields
            .get(i)
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| other("unreadable /proc/self/stat"))
    };
    // `rest` starts at field 3 (index 0): utime is index 11, stime index 12.
    let ticks = tick(11)? + tick(12)?;
    Ok(Duration::from_millis(ticks * 10))
}
