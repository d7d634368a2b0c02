//! Process ids: the caller's own (cached, so hot paths stay free of syscalls) and the
//! liveness and identity of another process.
//!
//! A process id alone does not identify a process for long: once a process dies and is
//! reaped, the kernel may hand its id to a new one. [`ProcessId`] therefore pairs the id
//! with the process's start time (field 22 of `/proc/PID/stat`, clock ticks since boot),
//! which together are unique for the life of the machine.

use std::sync::atomic::{AtomicU32, Ordering};

use rustix::io::Errno;
use rustix::process::{Pid, getpid, test_kill_process};

/// The cached id of this process; 0 until first asked.
static CACHED_PID: AtomicU32 = AtomicU32::new(0);

/// The id of the calling process, from a cache after the first call (no syscall).
///
/// The cache is filled once per process. A child made by `fork()` without `exec` inherits
/// the parent's cache and must call [`refresh_pid`] before using fastipc primitives.
/// (`std::process::Command` always execs, so it is not affected.)
#[inline]
pub fn current_pid() -> u32 {
    match CACHED_PID.load(Ordering::Relaxed) {
        0 => refresh_pid(),
        pid => pid,
    }
}

/// Re-reads the id of the calling process into the cache of [`current_pid`] and returns it.
pub fn refresh_pid() -> u32 {
    let pid = getpid().as_raw_nonzero().get() as u32;
    CACHED_PID.store(pid, Ordering::Relaxed);
    pid
}

/// Whether a process with id `pid` exists and has not exited.
///
/// A zombie (exited, not yet reaped by its parent) counts as dead: it will never release
/// anything it held. Id 0 and ids above `i32::MAX` are never alive. A process we may not
/// signal (`EPERM`) exists, so it is alive.
pub fn is_alive(pid: u32) -> bool {
    let Some(p) = i32::try_from(pid).ok().and_then(Pid::from_raw) else {
        return false;
    };
    match test_kill_process(p) {
        Ok(()) | Err(Errno::PERM) => !is_zombie(pid),
        Err(_) => false,
    }
}

fn is_zombie(pid: u32) -> bool {
    matches!(read_stat(pid), Some(stat) if stat.state == 'Z')
}

/// What fastipc reads of `/proc/PID/stat`.
struct Stat {
    state: char,
    start_time: u64,
}

fn read_stat(pid: u32) -> Option<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&text)
}

/// Parses `/proc/PID/stat`. The command name (field 2) is in parentheses and may itself
/// contain spaces and parentheses, so fields are counted from the last `)`.
fn parse_stat(text: &str) -> Option<Stat> {
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    // Fields 3 (state) .. 22 (starttime): state is the first after `)`.
    let state = fields.next()?.chars().next()?;
    let start_time = fields.nth(18)?.parse().ok()?;
    Some(Stat { state, start_time })
}

/// A process id paired with the process's start time: it names one process for the whole
/// life of the machine, even after its id is reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ProcessId {
    /// The process id.
    pub pid: u32,
    /// Start time in clock ticks after boot (`/proc/PID/stat` field 22); 0 when unknown.
    pub start_time: u64,
}

impl ProcessId {
    /// The identity of the calling process.
    pub fn current() -> ProcessId {
        ProcessId::of(current_pid()).unwrap_or(ProcessId {
            pid: current_pid(),
            start_time: 0,
        })
    }

    /// The identity of the live process `pid`, or `None` if there is none.
    pub fn of(pid: u32) -> Option<ProcessId> {
        let stat = read_stat(pid)?;
        Some(ProcessId {
            pid,
            start_time: stat.start_time,
        })
    }

    /// Whether this very process (not merely one with the same id) is still alive.
    /// A start time of 0 (unknown) falls back to the id alone.
    pub fn is_alive(&self) -> bool {
        if !is_alive(self.pid) {
            return false;
        }
        if self.start_time == 0 {
            return true;
        }
        match read_stat(self.pid) {
            Some(stat) => stat.start_time == self.start_time && stat.state != 'Z',
            // Alive by kill(2) but /proc is unreadable (hidepid): trust the id.
            None => true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::process::{Command, Stdio};

    #[test]
    fn current_pid_matches_std_and_is_cached() {
        assert_eq!(current_pid(), std::process::id());
        assert_eq!(current_pid(), std::process::id());
        assert_eq!(refresh_pid(), std::process::id());
    }

    #[test]
    fn self_is_alive_and_impossible_ids_are_not() {
        assert!(is_alive(std::process::id()));
        assert!(!is_alive(0));
        assert!(!is_alive(u32::MAX));
        assert!(!is_alive(i32::MAX as u32 + 1));
    }

    #[test]
    fn parse_stat_handles_odd_command_names() {
        let line = "1234 (a) b) (c) S 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 987654 20 21";
        let stat = parse_stat(line).unwrap();
        assert_eq!(stat.state, 'S');
        assert_eq!(stat.start_time, 987654);
        assert!(parse_stat("garbage").is_none());
        assert!(parse_stat("1 (x) R 1 2").is_none());
    }

    #[test]
    fn exited_child_is_dead_even_before_it_is_reaped() {
        let mut child = Command::new("true")
            .stdout(Stdio::null())
            .spawn()
            .expect("spawn true");
        let id = ProcessId::of(child.id());
        // Wait (bounded) for it to exit; it stays a zombie until reaped below.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while is_alive(child.id()) {
            assert!(std::time::Instant::now() < deadline, "child never exited");
            std::thread::sleep(std::time::Duration::from_millis(2));
        }
        if let Some(id) = id {
            assert!(!id.is_alive());
        }
        child.wait().unwrap();
        assert!(!is_alive(child.id()));
    }

    #[test]
    fn identity_of_self_is_alive_and_a_changed_start_time_is_not() {
        let me = ProcessId::current();
        assert!(me.is_alive());
        assert_ne!(me.start_time, 0);
        let reused = ProcessId {
            start_time: me.start_time + 1,
            ..me
        };
        assert!(!reused.is_alive());
    }
}
