//! The bridge's errors: one enum, every failure typed.

use crate::ty::MessageType;

/// Why an export or an import could not start, or stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BridgeError {
    /// The local queue could not be opened, created or attached.
    #[error("local queue {queue:?}: {source}")]
    Queue {
        /// The local queue's name.
        queue: String,
        /// What the queue layer said.
        #[source]
        source: Box<fastipc::queue::OpenError>,
    },
    /// A message could not be written into the local queue.
    #[error("local queue {queue:?}: {source}")]
    Send {
        /// The local queue's name.
        queue: String,
        /// What the queue layer said.
        #[source]
        source: Box<fastipc::queue::SendError>,
    },
    /// The local queue holds another message type than the data bridged into (or out of)
    /// it: element sizes differ, or both sides record a fingerprint and they differ.
    #[error(
        "type mismatch on queue {queue:?}: the local queue holds {local}, the bridged data is {remote}"
    )]
    TypeMismatch {
        /// The local queue's name.
        queue: String,
        /// The type the local queue holds.
        local: Box<MessageType>,
        /// The type of the bridged data (the caller's type on export, the batch's type on
        /// import).
        remote: Box<MessageType>,
    },
    /// The queue does not exist and its element size is not known yet (an untyped import
    /// with no `--elem-size` stopped before the first batch came).
    #[error("queue {queue:?} does not exist and no element size was given")]
    UnknownElementSize {
        /// The local queue's name.
        queue: String,
    },
    /// A Zenoh session, publisher or subscriber could not be made or used.
    #[error("zenoh: {0}")]
    Zenoh(String),
    /// The Zenoh configuration (file, endpoint or option) is invalid.
    #[error("zenoh configuration: {0}")]
    Config(String),
    /// The key expression is invalid.
    #[error("invalid key expression {key:?}: {reason}")]
    InvalidKey {
        /// The key as given.
        key: String,
        /// What Zenoh said.
        reason: String,
    },
    /// A bridge thread panicked (a bug).
    #[error("the bridge thread panicked")]
    Panicked,
}

impl BridgeError {
    pub(crate) fn zenoh(e: impl core::fmt::Display) -> BridgeError {
        BridgeError::Zenoh(e.to_string())
    }
}
