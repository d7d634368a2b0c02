//! Process ids: the caller's own (cached, so hot paths stay free of syscalls) and the
//! liveness and identity of another process.
//!
//! A process id alone does not identify a process for long: once a process dies and is
//! reaped, the kernel may hand its id to a new one. [`ProcessId`] therefore pairs the id
//! with the process's start time (field 22 of `/proc/PID/stat`, clock ticks since boot),
//! which together are unique for the life of the machine.
//!
//! # Process-id namespaces
//! A process id means something only inside one pid namespace: processes in two
//! containers that share `/dev/shm` may each have a process 7, and each sees the other's
//! process 7 as missing (or as some unrelated process of its own). fastipc therefore
//! records, next to every process id it acts on later (a mutex holder's identity, a
//! registry file), the recording process's pid namespace: the inode number of
//! `/proc/self/ns/pid` ([`pid_namespace`]). A recorded process is judged dead
//! ([`ProcessId::is_dead`], [`has_exited`]) only when its namespace is known and is the
//! caller's own. A record from another namespace, or one whose namespace is unknown —
//! written by a process that could not read `/proc/self/ns/pid`, or by a peer that
//! records none, such as the Python package, whose registry files are empty and whose
//! mutex holders leave only their process id — is never judged dead by what fastipc
//! does on its own: it neither takes such a holder's lock over nor, when it leaves a
//! named object, removes such a registration or the segment it protects. (Only an
//! explicit [sweep](crate::named::registry::Registry::sweep) judges the Python peer's
//! registrations, by process id in the sweeper's namespace, as the Python peer does.)

use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use rustix::io::Errno;
use rustix::process::{Pid, test_kill_process};

/// The cached id of this process; 0 until first asked.
static CACHED_PID: AtomicU32 = AtomicU32::new(0);

/// The cached pid namespace of this process: [`NS_UNREAD`] until first asked, then the
/// namespace's inode number, or 0 when it cannot be read.
static CACHED_PID_NS: AtomicU64 = AtomicU64::new(NS_UNREAD);
const NS_UNREAD: u64 = u64::MAX;

/// The id of the calling process, from a cache after the first call (no syscall).
///
/// A child made by `fork()` forgets the cache at once: the first fill registers a
/// `pthread_atfork` child handler that empties it (and the cached [`pid_namespace`]), so
/// the child's first call reads its own id. Checking the id on every call instead would
/// cost a `getpid` system call per lock (glibc no longer caches it). A child made by a
/// raw `clone` system call that bypasses the C library's `fork` (so runs no at-fork
/// handler) must call [`refresh_pid`] itself.
#[inline]
pub(crate) fn current_pid() -> u32 {
    match CACHED_PID.load(Ordering::Relaxed) {
        0 => refresh_pid(),
        pid => pid,
    }
}

/// Re-reads the id of the calling process into the cache of [`current_pid`] and returns
/// it; the cached [`pid_namespace`] is read again too (a child forked after
/// `unshare(CLONE_NEWPID)` lives in a new namespace). Not needed after `fork()` (see
/// [`current_pid`]).
pub(crate) fn refresh_pid() -> u32 {
    // Registered before the cache is filled, so any fork after a filled cache runs it.
    forget_pid_in_forked_children();
    let pid = current_pid_uncached();
    CACHED_PID.store(pid, Ordering::Relaxed);
    CACHED_PID_NS.store(NS_UNREAD, Ordering::Relaxed);
    pid
}

/// The process id, asked of the kernel (under Miri, which has no `getpid` with its
/// isolation on: a fixed stand-in, the process being alone there).
#[cfg(not(miri))]
fn current_pid_uncached() -> u32 {
    rustix::process::getpid().as_raw_nonzero().get() as u32
}

#[cfg(miri)]
fn current_pid_uncached() -> u32 {
    std::process::id()
}

/// Registers, once per process, the at-fork child handler that empties the caches.
#[cfg(not(miri))]
fn forget_pid_in_forked_children() {
    /// Runs in the child right after `fork()`: only two atomic stores, which are
    /// async-signal-safe.
    extern "C" fn in_child() {
        CACHED_PID.store(0, Ordering::Relaxed);
        CACHED_PID_NS.store(NS_UNREAD, Ordering::Relaxed);
    }
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // SAFETY: `pthread_atfork` only records the handler; `in_child` is a plain
        // `extern "C" fn()` that lives for the whole program and touches nothing but
        // two atomics (async-signal-safe, as a child handler of a multi-threaded
        // process must be). It fails only with ENOMEM, and then the child keeps the
        // parent's id until `refresh_pid`, as documented before this handler existed.
        let _ = unsafe { libc::pthread_atfork(None, None, Some(in_child)) };
    });
}

/// Miri runs no child processes: nothing to register.
#[cfg(miri)]
fn forget_pid_in_forked_children() {}

/// The pid namespace of the calling process: the inode number of `/proc/self/ns/pid`
/// (what `readlink` shows as `pid:[4026531836]`), cached after the first call. `None`
/// when it cannot be read (no `/proc`), in which case this process judges no recorded
/// process dead and records its own namespace as unknown (see the [module docs](self)).
///
/// The kernel numbers namespace inodes with 32 bits, so the value fits the 4-byte field
/// of a mutex header.
pub(crate) fn pid_namespace() -> Option<NonZeroU32> {
    let cached = match CACHED_PID_NS.load(Ordering::Relaxed) {
        NS_UNREAD => {
            let ino = read_pid_namespace();
            CACHED_PID_NS.store(u64::from(ino), Ordering::Relaxed);
            u64::from(ino)
        }
        ns => ns,
    };
    NonZeroU32::new(cached as u32)
}

/// The inode number of `/proc/self/ns/pid`, or 0 when it cannot be read.
#[cfg(not(miri))]
fn read_pid_namespace() -> u32 {
    rustix::fs::stat("/proc/self/ns/pid")
        .ok()
        .and_then(|st| u32::try_from(st.st_ino).ok())
        .unwrap_or(0)
}

/// Under Miri (no `/proc` with its isolation on): a fixed stand-in, [`MIRI_PID_NAMESPACE`].
#[cfg(miri)]
fn read_pid_namespace() -> u32 {
    MIRI_PID_NAMESPACE
}

/// The pid namespace a Miri run reports for itself (the number of the initial namespace
/// on most machines; Miri runs one process, so only its equality with itself matters).
#[cfg(miri)]
pub(crate) const MIRI_PID_NAMESPACE: u32 = 4_026_531_836;

/// [`pid_namespace`] as recorded in shared memory: 0 when unknown.
#[inline]
pub(crate) fn pid_namespace_word() -> u32 {
    pid_namespace().map_or(0, NonZeroU32::get)
}

/// Whether a process with id `pid` *of the caller's pid namespace* exists and has not
/// exited. To judge a process id recorded by another process, use [`has_exited`], which
/// also checks that the id belongs to this namespace.
///
/// A process that has exited but is not yet reaped by its parent (a zombie) counts as
/// dead: it will never release anything it held. Only a *whole* process counts, though:
/// `/proc/PID/stat` also shows the state `Z` when the main thread has exited while other
/// threads still run (`pthread_exit` in `main`), and such a process is alive. So a
/// process is dead when it is gone, or when its state is `Z` (or `X`) and it has at most
/// one thread left (field 20, `num_threads`). Id 0 and ids above `i32::MAX` are never
/// alive. A process we may not signal (`EPERM`) exists, so it is alive.
pub(crate) fn is_alive(pid: u32) -> bool {
    if cfg!(miri) {
        // Miri runs one process and has neither `kill` nor `/proc`: only it is alive.
        return pid == std::process::id();
    }
    let Some(p) = i32::try_from(pid).ok().and_then(Pid::from_raw) else {
        return false;
    };
    match test_kill_process(p) {
        Ok(()) | Err(Errno::PERM) => !matches!(read_stat(pid), Some(stat) if stat.has_exited()),
        Err(_) => false,
    }
}

/// What fastipc reads of `/proc/PID/stat`.
struct Stat {
    /// Field 3: the state of the main thread (`R`, `S`, `Z`, ...).
    state: char,
    /// Field 20: the number of threads in the process.
    num_threads: u64,
    /// Field 22: start time in clock ticks after boot.
    start_time: u64,
}

impl Stat {
    /// Whether the whole process has exited: its main thread is a zombie (or dead) and no
    /// other thread runs. A main thread that exited alone leaves state `Z` with
    /// `num_threads >= 2`: that process is alive.
    fn has_exited(&self) -> bool {
        matches!(self.state, 'Z' | 'X') && self.num_threads <= 1
    }
}

#[cfg(not(miri))]
fn read_stat(pid: u32) -> Option<Stat> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    parse_stat(&text)
}

/// Under Miri (which cannot read `/proc` under isolation): this process runs, with a
/// fixed start time; nothing can be told about any other.
#[cfg(miri)]
fn read_stat(pid: u32) -> Option<Stat> {
    (pid == current_pid()).then_some(Stat {
        state: 'R',
        num_threads: 1,
        start_time: 4242,
    })
}

/// Parses `/proc/PID/stat`. The command name (field 2) is in parentheses and may itself
/// contain spaces and parentheses, so fields are counted from the last `)`.
#[cfg_attr(miri, allow(dead_code))] // Miri reads no `/proc` (see `read_stat`).
fn parse_stat(text: &str) -> Option<Stat> {
    let rest = &text[text.rfind(')')? + 1..];
    let mut fields = rest.split_ascii_whitespace();
    // Fields 3 (state) .. 22 (starttime): state is the first after `)`.
    let state = fields.next()?.chars().next()?;
    let num_threads = fields.nth(16)?.parse().ok()?; // field 20
    let start_time = fields.nth(1)?.parse().ok()?; // field 22
    Some(Stat {
        state,
        num_threads,
        start_time,
    })
}

/// A process id paired with the process's start time and pid namespace: it names one
/// process for the whole life of the machine, even after its id is reused.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) struct ProcessId {
    /// The process id (in `pid_namespace`).
    pub pid: u32,
    /// Start time in clock ticks after boot (`/proc/PID/stat` field 22); 0 when unknown.
    pub start_time: u64,
    /// The pid namespace the id belongs to (see [`pid_namespace`]); 0 when unknown.
    pub pid_namespace: u32,
}

impl ProcessId {
    /// The identity of the calling process.
    pub(crate) fn current() -> ProcessId {
        ProcessId::of(current_pid()).unwrap_or(ProcessId {
            pid: current_pid(),
            start_time: 0,
            pid_namespace: pid_namespace_word(),
        })
    }

    /// The identity of the process `pid` of the caller's namespace, or `None` if there is
    /// none (or `/proc` cannot tell).
    pub(crate) fn of(pid: u32) -> Option<ProcessId> {
        let stat = read_stat(pid)?;
        Some(ProcessId {
            pid,
            start_time: stat.start_time,
            pid_namespace: pid_namespace_word(),
        })
    }

    /// Whether this very process (not merely one with the same id) has certainly exited:
    /// see [`has_exited`]. `false` means it may still run, including whenever its
    /// namespace is not the caller's or is unknown.
    pub(crate) fn is_dead(&self) -> bool {
        let start = match self.start_time {
            0 => StartTime::Unknown,
            t => StartTime::Full(t),
        };
        has_exited(self.pid, self.pid_namespace, start)
    }
}

/// What a record says about the start time of the process it names.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum StartTime {
    /// Not recorded: only the process id is compared.
    Unknown,
    /// The whole start time (clock ticks after boot).
    Full(u64),
    /// Its low 32 bits (as a mutex header records it).
    Low32(u32),
}

impl StartTime {
    fn matches(self, actual: u64) -> bool {
        match self {
            StartTime::Unknown => true,
            StartTime::Full(t) => t == actual,
            StartTime::Low32(t) => t == actual as u32,
        }
    }
}

/// Whether the process recorded as `pid` of pid namespace `pid_namespace`, started at
/// `start`, has certainly exited: the namespace is known and is the caller's own, and the
/// id names no live process ([`is_alive`]) or names one that started at another time (the
/// id was reused).
///
/// `false` whenever that cannot be established: the namespace is 0 (unknown), another
/// one, or the caller's cannot be read; or the process answers signals but `/proc` does
/// not show its start time (`hidepid`).
pub(crate) fn has_exited(pid: u32, pid_namespace: u32, start: StartTime) -> bool {
    match self::pid_namespace() {
        Some(mine) if mine.get() == pid_namespace => {}
        _ => return false,
    }
    if !is_alive(pid) {
        return true;
    }
    if start == StartTime::Unknown {
        return false;
    }
    match read_stat(pid) {
        Some(stat) => !start.matches(stat.start_time) || stat.has_exited(),
        None => false,
    }
}

/// Processes in known states for the tests of every module that judges liveness.
#[cfg(test)]
pub(crate) mod test_util {
    use std::io::{BufRead, BufReader};
    use std::process::{Child, Command, Stdio};
    use std::time::{Duration, Instant};

    use super::read_stat;

    /// An exited child that is not reaped: dead by every check, and its process id
    /// cannot be given to another process until this guard reaps it on drop (so a test
    /// never mistakes a new process for it).
    pub(crate) struct Zombie(Child);

    impl Zombie {
        /// Spawns `true` and waits (at most 10 s) until it has exited.
        pub(crate) fn new() -> Zombie {
            let child = Command::new("true")
                .stdout(Stdio::null())
                .spawn()
                .expect("spawn true");
            let zombie = Zombie(child);
            let deadline = Instant::now() + Duration::from_secs(10);
            while read_stat(zombie.pid()).is_none_or(|s| s.state != 'Z') {
                assert!(Instant::now() < deadline, "`true` never exited");
                std::thread::sleep(Duration::from_millis(2));
            }
            zombie
        }

        /// Its process id.
        pub(crate) fn pid(&self) -> u32 {
            self.0.id()
        }
    }

    impl Drop for Zombie {
        fn drop(&mut self) {
            let _ = self.0.wait();
        }
    }

    /// The interpreter for the helper scripts: `$FASTIPC_PYTHON`, else `python3`.
    fn python() -> std::ffi::OsString {
        std::env::var_os("FASTIPC_PYTHON").unwrap_or_else(|| "python3".into())
    }

    /// A live process whose main thread has exited (`pthread_exit`) while another thread
    /// runs on: `/proc/PID/stat` shows it as `Z`, yet it is alive. Killed and reaped on
    /// drop.
    pub(crate) struct LeaderExited(Child);

    impl LeaderExited {
        /// Runs the Python statements `setup` (which may use `os`, `mmap` and `struct`),
        /// then starts a thread that sleeps for a minute and ends the main thread. Returns
        /// once the main thread has exited and the other one still runs (at most 20 s).
        pub(crate) fn spawn(setup: &str) -> LeaderExited {
            let script = format!(
                "import ctypes, mmap, os, struct, threading, time\n\
                 {setup}\n\
                 threading.Thread(target=lambda: time.sleep(60)).start()\n\
                 print('ready', flush=True)\n\
                 ctypes.CDLL(None).pthread_exit(None)\n"
            );
            let mut child = Command::new(python())
                .args(["-c", &script])
                .stdout(Stdio::piped())
                .spawn()
                .expect("spawn python3 (a prerequisite of the tests)");
            let stdout = child.stdout.take().expect("piped stdout");
            let guard = LeaderExited(child);
            let mut line = String::new();
            BufReader::new(stdout)
                .read_line(&mut line)
                .expect("read the helper's stdout");
            assert_eq!(line.trim(), "ready", "the helper script failed");
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                let stat = read_stat(guard.pid()).expect("the helper process is gone");
                if stat.state == 'Z' {
                    assert!(stat.num_threads >= 2, "the helper's other thread ended");
                    return guard;
                }
                assert!(Instant::now() < deadline, "the main thread never exited");
                std::thread::sleep(Duration::from_millis(2));
            }
        }

        /// Its process id.
        pub(crate) fn pid(&self) -> u32 {
            self.0.id()
        }

        /// Whether its other thread still runs (so the process is alive).
        pub(crate) fn still_runs(&self) -> bool {
            read_stat(self.pid()).is_some_and(|s| s.num_threads >= 2)
        }
    }

    impl Drop for LeaderExited {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::test_util::{LeaderExited, Zombie};
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
        assert_eq!(stat.num_threads, 17);
        assert_eq!(stat.start_time, 987654);
        assert!(!stat.has_exited());
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
            assert!(id.is_dead());
            child.wait().unwrap();
            // Reaped: the id may now go to another process, but not with this start time.
            assert!(id.is_dead());
        } else {
            child.wait().unwrap();
        }
    }

    #[test]
    fn a_process_whose_main_thread_exited_while_another_runs_is_alive() {
        let proc = LeaderExited::spawn("");
        let pid = proc.pid();
        assert_eq!(read_stat(pid).unwrap().state, 'Z', "the main thread exited");
        assert!(is_alive(pid), "its other thread still runs");
        let id = ProcessId::of(pid).unwrap();
        assert!(!id.is_dead());
        assert!(proc.still_runs());
    }

    #[test]
    fn a_zombie_is_dead() {
        let zombie = Zombie::new();
        assert!(!is_alive(zombie.pid()));
        let id = ProcessId::of(zombie.pid()).expect("a zombie's stat is readable");
        assert!(id.is_dead());
        assert!(has_exited(
            zombie.pid(),
            pid_namespace_word(),
            StartTime::Low32(id.start_time as u32)
        ));
    }

    #[test]
    fn a_process_of_another_or_an_unknown_namespace_is_never_dead() {
        let zombie = Zombie::new();
        let ns = pid_namespace()
            .expect("/proc/self/ns/pid is readable here")
            .get();
        let id = ProcessId::of(zombie.pid()).unwrap();
        assert_eq!(id.pid_namespace, ns);
        assert!(id.is_dead());
        for other in [0, ns ^ 1, ns.wrapping_add(1)] {
            let elsewhere = ProcessId {
                pid_namespace: other,
                ..id
            };
            assert!(!elsewhere.is_dead(), "namespace {other} judged");
            assert!(!has_exited(zombie.pid(), other, StartTime::Unknown));
        }
        // A process id that names nobody here: dead only in our own namespace.
        let gone = i32::MAX as u32;
        assert!(has_exited(gone, ns, StartTime::Unknown));
        assert!(!has_exited(gone, ns ^ 1, StartTime::Unknown));
        assert!(!has_exited(gone, 0, StartTime::Unknown));
    }

    #[test]
    fn the_pid_namespace_is_the_inode_of_proc_self_ns_pid() {
        let link = std::fs::read_link("/proc/self/ns/pid").unwrap();
        let ns = pid_namespace().unwrap();
        assert_eq!(link.to_str().unwrap(), format!("pid:[{ns}]"));
        assert_eq!(refresh_pid(), std::process::id());
        assert_eq!(pid_namespace(), Some(ns));
    }

    #[test]
    fn identity_of_self_is_alive_and_a_changed_start_time_is_not() {
        let me = ProcessId::current();
        assert!(!me.is_dead());
        assert_ne!(me.start_time, 0);
        assert_ne!(me.pid_namespace, 0);
        let reused = ProcessId {
            start_time: me.start_time + 1,
            ..me
        };
        assert!(reused.is_dead());
    }
}
