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
//! peer-endpoints single-hold NAME                   take the single producer of the existing queue,
//!                                                   reserve a slot, print "holding INDEX", never commit
//! peer-endpoints single-try NAME                    try to take the single producer of the existing
//!                                                   queue: print "took", or "refused PID" (in use)
//! peer-endpoints single-produce NAME CAP COUNT      the single producer of the lossless
//!                                                   single-producer queue: send 0..COUNT in order
//!                                                   through every claim path, print "sent COUNT"
//! ```
//! Every wait is bounded; failures exit with status 1 and a message on stderr.

use std::process::ExitCode;
use std::time::Duration;

use fastipc::SlickQueue;
use fastipc::queue::{Mode, OpenError, QueueOptions, RecvTimeoutError, SharedCursor};
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
        "single-hold" => {
            let q = SlickQueue::<u64>::open(arg(args, 1, "queue name")?)?;
            let tx = q.single_producer()?;
            let mut slot = tx.reserve()?;
            slot.write(0xDEAD);
            say(&format!("holding {}", slot.index()));
            std::thread::sleep(Duration::from_secs(600));
        }
        "single-try" => {
            let q = SlickQueue::<u64>::open(arg(args, 1, "queue name")?)?;
            match q.single_producer() {
                Ok(_) => say("took"),
                Err(OpenError::SingleProducerInUse { pid, .. }) => say(&format!("refused {pid}")),
                Err(e) => return Err(e.into()),
            }
        }
        "single-produce" => {
            let (name, capacity, count) =
                (arg(args, 1, "queue name")?, num(args, 2)?, num(args, 3)?);
            let options = QueueOptions::from(Mode::Lossless).single_producer();
            let q = SlickQueue::<u64>::open_or_create_with(name, capacity, options)?;
            let tx = q.single_producer()?;
            single_produce(&tx, count)?;
            say(&format!("sent {count}"));
        }
        other => return Err(format!("unknown command {other:?}").into()),
    }
    Ok(())
}

/// Sends `0..count` in order through every claim path of a single producer, in turn:
/// `send`, `send_timeout`, `try_send` (again while full), `send_batch`, a slot guard,
/// `reserve_with`, a batch guard, and an async send (polled on this thread).
fn single_produce(tx: &fastipc::queue::SingleProducer<u64>, count: u64) -> Result<()> {
    let mut seq = 0;
    let mut round = 0u64;
    while seq < count {
        let left = count - seq;
        match round % 8 {
            0 => drop(tx.send(&seq)?),
            1 => drop(tx.send_timeout(&seq, PATIENCE).map_err(|e| e.to_string())?),
            2 => loop {
                match tx.try_send(&seq) {
                    Ok(_) => break,
                    Err(fastipc::queue::TrySendError::Full(_)) => std::thread::yield_now(),
                    Err(e) => return Err(e.to_string().into()),
                }
            },
            3 => {
                let k = left.min(5);
                let batch: Vec<u64> = (seq..seq + k).collect();
                tx.send_batch(&batch)?;
                seq += k - 1;
            }
            4 => {
                let mut slot = tx.reserve()?;
                slot.write(seq);
                slot.commit()?;
            }
            5 => drop(tx.reserve_with(|_, m| *m = seq)?),
            6 => {
                let k = left.min(3);
                let mut batch = tx.reserve_batch(k as usize)?;
                let msgs: Vec<u64> = (seq..seq + k).collect();
                batch.write(&msgs)?;
                batch.commit()?;
                seq += k - 1;
            }
            _ => drop(block_on(tx.send_async(&seq))?),
        }
        seq += 1;
        round += 1;
    }
    Ok(())
}

/// Polls `f` on this thread until it is ready (a yield between polls).
fn block_on<F: std::future::Future>(f: F) -> F::Output {
    let waker = std::task::Waker::noop();
    let mut cx = std::task::Context::from_waker(waker);
    let mut f = std::pin::pin!(f);
    loop {
        if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
        std::thread::yield_now();
    }
}
