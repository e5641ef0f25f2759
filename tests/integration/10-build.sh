#!/bin/sh
# `imgbuild all` from the Debian mirror: outputs, manifests, the disk layout read back with
# independent tools, reuse when nothing changed, a rebuild of only what changed, a build
# that reads its image back (imgbuild verify) before the outputs land and one whose
# declared check fails, and that an error or SIGINT leaves earlier outputs intact and
# nothing half-written. Builds pass --no-verify (an appliance launch per image) but the two
# that test it.
# The images stay in tests/tmp/images for the boot test (20-boot).
# lane: images (makes what the other tests of the lane read; tests/run-integration.sh)
. "$(dirname "$0")/../lib.sh"
t_init 10-build
IMG=$TOP/tests/tmp/images
rm -rf "$IMG"
mkdir -p "$IMG"
for f in ansible-free-scripts cloud-init images stacks imgbuild.yaml; do
	cp -r "$TOP/$f" "$IMG/"
done
P=$IMG
OUT=$IMG/out
# A smaller disk than the default keeps hashing and checking quick; 20-boot grows it.
sed -i 's/^  size: .*/  size: 2G/' "$P/imgbuild.yaml" "$P/images/tooling.yaml"
# What the Kubernetes roles download comes from stand-ins in a directory mirror.
t_payloads "$P" "$IMG/mirror"
export IMGBUILD_MIRROR="$IMG/mirror"
bin=${IMGBUILD_SAN:-$IMGBUILD}
[ -x "$bin" ] || bin=$IMGBUILD

echo "building all roles with $bin (a cold cache bootstraps from the mirror first)"
start=$(date +%s)
"$bin" -C "$P" -v all -j 2 --no-verify --json >"$T/all1.json" 2>"$T/all1.err" || { cat "$T/all1.err"; fail "imgbuild all failed"; }
echo "cold or warm build: $(( $(date +%s) - start ))s"
tail -1 "$T/all1.json"

python3 - "$T/all1.json" "$OUT" <<'PY' || fail "outputs or manifests are wrong"
import hashlib, json, os, subprocess, sys
events = [json.loads(l) for l in open(sys.argv[1])]
summary = events[-1]
assert summary["event"] == "summary", summary
out = sys.argv[2]
roles = sorted(r["role"] for r in summary["roles"])
assert roles == ["base", "master", "tooling", "worker"], roles
def sha(p):
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for b in iter(lambda: f.read(1 << 20), b""):
            h.update(b)
    return h.hexdigest()
for r in roles:
    m = json.load(open(f"{out}/{r}.manifest.json"))
    assert m["role"] == r
    for fmt in ("raw", "qcow2"):
        o = m["outputs"][fmt]
        p = f"{out}/{o['file']}"
        assert os.path.getsize(p) == o["size"], (p, o)
        # Reading gigabytes of holes is slow: every qcow2, but only one raw image.
        if fmt == "qcow2" or r == "base":
            assert sha(p) == o["sha256"], p
    assert m["inputs"]["disk_size"] == 2 << 30, m["inputs"]
    names = {p["name"] for p in m["packages"]}
    for need in ("cloud-init", "openssh-server", "linux-image-cloud-amd64", "cloud-guest-utils"):
        assert need in names, (r, need)
    assert m["extends_chain"][0] == "base"
    # Independent reader: sfdisk.
    t = json.loads(subprocess.check_output(["sfdisk", "--json", f"{out}/{r}.raw"]))["partitiontable"]
    assert t["label"] == "gpt", t
    types = [p["type"].upper() for p in t["partitions"]]
    assert types == ["21686148-6449-6E6F-744E-656564454649", "C12A7328-F81F-11D2-BA4B-00A0C93EC93B",
                     "4F68BCE3-E8CD-4DB1-96E7-FBCAF984B709"], types
    assert t["id"].lower() == m["disk"]["disk_guid"].lower()
    info = json.loads(subprocess.check_output(["qemu-img", "info", "--output=json", f"{out}/{r}.qcow2"]))
    assert info["format"] == "qcow2" and info["virtual-size"] == os.path.getsize(f"{out}/{r}.raw"), info
    # Sparse: the raw file uses far less than its size.
    st = os.stat(f"{out}/{r}.raw")
    assert st.st_blocks * 512 < st.st_size * 0.7, (r, st.st_blocks * 512, st.st_size)
print("manifests, digests, GPT and qcow2 check out for", roles)
PY
qemu-img compare -q "$OUT/base.raw" "$OUT/base.qcow2" || fail "qcow2 differs from raw"
ok "all four roles built; manifests, sha256, GPT (sfdisk), qcow2 (qemu-img) verified"

# Read the root filesystem back with e2fsprogs: sealed, and the layer is in place.
off=$(sfdisk --json "$OUT/base.raw" | python3 -c 'import json,sys; p=json.load(sys.stdin)["partitiontable"]["partitions"][2]; print(p["start"])')
dd if="$OUT/base.raw" of="$T/root.ext4" bs=512 skip="$off" conv=sparse status=none
e2fsck -fn "$T/root.ext4" >"$T/fsck.log" 2>&1 || { cat "$T/fsck.log"; fail "e2fsck found errors"; }
dbg() { debugfs -R "$1" "$T/root.ext4" 2>/dev/null; }
[ "$(dbg 'stat /etc/machine-id' | sed -n 's/.*Size: \([0-9]*\).*/\1/p' | head -1)" = 0 ] || fail "machine-id is not empty"
dbg 'ls -l /etc/ssh' | grep -q ssh_host_ && fail "SSH host keys are in the image"
dbg 'ls /var/lib' | grep -qw cloud && fail "cloud-init state is in the image"
[ "$(dbg 'cat /etc/imgbuild/role')" = base ] || fail "/etc/imgbuild/role"
dbg 'stat /etc/systemd/system/multi-user.target.wants/imgbuild-firstboot.service' | grep -q 'Fast link dest: "/etc/systemd/system/imgbuild-firstboot.service"' \
	|| fail "imgbuild-firstboot.service is not enabled"
dbg 'cat /etc/fstab' | grep -q '^UUID=.* / ext4 ' || fail "fstab: $(dbg 'cat /etc/fstab')"
dbg 'cat /boot/grub/grub.cfg' | grep -q 'console=ttyS0' || fail "grub.cfg has no serial console"
ok "root filesystem: e2fsck clean, sealed, layer and units in place"

# cloud-init's own schema, taken from the image, accepts every role's seed user-data (with
# and without an SSH key), the cluster plan's and the defaults the layer wrote.
dbg 'cat /usr/lib/python3/dist-packages/cloudinit/config/schemas/schema-cloud-config-v1.json' >"$T/schema.json"
dbg 'cat /etc/cloud/cloud.cfg.d/90-imgbuild.cfg' >"$T/90-imgbuild.cfg"
ssh-keygen -q -t ed25519 -N '' -f "$T/key" 2>/dev/null
# master and worker user-data come from a cluster plan (secrets included, 0600).
"$bin" -C "$P" cluster plan --dir "$T/plan" --master-address 10.0.0.10 --workers 2 \
	--ssh-key "$T/key.pub" >/dev/null || fail "cluster plan"
cp "$T/plan/master.user-data" "$T/user-data.master.plan"
cp "$T/plan/worker-2.user-data" "$T/user-data.worker-2.plan"
for r in base tooling; do
	"$bin" -C "$P" seed "$r" -o "$T/seed-nokey" -q || fail "seed $r"
	"$bin" -C "$P" seed "$r" -o "$T/seed-key" --ssh-key "$T/key.pub" -q || fail "seed $r with key"
	for d in seed-nokey seed-key; do
		rm -rf "$T/x" && mkdir "$T/x"
		xorriso -osirrox on -indev "$T/$d/$r.seed.iso" -extract / "$T/x" >/dev/null 2>&1 || fail "read seed"
		cp "$T/x/user-data" "$T/user-data.$r.$d"
	done
done
/usr/bin/python3 - "$T/schema.json" "$T"/user-data.* "$T/90-imgbuild.cfg" <<'PY' || fail "cloud-init schema rejects a config"
import json, sys, yaml, jsonschema
schema = json.load(open(sys.argv[1]))
v = jsonschema.Draft4Validator(schema)
bad = 0
for path in sys.argv[2:]:
    for e in v.iter_errors(yaml.safe_load(open(path))):
        print(f"{path}: {e.message}")
        bad += 1
print(f"{len(sys.argv) - 2} cloud-configs checked against cloud-init's schema")
sys.exit(1 if bad else 0)
PY
ok "seed user-data and cloud.cfg.d defaults pass cloud-init's schema"

# Nothing changed: nothing is rebuilt.
start=$(date +%s%N)
"$bin" -C "$P" all --no-verify --json >"$T/all2.json" 2>"$T/all2.err" || { cat "$T/all2.err"; fail "no-op all failed"; }
echo "no-op all: $(( ($(date +%s%N) - start) / 1000000 )) ms"
python3 -c 'import json,sys; s=json.loads(open(sys.argv[1]).readlines()[-1]); assert all(r["result"]=="reused" for r in s["roles"]), s' "$T/all2.json" \
	|| fail "a no-op run rebuilt something: $(tail -1 "$T/all2.json")"
ok "no-op all reuses every role"

# One input changed: only that role is rebuilt.
sums_before=$(cd "$OUT" && sums base.raw master.raw tooling.raw)
worker_before=$(sums "$OUT/worker.raw")
echo 'echo changed' >>"$P/ansible-free-scripts/worker-firstboot.sh"
"$bin" -C "$P" all --no-verify --json >"$T/all3.json" 2>"$T/all3.err" || { cat "$T/all3.err"; fail "rebuild failed"; }
python3 -c '
import json,sys
s = json.loads(open(sys.argv[1]).readlines()[-1])
res = {r["role"]: r["result"] for r in s["roles"]}
assert res == {"base": "reused", "master": "reused", "tooling": "reused", "worker": "rebuilt"}, res
' "$T/all3.json" || fail "wrong roles rebuilt: $(tail -1 "$T/all3.json")"
[ "$(cd "$OUT" && sums base.raw master.raw tooling.raw)" = "$sums_before" ] || fail "unchanged roles changed"
[ "$(sums "$OUT/worker.raw")" != "$worker_before" ] || fail "worker did not change"
ok "a changed first-boot script rebuilds only its role"

# A build that verifies: base's outputs were made with --no-verify, so it makes them again
# and reads the image back (the checks of `imgbuild verify --role base`, one appliance
# launch) before they land; the bytes are those of the first build.
[ "$(qemu_accel)" = tcg ] && export LIBGUESTFS_BACKEND_SETTINGS=force_tcg
base_before=$(cd "$OUT" && sums base.raw base.qcow2 base.manifest.json)
start=$(date +%s)
"$bin" -C "$P" build base --json >"$T/v1.json" 2>"$T/v1.err" || { cat "$T/v1.err"; fail "verified build of base failed"; }
echo "build of base with verify: $(( $(date +%s) - start ))s"
python3 -c '
import json,sys
r = json.loads(open(sys.argv[1]).readlines()[-1])["roles"][0]
v = r["seconds"]["verify"]
assert r["result"] == "rebuilt" and v > 0, r
print(f"base rebuilt and verified (verify {v:.1f}s)")
' "$T/v1.json" || fail "verified build: $(tail -1 "$T/v1.json")"
[ "$(cd "$OUT" && sums base.raw base.qcow2 base.manifest.json)" = "$base_before" ] || fail "a second build of base made other bytes"
grep -q '^verified [0-9a-f]\{64\}$' "$OUT/base.stamp" || fail "the stamp does not say verified: $(cat "$OUT/base.stamp")"
"$bin" -C "$P" build base --json >"$T/v2.json" 2>"$T/v2.err" || { cat "$T/v2.err"; fail "no-op verified build failed"; }
grep -q '"result":"reused"' "$T/v2.json" || fail "verified outputs were built again: $(tail -1 "$T/v2.json")"
ok "a build verifies before its outputs land; the same bytes as the unverified build; then reused"

# A declared check the image fails: the build exits 1, names the check, writes nothing.
cp "$P/images/base.yaml" "$T/base.yaml.bak"
printf 'checks:\n  files:\n    - {path: /etc/imgbuild/role, mode: "0600"}\n' >>"$P/images/base.yaml"
before=$(cd "$OUT" && sums base.raw base.qcow2 base.manifest.json base.stamp)
start=$(date +%s)
expect_exit 1 "$bin" -C "$P" build base
echo "build of base failing a check: $(( $(date +%s) - start ))s"
grep -q "^imgbuild: error: building 'base': image '.*base.raw' failed 1 of [0-9]* checks: file:/etc/imgbuild/role$" "$T/err" ||
	fail "failed check: $(cat "$T/err")"
grep -q "file:/etc/imgbuild/role failed: mode 0644, expected 0600" "$T/err" || fail "no detail: $(cat "$T/err")"
[ "$(cd "$OUT" && sums base.raw base.qcow2 base.manifest.json base.stamp)" = "$before" ] || fail "a build that failed its checks changed outputs"
[ -z "$(ls -A "$OUT/.imgbuild-work" 2>/dev/null)" ] || fail "work files left: $(ls -A "$OUT/.imgbuild-work")"
cp "$T/base.yaml.bak" "$P/images/base.yaml"
ok "a failed declared check fails the build (exit 1) and leaves the earlier outputs"

# A failure in the middle of a build (a unit that does not exist) leaves earlier outputs.
before=$(cd "$OUT" && sums worker.raw worker.qcow2 worker.manifest.json)
cp "$P/images/worker.yaml" "$T/worker.yaml.bak"
printf 'units:\n  enable: [no-such-thing.service]\n' >>"$P/images/worker.yaml"
expect_exit 2 "$bin" -C "$P" build worker
grep -q "no-such-thing.service" "$T/err" || fail "error does not name the unit: $(cat "$T/err")"
[ "$(grep -c 'error' "$T/err")" = 1 ] || fail "not exactly one error line: $(cat "$T/err")"
expect_exit 2 "$bin" -C "$P" -q build worker
[ "$(wc -l <"$T/err")" = 1 ] || fail "-q: not exactly one line: $(cat "$T/err")"
[ "$(cd "$OUT" && sums worker.raw worker.qcow2 worker.manifest.json)" = "$before" ] || fail "failed build changed outputs"
cp "$T/worker.yaml.bak" "$P/images/worker.yaml"
[ -z "$(ls -A "$OUT/.imgbuild-work" 2>/dev/null)" ] || fail "work files left: $(ls -A "$OUT/.imgbuild-work")"
ok "a failed build leaves earlier outputs intact and no work files"

# SIGINT in the middle: nothing half-written, earlier outputs intact.
for sig in INT TERM; do
	"$bin" -C "$P" build worker --force >"$T/int.out" 2>"$T/int.err" &
	pid=$!
	# Wait for the disk stage (or any stage past the rootfs) to be under way.
	i=0
	while [ $i -lt 120 ] && ! ls "$OUT/.imgbuild-work/" 2>/dev/null | grep -q worker; do sleep 0.5; i=$((i + 1)); done
	sleep 3
	kill -$sig $pid
	wait $pid
	rc=$?
	[ $rc = 1 ] || fail "SIG$sig: exit $rc, expected 1: $(cat "$T/int.err")"
	grep -q 'interrupted' "$T/int.err" || fail "SIG$sig: no message: $(cat "$T/int.err")"
	[ -z "$(ls -A "$OUT/.imgbuild-work" 2>/dev/null)" ] || fail "SIG$sig: work files left: $(ls -A "$OUT/.imgbuild-work")"
	ls "$OUT" | grep -q 'tmp' && fail "SIG$sig: temporary files left: $(ls "$OUT")"
	pgrep -f "(mkfs|qemu-img convert).*$OUT" >/dev/null && fail "SIG$sig: tools still running"
	[ "$(cd "$OUT" && sums worker.raw worker.qcow2 worker.manifest.json)" = "$before" ] || fail "SIG$sig changed outputs"
done
ok "SIGINT and SIGTERM leave earlier outputs intact, no work or temporary files, no tools running"

# Jenkins plugins: the tooling build above baked 42 stand-ins (tests/tooling/mkplugins.py:
# zips whose MANIFEST.MF, in the real format, declares what the real plugin's declares, as
# tests/tooling/jenkins-manifests.txt records it) and its layer checked their closure. A
# role baking an incomplete set is refused at the layer stage (exit 2, one error naming the
# problems and the spec lines), nothing written. Not exercised: the real plugins and Jenkins
# loading them (no update center, no Jenkins image on the test machines).
grep -q "tooling: Jenkins plugins in '/opt/imgbuild/tooling/jenkins/plugins': 42, every dependency there" "$T/all1.err" ||
	{ grep -i jenkins "$T/all1.err"; fail "the tooling layer did not report its plugins' closure"; }
# jplugins_role [DROP_ID [OVERRIDE_ID OVERRIDE_VERSION]]: images/jplugins.yaml baking the
# tooling role's plugins on base (whose root filesystem is cached), but DROP_ID, with
# OVERRIDE_ID at another version.
jplugins_role() {
	python3 - "$P/images/tooling.yaml" "$P/images/jplugins.yaml" "$@" <<'PY'
import sys, yaml
src, dst, args = sys.argv[1], sys.argv[2], sys.argv[3:]
drop = args[0] if args else ""
over = args[1:3] if len(args) > 2 else None
arts = []
for a in yaml.safe_load(open(src))["artifacts"]:
    if a["name"] == "jenkins-plugin-" + drop:
        continue
    if over and a["name"] == "jenkins-plugin-" + over[0]:
        old = a["url"].split("/")[-2]
        a = {k: v.replace(old, over[1]) if isinstance(v, str) else v for k, v in a.items()}
    arts.append(a)
yaml.safe_dump({"description": "10-build: Jenkins plugins' closure", "extends": "base",
                "artifacts": arts}, open(dst, "w"), sort_keys=False)
PY
}
jplugins_refused() { # jplugins_refused WHAT PATTERN...: exit 2, the patterns in the one error
	what=$1
	shift
	start=$(date +%s)
	expect_exit 2 "$bin" -C "$P" build jplugins --no-verify
	[ "$(grep -c 'error' "$T/err")" = 1 ] || fail "$what: not exactly one error line: $(cat "$T/err")"
	for pat in "$@"; do
		grep -qF -- "$pat" "$T/err" || fail "$what: no '$pat' in: $(cat "$T/err")"
	done
	for f in "$OUT"/jplugins.*; do
		[ -e "$f" ] && fail "$what: outputs written: $(ls "$OUT")"
	done
	[ -z "$(ls -A "$OUT/.imgbuild-work" 2>/dev/null)" ] || fail "$what: work files left: $(ls -A "$OUT/.imgbuild-work")"
	echo "$what: refused in $(($(date +%s) - start))s: $(grep error "$T/err" | cut -c1-300)..."
}
# A plugin removed from the set: its dependents are named.
jplugins_role structs
jplugins_refused "structs removed" \
	"building 'jplugins': the Jenkins plugins in '/opt/imgbuild/tooling/jenkins/plugins' would not all load (" \
	"'job-dsl' 1.87 '/opt/imgbuild/tooling/jenkins/plugins/job-dsl.jpi' (" \
	"needs 'structs' 338.v848422169819 or later, which is not there" "more"
# A dependency older than its dependents declare (a stand-in of scm-api 676).
jplugins_role "" scm-api 676.v886669a_199a_a_
cp "$TOP/tests/tooling/jenkins-manifests.txt" "$T/manifests.txt"
echo "scm-api:676.v886669a_199a_a_ 2.426.3 org.jenkins-ci.plugins structs" >>"$T/manifests.txt"
python3 "$TOP/tests/tooling/mkplugins.py" "$P" "$IMG/mirror" jplugins "$T/manifests.txt" >/dev/null ||
	fail "mkplugins.py for an older scm-api"
jplugins_refused "scm-api too old" \
	"'git' 5.2.2 '/opt/imgbuild/tooling/jenkins/plugins/git.jpi' (" \
	"needs 'scm-api' 683.vb_16722fb_b_80b_ or later, but '/opt/imgbuild/tooling/jenkins/plugins/scm-api.jpi' (" \
	") is 676.v886669a_199a_a_"
# A plugin that is not one: what a misconfigured mirror serves, with its digest published.
jplugins_role
cat >>"$P/images/jplugins.yaml" <<'YAML'
- name: jenkins-plugin-broken
  url: https://updates.jenkins.io/download/plugins/broken/1.0/broken.hpi
  checksum_url: https://repo.jenkins-ci.org/releases/org/jenkins-ci/plugins/broken/1.0/broken-1.0.hpi.sha256
  destination: /opt/imgbuild/tooling/jenkins/plugins/broken.jpi
YAML
b=$IMG/mirror/updates.jenkins.io/download/plugins/broken/1.0/broken.hpi
mkdir -p "${b%/*}" "$IMG/mirror/repo.jenkins-ci.org/releases/org/jenkins-ci/plugins/broken/1.0"
printf '<html><body>Mirror list</body></html>\n' >"$b"
sha256sum "$b" | cut -d' ' -f1 >"$IMG/mirror/repo.jenkins-ci.org/releases/org/jenkins-ci/plugins/broken/1.0/broken-1.0.hpi.sha256"
jplugins_refused "not a zip" \
	"'/opt/imgbuild/tooling/jenkins/plugins/broken.jpi' (" \
	") is not a readable zip (a Jenkins plugin is one)"
rm "$P/images/jplugins.yaml"
ok "Jenkins plugins: the tooling layer checked the closure of its 42 stand-ins (real manifests' dependency declarations, as recorded); a removed plugin, a too old dependency, a plugin that is no zip each refused at the layer (exit 2), nothing written (not exercised: the real plugins, Jenkins loading them)"
