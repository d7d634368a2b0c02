//! Helpers of the CLI tests: the built `fastipc` binary with a private attachment
//! registry, unique names, cleanup guards, bounded waits on child processes, and the
//! Python peers (the pattern of the workspace's `tests/common`).
#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Generous bound on anything a test waits for (the machine is shared).
pub const LONG: Duration = Duration::from_secs(60);

/// A name no other test (in this or a concurrent run) uses.
pub fn unique_name(tag: &str) -> String {
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    format!(
        "fipcli-{tag}-{}-{}-{nanos:x}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// A test's world: a private registry directory (the CLI and every peer get it as
/// `FASTIPC_PID_DIR`, so `sweep` never touches anyone else's registrations) and the
/// `/dev/shm` entries to remove on drop, even when the test fails.
pub struct World {
    pub registry: PathBuf,
    files: Vec<PathBuf>,
}

impl World {
    pub fn new(tag: &str) -> World {
        let registry = std::env::temp_dir().join(unique_name(&format!("reg-{tag}")));
        std::fs::create_dir_all(&registry).unwrap();
        World {
            registry,
            files: Vec::new(),
        }
    }

    /// A unique segment name, removed from `/dev/shm` on drop.
    pub fn segment(&mut self, tag: &str) -> String {
        let name = unique_name(tag);
        self.files.push(Path::new("/dev/shm").join(&name));
        name
    }

    /// Removes `/dev/shm/<name>` on drop.
    pub fn cleanup(&mut self, name: &str) {
        self.files.push(Path::new("/dev/shm").join(name));
    }

    /// The `fastipc` binary with this world's registry.
    pub fn cli(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_fastipc"));
        cmd.args(args).env("FASTIPC_PID_DIR", &self.registry);
        cmd
    }

    /// Runs the CLI to completion (bounded).
    pub fn run(&self, args: &[&str]) -> Run {
        Run::of(ChildGuard::spawn(self.cli(args)).output(LONG))
    }

    /// A Python script with this world's registry.
    pub fn python(&self, py: &Path, script: &str, args: &[&str]) -> Command {
        let mut cmd = Command::new(py);
        cmd.arg("-c")
            .arg(script)
            .args(args)
            .env("FASTIPC_PID_DIR", &self.registry);
        cmd
    }

    /// The registry folder of a segment.
    pub fn pids_dir(&self, segment: &str) -> PathBuf {
        self.registry.join(format!("{segment}.pids"))
    }
}

impl Drop for World {
    fn drop(&mut self) {
        for f in &self.files {
            let _ = std::fs::remove_file(f);
        }
        let _ = std::fs::remove_dir_all(&self.registry);
    }
}

/// A finished CLI run.
#[derive(Debug)]
pub struct Run {
    pub status: ExitStatus,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn of(out: Output) -> Run {
        Run {
            status: out.status,
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    /// Asserts exit status 0; returns stdout.
    pub fn ok(&self) -> &str {
        assert!(self.status.success(), "expected success: {self:#?}");
        &self.stdout
    }

    /// Asserts a failure with exactly one line on stderr, `fastipc: ...`, containing
    /// every one of `words`; returns that line.
    pub fn fails_with(&self, code: i32, words: &[&str]) -> &str {
        assert_eq!(self.status.code(), Some(code), "{self:#?}");
        let lines: Vec<&str> = self.stderr.lines().collect();
        assert_eq!(lines.len(), 1, "one line on stderr: {self:#?}");
        assert!(lines[0].starts_with("fastipc: "), "{self:#?}");
        for w in words {
            assert!(lines[0].contains(w), "{w:?} not in {:?}", lines[0]);
        }
        lines[0]
    }

    /// Parses stdout as JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(self.ok()).unwrap_or_else(|e| panic!("{e}: {self:#?}"))
    }
}

/// A child process that is killed and reaped when dropped.
pub struct ChildGuard {
    child: Option<Child>,
    what: String,
}

impl ChildGuard {
    /// Spawns `cmd` with piped stdout and stderr.
    pub fn spawn(mut cmd: Command) -> ChildGuard {
        let what = format!("{cmd:?}");
        ChildGuard::try_spawn(&mut cmd).unwrap_or_else(|e| panic!("cannot spawn {what}: {e}"))
    }

    /// Spawns `cmd` with piped stdout and stderr, or returns the spawn error.
    pub fn try_spawn(cmd: &mut Command) -> std::io::Result<ChildGuard> {
        let what = format!("{cmd:?}");
        let child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        Ok(ChildGuard {
            child: Some(child),
            what,
        })
    }

    pub fn id(&self) -> u32 {
        self.child.as_ref().expect("child").id()
    }

    /// Sends SIGKILL and reaps the child.
    pub fn kill(&mut self) {
        if let Some(c) = self.child.as_mut() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Reads stdout lines until one equals `line` (bounded by `LONG`); panics with
    /// what the child printed otherwise.
    pub fn expect_line(&mut self, line: &str) {
        use std::io::BufRead;
        let child = self.child.as_mut().expect("child");
        let stdout = child.stdout.take().expect("stdout piped");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for l in std::io::BufReader::new(stdout).lines() {
                let Ok(l) = l else { break };
                if tx.send(l).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + LONG;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(left) {
                Ok(l) if l.trim() == line => return,
                Ok(_) => {}
                Err(_) => panic!("{} never printed {line:?}", self.what),
            }
        }
    }

    /// Waits at most `timeout` for the child to finish and returns its output; kills it
    /// and panics if it does not finish in time.
    pub fn output(mut self, timeout: Duration) -> Output {
        let mut child = self.child.take().expect("child");
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

    /// The finished run (bounded by `LONG`).
    pub fn run(self) -> Run {
        Run::of(self.output(LONG))
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

/// Polls `cond` every few milliseconds until it holds or `timeout` passes.
pub fn wait_until(timeout: Duration, mut cond: impl FnMut() -> bool) -> bool {
    let deadline = Instant::now() + timeout;
    loop {
        if cond() {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(2));
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

/// The Python interpreter with the PyPI peers at exactly the pinned versions ([`PEERS`],
/// checked with [`check_peers`]): `$FASTIPC_PYTHON`, else
/// `<workspace>/.venv/bin/python` (made by `scripts/test.sh`). `None` (test skipped,
/// with a note) when there is none; under `CI=true` a missing peer fails the test.
pub fn python() -> Option<PathBuf> {
    let candidate = std::env::var_os("FASTIPC_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../.venv/bin/python")
                .to_path_buf()
        });
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
