#!/bin/sh
# The tooling stack's configuration tree (stacks/tooling/), checked without running a
# container: the compose file as docker-compose reads it (pinned images, published ports,
# no secret), Prometheus' configuration, alert rules and their unit tests, Alertmanager's
# rendered configuration, Grafana's provisioning and dashboards, the other YAML files, the
# first-boot script and the shell scripts.
. "$(dirname "$0")/../lib.sh"
t_init 60-tooling-static
S=$TOP/stacks/tooling
[ -f "$S/compose.yaml" ] || fail "no $S/compose.yaml"

command -v python3 >/dev/null || skip "python3 is not installed (make deps)"
python3 -c 'import yaml' 2>/dev/null || skip "python3-yaml is not installed (make deps)"
command -v promtool >/dev/null || skip "promtool is not installed (package prometheus, make deps)"
command -v shellcheck >/dev/null || skip "shellcheck is not installed (make deps)"
if command -v docker-compose >/dev/null; then
	COMPOSE=docker-compose
elif docker compose version >/dev/null 2>&1; then
	COMPOSE="docker compose"
else
	skip "neither docker-compose nor docker compose is installed (make deps)"
fi

PRIV=10.77.0.20

# --- shell scripts
for f in "$S/bin/tooling-init" "$S/alertmanager/render-config.sh" "$0"; do
	sh -n "$f" || fail "sh -n $f"
	# SC1091: lib.sh's path is computed, shellcheck cannot follow it.
	shellcheck -s sh -e SC1091 "$f" >"$T/shellcheck.out" 2>&1 || { cat "$T/shellcheck.out"; fail "shellcheck $f"; }
done
ok "shell scripts: sh -n, shellcheck"

# --- every YAML and JSON file parses
python3 - "$S" <<'PY' || fail "YAML/JSON files do not parse"
import json, os, sys, yaml
bad = 0
n = 0
for root, _, files in os.walk(sys.argv[1]):
    for f in files:
        p = os.path.join(root, f)
        try:
            if f.endswith((".yml", ".yaml")):
                yaml.safe_load(open(p))
                n += 1
            elif f.endswith(".json"):
                json.load(open(p))
                n += 1
        except Exception as e:
            print(f"{p}: {e}")
            bad += 1
if bad or n < 20:
    sys.exit(f"{bad} files do not parse ({n} read)")
PY
ok "YAML and JSON files parse"

# --- the compose file, through docker-compose, with a test env file
cat >"$T/tooling.env" <<EOF
TOOLING_PRIVATE_ADDR=$PRIV
GRAFANA_ADMIN_PASSWORD=t60-grafana-secret
JENKINS_ADMIN_PASSWORD=t60-jenkins-secret
POSTGRES_PROD_PASSWORD=t60-prod-secret
POSTGRES_DEV_PASSWORD=t60-dev-secret
ALERT_WEBHOOK_URL=https://hooks.invalid/t60-webhook-secret
DOCKER_GID=998
EOF
# A clean environment: only the env file supplies the variables.
run_compose() {
	# shellcheck disable=SC2086
	env -i PATH="$PATH" HOME="$T" $COMPOSE --env-file "$1" -f "$S/compose.yaml" config
}
run_compose "$T/tooling.env" >"$T/compose.rendered.yaml" 2>"$T/compose.err" ||
	{ cat "$T/compose.err"; fail "compose config with the test env file"; }
printf 'TOOLING_PRIVATE_ADDR=%s\n' "$PRIV" >"$T/nosecret.env"
if run_compose "$T/nosecret.env" >/dev/null 2>"$T/compose.err"; then
	fail "compose config succeeds without the passwords"
fi
grep -q 'is not set in /etc/imgbuild/tooling.env' "$T/compose.err" ||
	{ cat "$T/compose.err"; fail "compose without passwords: no message naming the env file"; }
ok "compose config: valid with the env file, refused without its passwords"

python3 - "$S" "$T/compose.rendered.yaml" "$PRIV" <<'PY' || fail "compose file checks"
import os, re, sys, yaml

src, rendered, priv = sys.argv[1], sys.argv[2], sys.argv[3]
c = yaml.safe_load(open(rendered))
raw = yaml.safe_load(open(os.path.join(src, "compose.yaml")))
text = open(os.path.join(src, "compose.yaml")).read()
svcs = c["services"]
errors = []

want = {"jenkins", "grafana", "prometheus", "alertmanager", "blackbox-exporter",
        "postgres-exporter-prod", "postgres-exporter-dev", "node-exporter", "loki", "promtail",
        "tempo", "adminer-prod", "adminer-dev", "postgres-prod", "postgres-dev"}
if set(svcs) != want:
    errors.append(f"services {sorted(set(svcs) ^ want)} missing or unexpected")

# Images: pinned, no latest, the same set as images.txt.
listed = [l.strip() for l in open(os.path.join(src, "images.txt")) if l.strip()]
if len(listed) != len(set(listed)):
    errors.append("images.txt lists an image twice")
for ref in listed:
    name, _, tag = ref.rpartition(":")
    if not name or "/" in tag or not tag or tag == "latest" or "@" in ref:
        errors.append(f"images.txt: '{ref}' is not pinned by a tag")
used = {s["image"] for s in svcs.values()}
if used != set(listed):
    errors.append(f"images in compose.yaml but not images.txt: {sorted(used - set(listed))}; "
                  f"in images.txt but unused: {sorted(set(listed) - used)}")

# Published ports: 8084, 3000, 8181, 8282 on every address; the rest on the private one.
public = {8084: "jenkins", 3000: "grafana", 8181: "adminer-prod", 8282: "adminer-dev"}
seen_public = {}
def parse_port(p):
    if isinstance(p, dict):
        return p.get("host_ip", ""), int(p["published"]), int(p["target"])
    s = str(p).split("/")[0]
    parts = s.split(":")
    if len(parts) == 3:
        return parts[0], int(parts[1]), int(parts[2])
    if len(parts) == 2:
        return "", int(parts[0]), int(parts[1])
    raise ValueError(f"unpublished or odd port '{p}'")
for name, s in svcs.items():
    for p in s.get("ports", []):
        ip, pub, tgt = parse_port(p)
        if ip in ("", "0.0.0.0"):
            seen_public[pub] = name
            if public.get(pub) != name:
                errors.append(f"{name}: port {pub} is published on every address")
        elif ip != priv:
            errors.append(f"{name}: port {pub} is published on {ip}, not TOOLING_PRIVATE_ADDR")
if seen_public != public:
    errors.append(f"public ports {seen_public}, want {public}")
for name in ("prometheus", "alertmanager", "loki", "tempo", "postgres-prod", "postgres-dev"):
    if not any(parse_port(p)[0] == priv for p in svcs[name].get("ports", [])):
        errors.append(f"{name}: not published on the private address")
for line in text.splitlines():
    m = re.match(r'\s*- "(\$\{TOOLING_PRIVATE_ADDR[^}]*\}):', line)
    if m and m.group(1) != "${TOOLING_PRIVATE_ADDR:-127.0.0.1}":
        errors.append(f"private port without the 127.0.0.1 default: {line.strip()}")
ne = svcs["node-exporter"]
if ne.get("network_mode") != "host" or ne.get("pid") != "host":
    errors.append("node-exporter: not on the host network and PID namespace")
if f"--web.listen-address={priv}:9100" not in ne.get("command", []):
    errors.append("node-exporter: does not listen on the private address only")

# Restart policy, one network, healthchecks where the image has the tools.
nohealth = {"promtail", "tempo"}
for name, s in svcs.items():
    if s.get("restart") != "unless-stopped":
        errors.append(f"{name}: restart is not unless-stopped")
    if name != "node-exporter" and list(s.get("networks", {})) != ["tooling"]:
        errors.append(f"{name}: not on exactly the tooling network")
    if name not in nohealth and "healthcheck" not in s:
        errors.append(f"{name}: no healthcheck")
if list(c.get("networks", {})) != ["tooling"]:
    errors.append(f"networks {list(c.get('networks', {}))}, want one: tooling")
for db in ("postgres-prod", "postgres-dev"):
    if "pg_isready" not in " ".join(svcs[db]["healthcheck"]["test"]):
        errors.append(f"{db}: healthcheck without pg_isready")

# Settings the brief names.
env = lambda n: svcs[n].get("environment", {})
checks = [
    ("jenkins", env("jenkins").get("CASC_JENKINS_CONFIG") == "/usr/share/jenkins/casc/casc.yaml", "CASC_JENKINS_CONFIG"),
    ("jenkins", "-Djenkins.install.runSetupWizard=false" in env("jenkins").get("JAVA_OPTS", ""), "JAVA_OPTS"),
    ("grafana", env("grafana").get("GF_SECURITY_ADMIN_PASSWORD") == "t60-grafana-secret", "GF_SECURITY_ADMIN_PASSWORD"),
    ("adminer-prod", env("adminer-prod").get("ADMINER_DEFAULT_SERVER") == "postgres-prod", "ADMINER_DEFAULT_SERVER"),
    ("adminer-dev", env("adminer-dev").get("ADMINER_DEFAULT_SERVER") == "postgres-dev", "ADMINER_DEFAULT_SERVER"),
    ("postgres-prod", env("postgres-prod").get("POSTGRES_PASSWORD") == "t60-prod-secret", "POSTGRES_PASSWORD"),
    ("postgres-dev", env("postgres-dev").get("POSTGRES_PASSWORD") == "t60-dev-secret", "POSTGRES_PASSWORD"),
    ("alertmanager", env("alertmanager").get("ALERT_WEBHOOK_URL") == "https://hooks.invalid/t60-webhook-secret", "ALERT_WEBHOOK_URL"),
    ("prometheus", "--web.enable-lifecycle" in svcs["prometheus"]["command"], "--web.enable-lifecycle"),
    ("prometheus", any(a.startswith("--storage.tsdb.retention.time=") for a in svcs["prometheus"]["command"]), "retention"),
]
for name, good, what in checks:
    if not good:
        errors.append(f"{name}: {what} is not as expected")

# Volumes: host data under /srv/tooling/<dir> that tooling-init creates; files from the
# tree exist; nothing else but the few host paths the collectors need.
# Directories only the build fills (the tooling role's artifacts, e.g. the Jenkins plugins),
# as seen from the stack's directory.
role = yaml.safe_load(open(os.path.join(os.path.dirname(os.path.dirname(src)), "images/tooling.yaml")))
artifact_dirs = {os.path.dirname(a["destination"]).replace("/opt/imgbuild/tooling", src, 1)
                 for a in role.get("artifacts") or [] if a.get("destination", "").startswith("/opt/imgbuild/tooling/")}
init = open(os.path.join(src, "bin", "tooling-init")).read()
made = set(re.findall(r"^([a-z-]+) \d+:\d+ 0[0-7]{3}$", init, re.M))
allowed_host = {"/var/run/docker.sock", "/var/log/journal", "/run/log/journal", "/etc/machine-id", "/"}
for name, s in svcs.items():
    for v in s.get("volumes", []):
        hostp = v["source"] if isinstance(v, dict) else v.split(":")[0]
        if hostp.startswith("/srv/tooling/"):
            if hostp[len("/srv/tooling/"):] not in made:
                errors.append(f"{name}: {hostp} is not created by bin/tooling-init")
        elif hostp.startswith(src + "/"):
            if not os.path.exists(hostp) and hostp not in artifact_dirs:
                errors.append(f"{name}: mounts {hostp}, which does not exist (and no artifact of images/tooling.yaml goes there)")
        elif hostp not in allowed_host:
            errors.append(f"{name}: unexpected host path {hostp}")

# No secret in the source: every password-like environment value is a ${VAR:?} substitution.
for name, s in raw["services"].items():
    for k, v in (s.get("environment") or {}).items():
        if re.search(r"PASS|SECRET|TOKEN", k) and not re.fullmatch(r"\$\{[A-Z0-9_]+:\?[^}]*\}", str(v)):
            errors.append(f"{name}: {k} is not a required ${{VAR:?}} substitution")

# Every variable the compose file reads is documented in README.md.
readme = open(os.path.join(src, "README.md")).read()
for var in sorted(set(re.findall(r"\$\{([A-Z0-9_]+)", text))):
    if f"`{var}`" not in readme:
        errors.append(f"README.md does not document {var}")

if errors:
    print("\n".join(errors))
    sys.exit(1)
PY
ok "compose: services, pinned images = images.txt, public ports 8084 3000 8181 8282, the rest private"

# --- no secret literal anywhere in the tree
python3 - "$S" <<'PY' || fail "a secret-like literal is in stacks/tooling"
import os, re, sys, yaml
key = re.compile(r"(pass(word)?|passwd|secret|token|api_?key|credentials)$", re.I)
ok_value = re.compile(r"^(\$\{[A-Za-z0-9_]+(:?[-?][^}]*)?\}|@[A-Z_]+@|)$")
bad = []
def walk(p, node, path):
    if isinstance(node, dict):
        for k, v in node.items():
            if isinstance(v, (str, int)) and key.search(str(k)) and not ok_value.match(str(v)):
                bad.append(f"{p}: {'.'.join(path + [str(k)])} = {v!r}")
            walk(p, v, path + [str(k)])
    elif isinstance(node, list):
        for i, v in enumerate(node):
            walk(p, v, path + [str(i)])
for root, _, files in os.walk(sys.argv[1]):
    for f in files:
        p = os.path.join(root, f)
        if f.endswith((".yml", ".yaml", ".in")):
            walk(p, yaml.safe_load(open(p)), [])
        # Anything that looks like a generated secret (tooling-init makes 48 hex digits).
        if re.search(r"\b[0-9a-f]{40,}\b", open(p, errors="replace").read()):
            bad.append(f"{p}: holds a long hex string")
if bad:
    print("\n".join(bad))
    sys.exit(1)
PY
ok "no password, secret or token literal in the tree"

# --- Prometheus: configuration with example targets, rules, unit tests
mkdir -p "$T/prom/targets"
cp "$S/prometheus/prometheus.yml" "$T/prom/"
cp -r "$S/prometheus/rules" "$T/prom/"
cp "$S/prometheus/targets/nodes.example.json" "$T/prom/targets/nodes.json"
cp "$S/prometheus/targets/app.example.json" "$T/prom/targets/app.json"
expect_exit 0 promtool check config "$T/prom/prometheus.yml"
nrules=$(find "$S/prometheus/rules" -name '*.yml' | wc -l)
grep -q "SUCCESS: $nrules rule files found" "$T/out" || { cat "$T/out"; fail "promtool check config: not all $nrules rule files found"; }
expect_exit 0 promtool check rules "$S"/prometheus/rules/*.yml
ok "promtool check config (example targets) and check rules"

n=0
for t in "$S"/prometheus/tests/*.yml; do
	expect_exit 0 promtool test rules "$t"
	n=$((n + 1))
done
[ "$n" -ge 5 ] || fail "only $n rule test files"
ok "promtool test rules: $n files"

python3 - "$S/prometheus" <<'PY' || fail "alert rules and their tests"
import glob, os, sys, yaml
d = sys.argv[1]
alerts, errors = {}, []
for f in sorted(glob.glob(os.path.join(d, "rules", "*.yml"))):
    for g in yaml.safe_load(open(f))["groups"]:
        for r in g["rules"]:
            if "alert" not in r:
                continue
            a = r["alert"]
            alerts[a] = f
            if "for" not in r:
                errors.append(f"{a}: no for:")
            if r.get("labels", {}).get("severity") not in ("critical", "warning"):
                errors.append(f"{a}: severity is not critical or warning")
            ann = r.get("annotations", {})
            if not ann.get("summary") or not ann.get("description"):
                errors.append(f"{a}: summary or description annotation missing")
need = {"AppDown", "AppHighLatencyP95", "AppHighErrorRate", "DatabaseDown", "NodeDown",
        "DiskFilling", "BackupMissing", "PrometheusTargetMissing"}
for a in sorted(need - set(alerts)):
    errors.append(f"alert {a} is missing")
firing, quiet = set(), set()
for f in glob.glob(os.path.join(d, "tests", "*.yml")):
    t = yaml.safe_load(open(f))
    for rf in t.get("rule_files", []):
        if not os.path.exists(os.path.join(os.path.dirname(f), rf)):
            errors.append(f"{f}: rule file {rf} does not exist")
    for case in t["tests"]:
        for art in case.get("alert_rule_test", []):
            (firing if art.get("exp_alerts") else quiet).add(art["alertname"])
for a in sorted(alerts):
    if a not in firing:
        errors.append(f"{a}: no test where it fires")
    if a not in quiet:
        errors.append(f"{a}: no test where it does not fire")
for a in sorted((firing | quiet) - set(alerts)):
    errors.append(f"tests name {a}, which no rule defines")
if errors:
    print("\n".join(errors))
    sys.exit(1)
print(f"{len(alerts)} alerts, each tested firing and not firing")
PY
ok "every alert has for, severity, summary, description and a firing and a quiet test"

# --- Grafana: datasources, dashboard provider, dashboards
python3 - "$S" "$T/dashboard-exprs.yml" <<'PY' || fail "Grafana provisioning and dashboards"
import glob, json, os, re, sys, yaml
src, out = sys.argv[1], sys.argv[2]
errors = []
ds = yaml.safe_load(open(os.path.join(src, "grafana/provisioning/datasources/datasources.yaml")))["datasources"]
uids = {d["uid"]: d["type"] for d in ds}
for need, typ in (("prometheus", "prometheus"), ("loki", "loki"), ("tempo", "tempo")):
    if uids.get(need) != typ:
        errors.append(f"no {typ} datasource with uid {need}")
defaults = [d["name"] for d in ds if d.get("isDefault")]
if defaults != ["Prometheus"]:
    errors.append(f"default datasources {defaults}, want Prometheus alone")
tempo = next(d for d in ds if d["uid"] == "tempo")
if tempo.get("jsonData", {}).get("tracesToLogsV2", {}).get("datasourceUid") != "loki":
    errors.append("Tempo has no trace-to-logs link to Loki")
for d in ds:
    for m in re.findall(r'"datasourceUid": "([^"]+)"', json.dumps(d)):
        if m not in uids:
            errors.append(f"datasource {d['name']} links to unknown uid {m}")

prov = yaml.safe_load(open(os.path.join(src, "grafana/provisioning/dashboards/dashboards.yaml")))
path = prov["providers"][0]["options"]["path"]
compose = open(os.path.join(src, "compose.yaml")).read()
if f"./grafana/dashboards:{path}:ro" not in compose:
    errors.append(f"dashboards provider reads {path}, which compose.yaml does not mount")

exprs = []
dash_uids = set()
def check_ds(where, dsref):
    if not isinstance(dsref, dict) or dsref.get("uid") not in uids:
        errors.append(f"{where}: datasource {dsref!r} is not a provisioned uid")
        return None
    if dsref.get("type") and dsref["type"] != uids[dsref["uid"]]:
        errors.append(f"{where}: datasource type {dsref['type']} != {uids[dsref['uid']]}")
    return dsref["uid"]
files = sorted(glob.glob(os.path.join(src, "grafana/dashboards/*.json")))
if not any(f.endswith("golden-signals.json") for f in files):
    errors.append("no golden-signals.json")
for f in files:
    name = os.path.basename(f)
    db = json.load(open(f))
    if not db.get("uid") or db["uid"] in dash_uids:
        errors.append(f"{name}: missing or duplicate uid")
    dash_uids.add(db.get("uid"))
    for v in db.get("templating", {}).get("list", []):
        if v.get("type") == "query":
            check_ds(f"{name} variable {v['name']}", v.get("datasource"))
    panels = []
    for p in db.get("panels", []):
        panels.append(p)
        panels.extend(p.get("panels", []))
    ids = [p["id"] for p in panels]
    if len(ids) != len(set(ids)):
        errors.append(f"{name}: duplicate panel ids")
    n = 0
    for p in panels:
        if p["type"] == "row":
            continue
        n += 1
        where = f"{name} panel '{p.get('title')}'"
        check_ds(where, p.get("datasource"))
        if not p.get("targets"):
            errors.append(f"{where}: no query")
        for t in p.get("targets", []):
            u = check_ds(where, t.get("datasource", p.get("datasource")))
            if not t.get("expr"):
                errors.append(f"{where}: empty query")
            elif u == "prometheus":
                exprs.append(t["expr"])
    if n < 5:
        errors.append(f"{name}: only {n} panels")
    if name == "golden-signals.json":
        text = json.dumps(db)
        if not any(v["name"] == "env" for v in db["templating"]["list"]):
            errors.append("golden-signals: no env variable")
        for q in ("0.50", "0.95", "0.99"):
            if f"quantile_over_time({q}, probe_duration_seconds" not in text:
                errors.append(f"golden-signals: no latency quantile {q}")
        for m in ("app:probe_http_status_non200:bool", "node_cpu_seconds_total",
                  "node_memory_MemAvailable_bytes", "node_filesystem_avail_bytes"):
            if m not in text:
                errors.append(f"golden-signals: nothing on {m}")

# The PromQL of every panel, as recording rules, for promtool to parse.
rules = []
for i, e in enumerate(exprs):
    e = re.sub(r"\$__(rate_interval|interval|range)", "5m", e)
    e = re.sub(r"\$\{?[a-z]+\}?", ".*", e)
    rules.append({"record": f"dashboard:expr_{i}", "expr": e})
yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}, open(out, "w"))
if errors:
    print("\n".join(errors))
    sys.exit(1)
print(f"{len(files)} dashboards, {len(exprs)} PromQL queries")
PY
expect_exit 0 promtool check rules "$T/dashboard-exprs.yml"
ok "Grafana: datasource uids, provider path, dashboards' datasources and PromQL"

# --- Alertmanager: rendered from the template, then amtool
AM=$S/alertmanager
# render URL OUTPUT [COMMAND...]
render() {
	r_url=$1 r_out=$2
	shift 2
	env -i PATH="$PATH" ALERT_WEBHOOK_URL="$r_url" ALERTMANAGER_TEMPLATE="$AM/alertmanager.yml.in" \
		ALERTMANAGER_CONFIG="$r_out" sh "$AM/render-config.sh" "$@"
}
url='https://hooks.invalid/alert?token=t60&x=a\b|c'
render "$url" "$T/am-webhook.yml" || fail "render-config.sh with a webhook URL"
grep -qF "url: '$url'" "$T/am-webhook.yml" || fail "webhook URL not rendered literally: $(grep url: "$T/am-webhook.yml")"
grep -q '@[A-Z_]*@' "$T/am-webhook.yml" && fail "placeholder left in the rendered configuration"
[ "$(stat -c %a "$T/am-webhook.yml")" = 600 ] || fail "rendered configuration is not 0600"
render "" "$T/am-none.yml" 2>/dev/null || fail "render-config.sh without a webhook URL"
grep -q 'receiver: "blackhole"' "$T/am-none.yml" || fail "no webhook URL: alerts not routed to blackhole"
for bad in 'ftp://x/' "https://x/'" 'https://x/a b' 'hooks.invalid'; do
	if render "$bad" "$T/am-bad.yml" 2>/dev/null; then
		fail "render-config.sh accepts '$bad'"
	fi
done
render "$url" "$T/am-run.yml" echo ran >"$T/am-run.out" || fail "render-config.sh does not run its command"
[ "$(cat "$T/am-run.out")" = ran ] || fail "render-config.sh: command output '$(cat "$T/am-run.out")'"
python3 - "$T/am-webhook.yml" "$S/prometheus/rules" <<'PY' || fail "alertmanager.yml"
import glob, os, sys, yaml
c = yaml.safe_load(open(sys.argv[1]))
names = {r["name"] for r in c["receivers"]}
assert c["route"]["receiver"] == "webhook", c["route"]
assert names == {"webhook", "blackhole"}, names
wh = next(r for r in c["receivers"] if r["name"] == "webhook")["webhook_configs"][0]
assert wh["send_resolved"] is True
alerts = set()
for f in glob.glob(os.path.join(sys.argv[2], "*.yml")):
    for g in yaml.safe_load(open(f))["groups"]:
        alerts |= {r["alert"] for r in g["rules"] if "alert" in r}
for ir in c.get("inhibit_rules", []):
    for m in ir.get("source_matchers", []) + ir.get("target_matchers", []):
        if m.startswith("alertname"):
            for a in m.split('"')[1].split("|"):
                assert a in alerts, f"inhibit rule names unknown alert {a}"
PY
if command -v amtool >/dev/null; then
	expect_exit 0 amtool check-config "$T/am-webhook.yml"
	expect_exit 0 amtool check-config "$T/am-none.yml"
	ok "Alertmanager: rendered with and without a webhook URL; amtool check-config"
else
	ok "Alertmanager: rendered with and without a webhook URL (amtool not installed: not checked by amtool)"
fi

# --- blackbox exporter's modules, when Debian's exporter is installed
if command -v prometheus-blackbox-exporter >/dev/null; then
	expect_exit 0 prometheus-blackbox-exporter --config.check --config.file="$S/blackbox/blackbox.yml"
	ok "blackbox exporter: --config.check"
fi

# --- Loki, Promtail, Tempo, Jenkins
python3 - "$S" <<'PY' || fail "Loki, Promtail, Tempo, Jenkins files"
import os, re, sys, yaml
s = sys.argv[1]
y = lambda p: yaml.safe_load(open(os.path.join(s, p)))
errors = []
loki = y("loki/loki.yaml")
if loki["server"]["http_listen_port"] != 3100 or not loki["compactor"].get("retention_enabled") \
        or not loki["limits_config"].get("retention_period"):
    errors.append("loki: port 3100 with retention")
if loki["common"]["storage"].get("filesystem") is None:
    errors.append("loki: not on filesystem storage")
pt = y("promtail/promtail.yaml")
if pt["clients"][0]["url"] != "http://loki:3100/loki/api/v1/push":
    errors.append("promtail: does not push to loki:3100")
jobs = {j["job_name"]: j for j in pt["scrape_configs"]}
if "docker_sd_configs" not in jobs.get("docker", {}) or "journal" not in jobs.get("journal", {}):
    errors.append("promtail: docker and journal jobs")
# The nodes' promtail (the Kubernetes add-on logs) pushes to this Loki's port and labels the
# journal as the tooling host's own does, so one query covers every host.
ds = [d for d in yaml.safe_load_all(open(os.path.join(os.path.dirname(s), "kubernetes/addons.d/logs/promtail.yaml")))
      if d and d["kind"] == "ConfigMap" and d["metadata"]["name"] == "promtail"]
node = yaml.safe_load(ds[0]["data"]["promtail.yaml"]) if ds else {}
if [c["url"] for c in node.get("clients", [])] != ["http://${TOOLING_ADDRESS}:%d/loki/api/v1/push" % loki["server"]["http_listen_port"]]:
    errors.append("k8s promtail (addons.d/logs): does not push to the tooling host's Loki port")
nj = {j["job_name"]: j for j in node.get("scrape_configs", [])}
if nj.get("journal", {}).get("journal", {}).get("labels") != jobs["journal"]["journal"]["labels"] or \
        nj["journal"].get("relabel_configs") != jobs["journal"].get("relabel_configs"):
    errors.append("k8s promtail (addons.d/logs): its journal labels differ from the tooling host's")
tempo = y("tempo/tempo.yaml")
otlp = tempo["distributor"]["receivers"]["otlp"]["protocols"]
if not otlp["grpc"]["endpoint"].endswith(":4317") or not otlp["http"]["endpoint"].endswith(":4318"):
    errors.append("tempo: OTLP gRPC on 4317 and HTTP on 4318")
if tempo["storage"]["trace"]["backend"] != "local":
    errors.append("tempo: not on local storage")
casc = y("jenkins/casc.yaml")
realm = casc["jenkins"]["securityRealm"]["local"]
if realm["users"][0]["password"] != "${JENKINS_ADMIN_PASSWORD}" or realm.get("allowsSignup"):
    errors.append("casc: local admin with ${JENKINS_ADMIN_PASSWORD}, no sign-up")
if "loggedInUsersCanDoAnything" not in casc["jenkins"]["authorizationStrategy"]:
    errors.append("casc: authorization is not loggedInUsersCanDoAnything")
if "pipelineJob('quode-app')" not in casc["jobs"][0]["script"]:
    errors.append("casc: no quode-app pipeline job")
plugins = {}
for line in open(os.path.join(s, "jenkins/plugins.txt")):
    line = line.split("#")[0].strip()
    if line:
        m = re.fullmatch(r"([a-z0-9-]+):([0-9][A-Za-z0-9._-]*)", line)
        if not m:
            errors.append(f"plugins.txt: '{line}' is not id:version")
        else:
            plugins[m.group(1)] = m.group(2)
# What casc.yaml (JCasC, a Job DSL pipelineJob from git) and the declarative Jenkinsfile
# (sh, withCredentials, input, timeout...) need directly.
for p in ("configuration-as-code", "job-dsl", "workflow-job", "workflow-cps",
          "pipeline-model-definition", "workflow-basic-steps", "workflow-durable-task-step",
          "pipeline-input-step", "credentials-binding", "git"):
    if p not in plugins:
        errors.append(f"plugins.txt: {p} missing")
jf = open(os.path.join(s, "jenkins/Jenkinsfile")).read()
for stage in ("Build", "Test", "Push", "Deploy dev", "Deploy prod"):
    if f"stage('{stage}')" not in jf:
        errors.append(f"Jenkinsfile: no stage '{stage}'")
for want in ("file(credentialsId: 'kubeconfig'", "git rev-parse --short=12 HEAD", "kubectl"):
    if want not in jf:
        errors.append(f"Jenkinsfile: no {want}")
if jf.count("{") != jf.count("}"):
    errors.append("Jenkinsfile: unbalanced braces")
if errors:
    print("\n".join(errors))
    sys.exit(1)
PY
ok "Loki, Promtail, Tempo, JCasC, plugins.txt, Jenkinsfile"

# --- Jenkins plugins: plugins.txt and the role's artifacts agree
# plugins_agree PLUGINS_TXT ROLE_YAML: exit 1 naming each difference.
plugins_agree() {
	python3 - "$1" "$2" <<'PY'
import re, sys, yaml
errors = []
plugins = {}
for line in open(sys.argv[1]):
    line = line.split("#")[0].strip()
    m = re.fullmatch(r"([a-z0-9-]+):([0-9][A-Za-z0-9._-]*)", line)
    if m:
        plugins[m.group(1)] = m.group(2)
# Every plugins.txt entry is baked as a pinned artifact of the tooling role, and every baked
# plugin is in plugins.txt: same id, same version, from the update center, with a digest.
role = yaml.safe_load(open(sys.argv[2]))
plugdir = "/opt/imgbuild/tooling/jenkins/plugins/"
baked = {}
for a in role.get("artifacts") or []:
    dest = a.get("destination", "")
    if not (a["name"].startswith("jenkins-plugin-") or dest.startswith(plugdir)):
        continue
    m = re.fullmatch(r"https://updates\.jenkins\.io/download/plugins/([a-z0-9-]+)/([^/]+)/([a-z0-9-]+)\.hpi", a["url"])
    if not m or m.group(1) != m.group(3):
        errors.append(f"tooling.yaml: artifact {a['name']}: {a['url']} is not an update center download")
        continue
    pid, ver = m.group(1), m.group(2)
    if a["name"] != "jenkins-plugin-" + pid or dest != plugdir + pid + ".jpi":
        errors.append(f"tooling.yaml: artifact {a['name']}: want name jenkins-plugin-{pid}, destination {plugdir}{pid}.jpi")
    if not a.get("sha256") and not (a.get("checksum_url") or "").endswith(f"/{pid}/{ver}/{pid}-{ver}.hpi.sha256"):
        errors.append(f"tooling.yaml: artifact {a['name']}: neither sha256 nor the release's .sha256")
    baked[pid] = ver
for pid in sorted(set(plugins) | set(baked)):
    if pid not in baked:
        errors.append(f"plugins.txt: {pid}:{plugins[pid]} is not baked (no jenkins-plugin-{pid} artifact in images/tooling.yaml)")
    elif pid not in plugins:
        errors.append(f"tooling.yaml: jenkins-plugin-{pid} is baked but not in plugins.txt")
    elif plugins[pid] != baked[pid]:
        errors.append(f"plugins.txt pins {pid}:{plugins[pid]}, tooling.yaml bakes {baked[pid]}")
if errors:
    print("\n".join(errors))
    sys.exit(1)
print(f"{len(baked)} plugins baked, as plugins.txt pins them")
PY
}
plugins_agree "$S/jenkins/plugins.txt" "$TOP/images/tooling.yaml" >"$T/plugins.out" ||
	{ cat "$T/plugins.out"; fail "plugins.txt and images/tooling.yaml disagree"; }
agreed=$(cat "$T/plugins.out")
# plugins_differ NAME PATTERN: the edited copies in $T/pl must fail with PATTERN.
plugins_differ() {
	if plugins_agree "$T/pl/plugins.txt" "$T/pl/tooling.yaml" >"$T/plugins.out"; then
		fail "plugins check, $1: passed"
	fi
	grep -q -- "$2" "$T/plugins.out" || { cat "$T/plugins.out"; fail "plugins check, $1: not /$2/"; }
}
mkdir -p "$T/pl"
pl_reset() { cp "$S/jenkins/plugins.txt" "$TOP/images/tooling.yaml" "$T/pl/"; }
pl_reset
echo "timestamper:1.27" >>"$T/pl/plugins.txt"
plugins_differ "unbaked entry" "plugins.txt: timestamper:1.27 is not baked"
pl_reset
sed -i 's/^job-dsl:.*/job-dsl:1.88/' "$T/pl/plugins.txt"
plugins_differ "other version" "plugins.txt pins job-dsl:1.88, tooling.yaml bakes 1.87"
pl_reset
sed -i '/^git:/d' "$T/pl/plugins.txt"
plugins_differ "unlisted artifact" "jenkins-plugin-git is baked but not in plugins.txt"
pl_reset
sed -i '/name: jenkins-plugin-credentials-binding/,/mode:/{/checksum_url/d}' "$T/pl/tooling.yaml"
sed -i '/name: jenkins-plugin-credentials-binding/,/mode:/{s|    destination:|    sha256: '"$(printf '%064d' 0 | tr 0 a)"'\n    destination:|}' "$T/pl/tooling.yaml"
plugins_agree "$T/pl/plugins.txt" "$T/pl/tooling.yaml" >"$T/plugins.out" || { cat "$T/plugins.out"; fail "a plugin pinned by sha256 is refused"; }
sed -i '/name: jenkins-plugin-credentials-binding/,/mode:/{/sha256:/d}' "$T/pl/tooling.yaml"
plugins_differ "no digest" "jenkins-plugin-credentials-binding: neither sha256 nor"
ok "Jenkins plugins: $agreed; an unbaked entry, another version, an unlisted artifact, a missing digest each refused"

# --- Jenkins plugins: the closure, as tests/tooling/jenkins-manifests.txt records the real
# manifests (partly verified: stacks/tooling/jenkins/PINS.md). The build checks the real files; this says
# early that the list, as recorded, is closed and that the core runs every plugin.
python3 - "$S/jenkins/plugins.txt" "$TOP/tests/tooling/jenkins-manifests.txt" "$S/compose.yaml" <<'PY' >"$T/closure.out" ||
import re, sys, yaml
errors = []
plugins = {}
for line in open(sys.argv[1]):
    line = line.split("#")[0].strip()
    if line:
        pid, ver = line.split(":", 1)
        plugins[pid] = ver
table = {}
for line in open(sys.argv[2]):
    f = line.split("#", 1)[0].split()
    if f:
        pid, ver = f[0].split(":", 1)
        table[pid] = (ver, f[1], f[3:])
for pid in sorted(set(plugins) | set(table)):
    if pid not in table:
        errors.append(f"plugins.txt: {pid} has no entry in tests/tooling/jenkins-manifests.txt")
    elif pid not in plugins:
        errors.append(f"jenkins-manifests.txt: {pid} is not in plugins.txt")
    elif table[pid][0] != plugins[pid]:
        errors.append(f"jenkins-manifests.txt records {pid}:{table[pid][0]}, plugins.txt pins {plugins[pid]}")
for pid, (ver, core, deps) in sorted(table.items()):
    for d in deps:
        if not d.endswith("?") and "=" not in d and d not in plugins:
            errors.append(f"{pid}:{ver} needs {d}, which plugins.txt does not list")
def key(v):
    return [int(x) for x in re.split(r"[.-]", v) if x.isdigit()]
image = yaml.safe_load(open(sys.argv[3]))["services"]["jenkins"]["image"]
core = re.match(r"jenkins/jenkins:([0-9.]+)", image).group(1)
newest = max(table.items(), key=lambda kv: key(kv[1][1]))
if key(newest[1][1]) > key(core):
    errors.append(f"{newest[0]} needs Jenkins {newest[1][1]}, the image is {core}")
if errors:
    print("\n".join(errors))
    sys.exit(1)
print(f"{len(table)} plugins, closed under their required dependencies as recorded; "
      f"the newest core any needs is {newest[1][1]} ({newest[0]}), the image runs {core}")
PY
	{ cat "$T/closure.out"; fail "the Jenkins plugins' closure, as recorded"; }
ok "Jenkins plugins: $(cat "$T/closure.out") (recorded dependencies, partly verified: PINS.md; the build checks the real manifests)"

# --- bin/tooling-init: env file, data directories, targets (in $T, not on this host)
init() {
	env -i PATH="$PATH" TOOLING_ENV_FILE="$T/init/tooling.env" TOOLING_DATA_DIR="$T/init/srv" \
		TOOLING_TEXTFILE_DIR="$T/init/textfile" TOOLING_NO_CHOWN=1 TOOLING_JENKINS_TOOLS= \
		sh "$S/bin/tooling-init" 2>>"$T/init.log"
}
mkdir -p "$T/init"
printf 'TOOLING_NODES=master=10.77.0.10 worker-1=10.77.0.11 worker-2=10.77.0.12\nTOOLING_PRIVATE_ADDR=%s\nTOOLING_HOSTNAME=tooling\nJENKINS_ADMIN_PASSWORD=from-user-data\nGRAFANA_ADMIN_PASSWORD=\n' "$PRIV" \
	>"$T/init/tooling.env"
init || { cat "$T/init.log"; fail "tooling-init"; }
[ "$(stat -c %a "$T/init/tooling.env")" = 600 ] || fail "tooling.env is not 0600"
grep -qx 'JENKINS_ADMIN_PASSWORD=from-user-data' "$T/init/tooling.env" || fail "tooling-init replaced a user-data value"
for k in GRAFANA_ADMIN_PASSWORD POSTGRES_PROD_PASSWORD POSTGRES_DEV_PASSWORD; do
	[ "$(grep -c "^$k=" "$T/init/tooling.env")" = 1 ] || fail "$k: not exactly one line"
	grep -Eq "^$k=[0-9a-f]{48}$" "$T/init/tooling.env" || fail "$k: not generated"
done
cp "$T/init/tooling.env" "$T/init/tooling.env.first"
init || { cat "$T/init.log"; fail "tooling-init, second run"; }
cmp -s "$T/init/tooling.env" "$T/init/tooling.env.first" || fail "tooling-init is not idempotent"
for d in jenkins grafana prometheus alertmanager loki tempo promtail postgres-prod postgres-dev targets; do
	[ -d "$T/init/srv/$d" ] || fail "tooling-init: no $d directory"
done
[ -d "$T/init/textfile" ] || fail "tooling-init: no textfile directory"
run_compose "$T/init/tooling.env" >/dev/null 2>"$T/compose.err" ||
	{ cat "$T/compose.err"; fail "compose config with tooling-init's env file"; }
rm -rf "$T/prom/targets" && cp -r "$T/init/srv/targets" "$T/prom/targets"
expect_exit 0 promtool check config "$T/prom/prometheus.yml"
python3 - "$T/init/srv/targets" "$PRIV" <<'PY' || fail "tooling-init targets"
import json, sys
d, priv = sys.argv[1], sys.argv[2]
nodes = json.load(open(f"{d}/nodes.json"))
got = {(g["labels"]["node"], g["labels"]["role"], g["targets"][0]) for g in nodes}
want = {("master", "master", "10.77.0.10:9100"), ("worker-1", "worker", "10.77.0.11:9100"),
        ("worker-2", "worker", "10.77.0.12:9100"), ("tooling", "tooling", f"{priv}:9100")}
assert got == want, got
app = {g["labels"]["env"]: g["targets"] for g in json.load(open(f"{d}/app.json"))}
assert app["prod"] == [f"http://10.77.0.{n}:8500/" for n in (10, 11, 12)], app
assert app["dev"] == [f"http://10.77.0.{n}:8501/" for n in (10, 11, 12)], app
PY
ok "tooling-init: env file 0600 with generated secrets kept across runs, directories, targets"
