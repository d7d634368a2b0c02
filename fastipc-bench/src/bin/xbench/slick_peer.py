# One side of the slick-queue-py throughput run (Python <-> Python), driven by xbench.
#   argv: ROLE(consumer|producer) QUEUE CTL N CAPACITY ELEMENT_SIZE
# CTL is xbench's control block in /dev/shm (u64 words: ready @0, go @64, B @192,
# consumed @320). The consumer creates the queue, the producer attaches; both start on
# "go". The producer keeps at most CAPACITY items in flight (the consumer publishes its
# count every 64 items and whenever the queue is empty), so nothing is overwritten.
# The consumer checks every item's sequence number and prints the elapsed nanoseconds.
import mmap
import sys
import time

from atomic_ops import AtomicUInt64
from slick_queue_py import SlickQueue

role, qname, ctl_name = sys.argv[1], sys.argv[2], sys.argv[3]
n, cap, esize = int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
with open("/dev/shm/" + ctl_name, "r+b") as f:
    mm = mmap.mmap(f.fileno(), 0)
buf = memoryview(mm)
ready, go, attached, consumed = (AtomicUInt64(buf, off) for off in (0, 64, 192, 320))
deadline = time.monotonic() + 60


def wait_go():
    while go.load_acquire() == 0:
        if time.monotonic() > deadline:
            sys.exit("no go signal")
        time.sleep(0.0001)


if role == "consumer":
    q = SlickQueue(name=qname, size=cap, element_size=esize)
    idx = 0
    ready.store_release(1)
    wait_go()
    t0 = time.perf_counter_ns()
    got = published = 0
    polls = 0
    while got < n:
        data, size, nxt = q.read(idx)
        if data is None:
            if published != got:
                consumed.store_release(got)
                published = got
            polls += 1
            if polls & 0xFFFF == 0 and time.monotonic() > deadline:
                sys.exit(f"stalled after {got} items")
            continue
        idx = nxt
        seq = int.from_bytes(data[:8], "little")
        if seq != got:
            sys.exit(f"item {seq} arrived when {got} was expected")
        got += 1
        if got & 63 == 0:
            consumed.store_release(got)
            published = got
    t1 = time.perf_counter_ns()
    print(t1 - t0, q.loss_count())
    q.close()
else:
    q = SlickQueue(name=qname, element_size=esize)
    attached.store_release(1)
    wait_go()
    seen = 0
    for i in range(n):
        while i + 1 > seen + cap:
            seen = consumed.load_acquire()
        idx = q.reserve()
        q[idx][:8] = i.to_bytes(8, "little")
        q.publish(idx)
    q.close()
