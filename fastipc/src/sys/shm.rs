//! Named POSIX shared-memory segments (`/dev/shm/NAME`, POSIX name `/NAME`).
//!
//! - [`Segment::create`] makes a new segment *fully initialised before anyone can see it*:
//!   the file is made unnamed (`O_TMPFILE`) in `/dev/shm`, sized, mapped and filled by the
//!   caller's `init`, and only then linked under its name with `linkat`, which fails if
//!   the name is taken. Nobody can open a half-made segment, whatever the peers do.
//!   (Without `O_TMPFILE` a hidden, uniquely named file and `linkat` give the same
//!   guarantee.)
//! - [`Segment::open`] attaches to an existing segment and refuses one smaller than
//!   needed. A peer that creates segments the POSIX way (`shm_open(O_CREAT|O_EXCL)` then
//!   `ftruncate`) leaves a zero-length file for a moment; `open` waits a bounded time for
//!   it to grow before calling it too small.
//! - [`Segment::open_or_create`] is the race-free combination of the two.
//!
//! Segments are created with mode `0600` and are never unlinked implicitly: call
//! [`Segment::unlink`] (the named objects do it through their attachment registry).
//! Opening never follows a symbolic link (`O_NOFOLLOW`, as glibc's `shm_open` does): a
//! link planted under a segment's name is refused, not used to reach another file.
//!
//! # Memory and `SIGBUS`
//! tmpfs hands out pages only when they are first touched, and a process touching a page
//! of a shared mapping that the file cannot back is killed with `SIGBUS`. So
//! [`Segment::create`] reserves every page with `fallocate` before mapping: a `/dev/shm`
//! that is full (or too small) is the typed error [`ShmError::NoSpace`], not a crash
//! later. (Only on a file system without `fallocate` does it fall back to a sparse
//! `ftruncate`.) Two causes stay outside fastipc's control: a segment someone else
//! created sparse (the POSIX way, `shm_open` then `ftruncate`, as the peers do) may still
//! fault on first touch when `/dev/shm` fills up; and a process that *shrinks* a mapped
//! segment (`ftruncate` to a smaller size) makes every process that still maps it fault on
//! its next access beyond the new end. Neither can be caught safely in a library.

use std::ffi::CString;
use std::os::fd::{AsFd, OwnedFd};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use memmap2::{MmapOptions, MmapRaw};
use rustix::fs::{self, AtFlags, CWD, Mode, OFlags};
use rustix::io::Errno;
use rustix::shm;

use super::clock::Deadline;
use super::process::current_pid;
use crate::error::ShmError;
use crate::mem::MemRef;

/// The directory where Linux keeps POSIX shared-memory segments.
pub(crate) const SHM_DIR: &str = "/dev/shm";

/// The longest segment name: `NAME_MAX`, a file name's limit.
pub(crate) const MAX_NAME_LEN: usize = 255;

/// How long [`Segment::open`] waits for a zero-length segment (a peer between
/// `shm_open` and `ftruncate`) to grow.
const GROW_WAIT: Duration = Duration::from_millis(250);

/// Checks that `name` can name a segment: not empty, not `.` or `..`, no `/`, no NUL,
/// at most [`MAX_NAME_LEN`] bytes.
///
/// (Public as [`Segment::validate_name`].)
pub(crate) fn validate_name(name: &str) -> Result<(), ShmError> {
    let reason = if name.is_empty() {
        "empty"
    } else if name == "." || name == ".." {
        "`.` and `..` are not segment names"
    } else if name.contains('/') {
        "contains `/`"
    } else if name.contains('\0') {
        "contains a NUL byte"
    } else if name.len() > MAX_NAME_LEN {
        "longer than the 255 bytes a file name may hold"
    } else {
        return Ok(());
    };
    Err(ShmError::InvalidName {
        name: name.to_owned(),
        reason,
    })
}

/// A mapped named shared-memory segment. Dropping it unmaps it; the segment itself stays
/// until [`Segment::unlink`].
#[derive(Debug)]
pub struct Segment {
    name: String,
    map: MmapRaw,
    /// Device and inode of the file, to tell whether the name still refers to it.
    file_id: (u64, u64),
}

impl Segment {
    /// The directory where Linux keeps POSIX shared-memory segments (`/dev/shm`).
    pub const DIR: &'static str = SHM_DIR;

    /// The longest segment name: `NAME_MAX`, a file name's limit.
    pub const MAX_NAME_LEN: usize = MAX_NAME_LEN;

    /// Checks that `name` can name a segment: not empty, not `.` or `..`, no `/`, no NUL,
    /// at most [`Segment::MAX_NAME_LEN`] bytes.
    ///
    /// ```
    /// use fastipc::Segment;
    /// assert!(Segment::validate_name("ticks").is_ok());
    /// assert!(Segment::validate_name("a/b").is_err());
    /// assert!(Segment::validate_name("").is_err());
    /// ```
    pub fn validate_name(name: &str) -> Result<(), ShmError> {
        validate_name(name)
    }

    /// Creates segment `name` of `len` bytes, runs `init` on its (zeroed) memory, and only
    /// then makes it visible under `name`. Fails with [`ShmError::AlreadyExists`] if the
    /// name is taken.
    ///
    /// ```
    /// use fastipc::Segment;
    /// let name = format!("fastipc-doc-create-{}", std::process::id());
    /// let seg = Segment::create(&name, 64, |mem| {
    ///     mem.atomic_u32(0).unwrap().store(42, std::sync::atomic::Ordering::Release);
    /// })?;
    /// let again = Segment::open(&name, 64)?;
    /// assert_eq!(again.mem().atomic_u32(0)?.load(std::sync::atomic::Ordering::Acquire), 42);
    /// Segment::unlink(&name)?;
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    pub fn create(
        name: &str,
        len: usize,
        init: impl FnOnce(MemRef<'_>),
    ) -> Result<Segment, ShmError> {
        Segment::create_with_mode(name, len, 0o600, init)
    }

    /// [`Segment::create`] with the permission bits `mode` (`0o600` always added, bits
    /// outside `0o666` dropped; the umask does not apply), set before the segment gets
    /// its name: how segments are shared with other users (see
    /// [`Registry::with_share_mode`](crate::named::registry::Registry::with_share_mode)).
    pub fn create_with_mode(
        name: &str,
        len: usize,
        mode: u32,
        init: impl FnOnce(MemRef<'_>),
    ) -> Result<Segment, ShmError> {
        validate_name(name)?;
        if len == 0 {
            return Err(ShmError::TooSmall {
                name: name.to_owned(),
                size: 0,
                required: 1,
            });
        }
        let dir = fs::open(
            SHM_DIR,
            OFlags::DIRECTORY | OFlags::RDONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| ShmError::from_errno(name, "open /dev/shm", e))?;
        let mode = Mode::from_raw_mode((mode & 0o666) | 0o600);
        let (fd, temp) = make_unnamed(&dir, name, mode)?;
        reserve(&fd, len, name)?;
        let map = map(&fd, len, name)?;
        let seg = Segment {
            name: name.to_owned(),
            map,
            file_id: file_id(&fd, name)?,
        };
        // If `init` panics, `temp` still removes the hidden file on the way out.
        init(seg.mem());
        publish(&dir, &fd, temp.name(), name)?;
        Ok(seg)
    }

    /// Opens the existing segment `name`, which must hold at least `min_len` bytes.
    ///
    /// The whole segment is mapped, even when it is larger than `min_len`.
    pub fn open(name: &str, min_len: usize) -> Result<Segment, ShmError> {
        validate_name(name)?;
        let min_len = min_len.max(1) as u64;
        let fd = open_nofollow(name)?;
        let mut size = file_size(&fd, name)?;
        if size == 0 {
            // A POSIX-style creator between shm_open and ftruncate: give it a moment.
            let deadline = Deadline::after(GROW_WAIT);
            while size == 0 && !deadline.has_passed() {
                std::thread::sleep(Duration::from_millis(1));
                size = file_size(&fd, name)?;
            }
        }
        if size < min_len {
            return Err(ShmError::TooSmall {
                name: name.to_owned(),
                size,
                required: min_len,
            });
        }
        let len = usize::try_from(size).map_err(|_| ShmError::TooSmall {
            name: name.to_owned(),
            size,
            required: min_len,
        })?;
        Ok(Segment {
            name: name.to_owned(),
            map: map(&fd, len, name)?,
            file_id: file_id(&fd, name)?,
        })
    }

    /// Opens `name` if it exists (it must hold `len` bytes), else creates it with
    /// [`Segment::create`]. Returns the segment and whether this call created it. Two
    /// processes racing here get one creator and one opener, never two creators.
    pub fn open_or_create(
        name: &str,
        len: usize,
        init: impl FnOnce(MemRef<'_>),
    ) -> Result<(Segment, bool), ShmError> {
        Segment::open_or_create_with_mode(name, len, 0o600, init)
    }

    /// [`Segment::open_or_create`], creating with the permission bits `mode` (see
    /// [`Segment::create_with_mode`]).
    pub fn open_or_create_with_mode(
        name: &str,
        len: usize,
        mode: u32,
        init: impl FnOnce(MemRef<'_>),
    ) -> Result<(Segment, bool), ShmError> {
        let mut init = Some(init);
        // Each round trip loses only to a concurrent creator or remover; bound it anyway.
        for _ in 0..1000 {
            match Segment::open(name, len) {
                Ok(seg) => return Ok((seg, false)),
                Err(ShmError::NotFound { .. }) => {}
                Err(e) => return Err(e),
            }
            let Some(f) = init.take() else { break };
            let mut once = Some(f);
            match Segment::create_with_mode(name, len, mode, |mem| {
                if let Some(f) = once.take() {
                    f(mem)
                }
            }) {
                Ok(seg) => return Ok((seg, true)),
                Err(ShmError::AlreadyExists { .. }) => init = once,
                Err(e) => return Err(e),
            }
        }
        Err(ShmError::Os {
            name: name.to_owned(),
            op: "open_or_create",
            source: std::io::Error::other("the segment kept appearing and disappearing"),
        })
    }

    /// Removes the name `name`; processes that mapped the segment keep their mapping.
    pub fn unlink(name: &str) -> Result<(), ShmError> {
        validate_name(name)?;
        shm::unlink(name).map_err(|e| ShmError::from_errno(name, "shm_unlink", e))
    }

    /// Whether an entry named `name` exists in `/dev/shm` (a symbolic link counts, and
    /// is not followed).
    pub fn exists(name: &str) -> bool {
        validate_name(name).is_ok() && fs::lstat(std::path::Path::new(SHM_DIR).join(name)).is_ok()
    }

    /// Whether the segment's name still refers to this very segment (it was not removed,
    /// nor removed and made again by someone else, nor replaced by a link, since this
    /// mapping was made).
    pub fn is_linked(&self) -> bool {
        let path = std::path::Path::new(SHM_DIR).join(&self.name);
        match fs::lstat(&path) {
            Ok(st) => (st.st_dev, st.st_ino) == self.file_id,
            Err(_) => false,
        }
    }

    /// The segment's name (without the leading `/`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The mapped length in bytes (the segment's size when it was opened).
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// Whether the mapping is empty (never true: empty segments are refused).
    pub fn is_empty(&self) -> bool {
        self.map.len() == 0
    }

    /// The mapped memory.
    pub fn mem(&self) -> MemRef<'_> {
        // SAFETY: the mapping is valid for reads and writes of `len()` bytes for as long as
        // `self` lives (MmapRaw unmaps on drop), and it is only reached through the MemRef,
        // whose accessors are atomic or explicitly unsafe.
        unsafe { MemRef::from_raw_parts(self.map.as_mut_ptr(), self.map.len()) }
    }

    /// How many open-then-create rounds an open-or-create makes before giving up: each
    /// failed round lost a race to a concurrent creator or remover. The queue's
    /// open-or-create loops use it too.
    pub const OPEN_OR_CREATE_ROUNDS: u32 = 1000;

    /// [`Segment::open`], waiting up to `grow_wait` (at least `open`'s own 250 ms) for a
    /// segment of length zero to grow: a POSIX-style creator between `shm_open` and
    /// `ftruncate`, which the peers give 2 s.
    pub fn open_with_grow_wait(
        name: &str,
        min_len: usize,
        grow_wait: Duration,
    ) -> Result<Segment, ShmError> {
        let deadline = Deadline::after(grow_wait);
        loop {
            match Segment::open(name, min_len) {
                Err(ShmError::TooSmall { size: 0, .. }) if !deadline.has_passed() => {
                    std::thread::sleep(Duration::from_millis(1));
                }
                other => return other,
            }
        }
    }
}

/// Opens the existing segment `name` for reading and writing, never through a symbolic
/// link (what glibc's `shm_open` does; rustix's `shm::OFlags` defines no `NOFOLLOW`).
fn open_nofollow(name: &str) -> Result<OwnedFd, ShmError> {
    let path = std::path::Path::new(SHM_DIR).join(name);
    let flags = OFlags::RDWR | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    fs::open(&path, flags, Mode::empty()).map_err(|e| match e {
        Errno::LOOP => ShmError::Os {
            name: name.to_owned(),
            op: "open (the name is a symbolic link, which is not followed)",
            source: std::io::Error::from_raw_os_error(e.raw_os_error()),
        },
        e => ShmError::from_errno(name, "open", e),
    })
}

/// Gives the new file its size with every page reserved (`fallocate`), so that a full
/// `/dev/shm` is [`ShmError::NoSpace`] now rather than `SIGBUS` at the first touch. A file
/// system without `fallocate` gets a sparse `ftruncate`.
fn reserve(fd: &OwnedFd, len: usize, name: &str) -> Result<(), ShmError> {
    let len = len as u64;
    loop {
        return match fs::fallocate(fd, fs::FallocateFlags::empty(), 0, len) {
            Ok(()) => Ok(()),
            // tmpfs gives up a large reservation when a signal arrives: try again.
            Err(Errno::INTR) => continue,
            Err(Errno::NOSPC | Errno::FBIG) => Err(ShmError::NoSpace {
                name: name.to_owned(),
                len,
            }),
            Err(Errno::OPNOTSUPP | Errno::NOSYS) => {
                fs::ftruncate(fd, len).map_err(|e| ShmError::from_errno(name, "ftruncate", e))
            }
            Err(e) => Err(ShmError::from_errno(name, "fallocate", e)),
        };
    }
}

/// Counter for the names of hidden files (without `O_TMPFILE`).
static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// The name of the hidden file number `n` of this process.
fn temp_name(n: u64) -> String {
    format!(".fastipc-tmp-{}-{n}", current_pid())
}

/// An unnamed new file's temporary name, if it has one: removed on drop, whether the
/// creation succeeded (the file then has its real name too), failed or panicked.
struct TempName<'d> {
    dir: &'d OwnedFd,
    name: Option<String>,
}

impl TempName<'_> {
    fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
}

impl Drop for TempName<'_> {
    fn drop(&mut self) {
        if let Some(name) = &self.name {
            let _ = fs::unlinkat(self.dir, name.as_str(), AtFlags::empty());
        }
    }
}

/// Makes an unnamed file in `/dev/shm`: `O_TMPFILE` when the kernel has it, else a hidden
/// uniquely named file (whose name the returned guard removes).
fn make_unnamed<'d>(
    dir: &'d OwnedFd,
    name: &str,
    mode: Mode,
) -> Result<(OwnedFd, TempName<'d>), ShmError> {
    match fs::openat(
        dir,
        ".",
        OFlags::TMPFILE | OFlags::RDWR | OFlags::CLOEXEC,
        mode,
    ) {
        _ if test_knob::no_tmpfile() => {}
        Ok(fd) => {
            // O_TMPFILE honours the umask; the segment gets `mode` whatever it is.
            let _ = fs::fchmod(&fd, mode);
            return Ok((fd, TempName { dir, name: None }));
        }
        Err(Errno::OPNOTSUPP | Errno::ISDIR | Errno::INVAL) => {}
        Err(e) => return Err(ShmError::from_errno(name, "open(O_TMPFILE)", e)),
    }
    loop {
        let temp = temp_name(TEMP_COUNTER.fetch_add(1, Ordering::Relaxed));
        let flags = OFlags::CREATE | OFlags::EXCL | OFlags::RDWR | OFlags::CLOEXEC;
        match fs::openat(dir, temp.as_str(), flags, mode) {
            Ok(fd) => {
                let _ = fs::fchmod(&fd, mode);
                let temp = TempName {
                    dir,
                    name: Some(temp),
                };
                return Ok((fd, temp));
            }
            Err(Errno::EXIST) => continue,
            Err(e) => return Err(ShmError::from_errno(name, "open temporary segment", e)),
        }
    }
}

/// Lets the unit tests take the path of kernels without `O_TMPFILE`.
mod test_knob {
    #[cfg(test)]
    thread_local! {
        pub(super) static NO_TMPFILE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
    }

    /// Whether this thread must behave as if `O_TMPFILE` were missing (tests only).
    #[inline(always)]
    pub(super) fn no_tmpfile() -> bool {
        #[cfg(test)]
        return NO_TMPFILE.with(std::cell::Cell::get);
        #[cfg(not(test))]
        false
    }
}

/// Gives the initialised file its public name; fails with `AlreadyExists` if it is taken.
fn publish(dir: &OwnedFd, fd: &OwnedFd, temp: Option<&str>, name: &str) -> Result<(), ShmError> {
    let link = |r: rustix::io::Result<()>| r.map_err(|e| ShmError::from_errno(name, "linkat", e));
    match temp {
        Some(temp) => link(fs::linkat(dir, temp, dir, name, AtFlags::empty())),
        None => {
            use std::os::fd::AsRawFd;
            let proc_path = CString::new(format!("/proc/self/fd/{}", fd.as_raw_fd()))
                .expect("a formatted path has no NUL");
            match fs::linkat(
                CWD,
                proc_path.as_c_str(),
                dir,
                name,
                AtFlags::SYMLINK_FOLLOW,
            ) {
                // No /proc: linking an fd by itself needs AT_EMPTY_PATH.
                Err(Errno::NOENT) if !std::path::Path::new("/proc/self/fd").exists() => {
                    link(fs::linkat(fd.as_fd(), c"", dir, name, AtFlags::EMPTY_PATH))
                }
                r => link(r),
            }
        }
    }
}

fn file_id(fd: &OwnedFd, name: &str) -> Result<(u64, u64), ShmError> {
    let st = fs::fstat(fd).map_err(|e| ShmError::from_errno(name, "fstat", e))?;
    Ok((st.st_dev, st.st_ino))
}

fn file_size(fd: &OwnedFd, name: &str) -> Result<u64, ShmError> {
    let st = fs::fstat(fd).map_err(|e| ShmError::from_errno(name, "fstat", e))?;
    Ok(u64::try_from(st.st_size).unwrap_or(0))
}

fn map(fd: &OwnedFd, len: usize, name: &str) -> Result<MmapRaw, ShmError> {
    MmapOptions::new()
        .len(len)
        .map_raw(fd)
        .map_err(|e| ShmError::from_io(name, "mmap", e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::Ordering;

    fn unique(tag: &str) -> String {
        crate::test_util::unique(&format!("shm-{tag}"))
    }

    /// Creates `name` the POSIX way and leaves it zero-length, as a creator between
    /// `shm_open` and `ftruncate` does.
    fn posix_create(name: &str) -> OwnedFd {
        shm::open(
            name,
            shm::OFlags::CREATE | shm::OFlags::EXCL | shm::OFlags::RDWR,
            Mode::RUSR | Mode::WUSR,
        )
        .unwrap()
    }

    struct Unlink(String);
    impl Drop for Unlink {
        fn drop(&mut self) {
            let _ = Segment::unlink(&self.0);
        }
    }

    #[test]
    fn names_are_validated() {
        for bad in ["", ".", "..", "a/b", "/lead", "nul\0", &"x".repeat(256)] {
            assert!(
                matches!(validate_name(bad), Err(ShmError::InvalidName { .. })),
                "{bad:?} accepted"
            );
            assert!(matches!(
                Segment::open(bad, 1),
                Err(ShmError::InvalidName { .. })
            ));
            assert!(matches!(
                Segment::create(bad, 8, |_| {}),
                Err(ShmError::InvalidName { .. })
            ));
        }
        assert!(validate_name(&"x".repeat(255)).is_ok());
    }

    #[test]
    fn create_is_exclusive_and_initialised_before_visible() {
        let name = unique("excl");
        let _g = Unlink(name.clone());
        let seg = Segment::create(&name, 128, |mem| {
            // Until init returns, the name must not exist.
            assert!(!Segment::exists(&name));
            mem.atomic_u64(8)
                .unwrap()
                .store(0xDEAD_BEEF, Ordering::Release);
        })
        .unwrap();
        assert_eq!(seg.len(), 128);
        assert!(Segment::exists(&name));
        assert!(matches!(
            Segment::create(&name, 128, |_| {}),
            Err(ShmError::AlreadyExists { .. })
        ));
        let other = Segment::open(&name, 128).unwrap();
        assert_eq!(
            other.mem().atomic_u64(8).unwrap().load(Ordering::Acquire),
            0xDEAD_BEEF
        );
        // Both mappings see each other's writes.
        seg.mem().atomic_u32(0).unwrap().store(7, Ordering::Release);
        assert_eq!(
            other.mem().atomic_u32(0).unwrap().load(Ordering::Acquire),
            7
        );
    }

    #[test]
    fn mode_is_0600() {
        use std::os::unix::fs::PermissionsExt;
        let name = unique("mode");
        let _g = Unlink(name.clone());
        Segment::create(&name, 16, |_| {}).unwrap();
        let meta = std::fs::metadata(format!("{SHM_DIR}/{name}")).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
    }

    #[test]
    fn without_o_tmpfile_no_hidden_file_is_left_even_when_init_panics() {
        use std::os::unix::fs::PermissionsExt;
        test_knob::NO_TMPFILE.with(|k| k.set(true));
        let first = TEMP_COUNTER.load(Ordering::Relaxed);
        let name = unique("fallback");
        let _g = Unlink(name.clone());
        let seg = Segment::create(&name, 16, |mem| {
            assert!(!Segment::exists(&name), "visible before init returned");
            mem.atomic_u32(0).unwrap().store(5, Ordering::Release);
        })
        .unwrap();
        assert_eq!(
            Segment::open(&name, 16)
                .unwrap()
                .mem()
                .atomic_u32(0)
                .unwrap()
                .load(Ordering::Acquire),
            5
        );
        let meta = std::fs::metadata(format!("{SHM_DIR}/{name}")).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        drop(seg);
        let panicking = unique("fallback-panic");
        let _g2 = Unlink(panicking.clone());
        let r = std::panic::catch_unwind(|| {
            let _ = Segment::create(&panicking, 16, |_| panic!("init fails"));
        });
        test_knob::NO_TMPFILE.with(|k| k.set(false));
        assert!(r.is_err());
        assert!(!Segment::exists(&panicking));
        let last = TEMP_COUNTER.load(Ordering::Relaxed);
        assert!(last >= first + 2, "the fallback was not taken");
        for n in first..last {
            let temp = std::path::Path::new(SHM_DIR).join(temp_name(n));
            assert!(fs::lstat(&temp).is_err(), "{temp:?} left behind");
        }
    }

    #[test]
    fn a_dev_shm_too_small_for_the_segment_is_a_typed_error_not_sigbus() {
        // Larger than the whole of /dev/shm: fallocate refuses it at once, reserving
        // nothing; a sparse file of that size would be created and mapped, then fault on
        // the first touch past the space there is.
        let vfs = fs::statvfs(SHM_DIR).unwrap();
        let total = vfs.f_blocks.saturating_mul(vfs.f_frsize);
        assert!(total > 0, "/dev/shm has no size limit here");
        let len = usize::try_from(total.saturating_mul(2)).unwrap();
        let name = unique("nospace");
        let _g = Unlink(name.clone());
        let r = Segment::create(&name, len, |_| {});
        assert!(
            matches!(&r, Err(ShmError::NoSpace { len: l, .. }) if *l == len as u64),
            "{r:?}"
        );
        assert!(r.unwrap_err().to_string().contains("no room"));
        assert!(!Segment::exists(&name));
    }

    #[test]
    fn a_symbolic_link_under_a_segment_name_is_not_followed() {
        let target = unique("link-target");
        let link = unique("link");
        let _g = (Unlink(target.clone()), Unlink(link.clone()));
        Segment::create(&target, 64, |_| {}).unwrap();
        std::os::unix::fs::symlink(
            std::path::Path::new(SHM_DIR).join(&target),
            std::path::Path::new(SHM_DIR).join(&link),
        )
        .unwrap();
        for r in [
            Segment::open(&link, 64).map(|_| ()),
            Segment::open_or_create(&link, 64, |_| {}).map(|_| ()),
        ] {
            match r {
                Err(ShmError::Os { source, .. }) => {
                    assert_eq!(source.raw_os_error(), Some(Errno::LOOP.raw_os_error()))
                }
                other => panic!("a link was followed: {other:?}"),
            }
        }
        assert!(Segment::exists(&link), "the link itself is an entry");
        let seg = Segment::open(&target, 64).unwrap();
        assert!(seg.is_linked());
    }

    #[test]
    fn open_missing_and_too_small() {
        let name = unique("small");
        assert!(matches!(
            Segment::open(&name, 8),
            Err(ShmError::NotFound { .. })
        ));
        let _g = Unlink(name.clone());
        Segment::create(&name, 16, |_| {}).unwrap();
        match Segment::open(&name, 64) {
            Err(ShmError::TooSmall {
                size: 16,
                required: 64,
                ..
            }) => {}
            other => panic!("expected TooSmall, got {other:?}"),
        }
        // Larger than needed is fine and maps everything.
        assert_eq!(Segment::open(&name, 8).unwrap().len(), 16);
    }

    #[test]
    fn zero_length_segment_is_too_small_after_a_bounded_wait() {
        let name = unique("zero");
        let _g = Unlink(name.clone());
        let fd = posix_create(&name);
        let start = std::time::Instant::now();
        assert!(matches!(
            Segment::open(&name, 4),
            Err(ShmError::TooSmall { size: 0, .. })
        ));
        assert!(start.elapsed() < Duration::from_secs(5));
        drop(fd);
    }

    #[test]
    fn open_waits_for_a_posix_creator_to_ftruncate() {
        let name = unique("grow");
        let _g = Unlink(name.clone());
        let fd = posix_create(&name);
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            fs::ftruncate(&fd, 64).unwrap();
        });
        assert_eq!(Segment::open(&name, 64).unwrap().len(), 64);
        t.join().unwrap();
    }

    #[test]
    fn open_or_create_races_have_exactly_one_creator() {
        let name = unique("race");
        let _g = Unlink(name.clone());
        let creators: usize = std::thread::scope(|s| {
            let handles: Vec<_> = (0..8)
                .map(|_| {
                    s.spawn(|| {
                        let (seg, created) = Segment::open_or_create(&name, 64, |mem| {
                            mem.atomic_u32(0).unwrap().store(1, Ordering::Release);
                        })
                        .unwrap();
                        // Whoever opened it sees the creator's initialisation.
                        assert_eq!(seg.mem().atomic_u32(0).unwrap().load(Ordering::Acquire), 1);
                        usize::from(created)
                    })
                })
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).sum()
        });
        assert_eq!(creators, 1);
    }

    #[test]
    fn unlink_removes_the_name_but_not_the_mapping() {
        let name = unique("unlink");
        let seg = Segment::create(&name, 32, |_| {}).unwrap();
        Segment::unlink(&name).unwrap();
        assert!(!Segment::exists(&name));
        assert!(matches!(
            Segment::unlink(&name),
            Err(ShmError::NotFound { .. })
        ));
        seg.mem().atomic_u32(4).unwrap().store(3, Ordering::Relaxed);
        assert_eq!(seg.mem().atomic_u32(4).unwrap().load(Ordering::Relaxed), 3);
    }

    #[test]
    fn zero_length_create_is_refused() {
        let name = unique("zerolen");
        assert!(matches!(
            Segment::create(&name, 0, |_| {}),
            Err(ShmError::TooSmall { .. })
        ));
        assert!(!Segment::exists(&name));
    }

    #[test]
    fn is_linked_tells_whether_the_name_is_still_ours() {
        let name = unique("linked");
        let _g = Unlink(name.clone());
        let first = Segment::create(&name, 16, |_| {}).unwrap();
        assert!(first.is_linked());
        assert!(Segment::open(&name, 16).unwrap().is_linked());
        Segment::unlink(&name).unwrap();
        assert!(!first.is_linked());
        let second = Segment::create(&name, 16, |_| {}).unwrap();
        assert!(second.is_linked());
        assert!(
            !first.is_linked(),
            "a new segment under the same name is not ours"
        );
    }
}
