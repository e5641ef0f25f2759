#!/usr/bin/env python3
"""httpd.py: an HTTP/1.1 file server for the tests, with fault injection (stdlib only).

Serves files from --root with Range support (206, 416). Faults are asked for in the query
string of each request, so one server serves every case of a test:

  fail=N          the first N requests for this exact path+query get an error status
  status=CODE     that status (default 500); retry_after=S adds a Retry-After header
  truncate=K      announce the full Content-Length but send only K bytes, then close
  stall=S         send the headers, then sleep S seconds (at most 60) and close
  times=N         truncate/stall only the first N requests for this path+query (default all)
  wrong=1         serve the file with its bytes changed (same length)
  norange=1       ignore Range headers (always 200 with the whole file)
  redirect=HOST   answer 302 to http://HOST<same path, query without redirect=>
  delay_ms=MS     wait before answering (a little latency per request)
  rate=BPS        send the body at about BPS bytes per second (a slow download to kill)

Every request is logged as one line to --log:
  GET <path?query> range=<Range or -> auth=<Authorization or -> host=<Host> status=<code>
Listens on 127.0.0.1:--port (0: any; the port is then written to --port-file). Exits on
SIGTERM, when its parent process dies, and after --max-seconds in any case.
"""

import argparse
import http.server
import os
import signal
import socketserver
import sys
import threading
import time
import urllib.parse

counts = {}
counts_lock = threading.Lock()
log_lock = threading.Lock()
args = None


def bump(key):
    with counts_lock:
        counts[key] = counts.get(key, 0) + 1
        return counts[key]


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 30  # a client that goes quiet does not hold a thread for ever
    server_version = "imgbuild-test-httpd"

    def log_message(self, fmt, *a):
        pass

    def log_request_line(self, status):
        if not args.log:
            return
        line = "%s %s range=%s auth=%s host=%s status=%d\n" % (
            self.command, self.path, self.headers.get("Range", "-"),
            (self.headers.get("Authorization") or "-").replace(" ", "_"),
            self.headers.get("Host", "-"), status)
        with log_lock:
            with open(args.log, "a") as f:
                f.write(line)

    def simple(self, status, body=b"", extra=()):
        self.log_request_line(status)
        self.send_response(status)
        for k, v in extra:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        u = urllib.parse.urlsplit(self.path)
        q = dict(urllib.parse.parse_qsl(u.query))
        n = bump(self.path)
        if "delay_ms" in q:
            time.sleep(min(int(q["delay_ms"]), 5000) / 1000.0)

        if "redirect" in q:
            rest = urllib.parse.urlencode([(k, v) for k, v in q.items() if k != "redirect"])
            loc = "http://%s%s%s" % (q["redirect"], u.path, "?" + rest if rest else "")
            return self.simple(302, b"moved\n", [("Location", loc)])
        if n <= int(q.get("fail", 0)):
            extra = [("Retry-After", q["retry_after"])] if "retry_after" in q else []
            return self.simple(int(q.get("status", 500)), b"injected failure\n", extra)

        rel = urllib.parse.unquote(u.path).lstrip("/")
        full = os.path.realpath(os.path.join(args.root, rel))
        if not full.startswith(os.path.realpath(args.root) + os.sep) or not os.path.isfile(full):
            return self.simple(404, b"not found\n")
        size = os.path.getsize(full)

        start, end, status = 0, size - 1, 200
        rng = self.headers.get("Range")
        if rng and "norange" not in q and rng.startswith("bytes="):
            a, _, b = rng[6:].partition("-")
            try:
                start = int(a)
                end = min(int(b), size - 1) if b else size - 1
            except ValueError:
                return self.simple(400, b"bad range\n")
            if start >= size or start > end:
                return self.simple(416, b"", [("Content-Range", "bytes */%d" % size)])
            status = 206
        length = end - start + 1

        times = int(q.get("times", 1 << 30))
        truncate = int(q["truncate"]) if "truncate" in q and n <= times else None
        stall = min(float(q["stall"]), 60.0) if "stall" in q and n <= times else None

        self.log_request_line(status)
        self.send_response(status)
        self.send_header("Content-Length", str(length))
        self.send_header("Accept-Ranges", "bytes")
        if status == 206:
            self.send_header("Content-Range", "bytes %d-%d/%d" % (start, end, size))
        if truncate is not None or stall is not None:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command == "HEAD":
            return
        self.wfile.flush()

        if stall is not None:
            time.sleep(stall)
            return
        with open(full, "rb") as f:
            if truncate is not None or "wrong" in q:
                f.seek(start)
                data = f.read(length if truncate is None else min(truncate, length))
                if "wrong" in q:
                    data = bytes(b ^ 0x5A for b in data)
                self.wfile.write(data)
                self.wfile.flush()
                return
            if "rate" in q:
                rate = max(int(q["rate"]), 1024)
                f.seek(start)
                left = length
                while left > 0:
                    data = f.read(min(left, rate // 10))
                    self.wfile.write(data)
                    self.wfile.flush()
                    left -= len(data)
                    time.sleep(0.1)
                return
            # The fast path (the benchmark): the kernel copies the file to the socket.
            self.connection.sendfile(f, start, length)


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def handle_error(self, request, client_address):
        # Clients hanging up mid-body (timeouts, aborted transfers) are part of the tests.
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


def watch_parent(ppid):
    while True:
        if os.getppid() != ppid:
            os._exit(0)
        time.sleep(0.2)


def main():
    global args
    p = argparse.ArgumentParser()
    p.add_argument("--root", required=True)
    p.add_argument("--port", type=int, default=0)
    p.add_argument("--port-file")
    p.add_argument("--log")
    p.add_argument("--max-seconds", type=float, default=600)
    args = p.parse_args()
    args.root = os.path.abspath(args.root)

    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    signal.signal(signal.SIGINT, lambda *_: os._exit(0))
    threading.Thread(target=watch_parent, args=(os.getppid(),), daemon=True).start()
    threading.Timer(args.max_seconds, lambda: os._exit(0)).start()

    srv = Server(("127.0.0.1", args.port), Handler)
    port = srv.server_address[1]
    if args.port_file:
        tmp = args.port_file + ".tmp"
        with open(tmp, "w") as f:
            f.write("%d\n" % port)
        os.rename(tmp, args.port_file)
    else:
        print(port, flush=True)
    srv.serve_forever(poll_interval=0.2)


if __name__ == "__main__":
    sys.exit(main())
