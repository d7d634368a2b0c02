//! Helpers of the CLI tests: the built `fastipc` binary with a private attachment
//! registry, and its finished runs. The general ones (unique names, cleanup guards, child
//! processes, the Python peers) are in `fastipc-testkit`.
#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Output};
use std::time::Duration;

use fastipc_testkit::{ChildGuard, ShmCleanup, python_command, unique_name};

/// Generous bound on anything a test waits for (the machine is shared).
pub const LONG: Duration = Duration::from_secs(60);

/// A test's world: a private registry directory (the CLI and every peer get it as
/// `FASTIPC_PID_DIR`, so `sweep` never touches anyone else's registrations) and the
/// `/dev/shm` entries to remove on drop, even when the test fails.
pub struct World {
    pub registry: PathBuf,
    removed_on_drop: ShmCleanup,
}

impl World {
    pub fn new(tag: &str) -> World {
        let registry = std::env::temp_dir().join(unique_name(&format!("reg-{tag}")));
        std::fs::create_dir_all(&registry).unwrap();
        let mut removed_on_drop = ShmCleanup::new();
        removed_on_drop.add_dir(&registry);
        World {
            registry,
            removed_on_drop,
        }
    }

    /// A unique segment name, removed from `/dev/shm` on drop.
    pub fn segment(&mut self, tag: &str) -> String {
        let name = unique_name(tag);
        self.removed_on_drop.add_segment(&name);
        name
    }

    /// Removes `/dev/shm/<name>` on drop.
    pub fn cleanup(&mut self, name: &str) {
        self.removed_on_drop.add_segment(name);
    }

    /// The `fastipc` binary with this world's registry.
    pub fn cli(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_fastipc"));
        cmd.args(args).env("FASTIPC_PID_DIR", &self.registry);
        cmd
    }

    /// Runs the CLI to completion (bounded).
    pub fn run(&self, args: &[&str]) -> Run {
        ChildGuard::spawn(self.cli(args)).run()
    }

    /// A Python script with this world's registry.
    pub fn python(&self, py: &Path, script: &str, args: &[&str]) -> Command {
        let mut cmd = python_command(py, script, args);
        cmd.env("FASTIPC_PID_DIR", &self.registry);
        cmd
    }

    /// The registry folder of a segment.
    pub fn pids_dir(&self, segment: &str) -> PathBuf {
        self.registry.join(format!("{segment}.pids"))
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

/// Waiting for a child as a [`Run`].
pub trait Finish {
    /// The finished run (bounded by [`LONG`]).
    fn run(self) -> Run;
}

impl Finish for ChildGuard {
    fn run(self) -> Run {
        Run::of(self.output(LONG))
    }
}
