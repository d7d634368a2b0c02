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
//! peer-endpoints hold-guard NAME                    reserve a slot, print "holding INDEX", never commit
//! peer-endpoints send-loop NAME ID                  print "started", send forever (until killed)
//! ```
//! Every wait is bounded; failures exit with status 1 and a message on stderr.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use fastipc::SlickQueue;
use fastipc::queue::{Mode, RecvTimeoutError, SharedCursor};

const SEQ_BITS: u32 = 40;
const PATIENCE: Duration = Duration::from_secs(60);

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("peer-endpoints {}: {e}", args.join(" "));
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

fn lossless(name: &str, capacity: u64) -> Result<SlickQueue<u64>, String> {
    SlickQueue::<u64>::open_or_create_with(name, capacity as usize, Mode::Lossless)
        .map_err(|e| e.to_string())
}

fn say(line: &str) {
    println!("{line}");
    let _ = std::io::stdout().flush();
}

fn run(args: &[String]) -> Result<(), String> {
    let cmd = args.first().map(String::as_str).unwrap_or("");
    let name = args.get(1).ok_or("missing queue name")?;
    let e = |e: &dyn std::fmt::Display| e.to_string();
    match cmd {
        "produce" => {
            let (cap, id, count) = (num(args, 2)?, num(args, 3)?, num(args, 4)?);
            let tx = lossless(name, cap)?.producer().map_err(|x| e(&x))?;
            for seq in 0..count {
                tx.send_timeout(&(id << SEQ_BITS | seq), PATIENCE)
                    .map_err(|x| format!("message {seq}: {x}"))?;
            }
            say(&format!("sent {count}"));
            Ok(())
        }
        "consume" => {
            let (cap, producers, count, every) =
                (num(args, 2)?, num(args, 3)?, num(args, 4)?, num(args, 5)?);
            let mut rx = lossless(name, cap)?.consumer().map_err(|x| e(&x))?;
            say("ready");
            let mut next = vec![0u64; producers as usize];
            let total = producers * count;
            for i in 0..total {
                if every > 0 && i % every == every - 1 {
                    std::thread::sleep(Duration::from_millis(1));
                }
                let v = rx
                    .recv_timeout(PATIENCE)
                    .map_err(|x| format!("after {next:?}: {x}"))?;
                let (id, seq) = ((v >> SEQ_BITS) as usize, v & ((1 << SEQ_BITS) - 1));
                let expected = next.get_mut(id).ok_or(format!("unknown producer {id}"))?;
                if seq != *expected {
                    return Err(format!("producer {id}: got {seq}, expected {expected}"));
                }
                *expected += 1;
            }
            say(&format!("ok {total}"));
            Ok(())
        }
        "steal" => {
            let cap = num(args, 2)?;
            let cursor_name = args.get(3).ok_or("missing cursor name")?;
            let q = lossless(name, cap)?;
            let cursor = SharedCursor::open_or_create(cursor_name, 0).map_err(|x| e(&x))?;
            let mut rx = q.shared_consumer(cursor).map_err(|x| e(&x))?;
            say("ready");
            let mut out = String::new();
            loop {
                match rx.recv_timeout(PATIENCE) {
                    Ok(v) => out.push_str(&format!("{v}\n")),
                    Err(RecvTimeoutError::Disconnected) => break,
                    Err(x) => return Err(x.to_string()),
                }
            }
            print!("{out}");
            say("end");
            Ok(())
        }
        "stall" => {
            let cap = num(args, 2)?;
            let _rx = lossless(name, cap)?.consumer().map_err(|x| e(&x))?;
            say("ready");
            std::thread::sleep(Duration::from_secs(600));
            Ok(())
        }
        "hold-guard" => {
            let q = SlickQueue::<u64>::open(name).map_err(|x| e(&x))?;
            let tx = q.producer().map_err(|x| e(&x))?;
            let mut slot = tx.reserve().map_err(|x| e(&x))?;
            slot.write(0xDEAD);
            say(&format!("holding {}", slot.index()));
            std::thread::sleep(Duration::from_secs(600));
            Ok(())
        }
        "send-loop" => {
            let id = num(args, 2)?;
            let q = SlickQueue::<u64>::open(name).map_err(|x| e(&x))?;
            let tx = q.producer().map_err(|x| e(&x))?;
            say("started");
            for seq in 0.. {
                tx.send(&(id << SEQ_BITS | seq)).map_err(|x| e(&x))?;
            }
            Ok(())
        }
        other => Err(format!("unknown command {other:?}")),
    }
}
