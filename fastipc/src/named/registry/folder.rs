//! The registry's file operations, made so that nothing planted in a registry folder can
//! redirect a write or block a reader: folders are opened without following a symbolic
//! link and checked (a directory, owned by this user or root unless sharing is on), pid
//! files are created relative to the opened folder with `O_NOFOLLOW | O_EXCL`, and
//! entries are read only when they are small regular files, opened `O_NONBLOCK`.

use std::ffi::CStr;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{BorrowedFd, OwnedFd};
use std::path::{Path, PathBuf};

use rustix::fs::{self, AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;

use crate::error::NamedError;

/// The largest pid file read: fastipc writes about 30 bytes, the Python peer none. A
/// bigger file is not a registration (it is skipped and reported).
const MAX_PID_FILE_LEN: u64 = 4096;

/// What a pid file may hold that is read (the rest of a file up to
/// [`MAX_PID_FILE_LEN`] is ignored).
const PID_FILE_READ: u64 = 128;

/// The permission bits of registry files: owner-only, or a sharing mode asked for
/// explicitly (see [`super::Registry::with_share_mode`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(super) struct Perms {
    /// The share mode (permission bits of files, `0o600` added), if any.
    pub(super) share: Option<u32>,
}

impl Perms {
    /// The mode of a pid file: `0600`, or the share mode.
    fn file(self) -> Mode {
        Mode::from_raw_mode(self.share.map_or(0o600, |m| (m & 0o666) | 0o600))
    }

    /// The mode of a folder: the file mode with search (`x`) wherever it can read.
    fn dir(self) -> Mode {
        let f = self.file().as_raw_mode();
        Mode::from_raw_mode(f | ((f & 0o444) >> 2))
    }
}

fn unsafe_folder(path: &Path, reason: String) -> NamedError {
    NamedError::UnsafeRegistry {
        path: path.to_owned(),
        reason,
    }
}

fn os_error(path: &Path, op: &'static str, e: Errno) -> NamedError {
    NamedError::Registry {
        path: path.to_owned(),
        op,
        source: io::Error::from_raw_os_error(e.raw_os_error()),
    }
}

/// Opens the directory `name` relative to `at` (or the path itself when `at` is `None`)
/// without following a link in its last component, creating it first with `perms` when
/// `create` says so, and checks it. `None` when it does not exist and `create` is off.
pub(super) fn open_dir(
    at: Option<BorrowedFd<'_>>,
    name: &Path,
    path: &Path,
    create: bool,
    perms: Perms,
) -> Result<Option<OwnedFd>, NamedError> {
    let at = at.unwrap_or(fs::CWD);
    let mut made = false;
    if create {
        match fs::mkdirat(at, name, perms.dir()) {
            Ok(()) => made = true,
            Err(Errno::EXIST) => {}
            Err(e) => return Err(os_error(path, "mkdir", e)),
        }
    }
    let flags = OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::RDONLY | OFlags::CLOEXEC;
    let fd = match fs::openat(at, name, flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::NOENT) => return Ok(None),
        // O_DIRECTORY | O_NOFOLLOW on a link fails with ENOTDIR or ELOOP: tell which.
        Err(Errno::LOOP | Errno::NOTDIR) => {
            let link = fs::statat(at, name, AtFlags::SYMLINK_NOFOLLOW)
                .is_ok_and(|st| FileType::from_raw_mode(st.st_mode) == FileType::Symlink);
            return Err(unsafe_folder(
                path,
                if link {
                    "is a symbolic link, which the registry never follows".into()
                } else {
                    "is not a directory".into()
                },
            ));
        }
        Err(e) => return Err(os_error(path, "open", e)),
    };
    check_owner(&fd, path, perms)?;
    if made {
        // mkdir honours the umask: give the folder exactly its mode.
        fs::fchmod(&fd, perms.dir()).map_err(|e| os_error(path, "chmod", e))?;
    }
    Ok(Some(fd))
}

/// Refuses a folder owned by another user than this one or root, unless sharing is on
/// (then the deployment trusts the users it shares with).
fn check_owner(fd: &OwnedFd, path: &Path, perms: Perms) -> Result<(), NamedError> {
    let st = fs::fstat(fd).map_err(|e| os_error(path, "fstat", e))?;
    if FileType::from_raw_mode(st.st_mode) != FileType::Directory {
        return Err(unsafe_folder(path, "is not a directory".into()));
    }
    let me = rustix::process::geteuid().as_raw();
    if perms.share.is_none() && st.st_uid != me && st.st_uid != 0 {
        return Err(unsafe_folder(
            path,
            format!(
                "is owned by uid {}, not by this user (uid {me}) or root; set {} to share \
                 registry folders between users",
                st.st_uid,
                super::SHARE_MODE_ENV
            ),
        ));
    }
    Ok(())
}

/// Creates (or replaces) the pid file `name` in the folder `dir` with `content`, never
/// through a link: `O_CREAT | O_EXCL | O_NOFOLLOW` relative to the folder, so that an
/// entry planted under the name (a link, a FIFO, a file) is removed and a new file made
/// in its place. `Errno::NOENT` when the folder was removed meanwhile.
pub(super) fn create_pid_file(
    dir: &OwnedFd,
    name: &str,
    content: &str,
    perms: Perms,
) -> Result<(), Errno> {
    let flags = OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::WRONLY | OFlags::CLOEXEC;
    let mut replaced = false;
    let fd = loop {
        match fs::openat(dir, name, flags, perms.file()) {
            Ok(fd) => break fd,
            // Our own stale file (a handle that gave up, a previous process with our
            // id), or something planted: remove the entry (unlink never follows a link)
            // and create ours, once.
            Err(Errno::EXIST) if !replaced => {
                replaced = true;
                fs::unlinkat(dir, name, AtFlags::empty())?;
            }
            Err(e) => return Err(e),
        }
    };
    // O_CREAT honours the umask: give the file exactly its mode.
    fs::fchmod(&fd, perms.file())?;
    File::from(fd)
        .write_all(content.as_bytes())
        .map_err(|e| Errno::from_io_error(&e).unwrap_or(Errno::IO))
}

/// Removes the entry `name` of folder `dir` (not following a link); a missing entry is
/// fine.
pub(super) fn remove_entry(dir: &OwnedFd, path: &Path, name: &str) -> Result<(), NamedError> {
    match fs::unlinkat(dir, name, AtFlags::empty()) {
        Ok(()) | Err(Errno::NOENT) => Ok(()),
        Err(e) => Err(os_error(&path.join(name), "remove pid file", e)),
    }
}

/// Removes the folder `name` of `root` if it is empty; a folder that is gone or still
/// holds files is left as is.
pub(super) fn remove_dir(root: &OwnedFd, path: &Path, name: &str) -> Result<(), NamedError> {
    match fs::unlinkat(root, name, AtFlags::REMOVEDIR) {
        Ok(()) | Err(Errno::NOENT | Errno::NOTEMPTY | Errno::EXIST) => Ok(()),
        Err(e) => Err(os_error(path, "rmdir", e)),
    }
}

/// An entry of a registry folder that is not read as a registration, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Skipped {
    /// The entry's path.
    pub path: PathBuf,
    /// Why it was skipped (a link, a FIFO, too large, unreadable).
    pub reason: String,
}

/// The UTF-8 names of the folder's entries (other names are no pid files and are left out).
pub(super) fn entry_names(dir: &OwnedFd, path: &Path) -> Result<Vec<String>, NamedError> {
    let entries = fs::Dir::read_from(dir).map_err(|e| os_error(path, "read_dir", e))?;
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| os_error(path, "read_dir", e))?;
        let name: &CStr = entry.file_name();
        if let Ok(name) = name.to_str()
            && name != "."
            && name != ".."
        {
            names.push(name.to_owned());
        }
    }
    Ok(names)
}

/// Reads the pid file `name` of folder `dir`: `Ok(None)` when it went away meanwhile,
/// `Err(reason)` when it is not read (not a regular file, a link, too large,
/// unreadable). Never blocks: the entry is checked with `lstat` first, then opened with
/// `O_NOFOLLOW | O_NONBLOCK` and checked again on the opened file.
pub(super) fn read_pid_file(dir: &OwnedFd, name: &str) -> Result<Option<String>, String> {
    let check = |st: &fs::Stat| -> Result<(), String> {
        let kind = FileType::from_raw_mode(st.st_mode);
        if kind != FileType::RegularFile {
            return Err(format!("not a regular file ({})", describe(kind)));
        }
        let len = u64::try_from(st.st_size).unwrap_or(u64::MAX);
        if len > MAX_PID_FILE_LEN {
            return Err(format!(
                "{len} bytes, more than a pid file's {MAX_PID_FILE_LEN}"
            ));
        }
        Ok(())
    };
    match fs::statat(dir, name, AtFlags::SYMLINK_NOFOLLOW) {
        Ok(st) => check(&st)?,
        Err(Errno::NOENT) => return Ok(None),
        Err(e) => return Err(format!("cannot stat: {e}")),
    }
    let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::NONBLOCK | OFlags::NOCTTY;
    let fd = match fs::openat(dir, name, flags | OFlags::CLOEXEC, Mode::empty()) {
        Ok(fd) => fd,
        Err(Errno::NOENT) => return Ok(None),
        Err(Errno::LOOP) => return Err("not a regular file (symbolic link)".into()),
        Err(e) => return Err(format!("cannot open: {e}")),
    };
    // Swapped between the lstat and the open?
    check(&fs::fstat(&fd).map_err(|e| format!("cannot stat: {e}"))?)?;
    let mut text = String::new();
    File::from(fd)
        .take(PID_FILE_READ)
        .read_to_string(&mut text)
        .map_err(|e| format!("cannot read: {e}"))?;
    Ok(Some(text))
}

fn describe(kind: FileType) -> &'static str {
    match kind {
        FileType::RegularFile => "regular file",
        FileType::Directory => "directory",
        FileType::Symlink => "symbolic link",
        FileType::Fifo => "FIFO",
        FileType::Socket => "socket",
        FileType::CharacterDevice => "character device",
        FileType::BlockDevice => "block device",
        FileType::Unknown => "unknown type",
    }
}
