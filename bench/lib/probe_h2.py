#!/usr/bin/env python3
"""probe_h2: what a proxy does to one HTTP/2 request of a profile, for bench/run --h2's report.

    probe_h2.py URL [--echo ECHO_URL] [-H 'name: value' ...]

One request with nghttp (h2c with prior knowledge for http://, ALPN h2 for https://), the given
fields after the pseudo-fields (nghttp adds accept and accept-encoding unless given). Prints,
tab-separated: the response's field names as the client receives them (pseudo-fields included),
and — with --echo, the same request for the demo backend's echo at / — the field names the
HTTP/1.1 backend received.
"""
import json
import re
import subprocess
import sys

RECV = re.compile(r"^\[\s*[0-9.]+\] recv \(stream_id=\d+\) ([^:\s][^:]*|:[a-z]+): ")


def nghttp(url, hdrs, verbose):
    cmd = ["nghttp"] + (["-nv"] if verbose else []) + [a for h in hdrs for a in ("-H", h)] + [url]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=15).stdout


def main(argv):
    url, echo, hdrs = None, None, []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--echo":
            echo = argv[i + 1]; i += 2
        elif a == "-H":
            hdrs.append(argv[i + 1]); i += 2
        else:
            url = a; i += 1
    names = [m.group(1) for m in map(RECV.match, nghttp(url, hdrs, True).splitlines()) if m]
    seen = ""
    if echo:
        try:
            body = nghttp(echo, hdrs, False)
            seen = " ".join(k for k, _ in json.loads(body)["headers"])
        except (ValueError, KeyError, OSError, subprocess.SubprocessError):
            seen = ""
    print(f"{' '.join(names)}\t{seen}")


if __name__ == "__main__":
    main(sys.argv[1:])
