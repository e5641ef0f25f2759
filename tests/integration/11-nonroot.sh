#!/bin/sh
# A build as a normal user: mmdebstrap's unshare mode, then assembly in a user namespace
# mapping the user's subordinate ids, gives the image the owners a build as root gives it.
# Read back with e2fsprogs: owners and modes of key files, e2fsck, and every (path, uid,
# gid, mode) against a root build from the same root filesystem tar. Also: nothing left in
# the work directory after success, SIGINT, or an assembly child killed outright (its tree
# belongs to subordinate ids the user cannot remove outside the namespace), and a second
# run with no change rebuilds nothing.
. "$(dirname "$0")/../lib.sh"
t_init 11-nonroot
U=imgbuild-t

[ "$(id -u)" = 0 ] || skip "needs root to create the test user '$U'"
for p in runuser useradd usermod unshare newuidmap mmdebstrap debugfs e2fsck sfdisk python3; do
	command -v $p >/dev/null || skip "$p is not installed (run 'make deps')"
done
if ! id "$U" >/dev/null 2>&1; then
	useradd -m "$U" || fail "cannot create user '$U'"
fi
# Subordinate ranges past every existing one, so that they overlap no other user's.
next=$(cat /etc/subuid /etc/subgid 2>/dev/null |
	awk -F: 'BEGIN { m = 100000 } NF >= 3 && $2 + $3 > m { m = $2 + $3 } END { print m }')
range=$next-$((next + 65535))
grep -q "^$U:" /etc/subuid 2>/dev/null || usermod --add-subuids "$range" "$U" || fail "usermod --add-subuids"
grep -q "^$U:" /etc/subgid 2>/dev/null || usermod --add-subgids "$range" "$U" || fail "usermod --add-subgids"
UHOME=$(getent passwd "$U" | cut -d: -f6)
UID_U=$(id -u "$U")

# The user needs a directory of its own; tests/tmp may sit under a directory it cannot enter.
W=$T/user
mkdir -p "$W"
chown "$U:" "$W"
if ! runuser -u "$U" -- test -w "$W"; then
	W=$(mktemp -d /tmp/imgbuild-11-nonroot.XXXXXX) || fail "mktemp"
	chown "$U:" "$W"
	trap 'rm -rf "$W"' EXIT
fi
(cd "$W" && runuser -u "$U" -- unshare --user --map-root-user --map-auto true) 2>"$T/probe.err" ||
	skip "user namespaces with subordinate ids do not work for '$U' here: $(cat "$T/probe.err")"

bin=${IMGBUILD_SAN:-$IMGBUILD}
[ -x "$bin" ] || bin=$IMGBUILD
P=$W/p
OUT=$P/out
mkdir -p "$P" "$W/bin"
for f in ansible-free-scripts cloud-init images stacks imgbuild.yaml; do
	cp -r "$TOP/$f" "$P/"
done
sed -i 's/^  size: .*/  size: 2G/' "$P/imgbuild.yaml"
cp "$bin" "$W/bin/imgbuild" # the user may not reach the build tree
chown -R "$U:" "$W"
as_user() {
	(cd "$W" && runuser -u "$U" -- env HOME="$UHOME" IMGBUILD_CACHE_DIR="$W/cache" "$@")
}
json_result() { # FILE: the result of the only role in a --json summary
	python3 -c 'import json,sys; s=json.loads(open(sys.argv[1]).readlines()[-1]); print(s["roles"][0]["result"])' "$1"
}
no_work_left() { # WHAT
	[ -z "$(ls -A "$OUT/.imgbuild-work" 2>/dev/null)" ] || fail "$1: work files left: $(ls -A "$OUT/.imgbuild-work")"
	ls -A "$OUT" | grep -q tmp && fail "$1: temporary files left: $(ls -A "$OUT")"
	sleep 1
	pgrep -u "$U" >/dev/null && fail "$1: processes of '$U' still running: $(pgrep -a -u "$U")"
	return 0
}

echo "building base as '$U' with $bin (bootstraps with mmdebstrap --mode=unshare)"
start=$(date +%s)
as_user "$W/bin/imgbuild" -C "$P" build base --no-verify --json >"$T/user.json" 2>"$T/user.err" ||
	{ cat "$T/user.err"; fail "the build as '$U' failed"; }
echo "build as '$U': $(( $(date +%s) - start ))s"
tail -1 "$T/user.json"
[ "$(json_result "$T/user.json")" = rebuilt ] || fail "not rebuilt: $(tail -1 "$T/user.json")"
for f in base.raw base.qcow2 base.manifest.json; do
	[ "$(stat -c %U "$OUT/$f")" = "$U" ] || fail "$f is not owned by '$U'"
done
no_work_left "after the build"
ok "built as '$U': outputs owned by the user, no work files left"

# The root filesystem read back with e2fsprogs.
off=$(sfdisk --json "$OUT/base.raw" | python3 -c 'import json,sys; print(json.load(sys.stdin)["partitiontable"]["partitions"][2]["start"])')
dd if="$OUT/base.raw" of="$T/user.ext4" bs=512 skip="$off" conv=sparse status=none
e2fsck -fn "$T/user.ext4" >"$T/fsck.log" 2>&1 || { cat "$T/fsck.log"; fail "e2fsck found errors"; }
export DEBUGFS_PAGER=__none__
dbg() { debugfs -R "$1" "$T/user.ext4" 2>/dev/null; }
owner() { # PATH -> uid:gid:mode as debugfs shows them
	dbg "stat $1" | awk '/Mode:/ { for (i = 1; i < NF; i++) if ($i == "Mode:") m = $(i + 1) }
		/^User:/ { u = $2; g = $4 } END { print u ":" g ":" m }'
}
check_owner() { # PATH WANT
	got=$(owner "$1")
	[ "$got" = "$2" ] || fail "$1 is $got (uid:gid:mode), expected $2"
}
check_owner / 0:0:0755
check_owner /etc/shadow 0:42:0640
check_owner /etc/passwd 0:0:0644
journal_gid=$(dbg 'cat /etc/group' | awk -F: '$1 == "systemd-journal" { print $3 }')
[ -n "$journal_gid" ] || fail "no systemd-journal group in the image's /etc/group"
check_owner /var/log/journal "0:$journal_gid:02755"
if dbg 'stat /usr/bin/sudo' | grep -q 'Type: regular'; then
	check_owner /usr/bin/sudo 0:0:04755
fi
ok "root filesystem: e2fsck clean; /, /etc/shadow (0:42 0640), /var/log/journal (0:$journal_gid), sudo setuid root"

# The same project built as root from the same root filesystem tar (the cache key does not
# depend on the mode mmdebstrap ran in): only assembly differs, so every owner and mode
# must match.
R=$T/root
mkdir -p "$R/cache/rootfs"
for f in ansible-free-scripts cloud-init images stacks imgbuild.yaml; do
	cp -r "$P/$f" "$R/"
done
for tar in "$W"/cache/rootfs/*.tar; do
	ln "$tar" "$R/cache/rootfs/" 2>/dev/null || cp "$tar" "$R/cache/rootfs/"
done
IMGBUILD_CACHE_DIR=$R/cache "$bin" -C "$R" build base --no-verify --json >"$T/root.json" 2>"$T/root.err" ||
	{ cat "$T/root.err"; fail "the build as root failed"; }
python3 -c 'import json,sys; s=json.loads(open(sys.argv[1]).readlines()[-1]); assert s["roles"][0]["rootfs_reused"], s' "$T/root.json" ||
	fail "the root build did not reuse the user's root filesystem tar"
off=$(sfdisk --json "$R/out/base.raw" | python3 -c 'import json,sys; print(json.load(sys.stdin)["partitiontable"]["partitions"][2]["start"])')
dd if="$R/out/base.raw" of="$T/root.ext4" bs=512 skip="$off" conv=sparse status=none
python3 - "$T/user.ext4" "$T/root.ext4" <<'PY' || fail "owners or modes differ from the build as root"
import os, stat, subprocess, sys, tempfile

def listing(img):
    """{path: (mode, uid, gid)} of every entry of an ext4 image, from `debugfs ls -p`
    (/inode/mode/uid/gid/name/size/), one debugfs run per directory depth."""
    out, level = {}, ["/"]
    while level:
        with tempfile.NamedTemporaryFile("w", suffix=".cmds", delete=False) as f:
            f.write("".join("ls -p %s\n" % d for d in level))
        text = subprocess.run(["debugfs", "-f", f.name, img], capture_output=True, text=True,
                              check=True).stdout
        os.unlink(f.name)
        nxt, cur = [], None
        for line in text.splitlines():
            if line.startswith("debugfs: ls -p "):
                cur = line[len("debugfs: ls -p "):]
                continue
            if cur is None or not line.startswith("/"):
                continue
            f = line.split("/")
            mode, uid, gid, name = int(f[2], 8), int(f[3]), int(f[4]), "/".join(f[5:-2])
            if name == "..":
                continue
            path = cur if name == "." else cur.rstrip("/") + "/" + name
            out[path] = (mode, uid, gid)
            if name != "." and stat.S_ISDIR(mode):
                nxt.append(path)
        level = nxt
    return out

user, root = listing(sys.argv[1]), listing(sys.argv[2])
assert len(root) > 5000, len(root)
bad = []
for p in sorted(set(user) | set(root)):
    u, r = user.get(p), root.get(p)
    if u == r:
        continue
    # A user namespace cannot create device nodes: the root build has /dev/null and its
    # siblings from mmdebstrap's tar, the user's image has none (devtmpfs is mounted on
    # /dev at boot anyway).
    if u is None and p.startswith("/dev/") and (stat.S_ISCHR(r[0]) or stat.S_ISBLK(r[0])):
        continue
    bad.append("%s: user %s, root %s" % (p, u and "%o %d:%d" % u,
                                         r and "%o %d:%d" % r))
for b in bad[:20]:
    print(b)
print("%d entries compared, %d differ" % (len(root), len(bad)))
sys.exit(1 if bad else 0)
PY
ok "every path's owner and mode matches the build as root (device nodes aside)"

# Interrupted in the middle of the assembly, with the tree's files owned by subordinate ids:
# nothing left behind, earlier outputs intact. Then the assembly child killed outright (no
# chance to clean up): the parent removes its tree inside the namespace.
before=$(cd "$OUT" && stat -c '%n %s %Y' base.raw base.qcow2 base.manifest.json)
wait_tree() {
	i=0
	while [ $i -lt 120 ] && ! ls -d "$OUT"/.imgbuild-work/base.*/tree/usr >/dev/null 2>&1; do
		sleep 0.5
		i=$((i + 1))
	done
	sleep 1
}
as_user "$W/bin/imgbuild" -C "$P" build base --force --no-verify >"$T/int.out" 2>"$T/int.err" &
pid=$!
wait_tree
ipid=$(pgrep -u "$U" -f 'imgbuild -C .* build base --force' | head -1)
[ -n "$ipid" ] || fail "the interrupted build is not running: $(cat "$T/int.err")"
kill -INT "$ipid"
wait $pid
rc=$?
[ $rc = 1 ] || fail "SIGINT: exit $rc, expected 1: $(cat "$T/int.err")"
grep -q interrupted "$T/int.err" || fail "SIGINT: no message: $(cat "$T/int.err")"
no_work_left "SIGINT"

as_user "$W/bin/imgbuild" -C "$P" build base --force --no-verify >"$T/kill.out" 2>"$T/kill.err" &
pid=$!
wait_tree
cpid=$(pgrep -u "$U" -f 'imgbuild __assemble' | head -1)
[ -n "$cpid" ] || fail "no assembly child running: $(cat "$T/kill.err")"
kill -KILL "$cpid"
wait $pid
rc=$?
[ $rc = 1 ] || fail "killed child: exit $rc, expected 1: $(cat "$T/kill.err")"
grep -q 'killed by signal 9' "$T/kill.err" || fail "killed child: $(cat "$T/kill.err")"
no_work_left "killed assembly child"
[ "$(cd "$OUT" && stat -c '%n %s %Y' base.raw base.qcow2 base.manifest.json)" = "$before" ] ||
	fail "interrupted builds changed the outputs"
ok "SIGINT and a killed assembly child leave no work files, no processes, outputs intact"

# Nothing changed: nothing is rebuilt.
as_user "$W/bin/imgbuild" -C "$P" build base --no-verify --json >"$T/noop.json" 2>"$T/noop.err" ||
	{ cat "$T/noop.err"; fail "no-op build failed"; }
[ "$(json_result "$T/noop.json")" = reused ] || fail "a no-op run rebuilt: $(tail -1 "$T/noop.json")"
ok "a second run as '$U' with no change reuses the outputs"
