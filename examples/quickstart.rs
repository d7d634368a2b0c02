//! Quick start: a producer process and a consumer process exchange `Tick`s through the
//! queue that `#[ipc(queue = ..)]` names, with the endpoints the derive generates.
//!
//! ```text
//! cargo run --release --example quickstart [-- --millis MS]
//! ```
//!
//! Run without a role, it starts two copies of itself (the consumer, then the producer),
//! waits for both, removes the queues and exits. The producer sends for `MS` milliseconds
//! (default 1000), then a last tick marked `last`; the consumer checks every tick (its
//! checksum, and that its sequence number follows the previous one).
//!
//! The queue is *lossless* (`#[ipc(.., lossless)]`): a producer that gets a whole ring
//! ahead of the registered consumers waits for them instead of overwriting what they
//! have not read, and ticks sent before the consumer attached wait in the ring for it.
//! So either side may start first (`--producer-first` starts the producer first). Any
//! lost, corrupt or out-of-order tick makes the exit status non-zero.

use std::process::{Child, Command, ExitCode};
use std::time::{Duration, Instant, SystemTime};

use fastipc::queue::RecvTimeoutError;
use fastipc::{IpcMessage, NamedMutex};

/// A market tick. `#[derive(IpcMessage)]` checks the layout at compile time (`repr(C)`,
/// fixed-width fields, no padding: `_pad` fills the gap) and the attribute generates
/// `Tick::queue()`, `Tick::producer()` and `Tick::consumer()` for the lossless queue
/// `fastipc-quickstart-ticks` of 4096 ticks.
#[derive(IpcMessage, Clone, Copy, Debug)]
#[repr(C)]
#[ipc(queue = "fastipc-quickstart-ticks", capacity = 4096, lossless)]
struct Tick {
    seq: u64,
    ts_ns: u64,
    price: f64,
    qty: u32,
    side: u8,
    /// 1 on the producer's last tick.
    last: u8,
    _pad: [u8; 2],
    /// A checksum of the other fields.
    check: u64,
}

impl Tick {
    fn new(seq: u64, last: bool) -> Tick {
        let mut tick = Tick {
            seq,
            ts_ns: realtime_ns(),
            price: 100.0 + (seq % 200) as f64 * 0.25,
            qty: (seq % 97) as u32 + 1,
            side: (seq % 2) as u8,
            last: u8::from(last),
            _pad: [0; 2],
            check: 0,
        };
        tick.check = tick.checksum();
        tick
    }

    fn checksum(&self) -> u64 {
        let words = [
            self.seq,
            self.ts_ns,
            self.price.to_bits(),
            u64::from(self.qty) << 16 | u64::from(self.side) << 8 | u64::from(self.last),
        ];
        words.iter().fold(0xcbf2_9ce4_8422_2325, |h, w| {
            (h ^ w).wrapping_mul(0x0000_0100_0000_01b3)
        })
    }
}

/// The queue's name (as in the attribute), for removal.
const QUEUE: &str = "fastipc-quickstart-ticks";
/// Held by the launcher for the whole run, so two runs at once take turns.
const RUN_LOCK: &str = "fastipc-quickstart";
/// How long any process waits for the others.
const PATIENCE: Duration = Duration::from_secs(30);

/// Nanoseconds since the Unix epoch (`CLOCK_REALTIME`), 0 if the clock is before it.
fn realtime_ns() -> u64 {
    SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let result = match args.first().map(String::as_str) {
        Some("consumer") => consumer(),
        Some("producer") => producer(millis(&args[1..])),
        _ => launcher(millis(&args), args.iter().any(|a| a == "--producer-first")),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("quickstart: {e}");
            ExitCode::FAILURE
        }
    }
}

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// `--millis MS` from the arguments, default 1000.
fn millis(args: &[String]) -> u64 {
    args.windows(2)
        .find(|w| w[0] == "--millis")
        .and_then(|w| w[1].parse().ok())
        .unwrap_or(1000)
}

/// Starts the consumer and the producer (in either order), waits for both, removes the
/// queue.
fn launcher(millis: u64, producer_first: bool) -> Result<()> {
    let run_lock = NamedMutex::open(RUN_LOCK)?;
    let _turn = match run_lock.lock_timeout(Duration::from_secs(120)) {
        Ok(guard) => guard,
        Err(e) => e.into_guard().ok_or("another quickstart kept running")?,
    };
    // A queue left by a killed run must not confuse this one.
    remove_queues()?;

    let me = std::env::current_exe()?;
    println!("quickstart: exchanging ticks between two processes for {millis} ms");
    let start_producer = || {
        Command::new(&me)
            .args(["producer", "--millis", &millis.to_string()])
            .spawn()
    };
    let (consumer, producer) = if producer_first {
        let producer = start_producer()?;
        std::thread::sleep(Duration::from_millis(50));
        (Command::new(&me).arg("consumer").spawn()?, producer)
    } else {
        let consumer = Command::new(&me).arg("consumer").spawn()?;
        (consumer, start_producer()?)
    };
    let limit = Duration::from_millis(millis) + 2 * PATIENCE;
    let producer_ok = wait(producer, "producer", limit);
    let consumer_ok = wait(consumer, "consumer", limit);
    remove_queues()?;
    if producer_ok && consumer_ok {
        println!("quickstart: done, queues removed");
        Ok(())
    } else {
        Err("a process failed".into())
    }
}

/// Queues are never removed implicitly (the peers' rule): the launcher removes it.
fn remove_queues() -> Result<()> {
    fastipc::queue::remove(QUEUE)?;
    Ok(())
}

/// Waits for `child` at most `limit`, killing it after that; whether it succeeded.
fn wait(mut child: Child, role: &str, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(status)) => {
                if !status.success() {
                    eprintln!("quickstart: the {role} failed ({status})");
                }
                return status.success();
            }
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            _ => {
                eprintln!("quickstart: the {role} did not finish within {limit:?}; killing it");
                let _ = child.kill();
                let _ = child.wait();
                return false;
            }
        }
    }
}

fn producer(millis: u64) -> Result<()> {
    // = SlickQueue::<Tick>::open_or_create_with(.., 4096, Mode::Lossless)?.producer()
    let tx = Tick::producer()?;
    let run_for = Duration::from_millis(millis);
    let start = Instant::now();
    let mut seq = 0u64;
    loop {
        // Lossless: waits while the consumer is a whole ring behind (or, before it
        // attached, while the ring holds 4096 unread ticks).
        tx.send(&Tick::new(seq, false))?;
        seq += 1;
        if seq.is_multiple_of(1024) && start.elapsed() >= run_for {
            break;
        }
    }
    tx.send(&Tick::new(seq, true))?;
    let secs = start.elapsed().as_secs_f64();
    println!(
        "producer: sent {} ticks in {secs:.2} s ({:.2} M ticks/s)",
        seq + 1,
        (seq + 1) as f64 / secs / 1e6
    );
    Ok(())
}

fn consumer() -> Result<()> {
    // Lossless: starts at the oldest tick no consumer has read, so ticks sent before it
    // attached are delivered too.
    let mut rx = Tick::consumer()?;
    let (mut received, mut lagged, mut corrupt, mut gaps) = (0u64, 0u64, 0u64, 0u64);
    let mut expected = 0u64;
    let mut first: Option<(Tick, Instant)> = None;
    let last = loop {
        match rx.recv_timeout(PATIENCE) {
            Ok(tick) => {
                first.get_or_insert((tick, Instant::now()));
                received += 1;
                if tick.check != tick.checksum() {
                    corrupt += 1;
                    continue;
                }
                if tick.seq != expected {
                    gaps += 1;
                }
                expected = tick.seq + 1;
                if tick.last == 1 {
                    break tick;
                }
            }
            // Lapped by the producer: exactly `n` ticks were overwritten unread (a
            // lossless queue prevents it; reported below).
            Err(RecvTimeoutError::Lagged(n)) => {
                lagged += n;
                expected += n;
            }
            Err(RecvTimeoutError::Timeout) => return Err("no tick for 30 s".into()),
            Err(e) => return Err(e.into()),
        }
    };
    let (first, started) = first.ok_or("no tick received")?;
    let secs = started.elapsed().as_secs_f64().max(1e-9);
    println!(
        "consumer: received {received} ticks in {secs:.2} s ({:.2} M ticks/s); {lagged} \
         lost, {corrupt} corrupt, {gaps} out of order",
        received as f64 / secs / 1e6
    );
    println!("consumer: first {first:?}");
    println!("consumer: last  {last:?}");
    if received + lagged != last.seq + 1 {
        return Err(format!(
            "{} ticks sent, {received} received and {lagged} reported lost",
            last.seq + 1
        )
        .into());
    }
    if lagged > 0 || corrupt > 0 || gaps > 0 {
        return Err(format!("{lagged} lost, {corrupt} corrupt, {gaps} out of order").into());
    }
    Ok(())
}
