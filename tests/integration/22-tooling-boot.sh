#!/bin/sh
# The tooling image boots with no network beyond its own host (QEMU user-mode NIC with
# restrict=on: no registry, no Internet; only the SSH port forwarded to it) and, from the
# images baked into it alone, brings its compose stack up. Then, over SSH:
#   - every baked image loaded into Docker by imgbuild-docker-images.service, with the
#     image ID of the baked archive, and no registry reachable from the guest;
#   - imgbuild-tooling.service active, the 15 containers running and the 13 healthchecks
#     healthy; tooling.env generated at first boot (0600, four distinct passwords, the
#     private address from the default route);
#   - the published ports answer from inside the guest: 8084, 3000, 8181, 8282 on every
#     address, 9090 and 3100 on the private address only;
#   - Prometheus has loaded the baked rules (/api/v1/rules lists every one of
#     stacks/tooling/prometheus/rules) and scrapes the real node exporter (up{job="node"}
#     == 1) and the real postgres exporters (pg_up == 1: the generated passwords work);
#   - Docker restarts a container whose process dies;
#   - the Jenkins container sees every plugin of plugins.txt in /usr/share/jenkins/ref/plugins,
#     baked (0644 root) with the digest the mirror served;
#   - imgbuild-pg-backup.service (what the daily timer starts) dumps both databases
#     (0600), writes the textfile metric that node-exporter then serves, and the prod dump
#     restores with imgbuild-pg-restore into a fresh database equal to the original table;
#     over a non-empty database it refuses without --force.
# The images are the test images of tests/tooling/mkimages.py (10-build bakes them): real
# Debian Prometheus, Alertmanager, node, blackbox and postgres exporters and PostgreSQL 15,
# HTTP stand-ins for Jenkins, Grafana, Loki, Promtail, Tempo and Adminer; the output lists
# which. KVM when it works, else TCG; at most IMGBUILD_TOOLING_BOOT_TIMEOUT (900) seconds
# from power-on to a healthy stack.
# shellcheck disable=SC2317 # functions called through wait_for and traps
# lane: images (reads what 10-build makes; tests/run-integration.sh)
. "$(dirname "$0")/../lib.sh"
t_init 22-tooling-boot
OUT=$TOP/tests/tmp/images/out
P=$TOP/tests/tmp/images
[ -f "$OUT/tooling.qcow2" ] || fail "no tooling image: run 10-build first"
command -v ssh >/dev/null || skip "ssh is not installed (make deps)"
LIMIT=${IMGBUILD_TOOLING_BOOT_TIMEOUT:-900}
S=$TOP/stacks/tooling

# IMGBUILD_TOOLING_KEEP_VM=1 leaves the guest running after the test, to look into it.
cleanup() {
	[ -n "${qpid:-}" ] && [ "${IMGBUILD_TOOLING_KEEP_VM:-0}" != 1 ] || return 0
	kill "$qpid" 2>/dev/null && sleep 1
	kill -9 "$qpid" 2>/dev/null
	wait "$qpid" 2>/dev/null
}
trap cleanup EXIT
trap 'exit 1' INT TERM
free_port() {
	python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}

ssh-keygen -q -t ed25519 -N '' -f "$T/key" || fail "ssh-keygen"
"$IMGBUILD" -C "$P" seed tooling -o "$T" --ssh-key "$T/key.pub" -q || fail "imgbuild seed tooling"
# The overlay takes the writes; at least 6 GiB (the images' layers, the databases), never
# smaller than the image.
vsize=$(qemu-img info --output=json "$OUT/tooling.qcow2" | python3 -c 'import json,sys; print(json.load(sys.stdin)["virtual-size"])')
size=$((6 << 30))
[ "$vsize" -gt "$size" ] && size=$vsize
qemu-img create -q -f qcow2 -F qcow2 -b "$OUT/tooling.qcow2" "$T/disk.qcow2" "$size" || fail "qemu-img create"

SSH_PORT=$(free_port)
accel=$(qemu_accel)
echo "booting tooling (bios, $accel, 2 vCPUs, 2 GiB) with restrict=on: no network but SSH forwarded; at most ${LIMIT}s to a healthy stack"
start=$(date +%s)
qemu-system-x86_64 -accel "$accel" -m 2048 -smp 2 -nographic -nodefaults -no-reboot \
	-serial "file:$T/serial.log" \
	-drive "file=$T/disk.qcow2,if=virtio,format=qcow2" \
	-drive "file=$T/tooling.seed.iso,if=virtio,format=raw,readonly=on" \
	-netdev "user,id=n0,restrict=on,hostfwd=tcp:127.0.0.1:$SSH_PORT-:22" \
	-device virtio-net-pci,netdev=n0 \
	-pidfile "$T/vm.pid" >"$T/qemu.log" 2>&1 &
qpid=$!
elapsed() { echo $(($(date +%s) - start)); }
# wait_for WHAT COMMAND...: until COMMAND succeeds, within the test's limit.
wait_for() {
	what=$1
	shift
	until "$@"; do
		kill -0 "$qpid" 2>/dev/null || { cat "$T/qemu.log"; tail -60 "$T/serial.log"; fail "QEMU exited while waiting for $what"; }
		if [ "$(elapsed)" -ge "$LIMIT" ]; then
			echo "--- serial (tail)"
			tail -80 "$T/serial.log"
			fail "$what: not within ${LIMIT}s"
		fi
		sleep 3
	done
	echo "$what: $(elapsed)s after power-on"
}
serial_has() { grep -qa "$1" "$T/serial.log" 2>/dev/null; }
wait_for "cloud-init finished" serial_has "imgbuild: cloud-init finished on tooling"

on() { # on: run stdin as a root shell script in the guest
	ssh -q -i "$T/key" -p "$SSH_PORT" -o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null \
		-o ConnectTimeout=20 -o BatchMode=yes debian@127.0.0.1 'sudo sh -s'
}
echo true | on || fail "no SSH to the guest with the seed's key"
serial_has "imgbuild-tooling: tooling first-boot script ran" || fail "the tooling first-boot script did not run"
# No unit failed and cloud-init complained about nothing (as 20-boot checks).
if grep -a -E 'FAILED|\[WARNING\]|Traceback|ERROR' "$T/serial.log"; then
	fail "failures or warnings on the console (above)"
fi
ok "tooling booted and cloud-init finished with no failure on the console, its first-boot script ran; SSH as debian with the seed's key"
# Where the boot's time goes (TCG makes it minutes): for whoever makes this test faster.
echo 'systemd-analyze blame --no-pager | head -8; systemd-analyze critical-chain --no-pager cloud-final.service' | on 2>&1 | sed 's/^/  boot: /'

# --- the images: loaded from the image, with no registry reachable
stack_started() {
	echo 'systemctl is-active -q imgbuild-tooling.service' | on
}
wait_for "imgbuild-tooling.service active" stack_started
on <<'EOF' >"$T/net.out" 2>&1 && fail "the guest reaches a registry: $(cat "$T/net.out")"
curl -sS -m 10 -o /dev/null https://registry-1.docker.io/v2/ || exit 1
EOF
ok "no registry from the guest: $(tail -n 1 "$T/net.out")"
on <<'EOF' >"$T/units.out" 2>&1 || { cat "$T/units.out"; fail "a unit is not as expected"; }
set -e
for u in docker.service imgbuild-docker-images.service imgbuild-tooling.service imgbuild-pg-backup.timer; do
	echo "$u $(systemctl is-active "$u") $(systemctl is-enabled "$u")"
done
systemctl --failed --no-legend --plain
EOF
grep -qv ' active enabled$' "$T/units.out" && { cat "$T/units.out"; fail "a unit is not active and enabled, or one failed"; }
[ "$(grep -c ' active enabled$' "$T/units.out")" = 4 ] || { cat "$T/units.out"; fail "units"; }
on <<'EOF' >"$T/ids.out" 2>&1 || { cat "$T/ids.out"; fail "docker image inspect"; }
grep -v '^#' /var/lib/imgbuild/images/index.tsv | while IFS="$(printf '\t')" read -r ref digest file; do
	echo "$ref $(docker image inspect -f '{{.Id}}' "$ref" 2>/dev/null || echo missing)"
done
EOF
n=0
while read -r ref; do
	[ -n "$ref" ] || continue
	n=$((n + 1))
	python3 - "$P/mirror" "$ref" "$T/ids.out" <<'PY' || fail "$ref: not loaded with the baked config digest"
import json, os, sys
mirror, ref, ids = sys.argv[1:]
name, tag = ref.rsplit(":", 1)
first = name.split("/", 1)[0]
if "." in first:
    reg, repo = name.split("/", 1)
else:
    reg, repo = "registry-1.docker.io", name if "/" in name else "library/" + name
m = json.load(open(os.path.join(mirror, reg, "v2", repo, "manifests", tag)))
want = m["config"]["digest"]
got = dict(l.split(" ", 1) for l in open(ids).read().splitlines()).get(ref)
if got != want:
    sys.exit(f"{ref}: docker has {got}, baked {want}")
PY
done <"$S/images.txt"
[ "$n" = 12 ] || fail "images.txt lists $n images"
on <<'EOF' >"$T/load.out" 2>&1
journalctl -b -u imgbuild-docker-images.service -o cat | grep 'imgbuild-tooling-images: done'
EOF
grep -q 'done: 12 images listed, 12 loaded, 0 already there' "$T/load.out" || { cat "$T/load.out"; fail "imgbuild-docker-images did not load the 12 images"; }
ok "the 12 baked images loaded by docker load at boot, with the baked image IDs; units active and enabled, none failed"

# Which are real software and which stand-ins, as the images say.
on <<'EOF' >"$T/kinds.out" 2>&1 || { cat "$T/kinds.out"; fail "image labels"; }
grep -v '^#' /var/lib/imgbuild/images/index.tsv | cut -f1 | while read -r ref; do
	docker image inspect -f '{{index .Config.Labels "imgbuild.test.kind"}} {{index .Config.Labels "imgbuild.test.ref"}}: {{index .Config.Labels "imgbuild.test.what"}}' "$ref"
done
EOF
echo "images in this test (tests/tooling/mkimages.py):"
sed 's/^/  /' "$T/kinds.out"
if [ "$(grep -c '^real ' "$T/kinds.out")" != 6 ] || [ "$(grep -c '^stand-in ' "$T/kinds.out")" != 6 ]; then
	fail "expected 6 real and 6 stand-in images"
fi

# --- the stack: every container running, every healthcheck healthy
# Polled from inside the guest, in one SSH session: under TCG each SSH login costs the guest
# seconds of CPU, which it needs to start the containers.
left=$((LIMIT - $(elapsed)))
if ! on <<EOF >"$T/ps.out" 2>&1; then
end=\$((\$(date +%s) + $left))
while :; do
	docker ps -a --filter label=com.docker.compose.project=tooling --format '{{.Label "com.docker.compose.service"}} {{.Status}}' | sort >/tmp/ps.out
	if [ "\$(grep -c '^[^ ]* Up ' /tmp/ps.out)" = 15 ] && ! grep -q 'starting\|unhealthy' /tmp/ps.out; then
		cat /tmp/ps.out
		exit 0
	fi
	[ "\$(date +%s)" -lt "\$end" ] || { cat /tmp/ps.out; exit 1; }
	sleep 10
done
EOF
	cat "$T/ps.out"
	echo 'docker ps -a; journalctl -b -u imgbuild-tooling.service -o cat | tail -40' | on
	fail "the stack did not come up within ${LIMIT}s of power-on"
fi
echo "15 containers running, healthchecks healthy: $(elapsed)s after power-on"
sed 's/^/  /' "$T/ps.out"
[ "$(grep -c '(healthy)' "$T/ps.out")" = 13 ] || fail "not the 13 healthchecks healthy"
on <<'EOF' >"$T/env.out" 2>&1 || { cat "$T/env.out"; fail "tooling.env"; }
set -e
f=/etc/imgbuild/tooling.env
stat -c 'mode %a %U' "$f"
sed -n 's/^TOOLING_PRIVATE_ADDR=//p' "$f" | sed 's/^/addr /'
for k in GRAFANA_ADMIN_PASSWORD JENKINS_ADMIN_PASSWORD POSTGRES_PROD_PASSWORD POSTGRES_DEV_PASSWORD; do
	sed -n "s/^$k=//p" "$f" | tail -n 1
done | sort -u | grep -cE '^[0-9a-f]{48}$' | sed 's/^/passwords /'
ip -4 route show default | sed 's/^/route /'
EOF
grep -qx 'mode 600 root' "$T/env.out" || { cat "$T/env.out"; fail "tooling.env is not 0600 root"; }
grep -qx 'passwords 4' "$T/env.out" || { cat "$T/env.out"; fail "not four distinct generated passwords"; }
# restrict=on: QEMU's DHCP gives the guest its usual address but no default route, so
# tooling-init takes the address of the one non-Docker interface.
ADDR=$(sed -n 's/^addr //p' "$T/env.out")
[ "$ADDR" = 10.0.2.15 ] || { cat "$T/env.out"; fail "TOOLING_PRIVATE_ADDR is '$ADDR', not the NIC's 10.0.2.15"; }
ok "stack up $(elapsed)s after power-on: 15 containers running, 13 healthchecks healthy; tooling.env 0600 with 4 generated passwords, private address $ADDR"

# --- ports, from inside the guest
on <<EOF >"$T/ports.out" 2>&1 || { cat "$T/ports.out"; fail "a published port does not answer"; }
set -e
for u in http://127.0.0.1:8084/login http://127.0.0.1:3000/api/health http://127.0.0.1:8181/ \
	http://127.0.0.1:8282/ http://$ADDR:8084/login http://$ADDR:9090/-/ready http://$ADDR:3100/ready; do
	curl -fsS -m 10 -o /dev/null "\$u"
	echo "ok \$u"
done
for u in http://127.0.0.1:9090/-/ready http://127.0.0.1:3100/ready; do
	if curl -fsS -m 5 -o /dev/null "\$u" 2>/dev/null; then echo "PUBLIC \$u"; exit 1; fi
done
ss -ltnH | awk '{print \$4}' | sort -u | tr '\n' ' '
EOF
ok "8084, 3000, 8181, 8282 answer on every address, 9090 and 3100 on $ADDR only"

# --- Jenkins plugins: baked, and where the Jenkins image's entry point takes them from
python3 - "$TOP/images/tooling.yaml" "$S/jenkins/plugins.txt" "$P/mirror" >"$T/plugins.want" <<'PY' || fail "the plugins' expected digests"
import hashlib, os, sys, yaml
arts = {a["name"]: a for a in yaml.safe_load(open(sys.argv[1]))["artifacts"]}
for line in open(sys.argv[2]):
    line = line.split("#")[0].strip()
    if line:
        pid = line.split(":")[0]
        url = arts["jenkins-plugin-" + pid]["url"]
        data = open(os.path.join(sys.argv[3], url.split("://", 1)[1]), "rb").read()
        print(hashlib.sha256(data).hexdigest(), pid + ".jpi")
PY
on <<'EOF' >"$T/plugins.out" 2>&1 || { cat "$T/plugins.out"; fail "the Jenkins container's plugins"; }
set -e
stat -c 'host %a %U %n' /opt/imgbuild/tooling/jenkins/plugins/*.jpi
c=$(docker ps -q --filter label=com.docker.compose.service=jenkins)
docker exec "$c" sh -c 'cd /usr/share/jenkins/ref/plugins && sha256sum *.jpi'
EOF
n=$(wc -l <"$T/plugins.want")
[ "$(grep -c '^host 644 root /opt/imgbuild/tooling/jenkins/plugins/.*\.jpi$' "$T/plugins.out")" = "$n" ] ||
	{ cat "$T/plugins.out"; fail "not the $n plugins baked 0644 root"; }
sed -n 's/^\([0-9a-f]\{64\}\)  */\1 /p' "$T/plugins.out" | sort >"$T/plugins.got"
sed 's/  */ /' "$T/plugins.want" | sort | cmp -s - "$T/plugins.got" ||
	{ cat "$T/plugins.want" "$T/plugins.out"; fail "the Jenkins container's plugins are not the ones served"; }
ok "the $n plugins of plugins.txt baked (0644 root) and seen by the Jenkins container in /usr/share/jenkins/ref/plugins with the digests served (stand-in .hpi files: the real plugins and Jenkins loading them are not exercised)"

# --- Prometheus: the baked rules, the node and postgres targets
on <<EOF >"$T/rules.json" || fail "GET /api/v1/rules"
curl -fsS -m 10 http://$ADDR:9090/api/v1/rules
EOF
python3 - "$S/prometheus/rules" "$T/rules.json" <<'PY' || fail "Prometheus did not load the baked rules"
import glob, json, os, sys, yaml
want = set()
for f in glob.glob(os.path.join(sys.argv[1], "*.yml")):
    for g in yaml.safe_load(open(f))["groups"]:
        for r in g["rules"]:
            want.add((g["name"], r.get("alert") or r.get("record")))
got = {(g["name"], r["name"]) for g in json.load(open(sys.argv[2]))["data"]["groups"] for r in g["rules"]}
if want - got:
    sys.exit(f"missing from /api/v1/rules: {sorted(want - got)}")
print(f"/api/v1/rules: {len(got)} rules in {len({g for g, _ in got})} groups, every baked one")
PY
query() { # query PROMQL: the values of the instant vector, one "labels value" a line
	q=$(python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1]))' "$1")
	echo "curl -fsS -m 10 'http://$ADDR:9090/api/v1/query?query=$q'" | on >"$T/q.json" 2>/dev/null || return 1
	python3 -c 'import json,sys; [print(r["metric"].get("job"), r["metric"].get("db", ""), r["value"][1]) for r in json.load(open(sys.argv[1]))["data"]["result"]]' "$T/q.json"
}
# Both waits in the guest, in one SSH session (as above).
left=$((LIMIT - $(elapsed)))
on <<EOF >"$T/up.out" 2>&1 || { cat "$T/up.out"; fail 'up{job="node"} == 1 and pg_up == 1 for prod and dev: not within the limit'; }
end=\$((\$(date +%s) + $left))
q() { curl -fsS -m 10 "http://$ADDR:9090/api/v1/query?query=\$1" | jq -r '.data.result[].value[1]' | sort | tr '\\n' ' '; }
until [ "\$(q 'up%7Bjob%3D%22node%22%7D')" = "1 " ] && [ "\$(q pg_up)" = "1 1 " ]; do
	[ "\$(date +%s)" -lt "\$end" ] || { echo "node: \$(q 'up%7Bjob%3D%22node%22%7D') pg_up: \$(q pg_up)"; exit 1; }
	sleep 3
done
EOF
echo 'up{job="node"} == 1 and pg_up == 1 for prod and dev: '"$(elapsed)s after power-on"
# The same through this side's query helper: what Prometheus serves, label by label.
[ "$(query 'up{job="node"}' | awk '{print $NF}')" = 1 ] || fail 'up{job="node"} is not 1'
[ "$(query 'pg_up' | awk '{print $2, $NF}' | sort | tr '\n' ' ')" = "dev 1 prod 1 " ] || fail "pg_up is not 1 for db=dev and db=prod: $(query pg_up)"
ok "Prometheus: every baked rule loaded; the real node exporter scraped (up{job=\"node\"} == 1), both real postgres exporters log in (pg_up == 1)"

# --- Docker restarts a container whose process dies
on <<'EOF' >"$T/restart.out" 2>&1 || { cat "$T/restart.out"; fail "restart"; }
c=$(docker ps -q --filter label=com.docker.compose.service=blackbox-exporter)
pid=$(docker inspect -f '{{.State.Pid}}' "$c")
count=$(docker inspect -f '{{.RestartCount}}' "$c")
kill -9 "$pid"
i=0
until [ "$(docker inspect -f '{{.RestartCount}} {{.State.Running}}' "$c")" = "$((count + 1)) true" ] &&
	[ "$(docker inspect -f '{{.State.Pid}}' "$c")" != "$pid" ]; do
	i=$((i + 1))
	if [ $i -ge 60 ]; then
		docker inspect -f '{{.RestartCount}} {{.State.Status}} {{.State.Pid}}' "$c"
		exit 1
	fi
	sleep 1
done
echo "blackbox-exporter's process killed with SIGKILL, running again as pid $(docker inspect -f '{{.State.Pid}}' "$c") within $((i + 1))s"
EOF
ok "Docker restarts a dead container: $(cat "$T/restart.out")"

# --- backup, metric, restore
on <<'EOF' >"$T/backup.out" 2>&1 || { cat "$T/backup.out"; fail "the backup service failed"; }
set -e
c=$(docker ps -q --filter label=com.docker.compose.service=postgres-prod)
docker exec "$c" psql -X -q -v ON_ERROR_STOP=1 -U quode -d quode -c \
	"CREATE TABLE t22 (id int PRIMARY KEY, name text, at timestamptz); INSERT INTO t22 SELECT i, 'row ' || i, '2026-01-01'::timestamptz + i * interval '1 hour' FROM generate_series(1, 300) i"
systemctl start imgbuild-pg-backup.service
systemctl show -p Result --value imgbuild-pg-backup.service
ls -l --time-style=+ /var/backups/postgres | tail -n +2 | awk '{print $1, $NF}'
stat -c 'dir %a' /var/backups/postgres
cat /var/lib/node-exporter/textfile/imgbuild_backup_postgres.prom
EOF
grep -qx success "$T/backup.out" || { cat "$T/backup.out"; fail "imgbuild-pg-backup.service did not succeed"; }
grep -qE '^-rw------- postgres-prod-[0-9]{8}T[0-9]{6}Z\.dump$' "$T/backup.out" || { cat "$T/backup.out"; fail "no 0600 prod dump"; }
grep -qE '^-rw------- postgres-dev-[0-9]{8}T[0-9]{6}Z\.dump$' "$T/backup.out" || { cat "$T/backup.out"; fail "no 0600 dev dump"; }
grep -qx 'dir 700' "$T/backup.out" || fail "/var/backups/postgres is not 0700"
for db in prod dev; do
	v=$(sed -n "s/^imgbuild_backup_last_success_timestamp_seconds{kind=\"postgres\",db=\"$db\"} \\([0-9]*\\)\$/\\1/p" "$T/backup.out")
	[ "${v:-0}" -gt 1700000000 ] || { cat "$T/backup.out"; fail "metric for $db: '$v'"; }
done
echo "curl -fsS -m 10 http://$ADDR:9100/metrics" | on >"$T/node.metrics" || fail "node-exporter /metrics"
[ "$(grep -c '^imgbuild_backup_last_success_timestamp_seconds{db="\(prod\|dev\)",kind="postgres"}' "$T/node.metrics")" = 2 ] ||
	{ grep imgbuild_ "$T/node.metrics"; fail "node-exporter does not serve the backup metric"; }
ok "imgbuild-pg-backup.service: 0600 dumps of prod and dev in /var/backups/postgres (0700); the textfile metric served by node-exporter"

on <<'EOF' >"$T/restore.out" 2>&1 || { cat "$T/restore.out"; fail "restore"; }
set -e
dump=$(ls /var/backups/postgres/postgres-prod-*.dump | tail -n 1)
imgbuild-pg-restore "$dump" t22_restored
c=$(docker ps -q --filter label=com.docker.compose.service=postgres-prod)
docker exec "$c" psql -X -q -U quode -d quode -c 'COPY (SELECT * FROM t22 ORDER BY id) TO STDOUT' >/tmp/a
docker exec "$c" psql -X -q -U quode -d t22_restored -c 'COPY (SELECT * FROM t22 ORDER BY id) TO STDOUT' >/tmp/b
echo "rows $(wc -l </tmp/a) $(wc -l </tmp/b)"
cmp /tmp/a /tmp/b && echo same
if imgbuild-pg-restore "$dump" t22_restored 2>/tmp/refused; then echo "NOT REFUSED"; exit 1; fi
grep -q 'refusing to overwrite' /tmp/refused && echo refused
EOF
for want in 'rows 300 300' same refused; do
	grep -qx "$want" "$T/restore.out" || { cat "$T/restore.out"; fail "the restored table differs, or the refusal is missing"; }
done
ok "the prod dump restored with imgbuild-pg-restore into a fresh database: 300 rows equal; overwriting it without --force refused"

echo "NOTE: Jenkins, Grafana, Loki, Promtail, Tempo and Adminer were HTTP stand-ins, the Jenkins plugins stand-in .hpi files; Prometheus, Alertmanager, the node, blackbox and postgres exporters and PostgreSQL ran Debian 12's builds, not the pinned upstream images"
echo "22-tooling-boot: $(elapsed)s in all"
exit 0
