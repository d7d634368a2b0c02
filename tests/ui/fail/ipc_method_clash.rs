use fastipc::IpcMessage;

// The functions `#[ipc(...)]` generates are inherent: one of the same name in another
// `impl` block is a duplicate definition.
#[derive(IpcMessage, Clone, Copy)]
#[repr(C)]
#[ipc(queue = "ticks", capacity = 1024, shared = "last-tick")]
struct Tick {
    price: u64,
}

impl Tick {
    fn producer() {}
    fn shared() {}
}

fn main() {}
