use fastipc::IpcMessage;

// A plain struct that does not derive IpcMessage: rustc's trait error lands on the field.
#[derive(Clone, Copy)]
#[repr(C)]
struct Price {
    cents: u64,
}

// A type alias hides `bool` from the derive; the trait bound still refuses it.
type Flag = bool;

#[derive(IpcMessage, Clone, Copy)]
#[repr(C)]
struct Tick {
    price: Price,
    flags: [Flag; 8],
}

fn main() {}
