//! Test peer for the queue's multi-process tests: produces, consumes (broadcast) or
//! steals (shared cursor) `u64` messages on a named queue and reports on stdout.
//!
//! Message values are `producer_id << 40 | sequence`.
//!
//! ```text
//! peer-queue produce NAME PRODUCER_ID COUNT        send COUNT messages, then print "sent COUNT"
//! peer-queue consume NAME PRODUCERS COUNT [BURST PAUSE_US]
//!                                                  read every producer's COUNT messages from the
//!                                                  oldest, check per-producer order, print "ok TOTAL";
//!                                                  with BURST and PAUSE_US, pause PAUSE_US before
//!                                                  every BURST messages (so that a lossless queue
//!                                                  fills and its producers wait)
//! peer-queue consume-batch NAME PRODUCERS COUNT BUF
//!                                                  as `consume`, receiving with `recv_into` into a
//!                                                  buffer of BUF messages; print "ok TOTAL"
//! peer-queue steal NAME CURSOR TOTAL               claim messages through the shared cursor segment
//!                                                  CURSOR until it reaches TOTAL; print one value a line
//! peer-queue echo NAME OUT COUNT DELAY_US          read COUNT messages of NAME from the oldest and
//!                                                  send each back on queue OUT DELAY_US later
//!                                                  (blocking calls); print "echoed COUNT"
//! peer-queue recv NAME TIMEOUT_MS                  block for one message from now; print it
//! peer-queue pace NAME PRODUCER_ID COUNT BURST PAUSE_US
//!                                                  send COUNT messages in bursts of BURST with a
//!                                                  PAUSE_US pause before each burst (so that a
//!                                                  consumer keeping up waits and is woken); print
//!                                                  "sent COUNT"
//! ```
//! Every wait is bounded; failures exit with status 1 and a message on stderr.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use fastipc::SlickQueue;
use fastipc::queue::{RecvTimeoutError, SharedCursor, TryRecvError};
use fastipc_testkit::peer::{self, InOrder, Result, arg, num, tag};

const DEADLINE: Duration = Duration::from_secs(60);

fn main() -> ExitCode {
    peer::main("peer-queue", run)
}

fn run(args: &[&str]) -> Result<()> {
    let cmd = arg(args, 0, "command")?;
    let q = SlickQueue::<u64>::open(arg(args, 1, "queue name")?)?;
    match cmd {
        "produce" => {
            let (id, count) = (num(args, 2)?, num(args, 3)?);
            let tx = q.producer()?;
            for seq in 0..count {
                tx.send(&tag(id, seq))?;
                if seq % 256 == 255 {
                    std::thread::yield_now();
                }
            }
            println!("sent {count}");
        }
        "pace" => {
            let (id, count) = (num(args, 2)?, num(args, 3)?);
            let (burst, pause) = (num::<u64>(args, 4)?.max(1), num(args, 5)?);
            let tx = q.producer()?;
            for seq in 0..count {
                if seq % burst == 0 {
                    std::thread::sleep(Duration::from_micros(pause));
                }
                tx.send(&tag(id, seq))?;
            }
            println!("sent {count}");
        }
        "consume" => {
            let (producers, count) = (num::<usize>(args, 2)?, num::<u64>(args, 3)?);
            let pace = match args.len() {
                4 => None,
                _ => Some((num::<u64>(args, 4)?.max(1), num::<u64>(args, 5)?)),
            };
            let mut rx = q.consumer_from_oldest()?;
            let mut order = InOrder::new(producers);
            let total = producers as u64 * count;
            let deadline = Instant::now() + DEADLINE;
            for i in 0..total {
                if let Some((burst, pause)) = pace
                    && i % burst == 0
                {
                    std::thread::sleep(Duration::from_micros(pause));
                }
                let left = deadline.saturating_duration_since(Instant::now());
                let v = rx
                    .recv_timeout(left)
                    .map_err(|e| format!("after {:?}: {e}", order.next()))?;
                order.check(v)?;
            }
            match rx.try_recv() {
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => {}
                other => return Err(format!("extra message after the last: {other:?}").into()),
            }
            println!("ok {total}");
        }
        "consume-batch" => {
            let (producers, count) = (num::<usize>(args, 2)?, num::<u64>(args, 3)?);
            let mut buf = vec![0u64; num::<usize>(args, 4)?.max(1)];
            let mut rx = q.consumer_from_oldest()?;
            let mut order = InOrder::new(producers);
            let total = producers as u64 * count;
            let deadline = Instant::now() + DEADLINE;
            let mut got = 0;
            while got < total {
                let left = (total - got).min(buf.len() as u64) as usize;
                let n = rx
                    .recv_into_deadline(&mut buf[..left], deadline)
                    .map_err(|e| format!("after {:?}: {e}", order.next()))?;
                for &v in &buf[..n] {
                    order.check(v)?;
                }
                got += n as u64;
            }
            match rx.try_recv_into(&mut buf) {
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => {}
                other => return Err(format!("extra messages after the last: {other:?}").into()),
            }
            println!("ok {total}");
        }
        "steal" => {
            let cursor = SharedCursor::open(arg(args, 2, "cursor name")?)?;
            let total = num(args, 3)?;
            let mut rx = q.shared_consumer(cursor.clone())?;
            let deadline = Instant::now() + DEADLINE;
            let mut out = String::new();
            loop {
                match rx.recv_timeout(Duration::from_millis(20)) {
                    Ok(v) => out.push_str(&format!("{v}\n")),
                    Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected)
                        if cursor.load() >= total =>
                    {
                        break;
                    }
                    Err(RecvTimeoutError::Timeout) => {}
                    Err(e) => return Err(e.into()),
                }
                if Instant::now() > deadline {
                    return Err(format!("cursor at {} of {total}", cursor.load()).into());
                }
            }
            print!("{out}");
        }
        "echo" => {
            let out = arg(args, 2, "output queue")?;
            let (count, delay) = (num::<u64>(args, 3)?, Duration::from_micros(num(args, 4)?));
            let mut rx = q.consumer_from_oldest()?;
            let tx = SlickQueue::<u64>::open(out)?.producer()?;
            let deadline = Instant::now() + DEADLINE;
            for i in 0..count {
                let left = deadline.saturating_duration_since(Instant::now());
                let v = rx.recv_timeout(left).map_err(|e| format!("at {i}: {e}"))?;
                std::thread::sleep(delay);
                tx.send(&v)?;
            }
            println!("echoed {count}");
        }
        "recv" => {
            let timeout = Duration::from_millis(num(args, 2)?);
            let mut rx = q.consumer()?;
            println!("waiting");
            let v = rx.recv_timeout(timeout)?;
            println!("got {v}");
        }
        other => return Err(format!("unknown command {other:?}").into()),
    }
    Ok(())
}
