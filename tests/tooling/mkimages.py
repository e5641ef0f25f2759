#!/usr/bin/env python3
"""mkimages.py: test images for the tooling role, laid out as an imgbuild directory mirror.

  mkimages.py PROJECT_DIR MIRROR_DIR

Docker Hub and quay.io cannot be reached from the test machines. For every image the
tooling role pins (images/tooling.yaml `images:`, which must equal
stacks/tooling/images.txt), this writes a small linux/amd64 image where `imgbuild --mirror
MIRROR_DIR` looks for it, exactly as tests/k8s/mkpayloads.py does:
MIRROR_DIR/<registry>/v2/<repository>/manifests/<tag> and .../blobs/sha256:<hex>
(docker.io is registry-1.docker.io, with library/ for one-word names; quay.io stays).

Every image is two layers: one shared base (BusyBox, glibc, /etc/passwd with the users the
real images run as, merged /usr) and one of its own. Where Debian packages the software,
the image runs it for real (Debian 12's version, not the pinned one); the rest are
stand-ins that answer HTTP 200 on the real image's ports and on the paths the compose
healthchecks and the tests use, and print "imgbuild test stand-in for <image>" in their log:

  prom/prometheus, prom/alertmanager, prom/node-exporter, prom/blackbox-exporter,
  quay.io/prometheuscommunity/postgres-exporter
        REAL: Debian's binaries (/bin/prometheus, ...), the upstream images' entry point,
        default flags, user (nobody) and working directory
  postgres
        REAL: Debian's PostgreSQL 15 (server and client tools), behind an entry point
        modelled on the official image's: initdb on an empty $PGDATA with POSTGRES_USER,
        POSTGRES_PASSWORD (scram-sha-256 over TCP, trust on the local socket) and
        POSTGRES_DB, listen on *:5432, then drop to the postgres user (999) with gosu
  jenkins/jenkins, grafana/grafana, grafana/loki, grafana/promtail, grafana/tempo, adminer
        STAND-INS: BusyBox httpd on the real ports; jenkins gets a `curl` and adminer a
        `php` that do what their compose healthchecks ask (a GET) with BusyBox wget

The role's artifacts must be Jenkins plugins from the update center (updates.jenkins.io and
repo.jenkins-ci.org cannot be reached either): tests/tooling/mkplugins.py writes each as a
STAND-IN .hpi (a zip whose manifest declares the real plugin's dependencies, and
"Imgbuild-Test-Stand-In: true") at its URL's place in the mirror, and its sha256 at its
checksum_url's place. Prints "plugin <id>:<version> stand-in ...".

The layers are built from one `mmdebstrap --variant=extract` of the Debian packages (a
few seconds from the Debian mirror) and cached, keyed by this file and the package list,
under $IMGBUILD_TOOLING_IMAGES_CACHE (default tests/tmp/tooling-images-cache), so a rerun
only writes manifests. Prints one line per image: "image <ref> <real|stand-in> <what>".
"""

import glob
import gzip
import hashlib
import io
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(TOP, "tests", "tools"))
from mirrorlib import OCI_LAYER, Repository, role_chain, split_ref, write  # noqa: E402

if len(sys.argv) != 3:
    sys.exit("usage: mkimages.py PROJECT_DIR MIRROR_DIR")
project, mirror = sys.argv[1], sys.argv[2]

PACKAGES = ["busybox-static", "gosu", "tzdata", "prometheus", "prometheus-alertmanager",
            "prometheus-node-exporter", "prometheus-blackbox-exporter",
            "prometheus-postgres-exporter", "postgresql-15", "postgresql-client-15"]
PG = "15"
PGBIN = "/usr/lib/postgresql/%s/bin" % PG
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

# Users of the real images (base layer's /etc/passwd): name, uid, gid, home.
USERS = [("root", 0, 0, "/root"), ("nobody", 65534, 65534, "/nonexistent"),
         ("postgres", 999, 999, "/var/lib/postgresql"),
         ("jenkins", 1000, 1000, "/var/jenkins_home"), ("grafana", 472, 0, "/usr/share/grafana"),
         ("loki", 10001, 10001, "/loki"), ("adminer", 100, 101, "/var/www/html")]
GROUPS = [("root", 0), ("postgres", 999), ("jenkins", 1000), ("loki", 10001),
          ("adminer", 101), ("nogroup", 65534)]


def die(msg):
    sys.exit("mkimages.py: " + msg)


# ---- the role's images -------------------------------------------------------------------

images, artifacts = [], []
for r in role_chain(project, "tooling"):
    images += r.get("images") or []
    artifacts = (r.get("artifacts") or []) + artifacts
# The artifacts: only Jenkins plugins from the update center (see the end of this file).
PLUGIN_URL = re.compile(r"https://updates\.jenkins\.io/download/plugins/([a-z0-9-]+)/([^/]+)/([a-z0-9-]+)\.hpi")
for a in artifacts:
    if not PLUGIN_URL.fullmatch(a.get("url", "")) or a.get("sha256") or not a.get("checksum_url"):
        die("artifact '%s': this script makes stand-ins for update center plugins with a "
            "checksum_url only" % a.get("name"))
listed = [l.strip() for l in open(os.path.join(project, "stacks/tooling/images.txt"))
          if l.strip() and not l.startswith("#")]
if sorted(images) != sorted(listed):
    die("images/tooling.yaml `images:` and stacks/tooling/images.txt differ: %s vs %s"
        % (sorted(images), sorted(listed)))


# ---- recipes: what each repository's test image holds and how it starts -------------------

def real(pkg, src, dest, port, entry_args, cmd, user="nobody", workdir="/", dirs=(), extra=()):
    return dict(kind="real", pkg=pkg, files=[(src, dest)], ports=[port], user=user,
                workdir=workdir, entry=entry_args, cmd=cmd, dirs=list(dirs), extra=list(extra))


def standin(ports, user, paths, dirs=(), tools=()):
    return dict(kind="stand-in", ports=ports, user=user, paths=paths, dirs=list(dirs),
                tools=list(tools))


RECIPES = {
    "prom/prometheus": real(
        "prometheus", "usr/bin/prometheus", "usr/bin/prometheus", 9090, ["/bin/prometheus"],
        ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"],
        workdir="/prometheus", dirs=[("etc/prometheus", 0, 0o755), ("prometheus", 65534, 0o755)],
        extra=["usr/share/prometheus/web"]),
    "prom/alertmanager": real(
        "prometheus-alertmanager", "usr/bin/prometheus-alertmanager", "usr/bin/alertmanager",
        9093, ["/bin/alertmanager"],
        ["--config.file=/etc/alertmanager/alertmanager.yml", "--storage.path=/alertmanager"],
        workdir="/alertmanager",
        dirs=[("etc/alertmanager", 0, 0o755), ("alertmanager", 65534, 0o755)],
        extra=["usr/share/prometheus/alertmanager"]),  # Debian's default.tmpl is read there
    "prom/node-exporter": real(
        "prometheus-node-exporter", "usr/bin/prometheus-node-exporter", "usr/bin/node_exporter",
        9100, ["/bin/node_exporter"], []),
    "prom/blackbox-exporter": real(
        "prometheus-blackbox-exporter", "usr/bin/prometheus-blackbox-exporter",
        "usr/bin/blackbox_exporter", 9115, ["/bin/blackbox_exporter"],
        ["--config.file=/etc/blackbox_exporter/config.yml"],
        dirs=[("etc/blackbox_exporter", 0, 0o755)]),
    "prometheuscommunity/postgres-exporter": real(
        "prometheus-postgres-exporter", "usr/bin/prometheus-postgres-exporter",
        "usr/bin/postgres_exporter", 9187, ["/bin/postgres_exporter"], []),
    "library/postgres": dict(kind="real", pkg="postgresql-" + PG, ports=[5432]),
    "jenkins/jenkins": standin([8080, 50000], "jenkins", ["login"],
                               dirs=[("var/jenkins_home", 1000, 0o755)], tools=["curl"]),
    "grafana/grafana": standin([3000], "grafana", ["api/health", "login", "metrics"],
                               dirs=[("var/lib/grafana", 472, 0o755)]),
    "grafana/loki": standin([3100], "loki", ["ready", "metrics"], dirs=[("loki", 10001, 0o755)]),
    "grafana/promtail": standin([9080], "root", ["ready", "metrics"]),
    "grafana/tempo": standin([3200, 4317, 4318], "root", ["ready", "metrics"]),
    "library/adminer": standin([8080], "adminer", [], tools=["php"]),
}


def recipe_of(ref):
    _, repo, _ = split_ref(ref)
    if repo not in RECIPES:
        die("no test image for '%s' (repository %s): add a recipe" % (ref, repo))
    return RECIPES[repo]


for ref in images:
    if "@" in ref:
        die("image '%s' is pinned by digest; a test image cannot match it" % ref)
    recipe_of(ref)

# ---- scripts baked into the per-image layers ---------------------------------------------

WRAPPER = """#!/bin/sh
# imgbuild test image for {ref}: the upstream image cannot be downloaded on the test
# machines; this one runs {what} with the upstream image's flags.
echo "imgbuild test image for {ref}: real software, {what} (not the pinned upstream build)" >&2
exec "$@"
"""

STANDIN = """#!/bin/sh
# imgbuild test stand-in for {ref}: the real image cannot be downloaded on the test
# machines. BusyBox httpd answers HTTP 200 on the real image's ports ({ports}), on / and
# on {paths}; the arguments are only logged.
echo "imgbuild test stand-in for {ref}: NOT the real software; BusyBox httpd answers on port(s) {ports}; arguments: $*"
ports="{ports}"
pids=""
for port in $ports; do
	busybox httpd -f -p "$port" -h /var/www/imgbuild-standin &
	pids="$pids $!"
done
# PID 1 ignores signals it has no handler for: stop the servers on docker stop.
trap 'kill $pids 2>/dev/null; exit 0' TERM INT
wait
"""

CURL = """#!/bin/sh
# imgbuild test stand-in for curl (in the jenkins stand-in image): enough of
# `curl [-fsS...] [-o FILE] URL` for the compose healthcheck, done with BusyBox wget.
out=- url=""
while [ $# -gt 0 ]; do
	case $1 in
	-o) out=$2; shift ;;
	-*) ;;
	*) url=$1 ;;
	esac
	shift
done
exec wget -q -O "$out" "$url"
"""

PHP = """#!/bin/sh
# imgbuild test stand-in for php (in the adminer stand-in image): `php -r CODE` fetches the
# first http:// URL in CODE with BusyBox wget, which is what the compose healthcheck's code
# does (file_get_contents), and exits 0 when it answered.
[ "${1:-}" = -r ] || { echo "imgbuild test stand-in for php: only -r is supported" >&2; exit 1; }
url=$(printf '%s\\n' "$2" | sed -n "s|.*'\\(http://[^']*\\)'.*|\\1|p")
[ -n "$url" ] || exit 1
exec wget -q -O /dev/null "$url"
"""

PG_ENTRYPOINT = r"""#!/bin/sh
# docker-entrypoint.sh of imgbuild's test image for {ref}: Debian's PostgreSQL {pgver}
# behind an entry point that behaves like the official image's as compose.yaml uses it.
# As root: make $PGDATA and the socket directory the postgres user's, then run again as
# postgres (gosu). On an empty $PGDATA: initdb with POSTGRES_USER as superuser and
# POSTGRES_PASSWORD (scram-sha-256), trust on the local socket, "host all all all
# scram-sha-256", listen_addresses '*', then create POSTGRES_DB. Then exec the command.
set -eu
case ${{1:-}} in -*) set -- postgres "$@" ;; esac
if [ "${{1:-}}" = postgres ] && [ "$(id -u)" = 0 ]; then
	echo "imgbuild test image for {ref}: real software, Debian's PostgreSQL {pgver} (not the pinned {tag})" >&2
	mkdir -p "$PGDATA" /var/run/postgresql
	chown -R postgres:postgres "$PGDATA"
	chmod 700 "$PGDATA"
	chown postgres:postgres /var/run/postgresql
	chmod 3777 /var/run/postgresql
	exec gosu postgres "$0" "$@"
fi
if [ "${{1:-}}" = postgres ] && [ ! -s "$PGDATA/PG_VERSION" ]; then
	if [ -z "${{POSTGRES_PASSWORD:-}}" ]; then
		echo "Error: Database is uninitialized and superuser password is not specified." >&2
		exit 1
	fi
	user=${{POSTGRES_USER:-postgres}}
	db=${{POSTGRES_DB:-$user}}
	pwfile=$(mktemp)
	printf '%s\n' "$POSTGRES_PASSWORD" >"$pwfile"
	# shellcheck disable=SC2086
	initdb -D "$PGDATA" --username="$user" --pwfile="$pwfile" --encoding=UTF8 \
		--locale=C.UTF-8 ${{POSTGRES_INITDB_ARGS:-}}
	rm -f "$pwfile"
	printf "\nlisten_addresses = '*'\n" >>"$PGDATA/postgresql.conf"
	printf '\nhost all all all scram-sha-256\n' >>"$PGDATA/pg_hba.conf"
	pg_ctl -D "$PGDATA" -o "-c listen_addresses=''" -w start
	if [ "$db" != postgres ]; then
		printf 'CREATE DATABASE :"db";\n' |
			psql -X -q -v ON_ERROR_STOP=1 --username "$user" --dbname postgres -v db="$db"
	fi
	pg_ctl -D "$PGDATA" -m fast -w stop
	echo "PostgreSQL init process complete; ready for start up."
fi
exec "$@"
"""

# ---- the root filesystem the layers are cut from -----------------------------------------

with open(os.path.join(project, "imgbuild.yaml")) as f:
    pspec = yaml.safe_load(f)
suite = pspec["debian"]["suite"]
debmirror = os.environ.get("IMGBUILD_TOOLING_DEBIAN_MIRROR", pspec["debian"]["mirror"])

with open(os.path.abspath(__file__), "rb") as f:
    me = f.read()
key = hashlib.sha256(me + json.dumps([PACKAGES, suite, debmirror]).encode()).hexdigest()[:16]
cache_root = os.environ.get("IMGBUILD_TOOLING_IMAGES_CACHE",
                            os.path.join(TOP, "tests", "tmp", "tooling-images-cache"))
cache = os.path.join(cache_root, key)


def merged(rel):
    """A path of the (unmerged) extracted tree, in the images' merged-/usr layout."""
    for d in ("bin", "sbin", "lib", "lib64"):
        if rel == d or rel.startswith(d + "/"):
            return "usr/" + rel
    return rel


def canon(root, rel):
    """rel with every symlink resolved inside root (absolute targets are root's)."""
    parts = [p for p in rel.split("/") if p and p != "."]
    out, hops = [], 0
    while parts:
        p = parts.pop(0)
        if p == "..":
            if out:
                out.pop()
            continue
        full = os.path.join(root, *(out + [p]))
        if os.path.islink(full):
            hops += 1
            if hops > 40:
                die("symlink loop at " + rel)
            t = os.readlink(full)
            if t.startswith("/"):
                out = []
            parts = [x for x in t.split("/") if x and x != "."] + parts
        else:
            out.append(p)
    return "/".join(out)


class Layer:
    def __init__(self):
        self.e = {}  # path -> dict(type, mode, uid, gid, src|data|link)

    def _parents(self, path):
        d = os.path.dirname(path)
        while d and d not in self.e:
            self.e[d] = dict(type="dir", mode=0o755, uid=0, gid=0)
            d = os.path.dirname(d)

    def dir(self, path, mode=0o755, uid=0, gid=0):
        self._parents(path)
        self.e[path] = dict(type="dir", mode=mode, uid=uid, gid=gid)

    def data(self, path, data, mode=0o644):
        self._parents(path)
        self.e[path] = dict(type="file", mode=mode, uid=0, gid=0,
                            data=data.encode() if isinstance(data, str) else data)

    def file(self, path, src, mode=None):
        self._parents(path)
        st = os.lstat(src)
        self.e[path] = dict(type="file", mode=mode if mode is not None else st.st_mode & 0o7777,
                            uid=0, gid=0, src=src)

    def link(self, path, target):
        self._parents(path)
        self.e[path] = dict(type="link", mode=0o777, uid=0, gid=0, link=target)

    def tar(self):
        raw = io.BytesIO()
        with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as t:
            for path in sorted(self.e):
                x = self.e[path]
                ti = tarfile.TarInfo(path)
                ti.mtime, ti.uid, ti.gid, ti.mode = 0, x["uid"], x["gid"], x["mode"]
                ti.uname = ti.gname = ""
                if x["type"] == "dir":
                    ti.type = tarfile.DIRTYPE
                    t.addfile(ti)
                elif x["type"] == "link":
                    ti.type, ti.linkname = tarfile.SYMTYPE, x["link"]
                    t.addfile(ti)
                elif "data" in x:
                    ti.size = len(x["data"])
                    t.addfile(ti, io.BytesIO(x["data"]))
                else:
                    ti.size = os.path.getsize(x["src"])
                    with open(x["src"], "rb") as f:
                        t.addfile(ti, f)
        return raw.getvalue()


def needed(path):
    out = subprocess.run(["readelf", "-d", "-W", path], capture_output=True, text=True)
    if out.returncode != 0:
        return []  # not ELF (a script)
    return re.findall(r"\(NEEDED\)\s+Shared library: \[([^\]]+)\]", out.stdout)


LIBDIRS = ["lib/x86_64-linux-gnu", "usr/lib/x86_64-linux-gnu", "lib", "usr/lib",
           "usr/lib/postgresql/%s/lib" % PG]


def add_tree_path(root, layer, rel, skip=frozenset()):
    """Add root/rel (symlinks kept, with what they point to) to layer; returns the regular
    files added."""
    rel = canon(root, os.path.dirname(rel)) + "/" + os.path.basename(rel)
    dest = merged(rel)
    full = os.path.join(root, rel)
    if not os.path.lexists(full):
        return []  # the end of a dangling symlink (zoneinfo/localtime -> /etc/localtime)
    if not os.path.isdir(full) or os.path.islink(full):
        if dest in skip or dest in layer.e:
            return []
    if os.path.islink(full):
        t = os.readlink(full)
        layer.link(dest, t)
        nxt = t[1:] if t.startswith("/") else os.path.join(os.path.dirname(rel), t)
        return add_tree_path(root, layer, os.path.normpath(nxt), skip)
    if os.path.isdir(full):
        layer.dir(dest)
        files = []
        for n in sorted(os.listdir(full)):
            files += add_tree_path(root, layer, rel + "/" + n, skip)
        return files
    layer.file(dest, full)
    return [full]


def add_libs(root, layer, files, skip):
    """The shared libraries files need, transitively, unless skip (the base) has them."""
    todo, seen = list(files), set()
    while todo:
        f = todo.pop()
        for so in needed(f):
            if so in seen:
                continue
            seen.add(so)
            for d in LIBDIRS:
                if os.path.lexists(os.path.join(root, d, so)):
                    todo += add_tree_path(root, layer, d + "/" + so, skip)
                    break
            else:
                die("%s needs %s, not found in the extracted packages" % (f, so))


def versions(root):
    """{package: version} from the names of the .deb files (name_version_arch.deb)."""
    v = {}
    with open(os.path.join(root, "imgbuild-debs")) as f:
        for line in f:
            parts = line.strip().split("_")
            if len(parts) == 3 and parts[2].endswith(".deb"):
                v[parts[0]] = parts[1].replace("%3a", ":")
    return v


def gz(data):
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0, compresslevel=6) as g:
        g.write(data)
    return out.getvalue()


def build_layers():
    """Cut every layer out of one extracted package set; returns the cache's meta."""
    work = tempfile.mkdtemp(prefix="mkimages.", dir=cache_root)
    try:
        tar = os.path.join(work, "debian.tar")
        # The extract variant installs nothing, so dpkg's database stays empty: the versions
        # are read from the names of the downloaded packages before they are cleaned up.
        cmd = ["mmdebstrap", "--quiet", "--variant=extract", "--include=" + ",".join(PACKAGES),
               "--extract-hook=ls \"$1/var/cache/apt/archives\" >\"$1/imgbuild-debs\"",
               suite, tar, debmirror]
        r = subprocess.run(cmd, capture_output=True, text=True)
        if r.returncode != 0:
            die("mmdebstrap failed:\n" + r.stderr[-3000:])
        root = os.path.join(work, "root")
        os.mkdir(root)
        r = subprocess.run(["tar", "-x", "-f", tar, "-C", root, "--no-same-owner",
                            "--exclude=./dev", "--exclude=./dev/*"], capture_output=True, text=True)
        if r.returncode != 0:
            die("cannot extract the packages:\n" + r.stderr[-3000:])
        os.unlink(tar)
        ver = versions(root)
        layers = {}

        # Base: merged /usr, BusyBox with every applet, glibc, users.
        base = Layer()
        for d in ("bin", "sbin", "lib", "lib64"):
            base.link(d, "usr/" + d)
        for d in ("usr/bin", "usr/sbin", "usr/lib", "usr/lib64", "usr/local/bin",
                  "usr/local/sbin", "etc", "run", "var/lib", "var/cache", "var/log"):
            base.dir(d)
        base.dir("tmp", 0o1777)
        base.dir("var/tmp", 0o1777)
        base.dir("root", 0o700)
        base.link("var/run", "/run")
        bb = os.path.join(root, "bin/busybox")
        base.file("usr/bin/busybox", bb, 0o755)
        applets = subprocess.run([bb, "--list"], capture_output=True, text=True,
                                 check=True).stdout.split()
        for a in applets:
            if a not in ("busybox", "[[") and "/" not in a:
                base.link("usr/bin/" + a, "busybox")
        base.link("usr/bin/[[", "busybox")
        add_tree_path(root, base, "lib/x86_64-linux-gnu/libc.so.6")
        add_tree_path(root, base, "lib64/ld-linux-x86-64.so.2")
        for so in ("libm.so.6", "libresolv.so.2", "libpthread.so.0", "libdl.so.2", "librt.so.1"):
            add_tree_path(root, base, "lib/x86_64-linux-gnu/" + so)
        base.data("etc/passwd", "".join("%s:x:%d:%d:%s:%s:/bin/sh\n" % (n, u, g, n, h)
                                        for n, u, g, h in USERS))
        base.data("etc/group", "".join("%s:x:%d:\n" % (n, g) for n, g in GROUPS))
        base.data("etc/nsswitch.conf", "passwd: files\ngroup: files\nhosts: files dns\n")
        base.data("etc/imgbuild-test-image",
                  "imgbuild test image base: BusyBox %s and glibc from Debian\n"
                  % ver.get("busybox-static", "?"))
        layers["base"] = base
        skip = set(base.e)

        for repo, rc in RECIPES.items():
            L = Layer()
            if repo == "library/postgres":
                files = []
                for sub in ("usr/lib/postgresql/%s/bin" % PG, "usr/share/postgresql/%s" % PG):
                    files += add_tree_path(root, L, sub, skip)
                libdir = "usr/lib/postgresql/%s/lib" % PG
                for n in sorted(os.listdir(os.path.join(root, libdir))):
                    if n.startswith("llvmjit") or n == "bitcode":
                        continue  # JIT (LLVM, 100 MB): jit is off without it
                    files += add_tree_path(root, L, libdir + "/" + n, skip)
                for n in sorted(os.listdir(os.path.join(root, "usr/share/zoneinfo"))):
                    if n not in ("right", "posix"):
                        add_tree_path(root, L, "usr/share/zoneinfo/" + n, skip)
                files += add_tree_path(root, L, "usr/sbin/gosu", skip)
                add_tree_path(root, L, "usr/lib/locale/C.utf8", skip)  # initdb --locale
                add_libs(root, L, files, skip)
                L.dir("var/lib/postgresql", 0o755, 999, 999)
                L.dir("var/lib/postgresql/data", 0o777, 999, 999)
                L.dir("run/postgresql", 0o3777, 999, 999)
            elif rc["kind"] == "real":
                src, dest = rc["files"][0]
                L.file(dest, os.path.join(root, src), 0o755)
                add_libs(root, L, [os.path.join(root, src)], skip)
                for x in rc["extra"]:
                    add_tree_path(root, L, x, skip)
                for d, uid, mode in rc["dirs"]:
                    L.dir(d, mode, uid, uid)
            else:
                for d, uid, mode in rc["dirs"]:
                    L.dir(d, mode, uid, uid)
            layers[repo] = L

        os.makedirs(os.path.join(work, "out"))
        meta = {"versions": {p: ver.get(p, "?") for p in PACKAGES}, "layers": {}}
        for name, L in layers.items():
            raw = L.tar()
            comp = gz(raw)
            d = hashlib.sha256(comp).hexdigest()
            with open(os.path.join(work, "out", d), "wb") as f:
                f.write(comp)
            meta["layers"][name] = {"digest": "sha256:" + d, "size": len(comp),
                                    "diff_id": "sha256:" + hashlib.sha256(raw).hexdigest()}
        with open(os.path.join(work, "out", "meta.json"), "w") as f:
            json.dump(meta, f, indent=1, sort_keys=True)
        try:
            os.rename(os.path.join(work, "out"), cache)
        except OSError:
            if not os.path.exists(os.path.join(cache, "meta.json")):
                raise  # else another run built the same layers first: theirs are as good
    finally:
        shutil.rmtree(work, ignore_errors=True)


os.makedirs(cache_root, exist_ok=True)
if not os.path.exists(os.path.join(cache, "meta.json")):
    for old in glob.glob(os.path.join(cache_root, "[0-9a-f]" * 16)):
        shutil.rmtree(old, ignore_errors=True)  # other keys: an older package list or script
    build_layers()
with open(os.path.join(cache, "meta.json")) as f:
    meta = json.load(f)
ver = meta["versions"]

# ---- per-image layers (tiny, built every run) and the mirror ------------------------------

def short(v):
    return v.split(":", 1)[-1].split("+", 1)[0].split("-", 1)[0]


for ref in images:
    dest = Repository(mirror, ref)
    repo, tag = dest.repo, dest.tag
    rc = recipe_of(ref)
    top = Layer()
    env = ["PATH=" + PATH]
    stop = None
    if repo == "library/postgres":
        what = "Debian's PostgreSQL %s (server and client tools), official-like entry point" % ver[
            "postgresql-15"]
        top.data("usr/local/bin/docker-entrypoint.sh",
                 PG_ENTRYPOINT.format(ref=ref, tag=tag, pgver=short(ver["postgresql-15"])), 0o755)
        entry, cmd, user, workdir = ["docker-entrypoint.sh"], ["postgres"], "", "/"
        env = ["PATH=%s:%s" % (PGBIN, PATH), "PGDATA=/var/lib/postgresql/data",
               "LANG=C.UTF-8", "PG_MAJOR=" + PG]
        stop = "SIGINT"
    elif rc["kind"] == "real":
        what = "Debian's %s %s" % (rc["pkg"], ver[rc["pkg"]])
        top.data("usr/local/bin/imgbuild-test-entrypoint", WRAPPER.format(ref=ref, what=what),
                 0o755)
        entry = ["/usr/local/bin/imgbuild-test-entrypoint"] + rc["entry"]
        cmd, user, workdir = rc["cmd"], rc["user"], rc["workdir"]
    else:
        ports = " ".join(str(p) for p in rc["ports"])
        what = "BusyBox httpd answering HTTP 200 on %s" % ports
        paths = ", ".join("/" + p for p in rc["paths"]) or "nothing else"
        top.data("usr/local/bin/imgbuild-standin",
                 STANDIN.format(ref=ref, ports=ports, paths=paths), 0o755)
        www = "var/www/imgbuild-standin/"
        top.data(www + "index.html", "imgbuild test stand-in for %s\n" % ref)
        for p in rc["paths"]:
            body = "# imgbuild test stand-in for %s\n" % ref if p == "metrics" else \
                "imgbuild test stand-in for %s: /%s\n" % (ref, p)
            top.data(www + p, body)
        if "curl" in rc["tools"]:
            top.data("usr/bin/curl", CURL, 0o755)
            what += "; /usr/bin/curl is a wget wrapper"
        if "php" in rc["tools"]:
            top.data("usr/local/bin/php", PHP, 0o755)
            what += "; /usr/local/bin/php is a wget wrapper for `php -r`"
        entry, cmd, user, workdir = ["/usr/local/bin/imgbuild-standin"], [], rc["user"], "/"
    top.data("etc/imgbuild-test-image", "%s\n%s: %s\n" % (ref, rc["kind"], what))
    raw = top.tar()
    comp = gz(raw)

    def cached_blob(c):
        """A layer the cache holds already, hard-linked into the mirror."""
        dst = os.path.join(dest.base, "blobs", c["digest"])
        if not os.path.exists(dst):
            os.makedirs(os.path.dirname(dst), exist_ok=True)
            src = os.path.join(cache, c["digest"].split(":", 1)[1])
            try:
                os.link(src, dst)
            except OSError:
                shutil.copyfile(src, dst)
        return {"digest": c["digest"], "size": c["size"]}

    lbase = meta["layers"]["base"]
    lown = meta["layers"][repo]
    diff_ids = [lbase["diff_id"], lown["diff_id"], "sha256:" + hashlib.sha256(raw).hexdigest()]
    config = {"Env": env, "Entrypoint": entry, "Cmd": cmd or None, "WorkingDir": workdir,
              "ExposedPorts": {"%d/tcp" % p: {} for p in rc["ports"]},
              "Labels": {"imgbuild.test.kind": rc["kind"], "imgbuild.test.what": what,
                         "imgbuild.test.ref": ref}}
    if user:
        config["User"] = user
    if stop:
        config["StopSignal"] = stop
    cfg = json.dumps({"architecture": "amd64", "os": "linux", "created": "1970-01-01T00:00:00Z",
                      "config": config, "rootfs": {"type": "layers", "diff_ids": diff_ids},
                      "history": [{"created_by": "imgbuild tests/tooling/mkimages.py: " + n}
                                  for n in ("base", repo, "entry point")]},
                     sort_keys=True).encode()
    layers = [dict(mediaType=OCI_LAYER, **cached_blob(lbase)),
              dict(mediaType=OCI_LAYER, **cached_blob(lown)),
              dict(mediaType=OCI_LAYER, **dest.blob(comp))]
    manifest = dest.put_manifest(cfg, layers)
    size = sum(l["size"] for l in layers)
    print("image %s %s %s (%.1f MiB, sha256:%s)" % (ref, rc["kind"], what, size / 1048576.0,
                                                   hashlib.sha256(manifest).hexdigest()))


# ---- Jenkins plugins: stand-in .hpi files where the update center's would be ---------------
# updates.jenkins.io and repo.jenkins-ci.org cannot be reached: tests/tooling/mkplugins.py
# writes each plugin as a zip whose manifest declares what the real plugin's does
# (tests/tooling/jenkins-manifests.txt), and its checksum_url's sha256. What fetches,
# verifies, checks the closure of and bakes them is the real code.

sys.stdout.flush()
r = subprocess.run([sys.executable, os.path.join(HERE, "mkplugins.py"), project, mirror, "tooling"])
if r.returncode != 0:
    die("mkplugins.py failed")
