#!/bin/sh
# Two builds at once on one fresh cache, into two fresh output directories: the root
# filesystem is bootstrapped once (the second build waits for the first's lock, then reuses
# it), both succeed, and their raw images are bit-identical (UUIDs and seeds follow from
# the spec, times are clamped), although the second runs with another umask, time zone and
# locale, and at another time. Then two builds at once into one output directory: one
# waits, the other reuses. (--no-verify: reading images back is 10-build's and 12-verify's.)
. "$(dirname "$0")/../lib.sh"
t_init 13-concurrent
bin=$IMGBUILD
P=$T/project
mkdir -p "$P"
for f in ansible-free-scripts cloud-init images stacks imgbuild.yaml; do cp -r "$TOP/$f" "$P/"; done
sed -i 's/^  size: .*/  size: 2G/' "$P/imgbuild.yaml"
export IMGBUILD_CACHE_DIR="$T/cache"

"$bin" -C "$P" -o "$T/out1" build base --no-verify --json >"$T/a.json" 2>"$T/a.err" &
a=$!
(umask 0027 && TZ=Pacific/Kiritimati LC_ALL=C.UTF-8 exec "$bin" -C "$P" -o "$T/out2" build base --no-verify --json) >"$T/b.json" 2>"$T/b.err" &
b=$!
wait $a || { cat "$T/a.err"; fail "first build failed"; }
wait $b || { cat "$T/b.err"; fail "second build failed"; }
reused=$(python3 -c '
import json, sys
r = [json.loads(open(f).readlines()[-1])["roles"][0]["rootfs_reused"] for f in sys.argv[1:]]
print(sorted(r))' "$T/a.json" "$T/b.json")
[ "$reused" = "[False, True]" ] || fail "the root filesystem was bootstrapped more than once: $reused"
[ "$(ls "$T/cache/rootfs" | grep -c '\.tar$')" = 1 ] || fail "cache: $(ls "$T/cache/rootfs")"
[ -z "$(ls -A "$T/cache/rootfs" | grep tmp)" ] || fail "temporary files in the cache: $(ls -A "$T/cache/rootfs")"
s1=$(sums "$T/out1/base.raw" | cut -d' ' -f1)
s2=$(sums "$T/out2/base.raw" | cut -d' ' -f1)
[ "$s1" = "$s2" ] || fail "two builds of one spec differ: $s1 $s2"
[ "$(ls "$T/out1" | grep -v '^\.' | sort | tr '\n' ' ')" = "base.manifest.json base.qcow2 base.raw base.stamp " ] ||
	fail "out1 is not a clean output directory: $(ls -A "$T/out1")"
cmp -s "$T/out1/base.manifest.json" "$T/out2/base.manifest.json" || fail "manifests differ"
ok "concurrent builds on one cache: one bootstrap, bit-identical images ($s1)"

"$bin" -C "$P" -o "$T/out1" build base --force --no-verify --json >"$T/c.json" 2>"$T/c.err" &
c=$!
"$bin" -C "$P" -o "$T/out1" build base --no-verify --json >"$T/d.json" 2>"$T/d.err" &
d=$!
wait $c || { cat "$T/c.err"; fail "forced build failed"; }
wait $d || { cat "$T/d.err"; fail "concurrent build failed"; }
[ "$(sums "$T/out1/base.raw" | cut -d' ' -f1)" = "$s1" ] || fail "outputs changed"
[ -z "$(ls -A "$T/out1/.imgbuild-work" 2>/dev/null)" ] || fail "work files left"
ok "concurrent builds into one output directory both end well with the same image"
