#!/usr/bin/env python3
"""mkpayloads.py: test payloads for the Kubernetes roles, laid out as an imgbuild mirror.

  mkpayloads.py PROJECT_DIR MIRROR_DIR ROLE...

dl.k8s.io, github.com, registry.k8s.io, Docker Hub and quay.io cannot be reached from the
test machines. This reads the roles' specs (their extends chains included) and writes, for
every pinned artifact URL and container image, a stand-in at the place `imgbuild --mirror
MIRROR_DIR` looks for it: MIRROR_DIR/<host>/<path> for files (plus the published checksum
file the spec names) and MIRROR_DIR/<registry>/v2/<repository>/{manifests,blobs} for
images. The code paths that fetch, verify and bake them stay the real ones.

What the stand-ins are, by artifact name (an artifact this script does not know fails it):
  containerd   REAL: Debian's containerd, containerd-shim-runc-v2 and ctr (1.6, not the
               pinned 1.7) in the upstream tarball layout
  runc         REAL: Debian's runc
  cni-plugins  REAL: Debian's containernetworking-plugins, in the upstream tarball layout
  kubeadm, kubelet, kubectl, crictl, istioctl
               STAND-INS: shell scripts that log their arguments (and the configuration
               file kubeadm is given) under /var/log/imgbuild-test/ and say on stderr that
               they are stand-ins; `kubeadm init` writes admin.conf, kubelet.conf and
               kubelet's config.yaml as an empty cluster would, so the steps after it run
  images       STAND-INS: one small linux/amd64 OCI image per reference, holding
               /etc/imgbuild-test-image with the reference it stands for
Prints one line per payload: "<kind> <name> <real|stand-in> <where>".
"""

import gzip
import hashlib
import io
import json
import os
import sys
import tarfile

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tools"))
from mirrorlib import OCI_LAYER, Repository, role_chain, url_path, write  # noqa: E402

project, mirror, roles = sys.argv[1], sys.argv[2], sys.argv[3:]
if not roles:
    sys.exit("usage: mkpayloads.py PROJECT_DIR MIRROR_DIR ROLE...")


artifacts, images = {}, set()
for role in roles:
    for r in role_chain(project, role):
        for a in r.get("artifacts") or []:
            artifacts[a["name"]] = a
        images.update(r.get("images") or [])


def tar_of(members, gz=True):
    """members: [(name, bytes, mode)] -> a deterministic (gzipped) tar."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as t:
        for name, data, mode in members:
            ti = tarfile.TarInfo(name)
            ti.mtime, ti.uid, ti.gid, ti.mode, ti.size = 0, 0, 0, mode, len(data)
            t.addfile(ti, io.BytesIO(data))
    if not gz:
        return raw.getvalue()
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0) as g:
        g.write(raw.getvalue())
    return out.getvalue()


def host_file(path):
    with open(path, "rb") as f:
        return f.read()


STANDIN_HEAD = """#!/bin/sh
# imgbuild test stand-in for {name} {version}: the real binary cannot be downloaded on
# the test machines. It logs how it was called; it does not run Kubernetes.
log=/var/log/imgbuild-test
mkdir -p "$log"
printf '%s\\n' "$*" >>"$log/{name}.args"
echo "imgbuild-test: stand-in {name} called: $*" >&2
"""

KUBEADM = STANDIN_HEAD + r"""
config=""
prev=""
for a in "$@"; do
	[ "$prev" = --config ] && config=$a
	case "$a" in --config=*) config=${a#--config=} ;; esac
	prev=$a
done
case "$1 ${2:-}" in
"version "*) echo "{version}" ;;
"config images")
	for i in {images}; do echo "$i"; done ;;
"init "*)
	[ -n "$config" ] && cp "$config" "$log/kubeadm-init.yaml"
	mkdir -p /etc/kubernetes /var/lib/kubelet
	printf 'apiVersion: v1\nkind: Config\n# stand-in: no API server runs\n' >/etc/kubernetes/admin.conf
	chmod 0600 /etc/kubernetes/admin.conf
	cp /etc/kubernetes/admin.conf /etc/kubernetes/kubelet.conf
	printf 'apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\ncgroupDriver: systemd\n' >/var/lib/kubelet/config.yaml
	echo "imgbuild-test: stand-in kubeadm init done (no control plane was started)" >&2 ;;
"join "*)
	[ -n "$config" ] && cp "$config" "$log/kubeadm-join.yaml"
	mkdir -p /etc/kubernetes /var/lib/kubelet
	printf 'apiVersion: v1\nkind: Config\n# stand-in\n' >/etc/kubernetes/kubelet.conf
	printf 'apiVersion: kubelet.config.k8s.io/v1beta1\nkind: KubeletConfiguration\ncgroupDriver: systemd\n' >/var/lib/kubelet/config.yaml
	echo "imgbuild-test: stand-in kubeadm join done (no node joined)" >&2 ;;
esac
exit 0
"""

KUBELET = STANDIN_HEAD + r"""
case "${1:-}" in --version) echo "Kubernetes {version}"; exit 0 ;; esac
# As the real kubelet does before kubeadm ran: fail, and let systemd restart it.
[ -f /var/lib/kubelet/config.yaml ] || { echo "stand-in kubelet: no /var/lib/kubelet/config.yaml yet" >&2; exit 1; }
exec sleep infinity
"""

KUBECTL = STANDIN_HEAD + r"""
case "${1:-}" in version) echo "Client Version: {version}"; exit 0 ;; esac
exit 0
"""

GENERIC = STANDIN_HEAD + "exit 0\n"


def version_of(a):
    for part in a["url"].split("/"):
        if part.startswith("v") and part[1:2].isdigit():
            return part
    return "unknown"


def control_plane_images():
    return " ".join(sorted(images))


def make_artifact(a):
    name, version = a["name"], version_of(a)
    if name == "containerd":
        members = [(m, host_file("/usr/bin/" + os.path.basename(m)), 0o755)
                   for m in ("bin/containerd", "bin/containerd-shim-runc-v2", "bin/ctr")]
        return tar_of(members), "real", "Debian containerd binaries"
    if name == "runc":
        return host_file("/usr/sbin/runc"), "real", "Debian runc"
    if name == "cni-plugins":
        members = []
        for x in a.get("extract") or []:
            m = x["member"]
            members.append((m, host_file("/usr/lib/cni/" + os.path.basename(m)), 0o755))
        return tar_of(members), "real", "Debian containernetworking-plugins"
    scripts = {"kubeadm": KUBEADM, "kubelet": KUBELET, "kubectl": KUBECTL,
               "crictl": GENERIC, "istioctl": GENERIC}
    if name not in scripts:
        sys.exit("mkpayloads.py: no stand-in for artifact '%s'" % name)
    text = scripts[name].replace("{name}", name).replace("{version}", version) \
        .replace("{images}", control_plane_images())
    data = text.encode()
    if a.get("extract"):
        members = [(x["member"], data, 0o755) for x in a["extract"]]
        url = a["url"]
        return (tar_of(members) if not url.endswith(".zip") else None), "stand-in", "script"
    return data, "stand-in", "script"


for name in sorted(artifacts):
    a = artifacts[name]
    data, kind, what = make_artifact(a)
    path = url_path(mirror, a["url"])
    write(path, data, 0o755)
    digest = hashlib.sha256(data).hexdigest()
    if a.get("checksum_url"):
        cu = a["checksum_url"]
        base = os.path.basename(a["url"])
        # The formats the projects publish: a bare digest, or "<digest>  <file>" lines.
        line = digest + "\n" if "//dl.k8s.io/" in cu else "%s  %s\n" % (digest, base)
        write(url_path(mirror, cu), line.encode())
    elif a.get("sha256") and a["sha256"] != digest:
        sys.exit("mkpayloads.py: artifact '%s' is pinned by sha256; a stand-in cannot match"
                 % name)
    print("artifact %s %s %s" % (name, kind, what))

# ---- images ----

for ref in sorted(images):
    if "@" in ref:
        sys.exit("mkpayloads.py: image '%s' is pinned by digest; a stand-in cannot match" % ref)
    repo = Repository(mirror, ref)
    marker = ("%s\nimgbuild test stand-in image\n" % ref).encode()
    raw = tar_of([("etc/imgbuild-test-image", marker, 0o644)], gz=False)
    gz = io.BytesIO()
    with gzip.GzipFile(fileobj=gz, mode="wb", mtime=0) as g:
        g.write(raw)
    layer = gz.getvalue()
    cfg = json.dumps({"architecture": "amd64", "os": "linux",
                      "config": {"Cmd": ["/bin/true"], "Labels": {"imgbuild.test": ref}},
                      "rootfs": {"type": "layers",
                                 "diff_ids": ["sha256:" + hashlib.sha256(raw).hexdigest()]}},
                     sort_keys=True).encode()
    manifest = repo.put_manifest(cfg, [dict(mediaType=OCI_LAYER, **repo.blob(layer))])
    print("image %s stand-in sha256:%s" % (ref, hashlib.sha256(manifest).hexdigest()))
