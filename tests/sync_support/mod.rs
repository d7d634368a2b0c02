//! Helpers for the sync tests: a private attachment registry per test, unique object
//! names cleaned up on drop, the peer binary, and reading a child's stdout line by line
//! with a deadline.
#![allow(dead_code, unreachable_pub)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::Command;
use std::sync::mpsc;
use std::time::Duration;

use fastipc::named::{Kind, Registry, segment_name};

use crate::common::{ChildGuard, ShmCleanup, unique_name};

/// One test's world: a registry directory of its own (so peers and sweeps of other tests
/// never see its objects) and the segments to remove when it ends, even on failure.
pub struct World {
    pub registry: Registry,
    pub dir: PathBuf,
    cleanup: ShmCleanup,
}

impl World {
    pub fn new(tag: &str) -> World {
        let dir = std::env::temp_dir().join(unique_name(&format!("{tag}-reg")));
        let mut cleanup = ShmCleanup::new();
        cleanup.add_dir(&dir);
        World {
            registry: Registry::at(&dir),
            dir,
            cleanup,
        }
    }

    /// A fresh object name of `kind`; its segment is removed when the world ends.
    pub fn name(&mut self, kind: Kind, tag: &str) -> String {
        let name = unique_name(tag);
        self.cleanup
            .add_segment(segment_name(kind, &name).expect("valid name"));
        name
    }

    /// A fresh plain segment name, removed when the world ends.
    pub fn segment(&mut self, tag: &str) -> String {
        let name = unique_name(tag);
        self.cleanup.add_segment(&name);
        name
    }

    /// The peer binary with `args`, registering in this world's registry.
    pub fn peer(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_peer-sync"));
        cmd.args(args).env("FASTIPC_PID_DIR", &self.dir);
        cmd
    }

    /// A Python script with the peers' interpreter, registering in this world's registry.
    pub fn python(&self, python: &std::path::Path, script: &str, args: &[&str]) -> Command {
        let mut cmd = crate::common::python_command(python, script, args);
        cmd.env("FASTIPC_PID_DIR", &self.dir);
        cmd
    }

    /// The segment name of object `name` of `kind`.
    pub fn segment_of(kind: Kind, name: &str) -> String {
        segment_name(kind, name).expect("valid name")
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
