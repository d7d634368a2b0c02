//! Test peer for the endpoint table's multi-process tests (lossless back-pressure,
//! dead producers, disconnect): `u64` messages `producer_id << 40 | sequence` on a named
//! queue, results on stdout.
//!
//! ```text
//! peer-endpoints produce NAME CAP ID COUNT          lossless producer: send COUNT, print "sent COUNT"
//! peer-endpoints consume NAME CAP PRODUCERS COUNT SLEEP_EVERY
//!                                                   lossless consumer: print "ready", receive every
//!                                                   message in per-producer order, sleeping 1 ms every
//!                                                   SLEEP_EVERY messages; print "ok TOTAL"
//! peer-endpoints steal NAME CAP CURSOR              lossless shared consumer (cursor segment CURSOR,
//!                                                   created at 0): print "ready", then one value a line
//!                                                   until disconnected, then "end"
//! peer-endpoints stall NAME CAP                     lossless consumer that registers, prints "ready"
//!                                                   and never reads (until killed)
//! peer-endpoints durable NAME KEY READ             take the durable consumer KEY of the existing
//!                                                   queue, read READ messages (publishing the
//!                                                   position), print "read POSITION", then stall
//! peer-endpoints hold-guard NAME                    reserve a slot, print "holding INDEX", never commit
//! peer-endpoints send-loop NAME ID                  print "started", send forever (until killed)
//! ```
//! Every wait is bounded; failures exit with status 1 and a message on stderr.

use std::process::ExitCode;
use std::time::Duration;

use fastipc::SlickQueue;
use fastipc::queue::{Mode, RecvTimeoutError, SharedCursor};
use fastipc_testkit::peer::{self, InOrder, Result, arg, num, say, tag};

const PATIENCE: Duration = Duration::from_secs(60);

fn main() -> ExitCode {
    peer::main("peer-endpoints", run)
}

/// Opens (or creates) the lossless queue of the name and capacity in `args[1..3]`.
fn lossless(args: &[&str]) -> Result<SlickQueue<u64>> {
    let (name, capacity) = (arg(args, 1, "queue name")?, num(args, 2)?);
    Ok(SlickQueue::<u64>::open_or_create_with(
        name,
        capacity,
        Mode::Lossless,
    )?)
}

fn run(args: &[&str]) -> Result<()> {
    match arg(args, 0, "command")? {
        "produce" => {
            let (id, count) = (num(args, 3)?, num(args, 4)?);
            let tx = lossless(args)?.producer()?;
            for seq in 0..count {
                tx.send_timeout(&tag(id, seq), PATIENCE)
                    .map_err(|x| format!("message {seq}: {x}"))?;
            }
            say(&format!("sent {count}"));
        }
        "consume" => {
            let (producers, count, every) = (
                num::<usize>(args, 3)?,
                num::<u64>(args, 4)?,
                num::<u64>(args, 5)?,
            );
            let mut rx = lossless(args)?.consumer()?;
            say("ready");
            let mut order = InOrder::new(producers);
            let total = producers as u64 * count;
            for i in 0..total {
                if every > 0 && i % every == every - 1 {
                    std::thread::sleep(Duration::from_millis(1));
                }
                let v = rx
                    .recv_timeout(PATIENCE)
                    .map_err(|x| format!("after {:?}: {x}", order.next()))?;
                order.check(v)?;
            }
            say(&format!("ok {total}"));
        }
        "steal" => {
            let q = lossless(args)?;
            let cursor = SharedCursor::open_or_create(arg(args, 3, "cursor name")?, 0)?;
            let mut rx = q.shared_consumer(cursor)?;
            say("ready");
            let mut out = String::new();
            loop {
                match rx.recv_timeout(PATIENCE) {
                    Ok(v) => out.push_str(&format!("{v}\n")),
                    Err(RecvTimeoutError::Disconnected) => break,
                    Err(x) => return Err(x.into()),
                }
            }
            print!("{out}");
            say("end");
        }
        "stall" => {
            let _rx = lossless(args)?.consumer()?;
            say("ready");
            std::thread::sleep(Duration::from_secs(600));
        }
        "durable" => {
            let name = arg(args, 1, "queue name")?;
            let key = num(args, 2)?;
            let to_read = num(args, 3)?;
            let ring = fastipc::queue::Ring::open(name, Some(8))?;
            let mut reg = ring
                .register_durable(key, ring.start_index())?
                .ok_or("the queue has no endpoint table")?;
            let mut cursor = reg.position();
            let mut buf = Vec::new();
            let wait = fastipc::queue::WaitStrategy::default();
            for _ in 0..to_read {
                ring.read_deadline(
                    &mut cursor,
                    &mut buf,
                    &wait,
                    fastipc::Deadline::after(PATIENCE),
                )?;
                reg.publish(cursor, 0);
            }
            say(&format!("read {cursor}"));
            std::thread::sleep(Duration::from_secs(600));
        }
        "hold-guard" => {
            let q = SlickQueue::<u64>::open(arg(args, 1, "queue name")?)?;
            let tx = q.producer()?;
            let mut slot = tx.reserve()?;
            slot.write(0xDEAD);
            say(&format!("holding {}", slot.index()));
            std::thread::sleep(Duration::from_secs(600));
        }
        "send-loop" => {
            let id = num(args, 2)?;
            let q = SlickQueue::<u64>::open(arg(args, 1, "queue name")?)?;
            let tx = q.producer()?;
            say("started");
            for seq in 0.. {
                tx.send(&tag(id, seq))?;
            }
        }
        other => return Err(format!("unknown command {other:?}").into()),
    }
    Ok(())
}
