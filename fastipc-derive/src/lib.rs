//! `#[derive(IpcMessage)]` for fastipc.
//!
//! The derive itself lands with its own issue; until then this crate only reserves its
//! place in the workspace so that `fastipc`'s `derive` feature resolves.
