//! Helpers shared by the integration tests: unique names, cleanup guards, bounded waits
//! on child processes, and the Python peers.
#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// A name no other test (in this or a concurrent run) uses: tag, process id, counter and
/// a clock reading. Short enough for every prefix the named objects add.
pub fn unique_name(tag: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "fipct-{tag}-{}-{}-{nanos:x}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Runs `f` holding the named mutex `lock`, waiting at most `wait` for it. For tests whose
/// objects have names fixed at compile time (`#[ipc(queue = ..)]`): two runs of the suite
/// at once (two checkouts) take turns instead of using, or removing, each other's
/// objects. A holder that died is taken over (its run is over).
pub fn exclusive<R>(lock: &str, wait: Duration, f: impl FnOnce() -> R) -> R {
    let mutex = fastipc::NamedMutex::open(lock)
        .unwrap_or_else(|e| panic!("cannot open the run lock {lock:?}: {e}"));
    let _guard = match mutex.lock_timeout(wait) {
        Ok(guard) => guard,
        Err(e) => e
            .into_guard()
            .unwrap_or_else(|| panic!("another run kept the run lock {lock:?} for {wait:?}")),
    };
    f()
}

/// Removes `/dev/shm` entries (segment names, relative to `/dev/shm`) and directories
/// when dropped, so a failing test still cleans up.
#[derive(Default)]
pub struct ShmCleanup {
    files: Vec<PathBuf>,
    dirs: Vec<PathBuf>,
}

impl ShmCleanup {
    pub fn new() -> Self {
        Self::default()
    }

    /// Removes `/dev/shm/<name>` on drop.
    pub fn segment(mut self, name: impl AsRef<str>) -> Self {
        self.add_segment(name);
        self
    }

    pub fn add_segment(&mut self, name: impl AsRef<str>) {
        self.files
            .push(PathBuf::from("/dev/shm").join(name.as_ref()));
    }

    /// Removes the directory (recursively) on drop.
    pub fn add_dir(&mut self, dir: impl Into<PathBuf>) {
        self.dirs.push(dir.into());
    }
}

impl Drop for ShmCleanup {
    fn drop(&mut self) {
        for f in &self.files {
            let _ = std::fs::remove_file(f);
        }
        for d in &self.dirs {
            let _ = std::fs::remove_dir_all(d);
        }
    }
}

/// A child process that is killed and reaped when dropped, so a failing test never
/// leaves it running.
pub struct ChildGuard {
    child: Option<Child>,
    what: String,
}

impl ChildGuard {
    /// Spawns `cmd` with piped stdout and stderr.
    pub fn spawn(mut cmd: Command) -> ChildGuard {
        let what = format!("{cmd:?}");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot spawn {what}: {e}"));
        ChildGuard {
            child: Some(child),
            what,
        }
    }

    pub fn id(&self) -> u32 {
        self.child.as_ref().expect("child").id()
    }

    pub fn child_mut(&mut self) -> &mut Child {
        self.child.as_mut().expect("child")
    }

    /// Sends SIGKILL and reaps the child.
    pub fn kill(&mut self) {
        if let Some(c) = self.child.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Waits at most `timeout` for the child to exit; `None` if it is still running.
    pub fn wait_timeout(&mut self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        let c = self.child.as_mut().expect("child");
        loop {
            if let Some(status) = c.try_wait().expect("try_wait") {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }

    /// Waits at most `timeout` for the child to finish and returns its output; kills it
    /// and panics (with whatever it printed) if it does not finish in time.
    pub fn output(mut self, timeout: Duration) -> Output {
        let mut child = self.child.take().expect("child");
        // Drain the pipes on threads so a chatty child cannot block on a full pipe.
        let mut out = child.stdout.take();
        let mut err = child.stderr.take();
        let out_t = std::thread::spawn(move || read_all(out.as_mut()));
        let err_t = std::thread::spawn(move || read_all(err.as_mut()));
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                break Some(status);
            }
            if Instant::now() >= deadline {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(5));
        };
        let stdout = out_t.join().unwrap_or_default();
        let stderr = err_t.join().unwrap_or_default();
        match status {
            Some(status) => Output {
                status,
                stdout,
                stderr,
            },
            None => panic!(
                "{} did not finish within {timeout:?}\nstdout:\n{}\nstderr:\n{}",
                self.what,
                String::from_utf8_lossy(&stdout),
                String::from_utf8_lossy(&stderr)
            ),
        }
    }

    /// Like [`ChildGuard::output`], and panics unless the child exited with status 0.
    /// Returns its stdout.
    pub fn success(self, timeout: Duration) -> String {
        let what = self.what.clone();
        let out = self.output(timeout);
        assert!(
            out.status.success(),
            "{what} failed with {}\nstdout:\n{}\nstderr:\n{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

fn read_all<R: std::io::Read>(r: Option<&mut R>) -> Vec<u8> {
    let mut buf = Vec::new();
    if let Some(r) = r {
        let _ = r.read_to_end(&mut buf);
    }
    buf
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

/// Polls `cond` every millisecond until it holds or `timeout` passes.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// The peers the interop tests are written against, as pip pins them (also in
/// `scripts/test.sh`).
pub const PEERS: &str = "fastipc==0.1.5 slick-queue-py==2.3.0";

/// Imports both peers and prints their installed versions in the form of [`PEERS`].
const PRINT_PEERS: &str = r#"
import importlib.metadata as m
import fastipc, slick_queue_py
print(" ".join(f"{d}=={m.version(d)}" for d in ("fastipc", "slick-queue-py")))
"#;

/// `Ok` when `python` imports both peers and they are exactly the pinned versions
/// ([`PEERS`]); otherwise what is wrong.
pub fn check_peers(python: &Path) -> Result<(), String> {
    let out = Command::new(python)
        .args(["-c", PRINT_PEERS])
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run {}: {e}", python.display()))?;
    judge_peers(
        out.status.success(),
        &String::from_utf8_lossy(&out.stdout),
        &String::from_utf8_lossy(&out.stderr),
    )
    .map_err(|why| format!("{}: {why}", python.display()))
}

/// [`check_peers`]'s verdict on what the interpreter did: it must succeed and print
/// exactly [`PEERS`].
pub fn judge_peers(success: bool, stdout: &str, stderr: &str) -> Result<(), String> {
    let found = stdout.trim();
    match (success, found) {
        (true, f) if f == PEERS => Ok(()),
        (true, "") => Err("printed no versions".to_owned()),
        (true, f) => Err(format!("has {f}")),
        (false, _) => Err(format!(
            "cannot import them: {}",
            stderr.lines().last().unwrap_or("no message")
        )),
    }
}

/// Whether this is a CI run (`CI=true`), where a missing peer is a failure, not a skip.
pub fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|v| v == "true" || v == "1")
}

/// The Python interpreter that has the PyPI peers at exactly the pinned versions
/// ([`PEERS`], checked with [`check_peers`]): `$FASTIPC_PYTHON`, else `.venv/bin/python` in the workspace
/// (made by `scripts/test.sh`). `None` (test skipped, with a note) when there is none;
/// under `CI=true` a missing peer fails the test instead.
pub fn python() -> Option<PathBuf> {
    let candidate = std::env::var_os("FASTIPC_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(".venv/bin/python"));
    let why = match check_peers(&candidate) {
        Ok(()) => return Some(candidate),
        Err(why) => why,
    };
    let msg = format!(
        "the Python peers ({PEERS}) are not installed: {why} (run `bash scripts/test.sh`, \
         which makes the venv)"
    );
    if in_ci() {
        panic!("{msg}");
    }
    eprintln!("skipping interop test: {msg}");
    None
}

/// Runs a Python script (given as source) with the peers' interpreter, with `args`.
pub fn python_command(python: &std::path::Path, script: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(python);
    cmd.arg("-c").arg(script).args(args);
    cmd
}
