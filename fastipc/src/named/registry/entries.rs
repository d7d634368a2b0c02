//! What the registry records and reports: the pid files of a folder ([`Entries`],
//! [`AttachedPid`]) and what a sweep found ([`SweepReport`]).

use std::fmt;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};

use super::folder::{self, Skipped};
use crate::error::NamedError;
use crate::sys::process::{self, StartTime};

/// A process registered as attached to a segment.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct AttachedPid {
    /// Its process id (the file's name).
    pub pid: u32,
    /// Its start time as fastipc recorded it; `None` in a file a Python process wrote.
    pub start_time: Option<u64>,
    /// Its pid namespace as fastipc recorded it; `None` when unknown (every file a
    /// Python process wrote).
    pub pid_namespace: Option<u32>,
    /// Whether that process looks alive from here: exact for a file recording this
    /// process's pid namespace (start time compared, so a reused id is dead); always
    /// `true` for a file of another namespace; for a file recording none (the Python
    /// peer's), whether a process with that id runs in this namespace — the Python peer's
    /// own rule, which only [`Registry::sweep`](super::Registry::sweep) acts on (see the [module docs](super)).
    pub alive: bool,
}

impl AttachedPid {
    /// Whether this process can judge the registered process's liveness for sure: the
    /// file records the caller's own pid namespace (and the start time).
    pub fn is_verifiable(&self) -> bool {
        self.pid_namespace.is_some()
            && self.pid_namespace == process::pid_namespace().map(|ns| ns.get())
    }

    /// Whether the registered process is certainly dead: judged dead from a file that
    /// records this process's namespace. What a leaving process removes.
    pub fn is_certainly_dead(&self) -> bool {
        !self.alive && self.is_verifiable()
    }
}

/// A registration of a dead process, found by [`Registry::sweep`](super::Registry::sweep).
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeadEntry {
    /// The segment it was registered for.
    pub segment: String,
    /// The dead process's id.
    pub pid: u32,
}

/// A segment that live processes are still registered for.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct InUse {
    /// The segment.
    pub segment: String,
    /// The processes registered for it that may be alive.
    pub pids: Vec<u32>,
    /// Those of `pids` registered from another pid namespace: kept because they *may* be
    /// alive, which cannot be checked from here. Remove such a file by hand once you know
    /// its process is gone (or sweep from that namespace).
    pub unverifiable: Vec<u32>,
}

/// What [`Registry::sweep`](super::Registry::sweep) removed (or, in a dry run, would remove).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SweepReport {
    /// Whether this was a dry run (nothing removed).
    pub dry_run: bool,
    /// Registrations of dead processes.
    pub dead_entries: Vec<DeadEntry>,
    /// Segments unlinked because no live process was registered for them.
    pub removed_segments: Vec<String>,
    /// Registry folders removed.
    pub removed_dirs: Vec<PathBuf>,
    /// Segments left alone because live processes use them.
    pub in_use: Vec<InUse>,
    /// Entries of registry folders that were not read as registrations (links, FIFOs,
    /// files too large for a pid file), left in place.
    pub skipped: Vec<Skipped>,
    /// Problems met on the way (the sweep goes on past them).
    pub errors: Vec<String>,
}

impl SweepReport {
    /// Whether the sweep found nothing to remove.
    pub fn is_clean(&self) -> bool {
        self.dead_entries.is_empty()
            && self.removed_segments.is_empty()
            && self.removed_dirs.is_empty()
    }
}

impl fmt::Display for SweepReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let verb = if self.dry_run {
            "would remove"
        } else {
            "removed"
        };
        for d in &self.dead_entries {
            writeln!(
                f,
                "{verb} registration of dead process {} on {}",
                d.pid, d.segment
            )?;
        }
        for s in &self.removed_segments {
            writeln!(f, "{verb} segment {s} (nobody attached)")?;
        }
        for d in &self.removed_dirs {
            writeln!(f, "{verb} registry folder {}", d.display())?;
        }
        for u in &self.in_use {
            write!(f, "kept {} (in use by {:?}", u.segment, u.pids)?;
            if !u.unverifiable.is_empty() {
                write!(
                    f,
                    "; {:?} cannot be checked from this pid namespace",
                    u.unverifiable
                )?;
            }
            writeln!(f, ")")?;
        }
        for s in &self.skipped {
            writeln!(f, "skipped {}: {}", s.path.display(), s.reason)?;
        }
        for e in &self.errors {
            writeln!(f, "error: {e}")?;
        }
        if self.is_clean() {
            writeln!(f, "nothing stale")?;
        }
        Ok(())
    }
}

/// What a registry folder holds (see [`Registry::entries`](super::Registry::entries)).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Entries {
    /// The registered processes.
    pub attached: Vec<AttachedPid>,
    /// Entries named like a process id that are not read as registrations.
    pub skipped: Vec<Skipped>,
}

/// Reads the pid files of the opened folder `dir` (names of ASCII digits; other names
/// are not registrations and are ignored). Only small regular files are read, never
/// through a link, never waiting: the rest is returned as skipped.
pub(super) fn read_pid_entries(dir: &OwnedFd, path: &Path) -> Result<Entries, NamedError> {
    let mut out = Entries::default();
    for name in folder::entry_names(dir, path)? {
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        let Ok(pid) = name.parse::<u32>() else {
            continue;
        };
        let text = match folder::read_pid_file(dir, &name) {
            Ok(Some(text)) => text,
            Ok(None) => continue,
            Err(reason) => {
                out.skipped.push(Skipped {
                    path: path.join(&name),
                    reason,
                });
                continue;
            }
        };
        let (start_time, pid_namespace) = parse_pid_file(&text);
        let alive = match pid_namespace {
            Some(ns) => {
                let start = start_time.map_or(StartTime::Unknown, StartTime::Full);
                !process::has_exited(pid, ns, start)
            }
            // No namespace recorded (a Python peer's file): by the process id in this
            // namespace, the Python peer's own rule.
            None => process::is_alive(pid),
        };
        out.attached.push(AttachedPid {
            pid,
            start_time,
            pid_namespace,
            alive,
        });
    }
    Ok(out)
}

/// The start time and pid namespace a pid file records (`"START NS\n"`); `None` for
/// what is missing, 0 or unreadable (an empty Python file gives neither).
pub(super) fn parse_pid_file(text: &str) -> (Option<u64>, Option<u32>) {
    let mut fields = text.split_ascii_whitespace();
    let start_time = fields
        .next()
        .and_then(|f| f.parse::<u64>().ok())
        .filter(|&t| t != 0);
    let pid_namespace = fields
        .next()
        .and_then(|f| f.parse::<u32>().ok())
        .filter(|&ns| ns != 0);
    (start_time, pid_namespace)
}
