#!/usr/bin/python3
"""Abusive HTTP/2 (h2c, prior knowledge) client for tests/integration/h2_abuse_test.cpp.

Run with /usr/bin/python3 (Debian's python3-hyperframe and python3-hpack). Frames are built by
hand (hyperframe), and header blocks by a small HPACK encoder of its own, so that every byte on
the wire is what the test asked for: a HEADERS without END_HEADERS followed by CONTINUATIONs,
a dynamic-table entry referenced thousands of times, RST_STREAM right after HEADERS, PINGs or
SETTINGS whose ACKs are never read, a zero window. The server's frames are parsed (hyperframe)
and its header blocks decoded (hpack) to report what came back.

    h2_abuse.py --port PORT --spec SPEC.json

Spec: {"mode": ..., "timeout": seconds, ...mode parameters (below)}
  rapid_reset   {"streams": N, "batch": B}: HEADERS(END_STREAM) + RST_STREAM(CANCEL) for N
                streams, B per write, reading between writes; stops at GOAWAY or EOF.
  ack_flood     {"kind": "ping"|"settings", "frames": N, "rcvbuf": bytes}: N PING (or
                SETTINGS) frames without reading anything; then reads to the end.
  continuation  {"continuations": N}: one HEADERS without END_HEADERS, then N CONTINUATION
                frames (never END_HEADERS), reading between writes; stops at GOAWAY or EOF.
  streams       {"streams": [...], "settings": {...}, "no_window_update": bool,
                 "read_go_file": path, "linger": seconds}: requests (below), answered or not.
                "no_window_update": never send WINDOW_UPDATE (the window stays as set);
                "read_go_file": read nothing from the socket until this file exists;
                "connection_window": a WINDOW_UPDATE of this much on stream 0 at the start;
                "linger": once every stream is done, keep reading this long (GOAWAY, EOF).
  Stream spec: {"name", "method": "GET", "path": "/", "headers": [[n, v]],
                "bomb": {"value_bytes": V, "repeat": R}   # one literal with incremental
                                                          # indexing, then R references to it
                "silent": true        # HEADERS without END_STREAM, then nothing
                "empty_data": N       # N empty DATA frames, then an empty DATA with END_STREAM
                "body": "text"        # one DATA frame with END_STREAM
                "after": "name"}      # sent once that stream is done (answered or reset)
Output (the last line): {"mode", "goaway": {"error_code", "last_stream_id", "at"}|null,
  "eof": bool, "eof_at": s|null, "reset_by_peer": bool, "send_error": str|null,
  "frames_sent": n, "frames_received": {type: n}, "streams": [{"name", "id", "status",
  "reset", "ended", "body_len", "done_at"}], "error": str|null, "elapsed": s}, and what a mode
  wrote: "streams_sent" (rapid_reset), "flood_frames_sent" (ack_flood), "continuations_sent".
Event lines ({"event": ...}, flushed) tell the test where the client is: "sent" (a stream's
frames or a flood are out), "heads" (every stream has its response HEADERS or is done).
"""

import argparse
import json
import os
import select
import socket
import sys
import time

import hpack
from hyperframe.frame import (ContinuationFrame, DataFrame, Frame, GoAwayFrame, HeadersFrame,
                              PingFrame, RstStreamFrame, SettingsFrame, WindowUpdateFrame)

PREFACE = b'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n'
SETTING_CODES = {'header_table_size': SettingsFrame.HEADER_TABLE_SIZE,
                 'enable_push': SettingsFrame.ENABLE_PUSH,
                 'initial_window': SettingsFrame.INITIAL_WINDOW_SIZE,
                 'max_frame_size': SettingsFrame.MAX_FRAME_SIZE}


# ------------------------------------------------------------------------------------------ HPACK

def hp_int(value, prefix_bits, first_byte_flags):
    """An HPACK integer (RFC 7541 §5.1) with `first_byte_flags` in the bits above the prefix."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes([first_byte_flags | value])
    out = bytearray([first_byte_flags | limit])
    value -= limit
    while value >= 128:
        out.append((value & 0x7f) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def hp_string(s):
    return hp_int(len(s), 7, 0x00) + s


def hp_literal(name, value, indexing=False):
    """A literal field with a literal name: without indexing (0x00) or with incremental
    indexing (0x40). Nothing else ever enters the peer's dynamic table, so the newest entry
    added with indexing is always index 62."""
    return bytes([0x40 if indexing else 0x00]) + hp_string(name) + hp_string(value)


def b(s):
    return s.encode('latin-1') if isinstance(s, str) else s


def request_block(spec):
    fields = [(b':method', b(spec.get('method', 'GET'))), (b':path', b(spec.get('path', '/'))),
              (b':scheme', b'http'), (b':authority', b(spec.get('authority', 'app.test')))]
    fields += [(b(n), b(v)) for n, v in spec.get('headers', [])]
    block = b''.join(hp_literal(n, v) for n, v in fields)
    bomb = spec.get('bomb')
    if bomb:
        block += hp_literal(b'x-bomb', b'b' * int(bomb['value_bytes']), indexing=True)
        block += hp_int(62, 7, 0x80) * int(bomb['repeat'])
    return block


def header_frames(stream_id, block, end_stream, max_frame=16384):
    """HEADERS (and CONTINUATIONs when the block is larger than a frame)."""
    pieces = [block[i:i + max_frame] for i in range(0, len(block), max_frame)] or [b'']
    frames = []
    for i, piece in enumerate(pieces):
        last = i == len(pieces) - 1
        f = HeadersFrame(stream_id, piece) if i == 0 else ContinuationFrame(stream_id, piece)
        if last:
            f.flags.add('END_HEADERS')
        if i == 0 and end_stream:
            f.flags.add('END_STREAM')
        frames.append(f.serialize())
    return frames


# ------------------------------------------------------------------------------------------ conn

class Conn:
    def __init__(self, port, settings=None, rcvbuf=None, auto_window=True, connection_window=0):
        self.t0 = time.monotonic()
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, int(rcvbuf))
        self.sock.settimeout(5)
        self.sock.connect(('127.0.0.1', port))
        self.sock.setblocking(False)
        self.decoder = hpack.Decoder()
        self.decoder.max_header_list_size = 1 << 24
        self.inbuf = bytearray()
        self.block = None  # (stream_id, bytes, end_stream) of a header block being received
        self.auto_window = auto_window
        self.goaway = None
        self.eof = False
        self.eof_at = None
        self.reset_by_peer = False
        self.send_error = None
        self.in_send = False
        self.out_queue = bytearray()
        self.error = None
        self.frames_sent = 0
        self.received = {}
        self.streams = {}  # id -> result dict
        entries = {SETTING_CODES[k]: int(v) for k, v in (settings or {}).items()}
        self.send(PREFACE + SettingsFrame(0, entries).serialize())
        if connection_window:
            self.send_frames([WindowUpdateFrame(0, int(connection_window)).serialize()])

    def now(self):
        return round(time.monotonic() - self.t0, 3)

    def closed(self):
        return self.eof or self.reset_by_peer or self.send_error is not None

    def send(self, data, read_while_blocked=True, deadline=None):
        """Writes everything; while the socket is full, reads (unless told not to). Frames that
        reading makes us send (ACKs, WINDOW_UPDATEs) wait for the end of what is being written,
        so they never land inside one of its frames. False once the connection is gone."""
        if self.in_send:
            self.out_queue += data
            return self.send_error is None
        self.in_send = True
        try:
            view = memoryview(data)
            while True:
                if not len(view):
                    if not self.out_queue:
                        return True
                    view = memoryview(bytes(self.out_queue))
                    self.out_queue.clear()
                if self.send_error is not None:
                    return False
                try:
                    n = self.sock.send(view)
                    view = view[n:]
                except BlockingIOError:
                    if deadline is not None and time.monotonic() > deadline:
                        self.send_error = 'send timed out (the peer reads nothing)'
                        return False
                    rl = [self.sock] if read_while_blocked and not self.eof else []
                    r, _, _ = select.select(rl, [self.sock], [], 0.2)
                    if r:
                        self.read_some()
                except OSError as e:
                    self.send_error = '%s' % e
                    return False
        finally:
            self.in_send = False

    def send_frames(self, frames, **kw):
        self.frames_sent += len(frames)
        return self.send(b''.join(frames), **kw)

    def read_some(self, timeout=0.0):
        """One recv (waiting up to `timeout`), its frames handled. False when nothing came."""
        if self.eof or self.reset_by_peer:
            return False
        r, _, _ = select.select([self.sock], [], [], timeout)
        if not r:
            return False
        try:
            data = self.sock.recv(1 << 18)
        except BlockingIOError:
            return False
        except OSError:
            self.reset_by_peer = True
            self.eof_at = self.eof_at or self.now()
            return False
        if not data:
            self.eof = True
            self.eof_at = self.eof_at or self.now()
            return False
        self.inbuf += data
        self.parse()
        return True

    def stream(self, sid):
        return self.streams.setdefault(sid, {'name': None, 'id': sid, 'status': None, 'reset': None,
                                             'ended': False, 'body_len': 0, 'done_at': None,
                                             'head_at': None})

    def done(self, st):
        if st['done_at'] is None:
            st['done_at'] = self.now()

    def parse(self):
        while len(self.inbuf) >= 9:
            frame, length = Frame.parse_frame_header(memoryview(self.inbuf[:9]))
            if len(self.inbuf) < 9 + length:
                return
            frame.parse_body(memoryview(self.inbuf[9:9 + length]))
            del self.inbuf[:9 + length]
            self.on_frame(frame)

    def on_frame(self, f):
        name = type(f).__name__.replace('Frame', '').lower()
        self.received[name] = self.received.get(name, 0) + 1
        if isinstance(f, SettingsFrame):
            if 'ACK' not in f.flags:
                self.send_frames([SettingsFrame(0, flags=['ACK']).serialize()])
        elif isinstance(f, PingFrame):
            if 'ACK' not in f.flags:
                self.send_frames([PingFrame(0, f.opaque_data, flags=['ACK']).serialize()])
        elif isinstance(f, GoAwayFrame):
            self.goaway = {'error_code': f.error_code, 'last_stream_id': f.last_stream_id,
                           'debug': f.additional_data.decode('latin-1'), 'at': self.now()}
        elif isinstance(f, RstStreamFrame):
            st = self.stream(f.stream_id)
            st['reset'] = f.error_code
            self.done(st)
        elif isinstance(f, (HeadersFrame, ContinuationFrame)):
            if isinstance(f, HeadersFrame):
                self.block = [f.stream_id, bytes(f.data), 'END_STREAM' in f.flags]
            elif self.block is not None:
                self.block[1] += bytes(f.data)
            if 'END_HEADERS' in f.flags and self.block is not None:
                sid, data, end = self.block
                self.block = None
                st = self.stream(sid)
                for n, v in self.decoder.decode(data, raw=True):
                    if n == b':status':
                        st['status'] = int(v)
                        st['head_at'] = self.now()
                if end:
                    st['ended'] = True
                    self.done(st)
        elif isinstance(f, DataFrame):
            st = self.stream(f.stream_id)
            st['body_len'] += len(f.data)
            if 'END_STREAM' in f.flags:
                st['ended'] = True
                self.done(st)
            if self.auto_window and f.flow_controlled_length:
                self.send_frames([WindowUpdateFrame(0, f.flow_controlled_length).serialize(),
                                  WindowUpdateFrame(f.stream_id, f.flow_controlled_length).serialize()])

    def read_until(self, pred, deadline):
        while not pred() and not (self.eof or self.reset_by_peer) and time.monotonic() < deadline:
            self.read_some(0.05)

    def drain(self, deadline):
        """Reads until the peer closes (or the deadline)."""
        self.read_until(lambda: False, deadline)

    def result(self, mode):
        return {'mode': mode, 'goaway': self.goaway, 'eof': self.eof, 'eof_at': self.eof_at,
                'reset_by_peer': self.reset_by_peer, 'send_error': self.send_error,
                'frames_sent': self.frames_sent, 'frames_received': self.received,
                'streams': [s for s in self.streams.values() if s['name'] is not None],
                'error': self.error, 'elapsed': self.now()}


def event(what, **kw):
    kw['event'] = what
    print(json.dumps(kw), flush=True)


# ------------------------------------------------------------------------------------------ modes

def rapid_reset(c, spec, deadline):
    n = int(spec.get('streams', 5000))
    batch = int(spec.get('batch', 100))
    block = request_block({'path': '/rapid-reset'})
    sent = 0
    while sent < n and not c.closed() and c.goaway is None and time.monotonic() < deadline:
        frames = []
        for _ in range(min(batch, n - sent)):
            sid = 1 + 2 * sent
            frames += header_frames(sid, block, end_stream=True)
            frames.append(RstStreamFrame(sid, error_code=8).serialize())  # CANCEL
            sent += 1
        c.send_frames(frames)
        while c.read_some(0):
            pass
    event('sent', streams=sent)
    c.drain(deadline)
    r = c.result('rapid_reset')
    r['streams_sent'] = sent
    return r


def ack_flood(c, spec, deadline):
    n = int(spec.get('frames', 200000))
    kind = spec.get('kind', 'ping')
    if kind == 'ping':
        one = PingFrame(0, b'abusive!').serialize()
    else:
        one = SettingsFrame(0, {SettingsFrame.ENABLE_PUSH: 0}).serialize()
    per_write = 4096
    sent = 0
    while sent < n and not c.closed() and time.monotonic() < deadline:
        k = min(per_write, n - sent)
        c.frames_sent += k
        if not c.send(one * k, read_while_blocked=False, deadline=deadline):
            break
        sent += k
    event('sent', frames=sent)
    c.drain(deadline)
    r = c.result('ack_flood')
    r['flood_frames_sent'] = sent
    return r


def continuation(c, spec, deadline):
    n = int(spec.get('continuations', 10000))
    block = request_block({'path': '/continuation-flood'})
    c.send_frames([HeadersFrame(1, block, flags=['END_STREAM']).serialize()])
    piece = hp_literal(b'x-c', b'1')
    sent = 0
    while sent < n and not c.closed() and c.goaway is None and time.monotonic() < deadline:
        k = min(500, n - sent)
        c.send_frames([ContinuationFrame(1, piece).serialize()] * k)
        sent += k
        while c.read_some(0):
            pass
    event('sent', continuations=sent)
    c.drain(deadline)
    r = c.result('continuation')
    r['continuations_sent'] = sent
    return r


def streams(c, spec, deadline):
    specs = spec.get('streams', [])
    by_name = {}
    pending = list(specs)
    next_id = 1
    linger = float(spec.get('linger', 0))
    go_file = spec.get('read_go_file')

    def start(s):
        nonlocal next_id
        sid = next_id
        next_id += 2
        st = c.stream(sid)
        st['name'] = s.get('name', str(sid))
        by_name[st['name']] = st
        silent = s.get('silent', False)
        empty = int(s.get('empty_data', 0))
        body = s.get('body')
        end = not silent and not empty and body is None
        frames = header_frames(sid, request_block(s), end_stream=end)
        if empty:
            frames += [DataFrame(sid, b'').serialize()] * empty
            frames.append(DataFrame(sid, b'', flags=['END_STREAM']).serialize())
        if body is not None:
            frames.append(DataFrame(sid, b(body), flags=['END_STREAM']).serialize())
        c.send_frames(frames, read_while_blocked=go_file is None)
        event('sent', name=st['name'], id=sid)

    def startable():
        ready = [s for s in pending if 'after' not in s or
                 (s['after'] in by_name and by_name[s['after']]['done_at'] is not None)]
        for s in ready:
            pending.remove(s)
        return ready

    for s in startable():
        start(s)
    if go_file:
        while not os.path.exists(go_file) and time.monotonic() < deadline:
            time.sleep(0.01)
        event('reading')
    heads_told = False
    while time.monotonic() < deadline and not (c.eof or c.reset_by_peer):
        for s in startable():
            start(s)
        named = list(by_name.values())
        if not heads_told and not pending and all(st['status'] is not None or st['done_at'] is not None
                                                  for st in named):
            heads_told = True
            event('heads')
        if not pending and all(st['done_at'] is not None for st in named):
            break
        c.read_some(0.05)
    if time.monotonic() >= deadline and not c.closed():
        c.error = 'timed out'
    if linger:
        c.drain(min(deadline, time.monotonic() + linger))
    return c.result('streams')


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--port', type=int, required=True)
    ap.add_argument('--spec', required=True, help='JSON file')
    a = ap.parse_args()
    with open(a.spec) as f:
        spec = json.load(f)
    mode = spec['mode']
    deadline = time.monotonic() + float(spec.get('timeout', 20))
    c = Conn(a.port, settings=spec.get('settings'), rcvbuf=spec.get('rcvbuf'),
             auto_window=not spec.get('no_window_update', False),
             connection_window=spec.get('connection_window', 0))
    try:
        r = {'rapid_reset': rapid_reset, 'ack_flood': ack_flood, 'continuation': continuation,
             'streams': streams}[mode](c, spec, deadline)
    except Exception as e:  # reported, not raised: the test prints what it got
        c.error = 'client exception: %r' % e
        r = c.result(mode)
    print(json.dumps(r), flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
