//! `fastipc-bridge`: export a local queue to Zenoh, or import a Zenoh key into a local
//! queue, until SIGINT or SIGTERM.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use clap::{Args, Parser, Subcommand};
use fastipc_zenoh::{
    BridgeConfig, BridgeError, ExportHandle, ImportHandle, export_untyped, import_untyped,
};

/// Bridge fastipc queues over Zenoh.
#[derive(Parser)]
#[command(name = "fastipc-bridge", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Publish every message of local queue QUEUE on the Zenoh key expression KEY.
    Export {
        /// The local queue (it must exist).
        queue: String,
        /// The Zenoh key expression.
        key: String,
        /// Keep this exporter's position in the queue (a durable consumer keyed by KEY,
        /// advanced by importers' acknowledgements): a restarted exporter resumes where
        /// the last one stopped, and a lossless queue's producers wait meanwhile.
        #[arg(long)]
        resume: bool,
        #[command(flatten)]
        common: Common,
    },
    /// Remove the position `export --resume` keeps in QUEUE for KEY (it holds a lossless
    /// queue's producers back while no exporter runs).
    Forget {
        /// The local queue.
        queue: String,
        /// The Zenoh key expression the exporter published on.
        key: String,
    },
    /// Write every message published on KEY into local queue QUEUE (created if missing).
    Import {
        /// The Zenoh key expression.
        key: String,
        /// The local queue.
        queue: String,
        /// Capacity of the queue if it is created.
        #[arg(long, default_value_t = 65536)]
        capacity: usize,
        #[command(flatten)]
        common: Common,
    },
}

#[derive(Args)]
struct Common {
    /// A Zenoh endpoint to connect to, e.g. tcp/192.168.1.10:7447 (repeatable).
    #[arg(long)]
    connect: Vec<String>,
    /// A Zenoh endpoint to listen on, e.g. tcp/0.0.0.0:7447 (repeatable).
    #[arg(long)]
    listen: Vec<String>,
    /// Turn multicast scouting off: only the explicit endpoints are used.
    #[arg(long)]
    no_multicast: bool,
    /// A Zenoh JSON5 configuration file (TLS, authentication, routers); the flags above
    /// apply on top of it.
    #[arg(long, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Element size in bytes (default: the queue's; for an import into a missing queue,
    /// the first batch's).
    #[arg(long)]
    elem_size: Option<usize>,
    /// Lossless: reliable publication with blocking congestion control, blocking sends.
    #[arg(long)]
    lossless: bool,
    /// Upper bound of a batch's message bytes.
    #[arg(long, default_value_t = 65536)]
    batch_bytes: usize,
    /// How long a batch stays open after its first message, in microseconds.
    #[arg(long, default_value_t = 1000)]
    batch_delay_us: u64,
    /// Seconds between status lines (0: none).
    #[arg(long, default_value_t = 1.0)]
    status_interval: f64,
}

impl Common {
    fn config(&self) -> BridgeConfig {
        let mut c = BridgeConfig::default()
            .lossless(self.lossless)
            .batching(self.batch_bytes, Duration::from_micros(self.batch_delay_us));
        c.connect.clone_from(&self.connect);
        c.listen.clone_from(&self.listen);
        c.multicast = !self.no_multicast;
        c.zenoh_config.clone_from(&self.config);
        c
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let stop = Arc::new(AtomicBool::new(false));
    if let Err(e) = watch_signals(&stop) {
        eprintln!("fastipc-bridge: cannot handle signals: {e}");
        return ExitCode::FAILURE;
    }
    let result = match cli.command {
        Command::Export {
            queue,
            key,
            resume,
            common,
        } => {
            let interval = common.status_interval;
            let config = common.config().resume(resume);
            export_untyped(&queue, &key, common.elem_size, &config)
                .and_then(|h| run_export(h, &queue, &key, interval, &stop))
        }
        Command::Forget { queue, key } => fastipc_zenoh::forget(&queue, &key).map(|found| {
            println!("{}", if found { "forgotten" } else { "none kept" });
        }),
        Command::Import {
            key,
            queue,
            capacity,
            common,
        } => {
            let interval = common.status_interval;
            import_untyped(
                &key,
                &queue,
                common.elem_size,
                &common.config().capacity(capacity),
            )
            .and_then(|h| run_import(h, &key, &queue, interval, &stop))
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("fastipc-bridge: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Sets `stop` on SIGINT or SIGTERM (a thread with a small Tokio runtime waits for them).
fn watch_signals(stop: &Arc<AtomicBool>) -> std::io::Result<()> {
    use tokio::signal::unix::{SignalKind, signal};
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (mut int, mut term) = rt.block_on(async {
        Ok::<_, std::io::Error>((
            signal(SignalKind::interrupt())?,
            signal(SignalKind::terminate())?,
        ))
    })?;
    let stop = Arc::clone(stop);
    std::thread::Builder::new()
        .name("signals".into())
        .spawn(move || {
            rt.block_on(async {
                tokio::select! {
                    _ = int.recv() => {}
                    _ = term.recv() => {}
                }
            });
            // Relaxed: the main loop polls it; nothing else is published through it.
            stop.store(true, Ordering::Relaxed);
        })?;
    Ok(())
}

/// Waits for `stop` (or the handle finishing), calling `tick` every 20 ms with the
/// seconds since the last status line when one is due (every `interval`, and once at
/// the end).
fn pace(
    stop: &AtomicBool,
    interval: f64,
    finished: impl Fn() -> bool,
    mut tick: impl FnMut(Option<f64>),
) {
    let mut last = Instant::now();
    while !stop.load(Ordering::Relaxed) && !finished() {
        std::thread::sleep(Duration::from_millis(20));
        let secs = last.elapsed().as_secs_f64();
        if interval > 0.0 && secs >= interval {
            tick(Some(secs));
            last = Instant::now();
        } else {
            tick(None);
        }
    }
    // A last status line, so that even a short run shows one.
    if interval > 0.0 {
        tick(Some(last.elapsed().as_secs_f64().max(1e-9)));
    }
}

fn run_export(
    h: ExportHandle,
    queue: &str,
    key: &str,
    interval: f64,
    stop: &AtomicBool,
) -> Result<(), BridgeError> {
    eprintln!(
        "fastipc-bridge: exporting {queue} ({}) to {key}",
        h.message_type()
    );
    println!("ready");
    let _ = std::io::stdout().flush();
    let mut prev = h.stats();
    let mut matched = false;
    pace(
        stop,
        interval,
        || h.is_finished(),
        |due| {
            if h.matched() != matched {
                matched = h.matched();
                println!("{}", if matched { "matched" } else { "unmatched" });
                let _ = std::io::stdout().flush();
            }
            if let Some(secs) = due {
                let s = h.stats();
                eprintln!(
                    "export {queue} -> {key}: {} msgs ({:.0} msg/s, {:.1} MB/s), {} batches, \
                 lagged {}, abandoned {}, corrupt {}, unmatched {}, importer {}",
                    s.messages,
                    (s.messages - prev.messages) as f64 / secs,
                    (s.bytes - prev.bytes) as f64 / secs / 1e6,
                    s.batches,
                    s.lagged,
                    s.abandoned,
                    s.corrupt,
                    s.unmatched,
                    if matched { "matched" } else { "none" }
                );
                prev = s;
            }
        },
    );
    let stats = h.stop()?;
    println!(
        "exported messages={} batches={} bytes={} lagged={} abandoned={} corrupt={} unmatched={}",
        stats.messages,
        stats.batches,
        stats.bytes,
        stats.lagged,
        stats.abandoned,
        stats.corrupt,
        stats.unmatched
    );
    Ok(())
}

fn run_import(
    h: ImportHandle,
    key: &str,
    queue: &str,
    interval: f64,
    stop: &AtomicBool,
) -> Result<(), BridgeError> {
    eprintln!("fastipc-bridge: importing {key} into {queue}");
    println!("ready");
    let _ = std::io::stdout().flush();
    let mut prev = h.stats();
    pace(
        stop,
        interval,
        || h.is_finished(),
        |due| {
            let Some(secs) = due else { return };
            let s = h.stats();
            eprintln!(
                "import {key} -> {queue}: {} msgs ({:.0} msg/s, {:.1} MB/s), {} batches, lost {} \
             (upstream lagged {}, abandoned {}, dropped {}, restart gap {}, unmatched {}), \
             duplicates {}, malformed {}",
                s.messages,
                (s.messages - prev.messages) as f64 / secs,
                (s.bytes - prev.bytes) as f64 / secs / 1e6,
                s.batches,
                s.lost(),
                s.upstream_lagged,
                s.upstream_abandoned,
                s.dropped,
                s.restart_gap,
                s.unmatched,
                s.duplicates,
                s.malformed
            );
            prev = s;
        },
    );
    let s = h.stop()?;
    println!(
        "imported messages={} batches={} bytes={} lost={} lagged={} abandoned={} corrupt={} dropped={} restart_gap={} malformed={} unmatched={} duplicates={}",
        s.messages,
        s.batches,
        s.bytes,
        s.lost(),
        s.upstream_lagged,
        s.upstream_abandoned,
        s.upstream_corrupt,
        s.dropped,
        s.restart_gap,
        s.malformed,
        s.unmatched,
        s.duplicates
    );
    Ok(())
}
