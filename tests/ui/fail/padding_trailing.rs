use fastipc::IpcMessage;

#[derive(IpcMessage, Clone, Copy)]
#[repr(C)]
struct Tick {
    ts_ns: u64,
    price: f64,
    qty: u32,
    side: u8,
}

fn main() {}
