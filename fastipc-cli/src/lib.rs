//! The `fastipc` command-line tool, as a library: each subcommand's logic lives in its
//! module, with unit tests; `main.rs` only parses the command line and calls [`run`].
//!
//! | module | holds |
//! |---|---|
//! | [`cli`] | the command line (clap) |
//! | [`segment`] | read-only access to a segment; its kind, as [`fastipc::inspect`] tells it by name prefix or magic |
//! | [`inspect`] | `inspect`: a header decoded per kind by [`fastipc::inspect`], shown as text or JSON |
//! | [`ls`] | `ls`: the table of our segments |
//! | [`rm`] | `rm`: removal, with the registry folder |
//! | [`traffic`] | `send` / `recv`: the test pattern, its verification, the loops |
//! | [`progress`] | the progress bar on a terminal |
//! | [`bridge`] | `bridge`: the forward to the `fastipc-bridge` binary (Zenoh) |
//! | [`error`] | one-line errors |
//!
//! ```
//! use clap::Parser;
//! use fastipc_cli::cli::Cli;
//!
//! let cli = Cli::try_parse_from(["fastipc", "recv", "ticks", "--count", "5", "--elem-size", "4"])?;
//! let (mut out, mut err) = (Vec::new(), Vec::new());
//! assert_eq!(fastipc_cli::run(&cli, &mut out, &mut err), 1);
//! assert!(String::from_utf8(err)?.starts_with("fastipc: element size 4 is too small"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

pub mod bridge;
pub mod cli;
pub mod error;
pub mod inspect;
pub mod ls;
pub mod progress;
pub mod rm;
pub mod segment;
pub mod traffic;

#[cfg(test)]
mod testutil;

use std::io::{self, Write};
use std::path::Path;

use fastipc::named::registry::Registry;

use crate::cli::{Cli, Command};
use crate::error::CliError;
use crate::progress::Progress;

/// Runs a parsed command line, printing results to `out` and errors (one line each,
/// after `fastipc: `) to `err`. Returns the exit status: 0 on success, 1 on any error.
pub fn run(cli: &Cli, out: &mut dyn Write, err: &mut dyn Write) -> u8 {
    match execute(cli, out, err) {
        Ok(()) => 0,
        Err(CliError::Reported) => 1,
        Err(e) => {
            let _ = writeln!(err, "fastipc: {e}");
            1
        }
    }
}

fn execute(cli: &Cli, out: &mut dyn Write, err: &mut dyn Write) -> Result<(), CliError> {
    let dir = Path::new(fastipc::Segment::DIR);
    let registry = Registry::from_env();
    match &cli.command {
        Command::Ls { json } => {
            let listing = ls::list(dir, &registry)?;
            if *json {
                emit(out, &(json_text(&listing) + "\n"))
            } else {
                emit(out, &ls::render(&listing))
            }
        }
        Command::Inspect { name, json } => {
            let report = inspect::inspect(dir, name, &registry)?;
            if *json {
                emit(out, &(json_text(&report) + "\n"))
            } else {
                emit(out, &report.to_string())
            }
        }
        Command::Rm { names, force } => {
            let mut failed = false;
            for name in names {
                match rm::remove(dir, name, *force, &registry) {
                    Ok(msg) => emit(out, &format!("{msg}\n"))?,
                    Err(e) => {
                        failed = true;
                        let _ = writeln!(err, "fastipc: {e}");
                    }
                }
            }
            if failed {
                Err(CliError::Reported)
            } else {
                Ok(())
            }
        }
        Command::Sweep { dry_run } => {
            let report = registry.sweep(*dry_run)?;
            emit(out, &report.to_string())?;
            if report.errors.is_empty() {
                Ok(())
            } else {
                for e in &report.errors {
                    let _ = writeln!(err, "fastipc: sweep: {e}");
                }
                Err(CliError::Reported)
            }
        }
        Command::Send(args) => {
            let opts = args.options();
            let summary = traffic::send(&opts, &Progress::new(opts.count, "send"))?;
            emit(out, &format!("{summary}\n"))
        }
        Command::Recv(args) => {
            let opts = args.options()?;
            let summary = traffic::recv(&opts, &Progress::new(opts.count, "recv"))?;
            emit(out, &format!("{summary}\n"))?;
            summary.verdict()
        }
        Command::Bridge { args } => Err(bridge::exec(args)),
    }
}

fn json_text<T: serde::Serialize>(value: &T) -> String {
    serde_json::to_string_pretty(value)
        .unwrap_or_else(|e| format!("{{\"error\": {:?}}}", e.to_string()))
}

/// Writes to standard output; a closed pipe (`fastipc ls | head`) is not an error.
fn emit(out: &mut dyn Write, text: &str) -> Result<(), CliError> {
    match out.write_all(text.as_bytes()).and_then(|()| out.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => Ok(()),
        Err(source) => Err(CliError::Io {
            path: "standard output".into(),
            op: "write to",
            source,
        }),
    }
}
