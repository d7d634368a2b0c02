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

const SEQ_BITS: u32 = 40;
const DEADLINE: Duration = Duration::from_secs(60);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("peer-queue {}: {e}", args.join(" "));
            ExitCode::FAILURE
        }
    }
}

fn num(args: &[String], i: usize) -> Result<u64, String> {
    args.get(i)
        .ok_or_else(|| format!("missing argument {i}"))?
        .parse()
        .map_err(|e| format!("argument {i}: {e}"))
}

fn open(name: &str) -> Result<SlickQueue<u64>, String> {
    SlickQueue::<u64>::open(name).map_err(|e| e.to_string())
}

fn run(args: &[String]) -> Result<(), String> {
    let cmd = args.first().map(String::as_str).unwrap_or("");
    let name = args.get(1).ok_or("missing queue name")?;
    match cmd {
        "produce" => {
            let (id, count) = (num(args, 2)?, num(args, 3)?);
            let tx = open(name)?.producer().map_err(|e| e.to_string())?;
            for seq in 0..count {
                tx.send(&(id << SEQ_BITS | seq))
                    .map_err(|e| e.to_string())?;
                if seq % 256 == 255 {
                    std::thread::yield_now();
                }
            }
            println!("sent {count}");
            Ok(())
        }
        "pace" => {
            let (id, count) = (num(args, 2)?, num(args, 3)?);
            let (burst, pause) = (num(args, 4)?.max(1), num(args, 5)?);
            let tx = open(name)?.producer().map_err(|e| e.to_string())?;
            for seq in 0..count {
                if seq % burst == 0 {
                    std::thread::sleep(Duration::from_micros(pause));
                }
                tx.send(&(id << SEQ_BITS | seq))
                    .map_err(|e| e.to_string())?;
            }
            println!("sent {count}");
            Ok(())
        }
        "consume" => {
            let (producers, count) = (num(args, 2)? as usize, num(args, 3)?);
            let pace = match args.len() {
                4 => None,
                _ => Some((num(args, 4)?.max(1), num(args, 5)?)),
            };
            let mut rx = open(name)?
                .consumer_from_oldest()
                .map_err(|e| e.to_string())?;
            let mut next = vec![0u64; producers];
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
                    .map_err(|e| format!("after {next:?}: {e}"))?;
                let (id, seq) = ((v >> SEQ_BITS) as usize, v & ((1 << SEQ_BITS) - 1));
                let expected = next.get_mut(id).ok_or(format!("unknown producer {id}"))?;
                if seq != *expected {
                    return Err(format!("producer {id}: got {seq}, expected {expected}"));
                }
                *expected += 1;
            }
            match rx.try_recv() {
                Err(TryRecvError::Empty | TryRecvError::Disconnected) => {}
                other => return Err(format!("extra message after the last: {other:?}")),
            }
            println!("ok {total}");
            Ok(())
        }
        "steal" => {
            let cursor_name = args.get(2).ok_or("missing cursor name")?;
            let total = num(args, 3)?;
            let q = open(name)?;
            let cursor = SharedCursor::open(cursor_name).map_err(|e| e.to_string())?;
            let mut rx = q
                .shared_consumer(cursor.clone())
                .map_err(|e| e.to_string())?;
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
                    Err(e) => return Err(e.to_string()),
                }
                if Instant::now() > deadline {
                    return Err(format!("cursor at {} of {total}", cursor.load()));
                }
            }
            print!("{out}");
            Ok(())
        }
        "echo" => {
            let out = args.get(2).ok_or("missing output queue")?;
            let (count, delay) = (num(args, 3)?, Duration::from_micros(num(args, 4)?));
            let mut rx = open(name)?
                .consumer_from_oldest()
                .map_err(|e| e.to_string())?;
            let tx = open(out)?.producer().map_err(|e| e.to_string())?;
            let deadline = Instant::now() + DEADLINE;
            for i in 0..count {
                let left = deadline.saturating_duration_since(Instant::now());
                let v = rx.recv_timeout(left).map_err(|e| format!("at {i}: {e}"))?;
                std::thread::sleep(delay);
                tx.send(&v).map_err(|e| e.to_string())?;
            }
            println!("echoed {count}");
            Ok(())
        }
        "recv" => {
            let timeout = Duration::from_millis(num(args, 2)?);
            let mut rx = open(name)?.consumer().map_err(|e| e.to_string())?;
            println!("waiting");
            let v = rx.recv_timeout(timeout).map_err(|e| e.to_string())?;
            println!("got {v}");
            Ok(())
        }
        other => Err(format!("unknown command {other:?}")),
    }
}
