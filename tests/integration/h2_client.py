#!/usr/bin/python3
"""HTTP/2 (h2c, prior knowledge) test client for tests/integration/h2_test.cpp.

Run with /usr/bin/python3 (Debian's python3-h2). One connection to 127.0.0.1:PORT carries the
streams a JSON spec describes; what came back is printed as one JSON line on stdout (the last
line). Frames leave exactly as specified: outbound header validation and normalisation are off,
so malformed requests (CR/LF in values, duplicate pseudo-fields, connection-specific fields)
reach the server as written. Inbound frames are checked by h2 as usual (a server that overruns
the client's flow-control window or sends an illegal field is reported in "error").

Spec (a JSON file):
{
  "settings": {"initial_window": 8192, "max_frame_size": 16384},   # client SETTINGS, optional
  "go_file": "/path",   # streams with "phase": 1 start once this file exists (optional)
  "timeout": 20,        # seconds for the whole run
  "streams": [{
     "name": "a",                   # echoed in the output
     "phase": 0,                    # 0: at once; 1: after go_file appears
     "method": "GET", "path": "/", "authority": "app.test", "scheme": "http",
     "headers": [["x-a", "1"]],     # regular fields after the pseudo-fields
     "raw_headers": [[":method", "GET"], ...],   # the whole field list instead of the above
     "body": "text",                # or "body_bytes": N (the demo backend's pattern, 'a'+i%26)
     "content_length": true,        # true: add content-length of the body; "N": that value
     "data_frames": ["..", ".."],   # explicit DATA frames (one write), then END_STREAM
     "late_data": [".."]            # DATA frames sent once go_file appears, then END_STREAM
  }]
}
Output: {"streams": [{"name", "id", "status", "headers": [[n, v]], "body" (when <= 64 KiB),
          "body_len", "body_fnv1a", "ended", "reset" (error code or null), "data_frames",
          "max_data_frame", "answered_before_go"}], "goaway": {"error_code", "last_stream_id"}|null,
          "eof": bool, "error": str|null}
A line {"event": "phase0_sent"} is printed (and flushed) once the phase-0 streams are written.
"""

import argparse
import json
import os
import select
import socket
import sys
import time

import h2.config
import h2.connection
import h2.events
import h2.exceptions
import h2.settings

PATTERN = bytes(range(ord('a'), ord('z') + 1))


def pattern(n):
    return (PATTERN * (n // 26 + 1))[:n]


def fnv1a(data):
    h = 0xcbf29ce484222325
    for b in data:
        h ^= b
        h = (h * 0x100000001b3) & 0xffffffffffffffff
    return '%016x' % h


def enc(s):
    return s.encode('latin-1') if isinstance(s, str) else s


def dec(b):
    return b.decode('latin-1') if isinstance(b, (bytes, bytearray)) else b


class Stream:
    def __init__(self, spec):
        self.spec = spec
        self.id = None
        self.status = None
        self.headers = []
        self.body = bytearray()
        self.ended = False
        self.reset = None
        self.data_frames = 0
        self.max_data_frame = 0
        self.answered_at = None

    def done(self):
        return self.ended or self.reset is not None

    def field_list(self):
        s = self.spec
        if 'raw_headers' in s:
            return [(enc(n), enc(v)) for n, v in s['raw_headers']]
        fields = [(b':method', enc(s.get('method', 'GET'))), (b':path', enc(s.get('path', '/'))),
                  (b':scheme', enc(s.get('scheme', 'http'))),
                  (b':authority', enc(s.get('authority', 'app.test')))]
        cl = s.get('content_length')
        if cl is True:
            fields.append((b'content-length', str(len(self.payload())).encode()))
        elif isinstance(cl, str):
            fields.append((b'content-length', enc(cl)))
        fields += [(enc(n), enc(v)) for n, v in s.get('headers', [])]
        return fields

    def payload(self):
        s = self.spec
        if 'body_bytes' in s:
            return pattern(int(s['body_bytes']))
        return enc(s.get('body', ''))

    def result(self, go_at):
        body = bytes(self.body)
        r = {'name': self.spec.get('name', ''), 'id': self.id, 'status': self.status,
             'headers': [[dec(n), dec(v)] for n, v in self.headers], 'body_len': len(body),
             'body_fnv1a': fnv1a(body) if len(body) <= (4 << 20) else None,
             'ended': self.ended, 'reset': self.reset, 'data_frames': self.data_frames,
             'max_data_frame': self.max_data_frame,
             'answered_before_go': (self.answered_at is not None and go_at is not None
                                    and self.answered_at < go_at)}
        if len(body) <= 65536:
            r['body'] = dec(body)
        return r


class Client:
    def __init__(self, port, spec):
        self.sock = socket.create_connection(('127.0.0.1', port), timeout=5)
        self.sock.setblocking(False)
        cfg = h2.config.H2Configuration(client_side=True, header_encoding=None,
                                        validate_outbound_headers=False,
                                        normalize_outbound_headers=False)
        self.conn = h2.connection.H2Connection(config=cfg)
        settings = spec.get('settings', {})
        initial = {}
        if 'initial_window' in settings:
            initial[h2.settings.SettingCodes.INITIAL_WINDOW_SIZE] = int(settings['initial_window'])
        if 'max_frame_size' in settings:
            initial[h2.settings.SettingCodes.MAX_FRAME_SIZE] = int(settings['max_frame_size'])
        if initial:
            self.conn.local_settings = h2.settings.Settings(client=True, initial_values=initial)
        self.conn.initiate_connection()
        self.streams = [Stream(s) for s in spec.get('streams', [])]
        self.by_id = {}
        self.sending = []  # [stream, remaining bytes] of bodies sent as the window allows
        self.goaway = None
        self.eof = False
        self.error = None
        self.go_at = None
        self.flush()

    def flush(self):
        data = self.conn.data_to_send()
        while data:
            try:
                n = self.sock.send(data)
                data = data[n:]
            except BlockingIOError:
                select.select([], [self.sock], [], 1.0)
            except OSError as e:
                if self.error is None:
                    self.error = 'send: %s' % e
                return

    def start(self, st):
        sid = self.conn.get_next_available_stream_id()
        st.id = sid
        self.by_id[sid] = st
        s = st.spec
        frames = s.get('data_frames')
        payload = st.payload()
        has_body = frames is not None or len(payload) > 0 or 'late_data' in s
        self.conn.send_headers(sid, st.field_list(), end_stream=not has_body)
        if frames is not None:
            for f in frames:
                self.conn.send_data(sid, enc(f))
            self.conn.end_stream(sid)
        elif len(payload) > 0:
            self.sending.append([st, payload])

    def send_late_data(self, st):
        try:
            for f in st.spec['late_data']:
                self.conn.send_data(st.id, enc(f))
            self.conn.end_stream(st.id)
        except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
            pass

    def pump(self):
        """Sends request body bytes as far as the peer's windows allow."""
        for item in list(self.sending):
            st, rest = item
            if st.reset is not None:
                self.sending.remove(item)
                continue
            try:
                while rest:
                    w = min(self.conn.local_flow_control_window(st.id),
                            self.conn.max_outbound_frame_size, len(rest))
                    if w <= 0:
                        break
                    self.conn.send_data(st.id, rest[:w])
                    rest = rest[w:]
                item[1] = rest
                if not rest:
                    self.conn.end_stream(st.id)
                    self.sending.remove(item)
            except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
                self.sending.remove(item)
        self.flush()

    def receive(self, timeout):
        r, _, _ = select.select([self.sock], [], [], timeout)
        if not r:
            return
        try:
            data = self.sock.recv(65536)
        except BlockingIOError:
            return
        except OSError as e:
            self.eof = True
            if self.error is None and self.goaway is None:
                self.error = 'recv: %s' % e
            return
        if not data:
            self.eof = True
            return
        try:
            events = self.conn.receive_data(data)
        except h2.exceptions.ProtocolError as e:
            self.error = 'protocol error from the server: %r' % e
            self.eof = True
            return
        for ev in events:
            st = self.by_id.get(getattr(ev, 'stream_id', None) or 0)
            if isinstance(ev, h2.events.ResponseReceived) and st:
                st.headers = list(ev.headers)
                st.answered_at = time.monotonic()
                for n, v in ev.headers:
                    if n == b':status':
                        st.status = int(v)
            elif isinstance(ev, h2.events.InformationalResponseReceived):
                pass
            elif isinstance(ev, h2.events.TrailersReceived) and st:
                st.headers += list(ev.headers)
            elif isinstance(ev, h2.events.DataReceived):
                if st:
                    st.body += ev.data
                    st.data_frames += 1
                    st.max_data_frame = max(st.max_data_frame, len(ev.data))
                if ev.flow_controlled_length:
                    self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, h2.events.StreamEnded) and st:
                st.ended = True
            elif isinstance(ev, h2.events.StreamReset) and st:
                st.reset = int(ev.error_code)
            elif isinstance(ev, h2.events.ConnectionTerminated):
                self.goaway = {'error_code': int(ev.error_code),
                               'last_stream_id': ev.last_stream_id}
        self.pump()

    def all_done(self, phase):
        return all(s.done() for s in self.streams if s.spec.get('phase', 0) <= phase)

    def run(self, go_file, deadline):
        for st in self.streams:
            if st.spec.get('phase', 0) == 0:
                self.start(st)
        self.pump()
        print(json.dumps({'event': 'phase0_sent'}), flush=True)
        phases = [0]
        if any(s.spec.get('phase', 0) == 1 or 'late_data' in s.spec for s in self.streams):
            phases.append(1)
        for phase in phases:
            if phase == 1:
                while not os.path.exists(go_file):
                    if time.monotonic() > deadline or self.eof:
                        self.error = self.error or 'timed out waiting for the go file'
                        return
                    self.receive(0.005)
                self.go_at = time.monotonic()
                for st in self.streams:
                    if 'late_data' in st.spec and st.id is not None:
                        self.send_late_data(st)
                for st in self.streams:
                    if st.spec.get('phase', 0) == 1:
                        self.start(st)
                self.pump()
        while not self.all_done(1) and not self.eof:
            if time.monotonic() > deadline:
                self.error = self.error or 'timed out'
                return
            self.receive(0.05)
        # Closing politely: a GOAWAY of our own, then the socket.
        try:
            self.conn.close_connection()
            self.flush()
        except Exception:
            pass

    def result(self):
        return {'streams': [s.result(self.go_at) for s in self.streams], 'goaway': self.goaway,
                'eof': self.eof, 'error': self.error}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--port', type=int, required=True)
    ap.add_argument('--spec', required=True, help='JSON file')
    a = ap.parse_args()
    with open(a.spec) as f:
        spec = json.load(f)
    deadline = time.monotonic() + float(spec.get('timeout', 20))
    c = Client(a.port, spec)
    try:
        c.run(spec.get('go_file'), deadline)
    except Exception as e:  # reported, not raised: the test prints what it got
        c.error = 'client exception: %r' % e
    print(json.dumps(c.result()), flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
