//! Bridge benchmark: throughput of 8- and 64-byte messages over loopback TCP, exporter
//! to importer (queue to queue), next to plain Zenoh pub/sub of the same payloads (one
//! Zenoh message per payload, flushed at once with `express`, and with Zenoh's own
//! batching); then end-to-end latency p50/p99 at a low rate, both ways.
//!
//! ```text
//! cargo run --release -p fastipc-zenoh --bin bridge-bench            # full run
//! cargo run -p fastipc-zenoh --bin bridge-bench -- --smoke           # a few messages, for CI
//! ```
//! Everything runs in this process: two Zenoh sessions joined over TCP on 127.0.0.1
//! (multicast scouting off), named queues with unique names, removed at the end.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use fastipc::{IpcMessage, SlickQueue};
use fastipc_zenoh::{BridgeConfig, export, import};
use zenoh::Wait;
use zenoh::qos::CongestionControl;

struct Scale {
    messages: usize,
    latency_messages: usize,
    rate: f64,
}

fn main() {
    let smoke = std::env::args().any(|a| a == "--smoke");
    let scale = if smoke {
        Scale {
            messages: 2000,
            latency_messages: 20,
            rate: 200.0,
        }
    } else {
        Scale {
            messages: 500_000,
            latency_messages: 2000,
            rate: 1000.0,
        }
    };
    println!("| case | payload | messages | msg/s | MB/s |");
    println!("|---|---|---|---|---|");
    throughput::<[u8; 8]>(&scale);
    throughput::<[u8; 64]>(&scale);
    println!();
    println!(
        "| latency at {} msg/s | payload | p50 µs | p99 µs |",
        scale.rate
    );
    println!("|---|---|---|---|");
    latency::<[u8; 64]>(&scale);
}

fn port(attempt: u16) -> u16 {
    20000
        + (std::process::id() as u16)
            .wrapping_mul(31)
            .wrapping_add(attempt.wrapping_mul(1597))
            % 40000
}

/// A listening and a connected session on a free port.
fn sessions() -> (zenoh::Session, zenoh::Session) {
    for attempt in 0..20 {
        let p = port(attempt);
        let listen = BridgeConfig::default()
            .no_multicast()
            .listen(format!("tcp/127.0.0.1:{p}"));
        if let Ok(a) = zenoh::open(listen.to_zenoh().expect("config")).wait() {
            let connect = BridgeConfig::default()
                .no_multicast()
                .connect(format!("tcp/127.0.0.1:{p}"));
            let b = zenoh::open(connect.to_zenoh().expect("config"))
                .wait()
                .expect("connect");
            return (a, b);
        }
    }
    panic!("no free port");
}

fn row(case: &str, size: usize, n: usize, secs: f64) {
    println!(
        "| {case} | {size} B | {n} | {:.0} | {:.1} |",
        n as f64 / secs,
        (n * size) as f64 / secs / 1e6
    );
}

fn throughput<T: IpcMessage>(scale: &Scale) {
    let size = size_of::<T>();
    for express in [true, false] {
        let (sub_s, pub_s) = sessions();
        let got = Arc::new(AtomicU64::new(0));
        let g = Arc::clone(&got);
        let _sub = sub_s
            .declare_subscriber("bench/plain")
            .callback(move |_| {
                g.fetch_add(1, Ordering::Relaxed);
            })
            .wait()
            .unwrap();
        let publisher = pub_s
            .declare_publisher("bench/plain")
            .congestion_control(CongestionControl::Block)
            .express(express)
            .wait()
            .unwrap();
        wait_match(&publisher);
        let payload = vec![7u8; size];
        let start = Instant::now();
        for _ in 0..scale.messages {
            publisher.put(payload.clone()).wait().unwrap();
        }
        let done = wait_count(&got, scale.messages as u64);
        let case = if express {
            "plain Zenoh, one message per payload (express)"
        } else {
            "plain Zenoh, one put per payload (Zenoh batching)"
        };
        match done {
            true => row(case, size, scale.messages, start.elapsed().as_secs_f64()),
            false => println!(
                "| {case} | {size} B | {} of {} arrived | - | - |",
                got.load(Ordering::Relaxed),
                scale.messages
            ),
        }
        drop(publisher);
        let _ = pub_s.close().wait();
        let _ = sub_s.close().wait();
    }
    // Queue -> exporter -> importer -> queue.
    let tag = format!("fipc-bench-{}-{size}", std::process::id());
    let (src, dst) = (format!("{tag}-src"), format!("{tag}-dst"));
    let cap = scale.messages.next_power_of_two();
    let source = SlickQueue::<T>::create(&src, cap).expect("source queue");
    let sink = SlickQueue::<T>::create(&dst, cap).expect("destination queue");
    let key = format!("bench/{tag}");
    let (importer, p) = (0..20)
        .find_map(|a| {
            let c = BridgeConfig::default()
                .no_multicast()
                .listen(format!("tcp/127.0.0.1:{}", port(a + 100)));
            import::<T>(&key, &dst, &c).ok().map(|h| (h, port(a + 100)))
        })
        .expect("importer");
    let c = BridgeConfig::default()
        .no_multicast()
        .connect(format!("tcp/127.0.0.1:{p}"))
        .lossless(true);
    let exporter = export::<T>(&src, &key, &c).expect("exporter");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !exporter.matched() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut rx = sink.consumer().expect("consumer");
    let tx = source.producer().expect("producer");
    let start = Instant::now();
    let msg: T = bytemuck::Zeroable::zeroed();
    let n = scale.messages;
    let producer = std::thread::spawn(move || {
        for _ in 0..n {
            tx.send(&msg).unwrap();
        }
    });
    let mut received = 0;
    while received < n {
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(_) => received += 1,
            Err(e) => {
                println!("| bridge | {size} B | stopped after {received}: {e} | - | - |");
                break;
            }
        }
    }
    if received == n {
        row(
            "fastipc bridge (queue to queue, batched)",
            size,
            n,
            start.elapsed().as_secs_f64(),
        );
    }
    producer.join().unwrap();
    drop(exporter);
    drop(importer);
    let _ = fastipc::queue::remove(&src);
    let _ = fastipc::queue::remove(&dst);
}

fn wait_match(publisher: &zenoh::pubsub::Publisher<'_>) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !publisher
        .matching_status()
        .wait()
        .is_ok_and(|m| m.matching())
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn wait_count(got: &AtomicU64, n: u64) -> bool {
    let deadline = Instant::now() + Duration::from_secs(60);
    while got.load(Ordering::Relaxed) < n {
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_micros(200));
    }
    true
}

fn percentiles(mut v: Vec<u64>) -> (f64, f64) {
    if v.is_empty() {
        return (f64::NAN, f64::NAN);
    }
    v.sort_unstable();
    let at = |q: f64| v[((v.len() - 1) as f64 * q) as usize] as f64 / 1000.0;
    (at(0.5), at(0.99))
}

/// Latency: each payload carries its send time (ns since `epoch`) in its first 8 bytes.
fn latency<T: IpcMessage>(scale: &Scale) {
    let size = size_of::<T>();
    let epoch = Instant::now();
    let interval = Duration::from_secs_f64(1.0 / scale.rate);
    // Plain Zenoh, express.
    {
        let (sub_s, pub_s) = sessions();
        let samples = Arc::new(std::sync::Mutex::new(Vec::new()));
        let s = Arc::clone(&samples);
        let _sub = sub_s
            .declare_subscriber("bench/lat")
            .callback(move |sample| {
                let b = sample.payload().to_bytes();
                let sent = u64::from_le_bytes(b[..8].try_into().unwrap());
                let now = epoch.elapsed().as_nanos() as u64;
                s.lock().unwrap().push(now - sent);
            })
            .wait()
            .unwrap();
        let publisher = pub_s
            .declare_publisher("bench/lat")
            .express(true)
            .wait()
            .unwrap();
        wait_match(&publisher);
        for _ in 0..scale.latency_messages {
            let mut p = vec![0u8; size];
            p[..8].copy_from_slice(&(epoch.elapsed().as_nanos() as u64).to_le_bytes());
            publisher.put(p).wait().unwrap();
            std::thread::sleep(interval);
        }
        std::thread::sleep(Duration::from_millis(200));
        let (p50, p99) = percentiles(samples.lock().unwrap().clone());
        println!("| plain Zenoh (express) | {size} B | {p50:.1} | {p99:.1} |");
    }
    // The bridge, queue to queue.
    let tag = format!("fipc-benchlat-{}", std::process::id());
    let (src, dst) = (format!("{tag}-src"), format!("{tag}-dst"));
    let source = SlickQueue::<T>::create(&src, 4096).expect("source queue");
    let sink = SlickQueue::<T>::create(&dst, 4096).expect("destination queue");
    let key = format!("bench/{tag}");
    let (importer, p) = (0..20)
        .find_map(|a| {
            let c = BridgeConfig::default()
                .no_multicast()
                .listen(format!("tcp/127.0.0.1:{}", port(a + 200)));
            import::<T>(&key, &dst, &c).ok().map(|h| (h, port(a + 200)))
        })
        .expect("importer");
    let c = BridgeConfig::default()
        .no_multicast()
        .connect(format!("tcp/127.0.0.1:{p}"));
    let exporter = export::<T>(&src, &key, &c).expect("exporter");
    let deadline = Instant::now() + Duration::from_secs(30);
    while !exporter.matched() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    let mut rx = sink.consumer().expect("consumer");
    let tx = source.producer().expect("producer");
    let n = scale.latency_messages;
    let producer = std::thread::spawn(move || {
        for _ in 0..n {
            let mut m: T = bytemuck::Zeroable::zeroed();
            bytemuck::bytes_of_mut(&mut m)[..8]
                .copy_from_slice(&(epoch.elapsed().as_nanos() as u64).to_le_bytes());
            tx.send(&m).unwrap();
            std::thread::sleep(interval);
        }
    });
    let mut lat = Vec::new();
    while lat.len() < n {
        match rx.recv_timeout(Duration::from_secs(10)) {
            Ok(m) => {
                let sent = u64::from_le_bytes(bytemuck::bytes_of(&m)[..8].try_into().unwrap());
                lat.push(epoch.elapsed().as_nanos() as u64 - sent);
            }
            Err(_) => break,
        }
    }
    producer.join().unwrap();
    let (p50, p99) = percentiles(lat);
    println!(
        "| fastipc bridge (queue to queue, 1 ms batch window) | {size} B | {p50:.1} | {p99:.1} |"
    );
    drop(exporter);
    drop(importer);
    let _ = fastipc::queue::remove(&src);
    let _ = fastipc::queue::remove(&dst);
}
