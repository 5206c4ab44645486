#!/usr/bin/env python3
"""probe: what a proxy (or a backend) does to one request of a profile, for the report.

    probe.py PORT PROFILE TARGET [--echo]

Sends the profile's request head (bench/lib/profiles.py) for TARGET and prints, tab-separated:
the response head's size in bytes, its field names (space-separated), and — with --echo, which
sends the same head for `/` to the demo backend's echo — the field names the backend received.
"""
import json
import socket
import sys

import profiles


def exchange(port, raw):
    s = socket.create_connection(("127.0.0.1", port), timeout=5)
    s.sendall(raw)
    buf = b""
    while b"\r\n\r\n" not in buf:
        d = s.recv(65536)
        if not d:
            break
        buf += d
    head, _, body = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    names = [ln.split(":", 1)[0] for ln in lines[1:] if ":" in ln]
    clen = 0
    for ln in lines[1:]:
        k, _, v = ln.partition(":")
        if k.strip().lower() == "content-length":
            clen = int(v.strip())
    while len(body) < clen:
        d = s.recv(65536)
        if not d:
            break
        body += d
    s.close()
    return len(head) + 4, names, body


def main():
    port, prof, target = int(sys.argv[1]), sys.argv[2], sys.argv[3]
    echo = "--echo" in sys.argv[4:]
    host = f"127.0.0.1:{port}"
    size, names, _ = exchange(port, profiles.head(prof, host, target))
    seen = ""
    if echo:
        try:
            _, _, body = exchange(port, profiles.head(prof, host, "/"))
            seen = " ".join(k for k, _ in json.loads(body)["headers"])
        except (ValueError, KeyError, OSError):
            seen = ""
    print(f"{size}\t{' '.join(names)}\t{seen}")


if __name__ == "__main__":
    main()
