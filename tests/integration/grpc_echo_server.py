#!/usr/bin/python3
"""gRPC echo server (grpcio, no protoc) for tests/integration/grpc_test.cpp.

Run with /usr/bin/python3 (Debian's python3-grpcio). Serves the service `test.Echo` with raw
bytes (no protobuf), on an insecure (h2c) port of 127.0.0.1:

  /test.Echo/Unary   unary-unary: answers the request's bytes, or `x-resp-size` bytes of the
                     pattern 'a'+i%26 when that request metadata is given.
  /test.Echo/Stream  bidi streaming: answers every message with "NAME:INDEX:" + the message, as
                     soon as it arrives; ends when the client half-closes.

Every answer carries the server's name as initial metadata `x-server` and trailing metadata
`x-server`, plus trailing `x-count` (messages received on the call), `x-req-sha256` (SHA-256 of the
request bytes, unary) and `x-echo` (the request's `x-echo` metadata, when given).

Request metadata `x-delay-ms: N` delays a unary answer by N ms; `x-fail: invalid` answers
INVALID_ARGUMENT with details "invalid payload from NAME" (and the trailing metadata above).
`--fail-percent P` answers UNAVAILABLE ("NAME unavailable") on P % of unary calls, spread evenly
and deterministically: call n (from 0) fails iff floor((n+1)P/100) > floor(nP/100). Those are
Trailers-Only answers (ctx.abort before any message).

`--raw-fault no-trailers|reset` serves /test.Echo/Unary with Python h2 instead (grpcio cannot
misbehave): the calls --fail-percent picks end without trailers, or are reset after their message;
`--raw-fault none` serves it with Python h2 and no fault. `--raw-fault goaway` refuses the picked
calls: once the call's request is in, GOAWAY (NO_ERROR) with the stream before it as the last one
taken, then the connection closes, so the call was refused unprocessed; prints
"REFUSED conn=C stream=S call=N" first.

`--health FILE` also serves grpc.health.v1.Health/Check (raw bytes: grpcio-health-checking is not in
Debian), for bgproxy's `health_check: { protocol: grpc }`. FILE is JSON, read at every check, so a
test switches a server between SERVING and NOT_SERVING by rewriting it:
  {"status": {"": "SERVING", "test.Echo": "NOT_SERVING"}, "delay_ms": 0}
A service missing from "status" is answered NOT_FOUND, as grpc's own health servicer does; the
status UNKNOWN is the empty message (proto3 leaves the default out). Each check prints
"HEALTH-CHECK service=NAME status=STATUS remaining_ms=N" (N: the call's deadline as grpc-timeout
set it). Under --raw-fault, `GET /health` is answered 200 when "" is SERVING, else 503, and prints
"HEALTH-GET path=PATH authority=AUTHORITY conn=C" (C: the connection's number, from 1).

`--tls CERT KEY` serves over TLS (grpcio: ALPN h2) instead of h2c.

`--max-streams N` announces SETTINGS_MAX_CONCURRENT_STREAMS N (grpcio's grpc.max_concurrent_streams).

Prints "READY port=PORT name=NAME" on stdout (flushed) once it listens, then for each streaming
call "STREAM-START", "STREAM-MSG INDEX len=N" per message received and "STREAM-END COUNT" at the
client's half-close (flushed: tests synchronise on them); runs until SIGTERM/SIGINT.
"""

import argparse
import hashlib
import json
import signal
import socket
import struct
import sys
import threading
import time
from concurrent import futures

import grpc

PATTERN = bytes(range(ord('a'), ord('z') + 1))


def pattern(n):
    return (PATTERN * (n // 26 + 1))[:n]


def sha256(data):
    return hashlib.sha256(data).hexdigest()


class Echo:
    def __init__(self, name, fail_percent):
        self.name = name
        self.fail_percent = fail_percent
        self.lock = threading.Lock()
        self.unary_calls = 0

    def _trailers(self, ctx, count, extra=()):
        md = dict(ctx.invocation_metadata())
        t = [('x-server', self.name), ('x-count', str(count))]
        if 'x-echo' in md:
            t.append(('x-echo', md['x-echo']))
        t.extend(extra)
        ctx.set_trailing_metadata(tuple(t))

    def unary(self, request, ctx):
        with self.lock:
            n = self.unary_calls
            self.unary_calls += 1
        md = dict(ctx.invocation_metadata())
        if 'x-delay-ms' in md:
            time.sleep(int(md['x-delay-ms']) / 1000.0)
        fails = (n + 1) * self.fail_percent // 100 > n * self.fail_percent // 100
        self._trailers(ctx, 1, [('x-req-sha256', sha256(request)), ('x-call', str(n))])
        if fails:
            ctx.abort(grpc.StatusCode.UNAVAILABLE, '%s unavailable' % self.name)
        if md.get('x-fail') == 'invalid':
            ctx.abort(grpc.StatusCode.INVALID_ARGUMENT, 'invalid payload from %s' % self.name)
        ctx.send_initial_metadata((('x-server', self.name),))
        if 'x-resp-size' in md:
            return pattern(int(md['x-resp-size']))
        return request

    def stream(self, request_iterator, ctx):
        print('STREAM-START', flush=True)
        ctx.send_initial_metadata((('x-server', self.name),))
        count = 0
        for msg in request_iterator:
            print('STREAM-MSG %d len=%d' % (count, len(msg)), flush=True)
            yield ('%s:%d:' % (self.name, count)).encode() + msg
            count += 1
        print('STREAM-END %d' % count, flush=True)
        self._trailers(ctx, count)


HEALTH_STATUS = {'UNKNOWN': 0, 'SERVING': 1, 'NOT_SERVING': 2, 'SERVICE_UNKNOWN': 3}


def read_health(path):
    """(status of each service, delay in ms) from the health file."""
    with open(path) as f:
        h = json.load(f)
    return h.get('status', {}), h.get('delay_ms', 0)


def varint(data, pos):
    v, shift = 0, 0
    while True:
        b = data[pos]
        pos += 1
        v |= (b & 0x7f) << shift
        shift += 7
        if not b & 0x80:
            return v, pos


def requested_service(data):
    """HealthCheckRequest.service (field 1, length-delimited), '' when absent."""
    pos, service = 0, b''
    while pos < len(data):
        tag, pos = varint(data, pos)
        if tag & 7 == 0:
            _, pos = varint(data, pos)
        elif tag & 7 == 2:
            n, pos = varint(data, pos)
            if tag >> 3 == 1:
                service = data[pos:pos + n]
            pos += n
        else:
            raise ValueError('unexpected wire type %d' % (tag & 7))
    return service.decode()


class Health:
    """grpc.health.v1.Health/Check from the health file (see the module's doc)."""

    def __init__(self, path):
        self.path = path

    def check(self, request, ctx):
        service = requested_service(request)
        statuses, delay_ms = read_health(self.path)
        status = statuses.get(service)
        remaining = ctx.time_remaining()
        print('HEALTH-CHECK service=%s status=%s remaining_ms=%d'
              % (service, status or 'NOT_FOUND', -1 if remaining is None else int(remaining * 1000)), flush=True)
        if delay_ms:
            time.sleep(delay_ms / 1000.0)
        if status is None:
            ctx.abort(grpc.StatusCode.NOT_FOUND, 'unknown service: %r' % service)
        code = HEALTH_STATUS[status]
        return b'' if code == 0 else bytes([0x08, code])


class RawH2Echo:
    """/test.Echo/Unary on Python h2 (no grpcio), for answers grpcio cannot give: the calls that
    --fail-percent picks end without trailers (`no-trailers`: HEADERS, the message, END_STREAM on
    the DATA) or are reset after the message (`reset`: RST_STREAM INTERNAL_ERROR). The others get
    a well-formed answer with grpc-status 0 and the trailing metadata of the grpcio server."""

    def __init__(self, name, fail_percent, fault, health_path):
        self.name = name
        self.fail_percent = fail_percent
        self.fault = fault
        self.health_path = health_path
        self.lock = threading.Lock()
        self.calls = 0
        self.connections = 0
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)

    def listen(self, port):
        self.sock.bind(('127.0.0.1', port))
        self.sock.listen(64)
        threading.Thread(target=self.accept_loop, daemon=True).start()
        return self.sock.getsockname()[1]

    def accept_loop(self):
        while True:
            conn, _ = self.sock.accept()
            self.connections += 1
            threading.Thread(target=self.serve, args=(conn, self.connections), daemon=True).start()

    def serve(self, sock, number):
        import h2.config
        import h2.connection
        import h2.events
        conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False, header_encoding='utf-8'))
        conn.initiate_connection()
        sock.sendall(conn.data_to_send())
        bodies, heads = {}, {}
        try:
            while True:
                data = sock.recv(65536)
                if not data:
                    return
                for ev in conn.receive_data(data):
                    if isinstance(ev, h2.events.RequestReceived):
                        heads[ev.stream_id] = dict(ev.headers)
                        bodies[ev.stream_id] = bytearray()
                    elif isinstance(ev, h2.events.DataReceived):
                        bodies[ev.stream_id] += ev.data
                        conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
                    elif isinstance(ev, h2.events.StreamEnded):
                        head = heads.pop(ev.stream_id)
                        body = bytes(bodies.pop(ev.stream_id))
                        if head.get(':method') == 'GET' and self.health_path:
                            self.answer_get(conn, ev.stream_id, head, number)
                            continue
                        n, fails = self.next_call()
                        if fails and self.fault == 'goaway':
                            print('REFUSED conn=%d stream=%d call=%d' % (number, ev.stream_id, n), flush=True)
                            conn.close_connection(error_code=0, last_stream_id=max(ev.stream_id - 2, 0))
                            sock.sendall(conn.data_to_send())
                            return
                        self.answer(conn, ev.stream_id, head, body, n, fails)
                    elif isinstance(ev, h2.events.ConnectionTerminated):
                        sock.sendall(conn.data_to_send())
                        return
                sock.sendall(conn.data_to_send())
        except OSError:
            return
        finally:
            sock.close()

    def answer_get(self, conn, stream_id, head, number):
        print('HEALTH-GET path=%s authority=%s conn=%d' % (head.get(':path'), head.get(':authority'), number),
              flush=True)
        serving = read_health(self.health_path)[0].get('') == 'SERVING'
        conn.send_headers(stream_id, [(':status', '200' if serving else '503'), ('content-length', '0')],
                          end_stream=True)

    def next_call(self):
        with self.lock:
            n = self.calls
            self.calls += 1
        return n, (n + 1) * self.fail_percent // 100 > n * self.fail_percent // 100

    def answer(self, conn, stream_id, head, body, n, fails):
        msg = body[5:]  # one uncompressed message: flag byte, 4-byte length, the bytes
        conn.send_headers(stream_id, [(':status', '200'), ('content-type', 'application/grpc'),
                                      ('x-server', self.name)])
        frame = b'\0' + struct.pack('>I', len(msg)) + msg
        if fails and self.fault == 'no-trailers':
            conn.send_data(stream_id, frame, end_stream=True)
            return
        conn.send_data(stream_id, frame)
        if fails:  # reset
            conn.reset_stream(stream_id, error_code=2)
            return
        trailers = [('grpc-status', '0'), ('x-server', self.name), ('x-count', '1'),
                    ('x-req-sha256', sha256(msg)), ('x-call', str(n))]
        if 'x-echo' in head:
            trailers.append(('x-echo', head['x-echo']))
        conn.send_headers(stream_id, trailers, end_stream=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--port', type=int, default=0)
    ap.add_argument('--name', required=True)
    ap.add_argument('--fail-percent', type=int, default=0)
    ap.add_argument('--workers', type=int, default=32)
    ap.add_argument('--raw-fault', choices=['none', 'no-trailers', 'reset', 'goaway'],
                    help='serve Unary with Python h2 and this fault on --fail-percent of the calls')
    ap.add_argument('--health', metavar='FILE', help='serve grpc.health.v1.Health/Check from FILE')
    ap.add_argument('--tls', nargs=2, metavar=('CERT', 'KEY'), help='serve over TLS instead of h2c')
    ap.add_argument('--max-streams', type=int, default=0, help='SETTINGS_MAX_CONCURRENT_STREAMS (0: grpcio default)')
    args = ap.parse_args()

    if args.raw_fault:
        raw = RawH2Echo(args.name, args.fail_percent, args.raw_fault, args.health)
        port = raw.listen(args.port)
        done = threading.Event()
        signal.signal(signal.SIGTERM, lambda *_: done.set())
        signal.signal(signal.SIGINT, lambda *_: done.set())
        print('READY port=%d name=%s' % (port, args.name), flush=True)
        while not done.wait(0.2):
            pass
        return 0

    echo = Echo(args.name, args.fail_percent)
    handler = grpc.method_handlers_generic_handler('test.Echo', {
        'Unary': grpc.unary_unary_rpc_method_handler(echo.unary),
        'Stream': grpc.stream_stream_rpc_method_handler(echo.stream),
    })
    limit = 8 * 1024 * 1024
    options = [('grpc.max_receive_message_length', limit),
               ('grpc.max_send_message_length', limit),
               ('grpc.so_reuseport', 0)]
    if args.max_streams:
        options.append(('grpc.max_concurrent_streams', args.max_streams))
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=args.workers), options=options)
    server.add_generic_rpc_handlers((handler,))
    if args.health:
        health = Health(args.health)
        server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler('grpc.health.v1.Health', {
            'Check': grpc.unary_unary_rpc_method_handler(health.check)}),))
    if args.tls:
        with open(args.tls[0], 'rb') as c, open(args.tls[1], 'rb') as k:
            credentials = grpc.ssl_server_credentials([(k.read(), c.read())])
        port = server.add_secure_port('127.0.0.1:%d' % args.port, credentials)
    else:
        port = server.add_insecure_port('127.0.0.1:%d' % args.port)
    if port == 0:
        print('cannot bind 127.0.0.1:%d' % args.port, file=sys.stderr)
        return 1
    server.start()

    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    print('READY port=%d name=%s' % (port, args.name), flush=True)
    while not done.wait(0.2):
        pass
    server.stop(grace=None)
    return 0


if __name__ == '__main__':
    sys.exit(main())
