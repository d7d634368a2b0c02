//! The attachment registry: which processes use which named segment, so that the last
//! one to leave removes it — the protocol of the Python package's `GuardedSharedMemory`.
//!
//! # On disk
//! - Root: `$FASTIPC_PID_DIR`, default [`DEFAULT_PID_DIR`] (`/dev/shm/fastipc`).
//! - One folder per segment: `<root>/<segment name>.pids/`.
//! - One file per attached process, named after its process id. The Python peer leaves it
//!   empty (and ignores what is in it); fastipc writes two decimal numbers separated by a
//!   space and ended by a newline: the process's start time (clock ticks after boot), to
//!   tell a live process from a reused id, and its pid namespace (the inode number of
//!   `/proc/self/ns/pid`, 0 when unknown), to know where the id means something.
//!
//! # What is planted there
//! The registry lives in a shared place (`/dev/shm`), so nothing in it is trusted
//! (`folder` has the file operations):
//! - the root and the folders are opened without following a link in their last
//!   component and must be directories owned by this user or root (any owner once
//!   [sharing](Registry::with_share_mode) is on), else [`NamedError::UnsafeRegistry`];
//! - a pid file is created with `O_CREAT | O_EXCL | O_NOFOLLOW` relative to the opened
//!   folder, after unlinking whatever had its name: never written through a link;
//! - an entry is read only when it is a regular file of at most 4096 bytes, opened with
//!   `O_NOFOLLOW | O_NONBLOCK`: a FIFO, device, link or huge file is skipped and
//!   reported ([`Registry::entries`], [`SweepReport::skipped`]), never waited on, so no
//!   operation blocks beyond the lock timeout below whatever the folder holds;
//! - what fastipc makes is owner-only (`0700` folders, `0600` files) whatever the umask,
//!   unless sharing is asked for ([`Registry::with_share_mode`], `$FASTIPC_SHARE_MODE`).
//!
//! # Protocol
//! - **attach**: create the folder, create this process's file, then open or create the
//!   segment. (The Python peer opens first and registers after; registering first closes
//!   the window in which a leaving process could see nobody and remove the segment.)
//! - **detach**: remove this process's file and those of processes that are certainly
//!   dead; if no other registered process may still be alive, unlink the segment and
//!   remove the folder.
//!
//! A process that opens one segment several times (several handles) registers once and
//! leaves when its last handle does. fastipc processes also hold an advisory lock
//! (`flock`) on the folder while they attach, detach or sweep, so two fastipc processes
//! never race each other; the Python peer takes no lock, so a Python process leaving at
//! the very moment another one attaches can still remove a segment in use (the peer's
//! own protocol allows it).
//!
//! The lock is held for microseconds, but a process stopped (`SIGSTOP`, a debugger) or
//! hung while it holds it would hold it indefinitely, so nobody waits for it without
//! bound: attempts that do not block are retried with a growing pause (up to 10 ms) until
//! the registry's [lock timeout](Registry::with_lock_timeout) ([`DEFAULT_LOCK_TIMEOUT`],
//! 5 s) has passed, then the operation fails with [`NamedError::RegistryBusy`]. Opening
//! a named object then fails; closing one (or dropping it) gives up leaving the registry
//! and keeps this process's file, which goes once this process has exited (any later
//! detach or [`Registry::sweep`] removes a dead process's file); a sweep reports the
//! folder among its errors and moves on.
//!
//! # Who is dead
//! A process id means something only in one pid namespace (see
//! the crate's internal `sys::process`). A fastipc file records the namespace; a Python file does
//! not. So:
//! - A file recording the caller's own namespace is judged exactly (`process::has_exited`):
//!   dead when its process has exited (zombies included, but not a process whose main
//!   thread alone exited) or its id now names a process that started at another time.
//! - A file recording another namespace (containers sharing `/dev/shm`) is never judged
//!   dead: its id means nothing here.
//! - A file recording no namespace (every file the Python peer writes) is judged by its
//!   process id in the caller's namespace only by [`Registry::sweep`], an explicit
//!   clean-up, which so applies the Python peer's own rule (run it from the namespace of
//!   the Python processes). Leaving (detach, close, drop) never removes such a file, nor
//!   unlinks a segment while one is there: a crashed Python process's segment stays until
//!   a Python peer closes the object (the peer removes files by process id) or a sweep
//!   runs.

mod entries;
mod folder;
mod lock;

use std::fs as stdfs;
use std::io;
use std::os::fd::{AsFd, OwnedFd};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rustix::fs::{self, FlockOperation};
use rustix::io::Errno;

use crate::error::{NamedError, ShmError};
use crate::sys::clock::Deadline;
use crate::sys::process::{self, ProcessId};
use crate::sys::shm::Segment;

use entries::read_pid_entries;
pub use entries::{AttachedPid, DeadEntry, Entries, InUse, SweepReport};
use folder::Perms;
pub use folder::Skipped;
pub(crate) use lock::DirLock;
use lock::{local_handles, release_local};

/// The registry root when `$FASTIPC_PID_DIR` is not set (the Python peer's default).
pub const DEFAULT_PID_DIR: &str = "/dev/shm/fastipc";
/// The environment variable that moves the registry root.
pub const PID_DIR_ENV: &str = "FASTIPC_PID_DIR";
/// The environment variable that turns sharing on (see [`Registry::with_share_mode`]): the
/// permission bits, in octal, that registry files and the named objects' segments get,
/// e.g. `660` to share with the group, `666` with every user.
pub const SHARE_MODE_ENV: &str = "FASTIPC_SHARE_MODE";
/// The suffix of a segment's folder in the registry.
pub const PIDS_SUFFIX: &str = ".pids";

/// How many times an operation retries when the folder it locked was removed meanwhile.
const RETRIES: usize = 100;

/// How long a registry operation waits for another process's lock on a folder before it
/// fails with [`NamedError::RegistryBusy`], unless [`Registry::with_lock_timeout`] says
/// otherwise.
pub const DEFAULT_LOCK_TIMEOUT: Duration = Duration::from_secs(5);

/// The longest pause between two attempts to take a folder's lock.
pub(super) const MAX_LOCK_BACKOFF: Duration = Duration::from_millis(10);

/// An attachment registry rooted at one directory.
///
/// ```
/// use fastipc::named::registry::Registry;
/// let dir = std::env::temp_dir().join(format!("fastipc-doc-registry-{}", std::process::id()));
/// let registry = Registry::at(&dir);
/// let attachment = registry.attach("some-segment")?;
/// let pids: Vec<u32> = registry.attached("some-segment")?.iter().map(|a| a.pid).collect();
/// assert_eq!(pids, [std::process::id()]);
/// attachment.detach()?; // last one out: the folder goes (the segment did not exist)
/// assert!(registry.attached("some-segment")?.is_empty());
/// # std::fs::remove_dir_all(&dir).ok();
/// # Ok::<(), fastipc::NamedError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Registry {
    root: PathBuf,
    lock_timeout: Duration,
    share_mode: Option<u32>,
}

impl Default for Registry {
    fn default() -> Self {
        Registry::from_env()
    }
}

impl Registry {
    /// The registry the Python peer uses: `$FASTIPC_PID_DIR`, else
    /// [`DEFAULT_PID_DIR`]; shared as `$FASTIPC_SHARE_MODE` says (see
    /// [`Registry::with_share_mode`]; a value that is not an octal mode is ignored and
    /// the registry stays owner-only).
    pub fn from_env() -> Registry {
        let registry = match std::env::var_os(PID_DIR_ENV) {
            Some(root) => Registry::at(root),
            None => Registry::at(DEFAULT_PID_DIR),
        };
        registry.with_share_mode(share_mode_from_env())
    }

    /// A registry rooted at `root` (for tests, or to keep a group of processes apart;
    /// Python peers must then run with `FASTIPC_PID_DIR` set to the same directory).
    ///
    /// A relative `root` is made absolute here, against the current directory of this
    /// moment, so that a later `chdir` does not move the registry under open handles
    /// (which would then leave from, or remove segments according to, another folder). If
    /// the current directory cannot be read, `root` is kept as given.
    ///
    /// ```
    /// use fastipc::named::registry::Registry;
    /// let registry = Registry::at("pids");
    /// assert_eq!(registry.root(), std::env::current_dir()?.join("pids"));
    /// # Ok::<(), std::io::Error>(())
    /// ```
    pub fn at(root: impl Into<PathBuf>) -> Registry {
        let root = root.into();
        Registry {
            root: std::path::absolute(&root).unwrap_or(root),
            lock_timeout: DEFAULT_LOCK_TIMEOUT,
            share_mode: None,
        }
    }

    /// The same registry, shared between users or not.
    ///
    /// `None` (the default): the registry's root, folders and pid files are made
    /// owner-only (`0700`/`0600`, whatever the umask), and a folder owned by another user
    /// than this one or root is refused ([`NamedError::UnsafeRegistry`]).
    ///
    /// `Some(mode)`: files get the permission bits `mode` (`0o600` always added, bits
    /// outside `0o666` dropped) and folders the same with search permission wherever
    /// they can be read (`0o660` → folders `0o770`); folders owned by other users are
    /// accepted (the deployment trusts the users it shares with); the named objects'
    /// segments are created with `mode` too. A pid file is still never written through a
    /// link. Sharing with a group also needs the group on the files: run the processes
    /// with that group as their effective group, or make the root folder set-group-id
    /// (`chmod g+s`), so that what is made in it inherits its group.
    pub fn with_share_mode(self, mode: Option<u32>) -> Registry {
        Registry {
            share_mode: mode.map(|m| (m & 0o666) | 0o600),
            ..self
        }
    }

    /// The share mode (see [`Registry::with_share_mode`]).
    pub fn share_mode(&self) -> Option<u32> {
        self.share_mode
    }

    fn perms(&self) -> Perms {
        Perms {
            share: self.share_mode,
        }
    }

    /// The same registry with another lock timeout: how long an operation waits for a
    /// folder another process has locked before it fails with
    /// [`NamedError::RegistryBusy`] (see the [module docs](self)). The default is
    /// [`DEFAULT_LOCK_TIMEOUT`].
    pub fn with_lock_timeout(self, timeout: Duration) -> Registry {
        Registry {
            lock_timeout: timeout,
            ..self
        }
    }

    /// The lock timeout (see [`Registry::with_lock_timeout`]).
    pub fn lock_timeout(&self) -> Duration {
        self.lock_timeout
    }

    /// The root directory (absolute, see [`Registry::at`]).
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// The folder of `segment`: `<root>/<segment>.pids`.
    pub fn pids_dir(&self, segment: &str) -> PathBuf {
        self.root.join(format!("{segment}{PIDS_SUFFIX}"))
    }

    /// The processes registered as attached to `segment`, dead or alive, by process id.
    /// Empty when the segment has no folder.
    pub fn attached(&self, segment: &str) -> Result<Vec<AttachedPid>, NamedError> {
        Ok(self.entries(segment)?.attached)
    }

    /// What the folder of `segment` holds: the registered processes (as
    /// [`Registry::attached`]) and the entries named like a process id that are not read
    /// as registrations (links, FIFOs and other non-regular files, files larger than a
    /// pid file), which no registry operation reads, follows or waits on.
    pub fn entries(&self, segment: &str) -> Result<Entries, NamedError> {
        let path = self.pids_dir(segment);
        let Some(root) = self.open_root(false)? else {
            return Ok(Entries::default());
        };
        let Some(dir) = folder::open_dir(
            Some(root.as_fd()),
            Path::new(&folder_name(segment)),
            &path,
            false,
            self.perms(),
        )?
        else {
            return Ok(Entries::default());
        };
        let mut entries = read_pid_entries(&dir, &path)?;
        entries.attached.sort_by_key(|a| a.pid);
        Ok(entries)
    }

    /// Registers this process as attached to `segment` (the segment itself is not
    /// touched). Registering a segment this process already registered only counts one
    /// more handle.
    pub fn attach(&self, segment: &str) -> Result<Attachment, NamedError> {
        let mut lock = self.lock_dir(segment)?;
        self.register(&mut lock)?;
        Ok(Attachment {
            registry: self.clone(),
            segment: segment.to_owned(),
            active: true,
        })
    }

    /// Removes the registrations of dead processes, and the segments of
    /// [`SWEEP_PREFIXES`](super::SWEEP_PREFIXES) (the sync objects and shared cells) that
    /// no live process is registered for, with their folders. With `dry_run`, only
    /// reports what it would do. Segments of other kinds keep their data (a Python
    /// `NamedHistoryBuffer` is meant to outlive its processes): only their dead
    /// registrations go.
    ///
    /// A registration is dead as [`AttachedPid::alive`] says: a file of this process's
    /// pid namespace when its process has exited; a Python peer's file (no namespace
    /// recorded) when no process with its id runs in this namespace — so sweep from the
    /// namespace the Python processes run in; a file of another namespace never (it is
    /// reported in [`InUse::unverifiable`]).
    ///
    /// Only folders under this registry's root are looked at: a segment registered under
    /// another root, or under none, is left alone.
    pub fn sweep(&self, dry_run: bool) -> Result<SweepReport, NamedError> {
        let mut report = SweepReport {
            dry_run,
            ..SweepReport::default()
        };
        let Some(root) = self.open_root(false)? else {
            return Ok(report);
        };
        // Every `*.pids` entry: one that is not a directory is refused (and reported) when
        // its segment is swept.
        let mut segments: Vec<String> = folder::entry_names(&root, &self.root)?
            .into_iter()
            .filter_map(|name| Some(name.strip_suffix(PIDS_SUFFIX)?.to_owned()))
            .filter(|segment| !segment.is_empty())
            .collect();
        segments.sort();
        for segment in segments {
            if let Err(e) = self.sweep_one(&segment, &mut report) {
                report.errors.push(e.to_string());
            }
        }
        Ok(report)
    }

    fn sweep_one(&self, segment: &str, report: &mut SweepReport) -> Result<(), NamedError> {
        let Some(lock) = self.lock_existing_dir(segment)? else {
            return Ok(());
        };
        let mut live = Vec::new();
        let mut unverifiable = Vec::new();
        let entries = read_pid_entries(&lock.fd, &lock.path)?;
        report.skipped.extend(entries.skipped);
        for entry in entries.attached {
            if entry.alive {
                live.push(entry.pid);
                if entry.pid_namespace.is_some() && !entry.is_verifiable() {
                    unverifiable.push(entry.pid);
                }
                continue;
            }
            report.dead_entries.push(DeadEntry {
                segment: segment.to_owned(),
                pid: entry.pid,
            });
            if !report.dry_run {
                folder::remove_entry(&lock.fd, &lock.path, &entry.pid.to_string())?;
            }
        }
        if !live.is_empty() {
            live.sort_unstable();
            unverifiable.sort_unstable();
            report.in_use.push(InUse {
                segment: segment.to_owned(),
                pids: live,
                unverifiable,
            });
            return Ok(());
        }
        let ours = super::SWEEP_PREFIXES.iter().any(|p| segment.starts_with(p));
        let exists = Segment::exists(segment);
        if exists && !ours {
            return Ok(());
        }
        if exists {
            report.removed_segments.push(segment.to_owned());
            if !report.dry_run {
                unlink_segment(segment)?;
            }
        }
        report.removed_dirs.push(lock.path.clone());
        if !report.dry_run {
            self.remove_dir(&lock)?;
        }
        Ok(())
    }

    /// Locks (creating it if needed) the folder of `segment`, waiting at most the lock
    /// timeout for another process's lock.
    pub(crate) fn lock_dir(&self, segment: &str) -> Result<DirLock, NamedError> {
        let path = self.pids_dir(segment);
        let deadline = Deadline::after(self.lock_timeout);
        for _ in 0..RETRIES {
            let Some(root) = self.open_root(true)? else {
                continue;
            };
            let Some(fd) = self.open_folder(&root, segment, true)? else {
                continue;
            };
            let lock = DirLock::new(root, fd, segment, path.clone());
            if let Some(lock) = lock.acquire(deadline, self.lock_timeout)? {
                return Ok(lock);
            }
        }
        Err(registry_error(
            &path,
            "lock",
            io::Error::other("the folder kept being removed"),
        ))
    }

    /// Locks the folder of `segment` if it exists.
    pub(crate) fn lock_existing_dir(&self, segment: &str) -> Result<Option<DirLock>, NamedError> {
        let Some(root) = self.open_root(false)? else {
            return Ok(None);
        };
        let Some(fd) = self.open_folder(&root, segment, false)? else {
            return Ok(None);
        };
        let lock = DirLock::new(root, fd, segment, self.pids_dir(segment));
        lock.acquire(Deadline::after(self.lock_timeout), self.lock_timeout)
    }

    /// Opens (creating it and its parents first, when `create` says so) the root, never
    /// through a link in its last component, and checks who owns it.
    fn open_root(&self, create: bool) -> Result<Option<OwnedFd>, NamedError> {
        if create && let Some(parent) = self.root.parent() {
            stdfs::create_dir_all(parent).map_err(|e| registry_error(parent, "mkdir", e))?;
        }
        folder::open_dir(None, &self.root, &self.root, create, self.perms())
    }

    /// Opens (creating it first, when `create` says so) the folder of `segment` in the
    /// opened root, never through a link, and checks who owns it.
    fn open_folder(
        &self,
        root: &OwnedFd,
        segment: &str,
        create: bool,
    ) -> Result<Option<OwnedFd>, NamedError> {
        let name = folder_name(segment);
        let path = self.pids_dir(segment);
        folder::open_dir(
            Some(root.as_fd()),
            Path::new(&name),
            &path,
            create,
            self.perms(),
        )
    }

    /// Writes this process's file (once per process) and counts one more handle.
    pub(crate) fn register(&self, lock: &mut DirLock) -> Result<(), NamedError> {
        let mut handles = local_handles();
        let count = handles.entry(lock.path.clone()).or_insert(0);
        let own = process::current_pid().to_string();
        if *count == 0 || !own_file_is_there(lock, &own) {
            let me = ProcessId::current();
            let content = format!("{} {}\n", me.start_time, me.pid_namespace);
            // A Python peer takes no lock: leaving last, it may remove the folder between
            // our lock and this write. Make the folder again and retry (bounded).
            let mut attempt = 0;
            loop {
                match folder::create_pid_file(&lock.fd, &own, &content, self.perms()) {
                    Ok(()) => break,
                    Err(Errno::NOENT) if attempt < RETRIES => {
                        attempt += 1;
                        if let Some(fd) = self.open_folder(&lock.root, &lock.segment, true)? {
                            // Lock the new folder too if nobody else has (no wait: the
                            // old one is still ours and holds off other fastipc processes
                            // that opened it; the new one is seconds old).
                            let _ = fs::flock(&fd, FlockOperation::NonBlockingLockExclusive);
                            lock.fd = fd;
                        }
                    }
                    Err(e) => {
                        return Err(registry_errno(&lock.path.join(&own), "create pid file", e));
                    }
                }
            }
        }
        *count += 1;
        Ok(())
    }

    /// Counts one handle less; when it was this process's last, removes its file and
    /// the files of processes that are certainly dead. Returns whether another process
    /// that may be alive remains registered (always `true` while this process keeps other
    /// handles, and while a file this process cannot judge is there).
    pub(crate) fn unregister(&self, lock: &DirLock) -> Result<bool, NamedError> {
        if !release_local(&lock.path) {
            return Ok(true);
        }
        folder::remove_entry(&lock.fd, &lock.path, &process::current_pid().to_string())?;
        let mut others = false;
        // Skipped entries (links, FIFOs, ...) are no registrations: they keep nobody.
        for entry in read_pid_entries(&lock.fd, &lock.path)?.attached {
            if entry.is_certainly_dead() {
                folder::remove_entry(&lock.fd, &lock.path, &entry.pid.to_string())?;
            } else {
                // Alive, or not judged from here: it may use the segment.
                others = true;
            }
        }
        Ok(others)
    }

    /// Removes a folder nobody is registered in any more.
    pub(crate) fn remove_dir(&self, lock: &DirLock) -> Result<(), NamedError> {
        folder::remove_dir(&lock.root, &lock.path, &lock.segment_folder())
    }
}

/// This process's registration for one segment (one handle). Dropping it detaches
/// (ignoring errors); [`Attachment::detach`] reports them.
#[derive(Debug)]
pub struct Attachment {
    registry: Registry,
    segment: String,
    active: bool,
}

impl Attachment {
    /// The segment this attachment registers.
    pub fn segment(&self) -> &str {
        &self.segment
    }

    /// The registry it lives in.
    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// Ends this handle's registration; when no other live process remains registered,
    /// unlinks the segment and removes the folder (last one out).
    pub fn detach(mut self) -> Result<Detached, NamedError> {
        self.detach_with(|| true)
    }

    /// Detaches; `is_ours` says whether the segment under the name is the one this
    /// handle used (it is not unlinked otherwise).
    pub(crate) fn detach_with(
        &mut self,
        is_ours: impl FnOnce() -> bool,
    ) -> Result<Detached, NamedError> {
        if !std::mem::replace(&mut self.active, false) {
            return Ok(Detached { unlinked: false });
        }
        let lock = self
            .registry
            .lock_existing_dir(&self.segment)
            .inspect_err(|_| self.give_up())?;
        let others = match &lock {
            Some(lock) => self.registry.unregister(lock)?,
            // The folder is gone (removed by hand): nobody is registered, but other
            // handles of this process may still use the segment.
            None => !release_local(&self.registry.pids_dir(&self.segment)),
        };
        if others {
            return Ok(Detached { unlinked: false });
        }
        let unlinked = is_ours() && Segment::exists(&self.segment);
        if unlinked {
            unlink_segment(&self.segment)?;
        }
        if let Some(lock) = &lock {
            self.registry.remove_dir(lock)?;
        }
        Ok(Detached { unlinked })
    }

    /// Ends this handle's registration without removing the segment, even when no one
    /// else is registered (for a segment this process found unusable).
    pub(crate) fn abandon(&mut self) -> Result<(), NamedError> {
        if !std::mem::replace(&mut self.active, false) {
            return Ok(());
        }
        let lock = self
            .registry
            .lock_existing_dir(&self.segment)
            .inspect_err(|_| self.give_up())?;
        if let Some(lock) = lock {
            let others = self.registry.unregister(&lock)?;
            if !others {
                // Leaves the folder if someone else's files are in it.
                let _ = self.registry.remove_dir(&lock);
            }
        }
        Ok(())
    }

    /// Leaves without the folder's lock (another process holds it too long): counts this
    /// handle out, so that the process's other handles keep counting right, and leaves
    /// its file in place. The file goes once this process has exited (the next detach or
    /// sweep removes a dead process's file); until then others count it as attached.
    fn give_up(&self) {
        release_local(&self.registry.pids_dir(&self.segment));
    }

    /// Wraps a registration made under `lock` by [`Registry::register`].
    pub(crate) fn registered(registry: &Registry, segment: &str) -> Attachment {
        Attachment {
            registry: registry.clone(),
            segment: segment.to_owned(),
            active: true,
        }
    }
}

impl Drop for Attachment {
    fn drop(&mut self) {
        let _ = self.detach_with(|| true);
    }
}

/// What [`Attachment::detach`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Detached {
    /// Whether this was the last live process and the segment was unlinked.
    pub unlinked: bool,
}

/// The folder name of `segment` in the root: `<segment>.pids`.
pub(super) fn folder_name(segment: &str) -> String {
    format!("{segment}{PIDS_SUFFIX}")
}

/// Whether this process's pid file is in the locked folder (a regular file).
fn own_file_is_there(lock: &DirLock, own: &str) -> bool {
    fs::statat(&lock.fd, own, fs::AtFlags::SYMLINK_NOFOLLOW)
        .is_ok_and(|st| fs::FileType::from_raw_mode(st.st_mode) == fs::FileType::RegularFile)
}

/// The share mode `$FASTIPC_SHARE_MODE` asks for: octal permission bits (`660`, `0o666`);
/// `None` when unset or not an octal mode.
fn share_mode_from_env() -> Option<u32> {
    parse_share_mode(&std::env::var(SHARE_MODE_ENV).ok()?)
}

/// An octal mode (`660`, `0660`, `0o660`) of at most `0o777`.
fn parse_share_mode(value: &str) -> Option<u32> {
    let digits = value.trim();
    let digits = digits.strip_prefix("0o").unwrap_or(digits);
    u32::from_str_radix(digits, 8).ok().filter(|m| *m <= 0o777)
}

fn unlink_segment(segment: &str) -> Result<(), NamedError> {
    match Segment::unlink(segment) {
        Ok(()) | Err(ShmError::NotFound { .. }) => Ok(()),
        Err(e) => Err(e.into()),
    }
}

fn registry_error(path: &Path, op: &'static str, source: io::Error) -> NamedError {
    NamedError::Registry {
        path: path.to_owned(),
        op,
        source,
    }
}

pub(super) fn registry_errno(path: &Path, op: &'static str, e: Errno) -> NamedError {
    registry_error(path, op, io::Error::from_raw_os_error(e.raw_os_error()))
}

#[cfg(test)]
mod tests;
