#!/bin/sh
# The supply chain through the real pipeline: a role with pinned artifacts (one by sha256
# with members extracted from a tar.gz, one by a published checksum file) and a container
# image pinned by digest, served by servers started here on loopback (tests/servers/httpd.py
# and Debian's docker-registry seeded with skopeo). Proves: --offline fails listing every
# missing item; `fetch` fills the cache; an --offline build with every server dead puts the
# files and the image archive in the image; a digest mismatch fails and caches nothing;
# a directory --mirror; `cache ls` and `cache verify` (a corrupted entry found and dropped).
# shellcheck disable=SC2086
# after: 10-build (reads what 10-build makes, boots nothing; tests/run-integration.sh)
. "$(dirname "$0")/../lib.sh"
t_init 30-supply
for p in docker-registry skopeo python3 curl debugfs; do
	command -v $p >/dev/null || skip "$p is not installed (make deps)"
done
bin=${IMGBUILD_SAN:-$IMGBUILD}
[ -x "$bin" ] || bin=$IMGBUILD

PIDS=""
cleanup() {
	for pid in $PIDS; do kill "$pid" 2>/dev/null; done
	sleep 0.5
	for pid in $PIDS; do kill -9 "$pid" 2>/dev/null; done
}
trap cleanup EXIT
trap 'exit 1' INT TERM
free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# ---- what the servers serve ----
mkdir -p "$T/www/src/bin" "$T/www/src/etc"
head -c 1048576 /dev/urandom >"$T/www/tool.bin"
(cd "$T/www" && sha256sum tool.bin >tool.bin.sha256)
printf '#!/bin/sh\necho hello from an artifact\n' >"$T/www/src/bin/hello"
chmod 0755 "$T/www/src/bin/hello"
echo 'greeting=hello' >"$T/www/src/etc/hello.conf"
tar -C "$T/www/src" -czf "$T/www/bundle.tgz" ./bin/hello ./etc/hello.conf
bundle_sha=$(sha256sum <"$T/www/bundle.tgz" | cut -d' ' -f1)
tool_sha=$(sha256sum <"$T/www/tool.bin" | cut -d' ' -f1)

python3 "$TOP/tests/servers/httpd.py" --root "$T/www" --port 0 --port-file "$T/http.port" \
	--log "$T/http.log" --max-seconds 900 &
HTTP_PID=$!
PIDS="$PIDS $HTTP_PID"
i=0
until [ -s "$T/http.port" ]; do i=$((i + 1)); [ $i -lt 50 ] || fail "httpd did not start"; sleep 0.2; done
HTTP=127.0.0.1:$(cat "$T/http.port")

python3 "$TOP/tests/tools/mkoci.py" "$T/layout" >"$T/digests" || fail "mkoci.py failed"
. "$T/digests"
REG=127.0.0.1:$(free_port)
printf 'version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s\n' \
	"$T/registry" "$REG" >"$T/registry.yml"
docker-registry serve "$T/registry.yml" >"$T/registry.log" 2>&1 &
REG_PID=$!
PIDS="$PIDS $REG_PID"
i=0
until curl -s -o /dev/null "http://$REG/v2/"; do i=$((i + 1)); [ $i -lt 50 ] || fail "registry did not start"; sleep 0.2; done
echo '{"default":[{"type":"insecureAcceptAnything"}]}' >"$T/policy.json"
timeout 120 skopeo --policy "$T/policy.json" copy --quiet --preserve-digests --dest-tls-verify=false \
	"oci:$T/layout:tiny" "docker://$REG/test/tiny:1" >"$T/skopeo.log" 2>&1 || { cat "$T/skopeo.log"; fail "skopeo push"; }
IMAGE="$REG/test/tiny:1@$tiny_manifest"
ok "servers: files on $HTTP, registry on $REG with test/tiny:1"

# ---- the project: the default spec plus a role that uses all of it ----
P=$T/project
mkdir -p "$P"
for f in ansible-free-scripts cloud-init images stacks imgbuild.yaml; do cp -r "$TOP/$f" "$P/"; done
# Only base and the role below: the other roles' pins point at hosts tests cannot reach.
rm "$P/images/master.yaml" "$P/images/worker.yaml" "$P/images/k8s-node.yaml" "$P/images/tooling.yaml"
sed -i 's/^  size: .*/  size: 2G/' "$P/imgbuild.yaml"
cat >"$P/images/supplied.yaml" <<EOF
description: base plus pinned downloads and a container image
extends: base
artifacts:
  - name: tool
    url: http://$HTTP/tool.bin
    checksum_url: http://$HTTP/tool.bin.sha256
    destination: /usr/local/bin/tool
    mode: "0755"
  - name: bundle
    url: http://$HTTP/bundle.tgz
    sha256: $bundle_sha
    extract:
      - member: bin/hello
        destination: /usr/local/bin/hello
      - member: ./etc/hello.conf
        destination: /etc/hello.conf
        mode: "0640"
images:
  - $IMAGE
EOF
export IMGBUILD_CACHE_DIR="$T/cache"
# The root filesystem comes from the default cache (10-build made it): no second bootstrap.
mkdir -p "$T/cache/rootfs"
key=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["inputs"]["rootfs_key"])' \
	"$TOP/tests/tmp/images/out/base.manifest.json" 2>/dev/null) || fail "no base manifest: run 10-build first"
ln "${XDG_CACHE_HOME:-$HOME/.cache}/imgbuild/rootfs/$key.tar" "$T/cache/rootfs/" 2>/dev/null ||
	cp "${XDG_CACHE_HOME:-$HOME/.cache}/imgbuild/rootfs/$key.tar" "$T/cache/rootfs/" || fail "no cached root filesystem"
expect_exit 0 "$bin" -C "$P" validate

# Offline with nothing cached: one failure naming every missing item, nothing fetched.
expect_exit 1 "$bin" -C "$P" -q build supplied --offline
for want in "artifact 'tool'" "artifact 'bundle'" "test/tiny"; do
	grep -q "$want" "$T/err" || fail "offline error does not name $want: $(cat "$T/err")"
done
[ ! -s "$T/http.log" ] || fail "offline build touched the network: $(cat "$T/http.log")"
ok "--offline with an empty cache fails naming every missing artifact and image and asks no server"

# Proxies come from the usual environment variables: a fetch into a scratch cache goes
# through a forward proxy started here (and no_proxy is honoured).
python3 "$TOP/tests/servers/proxy.py" --port-file "$T/proxy.port" --log "$T/proxy.log" \
	--max-seconds 300 &
PIDS="$PIDS $!"
i=0
until [ -s "$T/proxy.port" ]; do i=$((i + 1)); [ $i -lt 50 ] || fail "proxy did not start"; sleep 0.2; done
: >"$T/proxy.log"
mkdir -p "$T/cache-proxy/rootfs"
ln "$T/cache/rootfs/$key.tar" "$T/cache-proxy/rootfs/"
IMGBUILD_CACHE_DIR=$T/cache-proxy http_proxy="http://127.0.0.1:$(cat "$T/proxy.port")" \
	expect_exit 0 "$bin" -C "$P" fetch
grep -q "GET http://$HTTP/tool.bin " "$T/proxy.log" || fail "the fetch did not go through http_proxy: $(cat "$T/proxy.log")"
grep -q "GET http://$REG/v2/" "$T/proxy.log" || fail "the registry was not reached through http_proxy"
[ -f "$T/cache-proxy/blobs/sha256/$tool_sha" ] || fail "nothing fetched through the proxy"
# A proxy that is not there, bypassed by no_proxy: the fetch still works.
mkdir -p "$T/cache-noproxy/rootfs"
ln "$T/cache/rootfs/$key.tar" "$T/cache-noproxy/rootfs/"
IMGBUILD_CACHE_DIR=$T/cache-noproxy http_proxy="http://127.0.0.1:9" no_proxy=127.0.0.1 \
	expect_exit 0 "$bin" -C "$P" fetch
ok "downloads honour http_proxy and no_proxy from the environment"

# fetch fills the cache; then every server dies and the build is offline.
expect_exit 0 "$bin" -C "$P" fetch
grep -q "GET /tool.bin.sha256" "$T/http.log" || fail "checksum file not fetched"
cleanup
PIDS=""
expect_exit 0 "$bin" -C "$P" build supplied --offline --no-verify
ok "fetch, then an --offline build with every server dead"

OUT=$P/out
off=$(sfdisk --json "$OUT/supplied.raw" | python3 -c 'import json,sys; print(json.load(sys.stdin)["partitiontable"]["partitions"][2]["start"])')
dd if="$OUT/supplied.raw" of="$T/root.ext4" bs=512 skip="$off" conv=sparse status=none
dbg() { debugfs -R "$1" "$T/root.ext4" 2>/dev/null; }
dbg 'dump /usr/local/bin/tool '"$T/tool.out" && [ "$(sha256sum <"$T/tool.out" | cut -d' ' -f1)" = "$tool_sha" ] ||
	fail "/usr/local/bin/tool is not the artifact"
dbg 'stat /usr/local/bin/tool' | grep -q 'Mode:  0755' || fail "tool mode: $(dbg 'stat /usr/local/bin/tool' | head -3)"
[ "$(dbg 'cat /usr/local/bin/hello')" = "$(cat "$T/www/src/bin/hello")" ] || fail "extracted member differs"
dbg 'stat /usr/local/bin/hello' | grep -q 'Mode:  0755' || fail "member keeps its own mode"
dbg 'stat /etc/hello.conf' | grep -q 'Mode:  0640' || fail "member mode from the spec"
dbg 'cat /var/lib/imgbuild/images/index.tsv' >"$T/index.tsv"
grep -q "^$IMAGE	$tiny_manifest	" "$T/index.tsv" || fail "index.tsv: $(cat "$T/index.tsv")"
archive=$(awk -F'\t' '!/^#/ {print $3}' "$T/index.tsv")
dbg "dump /var/lib/imgbuild/images/$archive $T/image.tar"
tar -xOf "$T/image.tar" index.json | grep -q "$tiny_manifest" || fail "image archive lacks its manifest"
tar -tf "$T/image.tar" | grep -qx manifest.json || fail "image archive lacks docker's manifest.json"
python3 - "$OUT/supplied.manifest.json" "$tool_sha" "$bundle_sha" "$tiny_manifest" <<'PY' || fail "manifest lacks the supply"
import json, sys
m = json.load(open(sys.argv[1]))
arts = {a["name"]: a["sha256"] for a in m["artifacts"]}
assert arts == {"tool": sys.argv[2], "bundle": sys.argv[3]}, arts
assert [i["manifest_digest"] for i in m["images"]] == [sys.argv[4]], m["images"]
PY
ok "the image holds the artifact, the extracted members with their modes, the image archive and its index"

# cache ls and verify: a corrupted entry is found, dropped, and fetched again later.
expect_exit 0 "$bin" cache ls
grep -q "$tool_sha" "$T/out" || fail "cache ls does not list the tool: $(cat "$T/out")"
expect_exit 0 "$bin" cache verify
chmod u+w "$T/cache/blobs/sha256/$tool_sha"
printf 'X' | dd of="$T/cache/blobs/sha256/$tool_sha" bs=1 seek=100 conv=notrunc status=none
expect_exit 1 "$bin" cache verify
grep -q "$tool_sha" "$T/out" "$T/err" || fail "verify does not name the corrupted entry"
[ ! -e "$T/cache/blobs/sha256/$tool_sha" ] || fail "the corrupted entry is still there"
expect_exit 0 "$bin" cache verify
ok "cache verify finds a corrupted entry and drops it"

# cache prune: old partial downloads go, fresh ones (a build may own them) and entries stay;
# --all empties the cache.
mkdir -p "$T/cache/tmp"
head -c 1000 /dev/urandom >"$T/cache/tmp/old.part"
touch -d '3 days ago' "$T/cache/tmp/old.part"
head -c 1000 /dev/urandom >"$T/cache/tmp/fresh.part"
# The work directory of a bootstrap that was killed (its pid gone), and of a live one.
sleep 0 &
dead=$!
wait $dead
mkdir -p "$T/cache/tmp/rootfs-debs.tmp.$dead.0/debs" "$T/cache/tmp/rootfs-repo.tmp.$$.0"
echo deb >"$T/cache/tmp/rootfs-debs.tmp.$dead.0/debs/a.deb"
n_before=$(ls "$T/cache/blobs/sha256" | grep -c .)
expect_exit 0 "$bin" cache prune
[ ! -e "$T/cache/tmp/old.part" ] || fail "prune kept an old partial download"
[ -e "$T/cache/tmp/fresh.part" ] || fail "prune removed a fresh partial download"
[ ! -e "$T/cache/tmp/rootfs-debs.tmp.$dead.0" ] || fail "prune kept a dead bootstrap's work directory"
[ "$(ls "$T/cache/blobs/sha256" | grep -c .)" = "$n_before" ] || fail "prune removed entries"
expect_exit 0 "$bin" cache prune --all
[ -z "$(ls -A "$T/cache/blobs/sha256" 2>/dev/null)" ] || fail "prune --all left entries"
[ -d "$T/cache/tmp/rootfs-repo.tmp.$$.0" ] || fail "prune --all removed a live bootstrap's work directory"
rmdir "$T/cache/tmp/rootfs-repo.tmp.$$.0"
expect_exit 2 "$bin" cache verify --all
expect_exit 2 "$bin" cache frobnicate
ok "cache prune drops stale partial downloads and killed bootstraps' work directories; --all empties the cache but what a live build uses"

# A directory mirror: <dir>/<host:port>/<path>, no server at all.
mkdir -p "$T/mirror/$HTTP"
cp "$T/www/tool.bin" "$T/www/tool.bin.sha256" "$T/www/bundle.tgz" "$T/mirror/$HTTP/"
M=$T/mproject
mkdir -p "$M"
cp -r "$P/ansible-free-scripts" "$P/cloud-init" "$P/imgbuild.yaml" "$P/images" "$M/"
sed '/^images:/,$d' "$P/images/supplied.yaml" >"$M/images/supplied.yaml"
mkdir -p "$T/cache2/rootfs" && { ln "${XDG_CACHE_HOME:-$HOME/.cache}/imgbuild/rootfs/$key.tar" "$T/cache2/rootfs/" 2>/dev/null || cp "${XDG_CACHE_HOME:-$HOME/.cache}/imgbuild/rootfs/$key.tar" "$T/cache2/rootfs/"; }
IMGBUILD_CACHE_DIR=$T/cache2 expect_exit 0 "$bin" -C "$M" fetch --mirror "$T/mirror"
[ -f "$T/cache2/blobs/sha256/$tool_sha" ] || fail "mirror fetch did not fill the cache"
ok "a directory mirror stands in for the artifact host"

# A digest mismatch: the build fails, the bytes never enter the cache.
sed -i "s/$bundle_sha/$(echo "$bundle_sha" | tr '0-9a-f' '1-9a-f0')/" "$M/images/supplied.yaml"
IMGBUILD_CACHE_DIR=$T/cache2 expect_exit 1 "$bin" -C "$M" -q build supplied --mirror "$T/mirror"
grep -q "bundle" "$T/err" || fail "mismatch error does not name the artifact: $(cat "$T/err")"
[ "$(ls "$T/cache2/blobs/sha256" | grep -c .)" = 2 ] || fail "unexpected cache entries: $(ls "$T/cache2/blobs/sha256")"
[ -z "$(ls "$M/out/.imgbuild-work" 2>/dev/null)" ] || fail "work files left"
ok "a digest mismatch fails the build and caches nothing"
