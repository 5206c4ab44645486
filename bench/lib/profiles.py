#!/usr/bin/env python3
"""The request profiles of bench/run (issue 14), in one place for every client.

A profile is a request (target + header fields, sent exactly as listed, Host first) and the
backend that answers it. wrk (through the Lua script this module writes), the fixed-count client
bench/lib/hload.py, the idle-connection client bench/lib/idle.py and the probe bench/lib/probe.py
all build the request head here, so every proxy and every measurement sees the same bytes.

    profiles.py names                      request profiles, one per line
    profiles.py path PROFILE demo|nginx    the target for that backend kind
    profiles.py backend PROFILE            demo | app (app: the nginx backend's /app/ location)
    profiles.py head PROFILE HOST:PORT [TARGET]     the request head, as sent
    profiles.py wrk-lua PROFILE HOST:PORT [TARGET]  a wrk script that sends exactly that head
    profiles.py describe PROFILE           one line for the report
    profiles.py h2-headers PROFILE HOST:PORT   the fields after the pseudo-fields for an HTTP/2
                                           client (h2load -H, nghttp -H): lower-case names, no Host
                                           (:authority) and no connection-specific fields

Profiles:
  small    wrk's own request: `GET /?body_bytes=2` with only Host (the table before issue 14)
  headers  `hey`'s default request: Host, User-Agent: hey/0.0.1, Content-Type: text/html,
           Accept-Encoding: gzip (Go's transport), 2-byte body
  browser  a Chrome 124 page load: 16 header fields (Sec-Ch-Ua*, Sec-Fetch-*, Accept*, Referer,
           User-Agent, a ~300-byte Cookie that also carries bgproxy's sticky cookie bg_id, as a
           browser would return it); answered by the nginx backend's /app/ location with 11
           response header fields and a 2-byte body
  16k      the `headers` request for a 16 KiB (16,384-byte) body
"""
import sys

HEY = [
    ("User-Agent", "hey/0.0.1"),
    ("Content-Type", "text/html"),
    ("Accept-Encoding", "gzip"),
]

# a page a logged-in user opens: analytics cookies, a CSRF token, a session id, preferences,
# and bgproxy's own sticky cookie (bg_id) that a browser returns once it has been set
COOKIE = (
    "bg_id=5f3a9c1e7b2d4a60; _ga=GA1.1.1736459023.1764672000; "
    "_ga_7K2M9Q4PLX=GS1.1.1764672000.3.1.1764672912.0.0.0; _gid=GA1.1.402817764.1764672000; "
    "csrftoken=Xy3kD8fLq2ZpW9vB4nRt7uHc1sJm6aEe; sessionid=q8w2e4r6t8y0u1i3o5p7a9s2d4f6g8h0; "
    "theme=dark; lang=en-US; tz=Europe%2FBerlin; consent=analytics%3Dtrue%2Cads%3Dfalse"
)


def browser_headers(hostport):
    return [
        ("Connection", "keep-alive"),
        ("sec-ch-ua", '"Chromium";v="124", "Google Chrome";v="124", "Not-A.Brand";v="99"'),
        ("sec-ch-ua-mobile", "?0"),
        ("sec-ch-ua-platform", '"Linux"'),
        ("Upgrade-Insecure-Requests", "1"),
        ("User-Agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
                       "Chrome/124.0.0.0 Safari/537.36"),
        ("Accept", "text/html,application/xhtml+xml,application/xml;q=0.9,image/avif,image/webp,"
                   "image/apng,*/*;q=0.8,application/signed-exchange;v=b3;q=0.7"),
        ("Sec-Fetch-Site", "same-origin"),
        ("Sec-Fetch-Mode", "navigate"),
        ("Sec-Fetch-User", "?1"),
        ("Sec-Fetch-Dest", "document"),
        ("Referer", f"http://{hostport}/app/home"),
        ("Accept-Encoding", "gzip, deflate, br"),
        ("Accept-Language", "en-US,en;q=0.9,de;q=0.8"),
        ("Cookie", COOKIE),
    ]


# backend: "demo" = the demo backend when it runs (else the static nginx fallback, path "nginx");
# "app" = always the nginx backend's /app/ location (11 response header fields)
PROFILES = {
    "small": {"backend": "demo", "demo": "/?body_bytes=2", "nginx": "/",
              "headers": lambda hp: [],
              "what": "wrk's request: only Host; 2-byte body"},
    "headers": {"backend": "demo", "demo": "/?body_bytes=2", "nginx": "/",
                "headers": lambda hp: list(HEY),
                "what": "hey's defaults: Host, User-Agent, Content-Type, Accept-Encoding; 2-byte body"},
    "browser": {"backend": "app", "demo": "/app/dashboard?tab=overview",
                "nginx": "/app/dashboard?tab=overview",
                "headers": browser_headers,
                "what": "Chrome page load: 16 fields incl. a %d-byte Cookie; backend answers with "
                        "11 fields, 2-byte body" % len(COOKIE)},
    "16k": {"backend": "demo", "demo": "/?body_bytes=16384", "nginx": "/16k",
            "headers": lambda hp: list(HEY),
            "what": "hey's request; 16,384-byte body"},
}


def path(profile, kind):
    p = PROFILES[profile]
    return p["nginx"] if p["backend"] == "app" else p[kind]


def fields(profile, hostport):
    return [("Host", hostport)] + PROFILES[profile]["headers"](hostport)


def head(profile, hostport, target=None, kind="demo"):
    t = target or path(profile, kind)
    lines = [f"GET {t} HTTP/1.1"] + [f"{k}: {v}" for k, v in fields(profile, hostport)]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


# fields an HTTP/2 request must not carry (RFC 9113 §8.2.2); Host becomes :authority
H2_DROP = {"host", "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade"}


def h2_headers(profile, hostport):
    return [(k.lower(), v) for k, v in PROFILES[profile]["headers"](hostport) if k.lower() not in H2_DROP]


def lua_string(b):
    return '"' + "".join(
        c if 32 <= ord(c) < 127 and c not in '"\\' else "\\%03d" % ord(c) for c in b.decode("latin-1")) + '"'


def wrk_lua(profile, hostport, target=None, kind="demo"):
    # wrk.init() builds the request once, with wrk.format(), when the script defines no
    # request() function (so wrk stays in its static, per-connection-buffer mode); replacing
    # wrk.format keeps that mode and sends our bytes in our order (wrk's own format iterates
    # a Lua table, in hash order).
    req = head(profile, hostport, target, kind)
    return ("-- generated by bench/lib/profiles.py: profile %s\n"
            "local req = %s\n"
            "wrk.format = function() return req end\n" % (profile, lua_string(req)))


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    cmd = argv[1]
    if cmd == "names":
        print("\n".join(PROFILES))
        return 0
    prof = argv[2]
    if prof not in PROFILES:
        print(f"profiles.py: unknown profile {prof!r} (known: {' '.join(PROFILES)})", file=sys.stderr)
        return 2
    if cmd == "path":
        print(path(prof, argv[3]))
    elif cmd == "backend":
        print(PROFILES[prof]["backend"])
    elif cmd == "head":
        sys.stdout.write(head(prof, argv[3], argv[4] if len(argv) > 4 else None).decode("latin-1"))
    elif cmd == "wrk-lua":
        sys.stdout.write(wrk_lua(prof, argv[3], argv[4] if len(argv) > 4 else None))
    elif cmd == "h2-headers":
        for k, v in h2_headers(prof, argv[3] if len(argv) > 3 else "127.0.0.1"):
            print(f"{k}: {v}")
    elif cmd == "describe":
        print(PROFILES[prof]["what"])
    else:
        print(f"profiles.py: unknown command {cmd!r}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
