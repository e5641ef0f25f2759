#!/bin/sh
# `imgbuild diff A B`: two small GPT disks laid out like imgbuild's (an ESP and an ext4 root
# whose fstab mounts the ESP by its volume id), with the same filesystem ids in both as two
# builds of one role have, and known differences: a file added, one removed, contents
# changed (on the root and on the ESP), modes (of a file and of the root directory), an
# owner, a symlink target, a file become a directory, and a name with a newline. The output must be exactly those, no more and no
# less; an identical copy gives nothing and exit 0; usage errors and unreadable images
# exit 2. Three appliance launches in all.
. "$(dirname "$0")/../lib.sh"
t_init 14-diff
for p in sfdisk mkfs.ext4 debugfs mkfs.fat mcopy python3; do
	command -v $p >/dev/null || skip "$p is missing (make deps)"
done
[ "$(id -u)" = 0 ] || skip "the trees need files owned by another user: run as root"
[ "$(qemu_accel)" = tcg ] && export LIBGUESTFS_BACKEND_SETTINGS=force_tcg
bin=${IMGBUILD_SAN:-$IMGBUILD}
[ -x "$bin" ] || bin=$IMGBUILD

# Usage and unreadable images need no appliance.
for b in $(binaries); do
	expect_exit 2 "$b" diff
	grep -q "takes exactly two images" "$T/err" || fail "no image: $(cat "$T/err")"
	expect_exit 2 "$b" diff a.raw
	expect_exit 2 "$b" diff "$T/missing.raw" "$T/missing.raw"
	grep -q "^imgbuild: error: cannot open image '$T/missing.raw': No such file" "$T/err" ||
		fail "missing image: $(cat "$T/err")"
	expect_exit 2 "$b" diff "$T" "$T"
	grep -q "not a regular file" "$T/err" || fail "directory as image: $(cat "$T/err")"
done
ok "usage and unreadable images exit 2"

ROOT_UUID=6e1c1a62-5a3f-4c43-9a35-0f3c9e0d0b11
ESP_ID=1234ABCD
# mkdisk NAME TREE ESPTREE: a 96 MiB GPT disk, p1 an 8 MiB FAT ESP, p2 the ext4 root.
mkdisk() {
	d=$T/$1.raw
	rm -f "$d"
	truncate -s 96M "$d"
	printf 'label: gpt\nstart=2048, size=16384, type=C12A7328-F81F-11D2-BA4B-00A0C93EC93B\nstart=18432, type=0FC63DAF-8483-4772-8E79-3D69D8477DE4\n' |
		sfdisk -q "$d" || fail "sfdisk"
	rm -f "$T/esp.img" "$T/root.img"
	mkfs.fat -C -i $ESP_ID "$T/esp.img" 8192 >/dev/null || fail "mkfs.fat"
	MTOOLS_SKIP_CHECK=1 mcopy -s -i "$T/esp.img" "$3/EFI" ::/ || fail "mcopy"
	size=$(( (96 - 9) * 1024 - 1024 ))
	mkfs.ext4 -q -U $ROOT_UUID -E root_owner=0:0 -d "$2" "$T/root.img" ${size}k >/dev/null || fail "mkfs.ext4"
	# mkfs.ext4 -d gives the root 0755 whatever the tree's: set it as the tree has it.
	debugfs -w -R "sif <2> mode 040$(stat -c %a "$2")" "$T/root.img" 2>/dev/null || fail "debugfs"
	dd if="$T/esp.img" of="$d" bs=512 seek=2048 conv=notrunc,sparse status=none
	dd if="$T/root.img" of="$d" bs=512 seek=18432 conv=notrunc,sparse status=none
}

A=$T/a B=$T/b
mkdir -p "$A/etc/app" "$A/boot/efi" "$A/usr/bin" "$A/srv/data" "$A/var" "$A.esp/EFI/BOOT"
printf 'UUID=%s / ext4 defaults 0 1\nUUID=%s-%s /boot/efi vfat umask=0077 0 1\n' \
	$ROOT_UUID "$(echo $ESP_ID | cut -c1-4)" "$(echo $ESP_ID | cut -c5-8)" >"$A/etc/fstab"
for i in $(seq 1 200); do echo "same $i" >"$A/etc/app/same$i"; done
echo hello >"$A/etc/motd"
echo old >"$A/etc/old"
printf '#!/bin/sh\n' >"$A/usr/bin/tool" && chmod 0755 "$A/usr/bin/tool"
echo data >"$A/srv/data/f"
ln -s target-a "$A/etc/link"
echo x >"$A/var/x"
printf 'one' >"$A/etc/new
line"
echo loader-a >"$A.esp/EFI/BOOT/BOOTX64.EFI"
echo same >"$A.esp/EFI/BOOT/grub.cfg"
cp -a "$A" "$B"
cp -a "$A.esp" "$B.esp"
echo HELLO >"$B/etc/motd"                    # content, same size
rm "$B/etc/old"                              # removed
echo new >"$B/etc/added"                     # added
chmod 0700 "$B/usr/bin/tool"                 # mode
chown -R 1000:1000 "$B/srv/data"             # owner (directory and file)
ln -sfn target-b "$B/etc/link"               # target
rm "$B/var/x" && mkdir "$B/var/x" && echo in >"$B/var/x/inner" # type, and added below
printf 'two' >"$B/etc/new
line"                                        # content, a name with a newline
echo loader-b >"$B.esp/EFI/BOOT/BOOTX64.EFI" # content on the ESP
chmod 0750 "$B"                              # the root directory's mode
export SOURCE_DATE_EPOCH=1700000000
mkdisk a "$A" "$A.esp"
mkdisk b "$B" "$B.esp"
cp "$T/a.raw" "$T/a-copy.raw"
qemu-img convert -f raw -O qcow2 "$T/b.raw" "$T/b.qcow2" || fail "qemu-img convert"

cat >"$T/expected" <<'EOF'
mode     /
content  /boot/efi/EFI/BOOT/BOOTX64.EFI
added    /etc/added
target   /etc/link
content  /etc/motd
content  /etc/new\x0aline
removed  /etc/old
owner    /srv/data
owner    /srv/data/f
mode     /usr/bin/tool
type     /var/x
added    /var/x/inner
EOF
start=$(date +%s)
expect_exit 1 "$bin" diff "$T/a.raw" "$T/b.qcow2"
echo "diff of two images: $(( $(date +%s) - start ))s"
diff -u "$T/expected" "$T/out" || fail "diff named other differences than the planted ones"
ok "every planted difference named, nothing else (raw against qcow2, ESP resolved on each disk)"

# The other way round, as JSON: added and removed swap, and each side says what it has.
expect_exit 1 "$bin" diff --json "$T/b.qcow2" "$T/a.raw"
python3 - "$T/out" "$T/expected" "$A" "$B" <<'PY' || fail "diff --json B A: $(cat "$T/out")"
import hashlib, json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
ev = [e for e in ev if e["event"] != "stage"]
s = ev[-1]
d = {e["path"]: e for e in ev[:-1]}
assert all(e["event"] == "difference" for e in ev[:-1]) and s["event"] == "summary", ev
swap = {"added": "removed", "removed": "added"}
want = {}
for line in open(sys.argv[2]):
    kinds, path = line.rstrip("\n").split(None, 1)
    want[path.replace("\\x0a", "\n")] = [swap.get(k, k) for k in kinds.split(",")]
assert {p: e["kinds"] for p, e in d.items()} == want, ({p: e["kinds"] for p, e in d.items()}, want)
assert list(d) == sorted(d), "not sorted"
assert s["same"] is False and s["differences"] == len(want), s
sha = lambda p: hashlib.sha256(open(p, "rb").read()).hexdigest()
A, B = sys.argv[3], sys.argv[4]
m = d["/etc/motd"]
assert m["a"]["sha256"] == sha(B + "/etc/motd") and m["b"]["sha256"] == sha(A + "/etc/motd"), m
assert m["a"]["size"] == m["b"]["size"] == 6, m
assert d["/usr/bin/tool"]["a"]["mode"] == "0700" and d["/usr/bin/tool"]["b"]["mode"] == "0755"
assert d["/srv/data"]["a"]["uid"] == 1000 and d["/srv/data"]["b"]["uid"] == 0
assert d["/etc/link"]["a"]["target"] == "target-b" and d["/etc/link"]["b"]["target"] == "target-a"
assert d["/var/x"]["a"]["type"] == "d" and d["/var/x"]["b"]["type"] == "f"
assert "b" not in d["/etc/added"] and d["/etc/old"]["b"]["type"] == "f"
assert d["/"]["a"]["mode"] == "0750" and d["/"]["b"]["mode"] == "0755", d["/"]
e = d["/boot/efi/EFI/BOOT/BOOTX64.EFI"]
assert e["a"]["sha256"] == sha(B + ".esp/EFI/BOOT/BOOTX64.EFI"), e
print(f"B against A: {len(d)} differences, each side's metadata as made")
PY
ok "--json: the same differences the other way round, with both sides' type, mode, owner, sha256 and target"

start=$(date +%s)
expect_exit 0 "$bin" diff --json "$T/a.raw" "$T/a-copy.raw"
echo "diff of identical images: $(( $(date +%s) - start ))s"
python3 - "$T/out" <<'PY' || fail "identical copies: $(cat "$T/out")"
import json, sys
ev = [json.loads(l) for l in open(sys.argv[1])]
ev = [e for e in ev if e["event"] != "stage"]
assert len(ev) == 1, ev
s = ev[0]
assert s["event"] == "summary" and s["same"] is True and s["differences"] == 0, s
# Everything was read: the root's 200 + files and the ESP's.
assert s["paths_a"] == s["paths_b"] and s["paths_a"] > 210, s
print(f"identical: {s['paths_a']} paths each, none differ (launch {s['launch_seconds']:.1f}s, all {s['seconds']:.1f}s)")
PY
ok "an identical copy: no difference, exit 0"
