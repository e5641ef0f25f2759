#!/bin/sh
# `imgbuild seed`: a NoCloud ISO with volume label cidata, user-data rendered from
# cloud-init/, read back with independent tools.
. "$(dirname "$0")/../lib.sh"
t_init 03-seed
command -v xorriso >/dev/null || skip "xorriso is not installed (make deps)"

ssh-keygen -q -t ed25519 -N '' -f "$T/key" 2>/dev/null || printf 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ+test test@imgbuild\n' >"$T/key.pub"
for bin in $(binaries); do
	rm -rf "$T/seeds"
	expect_exit 0 "$bin" -C "$TOP" seed base -o "$T/seeds" --ssh-key "$T/key.pub" --hostname worker-1
	iso=$T/seeds/base.seed.iso
	[ -f "$iso" ] || fail "no seed written"
	label=$(blkid -o value -s LABEL "$iso")
	case "$label" in cidata|CIDATA) ;; *) fail "seed label is '$label'" ;; esac
	rm -rf "$T/x" && mkdir "$T/x"
	xorriso -osirrox on -indev "$iso" -extract / "$T/x" >/dev/null 2>&1 || fail "xorriso cannot read the seed"
	head -1 "$T/x/user-data" | grep -qx '#cloud-config' || fail "user-data: $(head -3 "$T/x/user-data")"
	grep -q '^hostname: worker-1$' "$T/x/user-data" || fail "hostname not rendered"
	grep -q "$(cut -d' ' -f2 "$T/key.pub")" "$T/x/user-data" || fail "ssh key not in user-data"
	grep -q '^local-hostname: worker-1$' "$T/x/meta-data" || fail "meta-data: $(cat "$T/x/meta-data")"
	python3 - "$T/x/user-data" <<'PY' || fail "user-data is not valid YAML"
import sys
try:
    import yaml
except ImportError:
    sys.exit(0)
d = yaml.safe_load(open(sys.argv[1]))
assert d["hostname"] == "worker-1" and len(d["ssh_authorized_keys"]) == 1, d
PY
	expect_exit 2 "$bin" -C "$TOP" seed base --hostname 'Bad_Name'
	expect_exit 2 "$bin" -C "$TOP" seed nosuch
	expect_exit 2 "$bin" -C "$TOP" seed base --ssh-key /etc/hostname
	# The Kubernetes roles' user-data holds the cluster's secrets: only from a plan.
	expect_exit 2 "$bin" -C "$TOP" seed worker -o "$T/seeds"
	[ -e "$T/seeds/worker.seed.iso" ] && fail "a worker seed was written without a plan"
done
ok "seed ISO: label, user-data, meta-data, errors; master and worker seeds need a plan"
