#!/bin/sh
# The Kubernetes manifests baked into the master image (stacks/kubernetes/): rendered with the
# role's variables and checked by tests/k8s/check-manifests.py, then broken one thing at a
# time in a copy of the tree, each of which the checker must catch (exit 1, and say what).
. "$(dirname "$0")/../lib.sh"
t_init 41-k8s-manifests
command -v python3 >/dev/null || skip "python3 is not installed"
python3 -c 'import yaml' 2>/dev/null || skip "PyYAML is not installed (apt-get install python3-yaml)"

K=$TOP/stacks/kubernetes
for f in addons/10-flannel.yaml addons/20-node-exporter.yaml addons/30-app-prod.yaml \
	addons/31-app-dev.yaml addons.d/istio/kiali.yaml addons.d/logs/promtail.yaml images.txt README.md; do
	[ -f "$K/$f" ] || fail "no stacks/kubernetes/$f"
done

# check [CHECKER ARGS...]: the checker with the role's variables (a later --var overrides).
check() {
	python3 "$TOP/tests/k8s/check-manifests.py" \
		--var pod_cidr=10.244.0.0/16 --var app_image=registry.example/app:1.0 \
		--var app_port=5000 --var app_replicas=2 --var prometheus_url=http://tooling:9090 "$@"
}

expect_exit 0 check "$K"
grep -q '^check-manifests: ok: 6 files, ' "$T/out" || fail "summary: $(cat "$T/out")"
[ -s "$T/err" ] && fail "the checker complained on success: $(cat "$T/err")"
ok "$(cat "$T/out")"

# Every preloaded image is in the README's list for role specs.
grep -v '^[[:space:]]*#' "$K/images.txt" | sed 's/#.*//' | while read -r ref; do
	[ -z "$ref" ] && continue
	grep -qF "$ref" "$K/README.md" || fail "README.md does not list $ref"
done || exit 1
ok "README.md lists every image of images.txt"

# broken NAME FILE SED-SCRIPT PATTERN [CHECKER ARGS...]: in a copy of the tree, FILE edited
# by SED-SCRIPT (none when empty) must make the checker exit 1 with PATTERN (grep -E) among
# its messages.
cases=0
broken() {
	name=$1 file=$2 script=$3 pattern=$4
	shift 4
	d=$T/broken/$name
	mkdir -p "$d"
	cp -R "$K/." "$d/"
	if [ -n "$script" ]; then
		sed -e "$script" "$K/$file" >"$d/$file" || fail "$name: sed '$script' failed"
		cmp -s "$K/$file" "$d/$file" && fail "$name: sed '$script' changed nothing in $file"
	fi
	expect_exit 1 check "$@" "$d"
	if ! grep -qE -e "$pattern" "$T/err"; then
		cat "$T/err"
		fail "$name: the checker failed, but not with /$pattern/"
	fi
	cases=$((cases + 1))
}

# The copy itself passes: a failure below comes from the edit.
mkdir -p "$T/broken/none"
cp -R "$K/." "$T/broken/none/"
expect_exit 0 check "$T/broken/none"

A=addons
P='30-app-prod.yaml: Deployment prod/quode-app'
D='31-app-dev.yaml: Deployment dev/quode-app'
broken replicas-1 $A/30-app-prod.yaml 's/replicas: {{ app_replicas }}/replicas: 1/' \
	"$P: spec.replicas is 1"
broken replicas-var-1 "" "" "$D: spec.replicas is 1" --var app_replicas=1
broken no-readiness $A/31-app-dev.yaml '/readinessProbe:/,/failureThreshold/d' \
	"$D: container app: no readinessProbe"
broken liveness-port $A/30-app-prod.yaml '/livenessProbe:/,/port:/s/port: http/port: 9999/' \
	"$P: container app: livenessProbe is on port 9999"
broken container-port $A/30-app-prod.yaml 's/containerPort: {{ app_port }}/containerPort: 8080/' \
	"$P: container app: no containerPort 5000"
broken max-unavailable $A/30-app-prod.yaml 's/maxUnavailable: 0/maxUnavailable: 1/' \
	"$P: spec.strategy must be RollingUpdate with maxUnavailable 0"
broken anti-affinity $A/31-app-dev.yaml \
	's|topologyKey: kubernetes.io/hostname|topologyKey: topology.kubernetes.io/zone|' \
	"$D: no podAntiAffinity on topologyKey kubernetes.io/hostname"
broken run-as-root $A/31-app-dev.yaml 's/runAsNonRoot: true/runAsNonRoot: false/' \
	"$D: container app: runAsNonRoot is not set"
broken no-pdb $A/31-app-dev.yaml "/^apiVersion: policy\\/v1/,\$d" \
	"$D: no PodDisruptionBudget in namespace dev"
broken pdb-selector $A/30-app-prod.yaml "\$s/quode-app-prod/quode-app-other/" \
	"$P: no PodDisruptionBudget in namespace prod selecting its pods"
broken nodeport-prod $A/30-app-prod.yaml 's/nodePort: 8500/nodePort: 8502/' \
	"30-app-prod.yaml: Service prod/quode-app: no port with nodePort 8500"
broken nodeport-dev $A/31-app-dev.yaml 's/nodePort: 8501/nodePort: 8500/' \
	"31-app-dev.yaml: Service dev/quode-app: no port with nodePort 8501"
broken nodeport-range $A/31-app-dev.yaml 's/nodePort: 8501/nodePort: 7000/' \
	"nodePort 7000 is outside the node port range 8000-32767"
broken target-port $A/30-app-prod.yaml 's/targetPort: http/targetPort: 8080/' \
	"Service prod/quode-app: nodePort 8500: targetPort 8080 is not the container port 5000"
broken unpinned-latest $A/20-node-exporter.yaml 's|node-exporter:v1.8.1|node-exporter:latest|' \
	"DaemonSet monitoring/node-exporter: container node-exporter: image .*: tag latest is not a pin"
broken unpinned-untagged $A/10-flannel.yaml 's|flannel-cni-plugin:v1.4.1-flannel1|flannel-cni-plugin|' \
	"container install-cni-plugin: image docker.io/flannel/flannel-cni-plugin: no tag"
broken unpinned-app "" "" "$P: container app: image registry.example/app: no tag" \
	--var app_image=registry.example/app
broken not-listed images.txt '/node-exporter/d' \
	"image quay.io/prometheus/node-exporter:v1.8.1 is not listed in"
broken listed-unused images.txt "\$a docker.io/library/busybox:1.36" \
	"docker.io/library/busybox:1.36 is listed but no manifest uses it"
broken addon-unmarked images.txt 's/ *# addon=istio//' \
	"quay.io/kiali/kiali:v1.86.0 is used only by add-on istio"
broken pull-always $A/31-app-dev.yaml 's/imagePullPolicy: IfNotPresent/imagePullPolicy: Always/' \
	"$D: container app: imagePullPolicy is Always"
broken no-limits $A/20-node-exporter.yaml '/limits:/,/memory: 180Mi/d' \
	"container node-exporter: no resources.limits"
broken pod-cidr $A/10-flannel.yaml 's|{{ pod_cidr }}|10.245.0.0/16|' \
	"ConfigMap kube-flannel/kube-flannel-cfg: net-conf.json Network is '10.245.0.0/16', not the pod CIDR 10.244.0.0/16"
# Written out rather than a placeholder: right for the default, wrong once the role changes it.
broken pod-cidr-literal $A/10-flannel.yaml 's|{{ pod_cidr }}|10.244.0.0/16|' \
	"net-conf.json Network is '10.244.0.0/16', not the pod CIDR 10.200.0.0/16" \
	--var pod_cidr=10.200.0.0/16
broken flannel-toleration $A/10-flannel.yaml 's/- operator: Exists/- operator: Equal/' \
	"DaemonSet kube-flannel/kube-flannel-ds: does not tolerate the control plane taint"
broken ne-toleration $A/20-node-exporter.yaml 's|- operator: Exists|- {key: example.com/other, operator: Exists}|' \
	"DaemonSet monitoring/node-exporter: does not tolerate the control plane taint"
broken ne-host-port $A/20-node-exporter.yaml 's/hostPort: 9100/hostPort: 9101/' \
	"container node-exporter: no host port 9100"
broken ne-rootfs-rw $A/20-node-exporter.yaml '/mountPath: \/host\/root/{n;s/readOnly: true/readOnly: false/}' \
	"the mount of the host's / is not readOnly"
broken ne-procfs $A/20-node-exporter.yaml 's|--path.procfs=/host/proc|--path.procfs=/proc|' \
	"--path.procfs=/proc is not a mount of the host's /proc"
broken ne-textfile $A/20-node-exporter.yaml '/--collector.textfile.directory/d' \
	"container node-exporter: --collector.textfile.directory is unset, not /host/root/var/lib/node-exporter/textfile"
L=addons.d/logs/promtail.yaml
PT='promtail.yaml: DaemonSet monitoring/promtail'
broken promtail-address $L 's/name: tooling$/name: tooling-addr/' \
	"$PT: container promtail: TOOLING_ADDRESS does not come from ConfigMap tooling, key address"
broken promtail-loki-port $L 's/:3100\/loki/:3101\/loki/' \
	"ConfigMap monitoring/promtail: promtail.yaml: clients push to .*3101"
broken promtail-journal $L '/path: \/var\/log\/journal$/{/hostPath/!d}' \
	"promtail.yaml: no journal scrape config reading /var/log/journal"
broken promtail-journal-mount $L '/mountPath: \/var\/log\/journal/,+1d' \
	"$PT: container promtail: the host's /var/log/journal is not mounted"
broken promtail-machine-id $L '/mountPath: \/etc\/machine-id/{n;s/readOnly: true/readOnly: false/}' \
	"the mount of the host's /etc/machine-id is not readOnly"
broken promtail-positions $L '/^        - name: positions$/{n;s/hostPath:/emptyDir: {}/;n;N;d}' \
	"$PT: container promtail: positions \(/var/lib/promtail\) are not on a hostPath"
broken promtail-toleration $L 's/- operator: Exists/- operator: Equal/' \
	"$PT: does not tolerate the control plane taint"
broken promtail-expand-env $L '/-config.expand-env=true/d' \
	"$PT: container promtail: no -config.expand-env=true"
broken kiali-nodeport addons.d/istio/kiali.yaml 's/nodePort: 20001/nodePort: 20002/' \
	"Deployment istio-system/kiali: no NodePort Service with nodePort 20001"
broken kiali-prometheus addons.d/istio/kiali.yaml 's|{{ prometheus_url }}|http://localhost:9090|' \
	"external_services.prometheus.url is 'http://localhost:9090', not http://tooling:9090"
broken kiali-write addons.d/istio/kiali.yaml '0,/verbs: \[get, list, watch\]/s//verbs: [get, list, watch, delete]/' \
	"ClusterRole kiali-viewer: Kiali's role must be read-only: verbs delete"
broken unknown-var $A/30-app-prod.yaml 's/value: prod$/value: "{{ app_env }}"/' \
	"30-app-prod.yaml:[0-9]+:[0-9]+: unknown template variable 'app_env'"
broken unclosed $A/31-app-dev.yaml 's/{{ app_image }}/{{ app_image/' \
	"31-app-dev.yaml:[0-9]+:[0-9]+: unclosed '\{\{'"
broken unquoted-annotation $A/30-app-prod.yaml 's/prometheus.io\/port: "{{ app_port }}"/prometheus.io\/port: {{ app_port }}/' \
	"spec.template.metadata.annotations\[prometheus.io/port\] must be a string"
broken no-namespace $A/30-app-prod.yaml '/^  namespace: prod$/d' \
	"Service quode-app: namespaced Service without metadata.namespace"
broken namespace-order $A/20-node-exporter.yaml 's/^  name: monitoring$/  name: monitor/' \
	"namespace monitoring is not created before it"
broken bad-yaml $A/31-app-dev.yaml 's/^  replicas: \(.*\)$/  replicas: [\1/' \
	"31-app-dev.yaml:[0-9]+:[0-9]+: not valid YAML once rendered"
# Promtail moved among the add-ons always applied (it must wait for K8S_TOOLING_ADDRESS).
d=$T/broken/promtail-in-addons
mkdir -p "$d" && cp -R "$K/." "$d/" && mv "$d/$L" "$d/addons/40-promtail.yaml"
sed -i 's/  # addon=logs$//' "$d/images.txt"
expect_exit 1 check "$d"
grep -q "40-promtail.yaml: DaemonSet monitoring/promtail: promtail belongs in addons.d/logs/" "$T/err" ||
	fail "promtail-in-addons: $(cat "$T/err")"
cases=$((cases + 1))
ok "$cases broken copies of the manifests, each caught with the right message"

# A variable the role does not give is an error, as imgbuild's renderer makes it.
expect_exit 1 python3 "$TOP/tests/k8s/check-manifests.py" --var pod_cidr=10.244.0.0/16 \
	--var app_image=registry.example/app:1.0 --var app_port=5000 --var app_replicas=2 "$K"
grep -q "kiali.yaml:[0-9]*:[0-9]*: unknown template variable 'prometheus_url'" "$T/err" ||
	fail "a missing --var prometheus_url: $(cat "$T/err")"
expect_exit 2 python3 "$TOP/tests/k8s/check-manifests.py" --var nonsense "$K"
ok "a missing variable fails, a malformed --var is a usage error"
