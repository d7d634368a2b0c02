//! Helpers of the bridge's process tests: bridge processes on random loopback ports,
//! the test peer, signals.

#![allow(dead_code, unreachable_pub)]

use std::process::Command;
use std::time::Duration;

use fastipc_testkit::{ChildGuard, Lines};

#[path = "probe.rs"]
pub mod probe;

/// Deadline of one step (start, connect, a line).
pub const STEP: Duration = Duration::from_secs(60);

/// `fastipc-bridge ARGS`.
pub fn bridge_cmd(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_fastipc-bridge"));
    c.args(args);
    c
}

/// `bridge-test-peer ARGS`.
pub fn peer_cmd(args: &[&str]) -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_bridge-test-peer"));
    c.args(args);
    c
}

/// A running bridge process with its stdout lines.
pub struct Bridge {
    pub child: ChildGuard,
    pub lines: Lines,
}

impl Bridge {
    /// Sends SIGTERM and returns the last stdout line (the final counts) and the exit
    /// status's success, waiting at most [`STEP`].
    pub fn terminate(self) -> (bool, String) {
        let (ok, last, _) = self.stop_with("TERM");
        (ok, last)
    }

    /// Sends signal `sig` (`"INT"`, `"TERM"`); returns the exit status's success, the last
    /// stdout line (the final counts) and everything written on stderr (status lines).
    pub fn stop_with(mut self, sig: &str) -> (bool, String, String) {
        use std::io::Read;
        signal(self.child.id(), sig);
        let mut last = String::new();
        while let Some(line) = self.lines.next(STEP) {
            last = line;
        }
        let status = self
            .child
            .wait_timeout(STEP)
            .expect("the bridge exits after the signal");
        let mut stderr = String::new();
        if let Some(mut pipe) = self.child.child_mut().stderr.take() {
            let _ = pipe.read_to_string(&mut stderr);
        }
        (status.success(), last, stderr)
    }
}

/// Sends `kill -SIG pid`.
pub fn signal(pid: u32, sig: &str) {
    let ok = Command::new("kill")
        .arg(format!("-{sig}"))
        .arg(pid.to_string())
        .status()
        .expect("kill runs")
        .success();
    assert!(ok, "kill -{sig} {pid} failed");
}

/// A random port in 20000..60000 (bind to port 0 is not offered by every Zenoh
/// listener, so callers retry on a conflict).
fn random_port() -> u16 {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let mix = (u64::from(nanos) ^ (u64::from(std::process::id()) << 16))
        .wrapping_mul(0x9e37_79b9_7f4a_7c15);
    20000 + (mix >> 33) as u16 % 40000
}

/// Starts `fastipc-bridge import KEY QUEUE --listen tcp/127.0.0.1:PORT --no-multicast
/// EXTRA` on a free port (retrying others on a conflict); returns it once it printed
/// "ready", with its port.
pub fn start_import(key: &str, queue: &str, extra: &[&str]) -> (Bridge, u16) {
    let mut errors = Vec::new();
    for _ in 0..10 {
        let port = random_port();
        let listen = format!("tcp/127.0.0.1:{port}");
        let mut args = vec!["import", key, queue, "--listen", &listen, "--no-multicast"];
        args.extend_from_slice(extra);
        let mut child = ChildGuard::spawn(bridge_cmd(&args));
        let lines = Lines::of(&mut child);
        match lines.next(STEP) {
            Some(line) if line == "ready" => return (Bridge { child, lines }, port),
            other => {
                let out = child.output(STEP);
                errors.push(format!(
                    "port {port}: {other:?} {}",
                    String::from_utf8_lossy(&out.stderr)
                ));
            }
        }
    }
    panic!("no importer could start: {errors:#?}");
}

/// Starts `fastipc-bridge export QUEUE KEY --connect tcp/127.0.0.1:PORT --no-multicast
/// EXTRA`; returns once it printed "ready" and "matched" (the importer subscribes).
pub fn start_export(queue: &str, key: &str, port: u16, extra: &[&str]) -> Bridge {
    let connect = format!("tcp/127.0.0.1:{port}");
    let mut args = vec![
        "export",
        queue,
        key,
        "--connect",
        &connect,
        "--no-multicast",
    ];
    args.extend_from_slice(extra);
    let mut child = ChildGuard::spawn(bridge_cmd(&args));
    let lines = Lines::of(&mut child);
    lines.expect("ready", STEP);
    lines.expect("matched", STEP);
    Bridge { child, lines }
}

/// The value of `field=` in a final counts line.
pub fn field(line: &str, name: &str) -> u64 {
    line.split_whitespace()
        .find_map(|kv| kv.strip_prefix(&format!("{name}=")))
        .unwrap_or_else(|| panic!("no {name}= in {line:?}"))
        .parse()
        .expect("a number")
}
