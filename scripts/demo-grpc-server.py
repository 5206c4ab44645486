#!/usr/bin/python3
"""A gRPC service for `make demo` (blue or green behind bgproxy): bgproxy.demo.Echo/Say answers
"<color>: <request>" and names its color in the trailing metadata; grpc.health.v1.Health/Check
answers SERVING, for bgproxy's `health_check: { protocol: grpc }`. Raw bytes, no protoc needed.

    demo-grpc-server.py PORT COLOR
"""
import sys
from concurrent import futures

import grpc

port, color = sys.argv[1], sys.argv[2]


def say(request, context):
    context.set_trailing_metadata((("x-color", color),))
    return color.encode() + b": " + request


def check(request, context):
    return b"\x08\x01"  # HealthCheckResponse{status: SERVING}, whatever service was asked about


handler = grpc.method_handlers_generic_handler(
    "bgproxy.demo.Echo", {"Say": grpc.unary_unary_rpc_method_handler(say)})
health = grpc.method_handlers_generic_handler(
    "grpc.health.v1.Health", {"Check": grpc.unary_unary_rpc_method_handler(check)})
server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
server.add_generic_rpc_handlers((handler, health))
server.add_insecure_port("127.0.0.1:" + port)
server.start()
print("listening on", port, flush=True)
server.wait_for_termination()
