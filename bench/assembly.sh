#!/bin/sh
# Benchmark: with a warm cache, imgbuild's assembly of a role image against virt-make-fs
# (libguestfs) on the same root filesystem, side by side in one run; then a warm rebuild of
# all roles, a no-op `imgbuild all`, and peak memory. Prints figures and ratios; asserts
# nothing (targets are in the README).
set -eu
TOP=$(cd "$(dirname "$0")/.." && pwd)
IMGBUILD=${IMGBUILD:-$TOP/build/imgbuild}
W=$TOP/bench/results
mkdir -p "$W"
OUT=$W/out
command -v virt-make-fs >/dev/null || { echo "virt-make-fs missing: make deps"; exit 1; }
command -v /usr/bin/time >/dev/null || { echo "/usr/bin/time missing: apt-get install time"; exit 1; }

now() { date +%s.%N; }
secs() { echo "$2 - $1" | bc -l | xargs printf '%.1f'; }

echo "== warming the cache (bootstraps once if needed)"
"$IMGBUILD" -C "$TOP" -o "$OUT" build base -q --no-verify
key=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["inputs"]["rootfs_key"])' "$OUT/base.manifest.json")
cache=${IMGBUILD_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/imgbuild}
tar=$cache/rootfs/$key.tar
[ -f "$tar" ] || { echo "cached root filesystem not found at $tar"; exit 1; }
echo "root filesystem: $tar ($(du -h "$tar" | cut -f1))"

echo "== imgbuild: build base --force (unpack, layer, GPT+ext4+FAT+GRUB, qcow2, manifest)"
t0=$(now)
/usr/bin/time -f '%M' -o "$W/rss-one" "$IMGBUILD" -C "$TOP" -o "$OUT" build base --force --no-verify --json >"$W/one.json"
t1=$(now)
ib=$(secs "$t0" "$t1")
rss_own=$(tail -1 "$W/one.json" | python3 -c 'import json,sys; print(json.load(sys.stdin).get("peak_rss_kib", 0))')
# The part that does what virt-make-fs does (a tarball in, a raw disk out): unpacking the
# root filesystem, the layer and the disk stage; the whole build adds qcow2 and manifest.
asm=$(tail -1 "$W/one.json" | python3 -c 'import json,sys; s=json.load(sys.stdin)["roles"][0]["seconds"]; print("%.1f" % (s["rootfs"]+s["layer"]+s["disk"]))')
echo "imgbuild: ${ib}s in all, ${asm}s to the raw disk"

echo "== virt-make-fs on the same tar (ext4 in a GPT disk, no bootloader: less work)"
export LIBGUESTFS_BACKEND=direct
# /dev/kvm can exist and still fail here: like imgbuild's own code, try KVM, then TCG.
# The failed KVM attempt is not counted.
accel=kvm
if ! timeout 600 virt-make-fs --format=raw --type=ext4 --partition=gpt --size=1G \
	/etc/hostname "$W/probe.img" >/dev/null 2>&1; then
	export LIBGUESTFS_BACKEND_SETTINGS=force_tcg
	accel=tcg
fi
rm -f "$W/probe.img"
echo "libguestfs appliance: $accel"
t0=$(now)
virt-make-fs --format=raw --type=ext4 --partition=gpt --size=3G "$tar" "$W/virt-make-fs.img"
t1=$(now)
vm=$(secs "$t0" "$t1")
rm -f "$W/virt-make-fs.img"
echo "virt-make-fs: ${vm}s"

echo "== warm rebuild of all roles (-j 2, --force)"
t0=$(now)
/usr/bin/time -f '%M' -o "$W/rss-all" "$IMGBUILD" -C "$TOP" -o "$OUT" all -j 2 --force --no-verify --json >"$W/all.json"
t1=$(now)
all=$(secs "$t0" "$t1")

echo "== no-op all"
t0=$(now)
"$IMGBUILD" -C "$TOP" -o "$OUT" all -q --no-verify
t1=$(now)
noop=$(echo "$t1 - $t0" | bc -l | xargs printf '%.3f')

echo
echo "figures ($(nproc) cores; libguestfs appliance: $accel)"
printf '%-46s %s\n' "imgbuild: cached tar to bootable raw disk" "${asm}s"
printf '%-46s %s\n' "virt-make-fs: same tar to raw disk (no boot)" "${vm}s"
printf '%-46s %s\n' "ratio virt-make-fs / imgbuild (tar to disk)" "$(echo "$vm / $asm" | bc -l | xargs printf '%.1fx')"
printf '%-46s %s\n' "imgbuild whole build (base, + qcow2, manifest)" "${ib}s"
printf '%-46s %s\n' "ratio virt-make-fs / imgbuild (whole build)" "$(echo "$vm / $ib" | bc -l | xargs printf '%.1fx')"
printf '%-46s %s\n' "warm rebuild of all roles (-j 2)" "${all}s"
printf '%-46s %s\n' "no-op imgbuild all" "${noop}s"
printf '%-46s %s\n' "imgbuild peak RSS (its own process)" "$((rss_own / 1024)) MiB"
printf '%-46s %s\n' "peak RSS of any process in the tree (one role)" "$(( $(cat "$W/rss-one") / 1024 )) MiB"
printf '%-46s %s\n' "peak RSS of any process in the tree (all)" "$(( $(cat "$W/rss-all") / 1024 )) MiB"
