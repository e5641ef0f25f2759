#!/bin/sh
# AWS publishing against moto_server on loopback (started here; missing moto is a failure,
# not a skip), through the real `imgbuild publish` code path, on small fake images (random,
# written-zero and hole regions, a partial last block) with fake manifests: a dry run sends
# nothing and shows no secret; a full publish of every role; the AMI found by its digest
# tag; every snapshot block read back with GetSnapshotBlock equal to the image; the launch
# template as sent; RegisterImage's fields moto drops checked in moto's request recording;
# the Terraform files; a second publish uploads nothing; --skip-holes leaves out only true
# holes; throttling, 5xx, not-found and stalls injected by tests/servers/awsfault.py are
# retried; a failed RegisterImage leaves no snapshot behind.
# shellcheck disable=SC2086
# after: 10-build (reads what 10-build makes, boots nothing; tests/run-integration.sh)
. "$(dirname "$0")/../lib.sh"
t_init 40-aws
command -v moto_server >/dev/null || fail "moto_server is not installed (it comes with the machine image's Python: pip's moto[server])"
command -v python3 >/dev/null || fail "python3 is missing"
python3 -c 'import boto3' 2>/dev/null || fail "boto3 is missing (it comes with moto)"
bin=${IMGBUILD_SAN:-$IMGBUILD}
[ -x "$bin" ] || bin=$IMGBUILD
CHECK="python3 $TOP/tests/integration/40-aws-check.py"

PIDS=""
cleanup() {
	for pid in $PIDS; do kill "$pid" 2>/dev/null; done
	sleep 0.3
	for pid in $PIDS; do kill -9 "$pid" 2>/dev/null; done
}
trap cleanup EXIT
trap 'exit 1' INT TERM
free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

# ---- moto, recording every request ----
PORT=$(free_port)
MOTO=http://127.0.0.1:$PORT
MOTO_ENABLE_RECORDING=true MOTO_RECORDER_FILEPATH=$T/moto.rec MOTO_EC2_LOAD_DEFAULT_AMIS=false \
	moto_server -H 127.0.0.1 -p "$PORT" >"$T/moto.log" 2>&1 &
PIDS="$PIDS $!"
i=0
until curl -s -o /dev/null "$MOTO/moto-api/"; do
	i=$((i + 1)); [ $i -lt 100 ] || { cat "$T/moto.log"; fail "moto_server did not start"; }
	sleep 0.2
done
rec_start() { : >"$T/moto.rec"; curl -sf -X POST "$MOTO/moto-api/recorder/start-recording" >/dev/null || fail "recorder"; }
rec_stop() { curl -sf -X POST "$MOTO/moto-api/recorder/stop-recording" >/dev/null; curl -sf "$MOTO/moto-api/recorder/download-recording" >"$T/$1.rec" || fail "download recording"; }
ok "moto_server on $MOTO"

# ---- a project whose outputs are small fake images ----
P=$T/project
mkdir -p "$P"
for f in ansible-free-scripts cloud-init images stacks imgbuild.yaml; do cp -r "$TOP/$f" "$P/"; done
roles=$(cd "$P/images" && grep -L '^abstract: true' ./*.yaml | sed 's|^\./||; s/\.yaml$//')
OUT=$P/out
mkdir -p "$OUT" "$T/home"

ORIG_CACHE=${IMGBUILD_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/imgbuild}
# Environment: only what the test sets (no ~/.aws, no instance metadata).
for v in AWS_PROFILE AWS_DEFAULT_PROFILE AWS_CONFIG_FILE AWS_SHARED_CREDENTIALS_FILE \
	AWS_ENDPOINT_URL AWS_DEFAULT_REGION http_proxy HTTP_PROXY https_proxy all_proxy; do unset $v; done
export HOME=$T/home AWS_EC2_METADATA_DISABLED=true AWS_REGION=us-east-1
export AWS_ACCESS_KEY_ID=AKIAIMGBUILDTEST0042
export AWS_SECRET_ACCESS_KEY=imgbuildTestSecretDoNotPrint
export AWS_SESSION_TOKEN=imgbuildTestSessionTokenDoNotPrint
export IMGBUILD_AWS_POLL_SECONDS=0.1 IMGBUILD_AWS_RETRY_BASE_MS=20

expect_exit 2 "$bin" -C "$P" publish worker --endpoint-url "$MOTO"
grep -q "build it first with 'imgbuild build worker'" "$T/err" || fail "missing image: $(cat "$T/err")"
expect_exit 2 "$bin" -C "$P" all --region eu-west-1
grep -q "only with --target ami" "$T/err" || fail "all --region: $(cat "$T/err")"
expect_exit 2 "$bin" -C "$P" all --target docker
grep -q "the only target is 'ami'" "$T/err" || fail "all --target: $(cat "$T/err")"
ok "usage: unbuilt role, AWS options without --target ami, bad target"

# 64 MiB + 100 KiB: random, written zeros (a zero block that must still be sent), a hole,
# random, a hole, and a random partial last block. Each role's image is laid out afresh
# (cp would turn the written zeros into a hole).
head -c 16879616 /dev/urandom >"$T/random"
mkimg() {
	head -c 8388608 "$T/random" >"$1"
	head -c 8388608 /dev/zero >>"$1"
	truncate -s 41943040 "$1"
	tail -c 8491008 "$T/random" | head -c 8388608 >>"$1"
	truncate -s 67108864 "$1"
	tail -c 102400 "$T/random" >>"$1"
}
img=$T/image.raw
mkimg "$img"
# manifest ROLE SALT: a fake manifest (its digest changes with SALT).
manifest() {
	size=$(stat -c %s "$OUT/$1.raw")
	sha=$(sha256sum <"$OUT/$1.raw" | cut -d' ' -f1)
	printf '{"manifest_version":1,"role":"%s","salt":"%s","inputs":{"digest":"%s"},"outputs":{"raw":{"file":"%s.raw","size":%s,"sha256":"%s"}}}\n' \
		"$1" "$2" "$(echo "$1 $2" | sha256sum | cut -d' ' -f1)" "$1" "$size" "$sha" >"$OUT/$1.manifest.json"
}
digest() { sha256sum <"$OUT/$1.manifest.json" | cut -d' ' -f1; }
for r in $roles; do
	mkimg "$OUT/$r.raw"
	manifest "$r" 1
done
blocks=$(( ($(stat -c %s "$img") + 524287) / 524288 ))

# ---- a dry run sends nothing and shows no secret, not even in its -vv log ----
rec_start
expect_exit 0 "$bin" -C "$P" -vv publish worker --endpoint-url "$MOTO" --dry-run
rec_stop dry
$CHECK quiet "$T/dry.rec" StartSnapshot PutSnapshotBlock CompleteSnapshot DescribeImages RegisterImage CreateLaunchTemplate || fail "the dry run sent requests"
! grep -q DoNotPrint "$T/out" "$T/err" || fail "a secret was printed by the dry run"
! grep -q "$AWS_ACCESS_KEY_ID" "$T/out" "$T/err" || fail "the dry run printed the whole access key id"
grep -q 'Credential=\*\*\*\*0042/' "$T/out" || fail "dry run: the key id is not shown shortened"
grep -q 'Signature=<redacted>' "$T/out" || fail "dry run: no redacted signature"
grep -q 'X-Amz-Security-Token: <redacted>' "$T/out" || fail "dry run: token header not redacted"
[ "$(grep -c '^PUT .*/blocks/' "$T/out")" = "$blocks" ] || fail "dry run: $(grep -c '^PUT' "$T/out") block requests, want $blocks"
for a in StartSnapshot RegisterImage CreateLaunchTemplate; do
	grep -q "Action=$a\|^POST .*/snapshots\$" "$T/out" || fail "dry run does not show $a"
done
grep -q 'Action=RegisterImage.*Architecture=x86_64' "$T/out" || fail "dry run: RegisterImage body"
[ ! -e "$OUT/aws" ] || fail "the dry run wrote files"
ok "dry run: $blocks block requests shown, nothing sent, secrets redacted"

# ---- a full publish of every role ----
rec_start
expect_exit 0 env IMGBUILD_AWS_BACKUP_RETENTION_DAYS=30 "$bin" -C "$P" -vv publish --endpoint-url "$MOTO" --json --instance-type t3.large
rec_stop first
grep '"event":"summary"' "$T/out" >"$T/summary1.json" || fail "no summary: $(cat "$T/out" "$T/err")"
! grep -q DoNotPrint "$T/out" "$T/err" || fail "a secret was printed"
for r in $roles; do
	python3 -c "import json,sys; s=json.load(open(sys.argv[1])); r=[x for x in s['roles'] if x['role']==sys.argv[2]][0]; assert r['result']=='published' and r['blocks_uploaded']==int(sys.argv[3]) and r['blocks_skipped']==0, r" \
		"$T/summary1.json" "$r" "$blocks" || fail "publish of $r: $(cat "$T/summary1.json")"
done
field() { python3 -c "import json,sys; s=json.load(open(sys.argv[1])); print([x for x in s['roles'] if x['role']==sys.argv[2]][0][sys.argv[3]])" "$@"; }
AMI=$(field "$T/summary1.json" worker ami)
SNAP=$(field "$T/summary1.json" worker snapshot)
LT=$(field "$T/summary1.json" worker launch_template_name)
ok "published every role ($(echo $roles)): worker is $AMI from $SNAP"
$CHECK image "$MOTO" us-east-1 "$(digest worker)" "$AMI" worker || fail "DescribeImages"
$CHECK blocks "$MOTO" "$SNAP" "$OUT/worker.raw" || fail "GetSnapshotBlock read-back"
$CHECK template "$MOTO" "$LT" "$AMI" t3.large || fail "launch template"
$CHECK recording "$T/first.rec" "$T/summary1.json" worker || fail "recorded requests"
$CHECK terraform "$OUT/aws" "$T/summary1.json" worker || fail "Terraform files"
$CHECK template-tf "$MOTO" "$OUT/aws" worker "$LT" || fail "Terraform file versus API"
python3 -c "import json,sys; r=json.load(open(sys.argv[1]))['resource']['aws_backup_plan']['imgbuild']['rule'][0]; assert r['lifecycle']['delete_after'] == 30 and r['schedule'] == 'cron(0 5 ? * * *)', r" \
	"$OUT/aws/backup-plan.tf.json" || fail "the backup plan does not keep 30 days daily"
expect_exit 2 env IMGBUILD_AWS_BACKUP_RETENTION_DAYS=0 "$bin" -C "$P" publish --endpoint-url "$MOTO"
grep -q "IMGBUILD_AWS_BACKUP_RETENTION_DAYS='0' is not a number of days" "$T/err" || fail "retention: $(cat "$T/err")"
for r in $roles; do
	python3 -c "import json,sys; json.load(open(sys.argv[1]))['resource']['aws_launch_template'][sys.argv[2]]" \
		"$OUT/aws/launch-templates.tf.json" "$r" || fail "no template for $r in the Terraform file"
done

# ---- publishing again uploads nothing ----
rec_start
expect_exit 0 "$bin" -C "$P" publish --endpoint-url "$MOTO" --json --instance-type t3.large
rec_stop second
grep '"event":"summary"' "$T/out" >"$T/summary2.json"
for r in $roles; do
	[ "$(field "$T/summary2.json" "$r" result)" = reused ] || fail "$r not reused: $(cat "$T/summary2.json")"
	[ "$(field "$T/summary2.json" "$r" launch_template_changed)" = False ] || fail "$r template changed"
done
[ "$(field "$T/summary2.json" worker ami)" = "$AMI" ] || fail "a second AMI for worker"
$CHECK quiet "$T/second.rec" StartSnapshot PutSnapshotBlock CompleteSnapshot RegisterImage CreateLaunchTemplate CreateLaunchTemplateVersion || fail "the second publish did work"
ok "second publish: every role reused, nothing uploaded or registered"

# ---- --skip-holes leaves out true holes, never written zeros ----
holes_ok=$(python3 -c "import os,sys; f=os.open(sys.argv[1],os.O_RDONLY); print(1 if os.lseek(f,16*2**20,os.SEEK_DATA)==40*2**20 else 0)" "$OUT/master.raw")
manifest master 2
expect_exit 0 "$bin" -C "$P" publish master --endpoint-url "$MOTO" --json --skip-holes
grep '"event":"summary"' "$T/out" >"$T/summary3.json"
skipped=$(field "$T/summary3.json" master blocks_skipped)
uploaded=$(field "$T/summary3.json" master blocks_uploaded)
if [ "$holes_ok" = 1 ]; then
	# holes: 16..40 MiB (48 blocks) and 48..64 MiB (32 blocks); 8..16 MiB is written zeros.
	[ "$skipped" = 80 ] && [ "$uploaded" = $((blocks - 80)) ] || fail "--skip-holes: skipped $skipped, uploaded $uploaded of $blocks"
	ok "--skip-holes: 80 hole blocks left out, the 16 written-zero blocks sent"
else
	[ $((skipped + uploaded)) = "$blocks" ] || fail "--skip-holes accounting"
	echo "note: this filesystem does not report holes; --skip-holes checked for accounting only"
fi

# ---- faults through a proxy: throttling, 503, 500, not found, stalls ----
# start_proxy NAME ARGS...: awsfault.py in front of moto, logging to $T/NAME.log.
start_proxy() {
	name=$1
	shift
	rm -f "$T/proxy.port"
	python3 "$TOP/tests/servers/awsfault.py" --upstream "$MOTO" --port-file "$T/proxy.port" \
		--log "$T/$name.log" --max-seconds 300 "$@" &
	PIDS="$PIDS $!"
	PROXY_PID=$!
	i=0
	until [ -s "$T/proxy.port" ]; do i=$((i + 1)); [ $i -lt 50 ] || fail "proxy did not start"; sleep 0.1; done
	PROXY=http://127.0.0.1:$(cat "$T/proxy.port")
}
# The proxy also recomputes every request's signature with botocore (moto checks none).
start_proxy faults --throttle-every 7 --slowdown-every 11 --error500-every 13 --notfound-every 17 \
	--stall-every 31 --stall-seconds 30 --ec2-throttle-every 4 --verify-secret "$AWS_SECRET_ACCESS_KEY"
manifest tooling 2
t0=$(date +%s)
IMGBUILD_AWS_REQUEST_TIMEOUT=2 expect_exit 0 "$bin" -C "$P" -vv publish tooling --endpoint-url "$PROXY" --json --concurrency 16
took=$(( $(date +%s) - t0 ))
grep '"event":"summary"' "$T/out" >"$T/summary4.json"
kill $PROXY_PID
grep -q 'retrying in' "$T/err" || fail "faults: no retry in the -vv log"
! grep -q DoNotPrint "$T/out" "$T/err" || fail "a secret in the -vv log of retries"
for f in throttle slowdown error500 notfound stall ec2-throttle; do
	grep -q "fault=$f " "$T/faults.log" || fail "no $f fault was injected"
done
# Every faulted block was sent again and then accepted.
grep 'fault=[a-z0-9]* ' "$T/faults.log" | grep -v 'fault=- ' | grep -o 'PUT [^ ]*' | sort -u | while read -r _ path; do
	grep -q "^PUT $path action=- attempt=2 fault=- status=201" "$T/faults.log" || fail "$path was not retried"
done || exit 1
! grep -q 'sig=bad' "$T/faults.log" || fail "requests with a bad signature: $(grep -c sig=bad "$T/faults.log")"
signed=$(grep -c 'sig=ok' "$T/faults.log")
[ "$signed" -gt "$blocks" ] || fail "only $signed requests had their signature checked"
retries=$(field "$T/summary4.json" tooling block_retries)
[ "$retries" -gt 0 ] || fail "no block retries counted"
[ "$took" -lt 30 ] || fail "the stalls were not cut short by the request timeout (${took}s)"
$CHECK blocks "$MOTO" "$(field "$T/summary4.json" tooling snapshot)" "$OUT/tooling.raw" || fail "read-back after faults"
ok "faults: throttling, 503, 500, not-found, stalls and EC2 throttling retried ($retries block retries, ${took}s); blocks intact"
ok "SigV4: all $signed requests (EC2, EBS, retries) verified by botocore"
start_proxy badsig --verify-secret not-the-secret
expect_exit 1 "$bin" -C "$P" -vv publish tooling --endpoint-url "$PROXY"
kill $PROXY_PID
grep -q "SignatureDoesNotMatch" "$T/err" || fail "the signature check is not effective: $(cat "$T/err")"
! grep -q DoNotPrint "$T/err" || fail "a secret in an error message"

# ---- a failed RegisterImage leaves no snapshot behind ----
start_proxy regfail --fail-action RegisterImage
manifest tooling 3
expect_exit 1 "$bin" -C "$P" publish tooling --endpoint-url "$PROXY"
kill $PROXY_PID
grep -q "RegisterImage.*InvalidParameterValue" "$T/err" || fail "register failure: $(cat "$T/err")"
grep -q "action=DeleteSnapshot .*status=200" "$T/regfail.log" || fail "no DeleteSnapshot after the failed register"
$CHECK no-orphans "$MOTO" us-east-1 "$(digest tooling)" || fail "orphans after a failed register"
ok "failed RegisterImage: the snapshot was deleted, nothing orphaned"

# ---- SIGINT mid-upload: out at once, the unfinished snapshot deleted ----
start_proxy sigint --stall-every 1 --stall-seconds 60
manifest base 2
"$bin" -C "$P" publish base --endpoint-url "$PROXY" >"$T/out" 2>"$T/err" &
pub=$!
i=0
until grep -q 'fault=stall' "$T/sigint.log" 2>/dev/null; do i=$((i + 1)); [ $i -lt 100 ] || fail "no upload started"; sleep 0.1; done
t0=$(date +%s)
kill -INT $pub
wait $pub
rc=$?
took=$(( $(date +%s) - t0 ))
kill $PROXY_PID
[ $rc = 1 ] || fail "interrupted publish exited $rc: $(cat "$T/err")"
[ $took -lt 10 ] || fail "interrupted publish took ${took}s to stop"
grep -q "interrupted" "$T/err" || fail "interrupt: $(cat "$T/err")"
grep -q "action=DeleteSnapshot .*status=200" "$T/sigint.log" || fail "no DeleteSnapshot after the interrupt"
$CHECK no-orphans "$MOTO" us-east-1 "$(digest base)" || fail "orphans after an interrupt"
ok "SIGINT mid-upload: stopped in ${took}s, the unfinished snapshot deleted"

# ---- copies to more regions, found again by their tag ----
manifest worker 4
expect_exit 0 "$bin" -C "$P" publish worker --endpoint-url "$MOTO" --json --copy-to eu-west-1,eu-central-1
grep '"event":"summary"' "$T/out" >"$T/summary5.json"
python3 -c "import json,sys; r=json.load(open(sys.argv[1]))['roles'][0]; c=r['copies']; assert set(c)=={'eu-west-1','eu-central-1'} and all(a.startswith('ami-') for a in c.values()), r" "$T/summary5.json" || fail "copies: $(cat "$T/summary5.json")"
$CHECK image "$MOTO" eu-west-1 "$(digest worker)" "$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['roles'][0]['copies']['eu-west-1'])" "$T/summary5.json")" worker || fail "copy in eu-west-1"
ok "copies to eu-west-1 and eu-central-1, available and tagged"
# The template existed: the new AMI went into a new version of it.
NEWAMI=$(python3 -c "import json,sys; print(json.load(open(sys.argv[1]))['roles'][0]['ami'])" "$T/summary5.json")
[ "$NEWAMI" != "$AMI" ] || fail "the changed worker image did not get a new AMI"
$CHECK template "$MOTO" "$LT" "$NEWAMI" t3.medium >"$T/lt2.txt" || { cat "$T/lt2.txt"; fail "launch template after the change"; }
grep -q " v2:" "$T/lt2.txt" || fail "no new launch template version: $(cat "$T/lt2.txt")"
ok "a changed image becomes version 2 of the role's launch template"

# ---- all --target ami: the real images 10-build made (reused, not rebuilt), published ----
IMG=$TOP/tests/tmp/images
if [ -f "$IMG/out/base.manifest.json" ]; then
	IMGBUILD_CACHE_DIR=$ORIG_CACHE expect_exit 0 "$bin" -C "$IMG" all --target ami --no-verify \
		--endpoint-url "$MOTO" --skip-holes --json
	grep '"event":"summary"' "$T/out" | tail -1 >"$T/summary6.json"
	python3 - "$T/summary6.json" <<'PY' || fail "all --target ami: $(cat "$T/summary6.json")"
import json, sys
s = json.load(open(sys.argv[1]))
amis = {r["role"]: r.get("ami") for r in s["roles"]}
assert set(amis) == {"base", "master", "tooling", "worker"}, amis
assert all(a and a.startswith("ami-") for a in amis.values()), amis
PY
	ok "all --target ami: the four real role images published"
else
	fail "no images from 10-build in $IMG/out: all --target ami was not tried"
fi
