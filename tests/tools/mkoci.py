#!/usr/bin/env python3
"""mkoci.py: small OCI images for the tests, built offline into one OCI image layout.

  mkoci.py LAYOUT_DIR

Tags in the layout (index.json, org.opencontainers.image.ref.name):
  tiny     linux/amd64 image manifest: /bin/busybox (when a static one is installed) and
           /etc/imgbuild-test; its empty-directory layer appears twice, as docker images do
  multi    image index: linux/arm64/v8 (a dummy layer) and linux/amd64
  noamd    image index with linux/arm64 and linux/s390x only
  tamper   linux/amd64 image manifest with a layer of its own (the test corrupts it)
Everything is deterministic (gzip mtime 0, tar mtime 0, owners 0), so the digests are
stable. Prints shell assignments NAME=VALUE for the digests the test checks against.
"""

import gzip
import hashlib
import io
import json
import os
import sys
import tarfile

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"

out = sys.argv[1]
blobdir = os.path.join(out, "blobs", "sha256")
os.makedirs(blobdir, exist_ok=True)
printed = []


def put(data):
    d = hashlib.sha256(data).hexdigest()
    with open(os.path.join(blobdir, d), "wb") as f:
        f.write(data)
    return "sha256:" + d


def desc(mt, data, **extra):
    d = {"mediaType": mt, "digest": put(data), "size": len(data)}
    d.update(extra)
    return d


def layer(files):
    """files: [(path, bytes or None for a directory, mode)] -> (gzip bytes, diff_id)."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as t:
        for path, data, mode in files:
            ti = tarfile.TarInfo(path)
            ti.mtime, ti.uid, ti.gid, ti.mode = 0, 0, 0, mode
            if data is None:
                ti.type = tarfile.DIRTYPE
                t.addfile(ti)
            else:
                ti.size = len(data)
                t.addfile(ti, io.BytesIO(data))
    tar = raw.getvalue()
    gz = io.BytesIO()
    with gzip.GzipFile(fileobj=gz, mode="wb", mtime=0) as g:
        g.write(tar)
    return gz.getvalue(), "sha256:" + hashlib.sha256(tar).hexdigest()


def image(arch, layers, variant=None):
    """A config and manifest for these layers; returns (manifest bytes, layer digests)."""
    gzs = [layer(f) for f in layers]
    cfg = {"architecture": arch, "os": "linux",
           "config": {"Cmd": ["/bin/busybox", "echo", "hello from tiny"]},
           "rootfs": {"type": "layers", "diff_ids": [d for _, d in gzs]}}
    if variant:
        cfg["variant"] = variant
    cfgb = json.dumps(cfg, sort_keys=True).encode()
    m = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
         "config": desc(OCI_CONFIG, cfgb),
         "layers": [desc(OCI_LAYER, g) for g, _ in gzs]}
    return json.dumps(m, sort_keys=True).encode(), [l["digest"] for l in m["layers"]], \
        m["config"]["digest"]


def index(entries):
    i = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}
    return json.dumps(i, sort_keys=True).encode()


def var(name, value):
    printed.append("%s=%s" % (name, value))


busybox = None
for p in ("/bin/busybox", "/usr/bin/busybox"):
    if os.path.exists(p):
        with open(p, "rb") as f:
            data = f.read()
        # Only a static one (no PT_INTERP program header) runs in an image with no libc.
        if data[:4] == b"\x7fELF" and data[4] == 2:
            phoff = int.from_bytes(data[0x20:0x28], "little")
            phentsize = int.from_bytes(data[0x36:0x38], "little")
            phnum = int.from_bytes(data[0x38:0x3a], "little")
            types = [int.from_bytes(data[phoff + i * phentsize:phoff + i * phentsize + 4],
                                    "little") for i in range(phnum)]
            if 3 not in types:
                busybox = data
                break
var("have_busybox", 1 if busybox else 0)

empty = [("tmp", None, 0o1777)]
files = [("bin", None, 0o755), ("etc", None, 0o755),
         ("etc/imgbuild-test", b"tiny image for imgbuild's tests\n", 0o644)]
if busybox:
    files.append(("bin/busybox", busybox, 0o755))
tops = []

tiny, tiny_layers, tiny_config = image("amd64", [empty, files, empty])
tops.append(desc(OCI_MANIFEST, tiny, annotations={"org.opencontainers.image.ref.name": "tiny"}))
var("tiny_manifest", tops[-1]["digest"])
var("tiny_config", tiny_config)
var("tiny_layers", "'%s'" % " ".join(tiny_layers))

amd, amd_layers, _ = image("amd64", [[("etc", None, 0o755), ("etc/arch", b"amd64\n", 0o644)]])
arm, _, _ = image("arm64", [[("etc", None, 0o755), ("etc/arch", b"arm64 dummy\n", 0o644)]],
                  variant="v8")
arm_d = desc(OCI_MANIFEST, arm, platform={"architecture": "arm64", "os": "linux",
                                          "variant": "v8"})
amd_d = desc(OCI_MANIFEST, amd, platform={"architecture": "amd64", "os": "linux"})
multi = index([arm_d, amd_d])
tops.append(desc(OCI_INDEX, multi, annotations={"org.opencontainers.image.ref.name": "multi"}))
var("multi_index", tops[-1]["digest"])
var("multi_amd64", amd_d["digest"])
var("multi_arm64", arm_d["digest"])
var("multi_amd64_layer", amd_layers[0])

s390, _, _ = image("s390x", [[("etc", None, 0o755), ("etc/arch", b"s390x\n", 0o644)]])
noamd = index([arm_d, desc(OCI_MANIFEST, s390, platform={"architecture": "s390x",
                                                         "os": "linux"})])
tops.append(desc(OCI_INDEX, noamd, annotations={"org.opencontainers.image.ref.name": "noamd"}))
var("noamd_index", tops[-1]["digest"])

tam, tam_layers, _ = image("amd64", [[("etc", None, 0o755),
                                       ("etc/tamper", b"tamper me\n" * 400, 0o644)]])
tops.append(desc(OCI_MANIFEST, tam, annotations={"org.opencontainers.image.ref.name": "tamper"}))
var("tamper_manifest", tops[-1]["digest"])
var("tamper_layer", tam_layers[0])

with open(os.path.join(out, "oci-layout"), "w") as f:
    f.write('{"imageLayoutVersion":"1.0.0"}')
with open(os.path.join(out, "index.json"), "w") as f:
    json.dump({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": tops}, f)
print("\n".join(printed))
