#!/bin/sh
# Crash safety and concurrency of `imgbuild all` (tests/tools/crashkill.py does the rounds):
# SIGKILL at 20 seeded random moments spread over a whole build (download, root filesystem,
# layer, disk, qcow2, manifest; two rounds during the read-back by the appliance). After
# each: the tools it ran are gone, the output directory holds only complete outputs equal
# to the reference (no temporary name, no stamp or manifest without its images), no lock is
# held, `imgbuild cache verify` passes. Then a normal build succeeds with the reference
# outputs and leaves no work directory of the killed builds, and two builds at once on one
# cache and one output directory both succeed (one waits) with the same outputs.
# The project is base alone with a 4 MiB artifact served slowly from loopback, so that kills
# hit the download (dropped from the cache on a third of the rounds); the root filesystem
# comes from the default cache: kills during mmdebstrap are not exercised (minutes each).
# IMGBUILD_CRASH_SEED replays a run; IMGBUILD_CRASH_KILLS changes the number of rounds.
. "$(dirname "$0")/../lib.sh"
t_init 16-crash
start=$(date +%s)
bin=${IMGBUILD_SAN:-$IMGBUILD}
[ -x "$bin" ] || bin=$IMGBUILD

HTTP_PID=""
trap '[ -n "$HTTP_PID" ] && kill $HTTP_PID 2>/dev/null' EXIT
trap 'exit 1' INT TERM
mkdir -p "$T/www"
head -c 4194304 /dev/urandom >"$T/www/payload.bin"
payload_sha=$(sha256sum <"$T/www/payload.bin" | cut -d' ' -f1)
python3 "$TOP/tests/servers/httpd.py" --root "$T/www" --port 0 --port-file "$T/http.port" \
	--log "$T/http.log" --max-seconds 900 &
HTTP_PID=$!
i=0
until [ -s "$T/http.port" ]; do i=$((i + 1)); [ $i -lt 50 ] || fail "httpd did not start"; sleep 0.2; done
HTTP=127.0.0.1:$(cat "$T/http.port")

P=$T/project
t_copy_project "$P"
rm "$P/images/master.yaml" "$P/images/worker.yaml" "$P/images/k8s-node.yaml" "$P/images/tooling.yaml"
sed -i "s/^  size: .*/  size: 1G/" "$P/imgbuild.yaml"
cat >>"$P/images/base.yaml" <<EOF
artifacts:
  - name: crash-payload
    url: http://$HTTP/payload.bin?rate=4194304
    sha256: $payload_sha
    destination: /usr/local/share/crash-payload.bin
EOF
export IMGBUILD_CACHE_DIR="$T/cache"
# The root filesystem from the default cache (hard links: free), when a build made it there.
mkdir -p "$T/cache/rootfs"
for tar in "${XDG_CACHE_HOME:-$HOME/.cache}"/imgbuild/rootfs/*.tar; do
	[ -f "$tar" ] && ln "$tar" "$T/cache/rootfs/" 2>/dev/null
done
[ -n "$(ls "$T/cache/rootfs")" ] || echo "no cached root filesystem: the reference build bootstraps one"
mkdir -p "$T/log"
# A kill at an exact point too, between the renames of a commit, which a timer hits only by
# luck: LD_PRELOAD of this, which SIGKILLs the process once it renames onto $KILLAT_RENAME_TO.
cat >"$T/killat.c" <<'EOF'
#include <dlfcn.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>

int rename(const char *from, const char *to)
{
	static int (*real)(const char *, const char *);
	if (!real)
		real = (int (*)(const char *, const char *))dlsym(RTLD_NEXT, "rename");
	int r = real(from, to);
	const char *at = getenv("KILLAT_RENAME_TO");
	if (r == 0 && at && strcmp(at, to) == 0)
		raise(SIGKILL);
	return r;
}
EOF
killat=""
if cc -D_GNU_SOURCE -shared -fPIC -o "$T/killat.so" "$T/killat.c" -ldl 2>"$T/cc.err"; then
	killat="--killat $T/killat.so"
else
	echo "no C compiler for the LD_PRELOAD fault: the kill inside a commit is not exercised"
fi
# shellcheck disable=SC2086
python3 "$TOP/tests/tools/crashkill.py" --bin "$bin" --project "$P" --out "$T/out" \
	--cache "$T/cache" --log "$T/log" --blob "$payload_sha" \
	--kills "${IMGBUILD_CRASH_KILLS:-20}" $killat ${IMGBUILD_CRASH_SEED:+--seed "$IMGBUILD_CRASH_SEED"} ||
	fail "crash rounds (logs in $T/log)"
grep -q "GET /payload.bin.* range=bytes=" "$T/http.log" &&
	echo "a download killed midway was resumed (a Range request)"
echo "16-crash took $(( $(date +%s) - start ))s"
