#!/bin/sh
# `base: image:`: a role built on a disk image instead of a bootstrap. The image is one
# imgbuild builds here (base, qcow2), served by the loopback test server; the role on it
# adds a file, a unit, a Debian package (from deb.debian.org, resolved on the host against
# the image's dpkg status and fetched into the cache) and a script, all in one appliance
# launch. The base image's partitions are renumbered as Debian's cloud images number them
# (root 1, BIOS boot 14, ESP 15; root typed Linux data), so the build's verify (on by
# default) reads a vendor-like layout. Checked: the spec errors, a wrong sha256 (exit 1,
# nothing written, nothing cached), the build's verify (layout, sealing, manifest and the
# role's declared checks: files, unit, package), what verify does not check read back
# with debugfs (no launch), the manifests beside and inside the image, and that a
# second build with the same pin downloads nothing.
. "$(dirname "$0")/../lib.sh"
t_init 14-image-base
for p in qemu-img python3 apt-get sgdisk sfdisk debugfs; do
	command -v $p >/dev/null || skip "$p is missing"
done
PIDS=""
cleanup() { for pid in $PIDS; do kill "$pid" 2>/dev/null; done; }
trap cleanup EXIT
trap 'exit 1' INT TERM
t0=$(date +%s)

P=$T/proj
mkdir -p "$P"
for f in ansible-free-scripts cloud-init images stacks imgbuild.yaml; do
	cp -r "$TOP/$f" "$P/"
done
sed -i 's/^  size: .*/  size: 1G/' "$P/imgbuild.yaml"
# Where KVM is broken, no appliance launch of this test tries it first.
[ "$(qemu_accel)" = tcg ] && export LIBGUESTFS_BACKEND_SETTINGS=force_tcg
# The base image: a plain imgbuild build of `base` (the root filesystem comes from the
# shared cache when another test or build made it); not verified here, 10-build does.
"$IMGBUILD" -C "$P" build base --no-verify >"$T/base.out" 2>"$T/base.err" || { cat "$T/base.err"; fail "building base"; }
echo "base built in $(( $(date +%s) - t0 ))s"
mkdir -p "$T/www"
# A vendor's layout (not booted here: GRUB's core.img still names its partition 3).
qemu-img convert -f qcow2 -O raw "$P/out/base.qcow2" "$T/vendor.raw"
sgdisk --transpose=1:14 --transpose=2:15 --transpose=3:1 --typecode=1:8300 "$T/vendor.raw" \
	>"$T/sgdisk.out" 2>&1 || { cat "$T/sgdisk.out"; fail "sgdisk"; }
qemu-img convert -f raw -O qcow2 "$T/vendor.raw" "$T/www/base.qcow2"
rm "$T/vendor.raw"
sha=$(sha256sum <"$T/www/base.qcow2" | cut -d' ' -f1)
python3 "$TOP/tests/servers/httpd.py" --root "$T/www" --port 0 --port-file "$T/http.port" \
	--log "$T/http.log" --max-seconds 900 &
PIDS="$PIDS $!"
i=0
until [ -s "$T/http.port" ]; do i=$((i + 1)); [ $i -lt 50 ] || fail "httpd did not start"; sleep 0.2; done
URL=http://127.0.0.1:$(cat "$T/http.port")/base.qcow2
# A cache of its own: "downloaded once" must not depend on earlier runs.
export IMGBUILD_CACHE_DIR=$T/cache
mkdir -p "$IMGBUILD_CACHE_DIR"

mkdir -p "$P/images/files/cloudy"
cp "$P/cloud-init/base.yaml" "$P/cloud-init/cloudy.yaml" # what `validate` renders a seed from
printf 'built on an image\n' >"$P/images/files/cloudy/motd"
cat >"$P/images/files/cloudy/cloudy.service" <<'EOF'
[Unit]
Description=imgbuild test unit
[Service]
Type=oneshot
ExecStart=/bin/true
[Install]
WantedBy=multi-user.target
EOF
cat >"$P/images/files/cloudy/script.sh" <<'EOF'
#!/bin/sh
set -e
# Runs in the image after the packages and the layer: both are there.
cat /etc/cloudy-motd >/etc/cloudy-script-ran
/usr/bin/hello >>/etc/cloudy-script-ran
echo "role=$IMGBUILD_ROLE" >>/etc/cloudy-script-ran
EOF
motd_sha=$(sha256sum <"$P/images/files/cloudy/motd" | cut -d' ' -f1)
ran_sha=$(printf 'built on an image\nHello, world!\nrole=cloudy\n' | sha256sum | cut -d' ' -f1)
role() { # role NAME SHA [FORMAT]
	cat >"$P/images/$1.yaml" <<EOF
description: a role on an image
base:
  image:
    url: $URL
    sha256: $2
    format: ${3:-qcow2}
packages: [hello]
files:
  - source: images/files/cloudy/motd
    destination: /etc/cloudy-motd
    mode: "0640"
    owner: "0:4"
  - source: images/files/cloudy/cloudy.service
    destination: /etc/systemd/system/cloudy.service
units:
  enable: [cloudy.service]
scripts:
  - images/files/cloudy/script.sh
# What \`imgbuild verify --role\` holds the image to (also a build, where one verifies).
checks:
  files:
    - path: /etc/cloudy-motd
      mode: "0640"
      owner: "0:4"
      sha256: $motd_sha
    - path: /etc/cloudy-script-ran
      sha256: $ran_sha
  units: [cloudy.service]
  packages:
    hello: "*"
EOF
}

# ---- spec errors: one line naming file:line:column, exit 2 ----
role cloudy "$sha"
"$IMGBUILD" -C "$P" validate >"$T/out" 2>"$T/err" || { cat "$T/err"; fail "validate"; }
bad() { # bad NAME EXPECTED-ERROR: $P/images/cloudy.yaml was edited; restore after
	for bin in $(binaries); do
		expect_exit 2 "$bin" -C "$P" validate
		grep -qF "imgbuild: error: $2" "$T/err" || fail "$1: $(cat "$T/err")"
	done
	role cloudy "$sha"
}
sed -i '5d' "$P/images/cloudy.yaml" # the image's sha256
bad missing-sha256 "images/cloudy.yaml:4:5: missing required key 'sha256' in 'image'"
sed -i "5s/sha256: .*/sha256: ${sha%?}X/" "$P/images/cloudy.yaml"
bad bad-hex "images/cloudy.yaml:5:13: invalid sha256 '${sha%?}X' (expected 64 lowercase hex digits)"
sed -i 's/format: qcow2/format: vmdk/' "$P/images/cloudy.yaml"
bad unknown-format "images/cloudy.yaml:6:13: unknown image format 'vmdk' (expected raw or qcow2)"
sed -i 's/^  image:/  debootstrap:/' "$P/images/cloudy.yaml"
bad not-image "images/cloudy.yaml:3:3: unknown key 'debootstrap' in 'base' (expected one of: image)"
printf 'disk:\n  size: 2G\n' >>"$P/images/cloudy.yaml"
ln=$(wc -l <"$P/images/cloudy.yaml")
bad disk "images/cloudy.yaml:$ln:3: 'disk' cannot be set in a role with 'base: image:' (line 3): the image brings its own disk"
sed -i 's/^description:.*/extends: sized/' "$P/images/cloudy.yaml"
printf 'abstract: true\ndisk:\n  size: 2G\n' >"$P/images/sized.yaml"
bad inherited-disk "images/sized.yaml:3:3: role 'sized' sets 'disk' but role 'cloudy' starts from 'base: image:' (images/cloudy.yaml:3): the image brings its own disk"
rm "$P/images/sized.yaml"
printf 'scripts: [images/files/cloudy/script.sh]\n' >>"$P/images/base.yaml"
ln=$(wc -l <"$P/images/base.yaml")
bad scripts-without-image "images/base.yaml:$ln:10: 'scripts' needs 'base: image:' in role 'base' or a role it extends"
sed -i '$d' "$P/images/base.yaml"
sed -i 's/url: .*/url: ftp:\/\/example.org\/x.img/' "$P/images/cloudy.yaml"
bad bad-url "images/cloudy.yaml:4:10: invalid url 'ftp://example.org/x.img'"
ok "spec errors name file:line:column and exit 2"

# ---- a wrong sha256: exit 1, nothing written, nothing cached ----
wrong=$(printf x | sha256sum | cut -d' ' -f1)
role wrongsum "$wrong"
expect_exit 1 "$IMGBUILD" -C "$P" build wrongsum
grep -q "wrongsum.*$wrong" "$T/err" || fail "wrong sha256: $(cat "$T/err")"
grep -q "$sha" "$T/err" || fail "wrong sha256 does not name the actual digest: $(cat "$T/err")"
ls "$P/out" | grep -q wrongsum && fail "wrong sha256 left outputs: $(ls "$P/out")"
[ -z "$(ls "$P/out/.imgbuild-work" 2>/dev/null)" ] || fail "work files left: $(ls "$P/out/.imgbuild-work")"
[ -z "$(ls "$IMGBUILD_CACHE_DIR/blobs/sha256" 2>/dev/null)" ] || fail "a wrong download entered the cache"
rm "$P/images/wrongsum.yaml"
# The format is checked against the bytes: qcow2 bytes announced as raw.
role rawlie "$sha" raw
expect_exit 1 "$IMGBUILD" -C "$P" build rawlie
grep -q "images/rawlie.yaml:4:5: base image '$URL' is a qcow2 image, but its format says raw" "$T/err" \
	|| fail "format lie: $(cat "$T/err")"
ls "$P/out" | grep -q rawlie && fail "format lie left outputs"
rm "$P/images/rawlie.yaml"
ok "a wrong sha256 or format fails with exit 1 and writes nothing"
# The wrong sha256 case downloaded the image and refused it; the format case downloaded it
# again and kept it (right digest). No build after this may download it.
gets=$(grep -c "GET /base.qcow2" "$T/http.log")
[ "$gets" = 2 ] || fail "expected 2 downloads so far: $(cat "$T/http.log")"

# ---- the build ----
role cloudy "$sha"
bin=${IMGBUILD_SAN:-$IMGBUILD}
[ -x "$bin" ] || bin=$IMGBUILD
start=$(date +%s)
"$bin" -C "$P" -vv build cloudy >"$T/b1.out" 2>"$T/b1.err" || { grep -v ': pass: ' "$T/b1.err" | tail -30; fail "build cloudy"; }
echo "customized build: $(( $(date +%s) - start ))s"
for f in cloudy.raw cloudy.qcow2 cloudy.manifest.json; do
	[ -f "$P/out/$f" ] || fail "no $f"
done
grep -q "customize: launching the libguestfs appliance" "$T/b1.err" || fail "no appliance launch logged"
[ "$(grep -c 'customize: launching' "$T/b1.err")" = 1 ] || fail "more than one appliance launch"
python3 - "$P/out/cloudy.manifest.json" "$URL" "$sha" <<'PY' || fail "manifest"
import json, sys
m = json.load(open(sys.argv[1]))
names = {p["name"]: p["version"] for p in m["packages"]}
assert "hello" in names and "openssh-server" in names and "cloud-init" in names, sorted(names)
i = m["inputs"]
assert i["packages_requested"] == ["hello"], i
assert i["base_image"] == {"url": sys.argv[2], "sha256": sys.argv[3], "format": "qcow2"}, i
# What the base image settles, not the role: no bootstrap key, disk size, variant or disk ids.
for k in ("rootfs_key", "disk_size", "variant"):
    assert k not in i, (k, i)
assert "disk" not in m, m["disk"]
assert sorted(m["outputs"]) == ["qcow2", "raw"], m["outputs"]
print(f"manifest: {len(names)} packages, hello {names['hello']}")
PY
# The build read the image back before its outputs landed: every check passed (one that
# fails fails the build), these among them.
for c in partitions filesystems bios-mbr bios-core uefi-loader os mounts machine-id \
	ssh-host-keys cloud-init-state manifest file:/etc/cloudy-motd file:/etc/cloudy-script-ran \
	unit:cloudy.service package:hello; do
	grep -q "verify: $c: pass: " "$T/b1.err" || fail "verify did not pass $c: $(grep 'verify: ' "$T/b1.err")"
done
grep -q "verify: partitions: pass: GPT of the base image, 3 partitions: root /dev/sda1, BIOS boot /dev/sda14, EFI system /dev/sda15" "$T/b1.err" \
	|| fail "vendor layout: $(grep 'verify: partitions' "$T/b1.err")"
grep -q '^verified [0-9a-f]\{64\}$' "$P/out/cloudy.stamp" || fail "the stamp does not say verified"

# ---- verify with no role: the partitions tell the layout, the image's manifest agrees ----
# (three appliance launches, one image each)
start=$(date +%s)
expect_exit 0 "$IMGBUILD" -vv verify "$P/out/cloudy.qcow2"
grep -q "verify: partitions: pass: GPT of the base image, 3 partitions: root /dev/sda1," "$T/err" \
	|| fail "no role, a base image's build: $(grep 'verify: ' "$T/err")"
grep -q "verify: manifest: pass: " "$T/err" || fail "no role, manifest: $(grep 'verify: ' "$T/err")"
expect_exit 0 "$IMGBUILD" -vv verify "$P/out/base.qcow2"
grep -q "verify: partitions: pass: GPT: BIOS boot, EFI system, Linux root" "$T/err" \
	|| fail "no role, imgbuild's layout: $(grep 'verify: ' "$T/err")"
# imgbuild's disk with its partitions moved is not a vendor's: its manifest says otherwise.
expect_exit 1 "$IMGBUILD" -vv verify "$T/www/base.qcow2"
grep -q "verify: manifest: FAIL: /etc/imgbuild/manifest.json says imgbuild laid the disk out, but its partitions are not imgbuild's (1 BIOS, 2 EFI, 3 root)" "$T/err" \
	|| fail "no role, moved partitions: $(grep 'verify: ' "$T/err")"
grep -q "failed 1 of " "$T/err" || fail "moved partitions: not exactly the manifest failed: $(grep 'error' "$T/err")"
ok "verify with no role: the base image's build by its own layout, imgbuild's by its layout, imgbuild's with moved partitions rejected ($(( $(date +%s) - start ))s)"

# What verify does not check, read from the root filesystem (partition 1) with debugfs:
# no appliance launch.
start=$(date +%s)
set -- $(sfdisk -J "$P/out/cloudy.raw" | python3 -c '
import json, sys
p = [p for p in json.load(sys.stdin)["partitiontable"]["partitions"] if p["node"].endswith("raw1")][0]
print(p["start"], p["size"])')
dd if="$P/out/cloudy.raw" of="$T/root.img" bs=512 skip="$1" count="$2" conv=sparse status=none
debugfs -R "dump /etc/imgbuild/manifest.json $T/inside.json" "$T/root.img" 2>"$T/debugfs.err"
[ -s "$T/inside.json" ] || fail "no /etc/imgbuild/manifest.json: $(cat "$T/debugfs.err")"
entries() { # entries DIR: the names in DIR of the image
	debugfs -R "ls -p $1" "$T/root.img" >"$T/ls.out" 2>"$T/debugfs.err"
	grep -q '/\.//$' "$T/ls.out" || fail "debugfs cannot list $1: $(cat "$T/debugfs.err")"
	awk -F/ '$6 != "." && $6 != ".." {print $6}' "$T/ls.out"
}
[ "$(debugfs -R "cat /etc/imgbuild/role" "$T/root.img" 2>/dev/null)" = cloudy ] || fail "role file"
[ -z "$(entries /var/lib/apt/lists)" ] || fail "apt lists left: $(entries /var/lib/apt/lists)"
[ -z "$(entries /tmp)" ] || fail "/tmp not empty: $(entries /tmp)"
[ -z "$(entries /var/cache/apt/archives | grep '\.deb$')" ] || fail ".deb files left in apt's cache"
entries /usr/sbin | grep -qx invoke-rc.d || fail "no invoke-rc.d in /usr/sbin"
entries /usr/sbin | grep -qx policy-rc.d && fail "policy-rc.d left"
mkdir "$T/log"
debugfs -R "rdump /var/log $T/log" "$T/root.img" 2>"$T/debugfs.err"
[ -d "$T/log/log" ] || fail "cannot copy /var/log: $(cat "$T/debugfs.err")"
[ -z "$(find "$T/log" -type f)" ] || fail "log files left: $(find "$T/log" -type f)"
rm -r "$T/root.img" "$T/log"
echo "debugfs read-back: $(( $(date +%s) - start ))s"
# The base image's own manifest (of role base) was replaced by this role's.
python3 - "$P/out/cloudy.manifest.json" "$T/inside.json" <<'PY' || fail "the manifest inside the image"
import json, sys
beside, inside = json.load(open(sys.argv[1])), json.load(open(sys.argv[2]))
del beside["outputs"]
assert inside == beside, (inside, beside)
PY
ok "customized image verified by its build (vendor layout, layer file 0640 0:4, hello, unit, script after both, sealed, manifest); no logs, /tmp, lists, .debs or policy-rc.d left; manifest inside = beside less outputs"

# ---- the build above was the second with this pin: it downloaded nothing ----
grep -q "base image $sha (in the cache)" "$T/b1.err" || fail "build: base image not from the cache: $(cat "$T/b1.err")"
n=$(grep -c "GET /base.qcow2" "$T/http.log")
[ "$n" = "$gets" ] || fail "the base image was requested $n times: $(cat "$T/http.log")"
"$IMGBUILD" -C "$P" -v build cloudy >"$T/b2.out" 2>"$T/b2.err" || { tail -20 "$T/b2.err"; fail "rebuild"; }
grep -q "cloudy: up to date" "$T/b2.err" || fail "unchanged role rebuilt: $(cat "$T/b2.err")"
other=$(printf y | sha256sum | cut -d' ' -f1)
role elsewhere "$other"
expect_exit 1 "$IMGBUILD" -C "$P" build elsewhere --offline
grep -q "offline, and 1 of 1 items are not in the cache: base image of role 'elsewhere'" "$T/err" \
	|| fail "offline: $(cat "$T/err")"
[ "$(grep -c "GET /base.qcow2" "$T/http.log")" = "$gets" ] || fail "offline build touched the server"
ls "$P/out" | grep -q elsewhere && fail "offline failure left outputs"
ok "a build after the first took the base image from the cache; unchanged is up to date; offline names what is missing"
echo "not exercised here: a vendor cloud image (cloud.debian.org is unreachable; the base is"
echo "imgbuild's own, partitions renumbered), --mirror for the base image, and a full --offline rebuild"
echo "14-image-base: $(( $(date +%s) - t0 ))s"
