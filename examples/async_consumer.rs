//! An async consumer: one tokio runtime runs a task that awaits the messages of a queue
//! (`Consumer::recv_async`) next to a ticker task, while a producer *process* sends.
//!
//! ```text
//! cargo run --example async_consumer [-- --count N]
//! ```
//!
//! Run without a role, it creates the queue `fastipc-example-async-PID`, starts a copy of
//! itself as the producer (N messages, default 2000, in bursts of 50 with a 2 ms pause),
//! and runs the two tasks on a single-threaded runtime: the consumer checks that every
//! message arrives in order, the ticker counts 5 ms ticks meanwhile. The waiting receive
//! blocks no thread: the ticker keeps ticking while the consumer waits, on the same
//! thread. Exits non-zero on any lost or out-of-order message. With `FASTIPC_WAITER=poll`
//! in the environment, the waiter thread polls instead of using `futex_waitv` (as on a
//! kernel before 5.16); the last line says which.

use std::process::{Command, ExitCode};
use std::time::Duration;

use fastipc::SlickQueue;
use fastipc::queue::WaitStrategy;

const PATIENCE: Duration = Duration::from_secs(60);

type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let count: u64 = args
        .windows(2)
        .find(|w| w[0] == "--count")
        .and_then(|w| w[1].parse().ok())
        .unwrap_or(2000);
    let result = match args.first().map(String::as_str) {
        Some("producer") => args
            .get(1)
            .ok_or("missing queue name".into())
            .and_then(|name| producer(name, count)),
        _ => launcher(count),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("async_consumer: {e}");
            ExitCode::FAILURE
        }
    }
}

fn producer(name: &str, count: u64) -> Result<()> {
    let tx = SlickQueue::<u64>::open(name)?.producer()?;
    for i in 0..count {
        if i % 50 == 0 {
            std::thread::sleep(Duration::from_millis(2));
        }
        tx.send(&i)?;
    }
    Ok(())
}

fn launcher(count: u64) -> Result<()> {
    let name = format!("fastipc-example-async-{}", std::process::id());
    // Big enough that the producer never laps the consumer: nothing may be lost here.
    let queue = SlickQueue::<u64>::create(&name, (count as usize).next_power_of_two())?;
    let result = run(&queue, &name, count);
    fastipc::queue::remove(&name)?;
    result
}

fn run(queue: &SlickQueue<u64>, name: &str, count: u64) -> Result<()> {
    // All our producers are fastipc ones, which wake waiting receives: the re-poll for
    // peers that never wake (C++, Python) can be rare.
    let mut rx = queue
        .consumer()?
        .with_wait_strategy(WaitStrategy::default().poll_interval(Duration::from_millis(100)));
    let mut child = Command::new(std::env::current_exe()?)
        .args(["producer", name, "--count", &count.to_string()])
        .spawn()?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()?;
    let outcome = runtime.block_on(async move {
        let (stop, mut stopped) = tokio::sync::watch::channel(false);
        let ticker = tokio::spawn(async move {
            let mut ticks = 0u64;
            let mut interval = tokio::time::interval(Duration::from_millis(5));
            loop {
                tokio::select! {
                    _ = interval.tick() => ticks += 1,
                    _ = stopped.changed() => return ticks,
                }
            }
        });
        let consumer = tokio::spawn(async move {
            for expected in 0..count {
                let got = rx.recv_async().await.map_err(|e| e.to_string())?;
                if got != expected {
                    return Err(format!("got {got}, expected {expected}"));
                }
            }
            Ok::<u64, String>(count)
        });
        let received = tokio::time::timeout(PATIENCE, consumer).await;
        let _ = stop.send(true);
        let ticks = ticker.await.unwrap_or(0);
        (received, ticks)
    });
    let status = child.wait()?;
    let (received, ticks) = outcome;
    let received = received
        .map_err(|_| "the consumer did not finish within 60 s")?
        .map_err(|e| format!("the consumer task failed: {e}"))??;
    if !status.success() {
        return Err(format!("the producer failed: {status}").into());
    }
    println!("consumer: received {received} messages in order");
    println!("ticker: {ticks} ticks on the same thread meanwhile");
    let waiter = fastipc::waiter::stats();
    println!(
        "waiter: {} thread(s), {}",
        waiter.threads,
        if waiter.fallback {
            "polling fallback"
        } else {
            "futex_waitv"
        }
    );
    Ok(())
}
