// The runtime's limits on the names of `#[ipc(...)]`, duplicated here because a
// proc-macro crate cannot depend on the runtime it generates code for. The workspace's
// `tests/derive.rs` includes this file and checks each constant against the runtime's.

/// The longest `queue` name: a queue's segment is `/dev/shm/NAME`, and a file name holds
/// 255 bytes (`fastipc::Segment::MAX_NAME_LEN`).
pub(crate) const MAX_QUEUE_NAME_LEN: usize = 255;

/// The longest `shared` name: 255 bytes minus the cell prefix `__fastipc_cell_` and the
/// registry's `.pids` suffix (`fastipc::named::cell::MAX_NAME_LEN`).
pub(crate) const MAX_SHARED_NAME_LEN: usize = 235;
