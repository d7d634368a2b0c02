//! Test peer for the multi-process tests of `SharedCell<T>`. Each subcommand opens a
//! cell (registered in `$FASTIPC_PID_DIR`), does one job, prints one result line on
//! stdout and exits 0; failures print to stderr and exit non-zero. Every wait is bounded.
//!
//! ```text
//! peer-cell incr NAME INDEX N GO  open the cell, print "ready", wait for the event GO, then
//!                                 make N read-modify-write updates of a `Tally` under the
//!                                 lock; print "done owner-died=K"
//! peer-cell hold NAME             lock, leave a half-done update, print "locked", wait to be killed
//! peer-cell open-other NAME       open the cell as `Other`; print the error it gives
//! ```
//!
//! `Tally` is declared once, in `tests/cell_messages/mod.rs`, for the peer and the tests
//! alike.

#[path = "../../tests/cell_messages/mod.rs"]
mod cell_messages;

use std::process::ExitCode;
use std::time::Duration;

use cell_messages::{HALF_DONE, Tally};
use fastipc::{IpcMessage, NamedEvent, SharedCell, SharedCellError};
use fastipc_testkit::peer::{self, Result, say};

/// How long a peer waits for anything before giving up.
const LIMIT: Duration = Duration::from_secs(60);

/// Another message type, to attach with.
#[derive(IpcMessage, Clone, Copy, Debug)]
#[repr(C)]
struct Other {
    value: u64,
}

fn main() -> ExitCode {
    peer::main("peer-cell", run)
}

/// One update, deliberately not atomic: read, dawdle, write. Without the lock, updates
/// of the other processes would be lost in the gap.
fn bump(t: &mut Tally, index: usize) {
    let total = t.total;
    for _ in 0..50 {
        std::hint::spin_loop();
    }
    t.total = total + 1;
    t.per_peer[index] += 1;
    t.double = 2 * t.total;
    t.last_pid = std::process::id();
}

fn run(args: &[&str]) -> Result<String> {
    match args {
        ["incr", name, index, n, go] => {
            let index: usize = index.parse()?;
            if index >= 4 {
                return Err("INDEX must be below 4".into());
            }
            let cell = SharedCell::<Tally>::open_or_create(name)?;
            let go = NamedEvent::open(go)?;
            say("ready");
            // All peers start together, so their updates really interleave.
            go.wait_timeout(LIMIT)?;
            let mut died = 0;
            for i in 0..n.parse::<u64>()? {
                // Both ways in: a guard, and `update`.
                if i % 2 == 0 {
                    let mut guard = cell.lock().unwrap_or_else(|d| {
                        died += 1;
                        d.into_guard()
                    });
                    bump(&mut guard, index);
                } else {
                    match cell.update(|t| bump(t, index)) {
                        Ok(()) => {}
                        Err(d) => {
                            died += 1;
                            bump(&mut d.into_guard(), index);
                        }
                    }
                }
            }
            Ok(format!("done owner-died={died}"))
        }
        ["hold", name] => {
            let cell = SharedCell::<Tally>::open_or_create(name)?;
            let mut guard = cell.lock().unwrap_or_else(|d| d.into_guard());
            guard.total = HALF_DONE; // `double` is not updated: a torn update
            say("locked");
            std::thread::sleep(LIMIT);
            drop(guard);
            Err("was not killed in time".into())
        }
        ["open-other", name] => match SharedCell::<Other>::open(name) {
            Ok(_) => Err("opened a cell of `Tally` as `Other`".into()),
            Err(e @ SharedCellError::TypeMismatch { .. }) => Ok(e.to_string()),
            Err(e) => Err(format!("expected a type mismatch, got: {e}").into()),
        },
        _ => Err("usage: see the source of src/bin/peer-cell.rs".into()),
    }
}
