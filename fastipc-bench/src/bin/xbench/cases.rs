//! Every case of the run, and the targets computed from them.

use std::os::unix::net::UnixListener;
use std::sync::Arc;
use std::time::{Duration, Instant};

use std::sync::atomic::Ordering;

use fastipc::queue::{Mode, QueueOptions, SlickQueue};
use fastipc::{IpcMessage, Scope};
use fastipc_bench::affinity::{self, on_cpu};
use fastipc_bench::asyncq::AsyncPingPong;
use fastipc_bench::fastq::{self, PingPong, Shape};
use fastipc_bench::floors::{self, SpinLock};
use fastipc_bench::iox;
use fastipc_bench::layout_floor::FloorPingPong;
use fastipc_bench::locks::{self, BenchLock, FastMutex};
use fastipc_bench::queues::{self, Item, Placement};
use fastipc_bench::shared::{Ctl, Slot};
use fastipc_bench::stats::Latency;

use crate::Counts;
use crate::child::{PINGPONG_CAPACITY, wait_mode};
use crate::proc::{self, Child};
use crate::queue_rows::{self, BATCH};
use crate::report::{Book, Case, Figure, Kind, Target};

/// How long a child may take to start, attach and say it is ready.
pub(crate) const READY: Duration = Duration::from_secs(20);
/// How long a child may take to finish after the measured part.
pub(crate) const FINISH: Duration = Duration::from_secs(120);

/// The CPUs of a cross-core run (the same one twice on a one-CPU machine).
fn cpus() -> (usize, usize) {
    affinity::two_cpus().unwrap_or_else(|| {
        let c = affinity::allowed_cpus()[0];
        (c, c)
    })
}

fn wanted(only: &[String], title: &str) -> bool {
    let t = title.to_lowercase();
    only.is_empty() || only.iter().any(|o| t.contains(o.as_str()))
}

pub(crate) fn run_all(c: Counts, only: &[String]) -> std::io::Result<Book> {
    let mut book = Book::default();
    let (a, b) = cpus();
    book.section(&machine(c));
    let run = |book: &mut Book, case: Case<'_>| -> std::io::Result<()> {
        if wanted(only, &case.title) {
            book.run(case, c.reps)?;
        }
        Ok(())
    };

    // 1. Uncontended lock+unlock.
    run(&mut book, lock_case(c, a))?;
    // 2. Contended mutexes in threads.
    for threads in [2usize, 4] {
        run(&mut book, contended_case(c, threads, &[a, b]))?;
    }
    run(&mut book, contended_processes_case(c, a, b))?;
    // 3. Queue throughput in threads.
    for cap in [1024usize, 65536] {
        for producers in [1usize, 2] {
            run(
                &mut book,
                queue_case::<[u64; 1]>(c, "8 B", cap, producers, a, b),
            )?;
            run(
                &mut book,
                queue_case::<[u64; 8]>(c, "64 B", cap, producers, a, b),
            )?;
        }
    }
    // 4. Spinning ping-pong between processes.
    run(&mut book, spin_pingpong_case(c, a, b))?;
    // 5. Blocking hand-off between processes, cross-core and same-core.
    run(
        &mut book,
        blocking_case(c, a, b, c.futex_rounds_cross, "cross-core"),
    )?;
    run(
        &mut book,
        blocking_case(c, a, a, c.futex_rounds_same, "same core"),
    )?;
    // 6. The Python peers.
    if let Some(py) = proc::python() {
        run(&mut book, python_case(c, py, a, b))?;
    } else if wanted(only, "python") {
        eprintln!(
            "xbench: no Python peers (run `bash scripts/test.sh` or set FASTIPC_PYTHON); skipping them"
        );
    }

    // 7. Syscalls on the paths that must make none when nobody sleeps.
    if wanted(only, SYSCALL_TITLE) {
        syscalls(&mut book, c)?;
    }
    // 8. What pending async receives cost when nothing happens.
    if wanted(only, IDLE_TITLE) {
        async_idle(&mut book, c)?;
    }

    let t = targets(&book);
    crate::report::targets(&mut book, "Targets", &t);
    let t = issue13_targets(&book);
    crate::report::targets(&mut book, ISSUE13_TITLE, &t);
    Ok(book)
}

/// A short description of the machine and the run, from /proc.
fn machine(c: Counts) -> String {
    let read = |p: &str| std::fs::read_to_string(p).unwrap_or_default();
    let cpuinfo = read("/proc/cpuinfo");
    let field = |name: &str| {
        cpuinfo
            .lines()
            .find(|l| l.split(':').next().map(str::trim) == Some(name))
            .and_then(|l| l.split_once(':'))
            .map_or(String::from("?"), |(_, v)| v.trim().to_owned())
    };
    let hypervisor = if field("flags").split_whitespace().any(|f| f == "hypervisor") {
        ", virtual machine"
    } else {
        ""
    };
    format!(
        "\n### Machine\n\n{} (family {}, model {}){hypervisor}; {} CPUs allowed ({:?}); kernel {}; clock source {}; {} interleaved runs per variant.\n",
        field("model name"),
        field("cpu family"),
        field("model"),
        affinity::allowed_cpus().len(),
        affinity::allowed_cpus(),
        read("/proc/sys/kernel/osrelease").trim(),
        read("/sys/devices/system/clocksource/clocksource0/current_clocksource").trim(),
        c.reps,
    )
}

pub(crate) const LOCK_TITLE: &str = "Uncontended lock+unlock (one thread)";

fn lock_case<'a>(c: Counts, cpu: usize) -> Case<'a> {
    let n = c.lock_ops;
    Case::new(
        LOCK_TITLE,
        Kind::NsPerOp,
        format!(
            "Lock, add one to the protected counter, unlock; {n} operations per run on CPU {cpu}."
        ),
    )
    .variant("spin floor", move || {
        Ok(Figure::Scalar(on_cpu(cpu, move || {
            locks::uncontended(&SpinLock::new(0u64), n)
        })))
    })
    .variant("parking_lot", move || {
        Ok(Figure::Scalar(on_cpu(cpu, move || {
            locks::uncontended(&parking_lot::Mutex::new(0u64), n)
        })))
    })
    .variant("std", move || {
        Ok(Figure::Scalar(on_cpu(cpu, move || {
            locks::uncontended(&std::sync::Mutex::new(0u64), n)
        })))
    })
    .variant(FASTIPC_MUTEX, move || {
        Ok(Figure::Scalar(on_cpu(cpu, move || {
            locks::uncontended(&FastMutex::leaked(), n)
        })))
    })
}

fn contended_case<'a>(c: Counts, threads: usize, cpus: &[usize]) -> Case<'a> {
    let per = c.contended_ops / threads as u64;
    let cpus = cpus.to_vec();
    let (c1, c2, c3, c4) = (cpus.clone(), cpus.clone(), cpus.clone(), cpus.clone());
    Case::new(
        format!("Contended mutex, {threads} threads"),
        Kind::Rate,
        format!("{threads} threads pinned round-robin to CPUs {cpus:?}, {per} increments each; total increments per second."),
    )
    .variant("parking_lot", move || {
        Ok(Figure::Scalar(locks::contended(Arc::new(parking_lot::Mutex::new(0u64)), threads, &c1, per)))
    })
    .variant("std", move || Ok(Figure::Scalar(locks::contended(Arc::new(std::sync::Mutex::new(0u64)), threads, &c2, per))))
    .variant("spin lock", move || Ok(Figure::Scalar(locks::contended(Arc::new(SpinLock::new(0u64)), threads, &c3, per))))
    .variant(FASTIPC_MUTEX, move || Ok(Figure::Scalar(locks::contended(Arc::new(FastMutex::leaked()), threads, &c4, per))))
}

pub(crate) const CONTENDED_PROC_TITLE: &str = "Contended mutex, 2 processes";

fn contended_processes_case<'a>(c: Counts, a: usize, b: usize) -> Case<'a> {
    let per = c.contended_ops / 2;
    let cpus = vec![a, b];
    Case::new(
        CONTENDED_PROC_TITLE,
        Kind::Rate,
        format!("The fastipc Mutex in a shared segment, one process on CPU {a} and one on CPU {b}, {per} increments each, against the same in two threads; total increments per second."),
    )
    .variant("fastipc Mutex, 2 threads", move || {
        Ok(Figure::Scalar(locks::contended(Arc::new(FastMutex::leaked()), 2, &cpus, per)))
    })
    .variant("fastipc Mutex, 2 processes", move || {
        let ctl = Arc::new(Ctl::create("mutex")?);
        FastMutex::init(ctl.payload());
        let child = Child::role("mutex-contend", &child_args(&ctl, b, per as usize))?;
        ctl.wait_at_least(Slot::Ready, 1, READY)?;
        let c2 = Arc::clone(&ctl);
        let secs = on_cpu(a, move || -> std::io::Result<f64> {
            let lock = FastMutex::attach(c2.payload());
            let start = Instant::now();
            c2.u64(Slot::Go).store(1, std::sync::atomic::Ordering::Release);
            locks::contend_once(&lock, c2.u64(Slot::Go), per)?;
            let mut dog = floors::Watchdog::new();
            while c2.u64(Slot::Done).load(std::sync::atomic::Ordering::Acquire) == 0 {
                dog.spin("waiting for the other process")?;
            }
            let secs = start.elapsed().as_secs_f64();
            if lock.get() != 2 * per {
                return Err(other(format!("the mutex let two holders in: {} != {}", lock.get(), 2 * per)));
            }
            Ok(secs)
        })?;
        child.finish(FINISH)?;
        Ok(Figure::Scalar(2.0 * per as f64 / secs))
    })
}

pub(crate) fn queue_title(size: &str, cap: usize, producers: usize) -> String {
    let shape = if producers == 1 {
        "SPSC".to_owned()
    } else {
        format!("{producers}P1C")
    };
    format!("Queue throughput {shape}, {size} messages, capacity {cap}")
}

fn queue_case<'a, T: Item + IpcMessage>(
    c: Counts,
    size: &str,
    cap: usize,
    producers: usize,
    a: usize,
    b: usize,
) -> Case<'a> {
    let place = Placement {
        consumer: a,
        producers: vec![b; producers],
    };
    let per = c.queue_items / producers as u64;
    let note = format!(
        "Consumer on CPU {a}, {producers} producer(s) on CPU {b}; {} items per run, every item checked; items per second at the consumer.",
        per * producers as u64
    );
    let p1 = place.clone();
    let mut case = Case::new(queue_title(size, cap, producers), Kind::Rate, note)
        .variant(ARRAY_QUEUE, move || {
            Ok(Figure::Scalar(queues::array_queue::<T>(cap, per, &p1)?))
        });
    if producers == 1 {
        let p2 = place.clone();
        case = case.variant("rtrb", move || {
            Ok(Figure::Scalar(queues::rtrb::<T>(cap, per, &p2)?))
        });
    }
    let p3 = place.clone();
    let case = case
        .variant(FASTIPC_LOCAL, move || {
            Ok(Figure::Scalar(fastq::local_throughput::<T>(cap, per, &p3)?))
        })
        .variant(FASTIPC_SHARED, move || {
            Ok(Figure::Scalar(shared_throughput::<T>(
                cap,
                producers,
                per,
                a,
                b,
                Mode::Lossy,
            )?))
        })
        .variant(FASTIPC_LOSSLESS, move || {
            Ok(Figure::Scalar(shared_throughput::<T>(
                cap,
                producers,
                per,
                a,
                b,
                Mode::Lossless,
            )?))
        });
    if producers != 1 {
        return case;
    }
    // Issue 13's rows (SPSC only): the layout's own algorithm, fastipc without the
    // harness's credit window, and fastipc in batches.
    case.variant(FLOOR_CREDIT, move || {
        queue_rows::floor::<T>(cap, per, a, b, true)
    })
    .variant(FLOOR_RAW, move || {
        queue_rows::floor::<T>(cap, per, a, b, false)
    })
    .variant(FASTIPC_RAW, move || {
        queue_rows::fastipc_raw::<T>(cap, per, a, b)
    })
    .variant(FASTIPC_BATCH, move || {
        queue_rows::fastipc_batches::<T>(cap, per, a, b)
    })
    // Issue 13's single-producer row: the raw row on a queue declared single-producer
    // (its producer process takes `single_producer()`).
    .variant(FASTIPC_SINGLE_PRODUCER, move || {
        queue_rows::fastipc_raw_on::<T>(cap, per, a, b, |name, cap| {
            SlickQueue::<T>::create_with(name, cap, QueueOptions::new().single_producer())
        })
    })
}

/// The fastipc queue in shared mode: this process consumes (on CPU `a`), `producers`
/// child processes (on CPU `b`) produce `per` items each, under the credit window in a
/// lossy queue, held back by the queue itself in a lossless one.
fn shared_throughput<T: Item + IpcMessage>(
    cap: usize,
    producers: usize,
    per: u64,
    a: usize,
    b: usize,
    mode: Mode,
) -> std::io::Result<f64> {
    let ctl = Arc::new(Ctl::create("q")?);
    let qname = format!("{}-q", ctl.name().unwrap_or("xbench"));
    let q = SlickQueue::<T>::create_with(&qname, cap, mode).map_err(other)?;
    let _rm = RemoveSegment(qname.clone());
    let mut rx = q.consumer().map_err(std::io::Error::other)?;
    let children = (0..producers)
        .map(|id| {
            let mut args = child_args(&ctl, b, per as usize);
            args.extend([
                qname.clone(),
                size_of::<T>().to_string(),
                id.to_string(),
                Shape::Credit.arg(),
            ]);
            Child::role("queue-produce", &args)
        })
        .collect::<std::io::Result<Vec<_>>>()?;
    ctl.wait_at_least(Slot::Ready, producers as u64, READY)?;
    let c2 = Arc::clone(&ctl);
    let rate = on_cpu(a, move || -> std::io::Result<f64> {
        c2.u64(Slot::Go).store(1, Ordering::Release);
        let start = Instant::now();
        queues::consume(&mut rx, producers, per, Some(c2.u64(Slot::Consumed)))?;
        Ok((producers as u64 * per) as f64 / start.elapsed().as_secs_f64())
    })?;
    for child in children {
        child.finish(FINISH)?;
    }
    Ok(rate)
}

/// A ping-pong over two fastipc queues between this process (ping, CPU `a`) and a child
/// (pong, CPU `b`), receiving as `mode` says ([`crate::child::wait_mode`]).
fn fastipc_pingpong(
    mode: &'static str,
    a: usize,
    b: usize,
    warmup: usize,
    n: usize,
) -> std::io::Result<Figure> {
    let ctl = Ctl::create("pp")?;
    let base = format!("{}-pp", ctl.name().unwrap_or("xbench"));
    let _rm = RemovePingPong(base.clone());
    let mut pp = PingPong::<[u64; 1]>::new(&base, true, PINGPONG_CAPACITY, wait_mode(mode)?)?;
    let mut args = child_args(&ctl, b, warmup + n);
    args.extend([base.clone(), mode.to_owned()]);
    let child = Child::role("queue-pong", &args)?;
    ctl.wait_at_least(Slot::Ready, 1, READY)?;
    let rtts = on_cpu(a, move || pp.ping(warmup, n))?;
    child.finish(FINISH)?;
    Ok(Figure::Lat(Latency::of_round_trips(&rtts)))
}

/// Unlinks both ping-pong queues when dropped.
struct RemovePingPong(String);
impl Drop for RemovePingPong {
    fn drop(&mut self) {
        PingPong::<[u64; 1]>::remove(&self.0);
    }
}

pub(crate) const SPIN_TITLE: &str = "Spinning ping-pong, 2 processes, 8-byte messages (cross-core)";

fn spin_pingpong_case<'a>(c: Counts, a: usize, b: usize) -> Case<'a> {
    let (n, w) = (c.spin_rounds, c.warmup * 10);
    Case::new(
        SPIN_TITLE,
        Kind::Latency,
        format!("One-way latency = round trip / 2; ping process on CPU {a}, pong process on CPU {b}; {n} timed round trips per run after {w} untimed. Busy polling on both sides."),
    )
    .variant("cache-line floor", move || {
        let ctl = Arc::new(Ctl::create("spin")?);
        let child = Child::role("spin-pong", &child_args(&ctl, b, w + n))?;
        ctl.wait_at_least(Slot::Ready, 1, READY)?;
        let c2 = Arc::clone(&ctl);
        let rtts = on_cpu(a, move || floors::spin_ping(c2.u64(Slot::A), w, n))?;
        child.finish(FINISH)?;
        Ok(Figure::Lat(Latency::of_round_trips(&rtts)))
    })
    .variant("iceoryx2", move || {
        let ctl = Ctl::create("iox")?;
        let base = ctl.name().unwrap_or("xbench").to_owned();
        let mut args = child_args(&ctl, b, w + n);
        args.push(base.clone());
        let rtts = on_cpu(a, move || -> std::io::Result<Vec<u64>> {
            let pinger = iox::Pinger::new(&base).map_err(other)?;
            let child = Child::role("iox-pong", &args)?;
            ctl.wait_at_least(Slot::Ready, 1, READY)?;
            let rtts = pinger.run(w, n).map_err(other)?;
            child.finish(FINISH)?;
            Ok(rtts)
        })?;
        Ok(Figure::Lat(Latency::of_round_trips(&rtts)))
    })
    .variant(FLOOR_PINGPONG, move || floor_pingpong(a, b, w, n))
    .variant(FASTIPC_PINGPONG, move || fastipc_pingpong("spin", a, b, w, n))
}

/// A spinning ping-pong over two layout-floor rings between this process (ping, CPU
/// `a`) and a child (pong, CPU `b`).
fn floor_pingpong(a: usize, b: usize, warmup: usize, n: usize) -> std::io::Result<Figure> {
    let ctl = Ctl::create("fpp")?;
    let base = format!("{}-fpp", ctl.name().unwrap_or("xbench"));
    // The ping side creates both rings (and unlinks them when it drops).
    let mut pp = FloorPingPong::new(&base, true, PINGPONG_CAPACITY)?;
    let mut args = child_args(&ctl, b, warmup + n);
    args.push(base);
    let child = Child::role("floor-pong", &args)?;
    ctl.wait_at_least(Slot::Ready, 1, READY)?;
    let rtts = on_cpu(a, move || pp.ping(warmup, n))?;
    child.finish(FINISH)?;
    Ok(Figure::Lat(Latency::of_round_trips(&rtts)))
}

pub(crate) fn blocking_title(placement: &str) -> String {
    format!("Blocking hand-off, 2 processes, 8-byte messages ({placement})")
}

fn blocking_case<'a>(c: Counts, a: usize, b: usize, n: usize, placement: &str) -> Case<'a> {
    let w = (c.warmup / 10).max(5);
    Case::new(
        blocking_title(placement),
        Kind::Latency,
        format!("Ping-pong where each side sleeps until the other's message arrives; one-way = round trip / 2; ping on CPU {a}, pong on CPU {b}; {n} timed round trips per run."),
    )
    .variant("raw futex floor", move || {
        let ctl = Arc::new(Ctl::create("futex")?);
        let child = Child::role("futex-pong", &child_args(&ctl, b, w + n))?;
        ctl.wait_at_least(Slot::Ready, 1, READY)?;
        let c2 = Arc::clone(&ctl);
        let rtts = on_cpu(a, move || floors::futex_ping(c2.u32(Slot::A), Scope::Shared, w, n))?;
        child.finish(FINISH)?;
        Ok(Figure::Lat(Latency::of_round_trips(&rtts)))
    })
    .variant("Unix socket", move || {
        let path = std::env::temp_dir().join(format!("xbench-{}-{}.sock", std::process::id(), fastipc_bench::clock::now()));
        let listener = UnixListener::bind(&path)?;
        let _cleanup = RemoveOnDrop(path.clone());
        let child = Child::role(
            "socket-pong",
            &[path.display().to_string(), b.to_string(), (w + n).to_string()],
        )?;
        let mut sock = accept_within(&listener, READY)?;
        let rtts = on_cpu(a, move || floors::socket_ping(&mut sock, w, n))?;
        child.finish(FINISH)?;
        Ok(Figure::Lat(Latency::of_round_trips(&rtts)))
    })
    .variant(FASTIPC_RECV, move || fastipc_pingpong("sleep", a, b, w, n))
    .variant(FASTIPC_RECV_DEFAULT, move || fastipc_pingpong("default", a, b, w, n))
    .variant(FASTIPC_ASYNC, move || async_pingpong(a, b, w, n))
}

/// The ping-pong of [`fastipc_pingpong`] with both sides awaiting `recv_async` on a
/// tokio current-thread runtime (woken through the process's waiter thread).
fn async_pingpong(a: usize, b: usize, warmup: usize, n: usize) -> std::io::Result<Figure> {
    let ctl = Ctl::create("app")?;
    let base = format!("{}-app", ctl.name().unwrap_or("xbench"));
    let _rm = RemovePingPong(base.clone());
    let mut args = child_args(&ctl, b, warmup + n);
    args.push(base.clone());
    let rtts = on_cpu(a, move || -> std::io::Result<Vec<u64>> {
        let mut pp = AsyncPingPong::<[u64; 1]>::new(&base, true, PINGPONG_CAPACITY)?;
        let child = Child::role("async-pong", &args)?;
        ctl.wait_at_least(Slot::Ready, 1, READY)?;
        let rtts = pp.ping(warmup, n)?;
        child.finish(FINISH)?;
        Ok(rtts)
    })?;
    Ok(Figure::Lat(Latency::of_round_trips(&rtts)))
}

pub(crate) const PYTHON_TITLE: &str =
    "Python peers: slick-queue SPSC, 8 B messages, capacity 1024, 2 processes";

fn python_case<'a>(c: Counts, py: std::path::PathBuf, a: usize, b: usize) -> Case<'a> {
    let (n, rust_n) = (c.python_items, c.queue_items);
    Case::new(
        PYTHON_TITLE,
        Kind::Rate,
        format!("Producer and consumer processes (consumer CPU {a}, producer CPU {b}); at most 1024 items in flight so nothing is overwritten; {n} items per run, checked; items per second."),
    )
    .variant("Python↔Python (slick-queue-py 2.3.0)", move || {
        let ctl = Ctl::create("py")?;
        let qname = format!("{}-q", ctl.name().unwrap_or("xbench"));
        let _q = RemoveSegment(qname.clone());
        let script = include_str!("slick_peer.py");
        let args = |role: &str| vec![role.to_owned(), qname.clone(), ctl.name().unwrap_or("").to_owned(), n.to_string(), "1024".into(), "8".into()];
        let consumer = pinned_python(&py, script, &args("consumer"), a)?;
        ctl.wait_at_least(Slot::Ready, 1, READY)?;
        let producer = pinned_python(&py, script, &args("producer"), b)?;
        ctl.wait_at_least(Slot::B, 1, READY)?;
        ctl.u64(Slot::Go).store(1, std::sync::atomic::Ordering::Release);
        let out = consumer.finish(FINISH)?;
        producer.finish(FINISH)?;
        let mut words = out.split_whitespace();
        let ns: f64 = words.next().and_then(|w| w.parse().ok()).ok_or_else(|| other(format!("python consumer said {out:?}")))?;
        let lost: u64 = words.next().and_then(|w| w.parse().ok()).unwrap_or(u64::MAX);
        if lost != 0 {
            return Err(other(format!("python consumer lost {lost} items")));
        }
        Ok(Figure::Scalar(n as f64 / (ns / 1e9)))
    })
    .variant("Rust↔Rust (fastipc)", move || {
        Ok(Figure::Scalar(shared_throughput::<[u64; 1]>(1024, 1, rust_n, a, b, Mode::Lossy)?))
    })
}

/// A Python child pinned to `cpu` (with `taskset` semantics through a tiny wrapper: the
/// interpreter pins itself first).
fn pinned_python(
    py: &std::path::Path,
    script: &str,
    args: &[String],
    cpu: usize,
) -> std::io::Result<Child> {
    let script = format!("import os\nos.sched_setaffinity(0, {{{cpu}}})\n{script}");
    Child::python(&py.to_path_buf(), &script, args, "python peer")
}

pub(crate) fn child_args(ctl: &Ctl, cpu: usize, rounds: usize) -> Vec<String> {
    vec![
        ctl.name().unwrap_or("").to_owned(),
        cpu.to_string(),
        rounds.to_string(),
    ]
}

fn other(e: impl ToString) -> std::io::Error {
    std::io::Error::other(e.to_string())
}

fn accept_within(
    listener: &UnixListener,
    timeout: Duration,
) -> std::io::Result<std::os::unix::net::UnixStream> {
    listener.set_nonblocking(true)?;
    let start = Instant::now();
    loop {
        match listener.accept() {
            Ok((s, _)) => {
                s.set_nonblocking(false)?;
                return Ok(s);
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock && start.elapsed() < timeout => {
                std::thread::sleep(Duration::from_millis(1))
            }
            Err(e) => return Err(e),
        }
    }
}

struct RemoveOnDrop(std::path::PathBuf);
impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// Unlinks a shared segment (a queue made by a child) when dropped.
pub(crate) struct RemoveSegment(pub(crate) String);
impl Drop for RemoveSegment {
    fn drop(&mut self) {
        let _ = fastipc::Segment::unlink(&self.0);
    }
}

/// Names of the fastipc variants, as the targets look them up.
pub(crate) const FASTIPC_MUTEX: &str = "fastipc Mutex";
pub(crate) const FASTIPC_LOCAL: &str = "fastipc local (threads)";
pub(crate) const FASTIPC_SHARED: &str = "fastipc shared (processes)";
pub(crate) const FASTIPC_LOSSLESS: &str = "fastipc shared lossless (processes)";
pub(crate) const FASTIPC_PINGPONG: &str = "fastipc (two queues)";
pub(crate) const FASTIPC_RAW: &str = "fastipc shared raw, lossy, no credit (processes)";
pub(crate) const FASTIPC_BATCH: &str = "fastipc shared lossless, batches of 16 (processes)";
/// The single-producer row's name (issue 13): [`FASTIPC_RAW`] on a queue declared
/// single-producer.
pub(crate) const FASTIPC_SINGLE_PRODUCER: &str =
    "fastipc shared single-producer raw, lossy (processes)";
pub(crate) const FLOOR_CREDIT: &str = "layout floor, credit window (processes)";
pub(crate) const FLOOR_RAW: &str = "layout floor raw, lossy, no credit (processes)";
pub(crate) const FLOOR_PINGPONG: &str = "layout floor (two rings)";
pub(crate) const ARRAY_QUEUE: &str = "crossbeam ArrayQueue";
pub(crate) const FASTIPC_RECV: &str = "fastipc recv(), sleeping at once";
pub(crate) const FASTIPC_RECV_DEFAULT: &str = "fastipc recv(), default wait strategy";
pub(crate) const FASTIPC_ASYNC: &str = "fastipc recv_async() (tokio current-thread)";

pub(crate) const SYSCALL_TITLE: &str = "Syscalls when nobody sleeps";

/// Runs `xbench child quiet-ops WHAT N` under `strace -f -c` for a small and a large N
/// and records how many more syscalls the large run made (0: the operation makes none).
fn syscalls(book: &mut Book, c: Counts) -> std::io::Result<()> {
    let strace_ok = std::process::Command::new("strace")
        .arg("-V")
        .stdout(std::process::Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !strace_ok {
        eprintln!("xbench: strace is not installed; skipping the syscall count");
        return Ok(());
    }
    eprintln!("== {SYSCALL_TITLE}");
    let (small, large) = (1_000u64, c.lock_ops.max(10_000));
    let mut md = format!(
        "\n### {SYSCALL_TITLE}\n\nEach operation run {small} and {large} times in a fresh process under `strace -f -c`; the difference is what the extra operations cost in syscalls.\n\n| operation | syscalls, {small} ops | syscalls, {large} ops | futex calls, {large} ops | extra syscalls |\n|---|---:|---:|---:|---:|\n"
    );
    for (what, label) in [
        ("send", "Producer::send, consumer attached and awake"),
        ("lock", "Mutex lock+unlock, uncontended"),
    ] {
        let count = |n: u64| -> std::io::Result<(u64, u64)> {
            let out = std::env::temp_dir()
                .join(format!("xbench-strace-{}-{what}-{n}", std::process::id()));
            let status = std::process::Command::new("strace")
                .args(["-f", "-qq", "-c", "-o"])
                .arg(&out)
                .arg(std::env::current_exe()?)
                .args(["child", "quiet-ops", what, &n.to_string()])
                .status()?;
            let text = std::fs::read_to_string(&out)?;
            let _ = std::fs::remove_file(&out);
            if !status.success() {
                return Err(other(format!("quiet-ops {what} {n} failed: {status}")));
            }
            let calls = |name: &str| -> u64 {
                text.lines()
                    .find(|l| l.split_whitespace().last() == Some(name))
                    .and_then(|l| {
                        let w: Vec<&str> = l.split_whitespace().collect();
                        // columns: % time, seconds, usecs/call, calls, [errors], name
                        w.get(3).and_then(|v| v.parse().ok())
                    })
                    .unwrap_or(0)
            };
            Ok((calls("total"), calls("futex")))
        };
        let (a, _) = count(small)?;
        let (b, futexes) = count(large)?;
        let extra = b.saturating_sub(a);
        md.push_str(&format!("| {label} | {a} | {b} | {futexes} | {extra} |\n"));
        book.record(SYSCALL_TITLE, what, extra as f64);
    }
    // After an async receive: its set-up (a waiter thread, wake-ups, re-polls) makes a
    // varying number of syscalls, so only those between two markers around the sends
    // are counted (`strace -f` without `-c`).
    let what = "send-after-async";
    let between = |n: u64| -> std::io::Result<(u64, u64)> {
        let out =
            std::env::temp_dir().join(format!("xbench-strace-{}-{what}-{n}", std::process::id()));
        let status = std::process::Command::new("strace")
            .args(["-f", "-qq", "-o"])
            .arg(&out)
            .arg(std::env::current_exe()?)
            .args(["child", "quiet-ops", what, &n.to_string()])
            .status()?;
        let text = std::fs::read_to_string(&out)?;
        let _ = std::fs::remove_file(&out);
        if !status.success() {
            return Err(other(format!("quiet-ops {what} {n} failed: {status}")));
        }
        let lines: Vec<&str> = text.lines().collect();
        let at = |marker: &str| lines.iter().position(|l| l.contains(marker));
        let (Some(begin), Some(end)) = (at(SENDS_BEGIN), at(SENDS_END)) else {
            return Err(other(format!("quiet-ops {what}: markers not found")));
        };
        // Only the sending thread's calls (the first field is the thread id; another
        // thread of the process may be exiting meanwhile), and not the end of the marker
        // call that strace split in two ("<... openat resumed>").
        let tid = lines[begin].split_whitespace().next().unwrap_or("");
        let inside: Vec<&&str> = lines[begin + 1..end]
            .iter()
            .filter(|l| l.split_whitespace().next() == Some(tid) && !l.contains("resumed>"))
            .collect();
        let futexes = inside.iter().filter(|l| l.contains("futex")).count() as u64;
        Ok((inside.len() as u64, futexes))
    };
    let (a, _) = between(small)?;
    let (b, futexes) = between(large)?;
    md.push_str(&format!(
        "| Producer::send after an async receive completed, none pending (calls of the sending thread between markers around the sends) | {a} | {b} | {futexes} | {b} |\n"
    ));
    book.record(SYSCALL_TITLE, what, b as f64);
    book.section(&md);
    Ok(())
}

/// The paths `quiet-ops send-after-async` tries to open (they do not exist) just before
/// and just after its sends, so that its strace shows where they start and end.
pub(crate) const SENDS_BEGIN: &str = "/xbench-marker-sends-begin";
pub(crate) const SENDS_END: &str = "/xbench-marker-sends-end";

pub(crate) const IDLE_TITLE: &str = "Idle cost of pending async receives";
const IDLE_FUTURES: usize = 1000;
const IDLE_FASTIPC: &str = "default strategy, an idle fastipc producer on each queue";
const IDLE_PEERS: &str = "default strategy, no fastipc producer (re-poll 1 ms, as for peers)";

/// Runs `xbench child async-idle` (a fresh process each): [`IDLE_FUTURES`] receives
/// pending on as many queues with no traffic, with the consumers' default strategy: with
/// an idle fastipc producer registered on each queue (every producer wakes: a look every
/// `ASYNC_IDLE_CHECK` only), and with none (the 1 ms re-poll kept for peers, which never
/// wake); records the process's CPU time as a percentage of one CPU, and the waiter
/// threads.
fn async_idle(book: &mut Book, c: Counts) -> std::io::Result<()> {
    eprintln!("== {IDLE_TITLE}");
    let span = c.idle_span_ms;
    let mut md = format!(
        "\n### {IDLE_TITLE}\n\n{IDLE_FUTURES} `recv_async` futures pending on {IDLE_FUTURES} queues, no traffic, for {span} ms in a fresh process (tokio current-thread runtime); CPU time of the whole process from `/proc/self/stat` (10 ms resolution).\n\n| queues | CPU time | % of one CPU | waiter threads | still pending |\n|---|---:|---:|---:|---:|\n"
    );
    for (label, producers) in [(IDLE_FASTIPC, 1u8), (IDLE_PEERS, 0)] {
        let out = std::process::Command::new(std::env::current_exe()?)
            .args(["child", "async-idle"])
            .args([
                IDLE_FUTURES.to_string(),
                span.to_string(),
                "1".to_owned(),
                producers.to_string(),
            ])
            .output()?;
        if !out.status.success() {
            return Err(other(format!(
                "async-idle failed: {}",
                String::from_utf8_lossy(&out.stderr)
            )));
        }
        let text = String::from_utf8_lossy(&out.stdout);
        let v: Vec<u64> = text
            .split_whitespace()
            .filter_map(|w| w.parse().ok())
            .collect();
        let [cpu_ms, wall_ms, threads, pending] = v[..] else {
            return Err(other(format!("async-idle said {text:?}")));
        };
        let pct = 100.0 * cpu_ms as f64 / wall_ms.max(1) as f64;
        md.push_str(&format!(
            "| {label} | {cpu_ms} ms | {pct:.2} % | {threads} | {pending} |\n"
        ));
        book.record(IDLE_TITLE, label, pct);
    }
    book.section(&md);
    Ok(())
}

/// The targets, from the figures of this run.
fn targets(book: &Book) -> Vec<Target> {
    let ratio = |title: &str, a: &str, b: &str, p99: bool| -> Option<f64> {
        let (x, y) = (book.get(title, a)?, book.get(title, b)?);
        Some(x.ratio(y, p99))
    };
    let mut t = vec![
        Target {
            what: "uncontended lock+unlock: fastipc / parking_lot (time)".into(),
            ratio: ratio(LOCK_TITLE, FASTIPC_MUTEX, "parking_lot", false),
            limit: 1.0,
            at_most: true,
        },
        Target {
            what: "uncontended lock+unlock: fastipc / spin floor (time)".into(),
            ratio: ratio(LOCK_TITLE, FASTIPC_MUTEX, "spin floor", false),
            limit: 1.3,
            at_most: true,
        },
    ];
    for cap in [1024usize, 65536] {
        for size in ["8 B", "64 B"] {
            let title = queue_title(size, cap, 1);
            t.push(Target {
                what: format!("SPSC {size} cap {cap}: fastipc local / ArrayQueue (items/s)"),
                ratio: ratio(&title, FASTIPC_LOCAL, ARRAY_QUEUE, false),
                limit: 1.0,
                at_most: false,
            });
            t.push(Target {
                what: format!("SPSC {size} cap {cap}: fastipc cross-process / local (items/s)"),
                ratio: ratio(&title, FASTIPC_SHARED, FASTIPC_LOCAL, false),
                limit: 0.8,
                at_most: false,
            });
            t.push(Target {
                what: format!(
                    "SPSC {size} cap {cap}: fastipc cross-process lossless / lossy (items/s)"
                ),
                ratio: ratio(&title, FASTIPC_LOSSLESS, FASTIPC_SHARED, false),
                limit: 0.9,
                at_most: false,
            });
        }
    }
    for (p99, pct) in [(false, "p50"), (true, "p99")] {
        t.push(Target {
            what: format!("spin ping-pong {pct}: fastipc / cache-line floor"),
            ratio: ratio(SPIN_TITLE, FASTIPC_PINGPONG, "cache-line floor", p99),
            limit: 1.5,
            at_most: true,
        });
        t.push(Target {
            what: format!("spin ping-pong {pct}: fastipc / iceoryx2"),
            ratio: ratio(SPIN_TITLE, FASTIPC_PINGPONG, "iceoryx2", p99),
            limit: 1.0,
            at_most: true,
        });
    }
    for placement in ["cross-core", "same core"] {
        t.push(Target {
            what: format!("blocking hand-off p50 ({placement}): fastipc / raw futex"),
            ratio: ratio(
                &blocking_title(placement),
                FASTIPC_RECV,
                "raw futex floor",
                false,
            ),
            limit: 1.2,
            at_most: true,
        });
    }
    for (p99, pct) in [(false, "p50"), (true, "p99")] {
        t.push(Target {
            what: format!("async hand-off {pct} (cross-core): recv_async / recv()"),
            ratio: ratio(
                &blocking_title("cross-core"),
                FASTIPC_ASYNC,
                FASTIPC_RECV,
                p99,
            ),
            limit: 1.5,
            at_most: true,
        });
    }
    t.push(Target {
        what: format!(
            "idle: {IDLE_FUTURES} pending recv_async, fastipc producers, default strategy: % of one CPU"
        ),
        ratio: book.get(IDLE_TITLE, IDLE_FASTIPC).map(|s| s.median),
        limit: 1.0,
        at_most: true,
    });
    t.push(Target {
        what: "syscalls of sends after an async receive completed (none pending)".into(),
        ratio: book
            .get(SYSCALL_TITLE, "send-after-async")
            .map(|s| s.median),
        limit: 0.0,
        at_most: true,
    });
    for (what, label) in [("send", "send"), ("lock", "uncontended lock+unlock")] {
        t.push(Target {
            what: format!("extra syscalls for more {label}s when nobody sleeps"),
            ratio: book.get(SYSCALL_TITLE, what).map(|s| s.median),
            limit: 0.0,
            at_most: true,
        });
    }
    t
}

pub(crate) const ISSUE13_TITLE: &str = "Throughput targets (issue 13)";

/// Issue 13's targets, from the figures of this run (rows missing from the run read "not
/// measured").
fn issue13_targets(book: &Book) -> Vec<Target> {
    let ratio = |title: &str, a: &str, b: &str, p99: bool| -> Option<f64> {
        let (x, y) = (book.get(title, a)?, book.get(title, b)?);
        Some(x.ratio(y, p99))
    };
    let at_least = |what: String, ratio: Option<f64>, limit: f64| Target {
        what,
        ratio,
        limit,
        at_most: false,
    };
    let mut t = Vec::new();
    for cap in [1024usize, 65536] {
        let title = queue_title("8 B", cap, 1);
        t.push(at_least(
            format!("SPSC 8 B cap {cap}: fastipc raw / layout floor raw (delivered items/s)"),
            ratio(&title, FASTIPC_RAW, FLOOR_RAW, false),
            1.0,
        ));
        // The second figure of a lossy row is its producer's sending rate.
        t.push(at_least(
            format!("SPSC 8 B cap {cap}: fastipc raw / layout floor raw (sent items/s)"),
            ratio(&title, FASTIPC_RAW, FLOOR_RAW, true),
            1.0,
        ));
        t.push(at_least(
            format!("SPSC 8 B cap {cap}: fastipc single-producer raw / layout floor raw"),
            ratio(&title, FASTIPC_SINGLE_PRODUCER, FLOOR_RAW, false),
            1.3,
        ));
        t.push(at_least(
            format!("SPSC 8 B cap {cap}: fastipc batches of {BATCH} (processes) / ArrayQueue"),
            ratio(&title, FASTIPC_BATCH, ARRAY_QUEUE, false),
            1.0,
        ));
    }
    for (cap, limit) in [(1024usize, 2.5), (65536, 1.0)] {
        let title = queue_title("64 B", cap, 1);
        t.push(at_least(
            format!("SPSC 64 B cap {cap}: fastipc shared (credit window) / ArrayQueue"),
            ratio(&title, FASTIPC_SHARED, ARRAY_QUEUE, false),
            limit,
        ));
        t.push(at_least(
            format!("SPSC 64 B cap {cap}: fastipc shared lossless / ArrayQueue"),
            ratio(&title, FASTIPC_LOSSLESS, ARRAY_QUEUE, false),
            limit,
        ));
    }
    for (limit, base) in [(2.0, "cache-line floor"), (1.0, FLOOR_PINGPONG)] {
        t.push(Target {
            what: format!("spin ping-pong p50: fastipc / {base}"),
            ratio: ratio(SPIN_TITLE, FASTIPC_PINGPONG, base, false),
            limit,
            at_most: true,
        });
    }
    t.push(Target {
        what: "blocking hand-off p50 (same core): fastipc recv() / raw futex".into(),
        ratio: ratio(
            &blocking_title("same core"),
            FASTIPC_RECV,
            "raw futex floor",
            false,
        ),
        limit: 1.2,
        at_most: true,
    });
    t
}
