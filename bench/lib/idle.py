#!/usr/bin/env python3
"""idle: what an idle keep-alive client connection costs a proxy in memory (issue 14).

    idle.py PORT PID [--stages 5000,20000] [--batch 50] [--warmup 2000]
                     [--profile NAME] [-p PATH]

1. Warm-up: WARMUP requests over BATCH keep-alive connections (the same concurrency as the
   opening below, so the proxy's upstream pool is already as large as it will get), then those
   connections close.
2. Baseline: the proxy's VmRSS (/proc/PID/status) once its descriptor count has settled.
3. For each stage: open connections until STAGE are open, each sending ONE request of the
   profile and reading its response, at most BATCH at a time; they then stay open and idle.
   One second later, VmRSS. A connection the proxy closes is counted (it would spoil the figure).
4. Close every connection; once the proxy's descriptor count is back near the baseline (at
   most 15 s), one more second, then VmRSS again.

Prints one line per figure, tab-separated, for bench/run:
    base    KIB FDS
    stage   N KIB FDS SECONDS     (N connections open and idle)
    after   KIB FDS
    lost    N                     (connections the proxy closed or answered with an error)
Exit status 1 if a request failed or the proxy died.
"""
import argparse
import os
import selectors
import socket
import sys
import time

import hload
import profiles


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def nfds(pid):
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return -1


def settle_fds(pid, target, limit):
    """Wait until the proxy holds at most `target` descriptors (or `limit` seconds)."""
    t_end = time.monotonic() + limit
    while time.monotonic() < t_end:
        if nfds(pid) <= target:
            return True
        time.sleep(0.1)
    return False


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("port", type=int)
    ap.add_argument("pid", type=int)
    ap.add_argument("--stages", default="5000,20000")
    ap.add_argument("--batch", type=int, default=50)
    ap.add_argument("--warmup", type=int, default=2000)
    ap.add_argument("--profile", default="small", choices=list(profiles.PROFILES))
    ap.add_argument("-p", "--path", default=None)
    a = ap.parse_args()
    stages = [int(x) for x in a.stages.split(",") if x]
    target = a.path or profiles.path(a.profile, "demo")
    req = profiles.head(a.profile, f"127.0.0.1:{a.port}", target)
    sel = selectors.DefaultSelector()
    lost = 0
    out = sys.stdout

    def fail(msg):
        print(f"idle: {msg}", file=sys.stderr)
        sys.exit(1)

    def pump(inflight, deadline):
        """Read responses of in-flight connections; return those that completed."""
        nonlocal lost
        done = []
        for key, _ in sel.select(timeout=max(0.0, deadline - time.monotonic())):
            c = key.data
            try:
                data = c.sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                data = b""
            if not data:
                sel.unregister(c.sock)
                c.sock.close()
                if c.inflight:
                    fail(f"connection closed before its response (profile {a.profile})")
                lost += 1             # an idle one, closed by the proxy
                continue
            if not c.inflight:
                lost += 1             # unexpected bytes on an idle connection
                continue
            c.buf += data
            if hload.parse(c):
                if not 200 <= c.status < 300:
                    fail(f"status {c.status}")
                c.inflight = False
                done.append(c)
        return done

    def open_one():
        c = hload.Conn(hload.connect(a.port))
        c.reset()
        sel.register(c.sock, selectors.EVENT_READ, c)
        c.sock.sendall(req)
        c.inflight = True
        return c

    # 1. warm-up over BATCH connections, then close them
    warm = [open_one() for _ in range(a.batch)]
    sent = len(warm)
    completed = 0
    deadline = time.monotonic() + 120
    while completed < a.warmup:
        if time.monotonic() > deadline:
            fail("warm-up timed out")
        for c in pump(warm, deadline):
            completed += 1
            if sent < a.warmup:
                c.reset()
                c.sock.sendall(req)
                c.inflight = True
                sent += 1
    for c in warm:
        sel.unregister(c.sock)
        c.sock.close()
    time.sleep(0.5)
    fds0 = nfds(a.pid)
    time.sleep(1.0)
    fds0 = min(fds0, nfds(a.pid))
    base = rss_kib(a.pid)
    print(f"base\t{base}\t{fds0}", file=out, flush=True)

    # 2. stages: open, one request each, keep idle
    conns = []
    inflight = 0
    for n in stages:
        t0 = time.monotonic()
        deadline = t0 + 300
        while len(conns) < n or inflight:
            while len(conns) < n and inflight < a.batch:
                conns.append(open_one())
                inflight += 1
            if time.monotonic() > deadline:
                fail(f"stage {n} timed out with {len(conns)} open, {inflight} in flight")
            inflight -= len(pump(conns, min(deadline, time.monotonic() + 5)))
        dt = time.monotonic() - t0
        time.sleep(1.0)
        # anything the proxy did meanwhile (closing idle ones) shows up here
        pump(conns, time.monotonic())
        if not os.path.exists(f"/proc/{a.pid}"):
            fail("proxy died")
        print(f"stage\t{n}\t{rss_kib(a.pid)}\t{nfds(a.pid)}\t{dt:.1f}", file=out, flush=True)

    # 3. close all, wait for the proxy to close its side
    for c in conns:
        try:
            sel.unregister(c.sock)
        except (KeyError, ValueError):
            pass
        c.sock.close()
    settle_fds(a.pid, fds0 + 5, 15)
    time.sleep(1.0)
    print(f"after\t{rss_kib(a.pid)}\t{nfds(a.pid)}", file=out, flush=True)
    print(f"lost\t{lost}", file=out, flush=True)
    sys.exit(0)


if __name__ == "__main__":
    main()
