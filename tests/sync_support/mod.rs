//! Helpers for the sync tests: a private attachment registry per test, unique object
//! names cleaned up on drop, and the peer binary.
#![allow(dead_code, unreachable_pub)]

use std::path::PathBuf;
use std::process::Command;

use fastipc::named::{Kind, Registry, segment_name};
use fastipc_testkit::{ShmCleanup, unique_name};

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
        let mut cmd = fastipc_testkit::python_command(python, script, args);
        cmd.env("FASTIPC_PID_DIR", &self.dir);
        cmd
    }

    /// The segment name of object `name` of `kind`.
    pub fn segment_of(kind: Kind, name: &str) -> String {
        segment_name(kind, name).expect("valid name")
    }
}
