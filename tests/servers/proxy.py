#!/usr/bin/env python3
"""proxy.py: a minimal forward HTTP proxy for the tests (stdlib only).

Answers absolute-URI GET requests ("GET http://host:port/path") by fetching them and
relaying status, headers and body; logs one line per request to --log. Listens on
127.0.0.1 (port written to --port-file); exits on SIGTERM or after --max-seconds.
"""
import argparse
import http.server
import os
import signal
import socketserver
import threading
import urllib.error
import urllib.request

ap = argparse.ArgumentParser()
ap.add_argument("--port-file", required=True)
ap.add_argument("--log", required=True)
ap.add_argument("--max-seconds", type=int, default=300)
args = ap.parse_args()
lock = threading.Lock()
# The proxy itself must not use a proxy from its environment.
opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *a):
        pass

    def do_GET(self):
        with lock, open(args.log, "a") as f:
            f.write(f"GET {self.path} range={self.headers.get('Range', '-')}\n")
        if not self.path.startswith("http://"):
            self.send_error(400, "absolute URI expected")
            return
        req = urllib.request.Request(self.path)
        for h in ("Range", "Authorization", "Accept"):
            if self.headers.get(h):
                req.add_header(h, self.headers[h])
        try:
            resp = opener.open(req, timeout=30)
            status, headers, body = resp.status, resp.headers, resp.read()
        except urllib.error.HTTPError as e:
            status, headers, body = e.code, e.headers, e.read()
        self.send_response(status)
        for k, v in headers.items():
            if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


srv = Server(("127.0.0.1", 0), Handler)
with open(args.port_file + ".tmp", "w") as f:
    f.write(str(srv.server_address[1]))
os.rename(args.port_file + ".tmp", args.port_file)
signal.signal(signal.SIGTERM, lambda *a: os._exit(0))
threading.Timer(args.max_seconds, lambda: os._exit(0)).start()
srv.serve_forever()
