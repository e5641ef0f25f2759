#!/usr/bin/env python3
"""fakeimds.py: a fake EC2 instance metadata service (IMDSv2 only) for the tests (stdlib).

PUT /latest/api/token (with X-aws-ec2-metadata-token-ttl-seconds) gives a token; every GET
must carry it (else 401). Serves the role list, the role's credentials and the region.
--stall makes every request hang (a machine where the metadata address answers nothing).
Listens on 127.0.0.1, any port, written to --port-file; exits with its parent, on SIGTERM,
and after --max-seconds.
"""

import argparse
import http.server
import json
import os
import signal
import socketserver
import sys
import threading
import time

TOKEN = "imds-token-123"
ROLE = "imgbuild-role"
CREDS = {
    "Code": "Success",
    "Type": "AWS-HMAC",
    "AccessKeyId": "ASIAIMDSEXAMPLE0001",
    "SecretAccessKey": "imdsSecretKeyExampleDoNotPrint",
    "Token": "imdsSessionTokenExampleDoNotPrint",
    "Expiration": "2030-01-01T00:00:00Z",
}
args = None


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, fmt, *a):
        if args.log:
            with open(args.log, "a") as f:
                f.write("%s %s token=%s\n" % (self.command, self.path,
                        self.headers.get("X-aws-ec2-metadata-token", "-")))

    def reply(self, code, body):
        data = body.encode()
        self.send_response(code)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_PUT(self):
        self.log_message("")
        if args.stall:
            time.sleep(30)
            return
        if self.path != "/latest/api/token" or \
                not self.headers.get("X-aws-ec2-metadata-token-ttl-seconds"):
            return self.reply(400, "bad token request")
        self.reply(200, TOKEN)

    def do_GET(self):
        self.log_message("")
        if args.stall:
            time.sleep(30)
            return
        if self.headers.get("X-aws-ec2-metadata-token") != TOKEN:
            return self.reply(401, "")
        base = "/latest/meta-data/iam/security-credentials/"
        if self.path == base:
            return self.reply(200, ROLE + "\n")
        if self.path == base + ROLE:
            return self.reply(200, json.dumps(CREDS))
        if self.path == "/latest/meta-data/placement/region":
            return self.reply(200, args.region)
        self.reply(404, "")


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True


def main():
    global args
    ap = argparse.ArgumentParser()
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--log")
    ap.add_argument("--region", default="eu-north-1")
    ap.add_argument("--stall", action="store_true")
    ap.add_argument("--max-seconds", type=int, default=120)
    args = ap.parse_args()
    srv = Server(("127.0.0.1", 0), Handler)
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(srv.server_address[1]))
    os.rename(tmp, args.port_file)
    parent = os.getppid()
    signal.signal(signal.SIGTERM, lambda *a: os._exit(0))

    def watchdog():
        start = time.time()
        while time.time() - start < args.max_seconds and os.getppid() == parent:
            time.sleep(0.5)
        os._exit(0)
    threading.Thread(target=watchdog, daemon=True).start()
    srv.serve_forever()


if __name__ == "__main__":
    sys.exit(main())
