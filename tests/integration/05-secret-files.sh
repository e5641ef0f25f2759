#!/bin/sh
# Secrets on disk: every file `cluster plan`, `seed` (with and without a plan) and
# `key generate` write is created with its final mode (0600, 0644 only for a certificate
# or a public key): under umask 000, strace shows each file's creation and every later
# mode change, so a file that was 0644 for a moment, or chmod-ed after its secret was
# written, fails. Their -vv logs name no token, certificate key or private key.
. "$(dirname "$0")/../lib.sh"
t_init 05-secret-files
command -v strace >/dev/null || skip "strace is not installed (make deps)"
command -v python3 >/dev/null || skip "python3 is missing"

P=$T/p
mkdir -p "$P/images"
cp -r "$TOP/cloud-init" "$P/"
printf 'project: secrets\ndebian:\n  suite: bookworm\n  mirror: http://deb.debian.org/debian\n  architecture: amd64\noutput:\n  dir: out\n' >"$P/imgbuild.yaml"
echo 'description: base' >"$P/images/base.yaml"
printf 'description: control plane\nextends: base\n' >"$P/images/master.yaml"
printf 'description: node\nextends: base\n' >"$P/images/worker.yaml"
printf 'description: tooling\nextends: base\n' >"$P/images/tooling.yaml"
ssh-keygen -q -t ed25519 -N '' -f "$T/ssh" 2>/dev/null || printf 'ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJ+test test@imgbuild\n' >"$T/ssh.pub"

for bin in $(binaries); do
	rm -rf "$P/out" "$T/seeds" "$T/keys" "$T"/*.trace
	mkdir -p "$T/keys"
	# run NAME CMD...: CMD under strace and umask 000, its -vv output in $T/NAME.log.
	# LeakSanitizer cannot work under ptrace: leaks are 04-cluster-plan's and 35-bundle's.
	run() {
		name=$1
		shift
		(umask 000 && export ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0" && exec strace -f -qq -y -o "$T/$name.trace" \
			-e trace=open,openat,creat,mkdir,mkdirat,chmod,fchmod,fchmodat,rename,renameat,renameat2,link,linkat \
			"$@") >"$T/$name.log" 2>&1 || { cat "$T/$name.log"; fail "$name: $* failed"; }
	}
	run plan "$bin" -C "$P" -vv cluster plan --master-address 10.88.0.10 --ssh-key "$T/ssh.pub"
	run seed "$bin" -C "$P" -vv seed base -o "$T/seeds" --ssh-key "$T/ssh.pub"
	run planseed "$bin" -C "$P" -vv seed worker --plan "$P/out/cluster" --hostname worker-5 -o "$T/seeds"
	run key "$bin" -vv key generate "$T/keys/site"
	python3 - "$T" "$P/out/cluster" "$T/seeds" "$T/keys" <<'PY' || fail "modes"
import os, re, stat, sys
t, dirs = sys.argv[1], sys.argv[2:]
public = re.compile(r".*(\.crt|\.pub)$")
# Every file there now, with the mode it must have had from its creation on.
want = {}
for d in dirs:
    for n in os.listdir(d):
        want[os.path.join(d, n)] = 0o644 if public.match(n) else 0o600
assert len(want) == 13, sorted(want)
created, changed = {}, []
call = re.compile(r'^\d+ +(\w+)\((.*)\) += (-?\d+)')
for name in ["plan", "seed", "planseed", "key"]:
    for line in open(f"{t}/{name}.trace"):
        m = call.match(line)
        if not m or m.group(3).startswith("-"):
            continue
        fn, args = m.group(1), m.group(2)
        paths = re.findall(r'"([^"]*)"|<([^>]*)>', args)
        paths = [a or b for a, b in paths]
        mode = re.search(r", (0[0-7]+)$", args)
        if fn in ("open", "openat", "creat") and ("O_CREAT" in args or fn == "creat"):
            created[paths[-1]] = int(mode.group(1), 8)
        elif fn in ("mkdir", "mkdirat"):
            created[paths[-1]] = int(mode.group(1), 8)
        elif fn in ("chmod", "fchmod", "fchmodat"):
            changed.append((paths[-1], int(mode.group(1), 8)))
        elif fn in ("rename", "renameat", "renameat2", "link", "linkat"):
            # The final name's mode at creation is its temporary name's.
            src, dst = paths[-2], paths[-1]
            if src in created:
                created[dst] = created[src]
bad = []
for path, mode in sorted(want.items()):
    got = created.get(path)
    if got is None:
        bad.append(f"{path}: no creation seen")
    elif got != mode:
        bad.append(f"{path}: created {got:04o}, should be {mode:04o}")
    if stat.S_IMODE(os.stat(path).st_mode) != mode:
        bad.append(f"{path}: mode {stat.S_IMODE(os.stat(path).st_mode):04o}")
# A mode change may only repeat the final mode of a file in these directories (fchmod
# against the umask), never open one up for a moment.
for path, mode in changed:
    final = next((f for f in want if path == f or path.startswith(f + ".tmp.")
                  or os.path.basename(path) == os.path.basename(f) and ".plan.tmp." in path), None)
    if final and mode != want[final]:
        bad.append(f"{path}: chmod {mode:04o}")
plan = dirs[0]
if created.get(plan) != 0o700:
    bad.append(f"{plan}: created {created.get(plan)}, should be 0700")
assert not bad, "\n".join(bad)
print(f"{len(want)} files, each created with its final mode; {len(changed)} mode changes, none wider")
PY
	ok "cluster plan, seed, seed --plan, key generate: secret files 0600 from creation under umask 000 ($bin)"

	TOKEN=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["token"])' "$P/out/cluster/plan.json")
	CKEY=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["certificate_key"])' "$P/out/cluster/plan.json")
	for log in plan seed planseed key; do
		for s in "$TOKEN" "$CKEY" "PRIVATE KEY" "$(sed -n 2p "$P/out/cluster/ca.key")" "$(sed -n 2p "$T/keys/site.key")"; do
			! grep -qF -- "$s" "$T/$log.log" || fail "$log -vv shows a secret: $s"
		done
		[ -s "$T/$log.log" ] || fail "$log -vv logged nothing"
	done
	ok "-vv logs of cluster plan, seed, key generate show no token, certificate key or private key"
done
