#!/bin/sh
# imgbuild-k8s-master: make this host the cluster's control plane (doc/kubernetes.md).
# Run by cloud-init's runcmd. Waits for the baked images, reads /etc/imgbuild/kubernetes.env
# then /etc/imgbuild/cluster.env (0600, root's), renders /etc/kubernetes/imgbuild/kubeadm.yaml
# (0600), runs `kubeadm init --config ... --upload-certs`, then applies
# /etc/kubernetes/addons/*.yaml in name order and the manifests of each add-on K8S_ADDONS names
# (/etc/kubernetes/addons.d/<name>/*.yaml; istio first runs `istioctl install`). With
# K8S_TOOLING_ADDRESS set (the tooling host's private address), the add-on logs is on too:
# the ConfigMap monitoring/tooling (address) first, then addons.d/logs (promtail shipping
# every node's journal to the tooling host's Loki); without it, logs is never applied.
#
# Idempotent: with /etc/kubernetes/kubelet.conf and /var/lib/imgbuild/k8s-master.done present it
# does nothing; with kubelet.conf alone (an earlier run stopped after `kubeadm init`) it skips
# the init and applies the add-ons again (kubectl apply is idempotent).
set -eu
k8s_prog=imgbuild-k8s-master
k8s_lib=${IMGBUILD_K8S_LIB:-/usr/local/lib/imgbuild/k8s-lib.sh}
[ -r "$k8s_lib" ] || k8s_lib=$(dirname "$0")/k8s-lib.sh
if [ ! -r "$k8s_lib" ]; then
	k8s_msg="$k8s_prog: error: /usr/local/lib/imgbuild/k8s-lib.sh is missing (bake ansible-free-scripts/k8s-lib.sh there)"
	echo "$k8s_msg" >&2
	logger -t imgbuild-k8s -p user.err -- "$k8s_msg" 2>/dev/null || :
	exit 1
fi
# shellcheck source-path=SCRIPTDIR source=k8s-lib.sh
. "$k8s_lib"
LC_ALL=C
export LC_ALL

kubelet_conf=$R/etc/kubernetes/kubelet.conf
done_mark=$K8S_STATE_DIR/k8s-master.done
config=$R/etc/kubernetes/imgbuild/kubeadm.yaml
addons=$R/etc/kubernetes/addons
addons_d=$R/etc/kubernetes/addons.d
apply_timeout=${IMGBUILD_K8S_APPLY_TIMEOUT:-600}

log "starting"
if [ -e "$kubelet_conf" ] && [ -e "$done_mark" ]; then
	log "$kubelet_conf and $done_mark exist: this control plane is up and its add-ons applied; nothing to do"
	exit 0
fi

k8s_wait_images
k8s_load_env

# The source address of the default route.
default_address() {
	ip -4 route get 1.1.1.1 2>/dev/null |
		awk '{ for (i = 1; i < NF; i++) if ($i == "src") { print $(i + 1); exit } }'
}

k8s_need K8S_VERSION 'v[0-9]+\.[0-9]+\.[0-9]+' "a Kubernetes version such as v1.30.2"
k8s_need K8S_POD_CIDR "$K8S_RE_CIDR" "an IPv4 CIDR such as 10.244.0.0/16"
k8s_need K8S_SERVICE_CIDR "$K8S_RE_CIDR" "an IPv4 CIDR such as 10.96.0.0/12"
k8s_need K8S_NODEPORT_RANGE '[0-9]{1,5}-[0-9]{1,5}' "a port range such as 8000-32767"
if ib_match "${K8S_NODEPORT_RANGE:-}" '[0-9]{1,5}-[0-9]{1,5}'; then
	lo=${K8S_NODEPORT_RANGE%-*} hi=${K8S_NODEPORT_RANGE#*-}
	if [ "$lo" -lt 1 ] || [ "$lo" -ge "$hi" ] || [ "$hi" -gt 65535 ]; then
		k8s_problem "K8S_NODEPORT_RANGE='$K8S_NODEPORT_RANGE' is not a range of ports from low to high"
	fi
fi
k8s_need K8S_MASTER_ADDRESS "$K8S_RE_IPV4|$K8S_RE_DNS" "an IPv4 address or a DNS name (the control-plane endpoint)"
if [ -z "${K8S_ADVERTISE_ADDRESS:-}" ]; then
	K8S_ADVERTISE_ADDRESS=$(default_address) || K8S_ADVERTISE_ADDRESS=""
	log "K8S_ADVERTISE_ADDRESS is empty: using the default route's source address '$K8S_ADVERTISE_ADDRESS'"
	[ -n "$K8S_ADVERTISE_ADDRESS" ] ||
		k8s_problem "K8S_ADVERTISE_ADDRESS is empty and there is no default route to take it from"
fi
[ -z "$K8S_ADVERTISE_ADDRESS" ] ||
	k8s_need K8S_ADVERTISE_ADDRESS "$K8S_RE_IPV4" "an IPv4 address (the API server's advertise address)"
k8s_node_name
# The node's own address when the default route is not the cluster's network.
node_ip=""
if [ -n "${K8S_NODE_ADDRESS:-}" ]; then
	k8s_need K8S_NODE_ADDRESS "$K8S_RE_IPV4" "an IPv4 address (kubelet's --node-ip)"
	node_ip=$(printf '  kubeletExtraArgs:\n    node-ip: "%s"' "$K8S_NODE_ADDRESS")
fi
k8s_need K8S_TOKEN '[a-z0-9]{6}\.[a-z0-9]{16}' "a bootstrap token ([a-z0-9]{6}.[a-z0-9]{16})" secret
k8s_need K8S_CERT_KEY '[0-9a-f]{64}' "a certificate key (64 lower-case hex digits)" secret
k8s_may K8S_CA_HASH 'sha256:[0-9a-f]{64}' "sha256: and 64 lower-case hex digits"
k8s_may K8S_CLUSTER_NAME "$K8S_RE_LABEL" "a cluster name (lower-case letters, digits and '-')"
k8s_may K8S_TOOLING_ADDRESS "$K8S_RE_IPV4|$K8S_RE_DNS" "an IPv4 address or a DNS name (the tooling host's, where Loki listens)"
for a in ${K8S_ADDONS:-}; do
	if [ "$a" = logs ]; then
		[ -n "${K8S_TOOLING_ADDRESS:-}" ] ||
			k8s_problem "K8S_ADDONS names logs, but K8S_TOOLING_ADDRESS is empty: there is no tooling host to ship the logs to"
	elif ! ib_match "$a" "$K8S_RE_LABEL"; then
		k8s_problem "K8S_ADDONS names '$a', which is not an add-on name"
	elif [ ! -d "$addons_d/$a" ]; then
		k8s_problem "K8S_ADDONS names '$a', but this image has no $addons_d/$a/ (known: $(cd "$addons_d" 2>/dev/null && printf '%s ' */ | tr -d /))"
	elif [ "$a" = istio ] && ! command -v istioctl >/dev/null 2>&1; then
		k8s_problem "K8S_ADDONS names istio, but istioctl is not installed in this image"
	fi
done
k8s_check_done
log "configuration: version $K8S_VERSION, node $K8S_NODE_NAME, advertise $K8S_ADVERTISE_ADDRESS, endpoint $K8S_MASTER_ADDRESS:6443, pods $K8S_POD_CIDR, services $K8S_SERVICE_CIDR, node ports $K8S_NODEPORT_RANGE, add-ons '${K8S_ADDONS:-}'"

# Workers trust the CA by K8S_CA_HASH: say so now when it does not match the CA given here.
ca=$R/etc/kubernetes/pki/ca.crt
if [ -f "$ca" ]; then
	log "using the cluster CA the user-data wrote ($ca)"
	if [ -n "${K8S_CA_HASH:-}" ] && command -v openssl >/dev/null 2>&1; then
		h=$(openssl x509 -in "$ca" -noout -pubkey 2>/dev/null | openssl pkey -pubin -outform der 2>/dev/null |
			openssl dgst -sha256 -r 2>/dev/null | cut -d' ' -f1) || h=""
		if [ -n "$h" ] && [ "sha256:$h" != "$K8S_CA_HASH" ]; then
			warn "K8S_CA_HASH ($K8S_CA_HASH) is not the hash of $ca (sha256:$h): workers given it will not join"
		fi
	fi
fi

k8s_no_swap

if [ -e "$kubelet_conf" ]; then
	log "$kubelet_conf exists: kubeadm init already ran; applying the add-ons only"
else
	cluster_name=""
	[ -z "${K8S_CLUSTER_NAME:-}" ] || cluster_name="clusterName: \"$K8S_CLUSTER_NAME\""
	k8s_write_private "$config" <<EOF
# Written by imgbuild-k8s-master from /etc/imgbuild/kubernetes.env and /etc/imgbuild/cluster.env.
# It holds the bootstrap token and the certificate key: 0600.
apiVersion: kubeadm.k8s.io/v1beta3
kind: InitConfiguration
bootstrapTokens:
  - token: "$K8S_TOKEN"
    ttl: 24h0m0s
    usages: [signing, authentication]
    groups: ["system:bootstrappers:kubeadm:default-node-token"]
certificateKey: "$K8S_CERT_KEY"
localAPIEndpoint:
  advertiseAddress: "$K8S_ADVERTISE_ADDRESS"
  bindPort: 6443
nodeRegistration:
  name: "$K8S_NODE_NAME"
  criSocket: "$K8S_CRI_SOCKET"
$node_ip
---
apiVersion: kubeadm.k8s.io/v1beta3
kind: ClusterConfiguration
$cluster_name
kubernetesVersion: "$K8S_VERSION"
controlPlaneEndpoint: "$K8S_MASTER_ADDRESS:6443"
networking:
  podSubnet: "$K8S_POD_CIDR"
  serviceSubnet: "$K8S_SERVICE_CIDR"
apiServer:
  extraArgs:
    service-node-port-range: "$K8S_NODEPORT_RANGE"
---
apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
cgroupDriver: systemd
EOF
	# --certificate-key is in the configuration: kubeadm refuses it next to --config. The
	# token and the key stay out of the logs.
	ib_run kubeadm init --config "$config" --upload-certs --skip-token-print --skip-certificate-key-print ||
		die "kubeadm init failed (its output is above and in the journal); fix the cause, run 'kubeadm reset -f', then $k8s_prog again"
	log "kubeadm init done"
fi
[ -f "$K8S_ADMIN_CONF" ] || die "$K8S_ADMIN_CONF is missing after kubeadm init"

# apply_dir DIR: every DIR/*.yaml in name order.
apply_dir() {
	n=0
	for f in "$1"/*.yaml; do
		[ -f "$f" ] || continue
		n=$((n + 1))
		k8s_retry "kubectl apply -f $f" "$apply_timeout" \
			kubectl --kubeconfig "$K8S_ADMIN_CONF" apply -f "$f"
	done
	[ "$n" -gt 0 ] || warn "no manifests in $1"
}

# The add-ons to apply: K8S_ADDONS, and logs when there is a tooling host.
enabled=""
for a in ${K8S_ADDONS:-}; do
	[ "$a" = logs ] || enabled="$enabled $a"
done
if [ -n "${K8S_TOOLING_ADDRESS:-}" ]; then
	enabled="$enabled logs"
else
	log "K8S_TOOLING_ADDRESS is empty: no tooling host, the nodes' logs are not shipped (add-on logs not applied)"
fi

log "applying the add-ons in $addons"
apply_dir "$addons"
for a in $enabled; do
	log "add-on $a"
	if [ "$a" = logs ]; then
		# The address promtail reads (configMapKeyRef monitoring/tooling, key address).
		tooling_cm=$R/etc/kubernetes/imgbuild/tooling.yaml
		mkdir -p "${tooling_cm%/*}"
		cat >"$tooling_cm" <<EOF
# Written by imgbuild-k8s-master from K8S_TOOLING_ADDRESS (/etc/imgbuild/cluster.env).
apiVersion: v1
kind: ConfigMap
metadata:
  name: tooling
  namespace: monitoring
  labels:
    app.kubernetes.io/part-of: monitoring
data:
  address: "$K8S_TOOLING_ADDRESS"
EOF
		k8s_retry "kubectl apply -f $tooling_cm" "$apply_timeout" \
			kubectl --kubeconfig "$K8S_ADMIN_CONF" apply -f "$tooling_cm"
		log "logs: every node's journal goes to Loki at http://$K8S_TOOLING_ADDRESS:3100"
	fi
	if [ "$a" = istio ]; then
		k8s_retry "istioctl install (profile minimal)" "$apply_timeout" \
			istioctl install -y --set profile=minimal --kubeconfig "$K8S_ADMIN_CONF"
	fi
	apply_dir "$addons_d/$a"
done

mkdir -p "$K8S_STATE_DIR"
printf 'add-ons:%s\n' "$enabled" >"$done_mark"
log "done: control plane $K8S_NODE_NAME is up, add-ons applied (recorded in $done_mark)"
