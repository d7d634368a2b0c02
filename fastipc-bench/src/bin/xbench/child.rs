//! The child roles: `xbench child ROLE ARGS...`. Each pins itself, attaches, sets the
//! control block's ready word, and plays its part.

use std::os::unix::net::UnixStream;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use fastipc::queue::WaitStrategy;

use fastipc::Scope;
use fastipc_bench::affinity::pin_to;
use fastipc_bench::asyncq::{self, AsyncPingPong};
use fastipc_bench::fastq::{self, PingPong, Shape};
use fastipc_bench::floors;
use fastipc_bench::iox;
use fastipc_bench::layout_floor::{self, FloorPingPong};
use fastipc_bench::locks::{self, FastMutex};
use fastipc_bench::shared::{Ctl, Slot};

fn arg<T: std::str::FromStr>(args: &[String], i: usize) -> std::io::Result<T> {
    args.get(i)
        .and_then(|a| a.parse().ok())
        .ok_or_else(|| std::io::Error::other(format!("child: argument {i} missing or malformed")))
}

/// Counts this child in the ready word (several children may share one control block).
fn ready(ctl: &Ctl) {
    ctl.u64(Slot::Ready).fetch_add(1, Ordering::AcqRel);
}

/// `args[0]` is the role; the rest its arguments (`CTL CPU ROUNDS ...`).
pub(crate) fn main(args: &[String]) -> std::io::Result<()> {
    let role = args.first().map(String::as_str).unwrap_or("");
    if role == "quiet-ops" {
        // WHAT N: N sends on a shared queue with an idle (not sleeping) consumer, or N
        // uncontended lock+unlock of a mutex in a shared segment. Run under strace.
        let (what, n): (String, u64) = (arg(args, 1)?, arg(args, 2)?);
        return quiet_ops(&what, n);
    }
    if role == "async-idle" {
        // FUTURES SPAN_MS POLL_MS PRODUCERS: pending receives with no traffic, with an
        // idle fastipc producer on each queue when PRODUCERS is 1; prints
        // "CPU_MS WALL_MS THREADS PENDING".
        let (futures, span, poll, producers): (usize, u64, u64, u8) =
            (arg(args, 1)?, arg(args, 2)?, arg(args, 3)?, arg(args, 4)?);
        let cost = asyncq::idle(
            futures,
            std::time::Duration::from_millis(span),
            std::time::Duration::from_millis(poll),
            producers != 0,
        )?;
        println!(
            "{} {} {} {}",
            cost.cpu.as_millis(),
            cost.wall.as_millis(),
            cost.threads,
            cost.pending
        );
        return Ok(());
    }
    let name: String = arg(args, 1)?;
    let cpu: usize = arg(args, 2)?;
    let rounds: usize = arg(args, 3)?;
    pin_to(cpu)?;
    match role {
        "spin-pong" => {
            let ctl = Ctl::open(&name)?;
            ready(&ctl);
            floors::spin_pong(ctl.u64(Slot::A), rounds)
        }
        "futex-pong" => {
            let ctl = Ctl::open(&name)?;
            ready(&ctl);
            floors::futex_pong(ctl.u32(Slot::A), Scope::Shared, rounds)
        }
        "socket-pong" => {
            let mut sock = UnixStream::connect(&name)?;
            floors::socket_pong(&mut sock, rounds)
        }
        "iox-pong" => {
            let ctl = Ctl::open(&name)?;
            let base: String = arg(args, 4)?;
            iox::pong(&base, rounds, || ready(&ctl))
                .map_err(|e| std::io::Error::other(e.to_string()))
        }
        "mutex-contend" => {
            let ctl = Ctl::open(&name)?;
            let lock = FastMutex::attach(ctl.payload());
            ready(&ctl);
            locks::contend_once(&lock, ctl.u64(Slot::Go), rounds as u64)?;
            ctl.u64(Slot::Done).store(1, Ordering::Release);
            Ok(())
        }
        "queue-produce" => {
            // CTL CPU N QUEUE SIZE ID SHAPE
            let ctl = Arc::new(Ctl::open(&name)?);
            let (queue, size, id): (String, usize, u64) =
                (arg(args, 4)?, arg(args, 5)?, arg(args, 6)?);
            let shape = Shape::parse(&arg::<String>(args, 7)?)?;
            let (r, n) = (|| ready(&ctl), rounds as u64);
            match size {
                8 => fastq::produce_shared::<[u64; 1]>(Arc::clone(&ctl), &queue, id, n, shape, r),
                64 => fastq::produce_shared::<[u64; 8]>(Arc::clone(&ctl), &queue, id, n, shape, r),
                _ => Err(no_type(size)),
            }
        }
        "floor-produce" => {
            // CTL CPU N RING CAPACITY SIZE SHAPE (credit or raw)
            let ctl = Arc::new(Ctl::open(&name)?);
            let (ring, cap, size): (String, usize, usize) =
                (arg(args, 4)?, arg(args, 5)?, arg(args, 6)?);
            let credit = match Shape::parse(&arg::<String>(args, 7)?)? {
                Shape::Credit => true,
                Shape::Raw => false,
                s => return Err(std::io::Error::other(format!("the floor has no {s:?}"))),
            };
            let (r, n) = (|| ready(&ctl), rounds as u64);
            match size {
                8 => layout_floor::produce_shared::<[u64; 1]>(
                    Arc::clone(&ctl),
                    &ring,
                    cap,
                    n,
                    credit,
                    r,
                ),
                64 => layout_floor::produce_shared::<[u64; 8]>(
                    Arc::clone(&ctl),
                    &ring,
                    cap,
                    n,
                    credit,
                    r,
                ),
                _ => Err(no_type(size)),
            }
        }
        "floor-pong" => {
            // CTL CPU ROUNDS BASE
            let ctl = Ctl::open(&name)?;
            let base: String = arg(args, 4)?;
            let mut pp = FloorPingPong::new(&base, false, PINGPONG_CAPACITY)?;
            ready(&ctl);
            pp.pong(rounds)
        }
        "queue-pong" => {
            // CTL CPU ROUNDS BASE MODE
            let ctl = Ctl::open(&name)?;
            let (base, mode): (String, String) = (arg(args, 4)?, arg(args, 5)?);
            let mut pp =
                PingPong::<[u64; 1]>::new(&base, false, PINGPONG_CAPACITY, wait_mode(&mode)?)?;
            ready(&ctl);
            pp.pong(rounds)
        }
        "async-pong" => {
            // CTL CPU ROUNDS BASE
            let ctl = Ctl::open(&name)?;
            let base: String = arg(args, 4)?;
            let mut pp = AsyncPingPong::<[u64; 1]>::new(&base, false, PINGPONG_CAPACITY)?;
            ready(&ctl);
            pp.pong(rounds)
        }
        other => Err(std::io::Error::other(format!(
            "unknown child role `{other}`"
        ))),
    }
}

fn no_type(size: usize) -> std::io::Error {
    std::io::Error::other(format!("no {size}-byte message type"))
}

/// The capacity of the two ping-pong queues.
pub(crate) const PINGPONG_CAPACITY: usize = 1024;

/// How a ping-pong side receives: `spin` (busy `try_recv`), `sleep` (`recv()` that sleeps
/// at once: no spinning, no yielding) or `default` (`recv()` with the default strategy).
pub(crate) fn wait_mode(mode: &str) -> std::io::Result<Option<WaitStrategy>> {
    match mode {
        "spin" => Ok(None),
        "sleep" => Ok(Some(WaitStrategy::default().spins(0).yields(0))),
        "default" => Ok(Some(WaitStrategy::default())),
        _ => Err(std::io::Error::other(format!("unknown wait mode `{mode}`"))),
    }
}

/// `quiet-ops`: the operations that must make no syscall when nobody sleeps.
fn quiet_ops(what: &str, n: u64) -> std::io::Result<()> {
    let ctl = Ctl::create("quiet")?;
    match what {
        "send" => {
            let name = format!("{}-q", ctl.name().unwrap_or("xbench"));
            let q = fastipc::SlickQueue::<[u64; 1]>::create(&name, 1024)
                .map_err(std::io::Error::other)?;
            let rx = q.consumer().map_err(std::io::Error::other)?;
            let tx = q.producer().map_err(std::io::Error::other)?;
            for i in 0..n {
                tx.send(&[i]).map_err(std::io::Error::other)?;
            }
            drop(rx);
            let _ = fastipc::queue::remove(&name);
            Ok(())
        }
        "send-after-async" => {
            // One async receive, woken by the first send (which clears the waiters flag);
            // then sends with no receive pending.
            let name = format!("{}-q", ctl.name().unwrap_or("xbench"));
            let q = fastipc::SlickQueue::<[u64; 1]>::create(&name, 1024)
                .map_err(std::io::Error::other)?;
            let mut rx = q.consumer().map_err(std::io::Error::other)?;
            let tx = q.producer().map_err(std::io::Error::other)?;
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_time()
                .build()?;
            let got = std::thread::scope(|s| {
                s.spawn(|| {
                    std::thread::sleep(std::time::Duration::from_millis(10));
                    tx.send(&[u64::MAX])
                });
                rt.block_on(async {
                    tokio::time::timeout(fastipc_bench::floors::STALL, rx.recv_async()).await
                })
            });
            if got != Ok(Ok([u64::MAX])) {
                return Err(std::io::Error::other("the async receive failed"));
            }
            // Markers for the strace of `cases::syscalls`: a failed open of each path.
            let _ = std::fs::File::open(crate::cases::SENDS_BEGIN);
            for i in 0..n {
                tx.send(&[i]).map_err(std::io::Error::other)?;
            }
            let _ = std::fs::File::open(crate::cases::SENDS_END);
            drop(rx);
            let _ = fastipc::queue::remove(&name);
            Ok(())
        }
        "lock" => {
            let lock = FastMutex::init(ctl.payload());
            for _ in 0..n {
                locks::BenchLock::with(&lock, |c| *c += 1);
            }
            if locks::BenchLock::get(&lock) != n {
                return Err(std::io::Error::other("lost increments"));
            }
            Ok(())
        }
        _ => Err(std::io::Error::other(format!("unknown quiet op `{what}`"))),
    }
}
