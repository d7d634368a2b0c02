//! The Python peers from PyPI: their interpreter (checked for the pinned versions), and
//! scripts run with it.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

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
/// ([`PEERS`], checked with [`check_peers`]): `$FASTIPC_PYTHON`, else
/// `<workspace>/.venv/bin/python` (made by `scripts/test.sh`). `None` (test skipped, with
/// a note) when there is none; under `CI=true` a missing peer fails the test instead.
pub fn python() -> Option<PathBuf> {
    let candidate = std::env::var_os("FASTIPC_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../.venv/bin/python"));
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
pub fn python_command(python: &Path, script: &str, args: &[&str]) -> Command {
    let mut cmd = Command::new(python);
    cmd.arg("-c").arg(script).args(args);
    cmd
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The peer check wants the pinned versions, not merely modules that import: another
    /// version, or an interpreter that runs nothing, is not taken for the peers.
    #[test]
    fn the_peer_check_wants_the_pinned_versions() {
        assert_eq!(judge_peers(true, &format!("{PEERS}\n"), ""), Ok(()));
        let other = judge_peers(true, "fastipc==0.1.4 slick-queue-py==2.3.0\n", "");
        assert_eq!(
            other,
            Err("has fastipc==0.1.4 slick-queue-py==2.3.0".to_owned())
        );
        let missing = judge_peers(
            false,
            "",
            "Traceback (most recent call last):\nModuleNotFoundError: No module named 'fastipc'\n",
        );
        assert!(missing.unwrap_err().contains("No module named 'fastipc'"));
        // `true` succeeds whatever it is asked to run: the import-only check took it for the
        // peers.
        let err = check_peers(Path::new("true")).unwrap_err();
        assert!(err.contains("printed no versions"), "{err}");
    }
}
