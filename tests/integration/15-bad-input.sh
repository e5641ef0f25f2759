#!/bin/sh
# The runtime half of the bad-input corpus (the spec half is tests/specs/bad, run by
# 02-validate): bad names, bad downloads, registry errors, a corrupted cache entry and full
# disks, each against servers started here on loopback. Every case must end with one line
# naming what and where, exit 2 for bad input and 1 for failures, and leave every cache
# entry and earlier output as it was (checksummed before and after). No image is built: the
# role sits on a `base: image:` (a few hundred KiB of bytes), so `fetch` needs no root
# filesystem, and the output cases use `seed`. Already covered elsewhere, not repeated
# here: a digest mismatch in a build (30-supply), `cache verify` dropping a corrupted entry
# (30-supply), tampered registry blobs and manifests and a registry's 404 (31-oci).
# shellcheck disable=SC2086
. "$(dirname "$0")/../lib.sh"
t_init 15-bad-input
command -v python3 >/dev/null || skip "python3 is not installed (make deps)"
bin=${IMGBUILD_SAN:-$IMGBUILD}
[ -x "$bin" ] || bin=$IMGBUILD
started=$(date +%s)

PIDS="" MNTS=""
cleanup() {
	for pid in $PIDS; do kill "$pid" 2>/dev/null; done
	for m in $MNTS; do umount "$m" 2>/dev/null; done
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# start NAME CMD...: a server writing its port to $T/NAME.port; sets $PORT.
start() {
	name=$1
	shift
	"$@" --port-file "$T/$name.port" --log "$T/$name.log" --max-seconds 600 &
	PIDS="$PIDS $!"
	i=0
	until [ -s "$T/$name.port" ]; do i=$((i + 1)); [ $i -lt 50 ] || fail "$name did not start"; sleep 0.2; done
	PORT=$(cat "$T/$name.port")
}

# The state a failed command must not change: every cache entry and ref, every output file
# (names and sha256). Partial downloads in the cache's tmp/ are kept for a resume, by design.
snap() {
	for d in "$C/blobs" "$C/refs" "$OUT"; do
		[ -d "$d" ] && (cd "$d" && find . -type f | LC_ALL=C sort | xargs -r openssl dgst -sha256 -r)
	done
}

n=0
# case NAME WANT_EXIT PATTERN CMD...: CMD exits WANT_EXIT with exactly one line on stderr that
# contains PATTERN (fixed string), and changes nothing snap() sees.
case_() {
	name=$1 want=$2 pat=$3
	shift 3
	snap >"$T/before"
	expect_exit "$want" "$@"
	[ "$(wc -l <"$T/err")" = 1 ] || fail "$name: not one line: $(cat "$T/err")"
	grep -qF -- "$pat" "$T/err" || fail "$name: '$pat' not in: $(cat "$T/err")"
	snap >"$T/after"
	diff -u "$T/before" "$T/after" || fail "$name: the cache or the outputs changed"
	n=$((n + 1))
	echo "  $name: exit $want: $(cat "$T/err")"
}

# ---- servers and the project ----
mkdir -p "$T/www"
head -c 300000 /dev/urandom >"$T/www/base.raw"
head -c 200000 /dev/urandom >"$T/www/tool.bin"
head -c 100000 "$T/www/tool.bin" >"$T/www/short.bin" # the file cut short on the server
base_sha=$(sha256sum <"$T/www/base.raw" | cut -c1-64)
tool_sha=$(sha256sum <"$T/www/tool.bin" | cut -c1-64)
short_sha=$(sha256sum <"$T/www/short.bin" | cut -c1-64)
start http python3 "$TOP/tests/servers/httpd.py" --root "$T/www" --port 0
H=127.0.0.1:$PORT
start reg python3 "$TOP/tests/servers/badreg.py"
R=127.0.0.1:$PORT

P=$T/project
mkdir -p "$P/images" "$P/cloud-init"
cp "$TOP/cloud-init/base.yaml" "$P/cloud-init/app.yaml"
printf 'project: demo\ndebian:\n  suite: bookworm\n  mirror: http://deb.debian.org/debian\n' >"$P/imgbuild.yaml"
# role [ARTIFACT-URL [SHA256]] [IMAGE]: images/app.yaml on the base image, with one artifact
# and one image when given.
role() {
	{
		printf 'base:\n  image:\n    url: http://%s/base.raw\n    sha256: %s\n    format: raw\n' "$H" "$base_sha"
		if [ -n "${1:-}" ]; then
			printf 'artifacts:\n  - name: tool\n    url: %s\n    sha256: %s\n    destination: /usr/local/bin/tool\n' "$1" "$2"
		fi
		[ -z "${3:-}" ] || printf 'images:\n  - %s\n' "$3"
	} >"$P/images/app.yaml"
}
export IMGBUILD_CACHE_DIR="$T/cache"
C=$IMGBUILD_CACHE_DIR
OUT=$P/out
role
expect_exit 0 "$bin" -C "$P" -q fetch
expect_exit 0 "$bin" -C "$P" -q seed app
[ -f "$OUT/app.seed.iso" ] || fail "no seed written"
ok "servers on $H (files) and $R (a registry that answers wrongly); base image cached, a seed written"

# ---- names ----
cp "$P/images/app.yaml" "$P/images/caf$(printf '\351').yaml"
case_ non-utf8-role-file-name 2 'images/caf\xe9.yaml: invalid role file name' "$bin" -C "$P" validate
rm "$P/images/caf"*
# A terminal escape in a name is shown escaped, never sent to the terminal.
cp "$P/images/app.yaml" "$P/images/x$(printf '\033')[2Jy.yaml"
case_ escape-in-role-file-name 2 'images/x\x1b[2Jy.yaml: invalid role file name' "$bin" -C "$P" validate
! grep -q "$(printf '\033')" "$T/err" || fail "an escape reached the terminal"
rm "$P/images/x"*
# A project directory whose name is not UTF-8 works (paths are bytes): no false alarm.
mkdir -p "$T/n$(printf '\377')"
cp -r "$P/images" "$P/cloud-init" "$P/imgbuild.yaml" "$T/n$(printf '\377')/"
expect_exit 0 "$bin" -C "$T/n$(printf '\377')" validate
# --json output stays JSON (UTF-8) when a path in it is not: the byte becomes U+FFFD.
IMGBUILD_CACHE_DIR="$T/n$(printf '\377')/cache" expect_exit 0 "$bin" cache ls --json
python3 -c 'import json,sys; d=json.loads(open(sys.argv[1],"rb").read().decode("utf-8")); assert d["root"].endswith("/n\ufffd/cache"), d' "$T/out" ||
	fail "cache ls --json with a non-UTF-8 path: $(cat "$T/out")"

# ---- downloads ----
role "http://$H/tool.bin?truncate=5000" "$tool_sha"
case_ truncated-download 1 "http://$H/tool.bin?truncate=5000" "$bin" -C "$P" -q fetch
grep -q 'transfer closed\|retries exhausted' "$T/err" || fail "truncation not named"
role "http://$H/tool.bin?wrong=1" "$tool_sha"
case_ corrupted-download 1 "sha256 mismatch: expected $tool_sha, got " "$bin" -C "$P" -q fetch
grep -qF "http://$H/tool.bin?wrong=1" "$T/err" || fail "corrupted-download: the URL is not named"
role "http://$H/short.bin" "$tool_sha"
case_ short-file-on-server 1 "sha256 mismatch: expected $tool_sha, got $short_sha" "$bin" -C "$P" -q fetch
grep -qF "http://$H/short.bin" "$T/err" || fail "short-file-on-server: the URL is not named"
role "http://$H/nosuch.bin" "$tool_sha"
case_ artifact-404 1 "http://$H/nosuch.bin" "$bin" -C "$P" -q fetch
grep -q '404' "$T/err" || fail "artifact-404: the status is not named"

# ---- registry errors ----
role "" "" "$R/e404/app:1"
case_ registry-404 1 "$R/e404/app: no manifest '1' (HTTP 404" "$bin" -C "$P" -q fetch
role "" "" "$R/e500/app:1"
case_ registry-500 1 "$R/e500/app" "$bin" -C "$P" -q fetch
grep -q '500' "$T/err" || fail "registry-500: the status is not named"
role "" "" "$R/garbage/app:1"
case_ registry-garbage-json 1 "$R/garbage/app" "$bin" -C "$P" -q fetch
role "" "" "$R/wrongjson/app:1"
case_ registry-not-a-manifest 1 "$R/wrongjson/app" "$bin" -C "$P" -q fetch
D=1111111111111111111111111111111111111111111111111111111111111111
role "" "" "$R/garbage/app@sha256:$D"
case_ registry-pinned-garbage 1 "sha256:$D" "$bin" -C "$P" -q fetch

# ---- a corrupted cache entry: fetch notices, drops it and fetches it again ----
role "http://$H/tool.bin" "$tool_sha"
expect_exit 0 "$bin" -C "$P" -q fetch
e=$C/blobs/sha256/$tool_sha
[ -f "$e" ] || fail "the artifact was not cached"
chmod u+w "$e"
printf 'X' | dd of="$e" bs=1 seek=1000 conv=notrunc status=none
: >"$T/http.log"
expect_exit 0 "$bin" -C "$P" fetch
[ "$(sha256sum <"$e" | cut -c1-64)" = "$tool_sha" ] || fail "the corrupted entry is still in the cache"
grep -q "GET /tool.bin " "$T/http.log" || fail "the corrupted entry was not fetched again"
grep -q "corrupted" "$T/err" || fail "the corruption was not reported: $(cat "$T/err")"
n=$((n + 1))
echo "  corrupted-cache-entry: fetch said: $(grep corrupted "$T/err")"

# ---- full disks (tmpfs, needs root) ----
if [ "$(id -u)" = 0 ] && mkdir -p "$T/full" && mount -t tmpfs -o size=1m tmpfs "$T/full" 2>/dev/null; then
	MNTS="$T/full"
	# The cache on a full disk: the download fails naming the path, nothing is cached.
	mkdir -p "$T/full/cache"
	cp -r "$C/refs" "$T/full/cache/" 2>/dev/null
	head -c 900000 /dev/zero >"$T/full/filler"
	role "http://$H/tool.bin" "$tool_sha"
	C=$T/full/cache
	IMGBUILD_CACHE_DIR=$C case_ cache-disk-full 1 "$T/full/cache" "$bin" -C "$P" -q fetch
	grep -q 'No space left on device' "$T/err" || fail "cache-disk-full: ENOSPC not named"
	[ ! -e "$C/blobs/sha256/$base_sha" ] || fail "cache-disk-full: a partial entry"
	C=$IMGBUILD_CACHE_DIR
	# The output on a full disk: the earlier seed stays whole.
	rm -rf "$T/full/cache" "$T/full/filler"
	mkdir -p "$T/full/out"
	expect_exit 0 "$bin" -C "$P" -q -o "$T/full/out" seed app
	left=$(df -k --output=avail "$T/full" | tail -1)
	head -c $(( (left - 8) * 1024 )) /dev/zero >"$T/full/filler" 2>/dev/null
	OUT=$T/full/out
	case_ output-disk-full 1 "$T/full/out" "$bin" -C "$P" -q -o "$T/full/out" seed app --hostname other
	grep -q 'No space left on device' "$T/err" || fail "output-disk-full: ENOSPC not named"
	for f in "$T/full/out"/* "$T/full/out"/.[!.]*; do
		case $f in */app.seed.iso | *'*') ;; *) fail "output-disk-full: left $f" ;; esac
	done
	OUT=$P/out
	umount "$T/full" && MNTS=""
else
	echo "note: not root or no tmpfs mount: the full-disk cases were not run"
fi

ok "$n bad-input cases: one line each, the right exit status, no cache entry or output changed ($(( $(date +%s) - started ))s)"
