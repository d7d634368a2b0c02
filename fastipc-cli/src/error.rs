//! The tool's errors: each prints as one line that names the object and says what is
//! wrong; `main` prints it after `fastipc: ` and exits with status 1.

use std::path::PathBuf;
use std::time::Duration;

use fastipc::error::{NamedError, OpenError, SendError, ShmError};

/// Why a command failed.
#[derive(Debug, thiserror::Error)]
pub enum CliError {
    /// `fastipc bridge`: the `fastipc-bridge` binary is in none of the places looked in.
    #[error(
        "`fastipc bridge` runs the fastipc-bridge binary, which is neither next to fastipc nor on PATH \
         (looked in {}); install it with `cargo install --path fastipc-zenoh`",
        searched.iter().map(|d| d.display().to_string()).collect::<Vec<_>>().join(", ")
    )]
    BridgeMissing {
        /// The directories looked in.
        searched: Vec<PathBuf>,
    },
    /// A segment could not be named, opened or removed (bad name, permission, ...).
    #[error(transparent)]
    Shm(#[from] ShmError),
    /// No segment has this name.
    #[error("no segment named {name:?} in {}{}", dir.display(), did_you_mean(hint))]
    NotFound {
        /// The name asked for.
        name: String,
        /// The directory looked in.
        dir: PathBuf,
        /// Existing segments that are this name with a known prefix.
        hint: Vec<String>,
    },
    /// The segment exists but this user may not open it.
    #[error("permission denied on {} ({detail})", path.display())]
    PermissionDenied {
        /// The segment's path.
        path: PathBuf,
        /// Its mode and owner, and who we are.
        detail: String,
    },
    /// The name is a directory, a link or a device, not a segment.
    #[error("{} is not a regular file, so not a shared-memory segment", path.display())]
    NotRegularFile {
        /// The path.
        path: PathBuf,
    },
    /// The segment holds no object this tool knows.
    #[error(
        "{} ({size} bytes) is not a fastipc, slick-queue or pyfastipc object (no known name prefix, no queue marker)",
        path.display()
    )]
    Foreign {
        /// The segment's path.
        path: PathBuf,
        /// Its size in bytes.
        size: u64,
    },
    /// `rm` will not remove a segment that is not ours without `--force`.
    #[error(
        "{} ({size} bytes) is not a fastipc, slick-queue or pyfastipc object: not removed (--force removes it anyway)",
        path.display()
    )]
    RefuseForeign {
        /// The segment's path.
        path: PathBuf,
        /// Its size in bytes.
        size: u64,
    },
    /// The segment has the name of a kind of object but is too short to hold one.
    #[error("{} has the name of a {kind} but is {size} bytes; a {kind} needs at least {needed}", path.display())]
    Truncated {
        /// The segment's path.
        path: PathBuf,
        /// The kind its name announces.
        kind: &'static str,
        /// Its size in bytes.
        size: u64,
        /// The size that kind needs.
        needed: usize,
    },
    /// A read or stat failed for another reason.
    #[error("{op} {} failed: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The operation.
        op: &'static str,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A queue operation failed (the runtime's message names the queue).
    #[error(transparent)]
    Queue(#[from] OpenError),
    /// A send on a queue failed.
    #[error(transparent)]
    Send(#[from] SendError),
    /// A named object or the registry failed.
    #[error(transparent)]
    Named(#[from] NamedError),
    /// The test pattern needs room for its sequence number.
    #[error(
        "element size {0} is too small: the test pattern needs at least 8 bytes (the little-endian sequence number)"
    )]
    ElementTooSmall(usize),
    /// A numeric option is out of range.
    #[error("invalid {option}: {reason}")]
    InvalidOption {
        /// The option, as typed (`--rate`).
        option: &'static str,
        /// Why it is refused.
        reason: String,
    },
    /// `recv` waited for the queue to appear, or for the next element, in vain.
    #[error("timed out on queue {name:?}: {what} within {}", secs(*waited))]
    Timeout {
        /// The queue.
        name: String,
        /// What did not happen (`"it did not appear"`, `"nothing arrived"`).
        what: String,
        /// How long the tool waited.
        waited: Duration,
    },
    /// `recv` ended without every element arriving intact (the summary line says more).
    #[error("queue {name:?}: {detail}")]
    Incomplete {
        /// The queue.
        name: String,
        /// What went wrong, counted.
        detail: String,
    },
    /// `recv --shared-cursor` claimed, in the read that reached `--count`, elements after
    /// it, which no other reader of the cursor will get.
    #[error(
        "queue {name:?}: this reader claimed {beyond} elements beyond --count {count}{seqs}, and no other reader of the shared cursor will get them (a reservation is read whole: send with --batch 1, or give each reader a --count that ends on a reservation boundary)"
    )]
    ClaimedBeyondCount {
        /// The queue.
        name: String,
        /// The `--count` asked for.
        count: u64,
        /// Elements claimed after the `count`-th.
        beyond: u64,
        /// ` (sequence numbers A..=B)`, or empty if none of them was intact.
        seqs: String,
    },
    /// Errors were already printed, one line each (e.g. for several names of `rm`);
    /// nothing more to print, the exit status is 1.
    #[error("errors were reported above")]
    Reported,
}

fn did_you_mean(hint: &[String]) -> String {
    match hint {
        [] => String::new(),
        [one] => format!("; did you mean {one:?}?"),
        many => format!(
            "; did you mean one of {}?",
            many.iter()
                .map(|h| format!("{h:?}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    }
}

/// A number as typed on a command line, kept short: `-1`, `0.5`, `1e300`, `1e-30` (not
/// 301 digits).
pub(crate) fn number(x: f64) -> String {
    if x.is_finite() && x != 0.0 && !(1e-4..1e15).contains(&x.abs()) {
        format!("{x:e}")
    } else {
        format!("{x}")
    }
}

/// A duration for people: `2 s`, `1.500 s`, `250.0 ms`, `42 µs`.
pub(crate) fn secs(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s >= 1.0 && s.fract() == 0.0 {
        format!("{s:.0} s")
    } else if s >= 1.0 {
        format!("{s:.3} s")
    } else if s >= 1e-3 {
        format!("{:.1} ms", s * 1e3)
    } else {
        format!("{:.0} µs", s * 1e6)
    }
}

impl CliError {
    /// Whether the error is a shared-memory "permission denied", whatever layer met it.
    pub fn is_permission_denied(&self) -> bool {
        matches!(
            self,
            CliError::PermissionDenied { .. }
                | CliError::Shm(ShmError::PermissionDenied { .. })
                | CliError::Queue(OpenError::Shm(ShmError::PermissionDenied { .. }))
                | CliError::Named(NamedError::Shm(ShmError::PermissionDenied { .. }))
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_message_is_one_line() {
        let errors = [
            CliError::NotFound {
                name: "x".into(),
                dir: "/dev/shm".into(),
                hint: vec!["__pyfastipc_mutex_x".into(), "__pyfastipc_sema_x".into()],
            },
            CliError::Foreign {
                path: "/dev/shm/x".into(),
                size: 3,
            },
            CliError::ElementTooSmall(4),
            CliError::Timeout {
                name: "q".into(),
                what: "it did not appear".into(),
                waited: Duration::from_millis(1500),
            },
        ];
        for e in errors {
            let s = e.to_string();
            assert!(!s.contains('\n'), "{s}");
        }
        let t = CliError::Timeout {
            name: "q".into(),
            what: "nothing arrived".into(),
            waited: Duration::from_secs(2),
        };
        assert_eq!(
            t.to_string(),
            "timed out on queue \"q\": nothing arrived within 2 s"
        );
        assert_eq!(
            [-1.0, 0.5, 3.0, 1e300, 1e-30, f64::NAN].map(number),
            ["-1", "0.5", "3", "1e300", "1e-30", "NaN"]
        );
        assert_eq!(secs(Duration::from_millis(1500)), "1.500 s");
        assert_eq!(secs(Duration::from_millis(250)), "250.0 ms");
        assert_eq!(secs(Duration::from_micros(42)), "42 µs");
    }
}
