//! Test peer for the end-to-end tests of `#[derive(IpcMessage)]`: it reaches the queue
//! only through the endpoints `#[ipc(queue = ..)]` generates (`Quote::producer()`,
//! `Quote::consumer()`), prints one result line on stdout and exits 0; failures print to
//! stderr and exit non-zero. Every wait is bounded.
//!
//! ```text
//! peer-derive produce N            send quotes 0..N, print "sent N"
//! peer-derive consume N TIMEOUT_MS subscribe, print "ready", receive quotes 0..N in order
//!                                  (each checked field by field), print "received N"
//! peer-derive consume-other        subscribe as `Other` (another type, same queue);
//!                                  print the error it gives
//! ```
//!
//! `Quote` and `Other` are declared once, in `tests/derive_messages/mod.rs`, for the peer
//! and the tests alike.

#[path = "../../tests/derive_messages/mod.rs"]
mod derive_messages;

use std::process::ExitCode;
use std::time::{Duration, Instant};

use derive_messages::{Other, Quote};
use fastipc::queue::RecvTimeoutError;
use fastipc_testkit::peer::{self, Result, say};

impl Quote {
    /// The quote number `seq`: every field derived from it, so the receiver can check
    /// each one.
    fn nth(seq: u64) -> Quote {
        let bid = seq as f64 * 0.5;
        let bid_qty = (seq % 1000) as u32;
        Quote {
            seq,
            bid,
            ask: bid + 0.25,
            bid_qty,
            ask_qty: bid_qty + 1,
            check: seq.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0xA5A5,
        }
    }
}

fn main() -> ExitCode {
    peer::main("peer-derive", run)
}

fn run(args: &[&str]) -> Result<String> {
    match args {
        ["produce", n] => {
            let n: u64 = n.parse()?;
            let tx = Quote::producer()?;
            for seq in 0..n {
                tx.send(&Quote::nth(seq))?;
                if seq % 256 == 255 {
                    std::thread::yield_now();
                }
            }
            Ok(format!("sent {n}"))
        }
        ["consume", n, timeout_ms] => {
            let n: u64 = n.parse()?;
            let deadline = Instant::now() + Duration::from_millis(timeout_ms.parse()?);
            let mut rx = Quote::consumer()?;
            say("ready");
            for seq in 0..n {
                let left = deadline.saturating_duration_since(Instant::now());
                let quote = match rx.recv_timeout(left) {
                    Ok(quote) => quote,
                    Err(RecvTimeoutError::Timeout) => {
                        return Err(format!("timed out after {seq} of {n} quotes").into());
                    }
                    Err(e) => return Err(format!("after {seq} quotes: {e}").into()),
                };
                if quote != Quote::nth(seq) {
                    return Err(format!("quote {seq} arrived as {quote:?}").into());
                }
            }
            Ok(format!("received {n}"))
        }
        ["consume-other"] => match Other::consumer() {
            Ok(_) => Err("subscribed to a queue of `Quote` as `Other`".into()),
            Err(e) => Ok(e.to_string()),
        },
        _ => Err("usage: see the source of src/bin/peer-derive.rs".into()),
    }
}
