use fastipc::IpcMessage;

#[derive(IpcMessage, Clone, Copy)]
#[repr(C)]
struct Envelope<T> {
    seq: u64,
    payload: T,
}

fn main() {}
