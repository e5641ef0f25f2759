#!/usr/bin/env python3
"""awsfault.py: a loopback proxy in front of an AWS endpoint (moto) that injects faults.

Forwards every request to --upstream unchanged and copies the answer back, except:

  PutSnapshotBlock (PUT /snapshots/<id>/blocks/<i>), on the FIRST attempt of a block only
  (a retry of that block goes through), by block index i:
    --throttle-every N   i % N == 1: 400 ThrottlingException (x-amzn-ErrorType, JSON body)
    --slowdown-every N   i % N == 2: 503 SlowDown (XML body)
    --error500-every N   i % N == 3: 500 InternalServerException
    --notfound-every N   i % N == 4: 404 ResourceNotFoundException (a snapshot not yet
                         visible just after StartSnapshot)
    --stall-every N      i % N == 5: read the request, then say nothing for --stall-seconds
                         and close (the client's per-request timeout must fire)
  Every request, with --verify-secret SECRET: its SigV4 signature is recomputed by botocore
  from the signed headers and the exact body; a mismatch is answered 403
  SignatureDoesNotMatch and logged sig=bad (moto checks no signature by default, and its
  own check cannot verify an empty-body POST such as CompleteSnapshot).
  EC2 Query API calls (POST with Action=...):
    --ec2-throttle-every N  the first attempt of every Nth EC2 call: 503 RequestLimitExceeded
    --fail-action NAME      every call of this action: 400 InvalidParameterValue

Every request is logged to --log as one line:
  <method> <path> action=<Action or -> attempt=<n> fault=<what or -> status=<code> sig=<ok|bad|->
Listens on 127.0.0.1, any port (written to --port-file). Exits on SIGTERM, when its parent
dies, and after --max-seconds.
"""

import argparse
import http.client
import http.server
import os
import re
import signal
import socketserver
import sys
import threading
import time
import urllib.parse

args = None
lock = threading.Lock()
attempts = {}
ec2_calls = [0]
tls = threading.local()

BLOCK_RE = re.compile(r"^/snapshots/([^/]+)/blocks/(\d+)$")
AUTH_RE = re.compile(r"^AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request, "
                     r"SignedHeaders=([^,]+), Signature=([0-9a-f]{64})$")


def signature_ok(method, path, headers, body):
    """Recompute the request's SigV4 signature with botocore, as AWS would."""
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    m = AUTH_RE.match(headers.get("Authorization", ""))
    if not m:
        return False
    akid, date, region, service, signed, sig = m.groups()
    names = signed.split(";")
    hdrs = {k: v for k, v in headers.items() if k.lower() in names}
    if len(hdrs) != len(names) or not headers.get("X-Amz-Date", "").startswith(date):
        return False
    req = AWSRequest(method=method, url="http://" + headers["Host"] + path, data=body,
                     headers=hdrs)
    req.context["timestamp"] = headers["X-Amz-Date"]
    auth = SigV4Auth(Credentials(akid, args.verify_secret, headers.get("X-Amz-Security-Token")),
                     service, region)
    canonical = auth.canonical_request(req)
    return auth.signature(auth.string_to_sign(req, canonical), req) == sig


def bump(key):
    with lock:
        attempts[key] = attempts.get(key, 0) + 1
        return attempts[key]


def upstream():
    conn = getattr(tls, "conn", None)
    if conn is None:
        u = urllib.parse.urlsplit(args.upstream)
        conn = http.client.HTTPConnection(u.hostname, u.port, timeout=60)
        tls.conn = conn
    return conn


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 120

    def log_message(self, fmt, *a):
        pass

    def log(self, action, attempt, fault, status):
        with lock, open(args.log, "a") as f:
            f.write("%s %s action=%s attempt=%d fault=%s status=%s sig=%s\n" % (
                self.command, self.path, action or "-", attempt, fault or "-", status,
                self.sig))

    def reply(self, status, body, headers):
        data = body.encode()
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def fault_for_block(self, index):
        rules = [
            (args.throttle_every, 1, "throttle"),
            (args.slowdown_every, 2, "slowdown"),
            (args.error500_every, 3, "error500"),
            (args.notfound_every, 4, "notfound"),
            (args.stall_every, 5, "stall"),
        ]
        for every, rem, name in rules:
            if every and index % every == rem % every:
                return name
        return None

    def handle_any(self):
        n = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(n) if n else b""
        action = None
        fault = None
        attempt = 1
        self.sig = "-"
        if args.verify_secret:
            self.sig = "ok" if signature_ok(self.command, self.path, self.headers, body) else "bad"
            if self.sig == "bad":
                self.log(None, 0, None, 403)
                return self.reply(403, "<Response><Errors><Error><Code>SignatureDoesNotMatch"
                                  "</Code><Message>signature mismatch (awsfault.py)</Message>"
                                  "</Error></Errors></Response>", {"Content-Type": "text/xml"})
        m = BLOCK_RE.match(self.path)
        if self.command == "PUT" and m:
            attempt = bump(("block", m.group(1), int(m.group(2))))
            if attempt == 1:
                fault = self.fault_for_block(int(m.group(2)))
        elif self.command == "POST" and self.path == "/" and body.startswith(b"Action="):
            q = urllib.parse.parse_qs(body.decode(), keep_blank_values=True)
            action = q.get("Action", ["?"])[0]
            key = ("ec2", body)
            attempt = bump(key)
            if args.fail_action and action == args.fail_action:
                fault = "fail-action"
            elif args.ec2_throttle_every and attempt == 1:
                with lock:
                    ec2_calls[0] += 1
                    nth = ec2_calls[0]
                if nth % args.ec2_throttle_every == 0:
                    fault = "ec2-throttle"

        if fault == "throttle":
            self.log(action, attempt, fault, 400)
            return self.reply(400, '{"Message":"Rate exceeded","Reason":"ACCOUNT_THROTTLED"}',
                              {"x-amzn-ErrorType": "ThrottlingException",
                               "Content-Type": "application/json"})
        if fault == "slowdown":
            self.log(action, attempt, fault, 503)
            return self.reply(503, "<Error><Code>SlowDown</Code><Message>Please reduce your "
                              "request rate.</Message></Error>", {"Content-Type": "text/xml"})
        if fault == "error500":
            self.log(action, attempt, fault, 500)
            return self.reply(500, '{"Message":"internal"}',
                              {"x-amzn-ErrorType": "InternalServerException",
                               "Content-Type": "application/json"})
        if fault == "notfound":
            self.log(action, attempt, fault, 404)
            return self.reply(404, '{"Message":"The snapshot does not exist","Reason":'
                              '"SNAPSHOT_NOT_FOUND"}',
                              {"x-amzn-ErrorType": "ResourceNotFoundException",
                               "Content-Type": "application/json"})
        if fault == "stall":
            self.log(action, attempt, fault, "stall")
            time.sleep(args.stall_seconds)
            self.close_connection = True
            return
        if fault == "ec2-throttle":
            self.log(action, attempt, fault, 503)
            return self.reply(503, "<Response><Errors><Error><Code>RequestLimitExceeded</Code>"
                              "<Message>Request limit exceeded.</Message></Error></Errors>"
                              "<RequestID>x</RequestID></Response>", {"Content-Type": "text/xml"})
        if fault == "fail-action":
            self.log(action, attempt, fault, 400)
            return self.reply(400, "<Response><Errors><Error><Code>InvalidParameterValue</Code>"
                              "<Message>injected failure of %s</Message></Error></Errors>"
                              "<RequestID>x</RequestID></Response>" % action,
                              {"Content-Type": "text/xml"})

        headers = {k: v for k, v in self.headers.items()
                   if k.lower() not in ("connection", "keep-alive", "transfer-encoding")}
        for tries in range(2):
            try:
                conn = upstream()
                conn.request(self.command, self.path, body=body, headers=headers)
                resp = conn.getresponse()
                data = resp.read()
                break
            except (http.client.HTTPException, OSError):
                tls.conn = None
                if tries:
                    raise
        self.log(action, attempt, None, resp.status)
        self.send_response(resp.status)
        for k, v in resp.getheaders():
            if k.lower() not in ("connection", "keep-alive", "transfer-encoding",
                                 "content-length", "server", "date"):
                self.send_header(k, v)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    do_GET = do_PUT = do_POST = do_DELETE = handle_any


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    request_queue_size = 256


def main():
    global args
    ap = argparse.ArgumentParser()
    ap.add_argument("--upstream", required=True)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--log", required=True)
    for name in ("throttle", "slowdown", "error500", "notfound", "stall", "ec2-throttle"):
        ap.add_argument("--%s-every" % name, type=int, default=0)
    ap.add_argument("--stall-seconds", type=float, default=30)
    ap.add_argument("--fail-action")
    ap.add_argument("--verify-secret")
    ap.add_argument("--max-seconds", type=int, default=600)
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
