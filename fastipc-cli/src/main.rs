//! `fastipc`: the command-line tool. Everything but parsing lives in the `fastipc_cli`
//! library.

use std::process::ExitCode;

use clap::Parser;
use clap::error::ErrorKind;
use fastipc_cli::cli::{Cli, parse_error_line};

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            if matches!(
                e.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) {
                let _ = e.print();
                return ExitCode::from(e.exit_code() as u8);
            }
            eprintln!("fastipc: {} (see `fastipc --help`)", parse_error_line(&e));
            return ExitCode::from(2);
        }
    };
    let status = fastipc_cli::run(
        &cli,
        &mut std::io::stdout().lock(),
        &mut std::io::stderr().lock(),
    );
    ExitCode::from(status)
}
