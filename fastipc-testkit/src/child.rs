//! Child processes for tests: [`ChildGuard`] kills and reaps on drop and bounds every
//! wait; [`Lines`] reads a child's stdout line by line with a deadline.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// A child process that is killed and reaped when dropped, so a failing test never
/// leaves it running.
pub struct ChildGuard {
    child: Option<Child>,
    what: String,
}

impl ChildGuard {
    /// Spawns `cmd` with stdin closed and stdout and stderr piped; panics if it cannot.
    pub fn spawn(mut cmd: Command) -> ChildGuard {
        ChildGuard::try_spawn(&mut cmd).unwrap_or_else(|e| panic!("cannot spawn {cmd:?}: {e}"))
    }

    /// [`ChildGuard::spawn`], returning the spawn error instead of panicking.
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

    /// The child's process id.
    pub fn id(&self) -> u32 {
        self.child.as_ref().expect("child").id()
    }

    /// The child itself (e.g. to take its stdout, or to kill it without reaping).
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

fn read_all<R: Read>(r: Option<&mut R>) -> Vec<u8> {
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

/// A child's stdout, line by line, read on a thread.
pub struct Lines {
    rx: mpsc::Receiver<String>,
}

impl Lines {
    /// Takes `child`'s stdout.
    pub fn of(child: &mut ChildGuard) -> Lines {
        let stdout = child.child_mut().stdout.take().expect("stdout is piped");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Lines { rx }
    }

    /// The next line, or `None` if none comes within `timeout` (or stdout closed).
    pub fn next(&self, timeout: Duration) -> Option<String> {
        self.rx.recv_timeout(timeout).ok()
    }

    /// Panics unless the next line, within `timeout`, is `want`.
    pub fn expect(&self, want: &str, timeout: Duration) {
        match self.next(timeout) {
            Some(line) if line == want => {}
            other => panic!("expected {want:?} from the child within {timeout:?}, got {other:?}"),
        }
    }
}
