#!/usr/bin/env python3
"""mkplugins.py: stand-ins for a role's Jenkins plugins, laid out as an imgbuild directory mirror.

  mkplugins.py PROJECT_DIR MIRROR_DIR [ROLE [MANIFESTS]]

updates.jenkins.io and repo.jenkins-ci.org cannot be reached from the test machines. For
every artifact of ROLE (default tooling, with the roles it extends) whose url is an update
center plugin download, this writes a STAND-IN .hpi at the url's place in the mirror and
its sha256 (bare, as Artifactory's .sha256 files are) at the checksum_url's place.

A stand-in is a zip whose META-INF/MANIFEST.MF is in the real format (CRLF, 72-byte lines
with continuations, as the maven-hpi-plugin writes it) and declares what the real plugin's
manifest declares, as MANIFESTS (default tests/tooling/jenkins-manifests.txt) lists it:
Short-Name, Plugin-Version, Jenkins-Version and Plugin-Dependencies, plus
"Imgbuild-Test-Stand-In: true". No Java class is in it: what these files exercise is
imgbuild's fetch, digest check and the layer's dependency-closure check, not Jenkins
loading them. Prints "plugin <id>:<version> stand-in ..." per plugin. A checksum the
download cache recorded for an older stand-in at the same URL is dropped (the cache keeps
a release's checksum for good).
"""

import hashlib
import io
import os
import re
import sys
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tools"))
from mirrorlib import role_chain, url_path, write  # noqa: E402
PLUGIN_URL = re.compile(r"https://updates\.jenkins\.io/download/plugins/([a-z0-9-]+)/([^/]+)/([a-z0-9-]+)\.hpi")


def die(msg):
    sys.exit("mkplugins.py: " + msg)


def load_manifests(path):
    """{id: [(version, jenkins_version, [(dep_id, version_or_None, optional)]), ...]}: an
    id may be listed at several versions (a test baking an older one); the first is the
    one the other plugins' dependencies ask for."""
    table = {}
    with open(path) as f:
        for n, line in enumerate(f, 1):
            line = line.split("#", 1)[0].split()
            if not line:
                continue
            if len(line) < 3 or ":" not in line[0]:
                die("%s:%d: not 'id:version Jenkins-Version group dependency...'" % (path, n))
            pid, ver = line[0].split(":", 1)
            deps = []
            for d in line[3:]:
                if "=" in d:
                    deps.append((d.split("=", 1)[0], d.split("=", 1)[1], True))
                elif d.endswith("?"):
                    deps.append((d[:-1], None, True))
                else:
                    deps.append((d, None, False))
            table.setdefault(pid, []).append((ver, line[1], deps))
    return table


def fold(header, value):
    """One manifest header as the JAR format writes it: lines of at most 72 bytes, each
    continuation starting with one space."""
    line = ("%s: %s" % (header, value)).encode()
    out = [line[:72]]
    rest = line[72:]
    while rest:
        out.append(b" " + rest[:71])
        rest = rest[71:]
    return b"".join(l + b"\r\n" for l in out)


def cache_dir():
    """imgbuild's download cache, as builder/util/fs.c finds it."""
    if os.environ.get("IMGBUILD_CACHE_DIR"):
        return os.path.abspath(os.environ["IMGBUILD_CACHE_DIR"])
    if os.environ.get("XDG_CACHE_HOME", "").startswith("/"):
        return os.path.join(os.environ["XDG_CACHE_HOME"], "imgbuild")
    return os.path.join(os.environ.get("HOME") or "/root", ".cache", "imgbuild")


def drop_stale_ref(a, digest):
    """The cache keeps a release's published checksum for good (refs/checksum/<sha256 of
    "checksum_url file">): right for the real files, wrong when a stand-in served at the
    same URL changed (an older version of this script). Such a ref is dropped, so that the
    build reads the mirror's checksum again; returns 1 when it did."""
    name = "%s %s" % (a["checksum_url"], a["url"].rsplit("/", 1)[1])
    ref = os.path.join(cache_dir(), "refs", "checksum", hashlib.sha256(name.encode()).hexdigest())
    try:
        with open(ref) as f:
            hexd = f.read().split("\t", 1)[0]
    except OSError:
        return 0
    if hexd == digest:
        return 0
    try:
        os.unlink(ref)
    except FileNotFoundError:
        pass
    return 1


def main():
    if len(sys.argv) not in (3, 4, 5):
        sys.exit(__doc__.split("\n\n")[1])
    project, mirror = sys.argv[1], sys.argv[2]
    role = sys.argv[3] if len(sys.argv) > 3 else "tooling"
    mpath = sys.argv[4] if len(sys.argv) > 4 else os.path.join(HERE, "jenkins-manifests.txt")
    table = load_manifests(mpath)
    plugins = []
    for a in [a for r in reversed(role_chain(project, role)) for a in r.get("artifacts") or []]:
        m = PLUGIN_URL.fullmatch(a.get("url", ""))
        if m:
            plugins.append((a, m.group(1), m.group(2)))
    for a, pid, ver in plugins:
        rows = [row for row in table.get(pid, []) if row[0] == ver]
        if not rows:
            die("%s: %s lists no manifest for %s:%s" % (a["name"], mpath, pid, ver))
        _, jver, deps = rows[0]
        if not a.get("checksum_url") or a.get("sha256"):
            die("%s: stand-ins are made for plugins with a checksum_url only" % a["name"])
        # A dependency asks for the version listed first for it (the one plugins.txt bakes:
        # the real manifests ask for that one or an older one); an optional one that is
        # not baked, for the version written with it.
        decl = []
        for did, dver, opt in deps:
            v = dver or (table[did][0][0] if did in table else None)
            if v is None:
                die("%s: dependency '%s' has no version (not listed)" % (pid, did))
            decl.append("%s:%s%s" % (did, v, ";resolution:=optional" if opt else ""))
        mf = b"Manifest-Version: 1.0\r\n" + b"Created-By: imgbuild tests/tooling/mkplugins.py\r\n"
        mf += fold("Long-Name", "imgbuild test stand-in for the Jenkins plugin " + pid)
        mf += fold("Short-Name", pid) + fold("Plugin-Version", ver)
        mf += fold("Hudson-Version", jver) + fold("Jenkins-Version", jver)
        if decl:
            mf += fold("Plugin-Dependencies", ",".join(decl))
        mf += b"Imgbuild-Test-Stand-In: true\r\n\r\n"
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
            for name, data in (("META-INF/MANIFEST.MF", mf),
                               ("imgbuild-test-stand-in.txt",
                                ("imgbuild test stand-in for %s %s: not the real plugin\n"
                                 % (pid, ver)).encode())):
                zi = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
                zi.external_attr = 0o644 << 16
                z.writestr(zi, data)
        hpi = buf.getvalue()
        digest = hashlib.sha256(hpi).hexdigest()
        for url, data in ((a["url"], hpi), (a["checksum_url"], (digest + "\n").encode())):
            write(url_path(mirror, url), data)
        stale = drop_stale_ref(a, digest)
        print("plugin %s:%s stand-in %s (%d bytes, sha256:%s, %d dependencies declared%s)"
              % (pid, ver, a["name"], len(hpi), digest, len(decl),
                 "; an older stand-in's checksum dropped from the cache" if stale else ""))


main()
