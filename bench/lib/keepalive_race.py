#!/usr/bin/env python3
"""POSTs on one keep-alive client connection, spaced around a backend's idle timeout.

Each gap is drawn from a sweep across [LOW, HIGH] seconds, so some requests reach the proxy
just before, at, and just after the moment the backend closes the idle upstream connection.
Prints one line: `TOTAL 502S OTHER` (502s, and any other non-2xx or failed requests).
Usage: keepalive_race.py PORT COUNT LOW HIGH
"""
import socket
import sys
import time


def read_response(sock, buf):
    while b"\r\n\r\n" not in buf:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed before a response head")
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    status = int(lines[0].split()[1])
    length = 0
    close = False
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value.strip())
        if name.strip().lower() == b"connection" and b"close" in value.lower():
            close = True
    while len(rest) < length:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError("closed inside a body")
        rest += chunk
    return status, rest[length:], close


def main():
    port, count, low, high = int(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), float(sys.argv[4])
    body = b'{"order":42}'
    request = (b"POST /orders HTTP/1.1\r\nHost: app.test\r\nContent-Type: application/json\r\n"
               b"Content-Length: " + str(len(body)).encode() + b"\r\n\r\n" + body)
    sock, buf = None, b""
    bad_gateway = other = 0
    steps = 41
    for i in range(count):
        if sock is None:
            sock, buf = socket.create_connection(("127.0.0.1", port), timeout=10), b""
        try:
            sock.sendall(request)
            status, buf, close = read_response(sock, buf)
        except (OSError, ConnectionError, ValueError, IndexError):
            status, close = 0, True
        if status == 502:
            bad_gateway += 1
        elif not 200 <= status < 300:
            other += 1
        if close:
            sock.close()
            sock = None
        time.sleep(low + (high - low) * ((i * 17) % steps) / (steps - 1))
    print(count, bad_gateway, other)


if __name__ == "__main__":
    main()
