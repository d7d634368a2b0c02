//! The command line, as `clap` parses it.

use std::time::Duration;

use clap::{Args, Parser, Subcommand};

use crate::error::{CliError, number};
use crate::traffic::{RecvOptions, SendOptions};

/// Lists, inspects, removes and sweeps the shared-memory objects of fastipc and its
/// peers (slick-queue, pyfastipc) in /dev/shm, and sends or receives test traffic on a
/// queue.
#[derive(Debug, Parser)]
#[command(name = "fastipc", version, about, max_term_width = 100)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// List every fastipc, slick-queue and pyfastipc segment in /dev/shm, with its kind,
    /// size, state and attached processes.
    Ls {
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Show the decoded header of a segment (a queue, mutex, semaphore, event, shared
    /// cell, or a pyfastipc data object).
    Inspect {
        /// The segment name, as `ls` shows it.
        name: String,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove segments, and their registry folders when no live process is attached.
    Rm {
        /// Segment names, as `ls` shows them.
        #[arg(required = true, value_name = "NAME")]
        names: Vec<String>,
        /// Also remove segments that are not fastipc, slick-queue or pyfastipc objects.
        #[arg(long)]
        force: bool,
    },
    /// Remove registrations of dead processes, and named objects nobody live is attached
    /// to (registry: $FASTIPC_PID_DIR, default /dev/shm/fastipc).
    Sweep {
        /// Only report what would be removed.
        #[arg(long)]
        dry_run: bool,
    },
    /// Send test elements on a queue (created if missing): element `seq` holds `seq`
    /// as a little-endian u64, then byte j = (seq*7 + j) mod 256.
    Send(SendArgs),
    /// Receive test elements from a queue and verify order and payload; exit status 0
    /// only when all arrived intact.
    Recv(RecvArgs),
    /// Bridge queues over Zenoh: runs `fastipc-bridge ARGS` (crate fastipc-zenoh), found
    /// next to this binary or on PATH. `fastipc bridge export QUEUE KEY --connect
    /// tcp/HOST:7447`, `fastipc bridge import KEY QUEUE --listen tcp/0.0.0.0:7447`;
    /// `fastipc bridge --help` for its options.
    #[command(disable_help_flag = true)]
    Bridge {
        /// Arguments for fastipc-bridge.
        #[arg(
            trailing_var_arg = true,
            allow_hyphen_values = true,
            value_name = "ARGS"
        )]
        args: Vec<String>,
    },
}

/// `fastipc send`.
#[derive(Debug, Args)]
pub struct SendArgs {
    /// The queue's segment name.
    pub name: String,
    /// Elements to send (sequence numbers 0..N).
    #[arg(long, value_name = "N")]
    pub count: u64,
    /// Bytes per element (at least 8).
    #[arg(long, value_name = "B")]
    pub elem_size: usize,
    /// Capacity of the queue if this creates it, a power of two (default 1024); an
    /// existing queue must have it.
    #[arg(long, value_name = "C")]
    pub capacity: Option<usize>,
    /// Elements per reservation.
    #[arg(long, value_name = "K", default_value_t = 1)]
    pub batch: usize,
    /// Target elements per second (default: as fast as possible).
    #[arg(long, value_name = "R")]
    pub rate: Option<f64>,
    /// Create the queue lossless (sends wait for registered consumers instead of
    /// overwriting what they have not read); an existing queue must be lossless too
    /// when --capacity is given.
    #[arg(long)]
    pub lossless: bool,
}

/// `fastipc recv`.
#[derive(Clone, Debug, Args)]
pub struct RecvArgs {
    /// The queue's segment name.
    pub name: String,
    /// Elements to receive.
    #[arg(long, value_name = "N")]
    pub count: u64,
    /// Bytes per element (the queue's must match).
    #[arg(long, value_name = "B")]
    pub elem_size: usize,
    /// Seconds to wait for the queue to appear, and for each next element.
    #[arg(long, value_name = "S", default_value_t = 10.0)]
    pub timeout: f64,
    /// Share the read position in this 8-byte segment (created if missing) with other
    /// consumers: each element goes to one of them. A read claims a whole reservation;
    /// elements it holds beyond --count fail the run, as no other consumer gets them.
    #[arg(long, value_name = "CURSOR")]
    pub shared_cursor: Option<String>,
    /// Start with the next element published instead of the oldest still in the ring.
    #[arg(long)]
    pub from_now: bool,
    /// Receive at most this many elements per second (default: as fast as they come):
    /// a deliberately slow consumer.
    #[arg(long, value_name = "R")]
    pub rate: Option<f64>,
}

impl SendArgs {
    /// The options of [`crate::traffic::send`].
    pub fn options(&self) -> SendOptions {
        SendOptions {
            name: self.name.clone(),
            count: self.count,
            elem_size: self.elem_size,
            capacity: self.capacity,
            batch: self.batch,
            rate: self.rate,
            lossless: self.lossless,
        }
    }
}

impl RecvArgs {
    /// The options of [`crate::traffic::recv`]; refuses a timeout that is not a
    /// non-negative number of seconds, or too long to wait for.
    pub fn options(&self) -> Result<RecvOptions, CliError> {
        let t = self.timeout;
        let reason = if t.is_nan() || t < 0.0 {
            format!("{} is not a non-negative number of seconds", number(t))
        } else {
            format!(
                "{} seconds is longer than the longest wait, {:.1e} s",
                number(t),
                Duration::MAX.as_secs_f64()
            )
        };
        let timeout = Duration::try_from_secs_f64(t).map_err(|_| CliError::InvalidOption {
            option: "--timeout",
            reason,
        })?;
        Ok(RecvOptions {
            name: self.name.clone(),
            count: self.count,
            elem_size: self.elem_size,
            timeout,
            shared_cursor: self.shared_cursor.clone(),
            from_now: self.from_now,
            rate: self.rate,
        })
    }
}

/// The first line of a clap error, without clap's `error: ` prefix, for a one-line
/// report.
pub fn parse_error_line(e: &clap::Error) -> String {
    let rendered = e.render().to_string();
    let first = rendered.lines().next().unwrap_or("invalid command line");
    first.strip_prefix("error: ").unwrap_or(first).to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn the_command_line_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn send_and_recv_parse_their_options() {
        let cli = Cli::try_parse_from([
            "fastipc",
            "send",
            "q",
            "--count",
            "10",
            "--elem-size",
            "16",
            "--batch",
            "4",
            "--rate",
            "1000",
        ])
        .unwrap();
        let Command::Send(a) = cli.command else {
            panic!()
        };
        let o = a.options();
        assert_eq!(
            (o.count, o.elem_size, o.batch, o.rate),
            (10, 16, 4, Some(1000.0))
        );
        assert_eq!(o.capacity, None);
        let cli = Cli::try_parse_from([
            "fastipc",
            "recv",
            "q",
            "--count",
            "3",
            "--elem-size",
            "8",
            "--timeout",
            "0.5",
            "--from-now",
        ])
        .unwrap();
        let Command::Recv(a) = cli.command else {
            panic!()
        };
        let o = a.options().unwrap();
        assert_eq!(o.timeout, Duration::from_millis(500));
        assert!(o.from_now && o.shared_cursor.is_none());
        let bad = RecvArgs {
            timeout: -1.0,
            ..a.clone()
        };
        assert!(bad.options().is_err());
        let huge = RecvArgs {
            timeout: 1e300,
            ..a
        };
        let err = huge.options().unwrap_err().to_string();
        assert!(err.contains("1e300 seconds is longer than"), "{err}");
    }

    #[test]
    fn parse_errors_fit_on_one_line() {
        let e = Cli::try_parse_from(["fastipc", "send", "q", "--count", "x"]).unwrap_err();
        let line = parse_error_line(&e);
        assert!(line.contains("--count"), "{line}");
        assert!(!line.contains('\n') && !line.starts_with("error:"));
        assert!(
            Cli::try_parse_from(["fastipc", "rm"]).is_err(),
            "rm needs a name"
        );
    }
}
