#!/bin/sh
# Boot the built images in QEMU with their NoCloud seeds, by BIOS (SeaBIOS) and by UEFI
# (OVMF), and read from the serial console that cloud-init finished, that the root grew to
# the disk and that each role's own first-boot script ran. KVM when it works, else TCG;
# every boot is bounded in time. Two VMs run at once (one vCPU each). The Kubernetes roles
# boot in 21-k8s-boot, with a cluster plan; tooling in 22-tooling-boot, with its stack.
# lane: images (reads what 10-build makes; tests/run-integration.sh)
. "$(dirname "$0")/../lib.sh"
t_init 20-boot
OUT=$TOP/tests/tmp/images/out
[ -f "$OUT/base.qcow2" ] || fail "no images: run 10-build first"
[ -f /usr/share/OVMF/OVMF_CODE_4M.fd ] || skip "OVMF is not installed (make deps)"
LIMIT=${IMGBUILD_BOOT_TIMEOUT:-600}

"$IMGBUILD" -C "$TOP/tests/tmp/images" seed base -o "$T" -q || fail "seed base"

# boot_role NAME ROLE FIRMWARE MARKER: a disk 1 GiB larger than the 2 GiB image, so that
# growpart has work to do.
boot_role() {
	qemu-img create -q -f qcow2 -F qcow2 -b "$OUT/$2.qcow2" "$T/$1.base.qcow2" 3G
	boot_wait "$1" "$T/$1.base.qcow2" "$T/$2.seed.iso" "$3" "$LIMIT" \
		"imgbuild: cloud-init finished on $2" "$4" "imgbuild-seed: root filesystem [0-9]+M"
}

# No unit failed and cloud-init complained about nothing.
check_clean() {
	if grep -a -E 'FAILED|\[WARNING\]|Traceback|ERROR' "$T/$1.serial"; then
		fail "$1: failures or warnings on the console (above)"
	fi
}

check_grown() {
	check_clean "$1"
	size=$(sed -n 's/.*imgbuild-seed: root filesystem \([0-9]*\)M.*/\1/p' "$T/$1.serial" | head -1)
	[ "${size:-0}" -gt 2500 ] || fail "$1: root did not grow to the disk ($size MiB)"
}

failed=0
run_pair() {
	boot_role "$1" "$2" "$3" "$4" & p1=$!
	boot_role "$5" "$6" "$7" "$8" & p2=$!
	wait $p1 || { failed=1; echo "--- $1 serial (tail)"; tail -40 "$T/$1.serial"; }
	wait $p2 || { failed=1; echo "--- $5 serial (tail)"; tail -40 "$T/$5.serial"; }
}

run_pair base-bios base bios "imgbuild-role: this host is a 'base'" \
	base-uefi base uefi "imgbuild-role: this host is a 'base'"
[ $failed = 0 ] || fail "base did not boot both ways"
check_grown base-bios
check_grown base-uefi
ok "base boots by BIOS and by UEFI: cloud-init finished, root grown, role recorded"

# master and worker boot together, from a cluster plan's seeds, in 21-k8s-boot; tooling
# boots with its stack, offline, in 22-tooling-boot.
pgrep -f "qemu-system-x86_64.*$T" >/dev/null && fail "a QEMU process is still running"
exit 0
