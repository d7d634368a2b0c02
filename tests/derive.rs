//! `#[derive(IpcMessage)]`: the compile-fail and pass suites (trybuild, `tests/ui`), the
//! fingerprint's properties, and the behaviour of derived types.
//!
//! The `.stderr` snapshots are pinned to the toolchain of `rust-toolchain.toml`; refresh
//! them with `TRYBUILD=overwrite cargo test --test derive` after a toolchain bump.

use fastipc::IpcMessage;

#[test]
fn ui() {
    let t = trybuild::TestCases::new();
    t.compile_fail("tests/ui/fail/*.rs");
    t.pass("tests/ui/pass/*.rs");
}
