//! Test peer of the bridge's process tests (not a tool): produces or consumes
//! 64-byte `Probe` messages on a named queue and reports on stdout.
//!
//! ```text
//! bridge-test-peer produce QUEUE FROM COUNT RATE    send Probe FROM..FROM+COUNT (RATE msg/s, 0: at once); print "sent N"
//! bridge-test-peer consume QUEUE CAPACITY LAST SECS [lossless]
//!                                                     create-or-open QUEUE (lossy, or lossless), print "ready", read from the oldest
//!                                                     until Probe LAST arrives, checking every field and the
//!                                                     order; print "received N gaps G missing M"
//! ```
//! Every wait is bounded; failures exit with status 1 and a message on stderr.

use std::process::ExitCode;
use std::time::{Duration, Instant};

use fastipc::SlickQueue;
use fastipc::queue::RecvTimeoutError;

#[allow(unreachable_pub)]
#[path = "../../tests/support/probe.rs"]
mod probe;
use probe::Probe;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bridge-test-peer {}: {e}", args.join(" "));
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

fn run(args: &[String]) -> Result<(), String> {
    let cmd = args.first().map(String::as_str).unwrap_or("");
    let name = args.get(1).ok_or("missing queue name")?;
    match cmd {
        "produce" => {
            let (from, count, rate) = (num(args, 2)?, num(args, 3)?, num(args, 4)?);
            let q = SlickQueue::<Probe>::open(name).map_err(|e| e.to_string())?;
            let tx = q.producer().map_err(|e| e.to_string())?;
            let start = Instant::now();
            for i in 0..count {
                if rate > 0 {
                    let due = start + Duration::from_secs_f64(i as f64 / rate as f64);
                    if let Some(wait) = due.checked_duration_since(Instant::now()) {
                        std::thread::sleep(wait);
                    }
                }
                tx.send(&Probe::new(from + i)).map_err(|e| e.to_string())?;
            }
            println!("sent {count}");
            Ok(())
        }
        "consume" => {
            let (capacity, last, secs) = (num(args, 2)?, num(args, 3)?, num(args, 4)?);
            let mode = match args.get(5).map(String::as_str) {
                Some("lossless") => fastipc::queue::Mode::Lossless,
                _ => fastipc::queue::Mode::Lossy,
            };
            let q = SlickQueue::<Probe>::open_or_create_with(name, capacity as usize, mode)
                .map_err(|e| e.to_string())?;
            let mut rx = q.consumer_from_oldest().map_err(|e| e.to_string())?;
            println!("ready");
            let deadline = Instant::now() + Duration::from_secs(secs);
            let (mut received, mut gaps, mut missing) = (0u64, 0u64, 0u64);
            let mut next: Option<u64> = None;
            loop {
                let left = deadline
                    .checked_duration_since(Instant::now())
                    .ok_or_else(|| {
                        format!("timed out: received {received}, expected up to {last}")
                    })?;
                match rx.recv_timeout(left) {
                    Ok(p) => {
                        if !p.is_intact() {
                            return Err(format!("message {received} is damaged: {p:?}"));
                        }
                        if let Some(n) = next {
                            if p.seq < n {
                                return Err(format!("out of order: {} after {}", p.seq, n - 1));
                            }
                            if p.seq > n {
                                gaps += 1;
                                missing += p.seq - n;
                            }
                        }
                        next = Some(p.seq + 1);
                        received += 1;
                        if p.seq == last {
                            break;
                        }
                    }
                    Err(RecvTimeoutError::Timeout) => {
                        return Err(format!(
                            "timed out: received {received}, expected up to {last}"
                        ));
                    }
                    Err(e) => return Err(format!("consumer: {e}")),
                }
            }
            println!("received {received} gaps {gaps} missing {missing}");
            Ok(())
        }
        other => Err(format!("unknown command {other:?}")),
    }
}
