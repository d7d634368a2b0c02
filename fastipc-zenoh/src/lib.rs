//! Bridge [`fastipc`] queues over [`zenoh`], typed end to end.
//!
//! [`export`] reads a local queue and publishes every message on a Zenoh key expression,
//! many messages per Zenoh message; [`import`] subscribes to a key expression and writes
//! every message into a local queue of the same type (created when missing). The type
//! (element size, fingerprint, name) travels in every batch, and an importer refuses
//! data of another type than its queue's ([`BridgeError::TypeMismatch`]). Losses are
//! counted, never hidden: upstream `Lagged` and abandoned messages, and what an exporter
//! read while no importer subscribed, are forwarded as counts; batches Zenoh dropped and
//! exporter restarts show as gaps ([`ImportStats`]). The exporter is a registered
//! consumer of its queue, so a lossless queue's producers wait for it; with
//! [`BridgeConfig::resume`] its position survives a crash and nothing is lost.
//!
//! The format of a batch is documented in `docs/BRIDGE.md` (and [`wire`]), so that other
//! Zenoh clients can read and write it.
//!
//! ```no_run
//! use fastipc_zenoh::{BridgeConfig, export, import};
//!
//! let config = BridgeConfig::default().connect("tcp/10.0.0.2:7447").no_multicast();
//! let exporting = export::<u64>("ticks", "fastipc/ticks", &config)?;
//! // on the other host:
//! let config = BridgeConfig::default().listen("tcp/0.0.0.0:7447").no_multicast();
//! let importing = import::<u64>("fastipc/ticks", "ticks-copy", &config)?;
//! println!("{:?}", importing.stats());
//! # Ok::<(), fastipc_zenoh::BridgeError>(())
//! ```

mod config;
mod error;
mod export;
mod import;
mod local;
mod stats;
mod ty;
pub mod wire;
mod worker;

use fastipc::IpcMessage;

pub use config::BridgeConfig;
pub use error::BridgeError;
pub use export::ExportHandle;
pub use import::ImportHandle;
pub use stats::{ExportStats, ImportStats};
pub use ty::MessageType;

/// Exports the existing queue `queue`, which must hold `T`, to the key expression `key`:
/// a reader of the queue, starting now, publishes every message.
pub fn export<T: IpcMessage>(
    queue: &str,
    key: &str,
    config: &BridgeConfig,
) -> Result<ExportHandle, BridgeError> {
    export::start(queue, Some(MessageType::of::<T>()), key, config)
}

/// [`export`] without a Rust type: the queue's own type (its element size, and its
/// fingerprint and name if recorded) travels with the data. With `element_size`, the
/// queue must have that element size.
pub fn export_untyped(
    queue: &str,
    key: &str,
    element_size: Option<usize>,
    config: &BridgeConfig,
) -> Result<ExportHandle, BridgeError> {
    export::start(queue, element_size.map(MessageType::untyped), key, config)
}

/// Removes what [`BridgeConfig::resume`] keeps in queue `queue` for the exporters to
/// `key`: their position, which holds a lossless queue's producers back while no
/// exporter runs. `Ok(false)` when there was none; an error while a live exporter holds
/// it.
pub fn forget(queue: &str, key: &str) -> Result<bool, BridgeError> {
    export::forget(queue, key)
}

/// Imports the key expression `key` into the queue `queue` of `T`, created (with
/// `config.capacity`) when missing. Batches of another type stop the import with
/// [`BridgeError::TypeMismatch`].
pub fn import<T: IpcMessage>(
    key: &str,
    queue: &str,
    config: &BridgeConfig,
) -> Result<ImportHandle, BridgeError> {
    import::start(key, queue, Some(MessageType::of::<T>()), config)
}

/// [`import`] without a Rust type. With `element_size`, the queue is opened or created
/// at once for that size; without, an existing queue is used as it is, and a missing one
/// is created for the type of the first batch.
pub fn import_untyped(
    key: &str,
    queue: &str,
    element_size: Option<usize>,
    config: &BridgeConfig,
) -> Result<ImportHandle, BridgeError> {
    import::start(key, queue, element_size.map(MessageType::untyped), config)
}
