//! The attachment registry under attack: what another user (or a confused script) can
//! plant in a registry folder — symbolic links, FIFOs, huge files, directories, foreign
//! folders — must never redirect a write, block an operation, or be read as a
//! registration; and the registry's files are owner-only unless sharing is asked for.

mod sync_support;

use std::fs;
use std::os::unix::fs::{PermissionsExt, symlink};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use fastipc::NamedError;
use fastipc::named::registry::Registry;
use fastipc::named::{Kind, NamedMutex};
use fastipc_testkit::{ChildGuard, Lines, unique_name};
use sync_support::World;

/// Generous: the machine is shared.
const LONG: Duration = Duration::from_secs(60);

/// Runs `f` on a thread and waits at most `bound` for it: a blocking registry operation
/// fails the test instead of hanging it.
fn bounded<T: Send + 'static>(bound: Duration, f: impl FnOnce() -> T + Send + 'static) -> T {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(f());
    });
    rx.recv_timeout(bound)
        .expect("a registry operation blocked on what was planted in its folder")
}

fn mkfifo(path: &Path) {
    rustix::fs::mknodat(
        rustix::fs::CWD,
        path,
        rustix::fs::FileType::Fifo,
        rustix::fs::Mode::from_raw_mode(0o600),
        0,
    )
    .unwrap();
}

fn mode(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap().permissions().mode() & 0o7777
}

#[test]
fn a_link_planted_at_the_pid_file_path_is_replaced_never_written_through() {
    let mut world = World::new("rel-link");
    let name = world.name(Kind::Mutex, "rel-link");
    let seg = World::segment_of(Kind::Mutex, &name);
    let folder = world.registry.pids_dir(&seg);
    fs::create_dir_all(&folder).unwrap();
    fs::set_permissions(&world.dir, fs::Permissions::from_mode(0o700)).unwrap();
    fs::set_permissions(&folder, fs::Permissions::from_mode(0o700)).unwrap();
    // A file this process can write that the link points to.
    let victim = world.dir.join("victim");
    fs::write(&victim, "precious").unwrap();
    let own = folder.join(std::process::id().to_string());
    symlink(&victim, &own).unwrap();
    let mutex = NamedMutex::open_in(&world.registry, &name).unwrap();
    assert_eq!(fs::read_to_string(&victim).unwrap(), "precious");
    let meta = fs::symlink_metadata(&own).unwrap();
    assert!(meta.file_type().is_file(), "the link was kept: {meta:?}");
    let listed = world.registry.attached(&seg).unwrap();
    assert_eq!(listed.len(), 1);
    assert!(listed[0].alive && listed[0].pid == std::process::id());
    assert!(mutex.close().unwrap().unlinked);
    assert_eq!(fs::read_to_string(&victim).unwrap(), "precious");
    assert!(!folder.exists());
}

#[test]
fn a_linked_folder_or_root_is_refused_and_nothing_is_written_behind_it() {
    let mut world = World::new("rel-linkdir");
    let name = world.name(Kind::Mutex, "rel-linkdir");
    let seg = World::segment_of(Kind::Mutex, &name);
    fs::create_dir_all(&world.dir).unwrap();
    let elsewhere = world.dir.join("elsewhere");
    fs::create_dir(&elsewhere).unwrap();
    symlink(&elsewhere, world.registry.pids_dir(&seg)).unwrap();
    let refused = NamedMutex::open_in(&world.registry, &name);
    assert!(
        matches!(&refused, Err(NamedError::UnsafeRegistry { reason, .. }) if reason.contains("symbolic link")),
        "{refused:?}"
    );
    assert_eq!(fs::read_dir(&elsewhere).unwrap().count(), 0);
    assert!(matches!(
        world.registry.attached(&seg),
        Err(NamedError::UnsafeRegistry { .. })
    ));
    // The sweep reports it and goes on.
    let report = world.registry.sweep(false).unwrap();
    assert_eq!(report.errors.len(), 1, "{report}");
    assert!(report.errors[0].contains("symbolic link"), "{report}");
    // A root that is a link is refused the same way.
    let linked_root = world.dir.join("linked-root");
    symlink(&elsewhere, &linked_root).unwrap();
    let refused = NamedMutex::open_in(&Registry::at(&linked_root), &name);
    assert!(
        matches!(&refused, Err(NamedError::UnsafeRegistry { .. })),
        "{refused:?}"
    );
    assert_eq!(fs::read_dir(&elsewhere).unwrap().count(), 0);
    assert!(!fastipc::Segment::exists(&seg), "nothing was opened");
}

#[test]
fn a_folder_owned_by_another_user_is_refused_unless_sharing_is_on() {
    if !rustix::process::geteuid().is_root() {
        // Making a folder owned by another user needs root; as another user, the
        // sharing test below covers the accepting side.
        eprintln!("skipped: needs root to chown a folder to another user");
        return;
    }
    let mut world = World::new("rel-owner");
    let name = world.name(Kind::Mutex, "rel-owner");
    let seg = World::segment_of(Kind::Mutex, &name);
    let folder = world.registry.pids_dir(&seg);
    fs::create_dir_all(&folder).unwrap();
    std::os::unix::fs::chown(&folder, Some(65534), Some(65534)).unwrap();
    let refused = NamedMutex::open_in(&world.registry, &name);
    assert!(
        matches!(&refused, Err(NamedError::UnsafeRegistry { reason, .. }) if reason.contains("owned by uid 65534")),
        "{refused:?}"
    );
    assert_eq!(fs::read_dir(&folder).unwrap().count(), 0);
    let shared = world.registry.clone().with_share_mode(Some(0o660));
    let mutex = NamedMutex::open_in(&shared, &name).unwrap();
    assert!(mutex.close().unwrap().unlinked);
}

#[test]
fn fifos_huge_files_links_and_odd_names_block_nothing_and_are_no_registrations() {
    let mut world = World::new("rel-fifo");
    let name = world.name(Kind::Mutex, "rel-fifo");
    let seg = World::segment_of(Kind::Mutex, &name);
    let folder = world.registry.pids_dir(&seg);
    fs::create_dir_all(&folder).unwrap();
    // Planted under ids no process of the test has: a FIFO (opening it for reading
    // without O_NONBLOCK waits for a writer forever), a huge sparse file, a link to a
    // FIFO, a directory, and names that are not process ids.
    let fifo = folder.join("4000001");
    mkfifo(&fifo);
    let huge = fs::File::create(folder.join("4000002")).unwrap();
    huge.set_len(1 << 40).unwrap();
    symlink(&fifo, folder.join("4000003")).unwrap();
    fs::create_dir(folder.join("4000004")).unwrap();
    fs::write(folder.join("not-a-pid"), "1 2\n").unwrap();
    fs::write(folder.join("-1"), "").unwrap();
    mkfifo(&folder.join("fifo"));
    // The whole life of an object, and the listing and the sweep, in bounded time (the
    // registry's lock timeout is 5 s; nothing here may wait for it).
    let reg = world.registry.clone();
    let (seg2, name2) = (seg.clone(), name.clone());
    let took = bounded(LONG, move || {
        let start = Instant::now();
        let entries = reg.entries(&seg2).unwrap();
        let mutex = NamedMutex::open_in(&reg, &name2).unwrap();
        let listed = reg.attached(&seg2).unwrap();
        let closed = mutex.close().unwrap();
        let report = reg.sweep(true).unwrap();
        (start.elapsed(), entries, listed, closed, report)
    });
    let (elapsed, entries, listed, closed, report) = took;
    assert!(entries.attached.is_empty(), "{entries:?}");
    let mut skipped: Vec<String> = entries
        .skipped
        .iter()
        .map(|s| {
            format!(
                "{}: {}",
                s.path.file_name().unwrap().to_str().unwrap(),
                s.reason
            )
        })
        .collect();
    skipped.sort();
    assert_eq!(skipped.len(), 4, "{skipped:?}");
    assert!(
        skipped[0].starts_with("4000001: not a regular file (FIFO)"),
        "{skipped:?}"
    );
    assert!(
        skipped[1].starts_with("4000002: 1099511627776 bytes"),
        "{skipped:?}"
    );
    assert!(skipped[2].contains("symbolic link"), "{skipped:?}");
    assert!(skipped[3].contains("directory"), "{skipped:?}");
    // Only this process was a registration; leaving last, it unlinked the segment (what
    // was planted keeps the folder, which is left).
    assert_eq!(listed.len(), 1, "{listed:?}");
    assert!(closed.unlinked);
    assert_eq!(report.skipped.len(), 4, "{report}");
    assert!(
        report.to_string().contains("not a regular file (FIFO)"),
        "{report}"
    );
    eprintln!("open, list, close and sweep past the planted entries took {elapsed:?}");
    // A FIFO at the very pid file path of the opener is replaced by its file.
    let own = folder.join(std::process::id().to_string());
    mkfifo(&own);
    let reg = world.registry.clone();
    bounded(LONG, move || {
        NamedMutex::open_in(&reg, &name).unwrap().close().unwrap();
    });
    assert!(!own.exists());
}

/// The peer holding a mutex open, run through `sh` with `umask` first.
fn hold_with_umask(
    world: &World,
    umask: &str,
    name: &str,
    release: &str,
    env: &[(&str, &str)],
) -> (ChildGuard, Lines) {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(format!(
            "umask {umask}; exec \"$0\" hold mutex \"$1\" \"$2\""
        ))
        .arg(env!("CARGO_BIN_EXE_peer-sync"))
        .arg(name)
        .arg(release)
        .env("FASTIPC_PID_DIR", &world.dir)
        .env_remove("FASTIPC_SHARE_MODE");
    for (k, v) in env {
        cmd.env(k, v);
    }
    let mut child = ChildGuard::spawn(cmd);
    let lines = Lines::of(&mut child);
    lines.expect("ready", LONG);
    (child, lines)
}

fn release(world: &World, event: &str, child: ChildGuard) {
    fastipc::NamedEvent::open_in(&world.registry, event)
        .unwrap()
        .set();
    child.success(LONG);
}

#[test]
fn registry_files_are_owner_only_whatever_the_umask_unless_sharing_is_asked_for() {
    let mut world = World::new("rel-umask");
    let name = world.name(Kind::Mutex, "rel-umask");
    let event = world.name(Kind::Event, "rel-umask-go");
    let seg = World::segment_of(Kind::Mutex, &name);
    let folder = world.registry.pids_dir(&seg);
    let (child, _lines) = hold_with_umask(&world, "000", &name, &event, &[]);
    let pid_file = folder.join(child.id().to_string());
    assert_eq!(mode(&world.dir), 0o700, "root");
    assert_eq!(mode(&folder), 0o700, "folder");
    assert_eq!(mode(&pid_file), 0o600, "pid file");
    assert_eq!(mode(&Path::new("/dev/shm").join(&seg)), 0o600, "segment");
    release(&world, &event, child);

    // Asked for: the share mode, exactly (also under a restrictive umask).
    let mut world = World::new("rel-share");
    let name = world.name(Kind::Mutex, "rel-share");
    let event = world.name(Kind::Event, "rel-share-go");
    let seg = World::segment_of(Kind::Mutex, &name);
    let folder = world.registry.pids_dir(&seg);
    let (child, _lines) = hold_with_umask(
        &world,
        "077",
        &name,
        &event,
        &[("FASTIPC_SHARE_MODE", "660")],
    );
    let pid_file = folder.join(child.id().to_string());
    assert_eq!(mode(&world.dir), 0o770, "root");
    assert_eq!(mode(&folder), 0o770, "folder");
    assert_eq!(mode(&pid_file), 0o660, "pid file");
    assert_eq!(mode(&Path::new("/dev/shm").join(&seg)), 0o660, "segment");
    release(&world, &event, child);
}

/// The peer binary, copied where user `nobody` can run it.
struct NobodysPeer(PathBuf);

impl NobodysPeer {
    fn new() -> NobodysPeer {
        let exe = std::env::temp_dir().join(unique_name("peer-sync-exe"));
        fs::copy(env!("CARGO_BIN_EXE_peer-sync"), &exe).unwrap();
        fs::set_permissions(&exe, fs::Permissions::from_mode(0o755)).unwrap();
        NobodysPeer(exe)
    }

    fn lock(&self, dir: &Path, name: &str, share: Option<&str>) -> std::process::Output {
        let mut cmd = Command::new(&self.0);
        cmd.args(["mutex-lock", name, "5000"])
            .env("FASTIPC_PID_DIR", dir)
            .env_remove("FASTIPC_SHARE_MODE")
            .uid(65534)
            .gid(65534);
        if let Some(mode) = share {
            cmd.env("FASTIPC_SHARE_MODE", mode);
        }
        // A copy just written may be "busy" (ETXTBSY) while a child another test thread
        // forked still holds it open: retry briefly.
        for _ in 0..200 {
            match ChildGuard::try_spawn(&mut cmd) {
                Ok(child) => return child.output(LONG),
                Err(e) if e.raw_os_error() == Some(26) => {
                    std::thread::sleep(Duration::from_millis(10));
                }
                Err(e) => panic!("cannot spawn {cmd:?}: {e}"),
            }
        }
        panic!("{:?} stayed busy", self.0)
    }
}

impl Drop for NobodysPeer {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.0);
    }
}

#[test]
fn another_user_shares_a_mutex_only_when_sharing_is_on() {
    if !rustix::process::geteuid().is_root() {
        eprintln!("skipped: needs root to run a peer as user nobody");
        return;
    }
    let peer = NobodysPeer::new();
    // Private (the default): nobody can neither use the registry nor the segment.
    let mut world = World::new("rel-private");
    let name = world.name(Kind::Mutex, "rel-private");
    let mutex = NamedMutex::open_in(&world.registry, &name).unwrap();
    let out = peer.lock(&world.dir, &name, None);
    assert!(!out.status.success(), "{out:?}");
    drop(mutex);
    // Shared with everyone (666): nobody registers, locks, and leaves.
    let mut world = World::new("rel-shared");
    let name = world.name(Kind::Mutex, "rel-shared");
    let seg = World::segment_of(Kind::Mutex, &name);
    let shared = world.registry.clone().with_share_mode(Some(0o666));
    let mutex = NamedMutex::open_in(&shared, &name).unwrap();
    let out = peer.lock(&world.dir, &name, Some("666"));
    assert!(out.status.success(), "{out:?}");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).lines().last(),
        Some("ok")
    );
    let left: Vec<u32> = shared
        .attached(&seg)
        .unwrap()
        .iter()
        .map(|a| a.pid)
        .collect();
    assert_eq!(
        left,
        [std::process::id()],
        "nobody's process left the registry"
    );
    assert!(mutex.close().unwrap().unlinked);
}
