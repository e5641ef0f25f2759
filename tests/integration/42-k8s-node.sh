#!/bin/sh
# 42-k8s-node: the Kubernetes node's baked files and host scripts, without booting anything.
#  - shellcheck -x on every ansible-free-scripts/*.sh;
#  - systemd-analyze verify on every unit under images/files/k8s/: Debian 12's systemd 252
#    checks that ExecStart= binaries exist, so the units are verified in a scratch root
#    (--root=DIR holding a copy of /usr/lib/systemd/system, for the targets the units name,
#    the units in etc/systemd/system/ and stub executables at their ExecStart= paths). verify
#    exits 0 on unknown keys and bad values, only printing them: any output fails the test;
#  - containerd's config.toml rendered ({{ pause_image }} by sed) and, when Debian's containerd
#    is installed, parsed by it (`containerd --config F config dump` keeps the values);
#  - the sysctl, modules-load and template files, parsed here;
#  - the host scripts run against a scratch root (IMGBUILD_ROOT) with stand-ins on PATH
#    (tests/k8s/stubs/stub.sh) that record their arguments;
#  - as root with containerd installed: imgbuild-k8s-images against a real containerd 1.6 and an
#    archive laid out as builder/oci/archive.c writes it (the ctr flags and names are real).
# A && B || fail is meant (fail exits); the ls calls list names this test made.
# shellcheck disable=SC2015,SC2012,SC2010,SC2016,SC2143,SC2129
# shellcheck source=tests/lib.sh
. "$(dirname "$0")/../lib.sh"
t_init 42-k8s-node
S=$TOP/ansible-free-scripts
F=$TOP/images/files/k8s
STUB=$TOP/tests/k8s/stubs/stub.sh
command -v shellcheck >/dev/null || skip "shellcheck is not installed (make deps)"
command -v systemd-analyze >/dev/null || skip "systemd-analyze is not installed"

# ---- shellcheck ----
(cd "$TOP" && shellcheck -x ansible-free-scripts/*.sh tests/k8s/stubs/stub.sh) >"$T/shellcheck" 2>&1 ||
	{ cat "$T/shellcheck"; fail "shellcheck -x ansible-free-scripts/*.sh"; }
ok "shellcheck -x: $(cd "$TOP" && ls ansible-free-scripts/*.sh | wc -l) scripts clean"

# ---- templates: only the role vars doc/kubernetes.md names, only in the templated files ----
templated="containerd/config.toml kubernetes.env kubernetes-version"
(cd "$F" && find . -type f | sed 's|^\./||' | sort) >"$T/files"
while read -r f; do
	vars=$(grep -o '{{[^}]*}}' "$F/$f" | tr -d '{} ' | sort -u | tr '\n' ' ')
	case " $templated " in
	*" $f "*)
		[ -n "$vars" ] || fail "$f is listed as a template but has no placeholder"
		for v in $vars; do
			case $v in k8s_version | pause_image | pod_cidr | service_cidr) ;;
			*) fail "$f uses {{ $v }}, not a role var doc/kubernetes.md names" ;; esac
		done
		;;
	*) [ -z "$vars" ] || fail "$f has placeholders ($vars) but is not a template" ;;
	esac
done <"$T/files"
render() {
	sed -e 's/{{ *k8s_version *}}/v1.30.2/g' -e 's|{{ *pause_image *}}|registry.k8s.io/pause:3.9|g' \
		-e 's|{{ *pod_cidr *}}|10.244.0.0/16|g' -e 's|{{ *service_cidr *}}|10.96.0.0/12|g' "$1"
}
render "$F/kubernetes-version" >"$T/kubernetes-version"
[ "$(cat "$T/kubernetes-version")" = v1.30.2 ] || fail "kubernetes-version renders as '$(cat "$T/kubernetes-version")'"
render "$F/kubernetes.env" >"$T/kubernetes.env"
got=$(env -i sh -c '. "$1" && echo "$K8S_VERSION|$K8S_PAUSE_IMAGE|$K8S_POD_CIDR|$K8S_SERVICE_CIDR|$K8S_NODEPORT_RANGE"' sh "$T/kubernetes.env")
[ "$got" = "v1.30.2|registry.k8s.io/pause:3.9|10.244.0.0/16|10.96.0.0/12|8000-32767" ] ||
	fail "kubernetes.env sources as '$got'"
# What no role spec bakes yet (the specs are written apart from these files): a note, not a failure.
for f in $(cd "$TOP" && ls ansible-free-scripts/k8s-*.sh) $(sed 's|^|images/files/k8s/|' "$T/files"); do
	grep -qF "$f" "$TOP"/images/*.yaml || echo "note: no images/*.yaml bakes $f"
done
ok "templates: kubernetes.env and kubernetes-version render and source; no stray placeholders"

# ---- systemd units ----
U=$T/sdroot
mkdir -p "$U/usr/lib/systemd" "$U/etc/systemd/system" "$U/usr/local/bin" "$U/usr/local/sbin" "$U/usr/bin"
cp -a /usr/lib/systemd/system "$U/usr/lib/systemd/"
units=""
for u in "$F"/*.service "$F"/*.timer; do
	cp "$u" "$U/etc/systemd/system/"
	units="$units ${u##*/}"
done
cp -r "$F/kubelet.service.d" "$U/etc/systemd/system/"
for x in "$U/usr/local/bin/containerd" "$U/usr/bin/kubelet" "$U/usr/local/sbin/imgbuild-k8s-images" \
	"$U/usr/local/sbin/imgbuild-etcd-snapshot"; do
	printf '#!/bin/sh\n' >"$x"
	chmod 755 "$x"
done
# shellcheck disable=SC2086
systemd-analyze verify --root="$U" $units >"$T/verify" 2>&1 || { cat "$T/verify"; fail "systemd-analyze verify$units"; }
[ ! -s "$T/verify" ] || { cat "$T/verify"; fail "systemd-analyze verify complains"; }
# ...and it does catch mistakes in this set-up (a bad drop-in key, a missing binary).
printf '[Service]\nRestartSecs=10\n' >"$U/etc/systemd/system/kubelet.service.d/99-bad.conf"
rm "$U/usr/local/bin/containerd"
systemd-analyze verify --root="$U" kubelet.service containerd.service >"$T/verify-bad" 2>&1
grep -q RestartSecs "$T/verify-bad" && grep -q /usr/local/bin/containerd "$T/verify-bad" ||
	{ cat "$T/verify-bad"; fail "systemd-analyze verify --root does not see the units' problems"; }
# The drop-in resets ExecStart= and the kubelet gets kubeadm's flags.
grep -qx 'ExecStart=' "$F/kubelet.service.d/10-kubeadm.conf" &&
	grep -q '^ExecStart=/usr/bin/kubelet \$KUBELET_KUBECONFIG_ARGS \$KUBELET_CONFIG_ARGS \$KUBELET_KUBEADM_ARGS \$KUBELET_EXTRA_ARGS$' "$F/kubelet.service.d/10-kubeadm.conf" ||
	fail "10-kubeadm.conf does not reset ExecStart= and run the kubelet with kubeadm's flags"
ok "systemd-analyze verify --root:$units and the kubelet drop-in: clean"

# ---- containerd ----
render "$F/containerd/config.toml" >"$T/config.toml"
grep -q '{{' "$T/config.toml" && fail "config.toml still has a placeholder after rendering"
for want in '^version = 2$' '^imports = \["/etc/containerd/conf.d/\*\.toml"\]$' \
	'^ *sandbox_image = "registry.k8s.io/pause:3.9"$' '^ *SystemdCgroup = true$' \
	'^ *BinaryName = "/usr/local/sbin/runc"$' '^ *runtime_type = "io.containerd.runc.v2"$' \
	'^ *config_path = "/etc/containerd/certs.d"$' '^ *bin_dir = "/opt/cni/bin"$' '^ *conf_dir = "/etc/cni/net.d"$'; do
	grep -Eq "$want" "$T/config.toml" || fail "config.toml lacks $want"
done
grep -E '^disabled_plugins' "$T/config.toml" | grep -q cri && fail "config.toml disables the CRI plugin"
if [ -x /usr/bin/containerd ]; then
	/usr/bin/containerd --config "$T/config.toml" config dump >"$T/dump.toml" 2>"$T/dump.err" ||
		{ cat "$T/dump.err"; fail "containerd cannot load config.toml"; }
	python3 - "$T/dump.toml" <<'PY' || fail "containerd's merged configuration lost a value"
import sys
try:
    import tomllib
except ImportError:
    tomllib = None
text = open(sys.argv[1]).read()
if tomllib is None:
    for s in ('sandbox_image = "registry.k8s.io/pause:3.9"', "SystemdCgroup = true",
              'BinaryName = "/usr/local/sbin/runc"', 'config_path = "/etc/containerd/certs.d"'):
        assert s in text, s
    sys.exit(0)
c = tomllib.loads(text)
assert not any("cri" in p for p in c.get("disabled_plugins", [])), c["disabled_plugins"]
cri = c["plugins"]["io.containerd.grpc.v1.cri"]
assert cri["sandbox_image"] == "registry.k8s.io/pause:3.9", cri["sandbox_image"]
assert cri["containerd"]["default_runtime_name"] == "runc"
runc = cri["containerd"]["runtimes"]["runc"]
assert runc["runtime_type"] == "io.containerd.runc.v2", runc
assert runc["options"]["SystemdCgroup"] is True, runc["options"]
assert runc["options"]["BinaryName"] == "/usr/local/sbin/runc", runc["options"]
assert cri["registry"]["config_path"] == "/etc/containerd/certs.d", cri["registry"]
assert cri["cni"]["bin_dir"] == "/opt/cni/bin" and cri["cni"]["conf_dir"] == "/etc/cni/net.d", cri["cni"]
PY
	ok "containerd config.toml: keys present, and $(/usr/bin/containerd --version | awk '{print $3}') loads it keeping them"
else
	ok "containerd config.toml: keys present (no /usr/bin/containerd here: not loaded by containerd)"
fi

# ---- sysctl, modules, crictl ----
python3 - "$F/sysctl.d/90-kubernetes.conf" "$F/modules-load.d/k8s.conf" "$F/crictl.yaml" <<'PY' || fail "sysctl/modules/crictl files"
import sys
want = {
    "net.ipv4.ip_forward": "1", "net.bridge.bridge-nf-call-iptables": "1",
    "net.bridge.bridge-nf-call-ip6tables": "1", "net.ipv6.conf.all.forwarding": "1",
    "vm.overcommit_memory": "1", "kernel.panic": "10", "kernel.panic_on_oops": "1",
    "fs.inotify.max_user_instances": "8192", "fs.inotify.max_user_watches": "524288",
}
got = {}
for n, line in enumerate(open(sys.argv[1]), 1):
    line = line.strip()
    if not line or line[0] in "#;":
        continue
    assert "=" in line, f"sysctl line {n}: {line!r}"
    k, v = (s.strip() for s in line.split("=", 1))
    k = k.lstrip("-")
    assert k not in got, f"sysctl {k} twice"
    got[k] = v
assert got == want, f"sysctl: {got} != {want}"
mods = [l.strip() for l in open(sys.argv[2]) if l.strip() and l.strip()[0] not in "#;"]
assert mods == ["overlay", "br_netfilter"], mods
try:
    import yaml
except ImportError:
    sys.exit(0)
c = yaml.safe_load(open(sys.argv[3]))
sock = "unix:///var/run/containerd/containerd.sock"
assert c["runtime-endpoint"] == sock and c["image-endpoint"] == sock and c["timeout"] == 10, c
PY
systemd-tmpfiles --create --root="$T/tmpfiles" "$F/tmpfiles.d/imgbuild-k8s.conf" >"$T/tmpfiles.out" 2>&1 ||
	{ cat "$T/tmpfiles.out"; fail "systemd-tmpfiles --create imgbuild-k8s.conf"; }
[ ! -s "$T/tmpfiles.out" ] || { cat "$T/tmpfiles.out"; fail "systemd-tmpfiles complains"; }
for d in "755 etc/kubernetes/manifests" "755 etc/containerd/conf.d" "755 etc/containerd/certs.d" "700 var/backups/etcd" "755 var/lib/node-exporter/textfile"; do
	[ "$(stat -c %a "$T/tmpfiles/${d#* }" 2>/dev/null)" = "${d%% *}" ] || fail "tmpfiles.d does not make /${d#* } ${d%% *}"
done
ok "sysctl.d (9 keys), modules-load.d (overlay, br_netfilter), crictl.yaml, tmpfiles.d"

# ---- the host scripts against a scratch root ----
# Test doubles: kubeadm, kubectl, ctr, crictl, istioctl (unreachable upstream binaries) and
# the host commands that would touch this machine are one recording stub.
echo "NOTE: the host scripts run here against stubs (tests/k8s/stubs/stub.sh) for logger, systemctl, ip, hostname, kubeadm, kubectl, ctr, crictl, istioctl and swapoff; a real containerd runs the import script in 21-k8s-boot, kubeadm is a stand-in everywhere"
mkdir -p "$T/bin" "$T/bin-noistio"
for c in logger systemctl ip hostname kubeadm kubectl ctr crictl istioctl swapoff; do
	ln -s "$STUB" "$T/bin/$c"
	[ "$c" = istioctl ] || ln -s "$STUB" "$T/bin-noistio/$c"
done
SYSPATH=/usr/sbin:/usr/bin:/sbin:/bin
TOKEN=abcdef.0123456789abcdef
CAHASH=sha256:$(printf '%064d' 7 | tr 0 a)
CERTKEY=$(printf '%064d' 0 | tr 0 b)

# newroot NAME: a node root with kubernetes.env, add-ons and a master's cluster.env (0600).
newroot() {
	N=$T/$1
	rm -rf "$N"
	mkdir -p "$N/root/etc/imgbuild" "$N/root/etc/kubernetes/addons" "$N/root/etc/kubernetes/addons.d/istio" \
		"$N/root/etc/kubernetes/addons.d/extra" "$N/root/etc/kubernetes/addons.d/logs" "$N/stub"
	cp "$T/kubernetes.env" "$N/root/etc/imgbuild/kubernetes.env"
	for m in 20-second 10-first 30-third; do echo "kind: ConfigMap # $m" >"$N/root/etc/kubernetes/addons/$m.yaml"; done
	echo "not a manifest" >"$N/root/etc/kubernetes/addons/README"
	echo "kind: Deployment # kiali" >"$N/root/etc/kubernetes/addons.d/istio/kiali.yaml"
	echo "kind: Deployment # extra" >"$N/root/etc/kubernetes/addons.d/extra/x.yaml"
	echo "kind: DaemonSet # promtail" >"$N/root/etc/kubernetes/addons.d/logs/promtail.yaml"
	cat >"$N/root/etc/imgbuild/cluster.env" <<EOF
K8S_CLUSTER_NAME=quode-sre
K8S_MASTER_ADDRESS=10.77.0.10        # the worker joins K8S_MASTER_ADDRESS:6443
K8S_ADVERTISE_ADDRESS=10.77.0.10
K8S_NODE_NAME=master
K8S_TOKEN=$TOKEN
K8S_CA_HASH=$CAHASH
K8S_CERT_KEY=$CERTKEY
K8S_POD_CIDR=10.245.0.0/16
K8S_ADDONS=extra
EOF
	chmod 0600 "$N/root/etc/imgbuild/cluster.env"
}
# setenv NAME=VALUE: change (or add) a line of the current root's cluster.env.
setenv() {
	f=$N/root/etc/imgbuild/cluster.env
	grep -v "^${1%%=*}=" "$f" >"$f.new" || :
	echo "$1" >>"$f.new"
	cat "$f.new" >"$f"
	rm "$f.new"
}
# runs SCRIPT [VAR=VALUE...]: run ansible-free-scripts/SCRIPT.sh in $N with the stubs;
# stdout/stderr in $N/out, $N/err, exit status in $rc.
runs() {
	script=$1
	shift
	rc=0
	env IMGBUILD_ROOT="$N/root" STUB_DIR="$N/stub" IMGBUILD_K8S_ENV_UID="$(id -u)" \
		IMGBUILD_K8S_RETRY_SLEEP=0 IMGBUILD_K8S_APPLY_TIMEOUT=5 IMGBUILD_K8S_CONTAINERD_WAIT=2 \
		PATH="$T/bin:$SYSPATH" "$@" sh "$S/$script.sh" >"$N/out" 2>"$N/err" || rc=$?
}
calls() { grep "^$1 " "$N/stub/calls" 2>/dev/null || :; }
expect_rc() {
	if [ "$rc" != "$1" ]; then
		echo "--- stderr"
		cat "$N/err"
		fail "$2: exited $rc, expected $1"
	fi
}
yq() { python3 -c 'import sys, yaml, json; print(json.dumps(list(yaml.safe_load_all(open(sys.argv[1])))))' "$1"; }

# -- master: everything from cluster.env --
newroot master
echo 2 >"$N/stub/kubectl-fails" # the API server is not up yet for two tries
runs k8s-master
expect_rc 0 "imgbuild-k8s-master"
cfg=$N/root/etc/kubernetes/imgbuild/kubeadm.yaml
[ -f "$cfg" ] || fail "no kubeadm.yaml"
[ "$(stat -c %a "$cfg")" = 600 ] || fail "kubeadm.yaml has mode $(stat -c %a "$cfg")"
[ "$(stat -c %a "${cfg%/*}")" = 700 ] || fail "kubeadm.yaml's directory has mode $(stat -c %a "${cfg%/*}")"
python3 - "$cfg" "$TOKEN" "$CERTKEY" <<'PY' || { cat "$cfg"; fail "kubeadm.yaml"; }
import sys, yaml
docs = {d["kind"]: d for d in yaml.safe_load_all(open(sys.argv[1]))}
init, cluster, kubelet = docs["InitConfiguration"], docs["ClusterConfiguration"], docs["KubeletConfiguration"]
assert init["apiVersion"] == cluster["apiVersion"] == "kubeadm.k8s.io/v1beta3"
assert kubelet["apiVersion"] == "kubelet.config.k8s.io/v1beta1"
assert [t["token"] for t in init["bootstrapTokens"]] == [sys.argv[2]], init["bootstrapTokens"]
assert init["bootstrapTokens"][0]["ttl"] in ("24h", "24h0m0s"), init["bootstrapTokens"]
assert init["certificateKey"] == sys.argv[3]
assert init["localAPIEndpoint"]["advertiseAddress"] == "10.77.0.10", init["localAPIEndpoint"]
assert init["nodeRegistration"] == {"name": "master", "criSocket": "unix:///var/run/containerd/containerd.sock"}, init["nodeRegistration"]
assert cluster["kubernetesVersion"] == "v1.30.2"
assert cluster["clusterName"] == "quode-sre"
assert cluster["controlPlaneEndpoint"] == "10.77.0.10:6443"
assert cluster["networking"] == {"podSubnet": "10.245.0.0/16", "serviceSubnet": "10.96.0.0/12"}, cluster["networking"]
assert cluster["apiServer"]["extraArgs"] == {"service-node-port-range": "8000-32767"}, cluster["apiServer"]
assert kubelet["cgroupDriver"] == "systemd"
PY
c=$(calls kubeadm)
[ "$c" = "kubeadm init --config $cfg --upload-certs --skip-token-print --skip-certificate-key-print" ] ||
	fail "kubeadm called as: $c"
# systemctl start before kubeadm, then the add-ons in name order, then the enabled add-on only.
seq=$(grep -E '^(systemctl|kubeadm|kubectl|istioctl) ' "$N/stub/calls" | awk '{print $1, $2, $NF}' | uniq | tr '\n' ';')
A=$N/root/etc/kubernetes
want="systemctl start imgbuild-k8s-images.service;kubeadm init --skip-certificate-key-print;kubectl --kubeconfig $A/addons/10-first.yaml;kubectl --kubeconfig $A/addons/20-second.yaml;kubectl --kubeconfig $A/addons/30-third.yaml;kubectl --kubeconfig $A/addons.d/extra/x.yaml;"
[ "$seq" = "$want" ] || fail "call order: $seq, expected $want"
calls kubectl | grep -v "^kubectl --kubeconfig $A/admin.conf apply -f " && fail "kubectl not called as kubectl --kubeconfig admin.conf apply -f"
[ "$(calls kubectl | wc -l)" = 6 ] || fail "kubectl retried $(calls kubectl | wc -l) times, expected 4 applies + 2 retries"
grep -q "attempt 2 failed" "$N/err" || fail "retries not logged: $(cat "$N/err")"
grep -q "^-t imgbuild-k8s -p user.info -- imgbuild-k8s-master: running: kubeadm init" "$N/stub/journal" ||
	fail "steps not logged to the journal: $(head -5 "$N/stub/journal")"
grep -q "$TOKEN\|$CERTKEY" "$N/err" "$N/stub/journal" "$N/stub/calls" && fail "a secret reached the logs or a command line"
[ -f "$N/root/var/lib/imgbuild/k8s-master.done" ] || fail "no done mark"
grep -q "K8S_TOOLING_ADDRESS is empty: no tooling host, the nodes' logs are not shipped" "$N/err" ||
	fail "no word on the logs add-on left out: $(cat "$N/err")"
ok "master: kubeadm.yaml (0600) holds every cluster.env value; kubeadm init --config --upload-certs; add-ons applied in order with retries, only the enabled one (no K8S_TOOLING_ADDRESS: no log shipper)"

# Again: nothing at all.
: >"$N/stub/calls"
runs k8s-master
expect_rc 0 "imgbuild-k8s-master, second run"
[ ! -s "$N/stub/calls" ] || [ -z "$(grep -v '^logger ' "$N/stub/calls")" ] || fail "second run ran: $(grep -v '^logger ' "$N/stub/calls")"
grep -q "nothing to do" "$N/err" || fail "second run does not say it has nothing to do"
# kubelet.conf without the done mark (a run stopped after kubeadm init): add-ons only.
rm "$N/root/var/lib/imgbuild/k8s-master.done"
runs k8s-master
expect_rc 0 "imgbuild-k8s-master, resumed"
[ -z "$(calls kubeadm)" ] || fail "kubeadm ran again though kubelet.conf exists"
[ "$(calls kubectl | wc -l)" = 4 ] || fail "resumed run applied $(calls kubectl | wc -l) manifests, expected 4"
ok "master: a no-op once done; after an interrupted run, add-ons only (no second kubeadm init)"

# -- master: defaults from the route and the host name; istio --
newroot master-defaults
setenv K8S_ADVERTISE_ADDRESS=
setenv K8S_NODE_NAME=
setenv K8S_POD_CIDR=
setenv K8S_ADDONS=istio
runs k8s-master STUB_IP_SRC=192.168.7.9 STUB_HOSTNAME=Master-A
expect_rc 0 "imgbuild-k8s-master (defaults, istio)"
python3 - "$N/root/etc/kubernetes/imgbuild/kubeadm.yaml" <<'PY' || fail "defaults in kubeadm.yaml"
import sys, yaml
docs = {d["kind"]: d for d in yaml.safe_load_all(open(sys.argv[1]))}
assert docs["InitConfiguration"]["localAPIEndpoint"]["advertiseAddress"] == "192.168.7.9"
assert docs["InitConfiguration"]["nodeRegistration"]["name"] == "master-a"
assert docs["ClusterConfiguration"]["networking"]["podSubnet"] == "10.244.0.0/16"
PY
seq=$(grep -E '^(kubectl|istioctl) ' "$N/stub/calls" | awk '{print $1, $NF}' | tr '\n' ';')
want="kubectl $A/addons/10-first.yaml;kubectl $A/addons/20-second.yaml;kubectl $A/addons/30-third.yaml;istioctl $A/admin.conf;kubectl $A/addons.d/istio/kiali.yaml;"
want=$(echo "$want" | sed "s|$T/master/|$N/|g")
[ "$seq" = "$want" ] || fail "istio call order: $seq, expected $want"
calls istioctl | grep -q "^istioctl install -y --set profile=minimal --kubeconfig " || fail "istioctl: $(calls istioctl)"
ok "master: advertise address from the default route, node name from the host name, kubernetes.env's pod CIDR; istioctl install then Kiali"

# -- master: a tooling host: the logs add-on, after the ConfigMap with its address --
newroot master-logs
setenv K8S_TOOLING_ADDRESS=10.77.0.20
runs k8s-master
expect_rc 0 "imgbuild-k8s-master (K8S_TOOLING_ADDRESS)"
seq=$(grep -E '^kubectl ' "$N/stub/calls" | awk '{print $NF}' | sed "s|^$N/root/etc/kubernetes/||" | tr '\n' ';')
want="addons/10-first.yaml;addons/20-second.yaml;addons/30-third.yaml;addons.d/extra/x.yaml;imgbuild/tooling.yaml;addons.d/logs/promtail.yaml;"
[ "$seq" = "$want" ] || fail "logs call order: $seq, expected $want"
python3 - "$N/root/etc/kubernetes/imgbuild/tooling.yaml" <<'PY' || fail "the ConfigMap monitoring/tooling"
import sys, yaml
d = yaml.safe_load(open(sys.argv[1]))
assert (d["apiVersion"], d["kind"]) == ("v1", "ConfigMap"), d
assert (d["metadata"]["namespace"], d["metadata"]["name"]) == ("monitoring", "tooling"), d
assert d["data"] == {"address": "10.77.0.20"}, d
PY
grep -qx 'add-ons: extra logs' "$N/root/var/lib/imgbuild/k8s-master.done" || fail "done mark: $(cat "$N/root/var/lib/imgbuild/k8s-master.done")"
# Named in K8S_ADDONS as well: applied once.
newroot master-logs-named
setenv K8S_TOOLING_ADDRESS=tooling.example
setenv K8S_ADDONS='"logs extra"'
runs k8s-master
expect_rc 0 "imgbuild-k8s-master (K8S_ADDONS logs, K8S_TOOLING_ADDRESS)"
[ "$(calls kubectl | grep -c 'addons.d/logs/promtail.yaml$')" = 1 ] || fail "logs applied $(calls kubectl | grep -c logs) times"
ok "master: K8S_TOOLING_ADDRESS set: the ConfigMap monitoring/tooling with it, then addons.d/logs (promtail), after the other add-ons, once"

# -- master: the CA the user-data wrote, and K8S_CA_HASH --
if command -v openssl >/dev/null; then
	newroot master-ca
	mkdir -p "$N/root/etc/kubernetes/pki"
	openssl req -x509 -newkey rsa:2048 -nodes -subj /CN=kubernetes -days 1 \
		-keyout "$N/root/etc/kubernetes/pki/ca.key" -out "$N/root/etc/kubernetes/pki/ca.crt" >/dev/null 2>&1 ||
		fail "openssl cannot make a test CA"
	runs k8s-master
	expect_rc 0 "imgbuild-k8s-master with a CA and a wrong K8S_CA_HASH"
	grep -q "warning: K8S_CA_HASH ($CAHASH) is not the hash of" "$N/err" || fail "a wrong K8S_CA_HASH is not reported"
	right=sha256:$(openssl x509 -in "$N/root/etc/kubernetes/pki/ca.crt" -noout -pubkey | openssl pkey -pubin -outform der | sha256sum | cut -d' ' -f1)
	newroot master-ca2
	mkdir -p "$N/root/etc/kubernetes/pki"
	cp "$T/master-ca/root/etc/kubernetes/pki/ca.crt" "$N/root/etc/kubernetes/pki/"
	setenv "K8S_CA_HASH=$right"
	runs k8s-master
	expect_rc 0 "imgbuild-k8s-master with a CA and its hash"
	grep -q "K8S_CA_HASH" "$N/err" && fail "the right K8S_CA_HASH is reported: $(grep K8S_CA_HASH "$N/err")"
	ok "master: a K8S_CA_HASH that is not the given CA's is reported (workers would not join)"
fi

# -- master: refusals --
refuse() { # refuse WHAT PATTERN: non-zero, PATTERN in stderr, kubeadm never ran
	[ "$rc" != 0 ] || fail "$1: exited 0"
	grep -q -- "$2" "$N/err" || { cat "$N/err"; fail "$1: no '$2' in the message"; }
	[ -z "$(calls kubeadm)" ] || fail "$1: kubeadm ran"
}
newroot refuse-mode
chmod 0644 "$N/root/etc/imgbuild/cluster.env"
runs k8s-master
refuse "cluster.env 0644" "cluster.env has mode 0644: refusing"
newroot refuse-token
setenv K8S_TOKEN=
runs k8s-master
refuse "no token" "K8S_TOKEN is missing"
newroot refuse-bad
setenv K8S_TOKEN=ABCDEF.0123456789abcdef
setenv K8S_CERT_KEY=1234
setenv K8S_POD_CIDR=10.244.0.0/33
runs k8s-master
refuse "bad values" "K8S_TOKEN (value not shown: a secret) is not a bootstrap token"
grep -q "K8S_CERT_KEY (value not shown: a secret) is not" "$N/err" && grep -q "K8S_POD_CIDR='10.244.0.0/33'" "$N/err" ||
	fail "not every bad value is named: $(cat "$N/err")"
grep -q "ABCDEF.0123456789abcdef" "$N/err" "$N/stub/journal" && fail "a bad token is shown in the logs"
newroot refuse-missing
rm "$N/root/etc/imgbuild/cluster.env"
runs k8s-master
refuse "no cluster.env" "cluster.env is missing"
newroot refuse-addon
setenv K8S_ADDONS='"extra nosuch"'
runs k8s-master
refuse "unknown add-on" "K8S_ADDONS names 'nosuch'"
newroot refuse-unquoted
setenv 'K8S_ADDONS=extra istio'
runs k8s-master
refuse "unquoted value with a space" "cluster.env is not a list of shell assignments"
newroot refuse-logs
setenv K8S_ADDONS=logs
runs k8s-master
refuse "logs without a tooling host" "K8S_ADDONS names logs, but K8S_TOOLING_ADDRESS is empty"
newroot refuse-tooling-address
setenv K8S_TOOLING_ADDRESS=http://10.77.0.20:3100
runs k8s-master
refuse "a bad tooling address" "K8S_TOOLING_ADDRESS='http://10.77.0.20:3100' is not an IPv4 address or a DNS name"
newroot refuse-istio
setenv K8S_ADDONS=istio
runs k8s-master PATH="$T/bin-noistio:$SYSPATH"
refuse "istio without istioctl" "istioctl is not installed"
newroot refuse-images
runs k8s-master STUB_SYSTEMCTL_RC=1
refuse "images service failed" "imgbuild-k8s-images.service failed"
if [ "$(id -u)" = 0 ]; then
	newroot refuse-owner
	chown 4321 "$N/root/etc/imgbuild/cluster.env"
	runs k8s-master IMGBUILD_K8S_ENV_UID=0
	refuse "cluster.env not root's" "owned by uid 4321"
fi
newroot kubeadm-fails
runs k8s-master STUB_KUBEADM_FAIL=1
[ "$rc" != 0 ] && grep -q "kubeadm init failed" "$N/err" || fail "a failing kubeadm init is not reported"
[ -z "$(calls kubectl)" ] || fail "add-ons applied after kubeadm init failed"
newroot kubectl-fails
runs k8s-master STUB_KUBECTL_FAIL=1 IMGBUILD_K8S_APPLY_TIMEOUT=2 IMGBUILD_K8S_RETRY_SLEEP=1
[ "$rc" != 0 ] && grep -q "kubectl apply -f .*10-first.yaml: still failing (exit 1) after 2s" "$N/err" ||
	{ cat "$N/err"; fail "kubectl apply failing for good is not bounded and reported"; }
[ ! -f "$N/root/var/lib/imgbuild/k8s-master.done" ] || fail "done mark written after a failure"
ok "master refuses: cluster.env 0644, not root's, missing; a missing or bad token (every bad value named); unknown add-on; logs without K8S_TOOLING_ADDRESS, a bad one; istio without istioctl; failed image import; kubeadm/kubectl failures reported"

# -- worker --
newroot worker
setenv K8S_NODE_NAME=worker-1
printf 'Filename\tType\tSize\tUsed\tPriority\n/swapfile file 1024 0 -2\n' >"$N/swaps"
mkdir -p "$N/root/proc" && cp "$N/swaps" "$N/root/proc/swaps"
runs k8s-join
expect_rc 0 "imgbuild-k8s-join"
j=$N/root/etc/kubernetes/imgbuild/join.yaml
[ "$(stat -c %a "$j")" = 600 ] || fail "join.yaml has mode $(stat -c %a "$j")"
python3 - "$j" "$TOKEN" "$CAHASH" <<'PY' || { cat "$j"; fail "join.yaml"; }
import sys, yaml
(d,) = list(yaml.safe_load_all(open(sys.argv[1])))
assert d["apiVersion"] == "kubeadm.k8s.io/v1beta3" and d["kind"] == "JoinConfiguration", d
bt = d["discovery"]["bootstrapToken"]
assert bt == {"apiServerEndpoint": "10.77.0.10:6443", "token": sys.argv[2], "caCertHashes": [sys.argv[3]]}, bt
assert d["nodeRegistration"] == {"name": "worker-1", "criSocket": "unix:///var/run/containerd/containerd.sock"}, d
PY
[ "$(calls kubeadm)" = "kubeadm join --config $j" ] || fail "kubeadm called as: $(calls kubeadm)"
[ "$(calls systemctl)" = "systemctl start imgbuild-k8s-images.service" ] || fail "systemctl: $(calls systemctl)"
[ "$(calls swapoff)" = "swapoff -a" ] || fail "swap left on: $(calls swapoff)"
: >"$N/stub/calls"
runs k8s-join
expect_rc 0 "imgbuild-k8s-join, second run"
[ -z "$(grep -v '^logger ' "$N/stub/calls")" ] || fail "second join ran: $(cat "$N/stub/calls")"
newroot worker-nohash
setenv K8S_CA_HASH=
runs k8s-join
refuse "worker without a CA hash" "K8S_CA_HASH is missing"
newroot worker-mode
chmod 0640 "$N/root/etc/imgbuild/cluster.env"
runs k8s-join
refuse "worker cluster.env 0640" "mode 0640"
ok "worker: join.yaml (0600) with endpoint, token and caCertHashes; kubeadm join --config; swap turned off; a no-op once joined; refuses a missing hash and a readable cluster.env"

# -- images --
newroot images
I=$N/root/var/lib/imgbuild/images
mkdir -p "$I"
d1=sha256:$(printf '%064d' 1) d2=sha256:$(printf '%064d' 2) d3=sha256:$(printf '%064d' 3) dx=sha256:$(printf '%064d' 9)
printf '# reference\tmanifest digest\tarchive\n' >"$I/index.tsv"
printf 'registry.k8s.io/pause:3.9\t%s\tpause.tar\n' "$d1" >>"$I/index.tsv"
printf 'flannel/flannel:v0.25.4\t%s\tflannel.tar\n' "$d2" >>"$I/index.tsv"
printf 'quay.io/kiali/kiali:v1.86.0@%s\t%s\tkiali.tar\n' "$dx" "$d3" >>"$I/index.tsv"
printf 'registry.k8s.io/pause:3.9 %s\n' "$d1" >"$I/pause.tar"
printf 'docker.io/flannel/flannel:v0.25.4 %s\n' "$d2" >"$I/flannel.tar"
printf 'quay.io/kiali/kiali:v1.86.0 %s\nquay.io/kiali/kiali@%s %s\n' "$d3" "$dx" "$d3" >"$I/kiali.tar"
# flannel is there already under another digest: imported again.
printf 'docker.io/flannel/flannel:v0.25.4 %s -\n' "$d1" >"$N/stub/ctr-store"
runs k8s-images
expect_rc 0 "imgbuild-k8s-images"
[ "$(calls ctr | grep -c ' images import ')" = 3 ] || fail "imports: $(calls ctr | grep ' images import ')"
for a in pause flannel kiali; do
	calls ctr | grep -qx "ctr -n k8s.io images import $I/$a.tar" || fail "$a.tar not imported"
done
sort "$N/stub/ctr-store" >"$N/store"
cat >"$N/store.want" <<EOF
docker.io/flannel/flannel:v0.25.4 $d2 io.cri-containerd.pinned=pinned
quay.io/kiali/kiali:v1.86.0 $d3 io.cri-containerd.pinned=pinned
quay.io/kiali/kiali@$dx $d3 io.cri-containerd.pinned=pinned
registry.k8s.io/pause:3.9 $d1 io.cri-containerd.pinned=pinned
EOF
cmp -s "$N/store" "$N/store.want" || { diff "$N/store.want" "$N/store"; fail "containerd's images after the import"; }
[ "$(grep -c ': imported, pinned' "$N/err")" = 3 ] || fail "no summary line per image: $(cat "$N/err")"
: >"$N/stub/calls"
runs k8s-images
expect_rc 0 "imgbuild-k8s-images, second run"
calls ctr | grep -E ' images (import|label) ' && fail "second run imported or labelled again"
[ "$(grep -c ': already in containerd, pinned' "$N/err")" = 3 ] || fail "second run summary: $(cat "$N/err")"
# A failing archive and a missing one: the others still go in, the run fails naming both.
printf 'docker.io/library/broken:1\t%s\tbroken.tar\n' "$d2" >>"$I/index.tsv"
printf 'FAIL\n' >"$I/broken.tar"
printf 'ghcr.io/x/gone:1\t%s\tgone.tar\n' "$d3" >>"$I/index.tsv"
printf 'nginx\t%s\tnginx.tar\n' "$d1" >>"$I/index.tsv"
printf 'docker.io/library/nginx:latest %s\n' "$d1" >"$I/nginx.tar"
# And two lines that are not index lines: a short digest, a file outside the directory.
printf 'docker.io/library/bad:1\tsha256:123\tbad.tar\n' >>"$I/index.tsv"
printf 'docker.io/library/evil:1\t%s\t../evil.tar\n' "$d1" >>"$I/index.tsv"
runs k8s-images
expect_rc 1 "imgbuild-k8s-images with a broken archive"
grep -q "FAILED: broken.tar gone.tar bad.tar ../evil.tar$" "$N/err" || { cat "$N/err"; fail "the failures are not named"; }
for n in 8 9; do
	grep -q "images/index.tsv:$n: not 'reference<TAB>sha256:digest<TAB>archive': " "$N/err" ||
		{ cat "$N/err"; fail "index line $n is not named"; }
done
calls ctr | grep -E 'evil|bad\.tar' && fail "a bad index line reached ctr"
grep -q "docker.io/library/nginx:latest $d1 io.cri-containerd.pinned=pinned" "$N/stub/ctr-store" ||
	fail "the image after the failures was not imported (short name nginx -> docker.io/library/nginx:latest)"
# containerd does not answer: bounded wait, clear message.
touch "$N/stub/ctr-down"
runs k8s-images IMGBUILD_K8S_CONTAINERD_WAIT=1
[ "$rc" != 0 ] && grep -q "containerd did not answer within 1s" "$N/err" || fail "containerd down: $(cat "$N/err")"
newroot images-none
runs k8s-images
expect_rc 0 "imgbuild-k8s-images without an index"
[ -z "$(calls ctr)" ] || fail "ctr called without an index"
ok "images: each archive imported, every name pinned, one summary line each; nothing redone on a second run; a re-import on another digest; failures and bad index lines named; bounded wait for containerd"

# -- etcd snapshot --
newroot etcd
mkdir -p "$N/root/etc/kubernetes/manifests" "$N/root/var/backups/etcd" "$N/bin-aws"
echo "kind: Pod" >"$N/root/etc/kubernetes/manifests/etcd.yaml"
for i in 1 2 3 4 5 6 7 8 9; do echo old >"$N/root/var/backups/etcd/etcd-2020010${i}T000000Z.db"; done
echo keep >"$N/root/var/backups/etcd/notes.txt"
runs k8s-etcd-snapshot
expect_rc 0 "imgbuild-etcd-snapshot"
B=$N/root/var/backups/etcd
new=$(cd "$B" && ls etcd-*.db | grep -v '^etcd-2020' || :)
[ -n "$new" ] && [ "$(echo "$new" | wc -l)" = 1 ] || fail "new snapshot: '$new'"
echo "$new" | grep -Eqx 'etcd-[0-9]{8}T[0-9]{6}Z\.db' || fail "snapshot name $new"
[ "$(stat -c %a "$B/$new")" = 600 ] || fail "snapshot mode $(stat -c %a "$B/$new")"
[ "$(stat -c %a "$B")" = 700 ] || fail "backup dir mode $(stat -c %a "$B")"
[ "$(cat "$B/$new")" = "etcd snapshot (stub)" ] || fail "snapshot content"
have=$(cd "$B" && ls etcd-*.db | tr '\n' ' ')
[ "$have" = "etcd-20200104T000000Z.db etcd-20200105T000000Z.db etcd-20200106T000000Z.db etcd-20200107T000000Z.db etcd-20200108T000000Z.db etcd-20200109T000000Z.db $new " ] ||
	fail "rotation kept: $have"
[ -f "$B/notes.txt" ] || fail "rotation removed a file that is not a snapshot"
[ ! -e "$N/root/var/lib/etcd/imgbuild-snapshot.db" ] || fail "the snapshot was left in /var/lib/etcd"
# The backup metric (stacks/tooling/README.md, "Backup metric") for node-exporter's textfile
# collector: a success is now, in a 0644 file written without a leftover temporary.
P=$N/root/var/lib/node-exporter/textfile/imgbuild_backup_etcd.prom
etcd_metric() { sed -n 's/^imgbuild_backup_last_success_timestamp_seconds{kind="etcd",db="etcd"} \([0-9]*\)$/\1/p' "$P" 2>/dev/null; }
m1=$(etcd_metric)
[ -n "$m1" ] && [ $(($(date +%s) - m1)) -lt 60 ] && [ "$m1" -le "$(date +%s)" ] || fail "etcd backup metric: $(cat "$P" 2>&1)"
grep -qx '# TYPE imgbuild_backup_last_success_timestamp_seconds gauge' "$P" || fail "no TYPE line in $P"
[ "$(stat -c %a "$P")" = 644 ] && [ ! -e "$P.tmp" ] || fail "metric file mode $(stat -c %a "$P"), or its temporary left"
calls crictl | grep -q "^crictl exec -s --timeout 300 etcd0123 etcdctl --endpoints https://127.0.0.1:2379 --cacert /etc/kubernetes/pki/etcd/ca.crt --cert /etc/kubernetes/pki/etcd/healthcheck-client.crt --key /etc/kubernetes/pki/etcd/healthcheck-client.key snapshot save /var/lib/etcd/imgbuild-snapshot.db$" ||
	fail "crictl exec: $(calls crictl)"
grep -q "no BACKUP_S3_BUCKET" "$N/err" || fail "no word on S3"
# IMGBUILD_BACKUP_KEEP; S3 configured, without then with the aws CLI.
printf 'BACKUP_S3_BUCKET=my-backups\nBACKUP_S3_PREFIX=etcd/prod/\n' >"$N/root/etc/imgbuild/backup.env"
sleep 1
runs k8s-etcd-snapshot IMGBUILD_BACKUP_KEEP=2
expect_rc 0 "imgbuild-etcd-snapshot, keep 2, no aws"
[ "$(cd "$B" && ls etcd-*.db | wc -l)" = 2 ] || fail "keep 2: $(ls "$B")"
grep -q "BACKUP_S3_BUCKET is set but the aws CLI is not installed" "$N/err" || fail "no warning without aws: $(cat "$N/err")"
ln -s "$STUB" "$N/bin-aws/aws"
sleep 1
runs k8s-etcd-snapshot PATH="$N/bin-aws:$T/bin:$SYSPATH"
expect_rc 0 "imgbuild-etcd-snapshot with S3"
last=$(cd "$B" && ls etcd-*.db | tail -n 1)
[ "$(calls aws)" = "aws s3 cp --only-show-errors $B/$last s3://my-backups/etcd/prod/$last" ] || fail "aws: $(calls aws)"
chmod 0666 "$N/root/etc/imgbuild/backup.env"
runs k8s-etcd-snapshot
[ "$rc" != 0 ] && grep -q "refusing to source a file others can write" "$N/err" || fail "a world-writable backup.env is sourced"
rm "$N/root/etc/imgbuild/backup.env"
runs k8s-etcd-snapshot STUB_ETCD_ID=
[ "$rc" != 0 ] && grep -q "no running etcd container" "$N/err" || fail "no etcd container: $(cat "$N/err")"
m2=$(etcd_metric)
[ -n "$m2" ] && [ "$m2" -ge "$m1" ] || fail "etcd metric after successes: '$m2'"
sleep 1
runs k8s-etcd-snapshot STUB_ETCD_ID=
[ "$rc" != 0 ] && [ "$(etcd_metric)" = "$m2" ] || fail "a failed snapshot changed the metric: $(cat "$P")"
# A control plane whose snapshots never succeeded reports 0 (BackupMissing then fires).
rm -f "$P"
runs k8s-etcd-snapshot STUB_ETCD_ID=
[ "$rc" != 0 ] && [ "$(etcd_metric)" = 0 ] || fail "never succeeded: metric $(cat "$P" 2>&1)"
newroot etcd-worker
runs k8s-etcd-snapshot
expect_rc 0 "imgbuild-etcd-snapshot on a worker"
[ -z "$(calls crictl)" ] && grep -q "nothing to do" "$N/err" || fail "etcd snapshot on a worker: $(cat "$N/err")"
[ ! -e "$N/root/var/lib/node-exporter/textfile/imgbuild_backup_etcd.prom" ] || fail "a worker reports an etcd backup metric"
ok "etcd snapshot: crictl exec etcdctl into /var/lib/etcd, moved to /var/backups/etcd (0600), newest N kept, S3 upload or a warning; the backup metric written (now on success, kept on failure, 0 before any); nothing on a worker"

# ---- imgbuild-k8s-images against a real containerd ----
if [ "$(id -u)" != 0 ] || ! command -v containerd >/dev/null || ! command -v ctr >/dev/null; then
	echo "note: not root or no containerd: imgbuild-k8s-images was not run against a real containerd"
	exit 0
fi
C=$T/ctrd
mkdir -p "$C"
CPID=""
cleanup() {
	[ -z "$CPID" ] || { kill "$CPID" 2>/dev/null; sleep 1; kill -9 "$CPID" 2>/dev/null; }
	grep -o " $T/[^ ]*" /proc/mounts 2>/dev/null | sort -r | while read -r m; do umount "$m"; done
}
trap cleanup EXIT
trap 'exit 1' INT TERM
cat >"$C/config.toml" <<EOF
version = 2
root = "$C/root"
state = "$C/state"
disabled_plugins = ["io.containerd.grpc.v1.cri"]
[grpc]
  address = "$C/c.sock"
[ttrpc]
  address = "$C/c.sock.ttrpc"
[debug]
  address = "$C/debug.sock"
  level = "warn"
EOF
containerd --config "$C/config.toml" >"$C/log" 2>&1 &
CPID=$!
newroot real
I=$N/root/var/lib/imgbuild/images
mkdir -p "$I"
# Two archives as builder/oci/archive.c writes them: OCI layout + docker manifest.json, one
# index entry per name (annotated io.containerd.image.name), one of them pinned by digest.
python3 - "$I" <<'PY' >"$N/digests" || fail "cannot make the test archives"
import gzip, hashlib, io, json, sys, tarfile
out = sys.argv[1]
def tar(members):
    b = io.BytesIO()
    with tarfile.open(fileobj=b, mode="w", format=tarfile.PAX_FORMAT) as t:
        for name, data in members:
            i = tarfile.TarInfo(name); i.size = len(data); i.mode = 0o644
            t.addfile(i, io.BytesIO(data))
    return b.getvalue()
def sha(b): return "sha256:" + hashlib.sha256(b).hexdigest()
lines = []
for repo, tag, by_digest, fname in (("registry.k8s.io/pause", "3.9", False, "pause.tar"),
                                     ("docker.io/flannel/flannel", "v0.25.4", True, "flannel.tar")):
    raw = tar([("etc/imgbuild-test", (repo + ":" + tag + "\n").encode())])
    layer = gzip.compress(raw, mtime=0)
    config = json.dumps({"architecture": "amd64", "os": "linux", "config": {},
                         "rootfs": {"type": "layers", "diff_ids": [sha(raw)]}}).encode()
    manifest = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": sha(config), "size": len(config)},
        "layers": [{"mediaType": "application/vnd.oci.image.layer.v1.tar+gzip", "digest": sha(layer), "size": len(layer)}]}).encode()
    md = sha(manifest)
    names = [repo + ":" + tag] + ([repo + "@" + md] if by_digest else [])
    entries = []
    for n in names:
        ann = {"io.containerd.image.name": n}
        if ":" + tag in n:
            ann["org.opencontainers.image.ref.name"] = tag
        entries.append({"mediaType": "application/vnd.oci.image.manifest.v1+json", "digest": md,
                        "size": len(manifest), "annotations": ann})
    index = json.dumps({"schemaVersion": 2, "mediaType": "application/vnd.oci.image.index.v1+json", "manifests": entries}).encode()
    members = [("oci-layout", b'{"imageLayoutVersion":"1.0.0"}'), ("index.json", index)]
    for b in (config, manifest, layer):
        members.append(("blobs/sha256/" + sha(b)[7:], b))
    members.append(("manifest.json", json.dumps([{"Config": "blobs/sha256/" + sha(config)[7:],
        "RepoTags": [repo + ":" + tag], "Layers": ["blobs/sha256/" + sha(layer)[7:]]}]).encode()))
    open(out + "/" + fname, "wb").write(tar(sorted(members)))
    ref = repo + ":" + tag + ("@" + md if by_digest else "")
    # index.tsv names the image as the spec did: a short Docker Hub name for flannel.
    lines.append((ref.replace("docker.io/", "", 1) if repo.startswith("docker.io/") else ref) + "\t" + md + "\t" + fname)
    print(md)
open(out + "/index.tsv", "w").write("# reference\tmanifest digest\tarchive\n" + "\n".join(lines) + "\n")
PY
i=0
until timeout 5 ctr --address "$C/c.sock" version >/dev/null 2>&1; do
	i=$((i + 1))
	[ $i -lt 50 ] || { tail -20 "$C/log"; fail "containerd did not start"; }
	sleep 0.2
done
mkdir -p "$T/bin-real"
for c in logger systemctl; do ln -s "$STUB" "$T/bin-real/$c"; done
runs k8s-images PATH="$T/bin-real:$SYSPATH" CONTAINERD_ADDRESS="$C/c.sock"
expect_rc 0 "imgbuild-k8s-images against containerd $(containerd --version | awk '{print $3}')"
ctr --address "$C/c.sock" -n k8s.io images ls >"$N/ls" 2>&1 || fail "ctr images ls"
pd=$(sed -n 1p "$N/digests") fd=$(sed -n 2p "$N/digests")
for n in "registry.k8s.io/pause:3.9 $pd" "docker.io/flannel/flannel:v0.25.4 $fd" "docker.io/flannel/flannel@$fd $fd"; do
	awk -v n="${n% *}" -v d="${n#* }" '$1 == n && $3 == d && $NF ~ /io.cri-containerd.pinned=pinned/ { f = 1 } END { exit !f }' "$N/ls" ||
		{ cat "$N/ls"; fail "containerd does not list ${n% *} with ${n#* }, pinned"; }
done
[ "$(grep -c ': imported, pinned' "$N/err")" = 2 ] || fail "real import summary: $(cat "$N/err")"
runs k8s-images PATH="$T/bin-real:$SYSPATH" CONTAINERD_ADDRESS="$C/c.sock"
expect_rc 0 "imgbuild-k8s-images against containerd, second run"
[ "$(grep -c ': already in containerd, pinned' "$N/err")" = 2 ] || fail "real second run: $(cat "$N/err")"
grep -q "running: ctr" "$N/err" && fail "second run against containerd ran ctr import/label"
ok "imgbuild-k8s-images against containerd $(containerd --version | awk '{print $3}'): imported by the names the index gives (tag and digest), pinned, not redone"
