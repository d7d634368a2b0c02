// Not a derive rule: the safe API of `SharedCell` must not reach the cell's own memory,
// where re-initialising the mutex under a live guard would let a second guard, a second
// `&mut T`, in (review B3).
use fastipc::SharedCell;
use fastipc::named::registry::Registry;

fn main() {
    let registry = Registry::at("/tmp/fastipc-ui-never-run");
    let cell = SharedCell::<u64>::open_or_create_in(&registry, "never-run").unwrap();
    let mut first = cell.lock().unwrap();
    // The cell's mapping is private to it.
    fastipc::Mutex::init(cell.segment().mem()).unwrap();
    let mut second = cell.try_lock().unwrap();
    *first = 1;
    *second = 2;
}

// Writing a cell header (which unlocks the cell's mutex) is `unsafe`: the memory must not
// be in use by a cell.
fn rewrite(mem: fastipc::MemRef<'_>) {
    fastipc::named::cell::layout::write_header::<u64>(mem).unwrap();
}
