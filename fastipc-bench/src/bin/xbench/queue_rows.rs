//! The cross-process throughput rows of issue 13: the layout floor (raw and under the
//! credit window), fastipc raw (lossy, no credit), and fastipc in batches of 16
//! (lossless). Each runs like the fastipc credit row (`cases::shared_throughput`): this
//! process consumes on CPU `a`, one producer process on CPU `b`, the same counts.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use fastipc::IpcMessage;
use fastipc::queue::{Mode, SlickQueue};
use fastipc_bench::affinity::on_cpu;
use fastipc_bench::fastq::{self, Shape};
use fastipc_bench::layout_floor::{FloorConsumer, FloorRing};
use fastipc_bench::queues::{self, Delivery, Item};
use fastipc_bench::shared::{Ctl, Slot};

use crate::cases::{FINISH, READY, RemoveSegment, child_args};
use crate::proc::Child;
use crate::report::Figure;

/// The size of the batches of the batch rows (issue 13's target).
pub(crate) const BATCH: usize = 16;

/// Starts one producer child `role` with `extra` arguments after `CTL CPU N`, waits
/// until it is ready, stores the go word and runs `consume` on CPU `a`, timing it from
/// the go word; returns `consume`'s result and the seconds it took.
fn one_producer<R: Send + 'static>(
    ctl: &Arc<Ctl>,
    role: &str,
    extra: &[String],
    per: u64,
    a: usize,
    b: usize,
    consume: impl FnOnce(&Ctl) -> std::io::Result<R> + Send + 'static,
) -> std::io::Result<(R, f64)> {
    let mut args = child_args(ctl, b, per as usize);
    args.extend_from_slice(extra);
    let child = Child::role(role, &args)?;
    ctl.wait_at_least(Slot::Ready, 1, READY)?;
    let c2 = Arc::clone(ctl);
    let out = on_cpu(a, move || -> std::io::Result<(R, f64)> {
        c2.u64(Slot::Go).store(1, Ordering::Release);
        let start = Instant::now();
        let r = consume(&c2)?;
        Ok((r, start.elapsed().as_secs_f64()))
    })?;
    child.finish(FINISH)?;
    Ok(out)
}

/// A raw run's figure: the producer child stored its sending time (ns) in
/// [`Slot::Done`] before it exited.
fn lossy_figure(ctl: &Ctl, d: Delivery, secs: f64) -> std::io::Result<Figure> {
    let sent_ns = ctl.u64(Slot::Done).load(Ordering::Acquire);
    if sent_ns == 0 {
        return Err(other("the producer did not report its sending time"));
    }
    let total = d.delivered + d.lost + d.stale;
    Ok(Figure::Lossy {
        rate: d.delivered as f64 / secs,
        loss: d.loss(),
        sent: total as f64 / (sent_ns as f64 / 1e9),
    })
}

/// fastipc raw: a lossy queue, one producer process calling `send` and nothing else,
/// a consumer that counts what arrives and the lags it is told of.
pub(crate) fn fastipc_raw<T: Item + IpcMessage>(
    cap: usize,
    per: u64,
    a: usize,
    b: usize,
) -> std::io::Result<Figure> {
    fastipc_raw_on::<T>(cap, per, a, b, |name, cap| {
        SlickQueue::<T>::create_with(name, cap, Mode::Lossy)
    })
}

/// [`fastipc_raw`] on a queue made by `create(name, capacity)` (a lossy queue with other
/// options: the single-producer row is this with a single-producer queue; the producer
/// process opens it and takes its `single_producer()`).
pub(crate) fn fastipc_raw_on<T: Item + IpcMessage>(
    cap: usize,
    per: u64,
    a: usize,
    b: usize,
    create: impl FnOnce(&str, usize) -> Result<SlickQueue<T>, fastipc::OpenError>,
) -> std::io::Result<Figure> {
    let ctl = Arc::new(Ctl::create("qr")?);
    let qname = format!("{}-q", ctl.name().unwrap_or("xbench"));
    let q = create(&qname, cap).map_err(other)?;
    let _rm = RemoveSegment(qname.clone());
    let mut rx = q.consumer().map_err(other)?;
    let extra = [
        qname,
        size_of::<T>().to_string(),
        "0".into(),
        Shape::Raw.arg(),
    ];
    let (d, secs) = one_producer(&ctl, "queue-produce", &extra, per, a, b, move |_| {
        queues::consume_lossy(&mut rx, per, false)
    })?;
    lossy_figure(&ctl, d, secs)
}

/// fastipc in batches: a lossless queue, `send_batch` of [`BATCH`] items, the consumer
/// taking up to [`BATCH`] at a time with `try_recv_into`; every item checked.
pub(crate) fn fastipc_batches<T: Item + IpcMessage>(
    cap: usize,
    per: u64,
    a: usize,
    b: usize,
) -> std::io::Result<Figure> {
    let ctl = Arc::new(Ctl::create("qb")?);
    let qname = format!("{}-q", ctl.name().unwrap_or("xbench"));
    let q = SlickQueue::<T>::create_with(&qname, cap, Mode::Lossless).map_err(other)?;
    let _rm = RemoveSegment(qname.clone());
    let mut rx = q.consumer().map_err(other)?;
    let extra = [
        qname,
        size_of::<T>().to_string(),
        "0".into(),
        Shape::Batch(BATCH).arg(),
    ];
    let ((), secs) = one_producer(&ctl, "queue-produce", &extra, per, a, b, move |_| {
        fastq::consume_batches(&mut rx, per, BATCH)
    })?;
    Ok(Figure::Scalar(per as f64 / secs))
}

/// The layout floor ([`fastipc_bench::layout_floor`]) on a `/dev/shm` ring of `cap`
/// elements: raw (counting losses, stale copies included) or under the credit window.
pub(crate) fn floor<T: Item>(
    cap: usize,
    per: u64,
    a: usize,
    b: usize,
    credit: bool,
) -> std::io::Result<Figure> {
    let ctl = Arc::new(Ctl::create("fl")?);
    let rname = format!("{}-ring", ctl.name().unwrap_or("xbench"));
    let ring = Arc::new(FloorRing::create(&rname, cap, size_of::<T>())?);
    let mut rx = FloorConsumer::<T>::new(ring)?;
    let shape = if credit { Shape::Credit } else { Shape::Raw };
    let extra = [
        rname,
        cap.to_string(),
        size_of::<T>().to_string(),
        shape.arg(),
    ];
    if credit {
        let ((), secs) = one_producer(&ctl, "floor-produce", &extra, per, a, b, move |c| {
            queues::consume(&mut rx, 1, per, Some(c.u64(Slot::Consumed)))
        })?;
        Ok(Figure::Scalar(per as f64 / secs))
    } else {
        let (d, secs) = one_producer(&ctl, "floor-produce", &extra, per, a, b, move |_| {
            queues::consume_lossy(&mut rx, per, true)
        })?;
        lossy_figure(&ctl, d, secs)
    }
}

fn other(e: impl ToString) -> std::io::Error {
    std::io::Error::other(e.to_string())
}
