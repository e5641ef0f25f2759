#!/bin/sh
# Air-gapped installs: a signed bundle made on a connected build of a small project (two
# roles: base, and app with a pinned artifact and a tag-only image from a directory mirror),
# then, inside `unshare -n` (no network at all) with an EMPTY cache: import it and rebuild
# every role, the Debian bootstrap included (from the bundled .debs), and compare the images
# with the connected build's. Then tampering: a flipped byte, a removed member, an extra
# member, a manifest signed by another key, a changed manifest: each rejected with exit 1
# and nothing imported. Builds pass --no-verify: reading images back is 10-build's and
# 12-verify's, and it cost four appliance launches here. Measured on 2 shared cores under
# other builds: the offline import, bootstrap and build are most of it (mmdebstrap from
# local .debs alone took 98 s on a quieter machine). The first run on a machine whose
# cached root filesystem predates kept packages bootstraps once more from the mirror.
# shellcheck disable=SC2086
. "$(dirname "$0")/../lib.sh"
t_init 35-bundle
for p in unshare zstd openssl python3 mmdebstrap; do
	command -v $p >/dev/null || skip "$p is not installed (make deps)"
done
unshare -n true 2>/dev/null || skip "cannot make a network namespace here (unshare -n)"
bin=${IMGBUILD_SAN:-$IMGBUILD}
[ -x "$bin" ] || bin=$IMGBUILD
t0=$(date +%s)

# ---- the project: base plus one role with an artifact and an image ----
P=$T/project
t_copy_project "$P"
rm "$P/images/master.yaml" "$P/images/worker.yaml" "$P/images/k8s-node.yaml" "$P/images/tooling.yaml"
rm -rf "$P/stacks"
sed -i 's/^  size: .*/  size: 2G/; s/^  formats: .*/  formats: [qcow2]/' "$P/imgbuild.yaml"
cat >"$P/images/app.yaml" <<'EOF'
description: base plus a pinned artifact and a container image
extends: base
artifacts:
  - name: tool
    url: http://artifacts.invalid/imgbuild-test/tool.bin
    checksum_url: http://artifacts.invalid/imgbuild-test/tool.bin.sha256
    destination: /usr/local/bin/tool
    mode: "0755"
images:
  - registry.invalid/imgbuild-test/app:1
EOF
# The mirror: fixed bytes, so the cache entries (and refs) are the same on every run.
M=$T/mirror
python3 - "$M" <<'PY' || fail "cannot write the mirror"
import gzip, hashlib, io, json, os, sys, tarfile
m = sys.argv[1]
def write(p, data):
    os.makedirs(os.path.dirname(p), exist_ok=True)
    open(p, "wb").write(data)
tool = b"#!/bin/sh\necho imgbuild bundle test tool\n" * 100
write(f"{m}/artifacts.invalid/imgbuild-test/tool.bin", tool)
write(f"{m}/artifacts.invalid/imgbuild-test/tool.bin.sha256",
      (hashlib.sha256(tool).hexdigest() + "  tool.bin\n").encode())
raw = io.BytesIO()
with tarfile.open(fileobj=raw, mode="w", format=tarfile.GNU_FORMAT) as t:
    data = b"imgbuild bundle test image\n"
    ti = tarfile.TarInfo("etc/imgbuild-test-image")
    ti.mtime, ti.mode, ti.size = 0, 0o644, len(data)
    t.addfile(ti, io.BytesIO(data))
gz = io.BytesIO()
with gzip.GzipFile(fileobj=gz, mode="wb", mtime=0) as g:
    g.write(raw.getvalue())
base = f"{m}/registry.invalid/v2/imgbuild-test/app"
def blob(data):
    d = "sha256:" + hashlib.sha256(data).hexdigest()
    write(f"{base}/blobs/{d}", data)
    return {"digest": d, "size": len(data)}
cfg = json.dumps({"architecture": "amd64", "os": "linux",
                  "rootfs": {"type": "layers", "diff_ids": ["sha256:" + hashlib.sha256(raw.getvalue()).hexdigest()]}},
                 sort_keys=True).encode()
man = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                  "config": dict(mediaType="application/vnd.oci.image.config.v1+json", **blob(cfg)),
                  "layers": [dict(mediaType="application/vnd.oci.image.layer.v1.tar+gzip", **blob(gz.getvalue()))]},
                 sort_keys=True).encode()
write(f"{base}/manifests/1", man)
PY
expect_exit 0 "$bin" -C "$P" validate

# ---- keys ----
mkdir -p "$T/keys"
expect_exit 0 "$bin" key generate "$T/keys/site"
expect_exit 0 "$bin" key generate "$T/keys/other"
[ "$(stat -c %a "$T/keys/site.key")" = 600 ] || fail "private key mode is $(stat -c %a "$T/keys/site.key")"
openssl pkey -in "$T/keys/site.key" -noout -text 2>/dev/null | grep -q ED25519 || fail "site.key is not an Ed25519 key for openssl"
before=$(sha256sum <"$T/keys/site.key")
expect_exit 2 "$bin" key generate "$T/keys/site"
grep -q "refusing to overwrite" "$T/err" || fail "key generate over a key: $(cat "$T/err")"
[ "$(sha256sum <"$T/keys/site.key")" = "$before" ] || fail "key generate overwrote a key"
ok "key generate: Ed25519 PEM, private key 0600, refuses to overwrite"

# ---- connected: bundle (fetching what it lacks), build, bundle with the images ----
# The default cache: its root filesystem is reused. On a first run whose cached root
# filesystem predates kept packages, bundle create bootstraps it again to keep its .debs.
# That happens before the build uses it.
t1=$(date +%s)
# The bundle carried to the site (cache entries and spec); made twice: the same bytes.
expect_exit 0 "$bin" -C "$P" bundle create --key "$T/keys/site.key" -o "$T/site.bundle" --mirror "$M"
cat "$T/out"
expect_exit 0 "$bin" -C "$P" bundle create --key "$T/keys/site.key" -o "$T/again.bundle" --mirror "$M"
cmp -s "$T/site.bundle" "$T/again.bundle" || fail "two bundles of the same inputs differ"
rm -f "$T/again.bundle"
expect_exit 0 "$bin" -C "$P" all --offline --no-verify
# And one that also holds the images.
expect_exit 0 "$bin" -C "$P" bundle create app base --key "$T/keys/site.key" -o "$T/images.bundle" --with-images --offline
echo "connected: three bundles and a build: $(( $(date +%s) - t1 ))s; bundle $(du -h "$T/site.bundle" | cut -f1), with images $(du -h "$T/images.bundle" | cut -f1)"
zstd -dcq "$T/images.bundle" | tar -t >"$T/images.members" || fail "the images bundle is not a zstd tar"
for r in base app; do
	grep -qx "images/$r.qcow2" "$T/images.members" && grep -qx "images/$r.manifest.json" "$T/images.members" ||
		fail "--with-images: no images/$r.qcow2 or its manifest"
done
zstd -dcq "$T/site.bundle" >"$T/site.tar" || fail "the bundle is not zstd"
tar -tf "$T/site.tar" >"$T/members"
grep -q "^images/" "$T/members" && fail "images in a bundle made without --with-images"
[ "$(head -2 "$T/members" | tr '\n' ' ')" = "MANIFEST MANIFEST.sig " ] || fail "manifest and signature do not come first"
tar -xOf "$T/site.tar" MANIFEST >"$T/MANIFEST"
for want in "^role app$" "^role base$" " project/imgbuild.yaml$" " project/images/app.yaml$" " cache/refs/rootfs-debs/" " cache/refs/checksum/" " cache/refs/oci-tag/"; do
	grep -q "$want" "$T/MANIFEST" || fail "the manifest lacks '$want'"
done
grep -q "^xfile [0-9a-f]* [0-9]* project/ansible-free-scripts/firstboot.sh$" "$T/MANIFEST" ||
	fail "the manifest does not mark an executable script: $(grep firstboot.sh "$T/MANIFEST")"
[ "$(grep -Ec '^x?file ' "$T/MANIFEST")" = "$(( $(wc -l <"$T/members") - 2 ))" ] || fail "manifest and members differ in number"
n_blobs=$(grep -c ' cache/blobs/' "$T/MANIFEST")
[ "$n_blobs" -gt 150 ] || fail "only $n_blobs cache entries: the .debs are missing"
tar -tvf "$T/site.tar" | awk '{print $2, $4, $5}' | sort -u >"$T/headers"
[ "$(wc -l <"$T/headers")" = 1 ] && grep -q '^root/root\|^0/0' "$T/headers" || fail "member headers vary: $(head "$T/headers")"
ok "bundle create: $n_blobs cache entries and the spec ($(grep -c ' project/' "$T/MANIFEST") files); --with-images adds the images; deterministic bytes and headers"

# The signing key and an older bundle sitting in the project are never packed.
cp "$T/keys/site.key" "$P/site.key"
echo old >"$P/old.bundle"
expect_exit 0 "$bin" -C "$P" bundle create base --key "$P/site.key" -o "$P/old.bundle" --offline
zstd -dcq "$P/old.bundle" | tar -t >"$T/base.members"
grep -E 'site\.key|old\.bundle' "$T/base.members" && fail "the key or the bundle itself was packed"
grep -qx project/imgbuild.yaml "$T/base.members" || fail "the base bundle lacks the spec"
rm -f "$P/site.key" "$P/old.bundle"
# Usage errors: exit 2.
expect_exit 2 "$bin" -C "$P" bundle create -o "$T/x.bundle"
expect_exit 2 "$bin" -C "$P" bundle create nosuchrole --key "$T/keys/site.key" -o "$T/x.bundle"
expect_exit 2 "$bin" bundle verify --key "$T/keys/site.pub"
expect_exit 2 "$bin" bundle import --key "$T/keys/site.pub" -o "$T/keys" "$T/site.bundle"
expect_exit 2 "$bin" bundle verify --key "$T/keys/site.pub" --with-images "$T/site.bundle"
[ ! -e "$T/x.bundle" ] || fail "a failed bundle create left its output"
ok "the key and the bundle itself are never packed; usage errors exit 2"

expect_exit 0 "$bin" bundle verify --key "$T/keys/site.pub" "$T/site.bundle"
grep -q "signature good" "$T/out" || fail "verify says: $(cat "$T/out")"
expect_exit 1 "$bin" bundle verify --key "$T/keys/other.pub" "$T/site.bundle"
grep -q "signature does not match" "$T/err" || fail "verify with another key: $(cat "$T/err")"
expect_exit 2 "$bin" bundle verify --key "$T/keys/site.key" "$T/site.bundle"
ok "bundle verify: good with the signer's key, exit 1 with another key, exit 2 given a private key"

# ---- offline: no network at all, an empty cache ----
t2=$(date +%s)
OFF=$T/offline
mkdir -p "$OFF"
cat >"$T/offline.sh" <<EOF
set -e
ip -o link show | grep -v ' lo:' && { echo "a network interface besides lo exists"; exit 3; }
export IMGBUILD_CACHE_DIR=$OFF/cache
"$bin" bundle import --key "$T/keys/site.pub" -o "$OFF/site" "$T/site.bundle"
"$bin" -C "$OFF/site/project" all --offline --no-verify -v
EOF
unshare -n sh "$T/offline.sh" >"$T/offline.out" 2>"$T/offline.err" || { cat "$T/offline.out" "$T/offline.err"; fail "offline import and build failed"; }
# An executable bit is part of a role's input digest: it must survive the bundle.
[ -x "$OFF/site/project/ansible-free-scripts/firstboot.sh" ] || fail "the imported project lost the scripts' executable bit"
grep -q "from the cached packages, offline" "$T/offline.err" "$T/offline.out" || fail "the offline build did not bootstrap from the bundled packages: $(cat "$T/offline.err")"
echo "offline import and build of every role (bootstrap included): $(( $(date +%s) - t2 ))s"
for r in base app; do
	a=$(sums "$P/out/$r.qcow2" | cut -d' ' -f1)
	b=$(sums "$OFF/site/project/out/$r.qcow2" | cut -d' ' -f1)
	[ "$a" = "$b" ] || fail "$r: the offline image differs from the connected build's ($a vs $b)"
done
ok "offline in an empty network namespace: imported, bootstrapped from the bundled .debs, every role rebuilt; images identical (sha256) to the connected build's"

# ---- tampering: each rejected whole, exit 1, nothing imported ----
t3=$(date +%s)
python3 - "$T/site.tar" "$T" <<'PY' || fail "cannot make the tampered bundles"
import io, sys, tarfile
src, out = sys.argv[1], sys.argv[2]
members = []
with tarfile.open(src) as t:
    for m in t:
        members.append((m, t.extractfile(m).read()))
def write(name, items):
    with tarfile.open(f"{out}/{name}.tar", "w", format=tarfile.PAX_FORMAT) as t:
        for m, data in items:
            m = tarfile.TarInfo(m) if isinstance(m, str) else m
            m.size = len(data)
            t.addfile(m, io.BytesIO(data))
names = [m.name for m, _ in members]
deb = next(i for i, n in enumerate(names) if n.startswith("cache/blobs/") and len(members[i][1]) > 100000)
flip = list(members)
b = bytearray(flip[deb][1]); b[len(b) // 2] ^= 0x01; flip[deb] = (flip[deb][0], bytes(b))
write("flip", flip)
write("removed", [x for i, x in enumerate(members) if i != deb])
write("extra", members + [("project/extra.sh", b"#!/bin/sh\necho not in the manifest\n")])
spec = names.index("project/imgbuild.yaml")
swapped = list(members)
swapped[spec] = (swapped[spec][0], swapped[spec][1].replace(b"bookworm", b"bookwerm"))
write("content", swapped)
man = members[0][1].replace(b"\nrole app\n", b"\nrole app\nrole evil\n")
write("manifest", [(members[0][0], man)] + members[1:])
open(f"{out}/MANIFEST.raw", "wb").write(members[0][1])
PY
# The same manifest signed by another key.
openssl pkeyutl -sign -inkey "$T/keys/other.key" -rawin -in "$T/MANIFEST.raw" -out "$T/other.sig" 2>"$T/openssl.err" ||
	{ cat "$T/openssl.err"; fail "openssl could not sign with the other key"; }
printf 'ed25519 %s\n' "$(base64 -w0 <"$T/other.sig")" >"$T/MANIFEST.sig.other"
mkdir -p "$T/resign" && (cd "$T/resign" && cp "$T/MANIFEST.raw" MANIFEST && cp "$T/MANIFEST.sig.other" MANIFEST.sig &&
	tar -xf "$T/site.tar" --exclude MANIFEST --exclude MANIFEST.sig && tar --format=pax -cf "$T/othersig.tar" -T "$T/members") ||
	fail "cannot make the bundle signed by another key"
rm -rf "$T/resign"
check_rejected() { # NAME WHAT-THE-ERROR-SAYS
	zstd -q -1 -f "$T/$1.tar" -o "$T/$1.bundle" || fail "zstd $1"
	rm -f "$T/$1.tar"
	rm -rf "$T/tcache" "$T/tsite"
	IMGBUILD_CACHE_DIR=$T/tcache expect_exit 1 "$bin" bundle import --key "$T/keys/site.pub" -o "$T/tsite" "$T/$1.bundle"
	grep -q "$2" "$T/err" || fail "$1: the error does not say '$2': $(cat "$T/err")"
	grep -q "nothing imported" "$T/err" || fail "$1: the error does not say nothing was imported"
	[ -z "$(find "$T/tcache" -type f)" ] || fail "$1: files left in the cache: $(find "$T/tcache" -type f | head -3)"
	[ ! -e "$T/tsite" ] && [ -z "$(ls -d "$T/tsite".* 2>/dev/null)" ] || fail "$1: a project directory was left"
	expect_exit 1 "$bin" bundle verify --key "$T/keys/site.pub" "$T/$1.bundle"
	rm -f "$T/$1.bundle"
	echo "rejected ($1): $(cut -c1-160 "$T/err" | head -1)"
}
check_rejected flip "sha256 mismatch"
check_rejected removed "is missing"
check_rejected extra "not in the manifest"
check_rejected content "project/imgbuild.yaml': sha256 mismatch"
check_rejected manifest "signature does not match"
check_rejected othersig "signature does not match"
ok "tampering: a flipped byte, a removed member, an extra member, a changed file, a changed manifest, another key's signature: each rejected, exit 1, nothing imported ($(( $(date +%s) - t3 ))s)"
rm -f "$T/site.tar"
echo "35-bundle took $(( $(date +%s) - t0 ))s"
