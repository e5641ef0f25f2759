#!/bin/sh
# imgbuild-k8s-join: join this host to the cluster as a worker (doc/kubernetes.md).
# Run by cloud-init's runcmd. Waits for the baked images, reads /etc/imgbuild/kubernetes.env
# then /etc/imgbuild/cluster.env (0600, root's), renders /etc/kubernetes/imgbuild/join.yaml
# (0600) with discovery.bootstrapToken {apiServerEndpoint, token, caCertHashes} and runs
# `kubeadm join --config`. Does nothing when /etc/kubernetes/kubelet.conf exists (joined).
#
# The master may come up well after its workers (its own boot, image import, kubeadm init):
# kubeadm's discovery keeps retrying for discovery.timeout (IMGBUILD_K8S_JOIN_TIMEOUT, 30m0s),
# before it changes anything on this host.
set -eu
k8s_prog=imgbuild-k8s-join
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
config=$R/etc/kubernetes/imgbuild/join.yaml
join_timeout=${IMGBUILD_K8S_JOIN_TIMEOUT:-30m0s}

log "starting"
if [ -e "$kubelet_conf" ]; then
	log "$kubelet_conf exists: this node already joined; nothing to do"
	exit 0
fi

k8s_wait_images
k8s_load_env

k8s_need K8S_MASTER_ADDRESS "$K8S_RE_IPV4|$K8S_RE_DNS" "an IPv4 address or a DNS name (the control-plane endpoint)"
k8s_node_name
# The node's own address when the default route is not the cluster's network.
node_ip=""
if [ -n "${K8S_NODE_ADDRESS:-}" ]; then
	k8s_need K8S_NODE_ADDRESS "$K8S_RE_IPV4" "an IPv4 address (kubelet's --node-ip)"
	node_ip=$(printf '  kubeletExtraArgs:\n    node-ip: "%s"' "$K8S_NODE_ADDRESS")
fi
k8s_need K8S_TOKEN '[a-z0-9]{6}\.[a-z0-9]{16}' "a bootstrap token ([a-z0-9]{6}.[a-z0-9]{16})" secret
k8s_need K8S_CA_HASH 'sha256:[0-9a-f]{64}' "sha256: and 64 lower-case hex digits (the CA's public key hash)"
if ! ib_match "$join_timeout" '([0-9]+h)?([0-9]+m)?([0-9]+s)?' || [ -z "$join_timeout" ]; then
	k8s_problem "IMGBUILD_K8S_JOIN_TIMEOUT='$join_timeout' is not a duration such as 30m0s"
fi
k8s_check_done
log "configuration: node $K8S_NODE_NAME joins $K8S_MASTER_ADDRESS:6443, CA $K8S_CA_HASH"

k8s_no_swap

k8s_write_private "$config" <<EOF
# Written by imgbuild-k8s-join from /etc/imgbuild/kubernetes.env and /etc/imgbuild/cluster.env.
# It holds the bootstrap token: 0600.
apiVersion: kubeadm.k8s.io/v1beta3
kind: JoinConfiguration
discovery:
  bootstrapToken:
    apiServerEndpoint: "$K8S_MASTER_ADDRESS:6443"
    token: "$K8S_TOKEN"
    caCertHashes:
      - "$K8S_CA_HASH"
  timeout: $join_timeout
nodeRegistration:
  name: "$K8S_NODE_NAME"
  criSocket: "$K8S_CRI_SOCKET"
$node_ip
EOF
ib_run kubeadm join --config "$config" ||
	die "kubeadm join failed (its output is above and in the journal); fix the cause, run 'kubeadm reset -f', then $k8s_prog again"
log "done: $K8S_NODE_NAME joined the cluster at $K8S_MASTER_ADDRESS:6443"
