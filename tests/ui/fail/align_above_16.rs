use fastipc::IpcMessage;

#[derive(IpcMessage, Clone, Copy)]
#[repr(C, align(64))]
struct CacheLine {
    words: [u64; 8],
}

fn main() {}
