#!/bin/sh
# Install every build, test and run dependency of imgbuild from Debian 12 packages.
# Idempotent: does nothing when all packages are present. Needs root (or sudo).
set -eu

PKGS="build-essential pkg-config
libarchive-dev libyaml-dev libcurl4-openssl-dev libssl-dev libguestfs-dev check
mmdebstrap e2fsprogs fdisk uidmap ca-certificates debian-archive-keyring
qemu-utils qemu-system-x86 ovmf
grub-pc-bin grub-efi-amd64-bin grub-common mtools dosfstools
linux-image-amd64 libguestfs-tools
xorriso python3 python3-yaml python3-jsonschema docker-registry skopeo containerd busybox-static curl valgrind cppcheck clang-format time bc openssh-client
shellcheck containernetworking-plugins runc prometheus docker-compose
prometheus-alertmanager prometheus-blackbox-exporter cloud-init postgresql
zstd openssl gdisk"
# clang and its runtimes (libFuzzer, only recommended by clang-14): make fuzz, check-fuzz.
PKGS="$PKGS clang libclang-rt-14-dev"
# strace: tests/integration/05-secret-files.sh sees each secret file's mode at creation.
PKGS="$PKGS strace"

missing=""
for p in $PKGS; do
	st=$(dpkg-query -W -f='${Status}' "$p" 2>/dev/null || true)
	case "$st" in
	"install ok installed") ;;
	*) missing="$missing $p" ;;
	esac
done
if [ -z "$missing" ]; then
	echo "deps: all $(echo $PKGS | wc -w) packages present"
	exit 0
fi

SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo
echo "deps: installing:$missing"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
# shellcheck disable=SC2086
$SUDO apt-get install -y -q --no-install-recommends $missing
