use fastipc::IpcMessage;

// Every problem is reported at once, each at its own place.
#[derive(IpcMessage, Clone, Copy)]
#[ipc(queue = "ticks", capacity = 1000)]
struct Tick {
    live: bool,
    index: usize,
    #[ipc(shared = "x")]
    price: u64,
}

fn main() {}
