#!/bin/sh
# `imgbuild verify`: the images 10-build made pass every check, their roles' declared checks
# included; a tampered copy (one overlay, tampered in one guestfish session) fails with every
# tampering named in one run, so all checks ran in one appliance launch. The images of
# 10-build are only read: verify attaches them read-only and the tampering goes to an overlay.
# after: 10-build (reads what 10-build makes, boots nothing; tests/run-integration.sh)
. "$(dirname "$0")/../lib.sh"
t_init 12-verify
IMG=$TOP/tests/tmp/images
OUT=$IMG/out
for f in base.raw base.manifest.json worker.qcow2; do
	[ -f "$OUT/$f" ] || skip "no $OUT/$f: 10-build makes it"
done
for p in guestfish qemu-img ssh-keygen python3; do
	command -v $p >/dev/null || skip "$p is missing"
done

# Usage and errors need no appliance.
for bin in $(binaries); do
	expect_exit 2 "$bin" verify
	grep -q "takes exactly one image" "$T/err" || fail "no image: $(cat "$T/err")"
	expect_exit 2 "$bin" verify a.raw b.raw
	expect_exit 1 "$bin" verify "$T/missing.raw"
	grep -q "^imgbuild: error: cannot open image '$T/missing.raw': No such file" "$T/err" \
		|| fail "missing image: $(cat "$T/err")"
	expect_exit 1 "$bin" verify "$T"
	grep -q "not a regular file" "$T/err" || fail "directory as image: $(cat "$T/err")"
	expect_exit 2 "$bin" -C "$IMG" verify --role no-such-role "$OUT/base.raw"
	grep -q "unknown role 'no-such-role'" "$T/err" || fail "unknown role: $(cat "$T/err")"
	expect_exit 2 "$bin" list --role base
done
ok "usage and errors"

# A copy of the project whose roles declare checks that the built images satisfy.
P=$T/proj
mkdir -p "$P"
cp -r "$IMG/images" "$IMG/imgbuild.yaml" "$IMG/ansible-free-scripts" "$IMG/cloud-init" "$IMG/stacks" "$P/"
sshd_sha=$(sha256sum "$P/images/files/base/sshd-keys-only.conf" | cut -d' ' -f1)
ci_ver=$(python3 -c 'import json,sys; print([p["version"] for p in json.load(open(sys.argv[1]))["packages"] if p["name"] == "cloud-init"][0])' "$OUT/base.manifest.json")
cat >>"$P/images/base.yaml" <<EOF
checks:
  files:
    - path: /etc/ssh/sshd_config.d/50-imgbuild.conf
      mode: "0644"
      owner: root:root
      sha256: $sshd_sha
    - path: /usr/local/sbin/imgbuild-firstboot
      mode: "0755"
      owner: root:root
  units: [ssh.service, imgbuild-firstboot.service, systemd-timesyncd.service]
  sysctl:
    kernel.pid_max: 4194304
    fs.protected_regular: 2
  packages:
    openssh-server: "*"
    cloud-init: "$ci_ver"
EOF
cat >>"$P/images/worker.yaml" <<EOF
checks:
  units: [getty@.service]
  packages:
    systemd: "*"
EOF

# verify_run NAME EXPECTED-EXIT BIN ARGS...: run verify, print its time, and check that no
# process it started (QEMU, libguestfs's recovery process) outlives it.
verify_run() {
	name=$1 want=$2
	shift 2
	start=$(date +%s)
	"$@" >"$T/$name.out" 2>"$T/$name.err" &
	vpid=$!
	kids=""
	while kill -0 $vpid 2>/dev/null; do
		for k in $(pgrep -P $vpid 2>/dev/null); do
			case " $kids " in *" $k "*) ;; *) kids="$kids $k" ;; esac
		done
		sleep 0.5
	done
	wait $vpid
	rc=$?
	echo "$name: exit $rc in $(( $(date +%s) - start ))s"
	[ "$rc" = "$want" ] || { cat "$T/$name.out" "$T/$name.err"; fail "$name: exit $rc, expected $want"; }
	sleep 1
	for k in $kids; do
		kill -0 "$k" 2>/dev/null && fail "$name: process $k ($(cat /proc/$k/comm 2>/dev/null)) outlived verify"
	done
	[ -n "$kids" ] || fail "$name: verify started no appliance"
}

stamp() { stat -c '%s %Y' "$OUT/base.raw" "$OUT/worker.qcow2"; }
before=$(stamp)

# The first run starts with KVM when /dev/kvm opens and falls back to TCG by itself where
# KVM is broken; later runs skip a KVM that failed (as one imgbuild process does).
unset LIBGUESTFS_BACKEND_SETTINGS
verify_run base 0 "$IMGBUILD" -C "$P" verify --role base --json "$OUT/base.raw"
python3 - "$T/base.out" <<'PY' || fail "base.raw: $(cat "$T/base.out")"
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
s = ev[-1]
assert s["event"] == "summary" and s["result"] == "pass" and s["failed"] == 0, s
names = [e["name"] for e in ev if e["event"] == "check"]
need = ["partitions", "filesystems", "bios-mbr", "bios-core", "uefi-loader", "os", "mounts",
        "grub-cfg", "kernel", "fstab", "machine-id", "ssh-host-keys", "cloud-init-state",
        "passwords", "secrets", "manifest", "file:/etc/ssh/sshd_config.d/50-imgbuild.conf",
        "file:/usr/local/sbin/imgbuild-firstboot", "unit:ssh.service",
        "unit:imgbuild-firstboot.service", "unit:systemd-timesyncd.service",
        "sysctl:kernel.pid_max", "sysctl:fs.protected_regular", "package:openssh-server",
        "package:cloud-init"]
assert names == need, names
m = [e for e in ev if e.get("name") == "manifest"][0]
assert "as the spec gives" in m["detail"], m
print(f"base.raw: {len(names)} checks passed; appliance {s['accel']}, launch {s['launch_seconds']:.1f}s, all {s['seconds']:.1f}s")
PY
accel=$(tail -1 "$T/base.out" | sed -n 's/.*"accel":"\([a-z]*\)".*/\1/p')
[ "$accel" = tcg ] && export LIBGUESTFS_BACKEND_SETTINGS=force_tcg
ok "base.raw passes every built-in check and base's declared checks"

verify_run worker 0 "$IMGBUILD" -C "$P" verify --role worker "$OUT/worker.qcow2"
grep -q "^unit:getty@.service .* pass .*getty.target.wants/getty@tty1.service" "$T/worker.out" \
	|| fail "worker: template unit: $(cat "$T/worker.out")"
grep -q "^package:systemd .* pass" "$T/worker.out" || fail "worker: $(cat "$T/worker.out")"
grep -q "worker.qcow2: 57 checks, all passed" "$T/worker.out" || fail "worker: $(cat "$T/worker.out")"
[ "$(stamp)" = "$before" ] || fail "verify changed an image"
ok "worker.qcow2 passes with the checks of worker, k8s-node (the kubeadm node checklist) and base; the images are unchanged"

# Tamper with a copy: every change in one guestfish session on one overlay.
qemu-img create -q -f qcow2 -F qcow2 -b "$OUT/worker.qcow2" "$T/tampered.qcow2" || fail "overlay"
ssh-keygen -q -t ed25519 -N '' -C planted -f "$T/key" || fail "ssh-keygen"
start=$(date +%s)
guestfish --rw -a "$T/tampered.qcow2" -i <<EOF >"$T/guestfish.log" 2>&1 || { cat "$T/guestfish.log"; fail "guestfish"; }
write /etc/machine-id "0123456789abcdef0123456789abcdef\n"
upload $T/key /etc/ssh/ssh_host_ed25519_key
mkdir-p /root/.ssh
upload $T/key /root/.ssh/id_ed25519
write /etc/kubeadm-join.yaml "discovery:\n  bootstrapToken:\n    token: k3x9zq.0123456789abcdef\n"
mkdir-p /opt/app
write /opt/app/env "AWS_ACCESS_KEY_ID=AKIA0123456789ABCDEF\n"
mkdir-p /root/.aws
write /root/.aws/credentials "[default]\naws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCY0123456789\n"
write /etc/imgbuild/cluster.env "K8S_CERT_KEY=0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n"
mkdir-p /root/.docker
write /root/.docker/config.json "{\"auths\": {\"registry.example\": {\"auth\": \"dXNlcjpwYXNzd29yZDEyMw==\"}}}\n"
write-append /etc/ssh/sshd_config.d/50-imgbuild.conf "PermitRootLogin yes\n"
rm /etc/systemd/system/multi-user.target.wants/imgbuild-firstboot.service
write /etc/sysctl.d/90-tamper.conf "kernel.pid_max = 32768\n"
sh "sed -i 's/^root:[*]:/root:\$6\$c2FsdA\$aGFzaA:/' /etc/shadow"
mkdir /var/lib/cloud
glob rm /boot/initrd.img-*
pwrite-device /dev/sda "XXXXX" 384
write-append /etc/fstab "UUID=0badc0de-0000-4000-8000-000000000000 /data ext4 defaults,nofail 0 2\n"
sh "sed -i 's/\"digest\": \"[0-9a-f]*\"/\"digest\": \"$(printf '%064d' 0)\"/' /etc/imgbuild/manifest.json"
EOF
echo "tampering (one guestfish launch): $(( $(date +%s) - start ))s"
[ "$(stamp)" = "$before" ] || fail "tampering the overlay changed an image"

# And a spec whose digest for an untouched file is wrong: a descendant's check replaces
# its ancestor's for the same path.
P2=$T/proj-wrong
cp -r "$P" "$P2"
cat >>"$P2/images/worker.yaml" <<EOF
  files:
    - path: /usr/local/sbin/imgbuild-firstboot
      sha256: 0000000000000000000000000000000000000000000000000000000000000000
EOF
bin=${IMGBUILD_SAN:-$IMGBUILD}
[ -x "$bin" ] || bin=$IMGBUILD
verify_run tampered 1 "$bin" -C "$P2" verify --role worker --json "$T/tampered.qcow2"
python3 - "$T/tampered.out" <<'PY' || fail "tampered: $(cat "$T/tampered.out")"
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
s = ev[-1]
res = {e["name"]: e for e in ev if e["event"] == "check"}
failed = sorted(n for n, e in res.items() if e["result"] == "fail")
want = sorted(["bios-mbr", "grub-cfg", "kernel", "fstab", "machine-id", "ssh-host-keys",
               "cloud-init-state", "passwords", "secrets", "manifest",
               "file:/etc/ssh/sshd_config.d/50-imgbuild.conf",
               "file:/usr/local/sbin/imgbuild-firstboot",
               "unit:imgbuild-firstboot.service", "sysctl:kernel.pid_max"])
assert failed == want, f"failed {failed}, expected {want}"
assert s["result"] == "fail" and s["failed"] == len(want), s
d = lambda n: res[n]["detail"]
for path in ["/etc/ssh/ssh_host_ed25519_key", "/root/.ssh/id_ed25519",
             "kubeadm bootstrap token in /etc/kubeadm-join.yaml", "AWS access key id in /opt/app/env",
             "AWS secret access key in /root/.aws/credentials",
             "kubeadm certificate key in /etc/imgbuild/cluster.env",
             "container registry password in /root/.docker/config.json"]:
    assert path in d("secrets"), d("secrets")
assert "'root'" in d("passwords"), d("passwords")
assert "32768, expected 4194304" == d("sysctl:kernel.pid_max"), d("sysctl:kernel.pid_max")
assert "0badc0de" in d("fstab") and "initrd.img" in d("kernel"), (d("fstab"), d("kernel"))
assert "expected 0000" in d("file:/usr/local/sbin/imgbuild-firstboot")
assert "sha256" in d("file:/etc/ssh/sshd_config.d/50-imgbuild.conf")
assert "built from inputs 000000000000, but the spec gives" in d("manifest"), d("manifest")
for n in ["partitions", "bios-core", "uefi-loader", "os", "unit:ssh.service", "package:systemd"]:
    assert res[n]["result"] == "pass", res[n]
print(f"tampered: {len(failed)} of {len(res)} checks failed, all in one run "
      f"(launch {s['launch_seconds']:.1f}s, all {s['seconds']:.1f}s)")
PY
grep -q "^imgbuild: error: image '$T/tampered.qcow2' failed 14 of 57 checks: bios-mbr, " "$T/tampered.err" \
	|| fail "tampered: error line: $(cat "$T/tampered.err")"
[ "$(grep -c 'error' "$T/tampered.err")" = 1 ] || fail "not one error line: $(cat "$T/tampered.err")"
ok "a tampered copy fails, naming machine-id, host key, planted keys, token, AWS key and secret, certificate key, registry password, password, file digests, unit, sysctl, boot code, kernel, fstab, the manifest's digest"
