#!/usr/bin/env python3
"""A keep-alive HTTP/1.1 backend that closes a connection idle for IDLE seconds without saying
so (no Keep-Alive header), the way gunicorn, Node.js and Apache do. Python's socket timeout
makes the close lag the timer a little, like a busy application server, which widens the window
in which a proxy's reused request meets the close. Prints `listening on PORT`.
Usage: idle_close_backend.py IDLE_SECONDS
"""
import http.server
import sys


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = float(sys.argv[1])

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.answer()

    def do_GET(self):
        self.answer()

    def answer(self):
        body = b'{"ok":true}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
print("listening on", server.server_address[1], flush=True)
server.serve_forever()
