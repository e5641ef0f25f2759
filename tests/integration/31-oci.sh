#!/bin/sh
# OCI pulls (tests/tools/ocitool.c over builder/oci/) against Debian's docker-registry, the
# CNCF distribution registry, seeded with images built here with no network
# (tests/tools/mkoci.py) and pushed with skopeo: by tag and by digest, index -> linux/amd64,
# tampered blobs and manifests rejected, bearer and basic auth through tests/servers/ocireg.py,
# offline pulls from the cache, a directory mirror, and the archive imported (and run) by a
# real containerd. Every server is started here and killed on exit.
# The digests come from mkoci.py's output (sourced); layer lists are split on purpose.
# shellcheck disable=SC2086,SC2046,SC2154
. "$(dirname "$0")/../lib.sh"
t_init 31-oci

for p in docker-registry skopeo python3 curl sha256sum; do
	command -v $p >/dev/null || skip "$p is not installed (make deps)"
done
OCITOOL=${OCITOOL:-$TOP/build/tests/ocitool}
[ -x "$OCITOOL" ] || fail "no $OCITOOL (the Makefile builds tests/tools/*.c into build/tests/)"
TOOLS=$OCITOOL
[ -n "${IMGBUILD_SAN:-}" ] && [ -x "$TOP/build-san/tests/ocitool" ] && TOOLS="$TOOLS $TOP/build-san/tests/ocitool"

PIDS=""
CTR_SOCK=""
cleanup() {
	if [ -n "$CTR_SOCK" ] && [ -S "$CTR_SOCK" ]; then
		for t in $(timeout 10 ctr --address "$CTR_SOCK" -n k8s.io tasks ls -q 2>/dev/null); do
			timeout 10 ctr --address "$CTR_SOCK" -n k8s.io tasks kill -s KILL "$t" >/dev/null 2>&1
			timeout 10 ctr --address "$CTR_SOCK" -n k8s.io tasks rm -f "$t" >/dev/null 2>&1
		done
	fi
	for pid in $PIDS; do kill "$pid" 2>/dev/null; done
	sleep 1
	for pid in $PIDS; do kill -9 "$pid" 2>/dev/null; done
	# Snapshots containerd left mounted would keep the test dir from being removed.
	grep -o " $T/[^ ]*" /proc/mounts 2>/dev/null | sort -r | while read -r m; do umount "$m"; done
}
trap cleanup EXIT
trap 'exit 1' INT TERM

# A free loopback port (docker-registry cannot report one it chose itself).
free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# wait_http URL: up to 10 s for any HTTP answer.
wait_http() {
	i=0
	until curl -s -o /dev/null "$1"; do
		i=$((i + 1))
		[ $i -lt 50 ] || fail "nothing answers at $1"
		sleep 0.2
	done
}

# start_proxy NAME ARGS...: tests/servers/ocireg.py in front of the registry; sets $PPORT.
start_proxy() {
	name=$1
	shift
	rm -f "$T/$name.port"
	python3 "$TOP/tests/servers/ocireg.py" --upstream "http://$REG" --port-file "$T/$name.port" \
		--log "$T/$name.log" --token-log "$T/tokens" --max-seconds 300 "$@" &
	PIDS="$PIDS $!"
	i=0
	until [ -s "$T/$name.port" ]; do
		i=$((i + 1))
		[ $i -lt 50 ] || fail "$name did not start"
		sleep 0.2
	done
	PPORT=$(cat "$T/$name.port")
}

# pull BIN WANT_EXIT ARGS...: ocitool pull, output in $T/out and $T/err.
pull() {
	bin=$1 want=$2
	shift 2
	timeout 120 "$bin" pull "$@" >"$T/out" 2>"$T/err"
	got=$?
	if [ "$got" != "$want" ]; then
		echo "--- stdout"; cat "$T/out"; echo "--- stderr"; cat "$T/err"
		fail "ocitool pull $* exited $got, expected $want"
	fi
}

# has FILE TEXT: fixed-string grep, failing with the file shown.
has() {
	grep -qF -- "$2" "$1" || { echo "--- $1"; cat "$1"; fail "'$2' not in $(basename "$1")"; }
}

# cache_ok CACHE DIGEST...: each entry present and hashing to its name.
cache_ok() {
	c=$1
	shift
	for d in "$@"; do
		h=${d#sha256:}
		[ -f "$c/blobs/sha256/$h" ] || fail "$d is not in $c"
		[ "$(sha256sum <"$c/blobs/sha256/$h" | cut -d' ' -f1)" = "$h" ] || fail "$d is corrupt in $c"
	done
}

# ---- the registry, seeded ----

python3 "$TOP/tests/tools/mkoci.py" "$T/layout" >"$T/digests" || fail "mkoci.py failed"
. "$T/digests"
PORT=$(free_port)
REG=127.0.0.1:$PORT
cat >"$T/registry.yml" <<EOF
version: 0.1
log:
  level: warn
storage:
  filesystem:
    rootdirectory: $T/registry
http:
  addr: $REG
EOF
docker-registry serve "$T/registry.yml" >"$T/registry.log" 2>&1 &
PIDS="$PIDS $!"
wait_http "http://$REG/v2/"

echo '{"default":[{"type":"insecureAcceptAnything"}]}' >"$T/policy.json"
push() { # push TAG REPO:TAG [--all]
	timeout 120 skopeo --policy "$T/policy.json" copy --quiet --preserve-digests \
		--dest-tls-verify=false $3 "oci:$T/layout:$1" "docker://$REG/$2" >"$T/skopeo.log" 2>&1 ||
		{ cat "$T/skopeo.log"; fail "skopeo could not push $1"; }
}
push tiny test/tiny:1
push multi test/multi:1 --all
push noamd test/noamd:1 --all
push tamper test/tamper:1
ok "registry on $REG seeded with skopeo (tiny, multi-arch index, arm64/s390x-only index, tamper)"

# Docker-style credentials are only read from here: never the machine's own.
export DOCKER_CONFIG="$T/docker-none"
mkdir -p "$DOCKER_CONFIG"

for bin in $TOOLS; do
	rm -rf "$T/c1" "$T/c2" "$T/c3" "$T/c4"
	# By tag: every blob verified into the cache, the repeated layer fetched once.
	pull "$bin" 0 "$REG/test/tiny:1" "$T/c1" "$T/tiny.tar"
	set -- $tiny_layers
	printf 'name %s\nmanifest %s\nconfig %s\nlayer %s\nlayer %s\nlayer %s\n' "$REG/test/tiny:1" \
		"$tiny_manifest" "$tiny_config" "$1" "$2" "$3" >"$T/want"
	diff -u "$T/want" "$T/out" || fail "pull by tag printed something else"
	cache_ok "$T/c1" "$tiny_manifest" "$tiny_config" $tiny_layers
	[ "$(tar -tf "$T/tiny.tar" | tr '\n' ' ')" = "blobs/ blobs/sha256/ $(printf 'blobs/sha256/%s ' \
		$(printf '%s\n' "$tiny_manifest" "$tiny_config" $tiny_layers | sed 's/sha256://' | sort -u))index.json manifest.json oci-layout " ] ||
		fail "archive entries: $(tar -tf "$T/tiny.tar")"

	# By digest, in a fresh cache: the same image, the same archive bytes.
	pull "$bin" 0 "$REG/test/tiny@$tiny_manifest" "$T/c2" "$T/tiny-d.tar"
	has "$T/out" "manifest $tiny_manifest"
	cache_ok "$T/c2" "$tiny_manifest" "$tiny_config" $tiny_layers

	# An index resolves to linux/amd64, by tag and by the index's digest.
	pull "$bin" 0 "$REG/test/multi:1" "$T/c1" "$T/multi.tar"
	has "$T/out" "index $multi_index"
	has "$T/out" "manifest $multi_amd64"
	has "$T/out" "layer $multi_amd64_layer"
	[ ! -e "$T/c1/blobs/sha256/${multi_arm64#sha256:}" ] || fail "the arm64 manifest was fetched"
	pull "$bin" 0 "$REG/test/multi:1@$multi_index" "$T/c3" "$T/multi-d.tar"
	has "$T/out" "manifest $multi_amd64"
	cache_ok "$T/c3" "$multi_index" "$multi_amd64" "$multi_amd64_layer"
	pull "$bin" 2 "$REG/test/noamd:1" "$T/c1" -
	has "$T/err" "has no linux/amd64 image (it has linux/arm64/v8, linux/s390x)"
	sed 's/^/  /' "$T/err"
	pull "$bin" 1 "$REG/test/nosuch:1" "$T/c1" -
	has "$T/err" "no manifest '1' (HTTP 404: MANIFEST_UNKNOWN"
	pull "$bin" 2 "$REG/test/Tiny:1" "$T/c1" -
	has "$T/err" "ocitool: error: invalid image reference '$REG/test/Tiny:1': repository names must be lowercase"
done
ok "pull by tag and by digest, index -> linux/amd64 (arm64 never fetched), missing amd64 named"

# ---- bearer tokens, credentials, Basic ----

start_proxy bearer
B=127.0.0.1:$PPORT
pull "$OCITOOL" 0 "$B/test/tiny:1" "$T/cb" -
has "$T/out" "manifest $tiny_manifest"
has "$T/bearer.log" "GET /v2/test/tiny/manifests/1 auth=- status=401"
has "$T/bearer.log" "GET /token?service=ocireg-test&scope=repository%3Atest%2Ftiny%3Apull auth=- status=200"
has "$T/bearer.log" "GET /v2/test/tiny/manifests/1 auth=Bearer status=200"
[ "$(grep -c "GET /v2/test/tiny/blobs/sha256:[0-9a-f]* auth=Bearer status=200" "$T/bearer.log")" = 3 ] ||
	{ cat "$T/bearer.log"; fail "blobs were not fetched with the token, once each"; }
[ "$(grep -c 'status=401' "$T/bearer.log")" = 1 ] || fail "more than one 401: $(cat "$T/bearer.log")"
# Pinned by digest, cached, the registry is not asked; one missing blob needs a token again.
: >"$T/bearer.log"
pull "$OCITOOL" 0 "$B/test/tiny@$tiny_manifest" "$T/cb" -
[ ! -s "$T/bearer.log" ] || fail "a cached pinned pull made requests: $(cat "$T/bearer.log")"
chmod u+w "$T/cb/blobs/sha256/${tiny_config#sha256:}" && rm -f "$T/cb/blobs/sha256/${tiny_config#sha256:}"
pull "$OCITOOL" 0 "$B/test/tiny@$tiny_manifest" "$T/cb" -
has "$T/bearer.log" "GET /v2/ auth=- status=401"
has "$T/bearer.log" "GET /v2/test/tiny/blobs/$tiny_config auth=Bearer status=200"
cache_ok "$T/cb" "$tiny_config"
ok "bearer flow: 401 challenge, token for repository:test/tiny:pull, blobs with the token"

cred() { # cred DIR HOST JSON-ENTRY
	mkdir -p "$1"
	printf '{"auths":{"%s":%s}}\n' "$2" "$3" >"$1/config.json"
}
start_proxy tokuser --user alice:s3cret
U=127.0.0.1:$PPORT
pull "$OCITOOL" 1 "$U/test/tiny:1" "$T/cu" -
has "$T/err" "token server 'http://$U/token' answered HTTP 401 for test/tiny"
cred "$T/dc-alice" "http://$U" "{\"auth\":\"$(printf alice:s3cret | base64)\"}"
DOCKER_CONFIG=$T/dc-alice
pull "$OCITOOL" 0 "$U/test/tiny:1" "$T/cu" -
DOCKER_CONFIG=$T/docker-none
has "$T/tokuser.log" "GET /token?service=ocireg-test&scope=repository%3Atest%2Ftiny%3Apull auth=Basic status=200"
cred "$T/dc-bad" "$U" "{\"auth\":\"$(printf alice:wrong | base64)\"}"
DOCKER_CONFIG=$T/dc-bad
pull "$OCITOOL" 1 "$U/test/multi:1" "$T/cu" -
DOCKER_CONFIG=$T/docker-none
has "$T/err" "token server 'http://$U/token' refused the credentials for $U from $T/dc-bad/config.json (HTTP 401)"
ok "token server with credentials from config.json (auth), refused without or with wrong ones"

start_proxy tokid --refresh-token rt-0123
I=127.0.0.1:$PPORT
cred "$T/dc-id" "$I" '{"auth":"","identitytoken":"rt-0123"}'
DOCKER_CONFIG=$T/dc-id
pull "$OCITOOL" 0 "$I/test/multi:1" "$T/ci" -
DOCKER_CONFIG=$T/docker-none
has "$T/out" "manifest $multi_amd64"
has "$T/tokid.log" "FORM [('client_id', ['imgbuild']), ('grant_type', ['refresh_token']), ('scope', ['repository:test/multi:pull']), ('service', ['ocireg-test'])]"
has "$T/tokid.log" "POST /token auth=- status=200"
ok "identity token: OAuth2 refresh-token grant"

start_proxy basic --mode basic --user bob:pw
K=127.0.0.1:$PPORT
pull "$OCITOOL" 1 "$K/test/tiny:1" "$T/ck" -
has "$T/err" "registry $K asks for a user name and password, and no docker config"
cred "$T/dc-bob" "$K" "{\"auth\":\"$(printf bob:pw | base64)\"}"
DOCKER_CONFIG=$T/dc-bob
pull "$OCITOOL" 0 "$K/test/tiny:1" "$T/ck" -
DOCKER_CONFIG=$T/docker-none
has "$T/basic.log" "GET /v2/test/tiny/manifests/1 auth=Basic status=200"
[ "$(grep -c "blobs/.* auth=Basic status=200" "$T/basic.log")" = 3 ] || fail "blobs without Basic"
ok "Basic challenge answered with config.json credentials"

# No password, identity token or bearer token the pulls used appears in their debug log.
leak=$T/leak.log
: >"$leak"
vpull() { # vpull ADDR REF CACHE with DOCKER_CONFIG: a credentialed pull with -v, logs kept
	pull "$OCITOOL" 0 -v "$@" -
	cat "$T/out" "$T/err" >>"$leak"
}
DOCKER_CONFIG=$T/dc-alice
vpull "$U/test/tiny:1" "$T/cv1"
DOCKER_CONFIG=$T/dc-id
vpull "$I/test/multi:1" "$T/cv2"
DOCKER_CONFIG=$T/dc-bob
vpull "$K/test/tiny:1" "$T/cv3"
DOCKER_CONFIG=$T/docker-none
vpull "$B/test/tiny:1" "$T/cv4"
[ "$(grep -c . "$leak")" -gt 8 ] || fail "-v logged almost nothing: $(cat "$leak")"
sort -u "$T/tokens" >"$T/secrets"
n_tok=$(wc -l <"$T/secrets")
[ "$n_tok" -gt 3 ] || fail "only $n_tok tokens handed out"
printf '%s\n' s3cret rt-0123 "$(printf alice:s3cret | base64)" "$(printf bob:pw | base64)" >>"$T/secrets"
grep -F -f "$T/secrets" "$leak" && fail "a credential or token is in the -v log (above)"
grep -q ':pw\b' "$leak" && fail "bob's password is in the -v log"
ok "debug logs of credentialed pulls name no password, identity token or any of the $n_tok bearer tokens handed out"

# ---- tampering in the registry's storage ----

store=$T/registry/docker/registry/v2/blobs/sha256
corrupt() { # flip one byte in the middle of a stored blob, keeping its length
	f=$store/$(echo "${1#sha256:}" | cut -c1-2)/${1#sha256:}/data
	[ -f "$f" ] || fail "no $f"
	python3 - "$f" <<'PY'
import sys
p = sys.argv[1]
b = bytearray(open(p, "rb").read())
b[len(b) // 2] ^= 0xff
open(p, "wb").write(bytes(b))
PY
}
corrupt "$tamper_layer"
for bin in $TOOLS; do
	rm -rf "$T/ct"
	pull "$bin" 1 "$REG/test/tamper:1" "$T/ct" -
	has "$T/err" "${tamper_layer}"
	has "$T/err" "sha256 mismatch: expected ${tamper_layer#sha256:}"
	sed 's/^/  /' "$T/err"
	[ ! -e "$T/ct/blobs/sha256/${tamper_layer#sha256:}" ] || fail "the tampered layer entered the cache"
	for f in "$T/ct/tmp/${tamper_layer#sha256:}"*; do
		case $f in *"*" | *.lock) ;; *) fail "tampered bytes kept in the cache: $f" ;; esac
	done
done
# The registry parses manifests it serves: keep this one valid JSON, change one hex digit.
f=$store/$(echo "${tamper_manifest#sha256:}" | cut -c1-2)/${tamper_manifest#sha256:}/data
python3 - "$f" <<'PY'
import re, sys
p = sys.argv[1]
s = open(p).read()
s = re.sub(r'("digest": ?"sha256:)([0-9a-f])', lambda m: m.group(1) + "0123456789abcdef"[(int(m.group(2), 16) + 1) % 16], s, count=1)
open(p, "w").write(s)
PY
pull "$OCITOOL" 1 "$REG/test/tamper:1" "$T/ct" -
has "$T/err" "manifest of $REG/test/tamper:1: sha256 mismatch: expected $tamper_manifest, got sha256:"
pull "$OCITOOL" 1 "$REG/test/tamper@$tamper_manifest" "$T/ct2" -
has "$T/err" "sha256 mismatch: expected $tamper_manifest"
[ -z "$(ls "$T/ct2/blobs/sha256")" ] || fail "a tampered manifest entered the cache"
ok "tampered layer and manifest rejected, naming the digest; nothing enters the cache"

# ---- no network: offline, cached pins, a directory mirror ----

for pid in $PIDS; do kill "$pid" 2>/dev/null; done
for pid in $PIDS; do wait "$pid" 2>/dev/null; done
PIDS=""
curl -s -o /dev/null "http://$REG/v2/" && fail "the registry is still up"
for bin in $TOOLS; do
	pull "$bin" 0 --offline "$REG/test/tiny:1" "$T/c1" "$T/tiny-off.tar"
	has "$T/out" "manifest $tiny_manifest"
	cmp "$T/tiny.tar" "$T/tiny-off.tar" || fail "offline archive differs from the online one"
	pull "$bin" 0 --offline "$REG/test/multi:1" "$T/c1" -
	has "$T/out" "manifest $multi_amd64"
	pull "$bin" 0 "$REG/test/multi@$multi_index" "$T/c3" - # pinned + cached: no request at all
	pull "$bin" 1 --offline "$REG/test/tiny:2" "$T/c1" -
	has "$T/err" "offline, and image $REG/test/tiny:2 is not in the cache (the tag was never pulled)"
	rm -f "$T/c2/blobs/sha256/${tiny_config#sha256:}"
	pull "$bin" 1 --offline "$REG/test/tiny@$tiny_manifest" "$T/c2" -
	has "$T/err" "offline, and 1 of 1 items are not in the cache: config $tiny_config of"
done
cmp "$T/tiny.tar" "$T/tiny-d.tar" >/dev/null && fail "tag and digest archives should name the image differently"
ok "offline pulls resolve tags through refs/, pinned cached pulls need no registry, misses are named"

# A directory mirror laid out as <mirror>/<registry>/v2/..., from what the cache holds.
m=$T/mirror/$REG/v2/test/tiny
mkdir -p "$m/manifests" "$m/blobs"
cp "$T/c1/blobs/sha256/${tiny_manifest#sha256:}" "$m/manifests/1"
for d in "$tiny_config" $tiny_layers; do cp "$T/c1/blobs/sha256/${d#sha256:}" "$m/blobs/$d"; done
pull "$OCITOOL" 0 --mirror "$T/mirror" "$REG/test/tiny:1" "$T/cm" "$T/tiny-m.tar"
cmp "$T/tiny.tar" "$T/tiny-m.tar" || fail "mirrored pull gave another archive"
cache_ok "$T/cm" "$tiny_manifest" "$tiny_config" $tiny_layers
ok "pull through a directory mirror with the registry down"

# ---- a real containerd imports the archives ----

[ "$(id -u)" = 0 ] || skip "containerd needs root: the pulls passed, the import was not tried"
if ! command -v containerd >/dev/null || ! command -v ctr >/dev/null; then
	if command -v apt-get >/dev/null; then
		echo "installing containerd (Debian package)"
		DEBIAN_FRONTEND=noninteractive timeout 600 apt-get install -y -q containerd >"$T/apt.log" 2>&1 ||
			{ tail -5 "$T/apt.log"; skip "containerd is not installed and could not be"; }
	else
		skip "containerd is not installed (make deps)"
	fi
fi
C=$T/ctrd
mkdir -p "$C"
CTR_SOCK=$C/c.sock
cat >"$C/config.toml" <<EOF
version = 2
root = "$C/root"
state = "$C/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$CTR_SOCK"
[ttrpc]
  address = "$CTR_SOCK.ttrpc"
[debug]
  address = "$C/debug.sock"
  level = "warn"
EOF
containerd --config "$C/config.toml" >"$C/log" 2>&1 &
PIDS="$PIDS $!"
i=0
until timeout 5 ctr --address "$CTR_SOCK" version >/dev/null 2>&1; do
	i=$((i + 1))
	[ $i -lt 50 ] || { tail -20 "$C/log"; fail "containerd did not start"; }
	sleep 0.2
done
CTR_BIN=$(command -v ctr)
ctr() { timeout 120 "$CTR_BIN" --address "$CTR_SOCK" -n k8s.io "$@"; }
ctr images import "$T/tiny.tar" >"$T/import.log" 2>&1 || { cat "$T/import.log"; fail "ctr import tiny.tar"; }
ctr images import "$T/multi-d.tar" >>"$T/import.log" 2>&1 || { cat "$T/import.log"; fail "ctr import multi-d.tar"; }
ctr images ls >"$T/images" 2>&1 || fail "ctr images ls"
cat "$T/images"
grep -E "^$REG/test/tiny:1 +application/vnd.oci.image.manifest.v1\+json +$tiny_manifest .* linux/amd64" "$T/images" >/dev/null ||
	fail "tiny:1 not listed with its digest"
grep -E "^$REG/test/multi:1 +[^ ]+ +$multi_amd64 " "$T/images" >/dev/null || fail "multi:1 not listed"
grep -E "^$REG/test/multi@$multi_index +[^ ]+ +$multi_amd64 " "$T/images" >/dev/null ||
	fail "multi@<index digest> not listed"
ctr images check >"$T/check" 2>&1 || fail "ctr images check"
grep "$REG/test/tiny:1" "$T/check" | grep -q "complete (4/4)" || { cat "$T/check"; fail "tiny:1 incomplete"; }
ok "containerd imports the archives: names by tag and by digest, manifest digests, complete"

if [ "$have_busybox" = 1 ] && command -v runc >/dev/null; then
	ctr run --rm "$REG/test/tiny:1" imgbuild-oci-test /bin/busybox cat /etc/imgbuild-test >"$T/run" 2>&1 ||
		{ cat "$T/run"; fail "ctr run of the imported image failed"; }
	has "$T/run" "tiny image for imgbuild's tests"
	ok "containerd runs the imported image (its layers unpacked in order)"
else
	echo "note: no static busybox or no runc: the imported image was not run"
fi

if command -v docker >/dev/null && timeout 10 docker info >/dev/null 2>&1; then
	timeout 120 docker load -i "$T/tiny.tar" || fail "docker load"
	timeout 10 docker image inspect "$REG/test/tiny:1" >/dev/null || fail "docker did not name the image"
	timeout 10 docker rmi "$REG/test/tiny:1" >/dev/null
	ok "docker load accepts the archive"
else
	echo "note: no docker daemon on this machine: 'docker load' of the archive was not tried"
fi
