use fastipc::IpcMessage;

#[derive(IpcMessage, Clone, Copy)]
#[repr(C)]
union Value {
    int: u64,
    float: f64,
}

fn main() {}
