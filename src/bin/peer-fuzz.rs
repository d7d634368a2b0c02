//! Test peer of the bad-input fuzz test (`tests/reliability_fuzz.rs`): makes valid
//! segments of every kind (a queue with messages in it, a held mutex, a semaphore, an
//! event, a shared cell), then for each case mutates one's bytes and length, writes it to
//! `/dev/shm`, and opens it through every entry point: the typed queue (consumer and
//! producer: receive, send), `Ring::open` / `Ring::inspect` / `Ring::read`, the named
//! objects (open, try, a 1 ms timed wait, post/set), `SharedCell::open_in` and the CLI's
//! `inspect` (its library, as `fastipc inspect` runs it). Every outcome must be a value
//! or a typed error: a panic, a signal or a hang fails the test (which runs this peer
//! with a hard timeout and prints the case that did it).
//!
//! ```text
//! peer-fuzz SEED FIRST COUNT    run cases FIRST..FIRST+COUNT of SEED; print "case I" before
//!                               each, then "done COUNT"
//! ```
//! A case is reproducible from (SEED, I) alone.

use std::io::Write as _;
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

use fastipc::named::cell::segment_name as cell_segment_name;
use fastipc::named::registry::Registry;
use fastipc::named::{Kind, segment_name};
use fastipc::queue::Ring;
use fastipc::{NamedEvent, NamedMutex, NamedSemaphore, SharedCell, SlickQueue};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let parsed: Option<(u64, u64, u64)> = (|| {
        Some((
            args.first()?.parse().ok()?,
            args.get(1)?.parse().ok()?,
            args.get(2)?.parse().ok()?,
        ))
    })();
    let Some((seed, first, count)) = parsed else {
        eprintln!("usage: peer-fuzz SEED FIRST COUNT");
        return ExitCode::FAILURE;
    };
    let dir = std::env::temp_dir().join(format!("fipct-fuzz-reg-{}", std::process::id()));
    let registry = Registry::at(&dir);
    let templates = templates(&registry);
    let mut out = std::io::stdout().lock();
    for i in first..first + count {
        let _ = writeln!(out, "case {i}");
        let _ = out.flush();
        run_case(&registry, &templates, seed, i);
    }
    let _ = writeln!(out, "done {count}");
    let _ = std::fs::remove_dir_all(&dir);
    ExitCode::SUCCESS
}

/// splitmix64: a small, seedable generator (the cases need reproducibility, not quality).
struct Rng(u64);

impl Rng {
    fn new(seed: u64, case: u64) -> Rng {
        let mut r = Rng(seed ^ case.wrapping_mul(0x9E37_79B9_7F4A_7C15));
        r.next();
        r
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn below(&mut self, n: u64) -> u64 {
        if n == 0 { 0 } else { self.next() % n }
    }
}

#[derive(Clone, Copy, Debug)]
enum What {
    Queue,
    Mutex,
    Semaphore,
    Event,
    Cell,
}

const WHATS: [What; 5] = [
    What::Queue,
    What::Mutex,
    What::Semaphore,
    What::Event,
    What::Cell,
];

/// The bytes of a valid segment of each kind.
struct Templates {
    bytes: Vec<(What, Vec<u8>)>,
}

fn shm_bytes(segment: &str) -> Vec<u8> {
    std::fs::read(Path::new("/dev/shm").join(segment)).expect("read a template segment")
}

fn templates(registry: &Registry) -> Templates {
    let tag = format!("fipct-fuzz-tpl-{}", std::process::id());
    let mut bytes = Vec::new();
    {
        let name = format!("{tag}-q");
        let q = SlickQueue::<u64>::create(&name, 8).expect("template queue");
        let tx = q.producer().expect("template producer");
        for v in 0..5u64 {
            tx.send(&v).expect("send");
        }
        bytes.push((What::Queue, shm_bytes(&name)));
        let _ = fastipc::Segment::unlink(&name);
    }
    {
        let name = format!("{tag}-m");
        let m = NamedMutex::open_in(registry, &name).expect("template mutex");
        let guard = m.lock().unwrap_or_else(|d| d.into_guard());
        bytes.push((
            What::Mutex,
            shm_bytes(&segment_name(Kind::Mutex, &name).unwrap()),
        ));
        drop(guard);
        let _ = m.close();
    }
    {
        let name = format!("{tag}-s");
        let s = NamedSemaphore::open_in(registry, &name, 3).expect("template semaphore");
        bytes.push((
            What::Semaphore,
            shm_bytes(&segment_name(Kind::Semaphore, &name).unwrap()),
        ));
        let _ = s.close();
    }
    {
        let name = format!("{tag}-e");
        let e = NamedEvent::open_in(registry, &name).expect("template event");
        e.set();
        bytes.push((
            What::Event,
            shm_bytes(&segment_name(Kind::Event, &name).unwrap()),
        ));
        let _ = e.close();
    }
    {
        let name = format!("{tag}-c");
        let c = SharedCell::<u64>::open_or_create_in(registry, &name).expect("template cell");
        let _ = c.store(&0xABCD);
        bytes.push((What::Cell, shm_bytes(&cell_segment_name(&name).unwrap())));
        drop(c);
    }
    Templates { bytes }
}

/// Values that sit on the edges of what the decoders check.
const INTERESTING: [u64; 12] = [
    0,
    1,
    2,
    3,
    0x7F,
    0xFF,
    0x7FFF_FFFF,
    0x8000_0000,
    0xFFFF_FFFF,
    1 << 48,
    u64::MAX >> 1,
    u64::MAX,
];

fn mutate(rng: &mut Rng, bytes: &mut Vec<u8>) {
    let n = 1 + rng.below(8);
    for _ in 0..n {
        if bytes.is_empty() {
            break;
        }
        let len = bytes.len() as u64;
        // Most of the checks are in the first 128 bytes (the headers).
        let span = if rng.below(4) == 0 { len } else { len.min(128) };
        match rng.below(4) {
            0 => {
                let at = rng.below(span) as usize;
                bytes[at] = rng.next() as u8;
            }
            1 => {
                let at = rng.below(span) as usize;
                bytes[at] ^= 1 << rng.below(8);
            }
            2 => {
                let at = (rng.below(span) & !3) as usize;
                let v = INTERESTING[rng.below(INTERESTING.len() as u64) as usize] as u32;
                let v = if rng.below(3) == 0 {
                    std::process::id()
                } else {
                    v
                };
                for (k, b) in v.to_le_bytes().into_iter().enumerate() {
                    if let Some(slot) = bytes.get_mut(at + k) {
                        *slot = b;
                    }
                }
            }
            _ => {
                let at = (rng.below(span) & !7) as usize;
                let v = INTERESTING[rng.below(INTERESTING.len() as u64) as usize];
                for (k, b) in v.to_le_bytes().into_iter().enumerate() {
                    if let Some(slot) = bytes.get_mut(at + k) {
                        *slot = b;
                    }
                }
            }
        }
    }
    match rng.below(6) {
        // Cut anywhere, down to nothing.
        0 => {
            let len = rng.below(bytes.len() as u64 + 1) as usize;
            bytes.truncate(len);
        }
        // Grown by zeros or random bytes.
        1 => {
            let extra = 1 + rng.below(256) as usize;
            let random = rng.below(2) == 0;
            for _ in 0..extra {
                bytes.push(if random { rng.next() as u8 } else { 0 });
            }
        }
        _ => {}
    }
}

fn write_segment(segment: &str, bytes: &[u8]) {
    let path = Path::new("/dev/shm").join(segment);
    let _ = std::fs::remove_file(&path);
    std::fs::write(&path, bytes).expect("write the fuzzed segment");
}

fn run_case(registry: &Registry, templates: &Templates, seed: u64, i: u64) {
    let mut rng = Rng::new(seed, i);
    let (what, template) = &templates.bytes[rng.below(WHATS.len() as u64) as usize];
    let mut bytes = template.clone();
    mutate(&mut rng, &mut bytes);
    let name = format!("fipct-fuzz-{}-{i}", std::process::id());
    let segment = match what {
        What::Queue => name.clone(),
        What::Mutex => segment_name(Kind::Mutex, &name).unwrap(),
        What::Semaphore => segment_name(Kind::Semaphore, &name).unwrap(),
        What::Event => segment_name(Kind::Event, &name).unwrap(),
        What::Cell => cell_segment_name(&name).unwrap(),
    };
    write_segment(&segment, &bytes);
    let ms = Duration::from_millis(1);
    match what {
        What::Queue => {
            if let Ok(q) = SlickQueue::<u64>::open(&name) {
                // A damaged endpoint table may be refused (full, foreign): a typed error.
                let mut rx = q.consumer_from_oldest().ok();
                for _ in 0..4 {
                    if let Some(rx) = rx.as_mut() {
                        let _ = rx.try_recv();
                    }
                }
                // try_send: a damaged lossless queue may be full for good, and a blocking
                // send would rightly wait for its (recorded) consumers.
                if let Ok(tx) = q.producer() {
                    let _ = tx.try_send(&7);
                }
                if let Some(rx) = rx.as_mut() {
                    let _ = rx.recv_timeout(ms);
                }
            }
            if let Ok(ring) = Ring::open(&name, None) {
                let _ = ring.header();
                let mut cursor = 0;
                let mut out = Vec::new();
                for _ in 0..4 {
                    let _ = ring.read(&mut cursor, &mut out);
                }
                let _ = ring.read_last(&mut out);
            }
            let _ = Ring::inspect(&name);
        }
        What::Mutex => {
            if let Ok(m) = NamedMutex::open_in(registry, &name) {
                drop(m.try_lock());
                let _ = m.lock_timeout(ms).map(drop).map_err(|e| e.to_string());
                let _ = m.owner_pid();
                let _ = m.close();
            }
        }
        What::Semaphore => {
            if let Ok(s) = NamedSemaphore::open_in(registry, &name, 0) {
                let _ = s.try_wait();
                let _ = s.wait_timeout(ms);
                let _ = s.post(1);
                let _ = s.info();
                let _ = s.close();
            }
        }
        What::Event => {
            if let Ok(e) = NamedEvent::open_in(registry, &name) {
                let _ = e.is_set();
                let _ = e.wait_timeout(ms);
                e.set();
                e.clear();
                let _ = e.close();
            }
        }
        What::Cell => {
            if let Ok(c) = SharedCell::<u64>::open_in(registry, &name) {
                match c.lock_timeout(ms) {
                    Ok(mut g) => *g = 1,
                    Err(fastipc::LockError::OwnerDied(d)) => *d.into_guard() = 2,
                    Err(_) => {}
                }
            }
        }
    }
    // The CLI's `inspect` of what is left under the name (the named objects may have
    // removed it on close: write it again).
    write_segment(&segment, &bytes);
    if let Ok(report) = fastipc_cli::inspect::inspect(Path::new("/dev/shm"), &segment, registry) {
        let _ = report.to_string();
    }
    let _ = std::fs::remove_file(Path::new("/dev/shm").join(&segment));
}
