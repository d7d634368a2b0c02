//! Child processes of the harness: this same binary in a `child` role, or a Python peer.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// A running child; killed and reaped if dropped before [`Child::finish`].
pub(crate) struct Child {
    inner: std::process::Child,
    what: String,
}

impl Child {
    /// This binary as `xbench child ROLE ARGS...`.
    pub(crate) fn role(role: &str, args: &[String]) -> std::io::Result<Child> {
        let exe = std::env::current_exe()?;
        let mut cmd = Command::new(exe);
        cmd.arg("child").arg(role).args(args);
        Child::spawn(cmd, role)
    }

    /// A Python peer running `script` with `args`.
    pub(crate) fn python(
        python: &PathBuf,
        script: &str,
        args: &[String],
        what: &str,
    ) -> std::io::Result<Child> {
        let mut cmd = Command::new(python);
        cmd.arg("-c").arg(script).args(args);
        Child::spawn(cmd, what)
    }

    fn spawn(mut cmd: Command, what: &str) -> std::io::Result<Child> {
        let inner = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        Ok(Child {
            inner,
            what: what.to_owned(),
        })
    }

    /// Waits up to `timeout` for the child to exit successfully; returns its stdout.
    pub(crate) fn finish(mut self, timeout: Duration) -> std::io::Result<String> {
        let start = Instant::now();
        let status = loop {
            if let Some(status) = self.inner.try_wait()? {
                break status;
            }
            if start.elapsed() > timeout {
                return Err(std::io::Error::new(
                    std::io::ErrorKind::TimedOut,
                    format!("child `{}` did not finish within {timeout:?}", self.what),
                ));
            }
            std::thread::sleep(Duration::from_millis(1));
        };
        let mut out = String::new();
        if let Some(mut s) = self.inner.stdout.take() {
            s.read_to_string(&mut out)?;
        }
        if !status.success() {
            return Err(std::io::Error::other(format!(
                "child `{}` failed: {status}",
                self.what
            )));
        }
        Ok(out)
    }
}

impl Drop for Child {
    fn drop(&mut self) {
        if let Ok(None) = self.inner.try_wait() {
            let _ = self.inner.kill();
            let _ = self.inner.wait();
        }
    }
}

/// The Python interpreter with the peers installed: `$FASTIPC_PYTHON`, else the
/// workspace's `.venv/bin/python` (made by `bash scripts/test.sh`), if it imports
/// `slick_queue_py`.
pub(crate) fn python() -> Option<PathBuf> {
    let candidate = std::env::var_os("FASTIPC_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR"))
                .join("..")
                .join(".venv/bin/python")
        });
    let ok = Command::new(&candidate)
        .args(["-c", "import slick_queue_py"])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    ok.then_some(candidate)
}
