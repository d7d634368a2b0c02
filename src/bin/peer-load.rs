//! Test peer of the load tests (`tests/reliability_load.rs`): producers and consumers of
//! one named `SlickQueue<u64>`, each in its own process. A message is
//! `producer_id << 40 | sequence`; consumers check, per producer, that sequences only
//! grow (nothing twice, nothing out of order) and count what they got and what
//! `Lagged(n)` says they missed.
//!
//! ```text
//! peer-load produce NAME ID COUNT            send COUNT messages; print "sent COUNT"
//! peer-load broadcast NAME PRODUCERS COUNT   print "ready", receive until every message is
//!                                            received or reported lagged (or 3 s of silence);
//!                                            print "received R lagged L missing M"
//! peer-load steal NAME CURSOR TOTAL          print "ready", claim through the shared cursor
//!                                            until it reaches TOTAL; print "got N", then one
//!                                            "ID SEQ" line per message
//! ```
//! Every wait is bounded; failures exit with status 1 and a message on stderr.

use std::fmt::Write as _;
use std::process::ExitCode;
use std::time::{Duration, Instant};

use fastipc::SlickQueue;
use fastipc::queue::{RecvTimeoutError, SharedCursor};
use fastipc_testkit::peer::{self, Result, arg, num, split, tag};

/// The longest a consumer runs.
const LIMIT: Duration = Duration::from_secs(300);
/// How long a broadcast consumer waits past the last message before it counts the rest
/// as missing.
const SILENCE: Duration = Duration::from_secs(3);

fn main() -> ExitCode {
    peer::main("peer-load", run)
}

/// Checks that `seq` of `id` comes after what this consumer saw of `id`; returns how
/// many of `id`'s messages were skipped in between.
fn check(last: &mut [Option<u64>], id: usize, seq: u64) -> Result<u64> {
    let slot = last
        .get_mut(id)
        .ok_or_else(|| format!("unknown producer {id}"))?;
    let skipped = match *slot {
        Some(prev) if seq <= prev => {
            return Err(
                format!("producer {id}: got {seq} after {prev} (twice or out of order)").into(),
            );
        }
        Some(prev) => seq - prev - 1,
        None => seq,
    };
    *slot = Some(seq);
    Ok(skipped)
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
            }
            println!("sent {count}");
        }
        "broadcast" => {
            let (producers, count) = (num::<usize>(args, 2)?, num::<u64>(args, 3)?);
            let total = producers as u64 * count;
            let mut rx = q.consumer()?;
            println!("ready");
            let mut last = vec![None; producers];
            let (mut received, mut lagged, mut skipped) = (0u64, 0u64, 0u64);
            let deadline = Instant::now() + LIMIT;
            while received + lagged < total {
                if Instant::now() > deadline {
                    return Err(format!("received {received} lagged {lagged} of {total}").into());
                }
                match rx.recv_timeout(SILENCE) {
                    Ok(v) => {
                        let (id, seq) = split(v);
                        skipped += check(&mut last, id, seq)?;
                        received += 1;
                    }
                    Err(RecvTimeoutError::Lagged(n)) => lagged += n,
                    Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => break,
                    Err(e) => return Err(e.into()),
                }
            }
            // What never came from each producer after its last message seen.
            let tail: u64 = last
                .iter()
                .map(|l| l.map_or(count, |seq| count - 1 - seq))
                .sum();
            let missing = total - received;
            if skipped + tail != missing {
                return Err(format!(
                    "bookkeeping: {skipped} skipped + {tail} tail != {missing} missing"
                )
                .into());
            }
            println!("received {received} lagged {lagged} missing {missing}");
        }
        "steal" => {
            let cursor = SharedCursor::open(arg(args, 2, "cursor name")?)?;
            let total = num(args, 3)?;
            let mut rx = q.shared_consumer(cursor.clone())?;
            println!("ready");
            let deadline = Instant::now() + LIMIT;
            let mut last = vec![None; 64];
            let mut out = String::new();
            let mut got = 0u64;
            loop {
                match rx.recv_timeout(Duration::from_millis(20)) {
                    Ok(v) => {
                        let (id, seq) = split(v);
                        // Claims go in index order: per producer, a consumer's share
                        // grows (with gaps where the others claimed).
                        check(&mut last, id, seq)?;
                        got += 1;
                        let _ = writeln!(out, "{id} {seq}");
                    }
                    Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected)
                        if cursor.load() >= total =>
                    {
                        break;
                    }
                    Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => {}
                    Err(e) => return Err(e.into()),
                }
                if Instant::now() > deadline {
                    return Err(format!("cursor at {} of {total}", cursor.load()).into());
                }
            }
            print!("got {got}\n{out}");
        }
        other => return Err(format!("unknown command {other:?}").into()),
    }
    Ok(())
}
