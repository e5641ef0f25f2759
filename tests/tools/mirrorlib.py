"""mirrorlib.py: what the tests' mirror writers share (tests/k8s/mkpayloads.py,
tests/tooling/mkimages.py, tests/tooling/mkplugins.py): a role's spec with the roles it
extends, where `imgbuild --mirror DIR` looks for a URL or a container image, writes that
never leave half a file, and OCI blobs and manifests in that layout.

The layout is builder/fetch/mirror.c's: https://host/path at DIR/host/path, registry R's
repository P at DIR/R/v2/P/{manifests/<tag>,blobs/<digest>}.
"""

import hashlib
import json
import os

import yaml

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


def role_chain(project, name):
    """The role's spec and those it extends, as dicts, the root first."""
    out = []
    while name:
        with open(os.path.join(project, "images", name + ".yaml")) as f:
            r = yaml.safe_load(f) or {}
        out.insert(0, r)
        name = r.get("extends")
    return out


def url_path(mirror, url):
    """Where the mirror holds a URL's file."""
    rest = url.split("://", 1)[1]
    return os.path.join(mirror, rest.split("?", 1)[0])


def write(path, data, mode=0o644):
    """Write by rename: a reader (or a test killed midway) never sees part of a file."""
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "wb") as f:
        f.write(data)
    os.chmod(tmp, mode)
    os.rename(tmp, path)


def split_ref(ref):
    """registry, repository, tag of an image reference, as Docker resolves short names."""
    name, tag = ref.split("@", 1)[0], "latest"
    last = name.rsplit("/", 1)[-1]
    if ":" in last:
        name, tag = name.rsplit(":", 1)
    first = name.split("/", 1)[0]
    if "." in first or ":" in first or first == "localhost":
        registry, repo = name.split("/", 1)
    else:
        registry, repo = "docker.io", name
    if registry in ("docker.io", "index.docker.io"):
        registry = "registry-1.docker.io"
        if "/" not in repo:
            repo = "library/" + repo
    return registry, repo, tag


class Repository:
    """One image reference's repository in the mirror."""

    def __init__(self, mirror, ref):
        self.registry, self.repo, self.tag = split_ref(ref)
        self.base = os.path.join(mirror, self.registry, "v2", self.repo)

    def blob(self, data):
        """Store data as a blob; its descriptor's digest and size."""
        d = "sha256:" + hashlib.sha256(data).hexdigest()
        write(os.path.join(self.base, "blobs", d), data)
        return {"digest": d, "size": len(data)}

    def put_manifest(self, config, layers):
        """Store config (bytes) and an OCI image manifest naming it and layers
        (descriptors with their mediaType) under the tag; the manifest's bytes."""
        manifest = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                               "config": dict(mediaType=OCI_CONFIG, **self.blob(config)),
                               "layers": layers}, sort_keys=True).encode()
        write(os.path.join(self.base, "manifests", self.tag), manifest)
        return manifest
