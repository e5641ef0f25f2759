#!/usr/bin/env python3
"""ocireg.py: a registry front that demands auth, for the tests (stdlib only).

Proxies GET/HEAD /v2/... to --upstream (a real registry without auth) once the request
carries the right credentials, else answers 401 with a challenge:

  --mode bearer   WWW-Authenticate: Bearer realm="http://127.0.0.1:PORT/token",
                  service="ocireg-test",scope="repository:<repo>:pull"; the token endpoint
                  GET /token?service=&scope= hands out a token good for that scope only
                  (with --user U:P it demands Basic U:P first), and POST /token takes the
                  OAuth2 refresh-token grant when --refresh-token is given
  --mode basic    WWW-Authenticate: Basic realm="ocireg"; requests need Basic --user

Every request is logged as one line to --log:
  <METHOD> <path?query> auth=<scheme or -> status=<code>
  (for POST /token the form fields but the token are logged as well)
Listens on 127.0.0.1 (any port, written to --port-file). Exits on SIGTERM, when its parent
dies, and after --max-seconds in any case.
"""

import argparse
import base64
import http.server
import os
import secrets
import signal
import socketserver
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

args = None
tokens = {}  # token -> scope
lock = threading.Lock()
SERVICE = "ocireg-test"


def log(line):
    if args.log:
        with lock, open(args.log, "a") as f:
            f.write(line + "\n")


class NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *a, **k):
        return None


opener = urllib.request.build_opener(NoRedirect)


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    timeout = 30
    server_version = "ocireg-test"

    def log_message(self, fmt, *a):
        pass

    def reply(self, status, body=b"", headers=()):
        self.send_response(status)
        for k, v in headers:
            self.send_header(k, v)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)
        auth = (self.headers.get("Authorization") or "-").split(" ")[0]
        log("%s %s auth=%s status=%d" % (self.command, self.path, auth, status))

    def basic_ok(self):
        want = "Basic " + base64.b64encode(args.user.encode()).decode()
        return self.headers.get("Authorization") == want

    def do_token_get(self, q):
        if args.user and not self.basic_ok():
            return self.reply(401, b'{"details":"bad credentials"}',
                              [("WWW-Authenticate", 'Basic realm="token"')])
        if q.get("service") != [SERVICE] or len(q.get("scope", [])) != 1:
            return self.reply(400, b'{"details":"service and one scope needed"}')
        self.issue(q["scope"][0])

    def do_POST(self):
        path, _, _ = self.path.partition("?")
        n = int(self.headers.get("Content-Length") or 0)
        form = urllib.parse.parse_qs(self.rfile.read(min(n, 65536)).decode())
        shown = {k: v for k, v in form.items() if k != "refresh_token"}
        log("FORM %s" % sorted(shown.items()))
        if path != "/token" or not args.refresh_token:
            return self.reply(404)
        if (form.get("grant_type") != ["refresh_token"]
                or form.get("refresh_token") != [args.refresh_token]
                or form.get("service") != [SERVICE] or len(form.get("scope", [])) != 1):
            return self.reply(401, b'{"error":"invalid_grant"}')
        self.issue(form["scope"][0], key="access_token")

    def issue(self, scope, key="token"):
        t = secrets.token_hex(16)
        with lock:
            tokens[t] = scope
        if args.token_log:  # for the test to look for the token in the client's logs
            with lock, open(args.token_log, "a") as f:
                f.write(t + "\n")
        body = ('{"%s":"%s","expires_in":300}' % (key, t)).encode()
        self.reply(200, body, [("Content-Type", "application/json")])

    def challenge(self, scope):
        if args.mode == "basic":
            return 'Basic realm="ocireg"'
        realm = "http://127.0.0.1:%d/token" % self.server.server_address[1]
        c = 'Bearer realm="%s",service="%s"' % (realm, SERVICE)
        if scope:
            c += ',scope="%s"' % scope
        return c

    def authorized(self, scope):
        if args.mode == "basic":
            return self.basic_ok()
        h = self.headers.get("Authorization") or ""
        if not h.startswith("Bearer "):
            return False
        with lock:
            got = tokens.get(h[7:])
        return got is not None and (scope is None or got == scope)

    def do_GET(self):
        path, _, query = self.path.partition("?")
        if path == "/token":
            return self.do_token_get(urllib.parse.parse_qs(query))
        if not path.startswith("/v2/"):
            return self.reply(404)
        scope = None
        for kind in ("/manifests/", "/blobs/"):
            if kind in path:
                scope = "repository:%s:pull" % path[4:path.index(kind)]
        if not self.authorized(scope):
            return self.reply(401, b'{"errors":[{"code":"UNAUTHORIZED","message":"auth"}]}',
                              [("WWW-Authenticate", self.challenge(scope)),
                               ("Content-Type", "application/json")])
        req = urllib.request.Request(args.upstream + self.path, method=self.command)
        if self.headers.get("Accept"):
            req.add_header("Accept", self.headers["Accept"])
        try:
            r = opener.open(req, timeout=30)
        except urllib.error.HTTPError as e:
            r = e
        body = r.read()
        keep = ("Content-Type", "Docker-Content-Digest", "Location", "Docker-Distribution-Api-Version")
        self.reply(r.status if hasattr(r, "status") else r.code, body,
                   [(k, r.headers[k]) for k in keep if r.headers.get(k)])

    do_HEAD = do_GET

    def handle_error(self, request, client_address):
        if not isinstance(sys.exc_info()[1], (ConnectionError, TimeoutError)):
            super().handle_error(request, client_address)


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def watch_parent(ppid):
    while True:
        if os.getppid() != ppid:
            os._exit(0)
        time.sleep(0.2)


def main():
    global args
    p = argparse.ArgumentParser()
    p.add_argument("--upstream", required=True)
    p.add_argument("--mode", choices=("bearer", "basic"), default="bearer")
    p.add_argument("--user")
    p.add_argument("--refresh-token")
    p.add_argument("--port-file", required=True)
    p.add_argument("--log")
    p.add_argument("--token-log", help="append every token handed out to this file")
    p.add_argument("--max-seconds", type=float, default=600)
    args = p.parse_args()
    if args.mode == "basic" and not args.user:
        p.error("--mode basic needs --user")

    signal.signal(signal.SIGTERM, lambda *_: os._exit(0))
    signal.signal(signal.SIGINT, lambda *_: os._exit(0))
    threading.Thread(target=watch_parent, args=(os.getppid(),), daemon=True).start()
    threading.Timer(args.max_seconds, lambda: os._exit(0)).start()

    srv = Server(("127.0.0.1", 0), Handler)
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write("%d\n" % srv.server_address[1])
    os.rename(tmp, args.port_file)
    srv.serve_forever(poll_interval=0.2)


if __name__ == "__main__":
    sys.exit(main())
