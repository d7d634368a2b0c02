use fastipc::IpcMessage;

#[derive(IpcMessage, Clone, Copy)]
#[repr(u8)]
enum Side {
    Buy,
    Sell,
}

fn main() {}
