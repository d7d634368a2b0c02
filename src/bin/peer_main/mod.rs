//! What the test peers `peer-cell`, `peer-derive` and `peer-sync` share: a subcommand
//! either succeeds with one result line on stdout (exit status 0) or fails with a message
//! on stderr (exit status 1).

use std::io::Write;
use std::process::ExitCode;

/// What a subcommand returns.
pub(crate) type Result<T> = std::result::Result<T, Box<dyn std::error::Error>>;

/// Runs `run` on the command-line arguments (the program name left out) and reports as
/// the module docs say; `peer` names the program in the error message.
pub(crate) fn main(peer: &str, run: fn(&[&str]) -> Result<String>) -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    match run(&args) {
        Ok(line) => {
            println!("{line}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("{peer} {args:?}: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Prints `line` on stdout at once: the test reads it while the peer carries on.
pub(crate) fn say(line: &str) {
    let mut out = std::io::stdout().lock();
    let _ = writeln!(out, "{line}");
    let _ = out.flush();
}
