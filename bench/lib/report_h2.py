#!/usr/bin/env python3
"""Turn bench/run --h2's raw results into the markdown report (stdout).

    report_h2.py RESULTS.tsv TMPDIR "bgproxy haproxy nginx"

Inputs: TMPDIR/h2.<profile>.<mode>.<label>.<round>.txt (h2load -D output; mode h2c | tls, or h1 for
the backend-direct reference) and rows of RESULTS.tsv, the second field being the profile:
  profile P DESCRIPTION BACKENDS TARGET RESPONSE_BYTES REQUEST_HEAD_BYTES
  h2cpu P MODE NAME ROUND TICKS HZ        h2flt P MODE NAME ROUND MINOR_PAGE_FAULTS
  h2instr P MODE NAME TOTAL N CONN_TOTAL CONNS
  h2neg P MODE NAME TEXT                  h2head P MODE NAME RESPONSE_FIELDS BACKEND_FIELDS
  h2copy P MODE NAME COPY_N COPY_CONNS   (instructions in glibc memcpy/memmove of the two counted runs)
  h2fields P FIELDS (the request's fields after the pseudo-fields, '|'-separated; empty: h2load's own)
  fail P NAME REASON                      busy P PCT LOAD_BEFORE LOAD_AFTER
and the BR_* environment variables bench/run exports.
"""
import glob
import os
import re
import statistics
import sys

MODE_NAME = {"h2c": "h2c (prior knowledge)", "tls": "TLS, ALPN h2", "h1": "HTTP/1.1"}
WANT_ALPN = {"h2c": "h2c", "tls": "h2", "h1": "http/1.1"}
UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def parse_h2load(path):
    txt = open(path, errors="replace").read()
    m = re.search(r"^finished in [^,]*, ([0-9.]+) req/s", txt, re.M)
    if not m:
        return None
    r = {"rps": float(m.group(1))}
    m = re.search(r"^requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, "
                  r"(\d+) errored, (\d+) timeout", txt, re.M)
    r["succeeded"] = int(m.group(4)) if m else 0
    r["failed"] = sum(int(x) for x in m.groups()[4:]) if m else 0
    m = re.search(r"^status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", txt, re.M)
    r["non2xx"] = sum(int(x) for x in m.groups()[1:]) if m else 0
    m = re.search(r"^traffic: .*\((\d+)\) total, .*\((\d+)\) headers .*\((\d+)\) data", txt, re.M)
    r["hdr_bytes"] = int(m.group(2)) if m else None
    m = re.search(r"^time for request:\s+\S+\s+\S+\s+([0-9.]+)(us|ms|s)\s", txt, re.M)
    r["mean_ms"] = float(m.group(1)) * UNIT_MS[m.group(2)] if m else None
    m = re.search(r"^Application protocol: (\S+)", txt, re.M)
    r["alpn"] = m.group(1) if m else None
    return r


def fmt_ms(v):
    if v is None:
        return "—"
    return f"{v * 1000:.0f} µs" if v < 1 else f"{v:.2f} ms"


def ratio(a, b):
    if a is None or b is None or b == 0:
        return None
    return a / b


def fmt_ratio(a, b):
    r = ratio(a, b)
    return "—" if r is None else f"{r:.2f}×"


def med(vals):
    vals = [v for v in vals if v is not None]
    return statistics.median(vals) if vals else None


class Profile:
    def __init__(self, name):
        self.name = name
        self.desc = self.backends = self.target = ""
        self.resp_bytes = "?"
        self.runs = {}      # (mode, label) -> round -> parsed h2load
        self.cpu = {}       # (mode, label, round) -> CPU seconds
        self.flt = {}       # (mode, label, round) -> minor page faults
        self.instr = {}     # (mode, label) -> (per request, per connection)
        self.raw = {}       # (mode, label) -> (N, CONNS)
        self.copy = {}      # (mode, label) -> memcpy/memmove instructions per request
        self.neg, self.heads, self.fail = {}, {}, {}
        self.busy = None
        self.fields = None

    def fields_text(self):
        if not self.fields:
            return "h2load's own fields: `user-agent: h2load nghttp2/…`"
        return "fields " + ", ".join(f"`{f}`" if len(f) <= 60 else f"`{f[:57]}…`" for f in self.fields)

    def rps(self, mode, label):
        return med(r["rps"] for r in self.runs.get((mode, label), {}).values())

    def cpu_per_req(self, mode, label):
        """median over the rounds of the proxy's CPU µs per succeeded request"""
        return med(self.cpu[(mode, label, rnd)] / r["succeeded"] * 1e6
                   for rnd, r in self.runs.get((mode, label), {}).items()
                   if (mode, label, rnd) in self.cpu and r["succeeded"])

    def flt_per_req(self, mode, label):
        return med(self.flt[(mode, label, rnd)] / r["succeeded"]
                   for rnd, r in self.runs.get((mode, label), {}).items()
                   if (mode, label, rnd) in self.flt and r["succeeded"])

    def hdr_per_resp(self, mode, label):
        return med(r["hdr_bytes"] / r["succeeded"] for r in self.runs.get((mode, label), {}).values()
                   if r["hdr_bytes"] is not None and r["succeeded"])

    def mean_ms(self, mode, label):
        return med(r["mean_ms"] for r in self.runs.get((mode, label), {}).values())

    def ins(self, mode, label):
        v = self.instr.get((mode, label))
        return v[0] if v else None


def load(res_path, tmp):
    profs, order = {}, []

    def P(name):
        if name not in profs:
            profs[name] = Profile(name)
            order.append(name)
        return profs[name]

    for line in open(res_path):
        f = line.rstrip("\n").split("\t")
        k = f[0]
        if k == "profile":
            p = P(f[1])
            p.desc, p.backends, p.target, p.resp_bytes = f[2], f[3], f[4], f[5]
            if p.resp_bytes.isdigit():
                p.resp_bytes = f"{int(p.resp_bytes):,}"
        elif k == "h2cpu":
            P(f[1]).cpu[(f[2], f[3], int(f[4]))] = int(f[5]) / int(f[6])
        elif k == "h2flt":
            P(f[1]).flt[(f[2], f[3], int(f[4]))] = int(f[5])
        elif k == "h2instr":
            total, n, conn, c = int(f[4]), int(f[5]), int(f[6]), int(f[7])
            P(f[1]).instr[(f[2], f[3])] = ((total - conn) / (n - c), conn / c)
            P(f[1]).raw[(f[2], f[3])] = (n, c)
        elif k == "h2copy":
            p = P(f[1])
            if (f[2], f[3]) in p.raw:
                n, c = p.raw[(f[2], f[3])]
                p.copy[(f[2], f[3])] = (int(f[4]) - int(f[5])) / (n - c)
        elif k == "h2neg":
            P(f[1]).neg[(f[2], f[3])] = f[4]
        elif k == "h2head":
            P(f[1]).heads[f[3]] = (f[2], f[4] if len(f) > 4 else "", f[5] if len(f) > 5 else "")
        elif k == "fail":
            P(f[1]).fail[f[2]] = f[3]
        elif k == "busy":
            P(f[1]).busy = (f[2], f[3], f[4])
        elif k == "h2fields":
            P(f[1]).fields = [x for x in (f[2] if len(f) > 2 else "").split("|") if x]
    for path in glob.glob(os.path.join(tmp, "h2.*.*.*.*.txt")):
        _, prof, mode, label, rnd, _ = os.path.basename(path).split(".")
        r = parse_h2load(path)
        if r:
            P(prof).runs.setdefault((mode, label), {})[int(rnd)] = r
    return [profs[n] for n in order]


def neg_text(raw):
    """'TLS Protocol: TLSv1.3;Cipher: X;Server Temp Key: X25519 253 bits;Application protocol: h2;...'"""
    kv = dict(x.split(": ", 1) for x in raw.split(";") if ": " in x)
    parts = [kv[k] for k in ("TLS Protocol", "Cipher", "Server Temp Key") if k in kv]
    parts.append("ALPN " + kv["Application protocol"] if "TLS Protocol" in kv and "Application protocol" in kv
                 else kv.get("Application protocol", "?"))
    return " · ".join(parts)


def main():
    res_path, tmp, proxies = sys.argv[1], sys.argv[2], sys.argv[3].split()
    env = os.environ.get
    modes = env("BR_H2_MODES", "h2c tls").split()
    h2_upstream = env("BR_H2_UPSTREAM", "h1") == "h2c"
    profs = load(res_path, tmp)
    out = []
    w = out.append
    b = "bgproxy"

    w("# bgproxy HTTP/2 benchmark results (`bench/run --h2`)")
    w("")
    w("**Goal (issue 15, item 8): at least HAProxy's requests/s with at most its CPU per request** — "
      "for HTTP/2 clients (h2load) over h2c and TLS, in front of the same "
      + ("HTTP/2 backends (h2c, prior knowledge: bgproxy `protocol: h2c`, HAProxy `server ... proto h2`; "
         "nginx cannot proxy to HTTP/2 and is left out)." if h2_upstream else "HTTP/1.1 backends."))
    w("")
    w(f"Generated by `bench/run --h2` on {env('BR_DATE', '?')} — {env('BR_MODE', '?')}. "
      f"{', '.join(proxies)} in one run, the same two backend processes, the same h2load command for "
      "every proxy. Profiles:")
    w("")
    for p in profs:
        w(f"- `{p.name}`: `GET {p.target}` (:method, :scheme, :authority, :path), then {p.fields_text()}; "
          f"{p.resp_bytes}-byte response body; backends: {p.backends}")
    w("")

    # ---- the goal, checked
    rows = []
    for p in profs:
        for m in modes:
            rr = ratio(p.rps(m, b), p.rps(m, "haproxy"))
            cr = ratio(p.cpu_per_req(m, b), p.cpu_per_req(m, "haproxy"))
            ir = ratio(p.ins(m, b), p.ins(m, "haproxy"))
            if rr is None and cr is None and ir is None:
                continue
            met = "—" if rr is None or cr is None else ("✓" if rr >= 1.0 and cr <= 1.0 else "✗")
            rows.append(f"| `{p.name}` | {MODE_NAME[m]} | {'—' if rr is None else f'{rr:.2f}×'} "
                        f"| {'—' if cr is None else f'{cr:.2f}×'} | {'—' if ir is None else f'{ir:.2f}×'} | {met} |")
    if rows:
        w("## The goal, as measured by this run (bgproxy ÷ HAProxy)")
        w("")
        w("| profile | client protocol | req/s | CPU µs per request | instructions per request | met (req/s ≥ 1, CPU ≤ 1) |")
        w("|---|---|---:|---:|---:|:---:|")
        out.extend(rows)
        w("")
        w("req/s and CPU per request: medians over the interleaved rounds; CPU = user + system time of the "
          "proxy process from /proc/PID/stat over the measured runs, per request h2load completed. "
          "Instructions: user space only (callgrind), the connections' own cost subtracted.")
        w("")

    for p in profs:
        render_profile(w, p, proxies, modes)

    render_setup(w, profs, env)
    render_caveats(w, env, h2_upstream)
    print("\n".join(out))


def render_profile(w, p, proxies, modes):
    w(f"## Profile `{p.name}` — `GET {p.target}`, {p.resp_bytes}-byte body")
    w("")
    w("| client protocol | proxy | req/s (median) | vs HAProxy | vs nginx | CPU µs/req | vs HAProxy | vs nginx "
      "| instr/req | vs HAProxy | vs nginx | of which memcpy | instr per new connection | mean stream time "
      "| HEADERS bytes per response | page faults per request |")
    w("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for bm, bname in (("h1", "HTTP/1.1 (h2load --h1)"), ("h2c", "h2c (h2load)")):
        br = p.rps(bm, "backend")
        if br is not None:
            w(f"| {bname} | backend direct (reference) | {br:,.0f} | — | — | — | — | — | — | — | — | — "
              f"| — | {fmt_ms(p.mean_ms(bm, 'backend'))} | — | — |")
    for m in modes:
        for l in proxies:
            rps = p.rps(m, l)
            if rps is None and p.ins(m, l) is None:
                why = p.fail.get(l, "no result").split(":")[0]
                w(f"| {MODE_NAME[m]} | {l} | failed ({why}) |" + " — |" * 13)
                continue
            c = p.cpu_per_req(m, l)
            i = p.instr.get((m, l))
            hb = p.hdr_per_resp(m, l)
            pf = p.flt_per_req(m, l)
            w(f"| {MODE_NAME[m]} | {l} | {'—' if rps is None else f'{rps:,.0f}'} "
              f"| {fmt_ratio(rps, p.rps(m, 'haproxy'))} | {fmt_ratio(rps, p.rps(m, 'nginx'))} "
              f"| {'—' if c is None else f'{c:.1f}'} | {fmt_ratio(c, p.cpu_per_req(m, 'haproxy'))} "
              f"| {fmt_ratio(c, p.cpu_per_req(m, 'nginx'))} "
              f"| {'—' if i is None else f'{i[0]:,.0f}'} | {fmt_ratio(p.ins(m, l), p.ins(m, 'haproxy'))} "
              f"| {fmt_ratio(p.ins(m, l), p.ins(m, 'nginx'))} "
              f"| {'—' if (m, l) not in p.copy else f'{p.copy[(m, l)]:,.0f}'} | {'—' if i is None else f'{i[1]:,.0f}'} "
              f"| {fmt_ms(p.mean_ms(m, l))} | {'—' if hb is None else f'{hb:.1f}'} "
              f"| {'—' if pf is None else f'{pf:.2f}'} |")
    w("")

    # ---- what went wrong: failed streams, non-2xx, protocol not negotiated, noise
    problems = []
    for (m, l), rounds in sorted(p.runs.items()):
        for rnd, r in sorted(rounds.items()):
            if r["failed"] or r["non2xx"]:
                problems.append(f"{MODE_NAME[m]} {l} round {rnd}: {r['failed']} failed/errored/timed-out "
                                f"requests, {r['non2xx']} non-2xx")
            if r["alpn"] != WANT_ALPN[m]:
                problems.append(f"{MODE_NAME[m]} {l} round {rnd}: application protocol {r['alpn'] or 'none'}, "
                                f"not {WANT_ALPN[m]}")
    if problems:
        w("**⚠ Problems:** " + "; ".join(problems) + ".")
        w("")
    if p.fail:
        w("**Failures:** " + "; ".join(f"{l}: {why}" for l, why in p.fail.items()))
        w("")
    noise = []
    for (m, l), rounds in sorted(p.runs.items()):
        vals = [r["rps"] for r in rounds.values()]
        lim = 1.10 if l == "backend" else 1.25
        if len(vals) > 1 and min(vals) > 0 and max(vals) / min(vals) > lim:
            noise.append(f"{MODE_NAME[m]} {l}: req/s ranged {min(vals):,.0f}–{max(vals):,.0f}")
    if noise:
        w("**⚠ Noisy run** — req/s is unreliable (outside load?); CPU and instructions per request are "
          "barely affected: " + "; ".join(noise) + ".")
        w("")

    # ---- per round
    backend_mode = "h1" if ("h1", "backend") in p.runs else "h2c"  # H2_UPSTREAM=h2c: over h2c
    cols = [(backend_mode, "backend")] + [(m, l) for m in modes for l in proxies if (m, l) in p.runs]
    rounds = sorted({r for c in cols for r in p.runs.get(c, {})})
    if rounds:
        w("Per round (req/s · proxy CPU µs per request; rounds interleaved in this order, each run after a "
          "warm-up of the same):")
        w("")
        w("| round | " + " | ".join(f"backend, {MODE_NAME[m] if m == 'h1' else m}" if l == "backend" else f"{l}, {m}"
                                    for m, l in cols) + " |")
        w("|---|" + "---:|" * len(cols))
        for rnd in rounds:
            cells = []
            for m, l in cols:
                r = p.runs.get((m, l), {}).get(rnd)
                if not r:
                    cells.append("—")
                    continue
                c = ""
                if (m, l, rnd) in p.cpu and r["succeeded"]:
                    c = f" · {p.cpu[(m, l, rnd)] / r['succeeded'] * 1e6:.1f} µs"
                e = f" ⚠ {r['failed']} failed" if r["failed"] else ""
                cells.append(f"{r['rps']:,.0f}{c}{e}")
            w(f"| {rnd} | " + " | ".join(cells) + " |")
        w("")

    # ---- negotiation and heads
    if p.neg:
        w("Negotiated (h2load, 20 requests before the rounds): " + "; ".join(
            f"{l} {MODE_NAME[m]}: {neg_text(v)}" for (m, l), v in sorted(p.neg.items())) + ". "
          "Every measured run is checked for the same application protocol (⚠ above if not).")
        w("")
    if p.heads:
        w("What each proxy does to the request and the answer (one `nghttp` request, "
          f"{MODE_NAME[next(iter(p.heads.values()))[0]]}): the response fields the HTTP/2 client gets, and "
          "the fields the HTTP/1.1 backend gets (the demo backend's echo of the same request; nghttp adds "
          "`accept` and `accept-encoding`, h2load does not):")
        w("")
        w("| proxy | response fields | request fields at the backend |")
        w("|---|---|---|")
        for l in proxies:
            if l in p.heads:
                _, rf, bf = p.heads[l]
                w(f"| {l} | {len(rf.split())}: {rf or '?'} | " + (f"{len(bf.split())}: {bf}" if bf else "—") + " |")
        w("")


def render_setup(w, profs, env):
    w("## Setup")
    w("")
    w(f"- Machine: {env('BR_NPROC', '?')} CPUs, {env('BR_CPU', '?')}, {env('BR_KERNEL', '?')}")
    w(f"- bgproxy: {env('BR_BGPROXY', '?')}; `threads: 1`, `access_log: off`, health checks and watchdog off; "
      "listeners `{address: 127.0.0.1:P1, protocols: [http/1.1, h2c]}` and `{address: 127.0.0.1:P2, tls: "
      "{certificate, private_key}}` (TLS: the default `protocols: [h2, http/1.1]`); `http2:` defaults "
      "(100 concurrent streams, 64 KiB stream window, 1 MiB connection window)")
    w(f"- HAProxy: {env('BR_HAPROXY', '?')}; `nbthread 1`, `mode http`, `option http-keep-alive`, "
      "`http-reuse always`, `balance leastconn`, no logging, `-db`; `bind 127.0.0.1:P1 proto h2` and "
      "`bind 127.0.0.1:P2 ssl crt combined.pem alpn h2,http/1.1`; `tune.h2.*` defaults (100 streams, "
      "65,535-byte initial window)")
    w(f"- nginx: {env('BR_NGINX', '?')}; `worker_processes 1`, `master_process off`, upstream `least_conn` + "
      "`keepalive 64`, `proxy_http_version 1.1`, `proxy_set_header Connection \"\"`, "
      "`keepalive_requests 1000000` (client side, which also bounds requests per HTTP/2 connection, and "
      "upstream side), access_log off; `listen 127.0.0.1:P1 http2` (h2c with prior knowledge) and "
      "`listen 127.0.0.1:P2 ssl http2`; `http2_*` defaults (128 streams, `http2_chunk_size 8k`)")
    if env("BR_FWD", "0") == "1":
        w("- FORWARD_HEADERS=1: HAProxy and nginx also add X-Forwarded-For and X-Forwarded-Proto")
    else:
        w("- HAProxy and nginx are configured to add no X-Forwarded-* headers (bgproxy adds X-Forwarded-For, "
          "-Proto, -Host and Via, and its sticky Set-Cookie; see the tables per profile)")
    w(f"- TLS: {env('BR_TLS_SETUP', '?')}")
    w(f"- Backends: HTTP/1.1 only — {profs[0].backends if profs else '?'}; every proxy turns each stream "
      "into an HTTP/1.1 request on its pooled keep-alive connections")
    w(f"- Placement: {env('BR_PLACEMENT', '?')}")
    w(f"- Load: {env('BR_H2LOAD', 'h2load')}: `{env('BR_H2_ARGS', '?')}`; the fields after the pseudo-fields "
      "are the profile's (bench/lib/profiles.py h2-headers: lower-case, no Host or connection-specific "
      "fields), as listed at the top")
    w(f"- Counted runs: {env('BR_H2_COUNT', '?')}")
    for p in profs:
        if p.busy:
            w(f"- `{p.name}`: machine {p.busy[0]} % busy just before the rounds; load average (1/5/15 min) "
              f"before: {p.busy[1]}, after: {p.busy[2]}")
    w("")


def render_caveats(w, env, h2_upstream):
    w("## Caveats")
    w("")
    if h2_upstream:
        w("- HTTP/2 both ways (`H2_UPSTREAM=h2c`): the backends are two nginx 1.22 serving `/` (\"ok\") and "
          "`/16k` from `listen ... http2` (h2c with prior knowledge). bgproxy multiplexes each worker's "
          "streams on shared connections per server; HAProxy (`http-reuse always`) does the same. nginx is "
          "left out: it proxies to HTTP/1.1 only (`grpc_pass` aside). The HTTP/1.1-backend run is "
          "bench/RESULTS-h2.md.")
    else:
        w("- HTTP/1.1 backends: what is measured is HTTP/2 termination plus h2→h1 translation. HTTP/2 toward "
          "the backends (a color with `protocol: h2c`) is `H2_UPSTREAM=h2c bench/run --h2`, written to "
          "bench/RESULTS-h2-upstream.md. nghttpx (the other reference the issue names) is not installed.")
    w("- GET requests without a body, and h2load opens its receive windows wide (`-w 30 -W 30`), so flow "
      "control in either direction is not exercised; 10 connections × 10 streams stay below every proxy's "
      "concurrent-stream limit.")
    w("- bgproxy does more per request than the other two as configured: it adds X-Forwarded-For/-Proto/-Host "
      "and Via toward the backend and sets its sticky cookie (`set-cookie: bg_id=…`, a new value per "
      "response since h2load never returns it, so HPACK cannot index it: see HEADERS bytes per response).")
    w("- DATA framing of a 16 KiB body differs (seen with `nghttp -v` on this setup): bgproxy one 16,384-byte "
      "frame; HAProxy 2.6 two (15,164 + 1,220 bytes: its 16 KiB buffer less the response head); nginx 1.22 "
      "two 8,192-byte frames (`http2_chunk_size 8k`) and an empty one carrying END_STREAM.")
    if not h2_upstream:
        w("- The backend-direct row is HTTP/1.1 with h2load's pipelining (`--h1 -m 10`): a reference for what "
          "the client and the backends can do, not a like-for-like figure.")
    w("- CPU per request counts user + system time of the proxy process at 100 Hz ticks (over a 5 s run at "
      "full load about ±0.2 %), including the kernel's TCP and loopback work; it barely moves with outside "
      "load, unlike req/s.")
    w("- Instructions per request: user space only, under callgrind (~50× slower, so each wake-up finds more "
      "frames and the per-request count is lower than at full speed, for every proxy alike). Each counted "
      "h2load run opens fresh connections; their cost (accept, TLS handshake with a P-256 signature, "
      "HTTP/2 session setup, one request, close) is counted separately with one request per connection, "
      "shown as 'instr per new connection', and subtracted from the per-request figure.")
    w("- 'of which memcpy': the instructions in glibc's memcpy/memmove. glibc copies more than a few KiB with "
      "`rep movsb`, which callgrind counts as one instruction per byte (16,383 for one 16 KiB memcpy), so "
      "in `16k` this column is about the bytes each proxy copies per response (≈ 16,400 per copy of the "
      "body), and it weighs far more in instr/req than in CPU time: judge `16k` by CPU µs per request.")
    w("- Page faults per request: the proxy's minor faults (/proc/PID/stat) over the measured runs; a "
      "steady state allocates no new pages, so a figure near 1 means memory mapped and unmapped per "
      "request (for bgproxy these are its 32 KiB read blocks — `mmap`/`munmap` of 32,768 bytes under "
      "strace — when the number in use swings by more than the 64 its worker keeps for reuse, as at "
      "100 streams in flight: each stream's HTTP/1.1 upstream connection holds one while it reads).")
    w("- h2load's 'mean stream time' is per stream with 100 in flight (≈ 100 / req/s); h2load gives no "
      "percentiles.")
    w("- On this shared 2-core machine req/s moves by ±5–10 % with other work; the run's priority is raised "
      "(see bench/README.md, *Noise*), and rounds are interleaved.")
    w("")


if __name__ == "__main__":
    main()
