#!/bin/sh
# Benchmark: a 2 GiB raw image (random data: no block is a hole or compresses away) into an
# EBS snapshot on moto_server (loopback), by `imgbuild publish` and by a boto3 reference
# uploader making the same API calls at the same concurrency (bench/aws-upload-boto3.py),
# in one run, same server (reset between the two), page cache warm for both. Prints each
# one's upload throughput, the ratio and imgbuild's peak RSS (target: within 128 MiB
# whatever the image size); asserts nothing.
#   SIZE_MIB=2048 CONCURRENCY=64 bench/aws-upload.sh
# moto, a Python server, is the bottleneck of both: the figures compare the clients' cost
# and overheads, not what the real EBS endpoint would sustain.
set -eu
TOP=$(cd "$(dirname "$0")/.." && pwd)
IMGBUILD=${IMGBUILD:-$TOP/build/imgbuild}
SIZE_MIB=${SIZE_MIB:-2048}
CONCURRENCY=${CONCURRENCY:-64}
W=$TOP/bench/results/aws
command -v moto_server >/dev/null || { echo "moto_server missing (the machine image's Python has it)"; exit 1; }
python3 -c 'import boto3' || { echo "boto3 missing"; exit 1; }
[ -x "$IMGBUILD" ] || make -C "$TOP" >/dev/null || { echo "no $IMGBUILD (make)"; exit 1; }

PIDS=""
cleanup() { for p in $PIDS; do kill "$p" 2>/dev/null || true; done; }
trap cleanup EXIT
trap 'exit 1' INT TERM

# A project whose worker role has a built image: the fake manifest is all publish reads.
P=$W/project
mkdir -p "$P/out"
for f in cloud-init images stacks imgbuild.yaml ansible-free-scripts; do
	[ -e "$TOP/$f" ] && rm -rf "${P:?}/$f" && cp -r "$TOP/$f" "$P/"
done
raw=$P/out/worker.raw
if [ "$(stat -c %s "$raw" 2>/dev/null || echo 0)" != $((SIZE_MIB * 1048576)) ]; then
	echo "== writing $SIZE_MIB MiB of random data to $raw"
	head -c $((SIZE_MIB * 1048576)) /dev/urandom >"$raw"
fi
cat "$raw" >/dev/null # page cache warm for both runs

PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
MOTO=http://127.0.0.1:$PORT
MOTO_EC2_LOAD_DEFAULT_AMIS=false moto_server -H 127.0.0.1 -p "$PORT" >"$W/moto.log" 2>&1 &
PIDS="$PIDS $!"
i=0
until curl -s -o /dev/null "$MOTO/moto-api/"; do
	i=$((i + 1)); [ $i -lt 100 ] || { echo "moto did not start"; exit 1; }; sleep 0.2
done

export AWS_ACCESS_KEY_ID=AKIABENCH0000000000 AWS_SECRET_ACCESS_KEY=bench AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1
export AWS_EC2_METADATA_DISABLED=true IMGBUILD_AWS_POLL_SECONDS=0.2
unset AWS_PROFILE AWS_ENDPOINT_URL http_proxy HTTP_PROXY || true

echo "== imgbuild publish ($SIZE_MIB MiB, concurrency $CONCURRENCY)"
printf '{"role":"worker","salt":"%s","outputs":{"raw":{"size":%s}}}\n' "$(date +%s%N)" \
	"$(stat -c %s "$raw")" >"$P/out/worker.manifest.json"
"$IMGBUILD" -C "$P" publish worker --endpoint-url "$MOTO" --concurrency "$CONCURRENCY" \
	--json -q >"$W/imgbuild.json"
grep '"event":"summary"' "$W/imgbuild.json" >"$W/imgbuild.summary.json"

curl -s -X POST "$MOTO/moto-api/reset" >/dev/null
echo "== boto3 reference ($SIZE_MIB MiB, concurrency $CONCURRENCY)"
python3 "$TOP/bench/aws-upload-boto3.py" "$MOTO" "$raw" "$CONCURRENCY" >"$W/boto3.json"

python3 - "$W/imgbuild.summary.json" "$W/boto3.json" <<'EOF'
import json, sys
s = json.load(open(sys.argv[1]))
r = s["roles"][0]
b = json.load(open(sys.argv[2]))
mib = r["blocks_uploaded"] * 524288 / 2**20
ib = mib / r["upload_seconds"]
bb = b["bytes"] / 2**20 / b["seconds"]
same = "same" if r["checksum"] == b["checksum"] else "DIFFERENT"
print("imgbuild: %.0f MiB in %.1f s = %.1f MiB/s (%d blocks, %d retries), peak RSS %.1f MiB"
      % (mib, r["upload_seconds"], ib, r["blocks_uploaded"], r["block_retries"],
         s["peak_rss_kib"] / 1024))
print("boto3:    %.0f MiB in %.1f s = %.1f MiB/s, peak RSS %.1f MiB"
      % (b["bytes"] / 2**20, b["seconds"], bb, b["peak_rss_kib"] / 1024))
print("ratio (imgbuild / boto3 throughput): %.2fx; aggregate checksums: %s" % (ib / bb, same))
print("imgbuild peak RSS %.1f MiB: %s the 128 MiB target"
      % (s["peak_rss_kib"] / 1024, "within" if s["peak_rss_kib"] <= 128 * 1024 else "OVER"))
EOF
