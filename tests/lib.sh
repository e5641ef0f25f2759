# lib.sh: helpers shared by the integration tests (sourced, POSIX sh).

TOP=$(cd "$(dirname "$0")/../.." && pwd)
: "${IMGBUILD:=$TOP/build/imgbuild}"

t_init() {
	T=$TOP/tests/tmp/$1
	rm -rf "$T"
	mkdir -p "$T"
}

fail() {
	echo "FAIL: $*" >&2
	exit 1
}

ok() {
	echo "ok: $*"
}

skip() {
	echo "SKIP: $*" >&2
	exit 77
}

# expect_exit CODE CMD...: run CMD, capture stdout/stderr in $T/out and $T/err.
expect_exit() {
	want=$1
	shift
	"$@" >"$T/out" 2>"$T/err"
	got=$?
	if [ "$got" != "$want" ]; then
		echo "--- stdout"; cat "$T/out"; echo "--- stderr"; cat "$T/err"
		fail "'$*' exited $got, expected $want"
	fi
}

# The binaries to run cheap tests against: the normal build and, when make check built it,
# the ASan/UBSan one (any sanitizer report makes it exit non-zero).
binaries() {
	echo "$IMGBUILD"
	[ -n "${IMGBUILD_SAN:-}" ] && [ -x "$IMGBUILD_SAN" ] && echo "$IMGBUILD_SAN"
}

# KVM when it works, else TCG. On these machines /dev/kvm exists and QEMU starts, but a
# guest hangs (or aborts) once the kernel runs, so only a real boot counts: the host kernel
# must boot to its "no root" panic and QEMU exit on the panic reboot within 20 s.
qemu_accel() {
	if [ -n "${IMGBUILD_QEMU_ACCEL:-}" ]; then
		echo "$IMGBUILD_QEMU_ACCEL"
		return
	fi
	cache=$TOP/tests/tmp/.qemu-accel
	if [ -f "$cache" ]; then
		cat "$cache"
		return
	fi
	accel=tcg
	kernel=$(ls /boot/vmlinuz-* 2>/dev/null | sort -V | tail -1)
	if [ -w /dev/kvm ] && [ -n "$kernel" ]; then
		log=$(mktemp)
		timeout 20 qemu-system-x86_64 -accel kvm -m 256 -nographic -nodefaults -no-reboot \
			-serial "file:$log" -kernel "$kernel" -append "console=ttyS0 panic=-1" \
			>/dev/null 2>&1
		rc=$?
		grep -q 'Kernel panic' "$log" && [ $rc = 0 ] && accel=kvm
		rm -f "$log"
	fi
	mkdir -p "$TOP/tests/tmp"
	# Renamed into place: a test in the other lane may be reading it.
	echo "$accel" >"$cache.$$" && mv -f "$cache.$$" "$cache"
	echo "$accel"
}

# boot_wait NAME DISK SEED FIRMWARE(bios|uefi) TIMEOUT PATTERN...
# Boot DISK (never modified: a qcow2 overlay takes the writes) with the seed ISO, the serial
# console in $T/NAME.serial, until every PATTERN (grep -E) has appeared or TIMEOUT seconds
# pass. Returns 0 when all appeared. QEMU is killed before returning (unless BOOT_KEEP=1 and
# every marker appeared). BOOT_NET replaces the default user-mode NIC with these QEMU options.
boot_wait() {
	name=$1 disk=$2 seed=$3 fw=$4 limit=$5
	shift 5
	overlay=$T/$name.overlay.qcow2
	qemu-img create -q -f qcow2 -F qcow2 -b "$disk" "$overlay" || return 1
	fwargs=""
	if [ "$fw" = uefi ]; then
		cp /usr/share/OVMF/OVMF_VARS_4M.fd "$T/$name.vars.fd"
		fwargs="-drive if=pflash,format=raw,unit=0,readonly=on,file=/usr/share/OVMF/OVMF_CODE_4M.fd -drive if=pflash,format=raw,unit=1,file=$T/$name.vars.fd"
	fi
	accel=$(qemu_accel)
	echo "booting $name ($fw, $accel), at most ${limit}s"
	# shellcheck disable=SC2086
	qemu-system-x86_64 -accel "$accel" -m 1024 -smp 1 -nographic -nodefaults \
		-serial "file:$T/$name.serial" -no-reboot $fwargs \
		-drive "file=$overlay,if=virtio,format=qcow2" \
		-drive "file=$seed,if=virtio,format=raw,readonly=on" \
		${BOOT_NET:--netdev user,id=n0 -device virtio-net-pci,netdev=n0} \
		-pidfile "$T/$name.pid" >"$T/$name.qemu.log" 2>&1 &
	qpid=$!
	start=$(date +%s)
	rc=1
	while :; do
		all=1
		for p in "$@"; do
			grep -qE "$p" "$T/$name.serial" 2>/dev/null || { all=0; break; }
		done
		if [ $all = 1 ]; then rc=0; break; fi
		if ! kill -0 $qpid 2>/dev/null; then
			echo "qemu exited early:"; cat "$T/$name.qemu.log"; break
		fi
		if [ $(( $(date +%s) - start )) -ge "$limit" ]; then
			echo "timeout after ${limit}s"; break
		fi
		sleep 2
	done
	echo "$name: $(( $(date +%s) - start ))s to all markers (rc $rc)"
	# BOOT_KEEP=1: leave a guest that got there running for the caller (its pid in
	# $T/NAME.pid); the caller kills it.
	[ $rc = 0 ] && [ "${BOOT_KEEP:-0}" = 1 ] && return 0
	kill $qpid 2>/dev/null
	sleep 1
	kill -9 $qpid 2>/dev/null
	wait $qpid 2>/dev/null
	return $rc
}

# sha256 of files, "digest *name" per line; OpenSSL's is several times faster than
# coreutils' on multi-gigabyte sparse images.
sums() {
	openssl dgst -sha256 -r "$@"
}

# Copy the project (spec, the files it bakes, user-data templates) to $1.
t_copy_project() {
	mkdir -p "$1"
	for f in ansible-free-scripts cloud-init images stacks imgbuild.yaml; do
		cp -r "$TOP/$f" "$1/"
	done
}

# Stand-ins for what the roles of project $1 download (dl.k8s.io, GitHub releases,
# registries: unreachable from test machines), laid out as a directory mirror in $2 for
# `--mirror $2`. tests/k8s/mkpayloads.py says which are real Debian binaries and which are
# stand-ins; this prints that once per test. The tooling role's images come from
# tests/tooling/mkimages.py instead: images that run Debian's Prometheus, exporters and
# PostgreSQL for real, and HTTP stand-ins for the rest (its layers are cached under
# tests/tmp/tooling-images-cache: a few seconds once, instant after).
t_payloads() {
	roles=$(cd "$1/images" && grep -L '^abstract: true' ./*.yaml | sed 's|^\./||; s|\.yaml$||' | grep -vx tooling | tr '\n' ' ')
	# shellcheck disable=SC2086
	python3 "$TOP/tests/k8s/mkpayloads.py" "$1" "$2" $roles >"$T/payloads.txt" ||
		fail "mkpayloads.py failed"
	echo "payloads: $(grep -c ' real ' "$T/payloads.txt") real Debian binaries and" \
		"$(grep -c ' stand-in ' "$T/payloads.txt") stand-ins served from a directory mirror" \
		"(not exercised: upstream kubeadm, kubelet, kubectl, crictl and images)"
	if [ -f "$1/images/tooling.yaml" ]; then
		python3 "$TOP/tests/tooling/mkimages.py" "$1" "$2" >"$T/tooling-images.txt" ||
			fail "tests/tooling/mkimages.py failed"
		echo "tooling images: $(grep -c '^image [^ ]* real ' "$T/tooling-images.txt") run Debian's software" \
			"($(awk '$1 == "image" && $3 == "real" { printf "%s%s", s, $2; s = ", " }' "$T/tooling-images.txt"));" \
			"$(grep -c '^image [^ ]* stand-in ' "$T/tooling-images.txt") are HTTP stand-ins" \
			"($(awk '$1 == "image" && $3 == "stand-in" { printf "%s%s", s, $2; s = ", " }' "$T/tooling-images.txt"))"
		! grep -q '^plugin ' "$T/tooling-images.txt" ||
			echo "jenkins plugins: $(grep -c '^plugin ' "$T/tooling-images.txt") stand-in .hpi files and their" \
				"sha256 files served for updates.jenkins.io and repo.jenkins-ci.org, with the real manifests'" \
				"dependency declarations as tests/tooling/jenkins-manifests.txt records them (not exercised:" \
				"the real plugins, Jenkins loading them)"
	fi
}
