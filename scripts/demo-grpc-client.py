#!/usr/bin/python3
"""Calls bgproxy.demo.Echo/Say through bgproxy (h2c on the demo's listener) N times and counts
which color answered: `demo-grpc-client.py [PORT] [N]`."""
import collections
import sys

import grpc

port = sys.argv[1] if len(sys.argv) > 1 else "5004"
n = int(sys.argv[2]) if len(sys.argv) > 2 else 10
say = grpc.insecure_channel("127.0.0.1:" + port).unary_unary("/bgproxy.demo.Echo/Say")
seen = collections.Counter()
for i in range(n):
    try:
        reply, call = say.with_call(b"hello %d" % i, timeout=5)
        seen[dict(call.trailing_metadata()).get("x-color", "?")] += 1
    except grpc.RpcError as e:
        seen[str(e.code())] += 1
print(dict(seen))
