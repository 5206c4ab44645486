#!/usr/bin/env python3
"""hload: send exactly N keep-alive HTTP/1.1 GET requests to 127.0.0.1:PORT.

Used by bench/run where a fixed request count matters (callgrind instructions
per request, system calls per request under perf or strace) and wrk, being
time-based, does not fit. One request in flight per connection, C connections multiplexed with
selectors in one thread. Responses are framed by Content-Length or chunked
encoding; a connection the server closes (or marks `Connection: close`) is
reopened and the count carries on.

The request is the head of a bench/lib/profiles.py profile (default `small`: only
Host, like wrk's own request) with target PATH; wrk gets the same bytes through
`profiles.py wrk-lua`.

    hload.py PORT N [-c CONNS] [-p PATH] [--profile NAME] [--host HOST]

Prints one line `requests=N ok=K errors=E reconnects=R seconds=S rps=X` and exits
1 if any response was not 2xx or the run could not finish (timeout 120 s idle).
"""
import argparse
import selectors
import socket
import sys
import time

import profiles


class Conn:
    __slots__ = ("sock", "buf", "need", "status", "close_after", "chunked", "state", "inflight")

    def __init__(self, sock):
        self.sock = sock
        self.buf = bytearray()
        self.inflight = False
        self.reset()

    def reset(self):
        self.state = "head"   # head | body | chunks
        self.need = 0
        self.status = 0
        self.close_after = False
        self.chunked = False


def connect(port):
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    s.setblocking(False)
    return s


def parse(c):
    """Advance the response parser; return True when one response is complete."""
    while True:
        if c.state == "head":
            i = c.buf.find(b"\r\n\r\n")
            if i < 0:
                return False
            head = bytes(c.buf[:i]).decode("latin-1")
            del c.buf[: i + 4]
            lines = head.split("\r\n")
            parts = lines[0].split(" ", 2)
            c.status = int(parts[1])
            if 100 <= c.status < 200:
                continue            # interim response: read the next head
            clen = None
            for ln in lines[1:]:
                k, _, v = ln.partition(":")
                k = k.strip().lower()
                v = v.strip()
                if k == "content-length":
                    clen = int(v)
                elif k == "transfer-encoding" and "chunked" in v.lower():
                    c.chunked = True
                elif k == "connection" and "close" in v.lower():
                    c.close_after = True
            if parts[0] == "HTTP/1.0" and "keep-alive" not in head.lower():
                c.close_after = True
            if c.chunked:
                c.state = "chunks"
                c.need = -1
            elif clen is not None:
                c.state = "body"
                c.need = clen
            elif c.status in (204, 304):
                c.state = "body"
                c.need = 0
            else:
                raise RuntimeError("response without length (read-until-close not supported)")
        if c.state == "body":
            if len(c.buf) < c.need:
                return False
            del c.buf[: c.need]
            return True
        if c.state == "chunks":
            if c.need < 0:          # expecting a chunk-size line
                i = c.buf.find(b"\r\n")
                if i < 0:
                    return False
                size = int(bytes(c.buf[:i]).split(b";")[0], 16)
                del c.buf[: i + 2]
                if size == 0:
                    c.state = "trailers"
                else:
                    c.need = size + 2
                    continue
            else:
                if len(c.buf) < c.need:
                    return False
                del c.buf[: c.need]
                c.need = -1
                continue
        if c.state == "trailers":
            if c.buf.startswith(b"\r\n"):
                del c.buf[:2]
                return True
            i = c.buf.find(b"\r\n\r\n")
            if i < 0:
                return False
            del c.buf[: i + 4]
            return True


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("port", type=int)
    ap.add_argument("n", type=int)
    ap.add_argument("-c", "--conns", type=int, default=8)
    ap.add_argument("-p", "--path", default="/")
    ap.add_argument("--host", default=None)
    ap.add_argument("--profile", default="small", choices=list(profiles.PROFILES))
    a = ap.parse_args()
    host = a.host or f"127.0.0.1:{a.port}"
    req = profiles.head(a.profile, host, a.path)

    sel = selectors.DefaultSelector()
    sent = ok = errors = reconnects = 0
    conns = []

    def open_one():
        c = Conn(connect(a.port))
        sel.register(c.sock, selectors.EVENT_READ, c)
        return c

    def send(c):
        nonlocal sent
        c.reset()
        c.sock.sendall(req)      # small; fits any socket buffer
        c.inflight = True
        sent += 1

    t0 = time.monotonic()
    for _ in range(min(a.conns, a.n)):
        c = open_one()
        conns.append(c)
        send(c)
    done = 0
    while done < a.n:
        events = sel.select(timeout=120)
        if not events:
            print(f"hload: timeout after {done} responses", file=sys.stderr)
            break
        for key, _ in events:
            c = key.data
            try:
                data = c.sock.recv(65536)
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                data = b""
            if not data:
                # closed by the server; an in-flight request is an error
                if c.inflight:
                    errors += 1
                    done += 1
                sel.unregister(c.sock)
                c.sock.close()
                if sent < a.n:
                    nc = open_one()
                    reconnects += 1
                    send(nc)
                continue
            c.buf += data
            try:
                while c.sock.fileno() >= 0 and parse(c):
                    c.inflight = False
                    done += 1
                    if 200 <= c.status < 300:
                        ok += 1
                    else:
                        errors += 1
                    if c.close_after:
                        sel.unregister(c.sock)
                        c.sock.close()
                        if sent < a.n:
                            nc = open_one()
                            reconnects += 1
                            send(nc)
                        break
                    if sent < a.n:
                        send(c)
                    else:
                        break
            except (RuntimeError, ValueError, IndexError) as e:
                print(f"hload: bad response: {e}", file=sys.stderr)
                errors += 1
                done += 1
                sel.unregister(c.sock)
                c.sock.close()
                if sent < a.n:
                    nc = open_one()
                    reconnects += 1
                    send(nc)
    dt = time.monotonic() - t0
    for key in list(sel.get_map().values()):
        key.fileobj.close()
    print(f"requests={done} ok={ok} errors={errors} reconnects={reconnects} "
          f"seconds={dt:.3f} rps={done / dt if dt > 0 else 0:.0f}")
    sys.exit(0 if ok == a.n else 1)


if __name__ == "__main__":
    main()
