#!/usr/bin/python3
"""gRPC test client (grpcio, no protoc) for tests/integration/grpc_test.cpp.

Run with /usr/bin/python3 (Debian's python3-grpcio). ONE insecure channel to 127.0.0.1:PORT
carries every call of a plan (a JSON file) against grpc_echo_server.py's `test.Echo`:

{
  "timeout": 20,                        # seconds per call / per wait
  "steps": [
    {"op": "unary", "label": "a", "n": 20, "concurrency": 1,
     "payload": "text" | "payload_bytes": N,            # N bytes of 'a'+i%26
     "metadata": [["x-echo", "v"]], "resp_size": N,       # resp_size: ask for N pattern bytes
     "first_metadata": [["x-delay-ms", "3000"]]},         # added to call 0 only
    {"op": "stream_open", "name": "s", "metadata": [...], "messages": ["m0"], "wait": true},
    {"op": "stream_send", "name": "s", "messages": ["m1", "m2"], "wait": true, "interval_ms": 0},
                                        # wait: true (default) waits for their answers;
                                        # interval_ms: the pause before each message after the first
    {"op": "stream_close", "name": "s"},                            # half-close, wait for status
    {"op": "loop", "label": "l", "concurrency": 4, "until_file": "/path", "max_seconds": 20},
    {"op": "event", "name": "x"},       # prints {"event": "x"} (flushed)
    {"op": "wait_file", "path": "/path"}
  ]
}

Output: the last stdout line, one JSON object:
{"calls": [{"label", "i", "code" (e.g. "OK", "UNAVAILABLE"), "details", "server" (trailing x-server),
            "initial_server", "trailers": {name: value}, "resp_len", "resp_ok" (the expected
            bytes came back), "req_ok" (the server's x-req-sha256 is the sent bytes')}],
 "streams": {name: {"code", "details", "initial_server", "trailers", "sent", "answers": [str]}},
 "loops": {label: {"total", "by": {"SERVER CODE": n}}},   # SERVER: trailing, else initial x-server
 "states": [connectivity states seen], "ready_count": n (READY transitions: 1 = one connection),
 "error": str|null}
"""

import argparse
import hashlib
import json
import os
import queue
import sys
import threading
import time
from concurrent import futures

import grpc

PATTERN = bytes(range(ord('a'), ord('z') + 1))


def pattern(n):
    return (PATTERN * (n // 26 + 1))[:n]


def md_dict(md):
    out = {}
    for k, v in (md or ()):
        out[k] = v if isinstance(v, str) else v.hex()
    return out


class Runner:
    def __init__(self, port, timeout):
        self.timeout = timeout
        limit = 8 * 1024 * 1024
        self.channel = grpc.insecure_channel('127.0.0.1:%d' % port, options=[
            ('grpc.max_receive_message_length', limit),
            ('grpc.max_send_message_length', limit),
            ('grpc.enable_retries', 0),
        ])
        self.states = []
        self.state_lock = threading.Lock()
        self.channel.subscribe(self._on_state, try_to_connect=True)
        ident = lambda b: b
        self.unary_stub = self.channel.unary_unary('/test.Echo/Unary', request_serializer=ident,
                                                   response_deserializer=ident)
        self.stream_stub = self.channel.stream_stream('/test.Echo/Stream', request_serializer=ident,
                                                      response_deserializer=ident)
        self.calls = []
        self.streams = {}
        self.open_streams = {}
        self.loops = {}

    def _on_state(self, state):
        with self.state_lock:
            self.states.append(state.name)

    # -- unary ---------------------------------------------------------------------------------

    def one_unary(self, step, i):
        if 'payload_bytes' in step:
            req = pattern(step['payload_bytes'])
        else:
            req = step.get('payload', 'hello %d' % i).encode()
        md = [tuple(x) for x in step.get('metadata', [])]
        if i == 0:
            md.extend(tuple(x) for x in step.get('first_metadata', []))
        expected = req
        if 'resp_size' in step:
            md.append(('x-resp-size', str(step['resp_size'])))
            expected = pattern(step['resp_size'])
        rec = {'label': step.get('label', ''), 'i': i}
        try:
            resp, call = self.unary_stub.with_call(req, metadata=md, timeout=self.timeout)
            rec['code'] = call.code().name
            rec['details'] = call.details() or ''
            initial, trailing = call.initial_metadata(), call.trailing_metadata()
            rec['resp_len'] = len(resp)
            rec['resp_ok'] = resp == expected
            if not rec['resp_ok']:
                rec['resp_head'] = resp[:64].decode('latin-1')
        except grpc.RpcError as e:
            rec['code'] = e.code().name
            rec['details'] = e.details() or ''
            initial, trailing = e.initial_metadata(), e.trailing_metadata()
            rec['resp_len'] = None
            rec['resp_ok'] = False
        rec['initial_server'] = md_dict(initial).get('x-server')
        rec['trailers'] = md_dict(trailing)
        rec['server'] = rec['trailers'].get('x-server')
        rec['req_ok'] = rec['trailers'].get('x-req-sha256') == hashlib.sha256(req).hexdigest()
        return rec

    def unary(self, step):
        n, conc = step.get('n', 1), step.get('concurrency', 1)
        if conc <= 1:
            for i in range(n):
                self.calls.append(self.one_unary(step, i))
            return
        with futures.ThreadPoolExecutor(max_workers=conc) as pool:
            self.calls.extend(pool.map(lambda i: self.one_unary(step, i), range(n)))

    # -- loop ----------------------------------------------------------------------------------

    def loop(self, step):
        stop = threading.Event()
        lock = threading.Lock()
        summary = {'total': 0, 'by': {}}
        end = time.monotonic() + step.get('max_seconds', 20)

        def worker(w):
            i = 0
            while not stop.is_set():
                rec = self.one_unary({'label': step.get('label', '')}, i)
                i += 1
                key = '%s %s' % (rec['server'] or rec['initial_server'], rec['code'])
                with lock:
                    summary['total'] += 1
                    summary['by'][key] = summary['by'].get(key, 0) + 1

        threads = [threading.Thread(target=worker, args=(w,)) for w in range(step.get('concurrency', 4))]
        for t in threads:
            t.start()
        while not os.path.exists(step['until_file']) and time.monotonic() < end:
            time.sleep(0.01)
        stop.set()
        for t in threads:
            t.join()
        self.loops[step.get('label', '')] = summary

    # -- streams -------------------------------------------------------------------------------

    def stream_open(self, step):
        name = step['name']
        q = queue.Queue()

        def requests():
            while True:
                m = q.get()
                if m is None:
                    return
                yield m

        md = [tuple(x) for x in step.get('metadata', [])]
        call = self.stream_stub(requests(), metadata=md, timeout=self.timeout)
        st = {'queue': q, 'call': call, 'answers': [], 'sent': 0, 'cond': threading.Condition(),
              'done': False, 'error': None}

        def reader():
            try:
                for resp in call:
                    with st['cond']:
                        st['answers'].append(resp.decode('latin-1'))
                        st['cond'].notify_all()
            except grpc.RpcError as e:
                st['error'] = e
            with st['cond']:
                st['done'] = True
                st['cond'].notify_all()

        st['thread'] = threading.Thread(target=reader)
        st['thread'].start()
        self.open_streams[name] = st
        self.stream_send({'name': name, 'messages': step.get('messages', []), 'wait': step.get('wait', True)})

    def stream_send(self, step):
        st = self.open_streams[step['name']]
        interval = step.get('interval_ms', 0) / 1000.0
        for k, m in enumerate(step.get('messages', [])):
            if k and interval:
                time.sleep(interval)  # a stream that stays open, never silent for long
            st['queue'].put(m.encode())
            st['sent'] += 1
        if not step.get('wait', True):
            return
        deadline = time.monotonic() + self.timeout
        with st['cond']:
            while len(st['answers']) < st['sent'] and not st['done']:
                left = deadline - time.monotonic()
                if left <= 0:
                    raise RuntimeError('stream %s: %d answers to %d messages after %ss'
                                       % (step['name'], len(st['answers']), st['sent'], self.timeout))
                st['cond'].wait(left)
            if len(st['answers']) < st['sent']:
                code = st['error'].code().name if st['error'] else 'OK'
                raise RuntimeError('stream %s ended (%s) with %d answers to %d messages'
                                   % (step['name'], code, len(st['answers']), st['sent']))

    def stream_close(self, step):
        name = step['name']
        st = self.open_streams.pop(name)
        st['queue'].put(None)
        st['thread'].join(self.timeout)
        call = st['call']
        self.streams[name] = {
            'code': call.code().name,
            'details': call.details() or '',
            'initial_server': md_dict(call.initial_metadata()).get('x-server'),
            'trailers': md_dict(call.trailing_metadata()),
            'sent': st['sent'],
            'answers': st['answers'],
        }

    # -- sync ----------------------------------------------------------------------------------

    def wait_file(self, step):
        deadline = time.monotonic() + self.timeout
        while not os.path.exists(step['path']):
            if time.monotonic() > deadline:
                raise RuntimeError('%s did not appear within %ss' % (step['path'], self.timeout))
            time.sleep(0.005)

    def run(self, plan):
        for step in plan['steps']:
            op = step['op']
            if op == 'event':
                print(json.dumps({'event': step['name']}), flush=True)
            else:
                getattr(self, op)(step)

    def result(self, error):
        with self.state_lock:
            states = list(self.states)
        return {'calls': self.calls, 'streams': self.streams, 'loops': self.loops, 'states': states,
                'ready_count': states.count('READY'), 'error': error}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('--port', type=int, required=True)
    ap.add_argument('--plan', required=True)
    args = ap.parse_args()
    with open(args.plan) as f:
        plan = json.load(f)
    runner = Runner(args.port, plan.get('timeout', 20))
    error = None
    try:
        runner.run(plan)
    except Exception as e:  # reported to the test, which fails with it
        error = '%s: %s' % (type(e).__name__, e)
    for st in runner.open_streams.values():
        st['queue'].put(None)
    print(json.dumps(runner.result(error)), flush=True)
    runner.channel.close()
    return 0


if __name__ == '__main__':
    sys.exit(main())
