#!/usr/bin/env python3
"""Turn bench/run's raw results into the markdown report (stdout).

    report.py RESULTS.tsv TMPDIR "bgproxy haproxy nginx"

Inputs: TMPDIR/wrk.<profile>.<label>.<round>.txt (wrk --latency output, label = backend or a
proxy) and rows of RESULTS.tsv, the second field being the profile:
  profile P DESCRIPTION BACKENDS TARGET RESPONSE_BYTES REQUEST_HEAD_BYTES
  instr|sys|sysempty P NAME TOTAL N  sysdetail P NAME SYSCALL PER_REQ     fail P NAME REASON
  (sysempty: calls that returned EAGAIN, perf only)
  cpu P NAME ROUND TICKS HZ         head P LABEL RESP_HEAD_BYTES RESP_FIELDS BACKEND_FIELDS
  busy P PCT LOAD_BEFORE LOAD_AFTER
  idlebase NAME KIB FDS   idlestage NAME N KIB FDS SECONDS   idleafter NAME KIB FDS   idlelost NAME N
  idleconf PROFILE STAGES REQUESTED FD_LIMIT BATCH WARMUP
and the BR_* environment variables bench/run exports.
TLS mode (BR_TLS=1, profile small only) also reads TMPDIR/hs.<profile>.<proxy>.<round>.txt (wrk with
`Connection: close`: requests/s = new handshakes/s) and rows `hscpu P NAME ROUND TICKS HZ`,
`hscount P NAME ROUND N`, `tlsneg P NAME TEXT`.
"""
import glob
import os
import re
import statistics
import sys

UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}


def to_ms(v):
    m = re.fullmatch(r"([0-9.]+)(us|ms|s|m)", v)
    return float(m.group(1)) * UNIT_MS[m.group(2)] if m else None


def parse_wrk(path):
    txt = open(path, errors="replace").read()
    r = {}
    m = re.search(r"^Requests/sec:\s+([0-9.]+)", txt, re.M)
    if not m:
        return None
    r["rps"] = float(m.group(1))
    for pct in ("50", "99"):
        m = re.search(rf"^\s+{pct}%\s+(\S+)", txt, re.M)
        r["p" + pct] = to_ms(m.group(1)) if m else None
    m = re.search(r"(\d+) requests in", txt)
    r["requests"] = int(m.group(1)) if m else 0
    err = 0
    m = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", txt)
    if m:
        err += int(m.group(1))
    m = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", txt)
    if m:
        err += sum(int(x) for x in m.groups())
    r["errors"] = err
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


def fmt_kib(kib):
    return "—" if kib is None else f"{kib / 1024:,.1f} MiB"


class Profile:
    def __init__(self, name):
        self.name = name
        self.desc = self.backends = self.target = ""
        self.resp_bytes = self.req_bytes = "?"
        self.wrk = {}       # label -> round -> parsed
        self.hs = {}
        self.instr, self.sysc, self.fail, self.detail, self.heads = {}, {}, {}, {}, {}
        self.empty = {}     # EAGAIN results per request (perf only)
        self.cpu, self.hscpu, self.hscount, self.tlsneg = {}, {}, {}, {}
        self.busy = None

    def med(self, label, key):
        vals = [r[key] for r in self.wrk.get(label, {}).values() if r.get(key) is not None]
        return statistics.median(vals) if vals else None


def load(res_path, tmp, proxies):
    profs = {}
    order = []
    idle = {"base": {}, "stage": {}, "after": {}, "lost": {}, "conf": None, "fail": {}}

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
            p.desc, p.backends, p.target, p.resp_bytes, p.req_bytes = f[2], f[3], f[4], f[5], f[6]
        elif k == "instr":
            P(f[1]).instr[f[2]] = int(f[3]) / int(f[4])
        elif k == "sys":
            P(f[1]).sysc[f[2]] = int(f[3]) / int(f[4])
        elif k == "sysempty":
            P(f[1]).empty[f[2]] = int(f[3]) / int(f[4])
        elif k == "fail":
            if f[1] == "idle":
                idle["fail"][f[2]] = f[3]
            else:
                P(f[1]).fail[f[2]] = f[3]
        elif k == "head":
            P(f[1]).heads[f[2]] = (f[3], f[4] if len(f) > 4 else "", f[5] if len(f) > 5 else "")
        elif k == "cpu":
            P(f[1]).cpu[(f[2], int(f[3]))] = int(f[4]) / int(f[5])   # CPU seconds in the round
        elif k == "hscpu":
            P(f[1]).hscpu[(f[2], int(f[3]))] = int(f[4]) / int(f[5])
        elif k == "hscount":
            P(f[1]).hscount[(f[2], int(f[3]))] = int(f[4])
        elif k == "tlsneg":
            P(f[1]).tlsneg[f[2]] = f[3]
        elif k == "sysdetail":
            P(f[1]).detail.setdefault(f[2], {})[f[3]] = float(f[4])
        elif k == "busy":
            P(f[1]).busy = (f[2], f[3], f[4])
        elif k == "idlebase":
            idle["base"][f[1]] = int(f[2])
        elif k == "idlestage":
            idle["stage"].setdefault(f[1], {})[int(f[2])] = int(f[3])
        elif k == "idleafter":
            idle["after"][f[1]] = int(f[2])
        elif k == "idlelost":
            idle["lost"][f[1]] = int(f[2])
        elif k == "idleconf":
            idle["conf"] = f[1:]
    for kind, attr in (("wrk", "wrk"), ("hs", "hs")):
        for path in glob.glob(os.path.join(tmp, kind + ".*.*.*.txt")):
            _, prof, label, rnd, _ = os.path.basename(path).split(".")
            p = parse_wrk(path)
            if p:
                getattr(P(prof), attr).setdefault(label, {})[int(rnd)] = p
    return [profs[n] for n in order], idle


def cpu_per_req(p, proxies):
    out = {}
    for l in proxies:
        v = [p.cpu[(l, r)] / w["requests"] * 1e6 for r, w in p.wrk.get(l, {}).items()
             if (l, r) in p.cpu and w["requests"]]
        if v:
            out[l] = statistics.median(v)
    return out


def noise_notes(p, labels):
    noise = []
    for l in labels:
        vals = [w["rps"] for w in p.wrk.get(l, {}).values()]
        errs = sum(w["errors"] for w in p.wrk.get(l, {}).values())
        if errs:
            noise.append(f"{l}: {errs} wrk errors")
        if len(vals) > 1 and min(vals) > 0 and max(vals) / min(vals) > (1.10 if l == "backend" else 1.25):
            noise.append(f"{l}: req/s ranged {min(vals):,.0f}–{max(vals):,.0f} over the rounds")
        vals = [w["rps"] for w in p.hs.get(l, {}).values()]
        if len(vals) > 1 and min(vals) > 0 and max(vals) / min(vals) > 1.25:
            noise.append(f"{l}: handshakes/s ranged {min(vals):,.0f}–{max(vals):,.0f} over the rounds")
    return noise


def per_round(w, p, labels):
    rounds = sorted({r for l in labels for r in p.wrk.get(l, {})})
    if not rounds:
        return
    w("Per round (req/s · p99 · proxy CPU time per request from /proc/PID/stat, user+system; "
      "rounds interleaved in this order):")
    w("")
    w("| round | " + " | ".join(labels) + " |")
    w("|---|" + "---:|" * len(labels))
    for r in rounds:
        cells = []
        for l in labels:
            x = p.wrk.get(l, {}).get(r)
            if x:
                e = f" ⚠ {x['errors']} errors" if x["errors"] else ""
                c = ""
                if (l, r) in p.cpu and x["requests"]:
                    c = f" · {p.cpu[(l, r)] / x['requests'] * 1e6:.1f} µs CPU"
                cells.append(f"{x['rps']:,.0f} · {fmt_ms(x['p99'])}{c}{e}")
            else:
                cells.append("—")
        w(f"| {r} | " + " | ".join(cells) + " |")
    w("")


def syscall_table(w, p, proxies):
    names = [x for x in proxies if x in p.detail]
    if not names:
        return
    allsc = {}
    for x in names:
        for sc, v in p.detail[x].items():
            allsc[sc] = max(allsc.get(sc, 0), v)
    top = [sc for sc, v in sorted(allsc.items(), key=lambda kv: (("EAGAIN" in kv[0]), -kv[1])) if v >= 0.01]
    if os.environ.get("BR_SYSTOOL", "strace") == "perf":
        w("System calls per request by call (perf stat on the syscall tracepoints, the proxy at full speed; "
          "`→ EAGAIN`: calls that returned EAGAIN, i.e. a read that found nothing; ≥ 0.01/req in any proxy):")
    else:
        w("System calls per request by call (strace -c -f; ≥ 0.01/req in any proxy):")
    w("")
    w("| syscall | " + " | ".join(names) + " |")
    w("|---|" + "---:|" * len(names))
    for sc in top:
        w(f"| {sc} | " + " | ".join(
            f"{p.detail[x][sc]:.2f}" if sc in p.detail[x] else "—" for x in names) + " |")
    w("")


def heads_table(w, p, labels):
    if not p.heads:
        return
    w(f"What each does to this profile's request ({p.req_bytes}-byte head): the response head the client "
      "receives (bytes, fields) and the request fields the backend receives (the demo backend's echo "
      "of the same head; — where the backend is nginx):")
    w("")
    w("| path | response head bytes | response fields | request fields at the backend |")
    w("|---|---:|---|---|")
    for l in labels:
        if l in p.heads:
            rb, rf, bf = p.heads[l]
            n_r = len(rf.split()) if rf else 0
            n_b = len(bf.split()) if bf else 0
            name = "backend direct" if l == "backend" else l
            w(f"| {name} | {rb} | {n_r}: {rf or '?'} | " + (f"{n_b}: {bf}" if bf else "—") + " |")
    w("")


def main():
    res_path, tmp, proxies = sys.argv[1], sys.argv[2], sys.argv[3].split()
    labels = ["backend"] + proxies
    tls = os.environ.get("BR_TLS", "0") == "1"
    profs, idle = load(res_path, tmp, proxies)
    env = os.environ.get
    out = []
    w = out.append
    if tls:
        render_tls(w, profs[0] if profs else Profile("small"), proxies, labels, env)
        print("\n".join(out))
        return

    w("# bgproxy benchmark results")
    w("")
    w(f"Generated by `bench/run` on {env('BR_DATE', '?')} — {env('BR_MODE', '?')}. "
      f"Profiles: {', '.join('`' + p.name + '`' for p in profs)}"
      + (", `idle`" if idle["conf"] else "") + ". All three proxies in one run, each profile with the "
      "same backends and the same client bytes for every proxy (bench/lib/profiles.py).")
    w("")
    for p in profs:
        w(f"- `{p.name}`: {p.desc} — `GET {p.target}`, {p.req_bytes}-byte request head, "
          f"{p.resp_bytes}-byte body; backends: {p.backends}")
    if idle["conf"]:
        prof, stages = idle["conf"][0], idle["conf"][1]
        w(f"- `idle`: {stages.replace(',', ' and ')} idle keep-alive client connections, each after one "
          f"`{prof}` request; RSS growth per connection and RSS once they have closed")
    w("")

    # ---- overview: bgproxy's ratios per profile
    if any(p.instr or p.sysc or p.wrk for p in profs):
        w("## Overview: bgproxy against HAProxy and nginx, per profile")
        w("")
        w("| profile | req/s vs HAProxy | vs nginx | p99 vs HAProxy | vs nginx | instr/req | vs HAProxy | vs nginx "
          "| syscalls/req | vs HAProxy | vs nginx |")
        w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        for p in profs:
            b = "bgproxy"
            rps = {l: p.med(l, "rps") for l in proxies}
            p99 = {l: p.med(l, "p99") for l in proxies}
            ins = f"{p.instr[b]:,.0f}" if b in p.instr else "—"
            sy = f"{p.sysc[b]:.2f}" if b in p.sysc else "—"
            if b in p.sysc and p.empty.get(b, 0) >= 0.005:
                sy += f" ({p.empty[b]:.2f} EAGAIN)"
            w(f"| `{p.name}` | {fmt_ratio(rps.get(b), rps.get('haproxy'))} | {fmt_ratio(rps.get(b), rps.get('nginx'))} "
              f"| {fmt_ratio(p99.get(b), p99.get('haproxy'))} | {fmt_ratio(p99.get(b), p99.get('nginx'))} "
              f"| {ins} | {fmt_ratio(p.instr.get(b), p.instr.get('haproxy'))} | {fmt_ratio(p.instr.get(b), p.instr.get('nginx'))} "
              f"| {sy} | {fmt_ratio(p.sysc.get(b), p.sysc.get('haproxy'))} | {fmt_ratio(p.sysc.get(b), p.sysc.get('nginx'))} |")
        w("")
        w("Instructions per request of every proxy: " + "; ".join(
            f"`{p.name}` " + ", ".join(f"{l} {p.instr[l]:,.0f}" for l in proxies if l in p.instr)
            for p in profs if p.instr) + ".")
        w("")

    render_idle(w, idle, proxies)
    render_goals(w, profs, idle)

    for p in profs:
        render_profile(w, p, proxies, labels)

    w("## Setup")
    w("")
    w(f"- Machine: {env('BR_NPROC', '?')} CPUs, {env('BR_CPU', '?')}, {env('BR_KERNEL', '?')}")
    w(f"- bgproxy: {env('BR_BGPROXY', '?')}, `threads: 1`, `access_log: off`, health checks and watchdog off")
    w(f"- HAProxy: {env('BR_HAPROXY', '?')}; `nbthread 1`, `mode http`, `option http-keep-alive`, "
      "`http-reuse always`, `balance leastconn`, no logging, `-db` (foreground, no master)")
    w(f"- nginx: {env('BR_NGINX', '?')}; `worker_processes 1`, `master_process off`, upstream `least_conn` + "
      "`keepalive 64`, `proxy_http_version 1.1`, `proxy_set_header Connection \"\"`, "
      "`keepalive_requests 1000000` (client and upstream side), access_log off, default header buffers "
      "(`client_header_buffer_size 1k`: the `browser` head takes one of the 8k `large_client_header_buffers`)")
    w(f"- Connection limits: {env('BR_LIMITS', '?')}")
    if env("BR_FWD", "0") == "1":
        w("- FORWARD_HEADERS=1: HAProxy and nginx also add X-Forwarded-For and X-Forwarded-Proto")
    else:
        w("- HAProxy and nginx are configured to add no X-Forwarded-* headers (the tables per profile show what each adds)")
    w("- Backends: 2 × bgproxy-demo-backend (`small`, `headers`, `16k`: `/?body_bytes=N`) and 2 × nginx 1.22 "
      "(`browser`: location /app/ adds Cache-Control, Vary, X-Content-Type-Options, X-Frame-Options, "
      "Referrer-Policy, X-Request-Id to nginx's Server, Date, Content-Type, Content-Length, Connection)")
    w(f"- Placement: {env('BR_PLACEMENT', '?')}")
    w(f"- Load: {env('BR_WRK', 'wrk')}: `{env('BR_WRK_ARGS', '?')}`; the Lua script (bench/lib/profiles.py "
      "wrk-lua) only replaces wrk.format, so wrk still builds the request once and sends it as is")
    w(f"- Counted runs: {env('BR_COUNT', '?')}")
    for p in profs:
        if p.busy:
            w(f"- `{p.name}`: machine {p.busy[0]} % busy just before the wrk rounds; load average "
              f"(1/5/15 min) before: {p.busy[1]}, after: {p.busy[2]}")
    w("- Other work on the machine moves req/s and latency, not instr/req. req/s, p50, p99: median over the "
      "rounds; ratios are of those medians. instr/req: user-space instructions of the whole proxy process "
      "(all threads) per request; syscalls/req: all threads.")
    print("\n".join(out))


def render_profile(w, p, proxies, labels):
    ref, ngx = p.med("haproxy", "rps"), p.med("nginx", "rps")
    w(f"## Profile `{p.name}` — {p.desc}")
    w("")
    w(f"`GET {p.target}`, {p.req_bytes}-byte request head, {p.resp_bytes}-byte response body; backends: {p.backends}.")
    w("")
    w("| proxy | req/s (median) | p50 | p99 | req/s vs HAProxy | p99 vs HAProxy | instr/req | instr vs HAProxy "
      "| instr vs nginx | syscalls/req | syscalls vs HAProxy | syscalls vs nginx |")
    w("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for l in labels:
        rps, p50, p99 = p.med(l, "rps"), p.med(l, "p50"), p.med(l, "p99")
        name = "backend direct (reference)" if l == "backend" else l
        if l in p.fail and rps is None and l not in p.instr:
            w(f"| {name} | failed ({p.fail[l].split(':')[0]}) |" + " — |" * 10)
            continue
        if l == "backend":
            rr = pr = "—"
        else:
            rr = fmt_ratio(rps, ref)
            pr = fmt_ratio(p99, p.med("haproxy", "p99"))
        ins = f"{p.instr[l]:,.0f}" if l in p.instr else "—"
        sy = f"{p.sysc[l]:.2f}" if l in p.sysc else "—"
        if l in p.sysc and p.empty.get(l, 0) >= 0.005:
            sy += f" ({p.empty[l]:.2f} EAGAIN)"
        ih = fmt_ratio(p.instr.get(l), p.instr.get("haproxy")) if l != "backend" else "—"
        inn = fmt_ratio(p.instr.get(l), p.instr.get("nginx")) if l != "backend" else "—"
        sh = fmt_ratio(p.sysc.get(l), p.sysc.get("haproxy")) if l != "backend" else "—"
        sn = fmt_ratio(p.sysc.get(l), p.sysc.get("nginx")) if l != "backend" else "—"
        rs = f"{rps:,.0f}" if rps is not None else "—"
        w(f"| {name} | {rs} | {fmt_ms(p50)} | {fmt_ms(p99)} | {rr} | {pr} | {ins} | {ih} | {inn} | {sy} | {sh} | {sn} |")
    w("")
    _ = ngx
    cm = cpu_per_req(p, proxies)
    if cm:
        rc = cm.get("haproxy")
        w("Proxy CPU time per request (user + system, median over the rounds): " + ", ".join(
            f"{l} {v:.1f} µs" + (f" ({v / rc:.2f}× HAProxy)" if rc and l != "haproxy" else "")
            for l, v in cm.items()) + ".")
        w("")
    noise = noise_notes(p, labels)
    if noise:
        w("**⚠ Noisy run** — the wall-clock figures above are unreliable (outside load?); instr/req, "
          "syscalls/req and CPU/req are not affected: " + "; ".join(noise) + ".")
        w("")
    if p.fail:
        w("**Failures:** " + "; ".join(f"{l}: {why}" for l, why in p.fail.items()))
        w("")
    per_round(w, p, labels)
    syscall_table(w, p, proxies)
    heads_table(w, p, labels)


def render_idle(w, idle, proxies):
    if not idle["conf"]:
        return
    prof, stages, requested, fdlim, batch, warm = (idle["conf"] + [""] * 6)[:6]
    ns = [int(x) for x in stages.split(",") if x]
    w("## Idle keep-alive client connections")
    w("")
    w(f"Each proxy fresh, {warm} warm-up requests over {batch} connections (then closed), baseline RSS; "
      f"then connections opened {batch} at a time, each sending one `{prof}` request and staying open "
      "and idle; RSS (VmRSS) one second after each stage; then all closed, RSS once the proxy's "
      "descriptors are back to the baseline (+1 s). Per connection = (RSS − baseline) / connections.")
    w("")
    if [int(x) for x in requested.split()] != ns:
        w(f"⚠ Stages requested: {requested}; measured: {', '.join(f'{n:,}' for n in ns)} — the open-file "
          f"limit here is {fdlim} (hard; raising it needs CAP_SYS_RESOURCE), and the client and the proxy "
          "each need one descriptor per connection plus their own.")
        w("")
    head = "| proxy | RSS baseline |"
    sep = "|---|---:|"
    for n in ns:
        head += f" RSS, {n:,} idle | per connection ({n:,}) |"
        sep += "---:|---:|"
    head += " RSS after all closed | after − baseline |"
    sep += "---:|---:|"
    w(head)
    w(sep)
    for l in proxies:
        if l in idle["fail"] and l not in idle["base"]:
            w(f"| {l} | failed: {idle['fail'][l][:120]} |" + " — |" * (2 * len(ns) + 2))
            continue
        b = idle["base"].get(l)
        row = f"| {l} | {fmt_kib(b)} |"
        for n in ns:
            r = idle["stage"].get(l, {}).get(n)
            per = (r - b) * 1024 / n if r is not None and b is not None else None
            row += f" {fmt_kib(r)} | " + (f"{per / 1024:.2f} KiB ({per:,.0f} B)" if per is not None else "—") + " |"
        a = idle["after"].get(l)
        row += f" {fmt_kib(a)} | " + (f"{(a - b) / 1024:+,.1f} MiB" if a is not None and b is not None else "—") + " |"
        w(row)
    w("")
    lost = {l: n for l, n in idle["lost"].items() if n}
    if lost:
        w("⚠ Idle connections the proxy closed (or wrote to) during the stages: " + ", ".join(
            f"{l} {n}" for l, n in lost.items()) + " — the figures above are then too low.")
        w("")
    fails = {l: why for l, why in idle["fail"].items()}
    if fails:
        w("**Failures:** " + "; ".join(f"{l}: {why}" for l, why in fails.items()))
        w("")
    w("Baselines differ by what each allocates at start: nginx its `worker_connections` array "
      "(connection + two events per slot), HAProxy its descriptor table for `maxconn`; that memory is "
      "not part of the per-connection growth.")
    w("")


def render_goals(w, profs, idle):
    """Issue 14's goals, checked against this run."""
    by = {p.name: p for p in profs}
    rows = []

    def add(goal, val, ok):
        rows.append((goal, val, "—" if ok is None else ("✓" if ok else "✗")))

    def ins(pn, other):
        p = by.get(pn)
        return ratio(p.instr.get("bgproxy"), p.instr.get(other)) if p else None

    for pn, other, lim in (("browser", "nginx", 0.80), ("browser", "haproxy", 0.65),
                           ("headers", "nginx", 0.75), ("16k", "nginx", 1.00)):
        r = ins(pn, other)
        if pn in by:
            add(f"`{pn}` instructions ≤ {lim:.2f}× {other}'s", f"{r:.2f}×" if r else "—",
                None if r is None else r <= lim)
    for p in profs:
        r = ratio(p.sysc.get("bgproxy"), p.sysc.get("haproxy"))
        if r is not None:
            add(f"`{p.name}` syscalls/request ≤ HAProxy's",
                f"{p.sysc['bgproxy']:.2f} vs {p.sysc['haproxy']:.2f}", r <= 1.0 + 1e-9)
    for p in profs:
        rr = ratio(p.med("bgproxy", "rps"), p.med("haproxy", "rps"))
        pr = ratio(p.med("bgproxy", "p99"), p.med("haproxy", "p99"))
        if rr is not None and pr is not None:
            add(f"`{p.name}` req/s ≥ HAProxy's and p99 ≤ HAProxy's", f"req/s {rr:.2f}×, p99 {pr:.2f}×",
                rr >= 1.0 and pr <= 1.0)
    if idle["conf"]:
        b = idle["base"].get("bgproxy")
        for n, r in sorted(idle["stage"].get("bgproxy", {}).items()):
            per = (r - b) * 1024 / n if b is not None else None
            if per is not None:
                add(f"≤ 1 KiB per idle keep-alive connection ({n:,})", f"{per / 1024:.2f} KiB", per <= 1024)
        a = idle["after"].get("bgproxy")
        if a is not None and b is not None:
            add("RSS back near its baseline after the idle connections close (≤ +10 %)",
                f"{(a - b) / 1024:+,.1f} MiB on {b / 1024:,.1f} MiB", a <= b * 1.10)
    if not rows:
        return
    w("## Issue 14 goals, as measured by this run")
    w("")
    w("| goal | bgproxy | met |")
    w("|---|---:|:---:|")
    for g, v, ok in rows:
        w(f"| {g} | {v} | {ok} |")
    w("")
    w("Wall-clock goals (req/s, p99) move by ±10 % between runs on this shared machine; "
      "instructions repeat to well under 1 %.")
    w("")


def render_tls(w, p, proxies, labels, env):
    """The HTTPS report (bench/run --tls): profile `small` only, as before issue 14."""
    stats = {l: {k: p.med(l, k) for k in ("rps", "p50", "p99")} for l in labels}
    ref = stats.get("haproxy", {})
    hs_rps = {}
    for l in proxies:
        v = [x["rps"] for x in p.hs.get(l, {}).values()]
        if v:
            hs_rps[l] = statistics.median(v)
    w("# bgproxy TLS benchmark results (HTTPS, `bench/run --tls`)")
    w("")
    w(f"Generated by `bench/run --tls` on {env('BR_DATE', '?')} — {env('BR_MODE', '?')}.")
    w("")
    w("Keep-alive over HTTPS (wrk, one TLS connection per wrk connection for the whole run) and new "
      "TLS handshakes per second (wrk with `Connection: close`: every request a new TCP connection "
      "and a new handshake, resumed from wrk's last TLS 1.3 ticket when the proxy issued one):")
    w("")
    w("| proxy | req/s keep-alive (median) | p50 | p99 | req/s vs HAProxy | p99 vs HAProxy "
      "| new handshakes/s (median) | handshakes/s vs HAProxy |")
    w("|---|---:|---:|---:|---:|---:|---:|---:|")
    for l in labels:
        s = stats[l]
        name = "backend direct, plain HTTP (reference)" if l == "backend" else l
        if l in p.fail and s["rps"] is None:
            w(f"| {name} | failed ({p.fail[l].split(':')[0]}) | — | — | — | — | — | — |")
            continue
        if l == "backend":
            rr = pr = "—"
        else:
            rr = fmt_ratio(s["rps"], ref.get("rps"))
            pr = fmt_ratio(s["p99"], ref.get("p99"))
        hsv = f"{hs_rps[l]:,.0f}" if l in hs_rps else "—"
        hsr = fmt_ratio(hs_rps.get(l), hs_rps.get("haproxy")) if l in hs_rps else "—"
        rps = f"{s['rps']:,.0f}" if s["rps"] is not None else "—"
        w(f"| {name} | {rps} | {fmt_ms(s['p50'])} | {fmt_ms(s['p99'])} | {rr} | {pr} | {hsv} | {hsr} |")
    w("")
    cm = cpu_per_req(p, proxies)
    if cm:
        rc = cm.get("haproxy")
        w("Proxy CPU time per request (user + system, median over the rounds): " + ", ".join(
            f"{l} {v:.1f} µs" + (f" ({v / rc:.2f}× HAProxy)" if rc and l != "haproxy" else "")
            for l, v in cm.items()) + ".")
        w("")
    if hs_rps:
        hcpu = {}
        for l in proxies:
            v = [p.hscpu[(l, r)] / x["requests"] * 1e6 for r, x in p.hs.get(l, {}).items()
                 if (l, r) in p.hscpu and x["requests"]]
            if v:
                hcpu[l] = statistics.median(v)
        ref_h = hcpu.get("haproxy")
        if hcpu:
            w("Proxy CPU time per new connection (TCP accept + handshake + one proxied request + close; "
              "user + system, median over the rounds): " + ", ".join(
                  f"{l} {v:.0f} µs" + (f" ({v / ref_h:.2f}× HAProxy)" if ref_h and l != "haproxy" else "")
                  for l, v in hcpu.items()) + ".")
            w("")
            # handshakes/s × CPU per connection = how busy the proxy's CPU was: near 100 % means
            # the proxy was the limit; well below means it waited (on wrk, or on its own scheduling)
            w("Proxy CPU busy during the handshake runs (handshakes/s × CPU per connection): " + ", ".join(
                f"{l} {hs_rps[l] * v / 1e4:.0f} %" for l, v in hcpu.items() if l in hs_rps) + ".")
            w("")
        for l in proxies:
            cnts = [(r, p.hscount[(l, r)], p.hs[l][r]["requests"]) for r in sorted(p.hs.get(l, {}))
                    if (l, r) in p.hscount]
            if cnts:
                w(f"Cross-check, {l}'s own `bgproxy_tls_handshakes_total` over the measured runs: " + "; ".join(
                    f"round {r}: {c:,} handshakes for {n:,} wrk requests" for r, c, n in cnts) + ".")
                w("")
        hs_err = {l: sum(x["errors"] for x in p.hs.get(l, {}).values()) for l in proxies}
        if any(hs_err.values()):
            w("wrk errors in the handshake runs (a connection the proxy closes is reopened; read/connect "
              "errors count here): " + ", ".join(f"{l} {n}" for l, n in hs_err.items()) + ".")
            w("")
        hl = [l for l in proxies if p.hs.get(l)]
        w("Per round, new handshakes/s (· proxy CPU per connection):")
        w("")
        w("| round | " + " | ".join(hl) + " |")
        w("|---|" + "---:|" * len(hl))
        for r in sorted({r for l in hl for r in p.hs[l]}):
            cells = []
            for l in hl:
                x = p.hs[l].get(r)
                if x:
                    c = f" · {p.hscpu[(l, r)] / x['requests'] * 1e6:.0f} µs CPU" if (l, r) in p.hscpu and x["requests"] else ""
                    cells.append(f"{x['rps']:,.0f}{c}")
                else:
                    cells.append("—")
            w(f"| {r} | " + " | ".join(cells) + " |")
        w("")
    if p.tlsneg:
        w("Negotiated with a default OpenSSL 3 client (`openssl s_client -alpn http/1.1`): " + "; ".join(
            f"{l}: {v}" for l, v in p.tlsneg.items()) + ".")
        w("")
    noise = noise_notes(p, labels)
    if noise:
        w("**⚠ Noisy run** — the wall-clock figures above are unreliable (outside load?); CPU time per "
          "request or connection is not affected: " + "; ".join(noise) + ".")
        w("")
    if p.fail:
        w("**Failures:**")
        w("")
        for l, why in p.fail.items():
            w(f"- {l}: {why}")
        w("")
    per_round(w, p, labels)
    w("## Setup")
    w("")
    w(f"- Machine: {env('BR_NPROC', '?')} CPUs, {env('BR_CPU', '?')}, {env('BR_KERNEL', '?')}")
    w(f"- bgproxy: {env('BR_BGPROXY', '?')}, `threads: 1`, `access_log: off`, health checks and watchdog off")
    w(f"- HAProxy: {env('BR_HAPROXY', '?')}; `nbthread 1`, `mode http`, `option http-keep-alive`, "
      "`http-reuse always`, `balance leastconn`, no logging, `-db` (foreground, no master)")
    w(f"- nginx: {env('BR_NGINX', '?')}; `worker_processes 1`, `master_process off`, upstream `least_conn` + "
      "`keepalive 64`, `proxy_http_version 1.1`, `proxy_set_header Connection \"\"`, "
      "`keepalive_requests 1000000` (client and upstream side), access_log off")
    if env("BR_FWD", "0") == "1":
        w("- FORWARD_HEADERS=1: HAProxy and nginx also add X-Forwarded-For and X-Forwarded-Proto")
    else:
        w("- HAProxy and nginx are configured to add no X-Forwarded-* headers")
    w(f"- Backends: {p.backends}; GET {p.target}, response body {p.resp_bytes} bytes")
    w(f"- Placement: {env('BR_PLACEMENT', '?')}")
    w(f"- Load: {env('BR_WRK', 'wrk')}: `{env('BR_WRK_ARGS', '?')}`")
    w(f"- TLS: {env('BR_TLS_SETUP', '?')}")
    w(f"- New handshakes: `{env('BR_HS_ARGS', '?')}`")
    if p.busy:
        w(f"- Machine busy just before the wrk rounds: {p.busy[0]} % of all CPUs; load average (1/5/15 min) "
          f"before: {p.busy[1]}, after: {p.busy[2]} — other work on the machine moves req/s and latency, "
          "not CPU time per request")
    w("- req/s, p50, p99, handshakes/s: median over the rounds; ratios are of those medians. wrk's "
      "latency runs from writing the request to the response, so it leaves the handshake out; "
      "the keep-alive rows are what the 0.8× acceptance of issue 6 compares.")


if __name__ == "__main__":
    main()
