#!/usr/bin/env python3
"""A notification receiver for the integration tests: records every request, answers as told.

    notify-receiver.py --log FILE [--answers 200] [--cert PEM --key PEM]

Prints the port it listens on (127.0.0.1, chosen by the kernel) as its first line of stdout once
it accepts connections. Each request is appended to FILE as one JSON line (method, path,
headers, body) *before* it is answered, so a request the client sent is on record whatever
the client did next. --answers is a comma-separated list per path: the n-th request to a path
gets the n-th answer (the last one repeats); an answer is an HTTP status, 'hang' (never
answer) or 'trickle' (a header line that never ends, one byte every 0.2 s: each read gets
something, so only a deadline on the whole exchange gives up on it). With --cert/--key it speaks HTTPS.
"""
import argparse
import http.server
import json
import ssl
import sys
import threading
import time

parser = argparse.ArgumentParser()
parser.add_argument("--log", required=True)
parser.add_argument("--answers", default="200")
parser.add_argument("--cert")
parser.add_argument("--key")
args = parser.parse_args()
answers = args.answers.split(",")
lock = threading.Lock()
seen = {}


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *a):
        pass

    def handle_any(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        with lock:
            n = seen.get(self.path, 0)
            seen[self.path] = n + 1
            with open(args.log, "a") as f:
                f.write(json.dumps({
                    "method": self.command,
                    "path": self.path,
                    "headers": {k.lower(): v for k, v in self.headers.items()},
                    "body": body.decode("utf-8", "replace"),
                }) + "\n")
        answer = answers[min(n, len(answers) - 1)]
        if answer == "hang":
            time.sleep(3600)
            return
        if answer == "trickle":
            try:
                self.wfile.write(b"HTTP/1.1 200 OK\r\nX-Slow: ")
                self.wfile.flush()
                for _ in range(3600 * 5):
                    time.sleep(0.2)
                    self.wfile.write(b"x")
                    self.wfile.flush()
            except OSError:
                pass
            return
        payload = b"OK"
        self.send_response(int(answer))
        self.send_header("Content-Length", str(len(payload)))
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(payload)
        self.close_connection = True

    do_GET = do_POST = do_PUT = do_HEAD = handle_any


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
server.daemon_threads = True
if args.cert:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
print(server.server_address[1], flush=True)
server.serve_forever()
