#!/usr/bin/env python3
"""badreg.py: a registry that answers manifests wrongly, for the bad-input tests (stdlib only).

/v2/ answers 200 (no auth). A manifest request's repository name picks the fault:
  e404/...     404 with a registry error body (MANIFEST_UNKNOWN)
  e500/...     500 every time
  garbage/...  200, Content-Type of an OCI manifest, body that is not JSON
  wrongjson/.. 200, valid JSON that is not a manifest ({"schemaVersion": "two"})
Anything else: 404. Every request is logged as "<METHOD> <path> status=<code>" to --log.
Listens on 127.0.0.1 (any port, written to --port-file); exits when its parent dies and
after --max-seconds in any case.
"""

import argparse
import http.server
import os
import socketserver
import threading
import time

MT = "application/vnd.oci.image.manifest.v1+json"
args = None


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 30

    def log_message(self, fmt, *a):
        pass

    def reply(self, status, body, ctype="application/json"):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Docker-Distribution-API-Version", "registry/2.0")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        if args.log:
            with open(args.log, "a") as f:
                f.write("%s %s status=%d\n" % (self.command, self.path, status))

    def do_HEAD(self):
        self.do_GET()

    def do_GET(self):
        p = self.path.split("?")[0]
        if p in ("/v2", "/v2/"):
            return self.reply(200, b"{}")
        repo = p[len("/v2/"):].split("/")[0] if p.startswith("/v2/") else ""
        if "/manifests/" in p:
            if repo == "e500":
                return self.reply(500, b'{"errors":[{"code":"UNKNOWN","message":"boom"}]}')
            if repo == "garbage":
                return self.reply(200, b"<html>this is not json", MT)
            if repo == "wrongjson":
                return self.reply(200, b'{"schemaVersion": "two"}', MT)
        return self.reply(404, b'{"errors":[{"code":"MANIFEST_UNKNOWN","message":"manifest unknown"}]}')


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


def main():
    global args
    p = argparse.ArgumentParser()
    p.add_argument("--port-file", required=True)
    p.add_argument("--log")
    p.add_argument("--max-seconds", type=float, default=600)
    args = p.parse_args()
    ppid = os.getppid()

    def watch():
        while os.getppid() == ppid:
            time.sleep(0.2)
        os._exit(0)

    threading.Thread(target=watch, daemon=True).start()
    threading.Timer(args.max_seconds, lambda: os._exit(0)).start()
    srv = Server(("127.0.0.1", 0), Handler)
    with open(args.port_file + ".tmp", "w") as f:
        f.write("%d\n" % srv.server_address[1])
    os.rename(args.port_file + ".tmp", args.port_file)
    srv.serve_forever(poll_interval=0.2)


if __name__ == "__main__":
    main()
